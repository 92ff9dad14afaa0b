"""``asr build-tree``: a phonetic decision tree from an alignment (Kaldi's acc-tree-stats + build-tree)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build-tree",
        help="build a phonetic decision tree (tied context-dependent states) from an alignment",
        description="Accumulate one diagonal Gaussian per (phone context window, pdf class) from an alignment "
        "dir and a data dir's features, cluster the phones into questions, grow the tree by likelihood gain "
        "and merge its leaves. Writes OUT_DIR/tree.yaml and OUT_DIR/questions.txt. With --show TREE, print a "
        "readable dump of a tree file instead. See docs/TREE.md.",
    )
    p.add_argument("out_dir", nargs="?", help="output folder, e.g. exp/tree (a lang or model dir will do)")
    p.add_argument("--ali-dir", help="'asr align' output (ali.ark, info.yaml), e.g. exp/flat/ali")
    p.add_argument("--data", help="data dir with feats.scp, the one the alignments are of")
    p.add_argument("--lang", help="the lang dir of the alignments' pdf ids")
    p.add_argument("--config", help="tree options overriding the packaged defaults (asr/conf/tree.yaml)")
    p.add_argument("--extra-questions", help="phone sets to ask besides the automatic ones: one per line")
    p.add_argument("--max-leaves", type=int, help="override the config's max_leaves")
    p.add_argument("--lang-out", metavar="DIR", help="also write a copy of --lang with the tree in it (pdfs = leaves), "
                   "for context-dependent graphs and training, e.g. data/lang_tree500")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: OMP_NUM_THREADS if set, "
                   "else 1; see asr/threads.py). Results are bit-identical only at the same thread count")
    p.add_argument("--show", metavar="TREE", help="print a tree file (or a dir holding tree.yaml) and exit")
    p.set_defaults(func=run, parser=p)


def run(args: argparse.Namespace) -> int:
    from asr.tree.show import format_tree
    from asr.tree.tree import Tree

    if args.show:
        print(format_tree(Tree.load(args.show), args.show), end="")
        return 0
    missing = [flag for flag, value in (("OUT_DIR", args.out_dir), ("--ali-dir", args.ali_dir),
                                        ("--data", args.data), ("--lang", args.lang)) if not value]
    if missing:
        args.parser.error(f"building a tree needs {', '.join(missing)} (or use --show TREE)")
    from asr.threads import set_torch_threads
    from asr.tree.config import load_tree_config
    from asr.tree.run import build_tree_dir

    set_torch_threads(args.threads, what="build-tree")
    overrides = {"max_leaves": args.max_leaves} if args.max_leaves is not None else None
    cfg = load_tree_config(args.config, overrides)
    tree = build_tree_dir(args.ali_dir, args.data, args.lang, args.out_dir, cfg, args.extra_questions)
    print(f"{args.out_dir}/tree.yaml: {tree.num_leaves} leaves, {len(tree.roots)} roots, "
          f"context width {tree.context_width} (central position {tree.central_position})")
    if args.lang_out:
        from pathlib import Path

        from asr.tree.convert import write_tree_lang

        write_tree_lang(args.lang, Path(args.out_dir) / "tree.yaml", args.lang_out)
        print(f"{args.lang_out}: lang dir with the tree ({tree.num_leaves} pdfs)")
    return 0
