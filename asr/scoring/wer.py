"""Word and sentence error rates, as Kaldi's ``compute-wer`` reports them.

Edit distances come from :mod:`kaldialign` (a port of Kaldi's Levenshtein
code), so the insertion/deletion/substitution split matches Kaldi's.  Text
normalization is never implicit: :func:`normalize_text` does exactly what the
caller asks and nothing else.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import kaldialign

from asr.errors import DataDirError

log = logging.getLogger("asr.scoring.wer")

#: How an alignment shows a missing word (deletions in hyp, insertions in ref).
EPS = "***"


@dataclass
class UttScore:
    """One utterance's errors and alignment.

    Attributes:
      utt: Utterance id.
      ref: Reference words.
      hyp: Hypothesis words (empty if the utterance was missing from hyp).
      ins: Inserted words.
      dels: Deleted words.
      subs: Substituted words.
      alignment: ``(ref_word, hyp_word)`` pairs; ``None`` on the side that has
        no word (insertion: ref side; deletion: hyp side).
    """

    utt: str
    ref: list[str]
    hyp: list[str]
    ins: int
    dels: int
    subs: int
    alignment: list[tuple[str | None, str | None]]

    @property
    def errors(self) -> int:
        """Total word errors."""
        return self.ins + self.dels + self.subs


@dataclass
class ScoreResult:
    """Totals over a test set plus the per-utterance details.

    Attributes:
      words: Reference words.
      ins: Insertions.
      dels: Deletions.
      subs: Substitutions.
      sentences: Scored utterances (all reference utterances).
      sentence_errors: Utterances with at least one word error.
      utts: Per-utterance scores, keyed by utterance id (sorted).
      missing: Reference utterances absent from hyp (scored as all deletions).
      extra: Hyp utterances absent from ref (ignored).
    """

    words: int = 0
    ins: int = 0
    dels: int = 0
    subs: int = 0
    sentences: int = 0
    sentence_errors: int = 0
    utts: dict[str, UttScore] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        """Total word errors."""
        return self.ins + self.dels + self.subs

    @property
    def wer(self) -> float:
        """Word error rate in percent; with no reference words, 0 if there are
        no errors and ``inf`` otherwise."""
        return _rate(self.errors, self.words)

    @property
    def ser(self) -> float:
        """Sentence error rate in percent (0 for an empty test set)."""
        return _rate(self.sentence_errors, self.sentences)


def _rate(errors: int, total: int) -> float:
    if total == 0:
        return 0.0 if errors == 0 else float("inf")
    return 100.0 * errors / total


def _align(ref: list[str], hyp: list[str]) -> list[tuple[str | None, str | None]]:
    """Aligns two word lists; ``None`` marks the empty side."""
    # Words become ints so that no real word can collide with the epsilon.
    ids: dict[str, int] = {}
    r = [ids.setdefault(w, len(ids) + 1) for w in ref]
    h = [ids.setdefault(w, len(ids) + 1) for w in hyp]
    words = {i: w for w, i in ids.items()}
    return [(words.get(a), words.get(b)) for a, b in kaldialign.align(r, h, 0)]


def score_utterance(utt: str, ref: list[str], hyp: list[str]) -> UttScore:
    """Scores one utterance (counts from ``kaldialign.edit_distance``)."""
    d = kaldialign.edit_distance(ref, hyp)
    return UttScore(utt, list(ref), list(hyp), d["ins"], d["del"], d["sub"], _align(ref, hyp))


def score(ref: Mapping[str, list[str]], hyp: Mapping[str, list[str]]) -> ScoreResult:
    """Scores hypotheses against references, like ``compute-wer --mode=all``.

    Every reference utterance is scored.  One missing from ``hyp`` counts as
    an empty hypothesis (all deletions) and is warned about.  Utterances in
    ``hyp`` but not in ``ref`` cannot be scored; they are ignored with a
    warning and listed in :attr:`ScoreResult.extra`.

    Args:
      ref: Utterance id -> reference words.
      hyp: Utterance id -> hypothesis words.
    """
    result = ScoreResult()
    result.missing = sorted((u for u in ref if u not in hyp), key=lambda u: u.encode("utf-8"))
    result.extra = sorted((u for u in hyp if u not in ref), key=lambda u: u.encode("utf-8"))
    if result.missing:
        log.warning(
            "%d reference utterance(s) have no hypothesis, scored as all deletions (first: %s)",
            len(result.missing), result.missing[0],
        )
    if result.extra:
        log.warning(
            "%d hypothesis utterance(s) are not in the reference and are ignored (first: %s)",
            len(result.extra), result.extra[0],
        )
    for utt in sorted(ref, key=lambda u: u.encode("utf-8")):
        u = score_utterance(utt, ref[utt], hyp.get(utt, []))
        result.utts[utt] = u
        result.words += len(u.ref)
        result.ins += u.ins
        result.dels += u.dels
        result.subs += u.subs
        result.sentences += 1
        result.sentence_errors += u.errors > 0
    return result


def format_wer(result: ScoreResult) -> str:
    """Kaldi's two summary lines, without a trailing newline::

        %WER 5.95 [ 46 / 773, 10 ins, 12 del, 24 sub ]
        %SER 30.00 [ 39 / 130 ]
    """
    return (
        f"%WER {result.wer:.2f} [ {result.errors} / {result.words}, "
        f"{result.ins} ins, {result.dels} del, {result.subs} sub ]\n"
        f"%SER {result.ser:.2f} [ {result.sentence_errors} / {result.sentences} ]"
    )


def _op(r: str | None, h: str | None) -> str:
    if r is None:
        return "I"
    if h is None:
        return "D"
    return "C" if r == h else "S"


def format_alignment(u: UttScore) -> list[str]:
    """Kaldi-style per-utterance lines (``ref``, ``hyp``, ``op``, ``#csid``).

    Columns are padded to a common width and missing words shown as ``***``.
    """
    cols = [(r if r is not None else EPS, h if h is not None else EPS, _op(r, h)) for r, h in u.alignment]
    widths = [max(len(r), len(h)) for r, h, _ in cols]
    correct = sum(op == "C" for _, _, op in cols)

    def row(label: str, k: int) -> str:
        cells = "  ".join(c[k].ljust(w) for c, w in zip(cols, widths)).rstrip()
        return f"{u.utt} {label:<4} {cells}".rstrip()

    return [
        row("ref", 0),
        row("hyp", 1),
        row("op", 2),
        f"{u.utt} #csid {correct} {u.subs} {u.ins} {u.dels}",
    ]


def speaker_of(utt: str, utt2spk: Mapping[str, str] | None = None) -> str:
    """The speaker of ``utt``: from ``utt2spk`` if given, else the prefix of
    the utterance id before its first '-' (the whole id if it has none).

    Raises:
      DataDirError: if ``utt2spk`` is given but lacks ``utt``.
    """
    if utt2spk is not None:
        if utt not in utt2spk:
            raise DataDirError(f"utt2spk has no entry for utterance '{utt}'")
        return utt2spk[utt]
    return utt.split("-", 1)[0]


def format_speakers(result: ScoreResult, utt2spk: Mapping[str, str] | None = None) -> list[str]:
    """A per-speaker table: sentences, words, errors by type, %WER and %SER."""
    per: dict[str, ScoreResult] = defaultdict(ScoreResult)
    for u in result.utts.values():
        s = per[speaker_of(u.utt, utt2spk)]
        s.words += len(u.ref)
        s.ins += u.ins
        s.dels += u.dels
        s.subs += u.subs
        s.sentences += 1
        s.sentence_errors += u.errors > 0
    rows = [("SPEAKER", "SENT", "WORDS", "CORR", "SUB", "DEL", "INS", "ERR", "%WER", "%SER")]
    for spk in sorted(per, key=lambda k: k.encode("utf-8")) + ["SUM"]:
        s = result if spk == "SUM" else per[spk]
        correct = s.words - s.subs - s.dels
        rows.append((spk, s.sentences, s.words, correct, s.subs, s.dels, s.ins, s.errors,
                     f"{s.wer:.2f}", f"{s.ser:.2f}"))
    widths = [max(len(str(r[k])) for r in rows) for k in range(len(rows[0]))]
    return [
        "  ".join(str(c).ljust(w) if k == 0 else str(c).rjust(w) for k, (c, w) in enumerate(zip(r, widths)))
        for r in rows
    ]


@dataclass
class WordErrors:
    """One word's errors over a test set, as sclite's per-word summary.

    Attributes:
      ref: Occurrences in the reference.
      correct: Reference occurrences recognized as themselves.
      subs: Reference occurrences recognized as another word.
      dels: Reference occurrences deleted.
      ins: Times the word was inserted (a hypothesis word with no reference word).
    """

    ref: int = 0
    correct: int = 0
    subs: int = 0
    dels: int = 0
    ins: int = 0

    @property
    def errors(self) -> int:
        """Substitutions, deletions and insertions of the word."""
        return self.subs + self.dels + self.ins


def substitution_pairs(result: ScoreResult) -> list[tuple[str, str, int]]:
    """``(ref_word, hyp_word, count)`` of every substitution, most frequent first
    (ties in C order of ref, then hyp)."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for u in result.utts.values():
        for r, h in u.alignment:
            if r is not None and h is not None and r != h:
                counts[(r, h)] += 1
    return sorted(((r, h, n) for (r, h), n in counts.items()),
                  key=lambda t: (-t[2], t[0].encode("utf-8"), t[1].encode("utf-8")))


def word_errors(result: ScoreResult) -> dict[str, WordErrors]:
    """Per-word counts: substitutions and deletions by reference word,
    insertions by the inserted word (from the alignments)."""
    per: dict[str, WordErrors] = defaultdict(WordErrors)
    for u in result.utts.values():
        for r, h in u.alignment:
            if r is None:
                per[h].ins += 1
                continue
            w = per[r]
            w.ref += 1
            if h is None:
                w.dels += 1
            elif h == r:
                w.correct += 1
            else:
                w.subs += 1
    return dict(per)


def _columns(rows: list[tuple], left: int = 1) -> list[str]:
    """Rows as aligned text: the first ``left`` columns left-justified, the rest right."""
    widths = [max(len(str(r[k])) for r in rows) for k in range(len(rows[0]))]
    return ["  ".join(str(c).ljust(w) if k < left else str(c).rjust(w) for k, (c, w) in enumerate(zip(r, widths)))
            .rstrip() for r in rows]


def format_substitutions(result: ScoreResult, top: int | None = None) -> list[str]:
    """The most frequent substitution pairs (``top`` of them; all if ``None``)."""
    pairs = substitution_pairs(result)
    shown = pairs if top is None else pairs[:top]
    title = f"SUBSTITUTIONS: {len(shown)} most frequent of {len(pairs)} pairs ({result.subs} in all)"
    if not shown:
        return [title]
    return [title] + _columns([("REF", "HYP", "COUNT")] + [(r, h, n) for r, h, n in shown], left=2)


def format_word_errors(result: ScoreResult, top: int | None = None) -> list[str]:
    """Words with errors, most errors first (``top`` of them; all if ``None``):
    reference count, correct, substituted, deleted, inserted, errors."""
    per = word_errors(result)
    ranked = sorted((w for w in per if per[w].errors), key=lambda w: (-per[w].errors, w.encode("utf-8")))
    shown = ranked if top is None else ranked[:top]
    title = f"WORD ERRORS: {len(shown)} of the {len(ranked)} words with errors (SUB, DEL by reference word; INS by inserted word)"
    if not shown:
        return [title]
    rows = [("WORD", "REF", "CORR", "SUB", "DEL", "INS", "ERR")]
    rows += [(w, per[w].ref, per[w].correct, per[w].subs, per[w].dels, per[w].ins, per[w].errors) for w in shown]
    return [title] + _columns(rows)


def format_details(result: ScoreResult, utt2spk: Mapping[str, str] | None = None, top: int | None = 20) -> str:
    """Per-utterance alignments, the per-speaker table, the most frequent
    substitution pairs and the per-word error counts (no trailing newline)."""
    lines: list[str] = []
    for u in result.utts.values():
        lines.extend(format_alignment(u))
    lines.append("")
    lines.extend(format_speakers(result, utt2spk))
    lines.append("")
    lines.extend(format_substitutions(result, top))
    lines.append("")
    lines.extend(format_word_errors(result, top))
    return "\n".join(lines)


def normalize_text(
    words: Iterable[str], case: str | None = None, remove: Iterable[str] = ()
) -> list[str]:
    """Applies explicitly requested normalization to a word list.

    Args:
      words: The words.
      case: ``None`` (keep), ``"upper"`` or ``"lower"``.
      remove: Tokens to delete (e.g. ``<s>``, ``</s>``, ``<sil>``, ``[noise]``).
        They are compared after case mapping, which is applied to them too,
        so ``--normalize upper --remove-tokens '[noise]'`` also removes
        ``[NOISE]``.

    Raises:
      ValueError: on an unknown ``case``.
    """
    if case not in (None, "upper", "lower"):
        raise ValueError(f"unknown case normalization '{case}' (use upper or lower)")

    def fold(w: str) -> str:
        return w.upper() if case == "upper" else w.lower() if case == "lower" else w

    drop = {fold(t) for t in remove}
    return [w for w in (fold(w) for w in words) if w not in drop]

