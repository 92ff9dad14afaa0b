"""Word-internal context-dependent phones, chosen by their counts in training text.

A monophone model gives the ``IY`` of ``B`` (``B IY``) and of ``D``
(``D IY``) the same pdfs, although what tells the two letters apart is
largely in how ``IY`` begins.  As HTK's and Sphinx's word-internal triphones,
each phone of a pronunciation is replaced by a unit that names its neighbours
inside the word: ``L-P+R`` (triphone), ``L-P`` or ``P+R`` (biphones), or
``P``.  Units that are rare in the training text back off to the shorter
context; what survives is decided by ``min_count`` alone, with no decision
tree and no phonetic questions, which suits small-vocabulary tasks such as
AN4 where most words are frequent.

The units are ordinary phones of the lang dir (each with its own pdfs), so
L, H, HLG and every tool downstream are unchanged.  Contexts never cross
word boundaries, so no context transducer (Kaldi's C) is needed.  The base
phone of each unit is kept in ``lang.yaml`` (``base_phones``) so that a
monophone model can align data in the context-dependent lang
(:func:`pdf_map`).

Word-position-dependent phones (Kaldi's ``prepare_lang.sh`` default) are the
other kind of context kept here: each phone gets the suffix ``_B``, ``_I``,
``_E`` (begin, inside, end of a word) or ``_S`` (a one-phone word), so the
``IY`` ending ``B`` and the ``IY`` that is all of ``E`` have their own pdfs
and a boundary between the two can be learned.  Only the variants the
lexicon uses are created.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import torch

from asr.errors import LexiconError
from asr.lang.lexicon import Lexicon

LEFT, RIGHT = "-", "+"
POSITIONS = ("_B", "_I", "_E", "_S")


def _contexts(pron: list[str], i: int) -> tuple[str | None, str, str | None]:
    return (pron[i - 1] if i > 0 else None, pron[i], pron[i + 1] if i + 1 < len(pron) else None)


def _unit_name(left: str | None, phone: str, right: str | None) -> str:
    return f"{left + LEFT if left else ''}{phone}{RIGHT + right if right else ''}"


def context_counts(lexicon: Lexicon, word_counts: Counter) -> Counter:
    """Expected counts of every word-internal context of every phone.

    A word with several pronunciations shares its count equally among them.
    Keys are ``(left, phone, right)`` with ``None`` for a missing or unused
    side: each phone occurrence counts for its triphone, both biphones and
    the monophone.
    """
    prons: dict[str, list[list[str]]] = {}
    for word, pron in lexicon:
        prons.setdefault(word, []).append(pron)
    counts: Counter = Counter()
    for word, n in word_counts.items():
        for pron in prons.get(word, []):
            share = n / len(prons[word])
            for i in range(len(pron)):
                left, phone, right = _contexts(pron, i)
                for key in {(left, phone, right), (left, phone, None), (None, phone, right), (None, phone, None)}:
                    counts[key] += share
    return counts


def choose_unit(left: str | None, phone: str, right: str | None, counts: Counter, min_count: float) -> str:
    """The most specific context of ``phone`` seen at least ``min_count`` times.

    Triphone first, then the more frequent biphone, then the monophone.
    """
    if left and right and counts[(left, phone, right)] >= min_count:
        return _unit_name(left, phone, right)
    biphones = [(counts[(left, phone, None)], 0, left, None), (counts[(None, phone, right)], 1, None, right)]
    for n, _, l, r in sorted(biphones, key=lambda b: (-b[0], b[1])):
        if (l or r) and n >= min_count:
            return _unit_name(l, phone, r)
    return phone


def expand_lexicon(
    lexicon: Lexicon, word_counts: Counter, min_count: float, silence_phones: Iterable[str]
) -> tuple[Lexicon, dict[str, str]]:
    """Rewrites pronunciations into word-internal context-dependent units.

    Silence phones keep their names and are no one's context.

    Args:
      lexicon: The monophone lexicon.
      word_counts: Word counts of the training text (OOV words are ignored).
      min_count: Fewest expected occurrences a context needs for its own unit.
      silence_phones: Phones left as they are.

    Returns:
      The rewritten lexicon (duplicates that the rewriting creates are
      dropped) and ``{unit: base phone}`` for every unit that is not a plain
      phone.

    Raises:
      LexiconError: if a phone name already contains ``-`` or ``+``.
    """
    if min_count <= 0:
        raise LexiconError(f"context min_count must be > 0, got {min_count}")
    silence = set(silence_phones)
    for word, pron in lexicon:
        for p in pron:
            if LEFT in p or RIGHT in p:
                raise LexiconError(f"phone '{p}' of '{word}' contains '{LEFT}' or '{RIGHT}', which name contexts")
    counts = context_counts([(w, [p for p in pron if p not in silence]) for w, pron in lexicon], word_counts)
    out: Lexicon = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    base: dict[str, str] = {}
    for word, pron in lexicon:
        speech = [p for p in pron if p not in silence]
        units, k = [], 0
        for p in pron:
            if p in silence:
                units.append(p)
                continue
            unit = choose_unit(*_contexts(speech, k), counts, min_count)
            k += 1
            if unit != p:
                base[unit] = p
            units.append(unit)
        if (word, tuple(units)) not in seen:
            seen.add((word, tuple(units)))
            out.append((word, units))
    return out, base


def position_dependent_lexicon(
    lexicon: Lexicon, silence_phones: Iterable[str], base_phones: dict[str, str] | None = None
) -> tuple[Lexicon, dict[str, str]]:
    """Adds Kaldi's word-position suffixes ``_B``/``_I``/``_E``/``_S`` to every non-silence phone.

    Positions count the word's speech phones only: silence phones keep their
    names and don't break a word into parts.

    Args:
      lexicon: A lexicon whose phones are monophones or units of
        :func:`expand_lexicon`.
      silence_phones: Phones left as they are.
      base_phones: ``{unit: base phone}`` for units already expanded, so the
        result maps to the monophone.

    Returns:
      The rewritten lexicon and ``{unit: base phone}`` for every unit.

    Raises:
      LexiconError: if a phone name already ends in a position suffix.
    """
    silence = set(silence_phones)
    base_phones = base_phones or {}
    out: Lexicon = []
    base: dict[str, str] = {}
    for word, pron in lexicon:
        n = sum(p not in silence for p in pron)
        units, k = [], 0
        for p in pron:
            if p in silence:
                units.append(p)
                continue
            if p.endswith(POSITIONS):
                raise LexiconError(f"phone '{p}' of '{word}' already ends in a word-position suffix")
            suffix = "_S" if n == 1 else "_B" if k == 0 else "_E" if k == n - 1 else "_I"
            k += 1
            base[p + suffix] = base_phones.get(p, p)
            units.append(p + suffix)
        out.append((word, units))
    return out, base


def pdf_map(source, target) -> torch.Tensor:
    """For each pdf of ``target``, the pdf of ``source`` that models its base phone.

    For a ``target`` with a tree (and a monophone ``source`` with the same
    phones), each leaf maps to the pdf of the (central phone, pdf class) that
    most of its context windows have
    (:func:`asr.lang.context_graph.leaf_source_pdfs`).

    Lets a model trained on ``source`` (say a monophone lang) score the graphs
    of ``target`` (the same phones with word-internal contexts): column
    ``map[j] - 1`` of its output stands in for pdf ``j``.  Index 0 is unused.

    Args:
      source: The model's :class:`~asr.lang.lang_dir.LangDir`.
      target: A lang dir whose phones are ``source``'s phones or units based
        on them (``base_phones`` in its ``lang.yaml``), with the same topologies.

    Raises:
      LexiconError: if a base phone is missing from ``source`` or its topology differs.
    """
    if target.context is not None:
        # A lang with a tree: each leaf is scored by the monophone pdf of its commonest phone and class.
        from asr.lang.context_graph import leaf_source_pdfs

        if source.context is not None:
            raise LexiconError(f"{source.path}: mapping from one tree's leaves to another's is not supported")
        return leaf_source_pdfs(source, target.context.tree)
    src_table, dst_table = source.pdf_table, target.pdf_table
    src_index = {p: j for j, p in enumerate(source.hmm_phones)}
    bases = target.config.get("base_phones", {}) or {}
    out = [0]
    for j, phone in enumerate(target.hmm_phones):
        b = bases.get(phone, phone)
        if b not in src_index:
            raise LexiconError(f"{source.path}: phone '{b}' (base of '{phone}' in {target.path}) is not in this lang")
        sj = src_index[b]
        n = dst_table.topologies[j].num_pdf_classes
        if src_table.topologies[sj].num_pdf_classes != n:
            raise LexiconError(
                f"{target.path}: phone '{phone}' has {n} pdf classes but '{b}' in {source.path} has "
                f"{src_table.topologies[sj].num_pdf_classes}"
            )
        out += [src_table.pdf_id(sj, c) for c in range(n)]
    return torch.tensor(out, dtype=torch.int64)
