"""``asr bench``: the benchmark suite in ``benchmarks/`` (same as ``python -m benchmarks``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _suite():
    if not (ROOT / "benchmarks" / "suite.py").is_file():
        return None
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import benchmarks.suite as suite

    return suite


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="run the benchmark suite (benchmarks/README.md)",
        description="Decoding speed, throughput, training speed, graph size, long inputs, feature speed and a "
        "PocketSphinx comparison on a recipe work dir; prints tables and writes JSON.",
    )
    suite = _suite()
    if suite is not None:
        suite.add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    suite = _suite()
    if suite is None:
        print(f"asr bench: {ROOT / 'benchmarks'} not found (the suite lives in the source tree)", file=sys.stderr)
        return 1
    args.command_line = "asr bench " + " ".join(sys.argv[2:])
    return suite.run(args)
