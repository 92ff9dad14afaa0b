"""``asr compile-graph``: G of a grammar (an n-gram LM, a word list, a JSGF file) and HLG for a lang dir.

The ``--grammar`` choices and each kind's options come from the grammar
registry (:data:`asr.lang.grammar.GRAMMARS`); without ``--grammar`` the
``ngram`` kind is built, so ``--arpa FILE`` and ``--text FILE...`` work alone.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from asr.lang.grammar import DEFAULT_GRAMMAR, GRAMMARS, cli_options

    kinds = "; ".join(f"{k.name}: {k.summary}" for k in GRAMMARS.values())
    p = sub.add_parser(
        "compile-graph",
        help="compile G (an n-gram LM or a grammar) and HLG",
        description=f"Write G.pt, HLG.pt and graph.yaml into OUT_DIR (data/lang_<lm>); the ngram kind also writes "
        f"lm.arpa. Grammar kinds: {kinds}. An estimated LM covers the lexicon's whole vocabulary. "
        "See docs/GRAMMARS.md.",
    )
    p.add_argument("lang_dir")
    p.add_argument("out_dir")
    p.add_argument("--grammar", choices=list(GRAMMARS), help=f"kind of G (default {DEFAULT_GRAMMAR})")
    groups: dict[str, argparse._ArgumentGroup] = {}
    for entry in cli_options():
        title = "--grammar " + ", ".join(entry.kinds)
        group = groups.setdefault(title, p.add_argument_group(title))
        shown_default = "" if entry.default is None else f" (default {entry.default})"
        # default None tells "not given" apart from a given value; the config supplies the real default.
        group.add_argument(entry.option.flag, dest=entry.field_name, default=None,
                           help=entry.option.help + shown_default, **entry.option.argparse_kwargs)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr.lang.grammar import DEFAULT_GRAMMAR, cli_options, config_from_options
    from asr.lang.graph import compile_graph_dir

    kind = args.grammar or DEFAULT_GRAMMAR
    given = {e.field_name: getattr(args, e.field_name) for e in cli_options() if getattr(args, e.field_name) is not None}
    HLG = compile_graph_dir(args.lang_dir, args.out_dir, kind, config_from_options(kind, given))
    print(f"{args.out_dir}/HLG.pt: {HLG.shape[0]} states, {HLG.num_arcs} arcs")
    return 0
