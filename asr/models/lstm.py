"""(B)LSTM acoustic models with optional projection and frame subsampling."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from asr.config import check_range, option
from asr.models.base import AcousticModel, ModelConfig, SplicedConv1d, check_lengths


def subsampling_offsets(factor: int) -> list[int]:
    """Splice offsets that cover each input frame exactly once at stride ``factor``.

    For 3 this is ``[-1, 0, 1]``: output frame ``t`` sees input frames
    ``3t-1, 3t, 3t+1``, so no frame is skipped.
    """
    return list(range(-(factor // 2), factor - factor // 2))


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverses each sequence of a (N, T, D) batch within its own length; padding stays in place."""
    t = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    n = lengths.to(x.device).unsqueeze(1)
    idx = torch.where(t < n, n - 1 - t, t)
    return x.gather(1, idx.unsqueeze(2).expand(-1, -1, x.shape[2]))


class LstmStack(nn.Module):
    """Multi-layer (B)LSTM over a padded batch; padding never reaches valid frames.

    The weights live in one ``nn.LSTM`` (so state dicts are those of
    ``nn.LSTM``), but it is run one layer and direction at a time on the
    padded batch: the forward direction is causal, so trailing padding cannot
    reach valid frames, and the backward direction runs on each sequence
    reversed within its own length, so it starts at the sequence's own last
    frame.  This gives what a packed sequence gives, up to float rounding,
    and lets the CPU use oneDNN's fused LSTM kernel: on the CPU the packed
    path runs several autograd ops per time step, and was most of a training
    step's time (benchmarks/README.md, "Profile of AN4 CE training").  On
    other devices (cuDNN takes packed sequences in one kernel) the batch is
    packed as before.

    Args:
      in_dim: Input dimension.
      hidden: Cell size per direction.
      layers: Number of layers.
      proj: Projection size (``proj_size`` of ``nn.LSTM``), 0 for none.
      bidirectional: Whether to run a backward LSTM too.
      dropout: Dropout between layers.
    """

    def __init__(self, in_dim: int, hidden: int, layers: int, proj: int, bidirectional: bool, dropout: float):
        super().__init__()
        self.lstm = nn.LSTM(
            in_dim,
            hidden,
            num_layers=layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
            proj_size=proj,
        )
        self.out_dim = (proj or hidden) * (2 if bidirectional else 1)

    def _layer_weights(self, layer: int, suffix: str) -> list[Tensor]:
        names = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"] + (["weight_hr"] if self.lstm.proj_size else [])
        return [getattr(self.lstm, f"{name}_l{layer}{suffix}") for name in names]

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """Maps (N, T, in_dim) to (N, T, out_dim); padded rows are zeros."""
        lstm = self.lstm
        n, t = x.shape[0], x.shape[1]
        if x.device.type != "cpu":
            # pack so the backward direction starts at each sequence's own last frame
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            out, _ = lstm(packed)
            return pad_packed_sequence(out, batch_first=True, total_length=t)[0]
        lengths = lengths.to(x.device)
        h0 = x.new_zeros(1, n, lstm.proj_size or lstm.hidden_size)
        c0 = x.new_zeros(1, n, lstm.hidden_size)
        suffixes = ["", "_reverse"] if lstm.bidirectional else [""]
        for layer in range(lstm.num_layers):
            if layer > 0 and lstm.dropout > 0:
                x = F.dropout(x, lstm.dropout, self.training)
            outs = []
            for suffix in suffixes:
                inp = reverse_padded(x, lengths) if suffix else x
                weights = self._layer_weights(layer, suffix)
                with warnings.catch_warnings():
                    # with a projection torch says it falls back from oneDNN to its own LSTM
                    warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
                    # (input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
                    out = torch.lstm(inp, (h0, c0), weights, True, 1, 0.0, self.training, False, True)[0]
                outs.append(reverse_padded(out, lengths) if suffix else out)
            x = torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]
        padding = torch.arange(t, device=x.device).unsqueeze(0) >= lengths.unsqueeze(1)
        return x.masked_fill(padding.unsqueeze(2), 0.0)


class LSTMModel(AcousticModel):
    """Optional strided front end, (B)LSTM layers, linear pdf layer.

    With ``subsampling > 1`` a spliced Conv1d + ReLU front end of size
    ``hidden`` and stride ``subsampling`` reduces the frame rate before the
    LSTM (cheaper than stacking frames and keeps every input frame).

    Args:
      feat_dim: Input feature dimension.
      num_pdfs: Output dimension.
      hidden: LSTM cell size (and front end size).
      layers: Number of LSTM layers.
      proj: LSTM projection size, 0 for none.
      bidirectional: BLSTM if True.
      dropout: Dropout between and after LSTM layers.
      subsampling: Output frame subsampling factor.
      config: Normalized config kept on the model.
      ivector_dim: i-vector dimension appended to every input frame (0: none).
    """

    def __init__(
        self,
        feat_dim: int,
        num_pdfs: int,
        hidden: int,
        layers: int,
        proj: int,
        bidirectional: bool,
        dropout: float,
        subsampling: int,
        config: dict[str, Any],
        ivector_dim: int = 0,
    ):
        super().__init__(feat_dim, num_pdfs, subsampling, config, ivector_dim)
        in_dim = feat_dim + ivector_dim
        self.frontend = (
            SplicedConv1d(in_dim, hidden, subsampling_offsets(subsampling), subsampling) if subsampling > 1 else None
        )
        self.lstm = LstmStack(hidden if self.frontend else in_dim, hidden, layers, proj, bidirectional, dropout)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(self.lstm.out_dim, num_pdfs)

    def forward(self, feats: Tensor, lengths: Tensor, ivectors: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """See :meth:`AcousticModel.forward`."""
        lengths = check_lengths(feats, lengths)
        out_lengths = self.output_lengths(lengths)
        x = self.append_ivectors(feats, ivectors)
        if self.frontend is not None:
            x = torch.relu(self.frontend(x.transpose(1, 2), lengths)).transpose(1, 2)
        x = self.dropout(self.lstm(x, out_lengths))
        return torch.log_softmax(self.output(x), dim=-1), out_lengths


@dataclass
class LstmConfig(ModelConfig):
    """``type: lstm`` and ``type: blstm`` (bidirectional)."""

    layers: int = option(3, "number of LSTM layers")
    proj: int | None = option(0, "LSTM projection size, below hidden (0 or null: none)")

    def check(self, where: str, prefix: str = "") -> None:
        super().check(where, prefix)
        check_range(where, f"{prefix}layers", self.layers >= 1, "a positive integer", self.layers)
        proj = self.proj or 0
        # torch's LSTM requires proj_size < hidden_size
        check_range(where, f"{prefix}proj", proj >= 0 and (not proj or proj < self.hidden),
                    f"0 (none) or an integer below hidden={self.hidden}", self.proj)


def build_lstm(cfg: LstmConfig, feat_dim: int, num_pdfs: int, where: str) -> LSTMModel:
    """An LSTM or BLSTM (``cfg.type == 'blstm'``) from its checked config."""
    norm = cfg.common()
    norm.update(layers=cfg.layers, proj=cfg.proj or 0)
    return LSTMModel(feat_dim, num_pdfs, cfg.hidden, cfg.layers, cfg.proj or 0, cfg.type == "blstm",
                     float(cfg.dropout), cfg.subsampling, norm, cfg.ivector_dim)
