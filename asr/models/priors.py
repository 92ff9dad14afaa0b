"""State priors and the hybrid posterior -> likelihood conversion."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def estimate_log_priors(alignments: Iterable[torch.Tensor], num_pdfs: int) -> torch.Tensor:
    """Log P(s) from alignment counts with add-one smoothing.

    Args:
      alignments: Per-utterance pdf-id sequences (ids from 1).
      num_pdfs: Number of pdfs (ids 1..num_pdfs).

    Returns:
      (num_pdfs,) log-priors, entry ``i`` for pdf ``i + 1``; they sum to 1
      in probability space.
    """
    counts = torch.ones(num_pdfs, dtype=torch.float64)
    for ali in alignments:
        counts += torch.bincount(ali.to(torch.int64) - 1, minlength=num_pdfs)[:num_pdfs].double()
    return (counts / counts.sum()).log().float()


def scaled_log_likelihoods(
    log_posteriors: torch.Tensor, log_priors: torch.Tensor | None, acoustic_scale: float
) -> torch.Tensor:
    """The hybrid conversion: ``acoustic_scale * (log P(s|x) - log P(s))``.

    By Bayes' rule P(x|s) = P(s|x) P(x) / P(s); P(x) is the same for every
    state of a frame, so it drops out of the search.  With ``log_priors``
    None (sequence-trained models whose outputs are already pseudo
    log-likelihoods) only the scale is applied.

    Args:
      log_posteriors: (..., S) network log-softmax output.
      log_priors: (S,) log state priors, or None.
      acoustic_scale: Weight of the acoustic model relative to the graph.
    """
    if log_priors is not None:
        log_posteriors = log_posteriors - log_priors.to(log_posteriors.device)
    return acoustic_scale * log_posteriors
