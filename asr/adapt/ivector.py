"""The i-vector extractor: a total variability model trained with EM, as Kaldi's ``ivector-extractor-est``.

Model (Kaldi's ``IvectorExtractor`` with ``use_weights=false``, diagonal
covariances).  The UBM features ``x_t`` of an utterance come from Gaussian
``c`` with mean ``M_c w`` and covariance ``Sigma_c``, where ``M_c`` is an
(F, D) block of the total variability matrix and ``w`` the utterance's
i-vector, with prior ``N(m, I)``, ``m = (offset, 0, ..., 0)``: the first
column of ``M_c`` times the offset plays the UBM mean.

Statistics (UBM posteriors ``gamma_tc``, top-N pruned and scaled by
``posterior_scale``): ``n_c = sum_t gamma_tc``, ``X_c = sum_t gamma_tc x_t``.

E-step (posterior of ``w``)::

    L = I + sum_c n_c M_c^T Sigma_c^-1 M_c        (precision, D x D)
    b = m + sum_c M_c^T Sigma_c^-1 X_c
    E[w] = L^-1 b,  Cov[w] = L^-1

M-step, over the utterances u: ``Y_c = sum_u X_c(u) E[w_u]^T``,
``R_c = sum_u n_c(u) E[w_u w_u^T]``, ``M_c = Y_c R_c^-1``; diagonal
``Sigma_c = (S_c - diag(M_c Y_c^T)) / n_c`` with ``S_c = sum_t gamma_tc x_t^2``,
floored; and, as Kaldi's ``UpdatePrior``, the prior's maximum-likelihood
mean and covariance, turned back into ``N(offset' e_1, I)`` by a linear map of
``w`` that ``M`` absorbs.

The objective is the marginal log-likelihood of the statistics (``w``
integrated out), per frame of (scaled) count::

    sum_u [-m^T m / 2 + b_u^T L_u^-1 b_u / 2 - log|L_u| / 2]
      - 1/2 sum_c [n_c (F log 2pi + log|Sigma_c|) + sum_f S_cf / Sigma_cf]

which EM never decreases (tests check it).  Everything is float64.

Extraction returns ``E[w] - m`` (the prior mean subtracted, so i-vectors are
about zero-mean with unit variance: a well-scaled network input).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm import tqdm

from asr.adapt.config import ExtractorConfig
from asr.adapt.ubm import LOG_2PI, DiagGmm

log = logging.getLogger("asr.adapt.ivector")

#: Eigenvalues of the prior covariance are floored at this before whitening.
PRIOR_EIG_FLOOR = 1e-10


@dataclass
class UtteranceStats:
    """Statistics of a set of utterances (one row each), stored float32 to halve memory.

    Attributes:
      count: (U, C) zeroth order ``n_c(u)``.
      first: (U, C, F) first order ``X_c(u)``.
      second: (C, F) float64 second order ``S_c``, summed over all utterances.
    """

    count: Tensor
    first: Tensor
    second: Tensor

    @property
    def num_utts(self) -> int:
        return self.count.shape[0]


def sparse_stats(idx: Tensor, post: Tensor, x: Tensor, num_gauss: int) -> tuple[Tensor, Tensor]:
    """``n_c = sum_t gamma_tc`` (C,) and ``X_c = sum_t gamma_tc x_t`` (C, F) from top-N posteriors.

    Args:
      idx: (T, N) selected Gaussians; post: (T, N) their (scaled) posteriors; x: (T, F) frames.
    """
    flat = idx.reshape(-1)
    count = torch.zeros(num_gauss, dtype=x.dtype).index_add_(0, flat, post.reshape(-1).to(x.dtype))
    weighted = (post.to(x.dtype).unsqueeze(2) * x.unsqueeze(1)).reshape(-1, x.shape[1])
    first = torch.zeros(num_gauss, x.shape[1], dtype=x.dtype).index_add_(0, flat, weighted)
    return count, first


@dataclass
class IvectorExtractor:
    """Total variability matrix, covariances and prior offset (float64).

    Attributes:
      T: (C, F, D) the ``M_c`` blocks.
      sigma: (C, F) diagonal covariances.
      prior_offset: First coordinate of the prior mean.
    """

    T: Tensor
    sigma: Tensor
    prior_offset: float

    def __post_init__(self) -> None:
        self._cache: dict[str, Tensor] = {}

    @property
    def num_gauss(self) -> int:
        return self.T.shape[0]

    @property
    def feat_dim(self) -> int:
        return self.T.shape[1]

    @property
    def ivector_dim(self) -> int:
        return self.T.shape[2]

    def prior_mean(self) -> Tensor:
        """(D,) ``m = (offset, 0, ..., 0)`` (cached: do not modify)."""
        if "m" not in self._cache:
            m = torch.zeros(self.ivector_dim, dtype=torch.float64)
            m[0] = self.prior_offset
            self._cache["m"] = m
        return self._cache["m"]

    @property
    def linear_term(self) -> Tensor:
        """(C*F, D) ``Sigma_c^-1 M_c`` stacked: ``b = m + X.flatten() @ this``."""
        if "P" not in self._cache:
            self._cache["P"] = (self.T / self.sigma.unsqueeze(2)).reshape(-1, self.ivector_dim)
        return self._cache["P"]

    @property
    def quadratic_term(self) -> Tensor:
        """(C, D*D) ``M_c^T Sigma_c^-1 M_c`` flattened: ``L = I + (n @ this).view(D, D)``."""
        if "U" not in self._cache:
            u = torch.einsum("cfd,cfe->cde", self.T / self.sigma.unsqueeze(2), self.T)
            self._cache["U"] = u.reshape(self.num_gauss, -1)
        return self._cache["U"]

    def packed_terms(self) -> tuple[Tensor, Tensor]:
        """Float32 copies for online extraction: (C, D(D+1)/2) packed lower triangles of ``U_c`` and (C*F, D) ``P``.

        The packed rows halve what each (block, Gaussian) pair reads; see
        :func:`unpack_symmetric` for the layout.
        """
        if "packed" not in self._cache:
            u = self.quadratic_term[:, lower_index(self.ivector_dim)]
            self._cache["packed"] = (u.float().contiguous(), self.linear_term.float().contiguous())
        return self._cache["packed"]

    def projected(self, count: Tensor, first: Tensor) -> tuple[Tensor, Tensor]:
        """Statistics in i-vector space: ``(sum_c n_c U_c, sum_c P_c^T X_c)``.

        Args:
          count: (..., C) zeroth order; first: (..., C, F) first order.

        Returns:
          (..., D, D) quadratic and (..., D) linear terms (float64).
        """
        d = self.ivector_dim
        quad = (count.to(torch.float64) @ self.quadratic_term).reshape(*count.shape[:-1], d, d)
        lin = first.to(torch.float64).reshape(*first.shape[:-2], -1) @ self.linear_term
        return quad, lin

    def posterior(self, quad: Tensor, lin: Tensor) -> tuple[Tensor, Tensor]:
        """``E[w]`` (..., D) and the Cholesky factor of ``L = I + quad`` (..., D, D).

        Only the lower triangle of ``quad`` is read (LAPACK's ``potrf``).
        """
        precision = quad + torch.eye(self.ivector_dim, dtype=torch.float64)
        # cholesky_ex: no per-matrix error check (a third of the time of 100x100 factorisations); L >= I
        # is positive definite unless the statistics hold NaN/Inf, which is checked once here
        chol, info = torch.linalg.cholesky_ex(precision)
        if bool(info.any()):
            raise ValueError("i-vector precision matrix is not positive definite (NaN or Inf statistics?)")
        b = (lin + self.prior_mean()).unsqueeze(-1)
        # two triangular solves: L y = b, L^T w = y (cheaper than cholesky_solve for these sizes)
        y = torch.linalg.solve_triangular(chol, b, upper=False)
        return torch.linalg.solve_triangular(chol.mT, y, upper=True).squeeze(-1), chol

    def ivector(self, quad: Tensor, lin: Tensor) -> Tensor:
        """The i-vector ``E[w] - m`` (..., D) of projected statistics."""
        return self.posterior(quad, lin)[0] - self.prior_mean()

    def state_dict(self) -> dict[str, Tensor]:
        return {"T": self.T, "sigma": self.sigma, "prior_offset": torch.tensor(self.prior_offset, dtype=torch.float64)}


@functools.lru_cache(maxsize=8)
def lower_index(dim: int) -> Tensor:
    """Flat indices ``i * dim + j`` of the lower triangle (i >= j), in ``torch.tril_indices`` order."""
    rows, cols = torch.tril_indices(dim, dim)
    return rows * dim + cols


def packed_lower(full: Tensor) -> Tensor:
    """(..., D, D) -> (..., D(D+1)/2): the lower triangle in ``torch.tril_indices`` order."""
    d = full.shape[-1]
    return full.reshape(*full.shape[:-2], d * d)[..., lower_index(d)]


def unpack_lower(packed: Tensor, dim: int) -> Tensor:
    """(B, dim(dim+1)/2) packed lower triangles -> (B, dim, dim) with the upper triangle left 0.

    Enough for ``torch.linalg.cholesky``, which reads only the lower triangle.
    """
    return packed.new_zeros(packed.shape[0], dim * dim).index_copy_(1, lower_index(dim), packed).view(-1, dim, dim)


def symmetrize_lower(lower: Tensor) -> Tensor:
    """The symmetric matrix whose lower triangle ``lower`` (..., D, D) holds (its upper triangle 0)."""
    full = lower + lower.transpose(-2, -1)
    full.diagonal(dim1=-2, dim2=-1).mul_(0.5)  # the diagonal was added twice
    return full


def init_extractor(ubm: DiagGmm, cfg: ExtractorConfig) -> IvectorExtractor:
    """Kaldi's ``ivector-extractor-init``: ``M_c[:, 0] = mu_c / offset``, other columns random.

    The random columns are ``N(0, 1) * sqrt(v_c) / sqrt(D)`` from ``cfg.seed``;
    ``Sigma_c`` starts at the UBM variances.
    """
    gen = torch.Generator().manual_seed(cfg.seed)
    c, f, d = ubm.num_gauss, ubm.dim, cfg.ivector_dim
    T = torch.randn(c, f, d, generator=gen, dtype=torch.float64) * (ubm.variances.sqrt() / d**0.5).unsqueeze(2)
    T[:, :, 0] = ubm.means / cfg.prior_offset
    return IvectorExtractor(T, ubm.variances.clone(), cfg.prior_offset)


@dataclass
class EStepStats:
    """What the M-step needs from one E-step, and the objective."""

    Y: Tensor  # (C, F, D) sum_u X_c(u) E[w_u]^T
    R: Tensor  # (C, D, D) sum_u n_c(u) E[w_u w_u^T]
    sum_w: Tensor  # (D,) sum_u E[w_u]
    sum_ww: Tensor  # (D, D) sum_u E[w_u w_u^T]
    objective: float  # marginal log-likelihood per (scaled) frame


def expectation(ext: IvectorExtractor, stats: UtteranceStats, chunk: int = 256) -> EStepStats:
    """The E-step over all utterances, ``chunk`` at a time; see the module docstring."""
    c, f, d = ext.num_gauss, ext.feat_dim, ext.ivector_dim
    Y = torch.zeros(c * f, d, dtype=torch.float64)
    R = torch.zeros(c, d * d, dtype=torch.float64)
    sum_w = torch.zeros(d, dtype=torch.float64)
    sum_ww = torch.zeros(d, d, dtype=torch.float64)
    m = ext.prior_mean()
    objective = 0.0
    for start in range(0, stats.num_utts, chunk):
        n = stats.count[start : start + chunk].to(torch.float64)
        X = stats.first[start : start + chunk].to(torch.float64)
        quad, lin = ext.projected(n, X)
        w, chol = ext.posterior(quad, lin)
        b = lin + m
        log_det = 2 * chol.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        objective += float((0.5 * (b * w).sum(-1) - 0.5 * log_det).sum() - 0.5 * len(n) * float(m @ m))
        ww = torch.cholesky_inverse(chol) + w.unsqueeze(2) * w.unsqueeze(1)  # (B, D, D) E[w w^T]
        Y += X.reshape(len(n), -1).T @ w
        R += n.T @ ww.reshape(len(n), -1)
        sum_w += w.sum(0)
        sum_ww += ww.sum(0)
    count = stats.count.to(torch.float64).sum(0)
    objective -= 0.5 * float((count * (f * LOG_2PI + ext.sigma.log().sum(1))).sum()
                             + (stats.second / ext.sigma).sum())
    return EStepStats(Y.reshape(c, f, d), R.reshape(c, d, d), sum_w, sum_ww, objective / float(count.sum()))


def update_prior(T: Tensor, e: EStepStats, num_utts: int) -> tuple[Tensor, float]:
    """Kaldi's ``UpdatePrior``: re-estimates the prior, then maps it back to ``N(offset e_1, I)``.

    With the prior's ML mean ``mu`` and covariance ``P = Q diag(s) Q^T``,
    ``A = H diag(s)^-1/2 Q^T`` (``H`` the Householder reflection taking
    ``diag(s)^-1/2 Q^T mu`` to ``offset e_1``) sends ``w ~ N(mu, P)`` to
    ``N(offset e_1, I)``; ``M_c A^-1`` keeps every ``M_c w`` unchanged.

    Returns:
      The new T (C, F, D) and prior offset.
    """
    mean = e.sum_w / num_utts
    cov = e.sum_ww / num_utts - torch.outer(mean, mean)
    s, Q = torch.linalg.eigh(cov)
    s = s.clamp(min=PRIOR_EIG_FLOOR)
    m1 = (Q.T @ mean) / s.sqrt()
    offset = float(m1.norm())
    v = m1.clone()
    v[0] -= offset
    H = torch.eye(len(m1), dtype=torch.float64)
    if float(v @ v) > 1e-20:
        H = H - 2 * torch.outer(v, v) / (v @ v)
    A_inv = Q @ torch.diag(s.sqrt()) @ H  # A = H diag(s^-1/2) Q^T; H^-1 = H
    return T @ A_inv, offset


def maximization(ext: IvectorExtractor, e: EStepStats, stats: UtteranceStats, cfg: ExtractorConfig,
                 sigma_floor: Tensor) -> IvectorExtractor:
    """The M-step: ``M_c = Y_c R_c^-1``, diagonal ``Sigma_c`` floored at ``sigma_floor`` (F,), then the prior.

    Gaussians with a count below ``cfg.min_count`` keep their ``M_c`` and
    ``Sigma_c``.  The floor stays fixed over the iterations, so each floored
    update is the constrained maximum and EM stays monotone.
    """
    count = stats.count.to(torch.float64).sum(0)
    update = count >= max(cfg.min_count, 1e-8)
    T_new = torch.linalg.solve(e.R[update], e.Y[update].transpose(1, 2)).transpose(1, 2)
    T = ext.T.clone()
    T[update] = T_new
    sigma = ext.sigma.clone()
    if cfg.update_sigma:
        raw = (stats.second[update] - (T_new * e.Y[update]).sum(2)) / count[update].unsqueeze(1)
        sigma[update] = torch.maximum(raw, sigma_floor.unsqueeze(0))
    offset = ext.prior_offset
    if cfg.update_prior:
        T, offset = update_prior(T, e, stats.num_utts)
    return IvectorExtractor(T, sigma, offset)


def train_extractor(ubm: DiagGmm, stats: UtteranceStats, cfg: ExtractorConfig) -> tuple[IvectorExtractor, list[float]]:
    """``cfg.num_iters`` EM iterations from :func:`init_extractor`.

    Returns:
      The extractor and the objective of each E-step (one per iteration,
      plus the final model's).
    """
    ext = init_extractor(ubm, cfg)
    # As Kaldi, a fraction of the average covariance (here the UBM's, weighted by the weights).
    sigma_floor = cfg.variance_floor * (ubm.weights.unsqueeze(1) * ubm.variances).sum(0)
    history: list[float] = []
    for it in tqdm(range(cfg.num_iters), desc="i-vector extractor EM", leave=False):
        e = expectation(ext, stats)
        history.append(e.objective)
        ext = maximization(ext, e, stats, cfg, sigma_floor)
        log.info("extractor iteration %d: objective %.4f per frame, prior offset %.2f", it + 1, e.objective,
                 ext.prior_offset)
    history.append(expectation(ext, stats).objective)
    return ext, history
