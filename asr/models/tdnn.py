"""Kaldi nnet3-style TDNN: spliced affine layers as dilated Conv1d."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from asr.config import check_range, option
from asr.errors import ConfigError
from asr.models.base import (
    AcousticModel, MaskedBatchNorm, ModelConfig, SplicedConv1d, check_lengths, parse_offsets, time_mask,
)

#: Layer contexts used when the config gives ``layers`` but no ``context``:
#: a wide first splice, then growing dilations like Kaldi's tdnn recipes.
DEFAULT_CONTEXTS: list[list[int]] = [[-2, -1, 0, 1, 2], [-1, 0, 1], [-1, 0, 1], [-3, 0, 3], [-3, 0, 3], [-3, 0, 3]]


def default_contexts(layers: int) -> list[list[int]]:
    """Returns ``layers`` splice contexts, repeating ``[-3, 0, 3]`` past the table."""
    return [list(DEFAULT_CONTEXTS[min(i, len(DEFAULT_CONTEXTS) - 1)]) for i in range(layers)]


class TDNN(AcousticModel):
    """Stack of relu-batchnorm TDNN layers followed by a linear pdf layer.

    Each layer is ``SplicedConv1d -> ReLU -> BatchNorm -> Dropout`` (Kaldi's
    ``relu-batchnorm-layer``).  With ``subsampling > 1`` the layer
    ``subsampling_layer`` has that stride, and the contexts of later layers
    count frames at the reduced rate.

    Args:
      feat_dim: Input feature dimension.
      num_pdfs: Output dimension.
      hidden: Channels of every hidden layer.
      contexts: One list of frame offsets per layer.
      dropout: Dropout probability after each hidden layer.
      subsampling: Output frame subsampling factor.
      subsampling_layer: Index of the layer that carries the stride.
      config: Normalized config kept on the model.
      ivector_dim: i-vector dimension appended to every input frame (0: none).
    """

    def __init__(
        self,
        feat_dim: int,
        num_pdfs: int,
        hidden: int,
        contexts: list[list[int]],
        dropout: float,
        subsampling: int,
        subsampling_layer: int,
        config: dict[str, Any],
        ivector_dim: int = 0,
    ):
        super().__init__(feat_dim, num_pdfs, subsampling, config, ivector_dim)
        self.strides = [subsampling if i == subsampling_layer else 1 for i in range(len(contexts))]
        self.convs = nn.ModuleList(
            SplicedConv1d(feat_dim + ivector_dim if i == 0 else hidden, hidden, ctx, stride)
            for i, (ctx, stride) in enumerate(zip(contexts, self.strides))
        )
        self.norms = nn.ModuleList(MaskedBatchNorm(hidden) for _ in contexts)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, num_pdfs)

    def forward(self, feats: Tensor, lengths: Tensor, ivectors: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """See :meth:`AcousticModel.forward`."""
        lengths = check_lengths(feats, lengths)
        x = self.append_ivectors(feats, ivectors).transpose(1, 2)  # (N, F [+ D], T) for Conv1d
        cur = lengths
        for conv, norm, stride in zip(self.convs, self.norms, self.strides):
            x = torch.relu(conv(x, cur))
            cur = torch.div(cur + (stride - 1), stride, rounding_mode="floor")
            x = self.dropout(norm(x, time_mask(cur, x.shape[2])))
        logits = self.output(x.transpose(1, 2))
        return torch.log_softmax(logits, dim=-1), self.output_lengths(lengths)


@dataclass
class TdnnConfig(ModelConfig):
    """``type: tdnn``."""

    layers: int | None = option(None, "number of layers (default: len(context), or 6 without a context)")
    context: list[list[int] | str | int] | None = option(
        None, "one splice per layer: offsets [-3, 0, 3] or a Kaldi string '-3,0,3' (default: Kaldi-like)")
    subsampling_layer: int = option(0, "index of the layer that carries the subsampling stride")

    def contexts(self, where: str) -> list[list[int]]:
        """The per-layer splice offsets (checked: sorted, unique, evenly spaced)."""
        if self.context is None:
            layers = 6 if self.layers is None else self.layers
            check_range(where, "model.layers", layers >= 1, "a positive integer", layers)
            return default_contexts(layers)
        if not self.context:
            raise ConfigError(f"{where}: 'context' must be a list with one splice per layer, got {self.context!r}")
        contexts = [parse_offsets(c, f"{where}: context[{i}]") for i, c in enumerate(self.context)]
        if self.layers is not None and self.layers != len(contexts):
            raise ConfigError(f"{where}: 'layers' is {self.layers} but 'context' has {len(contexts)} entries")
        return contexts


def build_tdnn(cfg: TdnnConfig, feat_dim: int, num_pdfs: int, where: str) -> TDNN:
    """A TDNN from its checked config; ``model.config`` is the normalized config."""
    contexts = cfg.contexts(where)
    sub_layer = cfg.subsampling_layer
    check_range(where, "subsampling_layer", 0 <= sub_layer < len(contexts), f"in 0..{len(contexts) - 1}", sub_layer)
    norm = cfg.common()
    norm.update(layers=len(contexts), context=contexts, subsampling_layer=sub_layer)
    return TDNN(feat_dim, num_pdfs, cfg.hidden, contexts, float(cfg.dropout), cfg.subsampling, sub_layer, norm,
                cfg.ivector_dim)
