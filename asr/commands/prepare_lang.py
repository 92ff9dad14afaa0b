"""``asr prepare-lang``: lang dir (symbol tables, pdfs, L, H) from a lexicon."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare-lang",
        help="build a lang dir from a lexicon",
        description="Build a lang dir: lexicon.txt, phones.txt (with #0..#N), words.txt (with <eps>, <UNK>, "
        "#0, <s>, </s>), phone sets, pdfs.txt (HMM states, ids from 1), L.pt, L_disambig.pt and H.pt.",
    )
    p.add_argument("lexicon", help="WORD PHONE ... lexicon (see lexicon/README.md)")
    p.add_argument("lang_dir", help="output folder, e.g. data/lang")
    p.add_argument("--config", default="lang.yaml",
                   help="silence phones, sil_prob, topology (default lang.yaml; lang_chain.yaml, lang_chain_pos.yaml "
                   "and lang_chain_cd.yaml are also shipped in asr/conf)")
    p.add_argument(
        "--text",
        help="training transcripts (Kaldi text); needed when the config has 'context' (word-internal "
        "context-dependent phones, chosen by their counts in this text)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr.config import load_config, parse_config, resolve_config
    from asr.lang.lang_dir import LangConfig, prepare_lang

    cfg = load_config(args.config)
    parse_config(LangConfig, cfg, str(resolve_config(args.config)))  # errors name the file and key
    lang = prepare_lang(args.lexicon, args.lang_dir, cfg, args.text)
    print(f"{lang.path}: {len(lang.words)} words, {len(lang.hmm_phones)} phones, {lang.num_pdfs} pdfs")
    return 0
