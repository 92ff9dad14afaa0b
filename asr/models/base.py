"""Shared pieces of the acoustic models: the interface and padding helpers.

All models take a zero- (or anything-) padded batch of feature sequences and
return per-frame log-probabilities over HMM states (pdfs).  Padding must never
leak into valid frames, so every layer that looks at neighbouring frames
(convolutions) first rebuilds its input so that each sequence's edges are
replicated from its own first/last valid frame, as Kaldi's nnet3 does at
utterance boundaries.  A sequence therefore gets the same output alone as in
any padded batch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from asr.config import check_range, option
from asr.errors import ConfigError


class AcousticModel(nn.Module):
    """Base class of all acoustic models.

    Subclasses implement :meth:`forward`; the frame rate bookkeeping lives
    here so that training, alignment and decoding agree on it.

    Attributes:
      subsampling_factor: Input frames per output frame (1, 3, ...).
      feat_dim: Input feature dimension.
      num_pdfs: Output dimension (columns of the log-probability matrix).
      ivector_dim: Dimension of the i-vector appended to each frame (0: none;
        see :meth:`append_ivectors`).
      config: The normalized, YAML-safe model config (plain dict) that
        ``build_model(config, feat_dim, num_pdfs)`` turns back into the same
        architecture, so a saved state_dict loads into it.
    """

    subsampling_factor: int
    feat_dim: int
    num_pdfs: int
    ivector_dim: int
    config: dict[str, Any]

    def __init__(self, feat_dim: int, num_pdfs: int, subsampling_factor: int, config: dict[str, Any],
                 ivector_dim: int = 0):
        super().__init__()
        self.feat_dim = int(feat_dim)
        self.num_pdfs = int(num_pdfs)
        self.subsampling_factor = int(subsampling_factor)
        self.ivector_dim = int(ivector_dim)
        self.config = copy.deepcopy(config)

    def append_ivectors(self, x: Tensor, ivectors: Tensor | None, step: int = 1) -> Tensor:
        """Appends each frame's i-vector to (N, T', C) frames (Kaldi's ``Append(..., ReplaceIndex(ivector, t, 0))``).

        The one way every model takes i-vectors: at the input of its first
        layer that sees flat frames (the features for TDNN and (B)LSTM, the
        flattened conv output for CNN-LSTM).

        Args:
          x: (N, T', C) frames at ``step`` input frames each.
          ivectors: (N, T, D) per input frame, or (N, D) per utterance
            (offline); None for a model without i-vectors.
          step: Input frames per frame of ``x``: frame t' takes input frame ``t' * step``.

        Returns:
          (N, T', C + D), or ``x`` itself when the model takes no i-vectors.

        Raises:
          ValueError: when i-vectors are missing, unexpected or of the wrong
            shape (a programming error of the caller).
        """
        if not self.ivector_dim:
            if ivectors is not None:
                raise ValueError("this model takes no i-vectors (ivector_dim 0)")
            return x
        if ivectors is None:
            raise ValueError(f"this model takes i-vectors of dim {self.ivector_dim}; none were given")
        if ivectors.dim() == 2:
            ivectors = ivectors.unsqueeze(1).expand(-1, x.shape[1] * step, -1)
        if ivectors.dim() != 3 or ivectors.shape[0] != x.shape[0] or ivectors.shape[2] != self.ivector_dim:
            raise ValueError(f"expected i-vectors of shape ({x.shape[0]}, T, {self.ivector_dim}), "
                             f"got {tuple(ivectors.shape)}")
        per_frame = ivectors[:, ::step][:, : x.shape[1]]
        if per_frame.shape[1] < x.shape[1]:
            raise ValueError(f"i-vectors for {ivectors.shape[1]} frames, the input has more")
        return torch.cat([x, per_frame.to(x.dtype)], dim=2)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Number of output frames for each input length.

        Every model pads its strided layer "same"-style, so output frame ``t``
        is centred on input frame ``t * s`` and ``T' = ceil(T / s)``.

        Args:
          lengths: (N,) int64 input frame counts.

        Returns:
          (N,) int64 output frame counts.
        """
        s = self.subsampling_factor
        return torch.div(lengths + (s - 1), s, rounding_mode="floor")

    def forward(self, feats: Tensor, lengths: Tensor, ivectors: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Computes per-frame log-probabilities over pdfs.

        Args:
          feats: (N, T, F) float32 padded features.
          lengths: (N,) int64 valid frame counts.
          ivectors: (N, T, D) i-vectors per input frame (or (N, D) per
            utterance) when ``ivector_dim > 0``, else None.

        Returns:
          ``(log_probs, out_lengths)``: (N, T', num_pdfs) log_softmax outputs
          (rows past ``out_lengths[n]`` are meaningless) and (N,) int64
          ``output_lengths(lengths)``.
        """
        raise NotImplementedError


def model_config_dict(model: AcousticModel) -> dict[str, Any]:
    """Returns a copy of the config that rebuilds ``model`` with ``build_model``."""
    return copy.deepcopy(model.config)


def check_lengths(feats: Tensor, lengths: Tensor) -> Tensor:
    """Validates a padded batch and returns ``lengths`` as int64 on feats' device.

    Raises:
      ValueError: on a shape mismatch or a length outside ``1..T``; these are
        programming errors of the caller, not user-fixable config problems.
    """
    if feats.dim() != 3:
        raise ValueError(f"expected feats of shape (N, T, F), got {tuple(feats.shape)}")
    lengths = lengths.to(device=feats.device, dtype=torch.int64)
    if lengths.shape != (feats.shape[0],):
        raise ValueError(f"expected lengths of shape ({feats.shape[0]},), got {tuple(lengths.shape)}")
    if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > feats.shape[1]):
        raise ValueError(f"lengths must lie in 1..{feats.shape[1]}, got {lengths.tolist()}")
    return lengths


def edge_pad_time(x: Tensor, lengths: Tensor, left: int, right: int, time_dim: int = 2) -> Tensor:
    """Pads the time axis by replicating each sequence's own first/last frame.

    Frames at or past ``lengths[n]`` are replaced by the last valid frame too,
    so a following convolution sees exactly what it would see on the sequence
    alone (Kaldi-style edge replication), whatever the padding held.

    Args:
      x: (N, C, T) or (N, C, T, F) tensor with time at ``time_dim``.
      lengths: (N,) int64 valid frame counts (at least 1).
      left: Frames to add before frame 0.
      right: Frames to add after frame T-1.
      time_dim: Index of the time axis in ``x``.

    Returns:
      Tensor with ``T + left + right`` frames on the time axis.
    """
    n, t = x.shape[0], x.shape[time_dim]
    pos = torch.arange(-left, t + right, device=x.device).unsqueeze(0)  # (1, T+l+r)
    # clamp per sequence: below 0 -> first frame, at/after length -> last valid frame
    last = (lengths.clamp(min=1) - 1).unsqueeze(1)
    idx = torch.minimum(pos.clamp(min=0), last)  # (N, T+l+r)
    shape = [1] * x.dim()
    shape[0], shape[time_dim] = n, idx.shape[1]
    size = list(x.shape)
    size[time_dim] = idx.shape[1]
    idx = idx.view(shape).expand(size)
    return torch.gather(x, time_dim, idx)


def time_mask(lengths: Tensor, max_len: int) -> Tensor:
    """(N, max_len) bool mask, True on valid frames."""
    return torch.arange(max_len, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class MaskedBatchNorm(nn.Module):
    """BatchNorm over channels that computes statistics on valid frames only.

    Padded frames would otherwise bias the batch statistics in training, and
    the output for a sequence would depend on what it was batched with.

    Args:
      channels: Number of channels (dim 1 of the input).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.bn = nn.BatchNorm1d(channels)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Normalizes ``x`` ((N, C, T) or (N, C, T, F)) where ``mask`` (N, T) is True.

        Padded frames come back as zeros.
        """
        moved = x.movedim(2, 1)  # (N, T, C[, F])
        valid = moved[mask]  # (M, C[, F]) is what BatchNorm1d expects
        out = torch.zeros_like(moved)
        if self.training and valid.numel() <= valid.shape[1]:
            # a single value per channel has no variance; use the running statistics
            bn = self.bn
            out[mask] = nn.functional.batch_norm(
                valid, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps
            )
        else:
            out[mask] = self.bn(valid)
        return out.movedim(1, 2)


class SplicedConv1d(nn.Module):
    """Kaldi nnet3-style spliced affine layer as a dilated, strided Conv1d.

    ``offsets`` such as ``[-3, 0, 3]`` mean output frame ``t`` sees input
    frames ``t*stride + o``; they must be sorted, unique and evenly spaced
    (the spacing becomes the dilation).  Edges are replicated per sequence.

    Args:
      in_dim: Input channels.
      out_dim: Output channels.
      offsets: Frame offsets of the splice.
      stride: Subsampling factor of this layer.
    """

    def __init__(self, in_dim: int, out_dim: int, offsets: list[int], stride: int = 1):
        super().__init__()
        self.offsets = list(offsets)
        self.left = max(0, -offsets[0])
        self.right = max(0, offsets[-1])
        self.start = offsets[0] + self.left  # >0 when the context starts after frame t
        dilation = offsets[1] - offsets[0] if len(offsets) > 1 else 1
        self.stride = stride
        self.conv = nn.Conv1d(in_dim, out_dim, kernel_size=len(offsets), dilation=dilation, stride=stride)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """Maps (N, C, T) to (N, out_dim, ceil(T / stride))."""
        t = x.shape[2]
        padded = edge_pad_time(x, lengths, self.left, self.right)
        # drop frames a right-only context never reads so output t stays at input t*stride
        padded = padded[:, :, self.start :]
        y = self.conv(padded)
        return y[:, :, : -(-t // self.stride)]


def parse_offsets(value: Any, where: str) -> list[int]:
    """Parses a splice context: a list of ints or a Kaldi string like ``"-3,0,3"``.

    Raises:
      ConfigError: if the offsets are not sorted, unique, evenly spaced ints.
    """
    if isinstance(value, str):
        try:
            value = [int(v) for v in value.replace(" ", "").split(",") if v != ""]
        except ValueError:
            raise ConfigError(f"{where}: bad context '{value}', expected e.g. '-1,0,1'") from None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise ConfigError(f"{where}: context must be a non-empty list of integers, got {value!r}")
    steps = {b - a for a, b in zip(value, value[1:])}
    if any(s <= 0 for s in steps) or len(steps) > 1:
        raise ConfigError(f"{where}: context {list(value)} must be sorted, unique and evenly spaced")
    return [int(v) for v in value]


#: Output-layer initialisations (``output_init``).
OUTPUT_INITS = ("default", "zero")


@dataclass
class ModelConfig:
    """Keys every model type accepts (the ``model`` section of a training config)."""

    type: str = option(doc="model type, one of the model registry's (asr/models/__init__.py)")
    hidden: int = option(256, "hidden units per layer (LSTM cells per direction)")
    dropout: float = option(0.1, "dropout probability after each hidden layer, in [0, 1)")
    subsampling: int = option(1, "output frame subsampling factor (3 = 30 ms output frames)")
    output_init: Literal["default", "zero"] = option(
        "default", "'zero' starts the output layer at zero (Kaldi's chain output-layer; flat-start LF-MMI needs it)")
    ivector_dim: int = option(
        0, "i-vector appended to every frame of the first layer's input (0: none); train with --ivector-dir")

    def check(self, where: str, prefix: str = "") -> None:
        """Range checks shared by every type."""
        check_range(where, f"{prefix}hidden", self.hidden >= 1, "a positive integer", self.hidden)
        check_range(where, f"{prefix}dropout", 0.0 <= self.dropout < 1.0, "a number in [0, 1)", self.dropout)
        check_range(where, f"{prefix}subsampling", self.subsampling >= 1, "a positive integer", self.subsampling)
        check_range(where, f"{prefix}ivector_dim", self.ivector_dim >= 0, "a non-negative integer", self.ivector_dim)

    def common(self) -> dict[str, Any]:
        """The normalized shared keys, in the order model.yaml has always had them (``ivector_dim`` only when set)."""
        keys = {"type": self.type, "hidden": self.hidden, "dropout": float(self.dropout), "subsampling": self.subsampling}
        if self.ivector_dim:
            keys["ivector_dim"] = self.ivector_dim
        return keys
