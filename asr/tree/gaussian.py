"""Diagonal-Gaussian sufficient statistics and their log-likelihood.

A set of frames is summarized by one row of ``1 + 2 D`` float64 numbers,
``[n, sum_d x_d, sum_d x_d^2]``: its count, the sum and the sum of squares of
its D-dimensional features.  Rows of disjoint sets add, so the statistics of
any union of sets (a tree node, a phone set) is a sum of rows.

The objective is the log-likelihood of the frames under the maximum-likelihood
diagonal Gaussian of the set (Kaldi's ``GaussClusterable::Objf``)::

    mean_d = sum_d / n
    s2_d   = max(sumsq_d / n - mean_d^2, variance_floor)
    LL     = -0.5 * n * sum_d (log(2 pi s2_d) + 1)

Splitting a set ``A`` into ``Y`` and ``N`` gains ``LL(Y) + LL(N) - LL(A) >= 0``
(without flooring); merging ``A`` and ``B`` costs ``LL(A) + LL(B) - LL(A u B)``.
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2.0 * math.pi)


def feature_dim(stats: torch.Tensor) -> int:
    """D of stats rows of shape (..., 1 + 2 D)."""
    width = stats.shape[-1]
    if width < 3 or (width - 1) % 2:
        raise ValueError(f"stats rows must have 1 + 2 D columns, got {width}")
    return (width - 1) // 2


def frame_stats(feats: torch.Tensor) -> torch.Tensor:
    """Per-frame stats rows ``[1, x, x^2]``.

    Args:
      feats: (T, D) features.

    Returns:
      (T, 1 + 2 D) float64.
    """
    x = feats.to(torch.float64)
    return torch.cat([torch.ones(len(x), 1, dtype=torch.float64), x, x * x], dim=1)


def log_likelihood(stats: torch.Tensor, variance_floor: float) -> torch.Tensor:
    """Log-likelihood of each set under its own diagonal Gaussian (formula in the module docstring).

    Args:
      stats: (..., 1 + 2 D) float64 rows ``[n, sum, sumsq]``.
      variance_floor: Smallest per-dimension variance (absolute, in squared
        feature units); keeps sets of a few identical frames from winning.

    Returns:
      (...) float64; 0 where ``n == 0`` (an empty set).
    """
    dim = feature_dim(stats)
    count = stats[..., 0]
    safe = count.clamp_min(torch.finfo(torch.float64).tiny).unsqueeze(-1)
    mean = stats[..., 1 : 1 + dim] / safe
    var = (stats[..., 1 + dim :] / safe - mean * mean).clamp_min(variance_floor)
    ll = -0.5 * count * (torch.log(var) + LOG_2PI + 1.0).sum(-1)
    return torch.where(count > 0, ll, torch.zeros_like(ll))


def merge_costs(stats: torch.Tensor, variance_floor: float) -> torch.Tensor:
    """Pairwise cost of merging sets: ``LL(a) + LL(b) - LL(a u b)``.

    Args:
      stats: (K, 1 + 2 D) rows of K disjoint sets.

    Returns:
      (K, K) float64, symmetric, diagonal +inf (a set is not merged with itself).
    """
    ll = log_likelihood(stats, variance_floor)
    union = log_likelihood(stats.unsqueeze(0) + stats.unsqueeze(1), variance_floor)
    cost = ll.unsqueeze(0) + ll.unsqueeze(1) - union
    cost.fill_diagonal_(math.inf)
    return cost
