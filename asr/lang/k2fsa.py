"""Small k2 helpers shared by training, alignment and decoding.

They sit in ``asr.lang`` (below training and decoding) so that decoding needs
no import from ``asr.training``.
"""

from __future__ import annotations

import k2
import torch


def arc_splits(fsa_vec: k2.Fsa) -> torch.Tensor:
    """Where each FSA's arcs start in an FsaVec's arc arrays (N + 1 offsets).

    Reading the arc arrays through these offsets avoids k2's
    ``FsaVec.__getitem__``, which does not cope with ragged attributes.
    """
    shape = fsa_vec.arcs.shape()
    return shape.row_splits(2)[shape.row_splits(1).to(torch.int64)]


def dense_fsa_vec(log_probs: torch.Tensor, lengths: torch.Tensor) -> tuple[k2.DenseFsaVec, torch.Tensor]:
    """Wraps network output as a k2.DenseFsaVec.

    Args:
      log_probs: (N, T, S) scores over pdfs 1..S (column ``i`` is pdf ``i+1``).
      lengths: (N,) valid frames per utterance; must be non-increasing, as
        k2 wants supervision segments sorted by decreasing duration.

    Returns:
      The DenseFsaVec (on CPU: our k2 wheel is CPU-only) and the int32
      supervision segments ``(index, start, duration)``.
    """
    n = log_probs.shape[0]
    # Column 0 is k2's reserved label; no graph arc carries it, so its value
    # never matters -- a large negative keeps it out of pruned searches.
    pad = torch.full_like(log_probs[:, :, :1], -1e4)
    scores = torch.cat([pad, log_probs], dim=2).cpu()
    segments = torch.stack(
        [torch.arange(n, dtype=torch.int32), torch.zeros(n, dtype=torch.int32), lengths.to(torch.int32).cpu()], dim=1
    )
    return k2.DenseFsaVec(scores, segments), segments
