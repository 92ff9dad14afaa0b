"""i-vector extraction: online (Kaldi's online2, cumulative) and offline.

Online, for one utterance of T frames and period p, row ``k`` of the result
(``k = 0 .. ceil(T/p) - 1``) is estimated from frames ``0 .. k*p`` of the
utterance, plus whatever an :class:`IvectorState` carries over from earlier
utterances of the same (pseudo-)speaker: Kaldi's ``ivector-extract-online2``
layout, so frame ``t`` of the network input uses row ``t // p``
(:func:`frame_ivectors`), estimated from frames it has already seen.

The statistics are accumulated per block of p frames for the (block,
Gaussian) pairs that occur, projected to i-vector space by two sparse
products (float32), cumulated in float64 into a (K, D, D) precision and a
(K, D) linear term, and solved for all rows at once (batched Cholesky).  The
state after an utterance holds its projected statistics, so a session (a
speaker's utterances in order, or ``Recognizer`` calls) continues from it;
stats of more than ``max_remembered_frames`` frames are scaled down, as
Kaldi's online2 does.

Offline extraction sums the statistics of the given utterances at once; for
one utterance it equals the online state at its end (a test checks this to
1e-4).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from asr.adapt.ivector import packed_lower, sparse_stats, symmetrize_lower, unpack_lower
from asr.adapt.model import IvectorModel


@dataclass
class IvectorState:
    """Adaptation state carried between utterances: projected statistics of the frames seen.

    Attributes:
      frames: Frames accumulated (before any scaling down).
      quad: (D, D) ``sum_c n_c M_c^T Sigma_c^-1 M_c``.
      lin: (D,) ``sum_c M_c^T Sigma_c^-1 X_c``.
    """

    frames: float
    quad: Tensor
    lin: Tensor

    @classmethod
    def empty(cls, dim: int) -> "IvectorState":
        return cls(0.0, torch.zeros(dim, dim, dtype=torch.float64), torch.zeros(dim, dtype=torch.float64))

    def remembered(self, max_frames: int) -> "IvectorState":
        """The state with its statistics scaled to at most ``max_frames`` frames (0: unlimited)."""
        if max_frames <= 0 or self.frames <= max_frames:
            return self
        scale = max_frames / self.frames
        return IvectorState(float(max_frames), self.quad * scale, self.lin * scale)


def block_ids(num_frames: int, period: int) -> Tensor:
    """(T,) block of each frame: 0 for frame 0, ``ceil(t / p)`` after, so block k ends at frame k*p."""
    t = torch.arange(num_frames)
    return torch.div(t + period - 1, period, rounding_mode="floor")


def block_increments(model: IvectorModel, feats: Tensor) -> tuple[Tensor, Tensor, int]:
    """Projected statistics of each block of frames (block k ends at frame k*period).

    Only the (block, Gaussian) pairs that occur are touched: their counts
    and first-order statistics, then two sparse (CSR) products with the
    extractor's packed ``U`` and its ``P`` (float32; a pair reads its
    Gaussian's D(D+1)/2 + F*D numbers, which is most of the cost).

    Returns:
      ``(quad, lin, T)``: (B, D(D+1)/2) packed and (B, D) float64
      increments per block, B = ``block_ids(T)[-1] + 1``, and T.
    """
    ext = model.extractor
    c, f = ext.num_gauss, ext.feat_dim
    x, idx, post = model.posteriors(feats)
    blocks = block_ids(x.shape[0], model.period)
    num_blocks = int(blocks[-1]) + 1
    keep = post > 0  # pruned posteriors are 0: no pair for them
    pair_key = (blocks.unsqueeze(1) * c + idx)[keep]
    pairs, which = torch.unique(pair_key, return_inverse=True)
    count = torch.zeros(len(pairs)).index_add_(0, which, post[keep])
    frame = torch.arange(x.shape[0]).unsqueeze(1).expand_as(idx)[keep]
    first = torch.zeros(len(pairs), f).index_add_(0, which, post[keep].unsqueeze(1) * x[frame])
    block, gauss = torch.div(pairs, c, rounding_mode="floor"), pairs % c
    u_packed, p_flat = ext.packed_terms()
    # The pairs come sorted by (block, Gaussian): CSR rows are blocks, with no sorting to do.
    row_starts = torch.zeros(num_blocks + 1, dtype=torch.int64)
    row_starts[1:] = torch.bincount(block, minlength=num_blocks).cumsum(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        quad = torch.sparse_csr_tensor(row_starts, gauss, count, (num_blocks, c)) @ u_packed
        cols = (gauss.unsqueeze(1) * f + torch.arange(f)).reshape(-1)
        lin = torch.sparse_csr_tensor(row_starts * f, cols, first.reshape(-1), (num_blocks, c * f)) @ p_flat
    return quad.double(), lin.double(), x.shape[0]


def online_ivectors(model: IvectorModel, feats: Tensor, state: IvectorState | None = None) -> tuple[Tensor, IvectorState]:
    """Online i-vectors of one utterance, one row per period.

    Args:
      model: The extractor.
      feats: (T, F) raw features (no CMVN), T >= 1.
      state: The speaker's adaptation state so far (None: a new speaker).

    Returns:
      ``(rows, state)``: (ceil(T / p), D) float32 i-vectors, row k from
      frames 0..k*p (and ``state``), and the state after all T frames.
    """
    d, p = model.ivector_dim, model.period
    prev = (state or IvectorState.empty(d)).remembered(model.config.online.max_remembered_frames)
    quad_inc, lin_inc, n_frames = block_increments(model, feats)
    num_rows = -(-n_frames // p)
    # cumulated in float64, packed; blocks past the last row (frames after it) only feed the state
    quad, lin = quad_inc.cumsum(0), lin_inc.cumsum(0)
    if prev.frames > 0:
        quad += packed_lower(prev.quad)
        lin += prev.lin
    lower = unpack_lower(quad, d)  # the Cholesky factorisation reads the lower triangle only
    rows = model.extractor.ivector(lower[:num_rows], lin[:num_rows]).to(torch.float32)
    return rows, IvectorState(prev.frames + n_frames, symmetrize_lower(lower[-1]), lin[-1])


def offline_ivector(model: IvectorModel, utterances: list[Tensor]) -> Tensor:
    """The i-vector of all frames of ``utterances`` ((T, F) raw features each) at once: (D,) float32."""
    ext = model.extractor
    count = torch.zeros(ext.num_gauss, dtype=torch.float64)
    first = torch.zeros(ext.num_gauss, ext.feat_dim, dtype=torch.float64)
    for feats in utterances:
        x, idx, post = model.posteriors(feats)
        n, X = sparse_stats(idx, post.double(), x.double(), ext.num_gauss)
        count += n
        first += X
    quad, lin = ext.projected(count, first)
    return ext.ivector(quad, lin).to(torch.float32)


def frame_ivectors(rows: Tensor, period: int, num_frames: int) -> Tensor:
    """(T, D) per-frame i-vectors: frame t takes row ``min(t // period, K - 1)`` of (K, D) ``rows``.

    An offline i-vector (one row) thus serves every frame.
    """
    idx = torch.div(torch.arange(num_frames), period, rounding_mode="floor").clamp(max=rows.shape[0] - 1)
    return rows[idx]


def pseudo_speakers(spk2utt: dict[str, list[str]], utts_per_spk_max: int) -> dict[str, list[str]]:
    """Kaldi's ``modify_speaker_info.sh --utts-per-spk-max N``: each speaker's utterances, in order, in groups of N.

    Pseudo-speaker ids are ``<spk>-<j>`` (j from 1, zero-padded to the
    widest); ``utts_per_spk_max`` 0 keeps the real speakers.
    """
    if utts_per_spk_max <= 0:
        return {s: list(u) for s, u in spk2utt.items()}
    out: dict[str, list[str]] = {}
    for spk, utts in spk2utt.items():
        groups = [utts[i : i + utts_per_spk_max] for i in range(0, len(utts), utts_per_spk_max)]
        width = len(str(len(groups)))
        for j, group in enumerate(groups, 1):
            out[f"{spk}-{j:0{width}d}"] = group
    return out
