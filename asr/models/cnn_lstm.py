"""CNN + (B)LSTM: a 2-D convolutional front end over (time, frequency)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from asr.models.base import AcousticModel, MaskedBatchNorm, check_lengths, edge_pad_time, time_mask
from asr.config import check_range, option
from asr.models.lstm import LstmConfig, LstmStack


def conv_out_freq(feat_dim: int, num_convs: int) -> int:
    """Frequency bins left after ``num_convs`` 3-wide, stride-2, pad-1 convolutions."""
    f = feat_dim
    for _ in range(num_convs):
        f = (f + 1) // 2  # floor((f + 2 - 3) / 2) + 1 == ceil(f / 2)
    return f


class CNNLSTM(AcousticModel):
    """Conv2d layers (3x3, frequency stride 2) -> flatten -> (B)LSTM -> linear.

    Each conv layer is ``Conv2d -> ReLU -> BatchNorm``.  Time is edge-padded
    per sequence (never zero-padded) so padding cannot reach valid frames;
    frequency is zero-padded.  The first conv has time stride
    ``subsampling``.

    Args:
      feat_dim: Input feature dimension.
      num_pdfs: Output dimension.
      channels: Output channels of each conv layer.
      hidden: LSTM cell size.
      layers: Number of LSTM layers.
      proj: LSTM projection size, 0 for none.
      bidirectional: BLSTM if True.
      dropout: Dropout between and after LSTM layers.
      subsampling: Output frame subsampling factor.
      config: Normalized config kept on the model.
      ivector_dim: i-vector dimension appended to every frame of the
        flattened conv output, the LSTM's input (0: none); the convs see
        time-frequency patches, where an i-vector has no place.
    """

    def __init__(
        self,
        feat_dim: int,
        num_pdfs: int,
        channels: list[int],
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
        self.time_strides = [subsampling if i == 0 else 1 for i in range(len(channels))]
        ins = [1] + channels[:-1]
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, kernel_size=3, stride=(st, 2), padding=(0, 1))
            for c_in, c_out, st in zip(ins, channels, self.time_strides)
        )
        self.norms = nn.ModuleList(MaskedBatchNorm(c) for c in channels)
        flat_dim = channels[-1] * conv_out_freq(feat_dim, len(channels))
        self.lstm = LstmStack(flat_dim + ivector_dim, hidden, layers, proj, bidirectional, dropout)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(self.lstm.out_dim, num_pdfs)

    def forward(self, feats: Tensor, lengths: Tensor, ivectors: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """See :meth:`AcousticModel.forward`."""
        lengths = check_lengths(feats, lengths)
        x = feats.unsqueeze(1)  # (N, 1, T, F)
        cur = lengths
        for conv, norm, stride in zip(self.convs, self.norms, self.time_strides):
            t = x.shape[2]
            x = torch.relu(conv(edge_pad_time(x, cur, 1, 1, time_dim=2)))
            x = x[:, :, : -(-t // stride)]  # ceil(T / stride) frames, as output_lengths says
            cur = torch.div(cur + (stride - 1), stride, rounding_mode="floor")
            x = norm(x, time_mask(cur, x.shape[2]))
        n, c, t, f = x.shape
        x = self.append_ivectors(x.permute(0, 2, 1, 3).reshape(n, t, c * f), ivectors, self.subsampling_factor)
        x = self.dropout(self.lstm(x, cur))
        return torch.log_softmax(self.output(x), dim=-1), self.output_lengths(lengths)


@dataclass
class CnnLstmConfig(LstmConfig):
    """``type: cnn_lstm``."""

    channels: list[int] | int = option(
        factory=lambda: [32, 32], doc="output channels of each 3x3 conv (frequency stride 2); an int: two convs")
    bidirectional: bool = option(False, "BLSTM layers after the convs")

    def channel_list(self) -> list[int]:
        return [self.channels, self.channels] if isinstance(self.channels, int) else list(self.channels)

    def check(self, where: str, prefix: str = "") -> None:
        super().check(where, prefix)
        channels = self.channel_list()
        check_range(where, f"{prefix}channels", bool(channels) and all(c > 0 for c in channels),
                    "a list of positive integers", self.channels)


def build_cnn_lstm(cfg: CnnLstmConfig, feat_dim: int, num_pdfs: int, where: str) -> CNNLSTM:
    """A CNN + (B)LSTM from its checked config."""
    channels = cfg.channel_list()
    norm = cfg.common()
    norm.update(layers=cfg.layers, proj=cfg.proj or 0, channels=channels, bidirectional=cfg.bidirectional)
    return CNNLSTM(feat_dim, num_pdfs, channels, cfg.hidden, cfg.layers, cfg.proj or 0, cfg.bidirectional,
                   float(cfg.dropout), cfg.subsampling, norm, cfg.ivector_dim)
