"""Pronunciation lexicons and disambiguation symbols.

A lexicon file has one pronunciation per line, ``WORD PHONE PHONE ...``.  A
word with several pronunciations has several lines.  ``lexicon/README.md``
describes the format.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from asr.errors import LexiconError
from asr.fileio import read_lines

log = logging.getLogger("asr.lang.lexicon")

Lexicon = list[tuple[str, list[str]]]


def read_lexicon(path: str | Path, phone_set: set[str] | None = None) -> Lexicon:
    """Reads a lexicon file.

    Exact duplicate lines (same word and pronunciation) are dropped with a
    warning; they would only create homophone disambiguation symbols.

    Args:
      path: The lexicon file.
      phone_set: If given, every phone must belong to it.

    Raises:
      LexiconError: for an empty lexicon, a word without phones, a phone not
        in ``phone_set`` or a reserved symbol used as a word or phone; the
        message names the file and line.
    """
    path = Path(path)
    lexicon: Lexicon = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for i, line in enumerate(read_lines(path, LexiconError), 1):
        fields = line.split()
        if not fields:
            continue
        word, phones = fields[0], fields[1:]
        if not phones:
            raise LexiconError(f"{path}:{i}: word '{word}' has no pronunciation")
        if word in ("<eps>", "#0", "<s>", "</s>") or word.startswith("#"):
            raise LexiconError(f"{path}:{i}: '{word}' is a reserved symbol and cannot be a word")
        for p in phones:
            if p == "<eps>" or p.startswith("#"):
                raise LexiconError(f"{path}:{i}: '{p}' is a reserved symbol and cannot be a phone")
            if phone_set is not None and p not in phone_set:
                raise LexiconError(f"{path}:{i}: phone '{p}' is not in the phone set")
        key = (word, tuple(phones))
        if key in seen:
            log.warning("%s:%d: duplicate pronunciation of '%s' dropped", path, i, word)
            continue
        seen.add(key)
        lexicon.append((word, phones))
    if not lexicon:
        raise LexiconError(f"{path}: lexicon is empty")
    return lexicon


def write_lexicon(lexicon: Lexicon, path: str | Path) -> None:
    """Writes a lexicon atomically, one pronunciation per line."""
    from asr.fileio import atomic_write_text

    atomic_write_text(path, "".join(f"{w} {' '.join(p)}\n" for w, p in lexicon))


def add_disambig_symbols(lexicon: Lexicon) -> tuple[Lexicon, int]:
    """Appends ``#1``, ``#2``, ... to pronunciations that need them.

    As Kaldi's ``add_lex_disambig.pl``: a pronunciation that is a proper
    prefix of another one, or that several words share (homophones), gets a
    distinct disambiguation symbol so that L stays determinizable.  ``#0`` is
    reserved for the language model's back-off arcs.

    Returns:
      The lexicon with disambiguation symbols and the highest index used
      (0 if none was needed).
    """
    counts = Counter(tuple(p) for _, p in lexicon)
    prefixes = {tuple(p[:k]) for _, p in lexicon for k in range(1, len(p))}
    next_id: Counter = Counter()
    max_id = 0
    out: Lexicon = []
    for word, phones in lexicon:
        pron = tuple(phones)
        if pron in prefixes or counts[pron] > 1:
            next_id[pron] += 1
            max_id = max(max_id, next_id[pron])
            out.append((word, list(pron) + [f"#{next_id[pron]}"]))
        else:
            out.append((word, list(pron)))
    return out, max_id
