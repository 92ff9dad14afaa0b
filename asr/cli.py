"""The ``asr`` command line: one command with a subcommand per pipeline step.

Each subcommand lives in ``asr/commands/<name>.py`` and provides
``register(subparsers)`` (adds its parser and sets ``func``) so that the
imports of heavy libraries (torch, k2) happen only when a step runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from asr.errors import AsrError
from asr.threads import bound_openmp_spinning

#: Subcommand name -> module in ``asr.commands``; in pipeline order.
COMMANDS = {
    "prepare-data": "prepare_data",
    "compute-feats": "compute_feats",
    "prepare-lexicon": "prepare_lexicon",
    "prepare-lang": "prepare_lang",
    "compile-graph": "compile_graph",
    "train-ivector": "train_ivector",
    "extract-ivectors": "extract_ivectors",
    "train": "train",
    "align": "align",
    "build-tree": "build_tree",
    "convert-ali": "convert_ali",
    "decode": "decode",
    "score": "score",
    "transcribe": "transcribe",
    "serve": "serve",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asr", description="Hybrid DNN/LSTM+HMM speech recognition on PyTorch and k2."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        try:
            mod = importlib.import_module(f"asr.commands.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"asr.commands.{module}":
                raise
            continue  # not implemented yet
        mod.register(sub)
    return parser


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s [%(name)s] %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    logging.captureWarnings(True)


def main(argv: list[str] | None = None) -> int:
    # Before build_parser: the commands' modules may import torch, and libgomp
    # reads its spin count once, when torch loads it (asr/threads.py).
    bound_openmp_spinning()
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        rc = args.func(args)
    except AsrError as e:
        print(f"asr {args.command}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if e.filename is None:
            raise
        # e.g. an output dir under a file or a read-only dir (a mkdir outside atomic_open)
        print(f"asr {args.command}: error: {e.filename}: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"asr {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
