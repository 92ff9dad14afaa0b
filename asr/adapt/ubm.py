"""The i-vector front end: a splice + PCA feature transform and a diagonal-covariance UBM.

What the UBM sees (Kaldi's ``get_pca_transform.sh`` + ``train_diag_ubm.sh``):
the data dir's *raw* features (``feats.scp``, no CMVN), each frame spliced
with ``splice`` frames of context on either side (edges replicated) and
projected by a PCA estimated on the training frames.  CMVN is left out on
purpose: the i-vector is there to carry what CMVN removes (speaker and
channel), and raw features make online extraction exact, with no running
statistics to approximate.  The PCA decorrelates the fbank channels, which a
diagonal GMM needs far more than MFCCs do.

The UBM is trained Kaldi-style without randomness: one Gaussian on all the
frames, doubled by splitting the heaviest Gaussians (means moved by +-0.2
standard deviations, as HTK's mixing-up) with ``split_iters`` EM iterations
after each split, then ``num_iters`` EM iterations at the full size.  EM
accumulates in float64, in chunks of frames; variances are floored at a
fraction of the data's variance, weights at ``min_weight``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import Tensor
from tqdm import tqdm

from asr.adapt.config import UbmConfig

log = logging.getLogger("asr.adapt.ubm")

LOG_2PI = math.log(2.0 * math.pi)
#: Means of a split Gaussian move by this many standard deviations (HTK's HHEd MU).
SPLIT_OFFSET = 0.2


def splice_frames(feats: Tensor, context: int) -> Tensor:
    """Splices each frame with ``context`` frames on either side, replicating the edges.

    Args:
      feats: (T, F) features, T >= 1.
      context: Frames of context per side (0: a copy).

    Returns:
      (T, (2*context+1)*F): row t is ``[x_{t-c}, ..., x_t, ..., x_{t+c}]``
      (Kaldi's splice-feats layout), with indices clamped to 0..T-1.
    """
    if context == 0:
        return feats.clone()
    t = feats.shape[0]
    idx = (torch.arange(t).unsqueeze(1) + torch.arange(-context, context + 1).unsqueeze(0)).clamp(0, t - 1)
    return feats[idx].reshape(t, -1)


@dataclass
class FeatureTransform:
    """Splice + PCA: (T, F) raw features to (T, P) UBM features ``y_t = W (s_t - mu)``.

    Attributes:
      splice: Context frames per side.
      mean: (S,) mean ``mu`` of the spliced frames (S = (2*splice+1)*F).
      projection: (P, S) PCA rows ``W``, by decreasing variance.
    """

    splice: int
    mean: Tensor
    projection: Tensor

    @property
    def input_dim(self) -> int:
        return self.mean.numel() // (2 * self.splice + 1)

    @property
    def dim(self) -> int:
        return self.projection.shape[0]

    def __call__(self, feats: Tensor) -> Tensor:
        """(T, F) raw features -> (T, P) UBM features, in float32 (the precision of the features themselves)."""
        mean, projection = self._float32()
        return (splice_frames(feats.to(torch.float32), self.splice) - mean) @ projection.T

    def _float32(self) -> tuple[Tensor, Tensor]:
        cached = self.__dict__.get("_f32")
        if cached is None:
            cached = self.__dict__["_f32"] = (self.mean.float(), self.projection.float())
        return cached

    @classmethod
    def estimate(cls, spliced: Iterable[Tensor], splice: int, pca_dim: int) -> "FeatureTransform":
        """PCA of spliced frames ((N, S) blocks, from :func:`splice_frames` with ``splice``).

        The covariance ``C = E[s s^T] - mu mu^T`` is accumulated in float64;
        ``W`` holds its top ``pca_dim`` (0: all) eigenvectors, each signed so
        that its largest entry is positive (a deterministic choice).
        """
        total, sum_x, sum_xx = 0, None, None
        for block in spliced:
            s = block.to(torch.float64)
            if sum_x is None:
                sum_x = torch.zeros(s.shape[1], dtype=torch.float64)
                sum_xx = torch.zeros(s.shape[1], s.shape[1], dtype=torch.float64)
            total += s.shape[0]
            sum_x += s.sum(0)
            sum_xx += s.T @ s
        if sum_x is None or total < 2:
            raise ValueError("the PCA needs at least two frames")
        mean = sum_x / total
        cov = sum_xx / total - torch.outer(mean, mean)
        values, vectors = torch.linalg.eigh(cov)
        dim = pca_dim or len(values)
        if dim > len(values):
            raise ValueError(f"pca_dim {dim} exceeds the spliced dimension {len(values)}")
        order = torch.argsort(values, descending=True)[:dim]
        top = vectors[:, order].T.contiguous()
        signs = torch.sign(top.gather(1, top.abs().argmax(1, keepdim=True)))
        kept = values[order].sum() / values.clamp(min=0).sum()
        log.info("PCA: %d spliced dims -> %d (%.1f%% of the variance kept)", len(values), dim, 100 * float(kept))
        return cls(splice, mean, top * signs)

    def state_dict(self) -> dict[str, Tensor]:
        return {"splice": torch.tensor(self.splice), "mean": self.mean, "projection": self.projection}


@dataclass
class DiagGmm:
    """A diagonal-covariance GMM (float64 tensors).

    Attributes:
      weights: (C,) mixture weights, summing to 1.
      means: (C, F).
      variances: (C, F).
    """

    weights: Tensor
    means: Tensor
    variances: Tensor

    @property
    def num_gauss(self) -> int:
        return self.weights.numel()

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def component_log_likelihoods(self, x: Tensor) -> Tensor:
        """``log w_c + log N(x_t; mu_c, diag v_c)`` of (N, F) frames: (N, C), in x's dtype.

        Expanded as ``g_c + x . (mu_c / v_c) - 0.5 x^2 . (1 / v_c)`` with
        ``g_c = log w_c - 0.5 (F log 2pi + sum log v_c + sum mu_c^2 / v_c)``,
        so the work is one (N, 2F) x (2F, C) product of ``[x, x^2]`` (EM runs
        it in float64, extraction in float32).
        """
        g, weights = self._terms(x.dtype)
        return torch.addmm(g, torch.cat([x, x * x], dim=1), weights)

    def _terms(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """``(g (C,), [mu / v; -0.5 / v] (2F, C))`` in ``dtype``, cached (the GMM is not modified)."""
        cache = self.__dict__.setdefault("_terms_cache", {})
        if dtype not in cache:
            inv_var = 1.0 / self.variances
            g = self.weights.log() - 0.5 * (self.dim * LOG_2PI + self.variances.log().sum(1)
                                            + (self.means**2 * inv_var).sum(1))
            weights = torch.cat([self.means * inv_var, -0.5 * inv_var], dim=1).T
            cache[dtype] = (g.to(dtype), weights.to(dtype).contiguous())
        return cache[dtype]

    def top_posteriors(self, x: Tensor, num: int, min_post: float = 0.0) -> tuple[Tensor, Tensor]:
        """The ``num`` best Gaussians of each frame and their posteriors among them.

        As Kaldi's ``gmm-global-get-post --n=num --min-post=min_post``:
        posteriors are normalised over the selected Gaussians, those below
        ``min_post`` are dropped (set to 0) and the rest renormalised.

        Args:
          x: (N, F) frames.

        Returns:
          ``(indices, posteriors)``, both (N, num'), num' = min(num, C);
          posteriors in x's dtype, each row summing to 1.
        """
        ll = self.component_log_likelihoods(x)
        top, idx = ll.topk(min(num, self.num_gauss), dim=1, sorted=False)
        post = torch.softmax(top, dim=1)
        if min_post > 0:
            # the best Gaussian always survives: its posterior is at least 1/num
            post = post * (post >= min_post)
            post = post / post.sum(1, keepdim=True)
        return idx, post

    def state_dict(self) -> dict[str, Tensor]:
        return {"weights": self.weights, "means": self.means, "variances": self.variances}


@dataclass
class EmStats:
    """Zeroth, first and second-order statistics of a diagonal GMM (float64)."""

    count: Tensor  # (C,) sum_t gamma_tc
    first: Tensor  # (C, F) sum_t gamma_tc x_t
    second: Tensor  # (C, F) sum_t gamma_tc x_t^2
    log_likelihood: float  # sum_t log p(x_t)
    frames: int


def accumulate(gmm: DiagGmm, frames: Tensor, chunk: int) -> EmStats:
    """The E-step over (N, F) frames, ``chunk`` frames at a time (exact posteriors over all Gaussians)."""
    c, f = gmm.num_gauss, gmm.dim
    count = torch.zeros(c, dtype=torch.float64)
    first = torch.zeros(c, f, dtype=torch.float64)
    second = torch.zeros(c, f, dtype=torch.float64)
    total = 0.0
    for start in range(0, frames.shape[0], chunk):
        x = frames[start : start + chunk].to(torch.float64)
        ll = gmm.component_log_likelihoods(x)
        frame_ll = torch.logsumexp(ll, dim=1)
        post = torch.exp(ll - frame_ll.unsqueeze(1))  # (n, C)
        total += float(frame_ll.sum())
        count += post.sum(0)
        first += post.T @ x
        second += post.T @ (x * x)
    return EmStats(count, first, second, total, frames.shape[0])


def maximize(gmm: DiagGmm, stats: EmStats, var_floor: Tensor, min_weight: float) -> DiagGmm:
    """The M-step: ``w = n / N``, ``mu = sum gamma x / n``, ``v = sum gamma x^2 / n - mu^2``.

    Gaussians with (almost) no count keep their mean and variance; variances
    are floored at ``var_floor`` (F,), weights at ``min_weight`` (then
    renormalised).
    """
    n = stats.count
    alive = n > 1e-8
    safe = n.clamp(min=1e-8).unsqueeze(1)
    means = torch.where(alive.unsqueeze(1), stats.first / safe, gmm.means)
    variances = torch.where(alive.unsqueeze(1), stats.second / safe - means**2, gmm.variances)
    variances = torch.maximum(variances, var_floor.unsqueeze(0))
    weights = (n / n.sum()).clamp(min=min_weight)
    return DiagGmm(weights / weights.sum(), means, variances)


def em_iterations(gmm: DiagGmm, frames: Tensor, iters: int, var_floor: Tensor, cfg: UbmConfig,
                  history: list[tuple[int, float]], desc: str = "UBM EM") -> DiagGmm:
    """``iters`` EM iterations; appends ``(num_gauss, mean log-likelihood per frame)`` of each E-step to ``history``."""
    for _ in tqdm(range(iters), desc=desc, leave=False):
        stats = accumulate(gmm, frames, cfg.chunk_frames)
        history.append((gmm.num_gauss, stats.log_likelihood / stats.frames))
        gmm = maximize(gmm, stats, var_floor, cfg.min_weight)
    return gmm


def split_gaussians(gmm: DiagGmm, target: int) -> DiagGmm:
    """Splits the heaviest Gaussians until there are ``min(target, 2C)``.

    Each split Gaussian becomes two with half its weight and means
    ``mu +- 0.2 sigma``, the same variance.
    """
    num_split = min(target, 2 * gmm.num_gauss) - gmm.num_gauss
    order = torch.argsort(gmm.weights, descending=True, stable=True)[:num_split]
    offset = SPLIT_OFFSET * gmm.variances[order].sqrt()
    weights = gmm.weights.clone()
    weights[order] /= 2
    means = gmm.means.clone()
    means[order] += offset
    return DiagGmm(torch.cat([weights, weights[order]]), torch.cat([means, gmm.means[order] - offset]),
                   torch.cat([gmm.variances, gmm.variances[order]]))


def single_gaussian(frames: Tensor) -> DiagGmm:
    """The one-Gaussian GMM of (N, F) frames (their mean and variance)."""
    x = frames.to(torch.float64)
    mean = x.mean(0)
    var = ((x - mean) ** 2).mean(0)
    return DiagGmm(torch.ones(1, dtype=torch.float64), mean.unsqueeze(0), var.unsqueeze(0))


def train_ubm(frames: Tensor, cfg: UbmConfig) -> tuple[DiagGmm, list[tuple[int, float]]]:
    """Trains the UBM on (N, F) frames: mixing up by splitting, then EM at the full size.

    Returns:
      The GMM and the EM history: ``(num_gauss, mean log-likelihood per
      frame)`` of every E-step, in order.
    """
    if frames.shape[0] < cfg.num_gauss:
        raise ValueError(f"{frames.shape[0]} frames are too few for {cfg.num_gauss} Gaussians")
    gmm = single_gaussian(frames)
    var_floor = cfg.variance_floor * gmm.variances[0]
    history: list[tuple[int, float]] = []
    while gmm.num_gauss < cfg.num_gauss:
        gmm = split_gaussians(gmm, cfg.num_gauss)
        gmm = em_iterations(gmm, frames, cfg.split_iters, var_floor, cfg, history, f"UBM EM, {gmm.num_gauss} Gaussians")
    gmm = em_iterations(gmm, frames, cfg.num_iters, var_floor, cfg, history, f"UBM EM, {gmm.num_gauss} Gaussians")
    if history:
        log.info("UBM: %d Gaussians, log-likelihood per frame %.3f (first E-step at this size: %.3f)",
                 gmm.num_gauss, history[-1][1], next(ll for n, ll in history if n == gmm.num_gauss))
    return gmm, history
