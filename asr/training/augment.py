"""Data augmentation: SpecAugment masking and speed perturbation.

Speed perturbation changes the number of frames, so frame-level state
alignments of the original audio are stretched with :func:`perturb_alignment`
to follow the perturbed lengths.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from asr.config import parse_config
from asr.errors import ConfigError
from asr.training.config import SpecAugmentConfig

def spec_augment_config(cfg: SpecAugmentConfig | dict[str, Any] | None) -> SpecAugmentConfig:
    """A SpecAugment config, typed and checked (:class:`asr.training.config.SpecAugmentConfig`).

    Raises:
      ConfigError: on an unknown key or a bad value, naming the key.
    """
    if isinstance(cfg, SpecAugmentConfig):
        return cfg
    return parse_config(SpecAugmentConfig, cfg or {}, "spec_augment config")


def _randint(low: int, high: int, generator: torch.Generator | None) -> int:
    """Uniform integer in ``low..high`` inclusive."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def spec_augment(feats: Tensor, cfg: SpecAugmentConfig | dict[str, Any] | None, generator: torch.Generator | None = None) -> Tensor:
    """SpecAugment time and frequency masking of one utterance.

    Each mask has a width drawn uniformly from ``0..max_width`` and a start
    drawn uniformly among the positions where it fits; masked cells are set
    to ``mask_value``.

    Args:
      feats: (T, F) features; not modified.
      cfg: A :class:`SpecAugmentConfig` or its keys as a mapping (missing
        ones take the default; ``None`` means all defaults).
      generator: Source of randomness; the same seed gives the same masks.

    Returns:
      A masked copy of ``feats``.

    Raises:
      ConfigError: on an unknown key or a bad value in ``cfg``.
    """
    c = spec_augment_config(cfg)
    if feats.dim() != 2:
        raise ValueError(f"expected feats of shape (T, F), got {tuple(feats.shape)}")
    out = feats.clone()
    t, f = out.shape
    if t == 0 or f == 0:
        return out
    value = out.mean() if c.mask_value == "mean" else float(c.mask_value)
    max_f = min(c.max_freq_width, f)
    for _ in range(c.num_freq_masks):
        w = _randint(0, max_f, generator)
        s = _randint(0, f - w, generator)
        out[:, s : s + w] = value
    max_t = min(c.max_time_width, t)
    if c.max_time_ratio is not None:
        max_t = min(max_t, int(c.max_time_ratio * t))
    for _ in range(c.num_time_masks):
        w = _randint(0, max_t, generator)
        s = _randint(0, t - w, generator)
        out[s : s + w, :] = value
    return out


def speed_perturb(waveform: Tensor, sample_rate: int, factor: float) -> Tensor:
    """Changes the speed (tempo and pitch) of audio, like ``sox speed``.

    The signal is treated as if recorded at ``sample_rate * factor`` and
    resampled to ``sample_rate``, so it lasts ``1 / factor`` as long
    (Kaldi's 0.9/1.0/1.1 perturbation; same as
    ``torchaudio.transforms.Speed``).

    Args:
      waveform: (..., time) float audio.
      sample_rate: Sample rate of ``waveform`` in Hz (unchanged by this).
      factor: Speed factor, > 0; above 1 is faster (fewer samples).

    Returns:
      The perturbed audio with about ``time / factor`` samples.

    Raises:
      ConfigError: if ``factor`` is not positive (it comes from a config).
    """
    import torchaudio.functional as taf

    if not isinstance(factor, (int, float)) or isinstance(factor, bool) or not factor > 0:
        raise ConfigError(f"speed perturbation: factor must be a positive number, got {factor!r}")
    if factor == 1.0:
        return waveform.clone()
    source = int(round(sample_rate * factor))
    # reduce the ratio so the polyphase resampler's kernel stays small
    g = math.gcd(source, int(sample_rate))
    return taf.resample(waveform, source // g, int(sample_rate) // g)


def perturb_alignment(ali: Tensor, new_T: int) -> Tensor:
    """Stretches a frame-level state alignment to ``new_T`` frames.

    Segment boundaries (runs of equal labels) are mapped to the nearest frame
    at the new rate, i.e. nearest-neighbour resampling of the alignment,
    except that every run keeps at least one frame: an HMM state that
    vanished would make the alignment inconsistent with the topology.

    Args:
      ali: (T,) int64 pdf or transition ids, one per frame.
      new_T: Number of frames of the perturbed utterance.

    Returns:
      (new_T,) int64 alignment with the same sequence of runs.

    Raises:
      ValueError: if ``new_T`` is smaller than the number of runs (some
        state could not keep a frame) or ``ali`` is empty while ``new_T`` is not.
    """
    if ali.dim() != 1:
        raise ValueError(f"expected a 1-D alignment, got shape {tuple(ali.shape)}")
    t = ali.shape[0]
    if new_T == t:
        return ali.clone()
    if t == 0 or new_T <= 0:
        raise ValueError(f"cannot stretch an alignment of {t} frames to {new_T} frames")
    labels, durations = torch.unique_consecutive(ali, return_counts=True)
    k = labels.shape[0]
    if new_T < k:
        raise ValueError(f"cannot stretch an alignment with {k} segments to only {new_T} frames")
    ends = torch.round(torch.cumsum(durations, 0).double() * new_T / t).long()
    ends[-1] = new_T
    # Every run needs >= 1 frame and the last must end at new_T.  With
    # e[i] = ends[i] - i that means: e non-decreasing, e[0] >= 1 and
    # e[-1] == new_T - (k - 1).  A running max then a constant cap gives it
    # (the cap keeps e monotone, and e[-1] was already >= the cap).
    idx = torch.arange(k)
    shifted = torch.cummax((ends - idx).clamp(min=1), 0).values.clamp(max=new_T - (k - 1))
    ends = shifted + idx
    new_durations = torch.diff(ends, prepend=ends.new_zeros(1))
    return torch.repeat_interleave(labels, new_durations)
