"""Sliding-window CMVN, frame by frame or in one pass: one implementation for both.

It follows Kaldi's ``apply-cmvn-sliding`` (``SlidingWindowCmnInternal``) and
adds online2's prior (``OnlineCmvn`` with ``--global-cmvn-stats``):

- Frame ``t`` of an utterance of ``n`` frames is normalised with the
  statistics of the frames ``[start, end)``:

  - centred: ``start = t - window // 2``, ``end = start + window``;
  - not centred: ``start = t - window``, ``end = t + 1`` (Kaldi's window
    holds ``window + 1`` frames here);

  a window starting before frame 0 is shifted right (``end -= start``,
  ``start = 0``); a non-centred window then ends at
  ``max(t + 1, min_window)`` (``--min-cmn-window``: look-ahead at the start);
  a window ending after frame ``n`` is shifted left (``start -= end - n``,
  ``end = n``, ``start >= 0``).
- While the window holds ``c < window`` frames, the prior (global CMVN stats of
  the training data, Kaldi's 2-row format) is added with a weight of
  ``min(prior_frames, window - c)`` frames, as online2's
  ``SmoothOnlineCmvnStats`` adds its global stats.
- ``x - mean`` (Kaldi's default) or, with ``norm_vars``, ``(x - mean) / std``
  with the variance floored at 1e-10; a 1-frame window with ``norm_vars``
  gives 0, as in Kaldi.

:class:`SlidingCmvn` emits frame ``t`` as soon as its window's last frame has
arrived (at once for a causal window), so a stream normalised chunk by chunk
gives exactly the frames of :func:`sliding_cmvn` over the whole utterance:
window sums are differences of one running ``numpy`` cumulative sum
(sequential float64 additions, the same whatever the chunking).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from asr.config import check_range, option, parse_config
from asr.errors import ConfigError

log = logging.getLogger("asr.features.online_cmvn")

#: Kaldi floors the sliding-window variance at this value.
VARIANCE_FLOOR = 1e-10


@dataclass
class SlidingCmvnConfig:
    """The ``sliding_cmvn`` section of a feature config (``asr compute-feats --cmvn sliding``)."""

    window: int = option(600, "frames of the window (Kaldi's --cmn-window)")
    center: bool = option(
        False, "centre the window on the frame (window/2 frames of look-ahead); false: it ends at the frame")
    min_window: int = option(
        0, "a non-centred window near the start looks ahead to this many frames (apply-cmvn-sliding's "
        "--min-cmn-window, 100 there); 0 keeps it causal, for streaming")
    prior_frames: float = option(
        200.0, "weight in frames of the prior (the training data's global CMVN stats) while the window is short "
        "of `window` frames, at most the missing count (online2's --global-frames); 0: apply-cmvn-sliding")

    def check(self, where: str, prefix: str = "") -> None:
        check_range(where, f"{prefix}window", self.window >= 1, "a positive integer", self.window)
        check_range(where, f"{prefix}min_window", 0 <= self.min_window <= self.window,
                    f"in 0..window ({self.window})", self.min_window)
        check_range(where, f"{prefix}prior_frames", self.prior_frames >= 0, "a number >= 0", self.prior_frames)

    def lookahead(self) -> int:
        """Most frames past ``t`` that frame ``t`` waits for (before the stream ends)."""
        return self.window - self.window // 2 - 1 if self.center else max(0, self.min_window - 1)


def sliding_config(feature_config: dict[str, Any], where: str = "feature config") -> SlidingCmvnConfig:
    """The checked ``sliding_cmvn`` section of a feature config (defaults when absent)."""
    section = feature_config.get("sliding_cmvn")
    if isinstance(section, SlidingCmvnConfig):
        return section
    return parse_config(SlidingCmvnConfig, section, where, prefix="sliding_cmvn.")


def check_stats(stats: Any, dim: int | None, where: str) -> np.ndarray:
    """Kaldi CMVN stats as a (2, D+1) float64 array with a positive count.

    Raises:
      ConfigError: naming ``where`` for another shape or a count below 1.
    """
    arr = np.asarray(stats.numpy() if isinstance(stats, torch.Tensor) else stats, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != 2 or (dim is not None and arr.shape[1] != dim + 1):
        want = f"(2, {dim + 1})" if dim is not None else "(2, dim+1)"
        raise ConfigError(f"{where}: CMVN stats must be a {want} matrix (Kaldi's format), got shape {arr.shape}")
    if not arr[0, -1] >= 1.0:
        raise ConfigError(f"{where}: CMVN stats have a frame count of {arr[0, -1]:g} (need at least 1)")
    return arr


def feature_prior(
    feature_config: dict[str, Any], dim: int | None = None, where: str = "feature config"
) -> np.ndarray | None:
    """The ``cmvn_prior`` stats recorded in a feature config, or None."""
    prior = feature_config.get("cmvn_prior")
    return None if prior is None else check_stats(prior, dim, f"{where}: cmvn_prior")


def window_bounds(t: np.ndarray, cfg: SlidingCmvnConfig, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``(start, end)`` of the windows of frames ``t`` (int64 arrays); ``n`` None: the stream goes on."""
    w = cfg.window
    if cfg.center:
        start = t - w // 2
        end = start + w
    else:
        start = t - w
        end = t + 1
    shift = np.minimum(start, 0)
    start, end = start - shift, end - shift
    if not cfg.center:
        end = np.maximum(t + 1, cfg.min_window)
    if n is not None:
        over = np.maximum(end - n, 0)
        start, end = np.maximum(start - over, 0), end - over
    return start, end


class SlidingCmvn:
    """Online sliding-window CMVN: feed raw frames, get normalised ones.

    Args:
      cfg: Window options.
      dim: Feature dimension D.
      norm_vars: Normalise variances too.
      prior: (2, D+1) global CMVN stats; required when ``cfg.prior_frames > 0``
        is to have an effect (without it the prior is left out).

    Memory stays bounded: only the cumulative sums of the last ``2 * window + 1``
    frames and the frames not yet emitted are kept.
    """

    def __init__(self, cfg: SlidingCmvnConfig, dim: int, norm_vars: bool = False, prior: np.ndarray | None = None):
        self.cfg = cfg
        self.dim = int(dim)
        self.norm_vars = bool(norm_vars)
        self.prior = None if prior is None or cfg.prior_frames <= 0 else check_stats(prior, self.dim, "CMVN prior")
        # cumsum rows k = c0 .. c0+len-1 hold the sums of frames [0, k) (row 0 is zeros)
        self._cum = np.zeros((1, 2, self.dim), dtype=np.float64)
        self._c0 = 0
        self._pending = np.zeros((0, self.dim), dtype=np.float64)  # frames next_out .. received-1
        self.received = 0
        self.next_out = 0
        self.finished = False

    def accept(self, feats: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Adds (n, D) raw frames; returns the (m, D) float32 frames now final (m may be 0)."""
        if self.finished:
            raise RuntimeError("SlidingCmvn.accept after finish")
        x = np.asarray(feats.numpy() if isinstance(feats, torch.Tensor) else feats, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected frames of shape (n, {self.dim}), got {x.shape}")
        if len(x):
            both = np.stack([x, x * x], axis=1)  # (n, 2, D): sums and sums of squares
            grown = np.add.accumulate(np.concatenate([self._cum[-1:], both]), axis=0)[1:]
            self._cum = np.concatenate([self._cum, grown])
            self._pending = np.concatenate([self._pending, x])
            self.received += len(x)
        return self._emit(None)

    def finish(self) -> torch.Tensor:
        """The frames still waiting for look-ahead, normalised with the utterance's end known."""
        self.finished = True
        return self._emit(self.received)

    def _ready(self, n: int | None) -> int:
        """How many pending frames can be normalised now."""
        if n is not None:
            return self.received - self.next_out
        t = np.arange(self.next_out, self.received)
        _, end = window_bounds(t, self.cfg, None)
        return int((end <= self.received).sum())  # end is non-decreasing in t

    def _emit(self, n: int | None) -> torch.Tensor:
        m = self._ready(n)
        if m == 0:
            return torch.zeros(0, self.dim)
        t = np.arange(self.next_out, self.next_out + m)
        start, end = window_bounds(t, self.cfg, n)
        stats = self._cum[end - self._c0] - self._cum[start - self._c0]  # (m, 2, D)
        count = (end - start).astype(np.float64)
        out = self._normalise(self._pending[:m], stats, count)
        self.next_out += m
        self._pending = self._pending[m:]
        self._trim()
        return torch.from_numpy(out)

    def _normalise(self, x: np.ndarray, stats: np.ndarray, count: np.ndarray) -> np.ndarray:
        """(m, D) frames normalised with their (m, 2, D) window sums of ``count`` frames."""
        if self.prior is not None:
            # online2: the prior fills the window up to `window` frames, with at most prior_frames
            weight = np.clip(np.minimum(self.cfg.prior_frames, self.cfg.window - count), 0.0, None)
            scale = weight / self.prior[0, -1]
            prior = np.stack([self.prior[0, :-1], self.prior[1, :-1]])  # (2, D)
            stats = stats + scale[:, None, None] * prior[None]
            count = count + weight
        mean = stats[:, 0] / count[:, None]
        out = x - mean
        if self.norm_vars:
            var = np.maximum(stats[:, 1] / count[:, None] - mean * mean, VARIANCE_FLOOR)
            out = out / np.sqrt(var)
            out[count == 1.0] = 0.0  # Kaldi: a single frame has no variance
        return out.astype(np.float32)

    def _trim(self) -> None:
        """Drops cumulative sums no future window can start at (a window ending at the
        utterance's end can reach back up to ``window`` frames before its usual start)."""
        if self.received == self.next_out and self.finished:
            return
        first_start, _ = window_bounds(np.array([self.next_out]), self.cfg, None)
        keep_from = max(0, int(first_start[0]) - self.cfg.window - 1)
        if keep_from > self._c0:
            self._cum = self._cum[keep_from - self._c0:]
            self._c0 = keep_from


def sliding_cmvn(
    feats: torch.Tensor | np.ndarray, cfg: SlidingCmvnConfig, norm_vars: bool = False, prior: np.ndarray | None = None
) -> torch.Tensor:
    """Sliding-window CMVN of a whole (T, D) utterance (what :class:`SlidingCmvn` gives, frame by frame)."""
    x = feats if isinstance(feats, torch.Tensor) else torch.as_tensor(np.asarray(feats))
    cmvn = SlidingCmvn(cfg, x.shape[1], norm_vars, prior)
    return torch.cat([cmvn.accept(x), cmvn.finish()])


def sliding_cmvn_for(feature_config: dict[str, Any], where: str = "feature config"):
    """A function ``feats -> feats`` applying a feature config's sliding CMVN (window, norm_vars, prior)."""
    cfg = sliding_config(feature_config, where)
    norm_vars = bool(feature_config.get("norm_vars", False))
    prior = feature_prior(feature_config, None, where)
    if prior is None and cfg.prior_frames > 0:
        log.warning("%s: sliding CMVN without a cmvn_prior: the first frames use only their own statistics", where)

    def apply(feats: torch.Tensor) -> torch.Tensor:
        return sliding_cmvn(feats, cfg, norm_vars, prior)

    return apply


def global_stats(mats) -> np.ndarray:
    """Kaldi CMVN stats summed over an iterable of (T, D) matrices (the prior of training data)."""
    from asr.features.cmvn import cmvn_stats

    total = None
    for mat in mats:
        s = cmvn_stats(mat)
        total = s if total is None else total + s
    if total is None:
        raise ConfigError("no features to take global CMVN stats over")
    return total


def stats_to_yaml(stats: np.ndarray) -> list[list[float]]:
    """Stats as plain nested lists (exact float64 values: YAML writes repr)."""
    return [[float(v) for v in row] for row in np.asarray(stats, dtype=np.float64)]


def sliding_record(section: Any, index: dict[str, str], prior: np.ndarray | None, where: str) -> dict[str, Any]:
    """What ``asr compute-feats --cmvn sliding`` records in ``conf/feats.yaml`` beside ``cmvn: sliding``.

    Args:
      section: The feature config's ``sliding_cmvn`` section (None: defaults).
      index: ``{utt: "ark:offset"}`` of the raw features just written.
      prior: Stats to record as the prior (e.g. the training data's); None:
        the global stats of these features (right for training data).
      where: Named in errors.

    Returns:
      ``{"sliding_cmvn": {...}, "cmvn_prior": [[...], [...]]}``, plain YAML values.
    """
    from dataclasses import asdict

    from asr.features.ark import read_matrix

    cfg = sliding_config({"sliding_cmvn": section}, where)
    mats = (read_matrix(spec, f"{where} '{utt}'") for utt, spec in sorted(index.items()))
    if prior is None:
        prior = global_stats(mats)
    else:
        dim = next(mats).shape[1]
        prior = check_stats(prior, dim, f"{where}: CMVN prior")
    return {"sliding_cmvn": asdict(cfg), "cmvn_prior": stats_to_yaml(prior)}
