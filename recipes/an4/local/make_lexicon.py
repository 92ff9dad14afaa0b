#!/usr/bin/env python3
"""Builds lexicon/an4/lexicon.txt from CMU AN4's etc/an4.dic.

Alternate pronunciations (``A(2)``) become extra lines for the base word
(``A``); phones are kept as they are (AN4's phone set is etc/an4.phone, with
SIL the silence phone); ``<SIL> SIL`` is added for the silence word.  Every
phone used must be in etc/an4.phone.

Usage: make_lexicon.py [--corpus DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ALT_RE = re.compile(r"^(.+)\((\d+)\)$")


def read_phone_set(path: Path) -> set[str]:
    return {line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def make_lexicon(dic: Path, phone_set: set[str]) -> list[tuple[str, list[str]]]:
    """Reads an4.dic; returns ``(word, phones)`` pairs in file order, duplicates dropped."""
    out: list[tuple[str, list[str]]] = [("<SIL>", ["SIL"])]
    seen = {("<SIL>", ("SIL",))}
    for i, line in enumerate(dic.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        word, phones = fields[0], fields[1:]
        m = ALT_RE.match(word)
        if m:
            word = m.group(1)
        if not phones:
            raise ValueError(f"{dic}:{i}: word '{word}' has no pronunciation")
        bad = [p for p in phones if p not in phone_set]
        if bad:
            raise ValueError(f"{dic}:{i}: phone(s) {' '.join(bad)} not in the phone set")
        key = (word, tuple(phones))
        if key in seen:
            continue
        seen.add(key)
        out.append((word, phones))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpora" / "an4",
                   help="AN4 corpus dir (default ../shared/corpora/an4 relative to the repo)")
    p.add_argument("--out", type=Path, default=REPO / "lexicon" / "an4" / "lexicon.txt")
    args = p.parse_args(argv)
    etc = args.corpus / "etc"
    try:
        phone_set = read_phone_set(etc / "an4.phone")
        lexicon = make_lexicon(etc / "an4.dic", phone_set)
    except (OSError, ValueError) as e:
        print(f"make_lexicon.py: {e}", file=sys.stderr)
        return 1
    if "SIL" not in phone_set:
        print(f"make_lexicon.py: {etc / 'an4.phone'} has no SIL phone", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text("".join(f"{w} {' '.join(ph)}\n" for w, ph in lexicon), encoding="utf-8")
    tmp.replace(args.out)
    words = {w for w, _ in lexicon}
    print(f"{args.out}: {len(lexicon)} pronunciations of {len(words)} words")
    return 0


if __name__ == "__main__":
    sys.exit(main())
