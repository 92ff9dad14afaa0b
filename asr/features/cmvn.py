"""Cepstral mean (and variance) normalization with Kaldi's stats format.

Stats of a speaker (or utterance) are a (2, dim+1) float64 matrix: row 0 holds
the sum of the features then the frame count, row 1 the sum of squares then 0.
"""

from __future__ import annotations

import numpy as np
import torch


def cmvn_stats(feats: np.ndarray | torch.Tensor) -> np.ndarray:
    """Returns Kaldi CMVN stats of one (T, D) feature matrix as a (2, D+1) float64 array."""
    x = np.asarray(feats.numpy() if isinstance(feats, torch.Tensor) else feats, dtype=np.float64)
    stats = np.zeros((2, x.shape[1] + 1), dtype=np.float64)
    stats[0, :-1] = x.sum(axis=0)
    stats[0, -1] = x.shape[0]
    stats[1, :-1] = (x * x).sum(axis=0)
    return stats


def apply_cmvn(
    feats: torch.Tensor, stats: np.ndarray | torch.Tensor, norm_vars: bool = False
) -> torch.Tensor:
    """Normalizes features with Kaldi ``apply-cmvn`` semantics.

    Args:
      feats: (T, D) features.
      stats: (2, D+1) stats as from :func:`cmvn_stats` (summed over a speaker).
      norm_vars: Also scale to unit variance (variance floored at 1e-20 as Kaldi).

    Returns:
      (T, D) float32 normalized features.

    Raises:
      ValueError: if the shapes disagree or the count is below 1.
    """
    s = torch.as_tensor(np.asarray(stats), dtype=torch.float64)
    dim = feats.shape[-1]
    if s.shape != (2, dim + 1):
        raise ValueError(f"CMVN stats of shape {tuple(s.shape)} do not fit features of dim {dim}")
    count = float(s[0, dim])
    if count < 1.0:
        raise ValueError(f"insufficient CMVN stats (count {count})")
    mean = s[0, :dim] / count
    x = feats.to(torch.float64) - mean
    if norm_vars:
        var = (s[1, :dim] / count - mean * mean).clamp_min(1e-20)
        x = x / var.sqrt()
    return x.to(torch.float32)
