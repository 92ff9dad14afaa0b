"""``asr prepare-data``: Kaldi data dirs for a corpus, or validation of one."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("asr.commands.prepare_data")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``prepare-data {yesno,an4,validate}`` to the ``asr`` command line."""
    p = subparsers.add_parser(
        "prepare-data",
        help="write Kaldi data dirs for a corpus, or validate a data dir",
        description="Write OUT_DIR/train and OUT_DIR/test data dirs for a corpus "
        "(the corpus dir is only read), or validate an existing data dir.",
    )
    sub = p.add_subparsers(dest="corpus", metavar="CORPUS", required=True)
    for name in ("yesno", "an4"):
        c = sub.add_parser(name, help=f"prepare the {name} corpus")
        c.add_argument("corpus_dir", metavar="CORPUS_DIR", help="the corpus as downloaded")
        c.add_argument("out_dir", metavar="OUT_DIR", help="where train/ and test/ are written")
    v = sub.add_parser("validate", help="check a data dir as Kaldi's validate_data_dir.sh")
    v.add_argument("data_dir", metavar="DATA_DIR")
    v.add_argument("--check-audio", action="store_true", help="also open every audio file")
    v.add_argument("--sample-rate", type=int, default=None,
                   help="with --check-audio, warn about audio at another rate")
    v.add_argument("--no-text", action="store_true", help="the dir need not have a text file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Runs the subcommand; errors are AsrError subclasses printed by the CLI."""
    if args.corpus == "validate":
        from asr.data.datadir import validate_data_dir

        dd = validate_data_dir(args.data_dir, check_audio=args.check_audio,
                               sample_rate=args.sample_rate, require_text=not args.no_text)
        print(f"{dd.path}: OK ({len(dd.utt2spk)} utterances, {len(dd.spk2utt)} speakers)")
        return 0
    from asr.data.corpora import PREPARERS

    dirs = PREPARERS[args.corpus](args.corpus_dir, args.out_dir)
    for split, path in dirs.items():
        print(f"{split}: {path}")
    return 0
