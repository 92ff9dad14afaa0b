"""Training data: features, transcripts and alignments in length-sorted batches."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from asr.data.batching import length_batches
from asr.data.datadir import DataDir
from asr.errors import DataDirError
from asr.features.extract import load_features

log = logging.getLogger("asr.training.data")


@dataclass
class Utterance:
    utt_id: str
    speaker: str
    feats: torch.Tensor  # (T, F)
    words: list[str]
    alignment: torch.Tensor | None = None  # (T',) pdf ids from 1
    ivectors: torch.Tensor | None = None  # (K, D) online i-vectors, one row per ivector_period frames
    ivector_period: int = 0


@dataclass
class Batch:
    """A batch sorted by decreasing length (as k2 requires)."""

    utt_ids: list[str]
    feats: torch.Tensor  # (N, T, F), zero-padded
    lengths: torch.Tensor  # (N,)
    words: list[list[str]]
    alignments: list[torch.Tensor] | None
    ivectors: torch.Tensor | None = None  # (N, T, D) per input frame, zero-padded (models with ivector_dim > 0)

    @property
    def num_frames(self) -> int:
        return int(self.lengths.sum())


def load_utterances(data_dir: str | Path, alignments: dict[str, torch.Tensor] | None = None) -> list[Utterance]:
    """Loads every utterance of a data dir (with CMVN applied) into memory.

    Utterances without an alignment (when ``alignments`` is given) are left
    out and counted in the log: they could not be aligned.
    """
    dd = DataDir.load(data_dir)
    out, missing = [], 0
    for utt, feats in load_features(dd.path):
        ali = None
        if alignments is not None:
            ali = alignments.get(utt)
            if ali is None:
                missing += 1
                continue
        out.append(Utterance(utt, dd.utt2spk[utt], feats, dd.text[utt].split(), ali))
    if missing:
        log.warning("%s: %d utterances have no alignment and are skipped", data_dir, missing)
    if not out:
        raise DataDirError(f"{data_dir}: no usable utterances")
    return out


def split_validation(utts: list[Utterance], fraction: float, seed: int) -> tuple[list[Utterance], list[Utterance]]:
    """Holds out whole speakers (chosen with a fixed seed) for validation.

    At least one speaker is held out when ``fraction > 0`` and at least one
    is kept for training.
    """
    speakers = sorted({u.speaker for u in utts})
    if fraction <= 0 or len(speakers) < 2:
        return utts, []
    rng = random.Random(seed)
    num_valid = min(len(speakers) - 1, max(1, round(fraction * len(speakers))))
    valid_speakers = set(rng.sample(speakers, num_valid))
    return [u for u in utts if u.speaker not in valid_speakers], [u for u in utts if u.speaker in valid_speakers]


def make_batches(utts: list[Utterance], max_frames: int, shuffle: bool, seed: int) -> list[list[int]]:
    """:func:`length_batches` over utterances."""
    return length_batches([len(u.feats) for u in utts], [u.utt_id for u in utts], max_frames, shuffle, seed)


def collate(utts: list[Utterance]) -> Batch:
    """Pads a list of utterances (already in decreasing length order)."""
    lengths = torch.tensor([len(u.feats) for u in utts], dtype=torch.int64)
    feats = torch.zeros(len(utts), int(lengths.max()), utts[0].feats.shape[1])
    for i, u in enumerate(utts):
        feats[i, : len(u.feats)] = u.feats
    alis = [u.alignment for u in utts] if utts[0].alignment is not None else None
    ivectors = None
    if utts[0].ivectors is not None:
        from asr.adapt.online import frame_ivectors

        ivectors = torch.zeros(len(utts), feats.shape[1], utts[0].ivectors.shape[1])
        for i, u in enumerate(utts):
            ivectors[i, : len(u.feats)] = frame_ivectors(u.ivectors, u.ivector_period, len(u.feats))
    return Batch([u.utt_id for u in utts], feats, lengths, [u.words for u in utts], alis, ivectors)


def add_speed_perturbed(
    utts: list[Utterance], data_dir: str | Path, factors: list[float],
    ivectors: Callable[[str, str, torch.Tensor], torch.Tensor] | None = None,
) -> list[Utterance]:
    """Adds speed-perturbed copies of utterances (Kaldi's 3-way speed perturbation).

    Each factor other than 1.0 gives a copy ``sp<factor>-<utt>`` whose
    features are recomputed from the perturbed audio with the data dir's
    feature config and normalised as the data dir is (:func:`normalise_copies`:
    the copies of one speaker at one factor form a speaker of their own, as
    Kaldi's ``sp0.9-<speaker>``), and whose alignment (if any) is stretched to
    the new number of output frames, so the alignments follow the perturbed
    lengths.  With ``ivectors`` (``(copy id, original id, raw features) ->
    (K, D) rows``, e.g. :class:`asr.adapt.data.PerturbedIvectors`) each copy
    gets the i-vectors of its own features.
    """
    from tqdm import tqdm

    from asr.data.audio import load_audio
    from asr.features.extract import compute_utterance_features, load_feature_config
    from asr.training.augment import perturb_alignment, speed_perturb

    dd = DataDir.load(data_dir)
    cfg = load_feature_config(dd.path)
    rate = int(cfg["sample_rate"])
    out = list(utts)
    skipped = 0
    for factor in [f for f in factors if f != 1.0]:
        raws = []
        for u in tqdm(utts, desc=f"speed {factor}", leave=False):
            path, start, end = dd.audio_source(u.utt_id)
            raws.append(compute_utterance_features(speed_perturb(load_audio(path, rate, start, end), rate, factor), cfg))
        normed = normalise_copies(raws, [u.speaker for u in utts], cfg, dd)
        for u, raw, feats in zip(utts, raws, normed):
            ali = None
            if u.alignment is not None:
                # Output frames scale like input frames (same subsampling).
                new_len = max(1, round(len(u.alignment) * len(feats) / max(1, len(u.feats))))
                try:
                    ali = perturb_alignment(u.alignment, new_len)
                except ValueError:
                    skipped += 1  # too fast for its states to keep one frame each
                    continue
            copy_id = f"sp{factor}-{u.utt_id}"
            rows = ivectors(copy_id, u.utt_id, raw) if ivectors is not None else None
            out.append(Utterance(copy_id, u.speaker, feats, u.words, ali, rows, u.ivector_period))
    log.info("speed perturbation %s: %d -> %d training utterances", factors, len(utts), len(out))
    if skipped:
        log.warning("speed perturbation: %d copies skipped, too short for their alignment", skipped)
    return out


def normalise_copies(raws: list[torch.Tensor], speakers: list[str], cfg: dict, dd: DataDir) -> list[torch.Tensor]:
    """Speed-perturbed copies' raw features, normalised with the data dir's CMVN type.

    ``per-utterance``: each copy's own stats; ``per-speaker``: stats summed
    over the copies of one speaker (at one factor); ``sliding``: the data
    dir's window and prior; ``none``: as they are.
    """
    from asr.features.cmvn import apply_cmvn, cmvn_stats
    from asr.features.extract import cmvn_kind
    from asr.features.online_cmvn import sliding_cmvn_for

    kind = cmvn_kind(cfg, dd)
    norm_vars = bool(cfg.get("norm_vars", False))
    if kind == "none":
        return list(raws)
    if kind == "sliding":
        normalise = sliding_cmvn_for(cfg, str(dd.path / "conf" / "feats.yaml"))
        return [normalise(raw) for raw in raws]
    if kind == "per-utterance":
        return [apply_cmvn(raw, cmvn_stats(raw), norm_vars) for raw in raws]
    per_speaker: dict[str, np.ndarray] = {}
    for raw, spk in zip(raws, speakers):
        stats = cmvn_stats(raw)
        per_speaker[spk] = per_speaker[spk] + stats if spk in per_speaker else stats
    return [apply_cmvn(raw, per_speaker[spk], norm_vars) for raw, spk in zip(raws, speakers)]
