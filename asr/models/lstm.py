"""(B)LSTM acoustic models with optional projection and frame subsampling."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from asr.models.base import AcousticModel, SplicedConv1d, check_lengths


def subsampling_offsets(factor: int) -> list[int]:
    """Splice offsets that cover each input frame exactly once at stride ``factor``.

    For 3 this is ``[-1, 0, 1]``: output frame ``t`` sees input frames
    ``3t-1, 3t, 3t+1``, so no frame is skipped.
    """
    return list(range(-(factor // 2), factor - factor // 2))


class LstmStack(nn.Module):
    """Multi-layer (B)LSTM over a padded batch, run packed so padding is ignored.

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

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """Maps (N, T, in_dim) to (N, T, out_dim); padded rows are zeros."""
        # pack so the backward direction starts at each sequence's own last frame
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out


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
    ):
        super().__init__(feat_dim, num_pdfs, subsampling, config)
        self.frontend = (
            SplicedConv1d(feat_dim, hidden, subsampling_offsets(subsampling), subsampling) if subsampling > 1 else None
        )
        self.lstm = LstmStack(hidden if self.frontend else feat_dim, hidden, layers, proj, bidirectional, dropout)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(self.lstm.out_dim, num_pdfs)

    def forward(self, feats: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """See :meth:`AcousticModel.forward`."""
        lengths = check_lengths(feats, lengths)
        out_lengths = self.output_lengths(lengths)
        x = feats
        if self.frontend is not None:
            x = torch.relu(self.frontend(feats.transpose(1, 2), lengths)).transpose(1, 2)
        x = self.dropout(self.lstm(x, out_lengths))
        return torch.log_softmax(self.output(x), dim=-1), out_lengths
