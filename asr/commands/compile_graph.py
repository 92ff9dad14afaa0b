"""``asr compile-graph``: LM, G and HLG for a lang dir."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compile-graph",
        help="estimate or read an n-gram LM and compile G.pt and HLG.pt",
        description="Write lm.arpa, G.pt and HLG.pt into OUT_DIR (data/lang_<lm>). The LM is either "
        "estimated from Kaldi text files (--text) over the lexicon's vocabulary, or a given ARPA (--arpa).",
    )
    p.add_argument("lang_dir")
    p.add_argument("out_dir")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--arpa", help="use this ARPA LM")
    src.add_argument("--text", nargs="+", help="estimate the LM from these Kaldi text files")
    p.add_argument("--order", type=int, default=2, help="n-gram order when estimating (default 2)")
    p.add_argument("--method", default="kneser-ney", choices=["kneser-ney", "witten-bell"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr.lang.graph import build_graph_dir

    HLG = build_graph_dir(args.lang_dir, args.out_dir, args.arpa, args.text, args.order, args.method)
    print(f"{args.out_dir}/HLG.pt: {HLG.shape[0]} states, {HLG.num_arcs} arcs")
    return 0
