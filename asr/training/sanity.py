"""Warnings about training set-ups that run but silently train badly (issue 15).

Each check logs a ``logger.warning`` with the numbers and returns the
message (``None`` when all is well), so tests and callers can see it too:

- :func:`check_schedule`: warm-up or the flat-start prior ramp that never finishes;
- :func:`check_validation_split`: too much (or nothing) held out for validation;
- :func:`check_phone_durations`: after an alignment, units stuck at their
  minimum duration (the degenerate flat-start optimum); the per-phone summary
  goes to ``phone_durations.txt`` next to the alignment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from asr.fileio import atomic_write_text
from asr.training.config import TrainConfig

log = logging.getLogger("asr.training.sanity")

#: Share of the utterances above which holding them out for validation is
#: warned about: "about 10%", with room for speakers of uneven size.
MAX_VALID_SHARE = 0.15
#: A unit is stuck when more than this fraction of its occurrences last the
#: topology's minimum number of frames.
STUCK_FRACTION = 0.5
#: Name of the per-phone duration summary written next to an alignment.
DURATIONS_FILE = "phone_durations.txt"


def _warn(message: str) -> str:
    log.warning("%s", message)
    return message


def check_schedule(config: TrainConfig, total_steps: int) -> list[str]:
    """Warns when the learning-rate warm-up or flat start's prior ramp spans the whole run."""
    out = []
    warmup = config.scheduler.warmup_steps
    if warmup and warmup >= total_steps:
        out.append(_warn(
            f"scheduler warmup_steps {warmup} >= the {total_steps} optimizer steps of the run: the learning "
            "rate never reaches its peak; lower warmup_steps or raise epochs"))
    ramp = getattr(config.criterion_options, "prior_warmup_steps", 0)
    if ramp and ramp >= total_steps:
        out.append(_warn(
            f"prior_warmup_steps {ramp} >= the {total_steps} training steps of the run: the prior scale never "
            f"reaches {config.criterion_options.prior_scale:g} (it ends at {total_steps / ramp:.2f} of it) and "
            "phones tend to stay at their minimum duration; lower prior_warmup_steps or raise epochs"))
    return out


def check_validation_split(num_train: int, valid_utts: list, valid_speakers: int, total_speakers: int) -> str | None:
    """Warns when validation holds out much more than about 10% of the utterances, or cannot hold out any."""
    total = num_train + len(valid_utts)
    if total_speakers < 2:
        return _warn(
            f"the training data has only {total_speakers} speaker: nothing is held out for validation "
            "(whole speakers are held out), so valid loss and tuning on held-out speakers are unavailable")
    share = len(valid_utts) / max(1, total)
    if share > MAX_VALID_SHARE:
        return _warn(
            f"validation holds out {len(valid_utts)} of {total} utterances ({100 * share:.0f}%), "
            f"{valid_speakers} of {total_speakers} speakers (whole speakers, at least one): training loses "
            "them; lower valid_fraction (0 holds out nothing) or add speakers")
    return None


@dataclass
class PhoneDurations:
    """Duration statistics of one phone over an alignment, in output frames."""

    phone: str
    min_frames: int  # the topology's minimum
    durations: list[int]

    @property
    def at_minimum(self) -> float:
        return sum(d <= self.min_frames for d in self.durations) / max(1, len(self.durations))


def phone_durations(alignments: dict, lang) -> list[PhoneDurations]:
    """Per-phone durations of alignments (:class:`asr.training.alignment.Alignment`), by phone id."""
    from asr.training.alignment import alignment_segments

    silence = set(lang.silence_phones)
    stats: dict[int, PhoneDurations] = {}
    for ali in alignments.values():
        for _, frames, pid in alignment_segments(ali, set())[0]:
            if pid not in stats:
                name = lang.phones.get(pid)
                topo = lang.silence_topology if name in silence else lang.topology
                stats[pid] = PhoneDurations(name, topo.min_frames, [])
            stats[pid].durations.append(frames)
    return [stats[p] for p in sorted(stats)]


def check_phone_durations(alignments: dict, lang, out_dir: Path) -> list[str]:
    """Writes ``out_dir/phone_durations.txt`` and warns about phones stuck at their minimum duration."""
    rows = phone_durations(alignments, lang)
    lines = ["# phone count mean_frames min_frames topology_min fraction_at_min\n"]
    lines += [f"{r.phone} {len(r.durations)} {sum(r.durations) / len(r.durations):.2f} {min(r.durations)} "
              f"{r.min_frames} {r.at_minimum:.3f}\n" for r in rows]
    atomic_write_text(Path(out_dir) / DURATIONS_FILE, "".join(lines))
    stuck = [r for r in rows if r.at_minimum > STUCK_FRACTION]
    if not stuck:
        return []
    listed = ", ".join(f"{r.phone} ({100 * r.at_minimum:.0f}% of {len(r.durations)})" for r in stuck)
    return [_warn(
        f"{len(stuck)} of {len(rows)} phones spend more than {100 * STUCK_FRACTION:.0f}% of their occurrences "
        f"at the topology's minimum duration: {listed}. From a flat start this is the degenerate optimum (check "
        f"prior_warmup_steps against the run's steps); for rare phones of a trained model it may be harmless; "
        f"see {Path(out_dir) / DURATIONS_FILE}")]
