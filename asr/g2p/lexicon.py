"""Building a Kaldi lexicon from CMUdict and the G2P (``asr prepare-lexicon``).

Each word of a text or word list is looked up in CMUdict (case-insensitively:
Kaldi texts are often upper case, CMUdict is lower case); every CMUdict
pronunciation becomes a lexicon line.  A word missing from CMUdict is
pronounced by the G2P.  An optional phone map rewrites CMUdict's ARPAbet
into the phone set of an acoustic model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from asr.errors import LexiconError
from asr.fileio import read_lines
from asr.g2p.align import Pronunciation

#: Tokens of a Kaldi text that are markers, not words: ``<s>``, ``<SIL>``, ``<UNK>``, ``[noise]``...
_MARKER_BRACKETS = (("<", ">"), ("[", "]"))


@dataclass(frozen=True)
class WordSource:
    """A word and where it was first seen (for error messages)."""

    word: str
    path: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class LexiconConfig:
    """How pronunciations are chosen.

    Attributes:
      keep_stress: Keep CMUdict's stress digits (``AH0``); G2P output never has them.
      g2p_nbest: Pronunciations per G2P word (the n best, distinct).
      phone_map: ARPAbet phone -> target phones (phones not in it are kept).
      phone_set: If given, every output phone must be in it.
      silence_word, silence_phone: The ``<SIL> SIL`` line every lexicon of ``asr`` has.
    """

    keep_stress: bool = False
    g2p_nbest: int = 1
    phone_map: dict[str, tuple[str, ...]] = field(default_factory=dict)
    phone_set: frozenset[str] | None = None
    silence_word: str = "<SIL>"
    silence_phone: str = "SIL"


def is_marker(token: str) -> bool:
    """True for ``<...>`` and ``[...]`` tokens (sentence marks, noise and silence symbols)."""
    return any(token.startswith(a) and token.endswith(b) for a, b in _MARKER_BRACKETS)


def words_from_text(path: str | Path) -> list[WordSource]:
    """Distinct words of a Kaldi text file (``uttid w1 w2 ...``) in order of first use;
    marker tokens (:func:`is_marker`) are skipped."""
    return _collect(path, lambda fields: fields[1:])


def words_from_list(path: str | Path) -> list[WordSource]:
    """Distinct words of a word list (the first field of each non-blank line;
    a ``words.txt`` with ids works too)."""
    return _collect(path, lambda fields: fields[:1])


def _collect(path: str | Path, pick: Callable[[list[str]], list[str]]) -> list[WordSource]:
    seen: dict[str, WordSource] = {}
    for i, line in enumerate(read_lines(path, LexiconError), 1):
        for word in pick(line.split()):
            if not is_marker(word) and word not in seen:
                seen[word] = WordSource(word, str(path), i)
    if not seen:
        raise LexiconError(f"{path}: no words")
    return list(seen.values())


def read_phone_map(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Reads ``ARPABET TARGET [TARGET ...]`` lines (``#`` starts a comment).

    Raises:
      LexiconError: for a line without a target or a phone mapped twice (file:line).
    """
    mapping: dict[str, tuple[str, ...]] = {}
    for i, line in enumerate(read_lines(path, LexiconError), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) < 2:
            raise LexiconError(f"{path}:{i}: expected 'ARPABET TARGET [TARGET ...]', got '{line.strip()}'")
        if fields[0] in mapping:
            raise LexiconError(f"{path}:{i}: phone '{fields[0]}' is mapped twice")
        mapping[fields[0]] = tuple(fields[1:])
    return mapping


def read_phone_set(path: str | Path) -> frozenset[str]:
    """A phone list (first field of each line: ``phones.txt``, ``an4.phone``)."""
    phones = frozenset(ln.split()[0] for ln in read_lines(path, LexiconError) if ln.split())
    if not phones:
        raise LexiconError(f"{path}: no phones")
    return phones


@dataclass
class BuiltLexicon:
    """The lexicon lines (sorted by word in byte order, a word's pronunciations
    in CMUdict's or the G2P's order) and the words the G2P pronounced."""

    lexicon: list[tuple[str, list[str]]]
    g2p_words: list[str]

    def g2p_lines(self) -> list[tuple[str, list[str]]]:
        """The lexicon lines of the G2P's words."""
        chosen = set(self.g2p_words)
        return [(w, p) for w, p in self.lexicon if w in chosen]


def map_phones(pron: Pronunciation, config: LexiconConfig, src: WordSource) -> Pronunciation:
    """Applies the phone map (the exact phone first, else its stressless base)
    and checks the result against the phone set.

    Raises:
      LexiconError: naming the word and where it came from, for a phone outside the phone set.
    """
    from asr.g2p.cmu import strip_stress

    out: list[str] = []
    for p in pron:
        out.extend(config.phone_map.get(p) or config.phone_map.get(strip_stress(p)) or (p,))
    if config.phone_set is not None:
        bad = sorted({p for p in out if p not in config.phone_set})
        if bad:
            raise LexiconError(f"{src.where}: word '{src.word}': phone(s) {' '.join(bad)} not in the phone set "
                               "(add them to the phone map)")
    return tuple(out)


def _g2p_pronunciations(src: WordSource, decoder, nbest: int) -> list[Pronunciation]:
    """The G2P's ``nbest`` pronunciations of a word (spelled in lower case, as CMUdict).

    Raises:
      LexiconError: if the word has characters the G2P has no graphones for, or no output.
    """
    spelling = src.word.lower()
    unknown = sorted(set(spelling) - decoder.letters)
    if unknown:
        raise LexiconError(f"{src.where}: word '{src.word}' is not in CMUdict and the G2P cannot spell "
                           f"{' '.join(repr(c) for c in unknown)}; add it to a lexicon by hand")
    prons = [p for p, _ in decoder.pronounce(spelling, nbest)]
    if not prons:
        raise LexiconError(f"{src.where}: word '{src.word}' is not in CMUdict and the G2P finds no pronunciation")
    return prons


def build_lexicon(words: list[WordSource], cmu: dict[str, list[Pronunciation]],
                  make_decoder: Callable[[], object] | None, config: LexiconConfig = LexiconConfig()) -> BuiltLexicon:
    """Pronounces every word: CMUdict first, else the G2P.

    Args:
      words: The words, with their origin.
      cmu: Lower-case word -> pronunciations (:func:`asr.g2p.cmu.cmudict_pronunciations`).
      make_decoder: Returns a :class:`~asr.g2p.decode.G2PDecoder`; called once, and
        only if a word is missing from CMUdict.  ``None``: no G2P (a missing word is an error).
      config: Pronunciation settings.

    Raises:
      LexiconError: for a word that neither CMUdict nor the G2P can pronounce (file:line).
    """
    entries: dict[str, list[Pronunciation]] = {}
    g2p_words: list[str] = []
    decoder = None
    for src in words:
        prons = cmu.get(src.word.lower())
        if prons is None:
            if make_decoder is None:
                raise LexiconError(f"{src.where}: word '{src.word}' is not in CMUdict (and the G2P is off)")
            decoder = decoder or make_decoder()
            prons = _g2p_pronunciations(src, decoder, config.g2p_nbest)
            g2p_words.append(src.word)
        mapped = [map_phones(p, config, src) for p in prons]
        entries[src.word] = list(dict.fromkeys(mapped))
    if config.silence_word not in entries:
        entries[config.silence_word] = [(config.silence_phone,)]
    lexicon = [(w, list(p)) for w in sorted(entries, key=lambda w: w.encode("utf-8")) for p in entries[w]]
    return BuiltLexicon(lexicon=lexicon, g2p_words=sorted(g2p_words, key=lambda w: w.encode("utf-8")))
