"""``asr prepare-data``: Kaldi data dirs for a corpus, imported data, splits, or validation.

The subcommands other than ``validate`` come from the preparer registry
(:mod:`asr.data.registry`): corpora (yesno, an4), importers (table, folder,
lhotse), the lhotse export and the train/test split.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``prepare-data {<registered preparers>,validate}`` to the ``asr`` command line."""
    from asr.data.registry import preparers

    p = subparsers.add_parser(
        "prepare-data",
        help="write Kaldi data dirs for a corpus or imported data, or validate a data dir",
        description="Write Kaldi data dirs for a corpus (OUT_DIR/train and OUT_DIR/test), "
        "import a table, folder or lhotse manifests, split a data dir, or validate one. "
        "Inputs are only read.",
    )
    sub = p.add_subparsers(dest="corpus", metavar="CORPUS", required=True)
    for name, preparer in preparers().items():
        c = sub.add_parser(name, help=preparer.help, description=preparer.description,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        preparer.add_arguments(c)
        c.set_defaults(preparer_run=preparer.run)
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
    outputs = args.preparer_run(args)
    for label, path in outputs.items():
        print(f"{label}: {path}")
    return 0
