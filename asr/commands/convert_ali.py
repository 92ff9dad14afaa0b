"""``asr convert-ali``: a monophone alignment in the pdf ids of a lang with a tree (Kaldi's convert-ali)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert-ali",
        help="convert a monophone alignment to the leaves of a decision tree",
        description="Every frame of ALI_DIR (an 'asr align' output in the pdf ids of --lang) gets the tree leaf "
        "of its phone context window and pdf class, in the lang with the tree (--tree-lang, from "
        "'asr build-tree --lang-out'). Writes OUT_DIR/ali.ark, ali.scp and info.yaml.",
    )
    p.add_argument("ali_dir", help="monophone alignment dir, e.g. exp/blstm/ali")
    p.add_argument("out_dir", help="output alignment dir, e.g. exp/blstm/ali_tree500")
    p.add_argument("--lang", required=True, help="the monophone lang dir of ALI_DIR's pdf ids")
    p.add_argument("--tree-lang", required=True, help="the lang dir with the tree")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr.tree.convert import convert_alignments

    n = convert_alignments(args.ali_dir, args.lang, args.tree_lang, args.out_dir)
    print(f"{args.out_dir}: {n} alignments in the pdf ids of {args.tree_lang}")
    return 0
