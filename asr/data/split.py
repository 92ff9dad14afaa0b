"""Subsets and train/test splits of a data dir: ``asr prepare-data split``.

Whole speakers go to one side, so that the test set measures speakers the
model has not heard.  ``--by speaker`` draws a seeded random fraction of the
speakers; ``--by pattern`` sends the utterances whose id matches a regular
expression to test (ids start with their speaker, so ``^spk3-`` selects one
speaker).  :func:`subset_data_dir` is Kaldi's ``subset_data_dir.sh --utt-list``.
"""

from __future__ import annotations

import argparse
import logging
import random
import re
from collections.abc import Iterable
from pathlib import Path

from asr.data.datadir import DataDir, write_data_dir
from asr.data.registry import register_preparer
from asr.errors import DataDirError
from asr.fileio import PathLike

log = logging.getLogger("asr.data.split")

#: A realised test fraction this many times the requested one gets a warning.
FRACTION_WARN_RATIO = 2.0
SPLIT_METHODS = ("speaker", "pattern")


def subset_data_dir(src: DataDir, utterances: Iterable[str], dest: PathLike) -> DataDir:
    """Writes the data dir ``dest`` holding only ``utterances`` of ``src``.

    Keeps text, segments (and only the recordings they use) and utt2dur;
    features are not carried over.

    Raises:
      DataDirError: if an utterance is not in ``src`` (naming it) or none is given.
    """
    keep = set(utterances)
    missing = sorted(keep - set(src.utt2spk))
    if missing:
        raise DataDirError(f"{src.path}: {len(missing)} utterances are not in the data dir, e.g. '{missing[0]}'")
    if not keep:
        raise DataDirError(f"{src.path}: empty subset for {dest}")
    segments = {u: src.segments[u] for u in keep} if src.segments is not None else None
    audio_keys = {s.recording for s in segments.values()} if segments is not None else keep
    return write_data_dir(
        dest,
        {k: src.wav_scp[k] for k in audio_keys},
        {u: src.text[u] for u in keep} if src.text is not None else None,
        {u: src.utt2spk[u] for u in keep},
        segments=segments,
        utt2dur={u: src.utt2dur[u] for u in keep} if src.utt2dur is not None else None,
    )


def held_out_speakers_by_fraction(src: DataDir, test_fraction: float, seed: int) -> set[str]:
    """A seeded random ``test_fraction`` of the speakers (rounded, at least one, never all).

    Raises:
      DataDirError: if the fraction is not in (0, 1) or there is only one speaker.
    """
    if not 0 < test_fraction < 1:
        raise DataDirError(f"test fraction must be between 0 and 1, got {test_fraction}")
    speakers = list(src.spk2utt)  # C order, so the draw depends only on the seed
    if len(speakers) < 2:
        raise DataDirError(f"{src.path}: one speaker cannot be split into train and test")
    count = min(max(1, round(test_fraction * len(speakers))), len(speakers) - 1)
    return set(random.Random(seed).sample(speakers, count))


def held_out_speakers_by_pattern(src: DataDir, test_pattern: str) -> set[str]:
    """The speakers whose utterance ids match ``test_pattern`` (``re.search``).

    Raises:
      DataDirError: if the pattern is invalid, or a speaker has utterances
        that match and others that do not (it would be on both sides).
    """
    try:
        regex = re.compile(test_pattern)
    except re.error as e:
        raise DataDirError(f"test pattern '{test_pattern}': {e}") from None
    test = set()
    for speaker, utts in src.spk2utt.items():
        matching = [u for u in utts if regex.search(u)]
        if matching and len(matching) != len(utts):
            other = next(u for u in utts if not regex.search(u))
            raise DataDirError(f"{src.path}: speaker '{speaker}' would be split, '{matching[0]}' matches "
                               f"'{test_pattern}' but '{other}' does not; whole speakers go to one side")
        if matching:
            test.add(speaker)
    return test


def split_data_dir(
    data_dir: PathLike,
    out_dir: PathLike,
    by: str = "speaker",
    test_fraction: float = 0.2,
    seed: int = 0,
    test_pattern: str | None = None,
) -> dict[str, Path]:
    """Writes ``out_dir/train`` and ``out_dir/test`` from one data dir, whole speakers to each side.

    Returns:
      ``{"train": path, "test": path}``.

    Raises:
      DataDirError: on a bad method, fraction or pattern, or a side left empty.
    """
    src = DataDir.load(data_dir, require_text=False)
    if by == "speaker":
        test = held_out_speakers_by_fraction(src, test_fraction, seed)
    elif by == "pattern":
        if not test_pattern:
            raise DataDirError("--by pattern needs --test-pattern REGEX")
        test = held_out_speakers_by_pattern(src, test_pattern)
    else:
        raise DataDirError(f"unknown split method '{by}' (one of {', '.join(SPLIT_METHODS)})")
    sides = {"train": [u for s in src.spk2utt if s not in test for u in src.spk2utt[s]],
             "test": [u for s in src.spk2utt if s in test for u in src.spk2utt[s]]}
    for name, utts in sides.items():
        if not utts:
            raise DataDirError(f"{src.path}: the split leaves {name} empty")
    _log_fraction(src, len(sides["test"]), len(test), test_fraction if by == "speaker" else None)
    out = {}
    for name, utts in sides.items():
        out[name] = Path(out_dir) / name
        subset_data_dir(src, utts, out[name])
    return out


def _log_fraction(src: DataDir, test_utts: int, test_speakers: int, requested: float | None) -> None:
    """Says what the split held out; warns when whole speakers make it far from the request."""
    fraction = test_utts / len(src.utt2spk)
    log.info("%s: test holds %d of %d speakers, %d of %d utterances (%.1f%%)", src.path, test_speakers,
             len(src.spk2utt), test_utts, len(src.utt2spk), 100 * fraction)
    if requested is not None and (fraction > requested * FRACTION_WARN_RATIO or
                                  fraction < requested / FRACTION_WARN_RATIO):
        log.warning("%s: test holds %.1f%% of the utterances, asked for %.1f%% (whole speakers go to "
                    "one side)", src.path, 100 * fraction, 100 * requested)


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", metavar="DATA_DIR", help="the data dir to split (only read)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="where train/ and test/ are written")
    p.add_argument("--by", choices=SPLIT_METHODS, default="speaker",
                   help="speaker: a random fraction of the speakers; pattern: speakers whose "
                   "utterance ids match --test-pattern (default: speaker)")
    p.add_argument("--test-fraction", type=float, default=0.2,
                   help="with --by speaker, the fraction of speakers held out (default: 0.2)")
    p.add_argument("--seed", type=int, default=0, help="with --by speaker, the random seed (default: 0)")
    p.add_argument("--test-pattern", metavar="REGEX", default=None,
                   help="with --by pattern, a regular expression searched in utterance ids")


@register_preparer("split", help="split a data dir into train/ and test/ by speaker or by pattern",
                   add_arguments=_add_arguments, description=__doc__)
def _run(args: argparse.Namespace) -> dict[str, Path]:
    return split_data_dir(args.data_dir, args.out_dir, by=args.by, test_fraction=args.test_fraction,
                          seed=args.seed, test_pattern=args.test_pattern)
