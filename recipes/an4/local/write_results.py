#!/usr/bin/env python3
"""Collects a recipe's test WERs into results.tsv, one row per system, LM and seed.

Each row gives the test WER three ways, as RESULTS.md does:

- ``wer_decode_config``: ``DECODE_TEST/wer`` (the decode config's weights);
- ``wer_tuned_heldout``: the test WER at the LM weight and penalty that were
  best on the held-out training speakers (``DECODE_VALID/scoring/best_wer``);
- ``wer_best_on_test``: the best WER over the sweep on test (Kaldi's way).

Usage: write_results.py OUT.tsv SYSTEM:SEED:MODEL_DIR [...] [--lms tg,bg,ug]
A model dir's decode dirs are ``decode_{valid,test}_<lm>`` (with ``--sweep``).
Then prints, per system and LM, the mean, min and max over the seeds.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from asr.errors import AsrError
from asr.fileio import atomic_write_text

COLUMNS = ("system", "lm", "seed", "wer_decode_config", "wer_tuned_heldout", "wer_best_on_test")
WER_RE = re.compile(r"%WER ([\d.]+) ")


def _wer(path: Path) -> float:
    try:
        first = path.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, IndexError):
        raise AsrError(f"{path}: missing or empty WER file") from None
    m = WER_RE.match(first)
    if m is None:
        raise AsrError(f"{path}:1: not a %WER line")
    return float(m.group(1))


def _best_file(decode: Path) -> Path:
    """The sweep's best scoring file, named by the last field of ``scoring/best_wer``."""
    best = decode / "scoring" / "best_wer"
    try:
        return Path(best.read_text(encoding="utf-8").split()[-1])
    except (OSError, IndexError):
        raise AsrError(f"{best}: missing or empty (decode with --sweep)") from None


def system_row(system: str, seed: str, model_dir: Path, lm: str) -> tuple[str, ...]:
    test, valid = model_dir / f"decode_test_{lm}", model_dir / f"decode_valid_{lm}"
    tuned = test / "scoring" / _best_file(valid).name
    wers = (_wer(test / "wer"), _wer(tuned), _wer(_best_file(test)))
    return (system, lm, seed, *(f"{w:.2f}" for w in wers))


def spread(rows: list[tuple[str, ...]]) -> str:
    """Mean, min and max over the seeds of each system and LM, one line each."""
    groups: dict[tuple[str, str], list[tuple[float, ...]]] = defaultdict(list)
    for r in rows:
        groups[r[0], r[1]].append(tuple(float(x) for x in r[3:]))
    lines = []
    for (system, lm), vals in groups.items():
        parts = []
        for name, col in zip(COLUMNS[3:], zip(*vals)):
            parts.append(f"{name} {statistics.mean(col):.2f} [{min(col):.2f}, {max(col):.2f}]")
        lines.append(f"{system} {lm} ({len(vals)} seeds): " + "; ".join(parts))
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("systems", nargs="+", metavar="SYSTEM:SEED:MODEL_DIR")
    p.add_argument("--lms", default="tg,bg,ug")
    args = p.parse_args()
    try:
        rows = []
        for spec in args.systems:
            system, seed, model_dir = spec.split(":", 2)
            rows += [system_row(system, seed, Path(model_dir), lm) for lm in args.lms.split(",")]
        atomic_write_text(args.out, "".join("\t".join(r) + "\n" for r in [COLUMNS, *rows]))
    except (AsrError, ValueError) as e:
        print(f"write_results.py: error: {e}", file=sys.stderr)
        return 1
    print(spread(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
