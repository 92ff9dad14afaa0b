"""``asr prepare-lexicon``: a Kaldi lexicon from CMUdict, with G2P for the missing words."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger("asr.commands.prepare_lexicon")

_EPILOG = """\
Output: LEXICON (lines 'WORD PH1 PH2 ...', sorted by word; a word with several
pronunciations has several lines; '<SIL> SIL' added), the input of
'asr prepare-lang'. The words the G2P pronounced are listed, with their
pronunciations, in LEXICON's folder as <stem>_g2p.txt (or --g2p-out).

Words are looked up in CMUdict case-insensitively and written as the input
spells them. Tokens in <...> or [...] (<s>, <UNK>, [noise]) are markers and
skipped. A word that neither CMUdict nor the G2P can pronounce (digits,
symbols) is an error naming the file and line.

--phone-map FILE: lines 'ARPABET TARGET [TARGET ...]' ('#' comments),
e.g. 'DH D' or 'OY AO IY'; phones not listed are kept. --phone-set FILE
(e.g. AN4's etc/an4.phone or a lang dir's phones.txt) checks every output
phone. docs/LEXICON.md describes the G2P and its accuracy.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``prepare-lexicon`` subcommand."""
    p = subparsers.add_parser(
        "prepare-lexicon",
        help="write a lexicon from CMUdict, with G2P pronunciations for missing words",
        description="Pronounce the words of a Kaldi text or a word list with CMUdict and a G2P.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--text", metavar="FILE", help="Kaldi text file ('uttid w1 w2 ...')")
    src.add_argument("--words", metavar="FILE", help="word list (first field of each line)")
    p.add_argument("out", metavar="LEXICON", help="lexicon file to write (e.g. data/local/lexicon.txt)")
    p.add_argument("--keep-stress", action="store_true",
                   help="keep CMUdict's stress digits (AH0, EY1); default: removed. G2P output has none")
    p.add_argument("--g2p-model", metavar="FILE",
                   help="G2P model file (default: the model shipped with asr, trained on all of CMUdict)")
    p.add_argument("--g2p-nbest", type=int, default=1, metavar="N",
                   help="pronunciations per G2P word, the N best (default 1)")
    p.add_argument("--no-g2p", action="store_true", help="a word missing from CMUdict is an error")
    p.add_argument("--g2p-out", metavar="FILE", help="list of the G2P words (default: LEXICON's folder, <stem>_g2p.txt)")
    p.add_argument("--phone-map", metavar="FILE", help="ARPAbet -> target phone set ('ARPABET TARGET...' lines)")
    p.add_argument("--phone-set", metavar="FILE", help="phone list every output phone must be in")
    p.add_argument("--silence-word", default="<SIL>", help="silence word (default <SIL>)")
    p.add_argument("--silence-phone", default="SIL", help="silence phone (default SIL)")
    p.set_defaults(func=run)


def _config(args: argparse.Namespace):
    from asr.errors import LexiconError
    from asr.g2p.lexicon import LexiconConfig, read_phone_map, read_phone_set

    if args.g2p_nbest < 1:
        raise LexiconError(f"--g2p-nbest must be >= 1, got {args.g2p_nbest}")
    phone_set = read_phone_set(args.phone_set) if args.phone_set else None
    if phone_set is not None:
        phone_set = phone_set | {args.silence_phone}
    return LexiconConfig(
        keep_stress=args.keep_stress, g2p_nbest=args.g2p_nbest,
        phone_map=read_phone_map(args.phone_map) if args.phone_map else {},
        phone_set=phone_set, silence_word=args.silence_word, silence_phone=args.silence_phone,
    )


def run(args: argparse.Namespace) -> int:
    """Writes the lexicon and the list of G2P words."""
    from asr.g2p import default_decoder, load_decoder
    from asr.g2p.cmu import cmudict_pronunciations
    from asr.g2p.lexicon import build_lexicon, words_from_list, words_from_text
    from asr.lang.lexicon import write_lexicon

    config = _config(args)
    words = words_from_text(args.text) if args.text else words_from_list(args.words)
    if args.no_g2p:
        make_decoder = None
    elif args.g2p_model:
        make_decoder = lambda: load_decoder(args.g2p_model)  # noqa: E731
    else:
        make_decoder = default_decoder
    built = build_lexicon(words, cmudict_pronunciations(args.keep_stress), make_decoder, config)
    out = Path(args.out)
    g2p_out = Path(args.g2p_out) if args.g2p_out else out.with_name(f"{out.stem}_g2p{out.suffix or '.txt'}")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_lexicon(built.lexicon, out)
    write_lexicon(built.g2p_lines(), g2p_out)
    if built.g2p_words and args.keep_stress:
        log.warning("G2P pronunciations have no stress marks (the model is trained without them)")
    log.info("%s: %d pronunciations of %d words; %d word(s) from the G2P (%s)%s", out, len(built.lexicon),
             len({w for w, _ in built.lexicon}), len(built.g2p_words), g2p_out,
             ": " + " ".join(built.g2p_words[:10]) + (" ..." if len(built.g2p_words) > 10 else "")
             if built.g2p_words else "")
    return 0
