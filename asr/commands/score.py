"""``asr score``: word and sentence error rates of a hypothesis text file."""

from __future__ import annotations

import argparse

from asr.errors import DataDirError

_EPILOG = """\
Output: the Kaldi summary lines
  %WER 5.95 [ 46 / 773, 10 ins, 12 del, 24 sub ]
  %SER 30.00 [ 39 / 130 ]
and, with --details, a blank line, per-utterance alignments (ref/hyp/op lines,
*** for a missing word, op C=correct S=substitution I=insertion D=deletion,
"#csid" counts), a per-speaker table, the most frequent substitution pairs
(REF HYP COUNT) and the words with the most errors (REF = occurrences in the
reference, CORR, SUB and DEL of those, INS = times the word was inserted,
ERR = SUB + DEL + INS), as sclite's summary. --top N sets how many pairs and
words are listed (0: all).

Reference utterances missing from HYP count as all deletions; HYP utterances
not in REF are ignored. Both are warned about.

No text normalization happens unless asked for: --normalize and
--remove-tokens apply to REF and HYP alike.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``score`` subcommand."""
    p = subparsers.add_parser(
        "score",
        help="compute %%WER/%%SER of a hypothesis against a reference",
        description="Score Kaldi text files (lines 'uttid w1 w2 ...'; a hypothesis may have no words).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("ref", metavar="REF", help="reference Kaldi text file")
    p.add_argument("hyp", metavar="HYP", help="hypothesis Kaldi text file")
    p.add_argument("--details", action="store_true",
                   help="also print per-utterance alignments, per-speaker error rates, the most frequent "
                        "substitutions and per-word error counts")
    p.add_argument("--top", type=int, default=20, metavar="N",
                   help="substitution pairs and words listed by --details (default 20; 0: all)")
    p.add_argument("--utt2spk", metavar="FILE",
                   help="utterance-to-speaker map for --details (default: the utterance id up to its first '-')")
    p.add_argument("--normalize", choices=("upper", "lower"), default=None,
                   help="map all words of REF and HYP to upper or lower case (default: compare as written)")
    p.add_argument("--remove-tokens", metavar="LIST", default="",
                   help="comma-separated tokens deleted from REF and HYP before scoring, "
                        "e.g. '<s>,</s>,<sil>,[noise]' (compared after --normalize; default: none)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Prints the %WER and %SER lines (and details after a blank line)."""
    from asr.fileio import read_table
    from asr.data.datadir import read_text
    from asr.scoring.wer import format_details, format_wer, normalize_text, score

    if args.top < 0:
        raise DataDirError(f"--top must be >= 0, got {args.top}")
    remove = [t for t in (s.strip() for s in args.remove_tokens.split(",")) if t]
    ref = {u: normalize_text(w, args.normalize, remove) for u, w in read_text(args.ref).items()}
    hyp = {u: normalize_text(w, args.normalize, remove) for u, w in read_text(args.hyp).items()}
    utt2spk = read_table(args.utt2spk, DataDirError) if args.utt2spk else None
    if utt2spk is not None:
        lacking = sorted(u for u in ref if u not in utt2spk)
        if lacking:
            raise DataDirError(f"{args.utt2spk}: no speaker for utterance '{lacking[0]}' ({len(lacking)} in all)")
    result = score(ref, hyp)
    print(format_wer(result))
    if args.details:
        print()
        print(format_details(result, utt2spk, args.top or None))
    return 0
