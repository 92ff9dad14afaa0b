#!/usr/bin/env python3
"""Scales a training config to a corpus (recipes/template, docs/OWN_CORPUS.md).

Reads a data dir's ``utt2dur`` and ``utt2spk`` and a base training YAML, and
writes the YAML that ``asr train`` runs, with these keys derived from the
corpus (the rules, with their constants in :data:`RULES` and
:data:`KIND_RULES`):

- ``valid_fraction``: ``valid_fraction`` of the speakers (at least one) when
  the data has at least ``min_speakers_for_valid`` speakers and those
  speakers hold at most ``asr.training.sanity.MAX_VALID_SHARE`` of the
  utterances (where training warns), else 0: holding out one of 3 speakers
  would take a third of the data and one kind of voice.
- ``max_frames`` (padded input frames per batch): the training frames over
  ``MIN_BATCHES_PER_EPOCH``, within ``MAX_FRAMES_RANGE``, so that a tiny
  corpus still gets several updates an epoch and a big one batches of the
  size that suits the CPU.
- ``epochs``: enough for the criterion's target number of optimizer steps
  (``target_steps``) on the data as recorded, within its epoch range.  The
  steps per epoch are counted exactly as the trainer batches (the same
  batching function on frame counts computed from ``utt2dur``, the same
  held-out speakers).  Speed-perturbed copies (``speed_perturb``, on by
  default for the CE passes) keep the epochs and the batch size and add
  their own steps, as Kaldi's ``train_sp`` does.
- ``scheduler.warmup_steps`` and flat start's ``prior_warmup_steps``: fixed
  fractions of the total steps, so a warm-up always ends before training
  does.  (A warm-up copied from a bigger corpus's config can outlast the
  whole run: the prior ramp never finishes and the alignments degenerate.)
- ``model.hidden``: by hours of training audio (``WIDTH_BY_HOURS``).

An override YAML (``--override``) always wins, key by key (nested mappings
such as ``model`` or ``scheduler`` are merged); the scaling sees its keys, so
an override's ``speed_perturb`` counts in the steps.  Its top-level
keys are sections: ``all`` applies to every stage, ``flat_start``, ``ce``,
``ce_pass2`` and ``mmi`` to the stage of that ``--kind``, for example::

    all: {device: cuda}
    ce: {epochs: 12, model: {hidden: 256}}  A warning is
logged if the final warm-ups are not shorter than the run.

Usage::

    scale_config.py --data data/train --base conf/flat_start.yaml --kind flat_start \\
        --feats-config conf/fbank.yaml [--override my.yaml] exp/conf/flat_start.yaml
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from asr.config import load_config
from asr.data.batching import length_batches
from asr.errors import AsrError, ConfigError
from asr.fileio import atomic_write_text, read_table
from asr.training.data import split_validation
from asr.training.sanity import MAX_VALID_SHARE

log = logging.getLogger("asr.recipes.scale_config")


@dataclass(frozen=True)
class Rules:
    """Corpus-independent scaling constants (see the module docstring)."""

    valid_fraction: float = 0.1           # share of speakers held out for validation
    min_speakers_for_valid: int = 5       # fewer speakers: no held-out speaker
    min_batches_per_epoch: int = 8        # smallest number of updates an epoch
    max_frames_range: tuple[int, int] = (1000, 6000)  # padded frames per batch
    # (hours below which, hidden units): a TDNN wide enough for the data.
    width_by_hours: tuple[tuple[float, int], ...] = ((0.1, 64), (1.0, 128), (math.inf, 256))


@dataclass(frozen=True)
class KindRule:
    """How one training stage scales.

    Attributes:
      target_steps: Optimizer steps the stage should get in all.
      epochs: Smallest and largest number of epochs.
      warmup_fraction: ``scheduler.warmup_steps`` as a share of the total steps.
      prior_warmup_fraction: flat start's ``prior_warmup_steps`` as a share of
        the total steps (``None``: the criterion has no prior ramp).
    """

    target_steps: int
    epochs: tuple[int, int]
    warmup_fraction: float
    prior_warmup_fraction: float | None = None


RULES = Rules()
#: Per stage. Flat start needs the most steps (it finds the alignments from
#: nothing) and ramps its prior over the first 40% of them, as the yesno and
#: AN4 configs do; later CE passes start from a trained model, so no warm-up.
KIND_RULES: dict[str, KindRule] = {
    "flat_start": KindRule(target_steps=300, epochs=(4, 30), warmup_fraction=0.05, prior_warmup_fraction=0.4),
    "ce": KindRule(target_steps=400, epochs=(4, 20), warmup_fraction=0.05),
    "ce_pass2": KindRule(target_steps=250, epochs=(3, 12), warmup_fraction=0.0),
    "mmi": KindRule(target_steps=150, epochs=(2, 6), warmup_fraction=0.05),
}


#: Sections of an override YAML: every stage, then one per training stage.
OVERRIDE_SECTIONS = ("all", *KIND_RULES)


@dataclass(frozen=True)
class Corpus:
    """What the scaler knows of a data dir."""

    frames: dict[str, int]    # utterance -> input frames
    utt2spk: dict[str, str]

    @property
    def speakers(self) -> int:
        return len(set(self.utt2spk.values()))

    @property
    def hours(self) -> float:
        return sum(self.frames.values()) * self.frame_shift_s / 3600

    frame_shift_s: float = 0.01


def num_frames(seconds: float, frame_length_ms: float, frame_shift_ms: float, snip_edges: bool) -> int:
    """Feature frames of ``seconds`` of audio, as Kaldi's framing counts them."""
    samples_ms = seconds * 1000.0
    if not snip_edges:
        return max(1, int(round(samples_ms / frame_shift_ms)))
    return max(1, int((samples_ms - frame_length_ms) // frame_shift_ms) + 1)


def read_corpus(data_dir: Path, feats_cfg: dict[str, Any]) -> Corpus:
    """Frame counts (from ``utt2dur``) and speakers of a data dir."""
    length = float(feats_cfg.get("frame_length", 25.0))
    shift = float(feats_cfg.get("frame_shift", 10.0))
    snip = bool(feats_cfg.get("snip_edges", True))
    durs = read_table(data_dir / "utt2dur")
    frames = {u: num_frames(float(d), length, shift, snip) for u, d in durs.items()}
    return Corpus(frames, read_table(data_dir / "utt2spk"), shift / 1000.0)


def valid_fraction_for(corpus: Corpus, valid_seed: int = 0, rules: Rules = RULES) -> float:
    """The held-out share of speakers: ``rules.valid_fraction``, or 0 with too few
    speakers or when the speakers it holds out have too many of the utterances."""
    if corpus.speakers < rules.min_speakers_for_valid:
        return 0.0
    kept = training_frames(corpus, rules.valid_fraction, valid_seed, 1)
    held_share = 1 - len(kept) / len(corpus.frames)
    return rules.valid_fraction if held_share <= MAX_VALID_SHARE else 0.0


def training_frames(corpus: Corpus, valid_fraction: float, valid_seed: int, speed_copies: int) -> dict[str, int]:
    """Frames of the utterances the trainer trains on (held-out speakers removed,
    speed-perturbed copies counted), chosen by the trainer's own split."""
    utts = [SimpleNamespace(utt_id=u, speaker=s) for u, s in sorted(corpus.utt2spk.items())]
    train, _ = split_validation(utts, valid_fraction, valid_seed)  # type: ignore[arg-type]
    out = {}
    for k in range(speed_copies):
        out.update({f"{k}-{u.utt_id}": corpus.frames[u.utt_id] for u in train})
    return out


def steps_per_epoch(frames: dict[str, int], max_frames: int) -> int:
    """Batches an epoch, counted by the trainer's batching (length-sorted, padded)."""
    keys = sorted(frames)
    return len(length_batches([frames[k] for k in keys], keys, max_frames))


def clamp(x: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, x))


def width_for(hours: float, rules: Rules = RULES) -> int:
    """Hidden units for ``hours`` of training audio."""
    return next(width for limit, width in rules.width_by_hours if hours < limit)


def scale(base: dict[str, Any], corpus: Corpus, kind: str, rules: Rules = RULES) -> tuple[dict[str, Any], str]:
    """The base config with the corpus-derived keys set, and a one-line summary."""
    rule = KIND_RULES[kind]
    cfg = copy.deepcopy(base)
    valid = valid_fraction_for(corpus, int(cfg.get("valid_seed", 0)), rules)
    copies = 1 + len(cfg.get("speed_perturb") or [])
    # Batch size and epochs come from the data as recorded; speed-perturbed copies then add
    # steps to each epoch, as Kaldi keeps its epochs on train_sp.  (Counting the copies in the
    # epochs instead gave a third of the updates and, on an espeak corpus, 63.57% WER.)
    original = training_frames(corpus, valid, int(cfg.get("valid_seed", 0)), 1)
    frames = training_frames(corpus, valid, int(cfg.get("valid_seed", 0)), copies)
    lo, hi = rules.max_frames_range
    longest = max(frames.values())
    max_frames = clamp(sum(original.values()) // rules.min_batches_per_epoch, max(lo, longest), max(hi, longest))
    epochs = clamp(math.ceil(rule.target_steps / steps_per_epoch(original, max_frames)), *rule.epochs)
    per_epoch = steps_per_epoch(frames, max_frames)
    total = epochs * per_epoch
    cfg.update(valid_fraction=valid, max_frames=max_frames, epochs=epochs)
    cfg.setdefault("scheduler", {})["warmup_steps"] = int(rule.warmup_fraction * total)
    if rule.prior_warmup_fraction is not None:
        cfg["prior_warmup_steps"] = int(rule.prior_warmup_fraction * total)
    hours = sum(frames.values()) * corpus.frame_shift_s / 3600
    if "hidden" in cfg.get("model", {}):
        cfg["model"]["hidden"] = width_for(hours / copies, rules)
    summary = (f"{kind}: {len(corpus.frames)} utterances, {corpus.hours:.2f} h, {corpus.speakers} speakers; "
               f"valid_fraction {valid}, max_frames {max_frames}, {per_epoch} steps/epoch x {epochs} epochs "
               f"= {total} steps, warmup {cfg['scheduler']['warmup_steps']}"
               + (f", prior warmup {cfg['prior_warmup_steps']}" if "prior_warmup_steps" in cfg else "")
               + (f", hidden {cfg['model']['hidden']}" if "hidden" in cfg.get("model", {}) else ""))
    return cfg, summary


def merge(cfg: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` with ``override``'s keys (nested mappings merged, everything else replaced)."""
    out = dict(cfg)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def read_override(path: str, section: str) -> dict[str, Any]:
    """The keys of ``section`` in an override YAML, after those of ``all``.

    Raises:
      ConfigError: on a top-level key that is not a section, or a section
        that is not a mapping.
    """
    raw = load_config(path)
    unknown = sorted(set(raw) - set(OVERRIDE_SECTIONS))
    if unknown:
        raise ConfigError(f"{path}: unknown section '{unknown[0]}' (sections: {', '.join(OVERRIDE_SECTIONS)})")
    for name in ("all", section):
        if not isinstance(raw.get(name, {}), dict):
            raise ConfigError(f"{path}: section '{name}' must be a mapping of config keys")
    return merge(raw.get("all", {}), raw.get(section, {}))


def check_warmups(cfg: dict[str, Any], corpus: Corpus, where: str) -> None:
    """Warns when a warm-up (after overrides) does not end before training does."""
    valid = float(cfg.get("valid_fraction", 0.1))
    copies = 1 + len(cfg.get("speed_perturb") or [])
    frames = training_frames(corpus, valid, int(cfg.get("valid_seed", 0)), copies)
    total = int(cfg["epochs"]) * steps_per_epoch(frames, int(cfg["max_frames"]))
    for name, steps in (("scheduler.warmup_steps", cfg.get("scheduler", {}).get("warmup_steps", 0)),
                        ("prior_warmup_steps", cfg.get("prior_warmup_steps", 0))):
        if int(steps) >= total:
            log.warning("%s: %s = %d is not below the %d optimizer steps of the run", where, name, steps, total)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, type=Path, help="training data dir (utt2dur, utt2spk)")
    p.add_argument("--base", required=True, help="base training YAML")
    p.add_argument("--kind", required=True, choices=sorted(KIND_RULES),
                   help="the training stage: its scaling rule and its section of --override")
    p.add_argument("--feats-config", default="fbank.yaml", help="feature YAML (frame length and shift)")
    p.add_argument("--override", help="YAML whose keys win over the scaled ones (sections: "
                   + ", ".join(OVERRIDE_SECTIONS) + ")")
    p.add_argument("out", type=Path, help="YAML to write")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    try:
        return run(args)
    except AsrError as e:
        print(f"scale_config.py: error: {e}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    """Writes the scaled (and overridden) config."""
    corpus = read_corpus(args.data, load_config(args.feats_config))
    override = read_override(args.override, args.kind) if args.override else {}
    # Scaled with the override's keys in place (its speed_perturb adds copies of the
    # data), then the override again, so that its explicit values win.
    cfg, summary = scale(merge(load_config(args.base), override), corpus, args.kind)
    cfg = merge(cfg, override)
    if args.override:
        summary += f" (then {args.override})"
    check_warmups(cfg, corpus, str(args.out))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Written by recipes/template/local/scale_config.py from {args.base}:\n# {summary}\n"
    atomic_write_text(args.out, header + yaml.safe_dump(cfg, sort_keys=False))
    print(summary, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
