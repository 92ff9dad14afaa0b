"""Back-off n-gram language models: estimation, ARPA I/O, queries and pruning.

An :class:`NgramLM` holds exactly what an ARPA file holds: for every order a
map from n-gram (a tuple of words) to its log10 probability, and for the
n-grams that can be histories a log10 back-off weight.  All probabilities in
this module are **log10**, as in ARPA files.

Queries follow standard ARPA back-off semantics (see :func:`ngram_logprob`)::

    P(w | h) = p(h w)                    if the n-gram "h w" is listed
             = bo(h) * P(w | h[1:])      otherwise (bo(h) = 1 if h is unlisted)

Estimation (:func:`estimate_ngram`) supports interpolated modified
Kneser-Ney and interpolated Witten-Bell.  The unigram level is always
interpolated with a uniform distribution over the whole vocabulary, so words
of the lexicon that never occur in the training text still get p > 0 (AN4's
NOVEMBER and THIRTEEN, for example).  Back-off weights are computed from the
stored probabilities (:func:`recompute_backoffs`), so that for every history
the probabilities over the vocabulary (all words but ``<s>``) sum to 1.
"""

from __future__ import annotations

import copy
import logging
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from asr.errors import DataDirError, LanguageModelError
from asr.fileio import PathLike, atomic_write_text, read_lines

log = logging.getLogger("asr.lang.lm")

BOS = "<s>"
EOS = "</s>"
#: ARPA's stand-in for log10(0), e.g. the unigram probability of ``<s>``.
LOG10_ZERO = -99.0
#: Probabilities below this many log10 units are treated as exactly zero.
_ZERO_THRESHOLD = -98.0
#: Tolerance for "this remaining mass is zero" in back-off computation.
_EPS = 1e-9

Ngram = tuple[str, ...]


@dataclass
class NgramLM:
    """A back-off n-gram model in ARPA form.

    Attributes:
      probs: ``probs[n - 1]`` maps each listed n-gram to its log10 probability.
      backoffs: ``backoffs[n - 1]`` maps an n-gram (n < order) to its log10
        back-off weight; an n-gram without an entry has weight 0.0 (i.e. 1).
    """

    probs: list[dict[Ngram, float]]
    backoffs: list[dict[Ngram, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        while len(self.backoffs) < len(self.probs):
            self.backoffs.append({})

    @property
    def order(self) -> int:
        """The highest n-gram order."""
        return len(self.probs)

    @property
    def vocab(self) -> list[str]:
        """The unigram words, in file order (including ``<s>`` and ``</s>``)."""
        return [g[0] for g in self.probs[0]]

    def counts(self) -> list[int]:
        """Number of listed n-grams per order (what the ARPA header says)."""
        return [len(p) for p in self.probs]


# ---------------------------------------------------------------------------
# Queries


def ngram_logprob(lm: NgramLM, word: str, history: Sequence[str] = ()) -> float:
    """Returns log10 P(word | history) with ARPA back-off semantics.

    Only the last ``order - 1`` words of ``history`` are used.

    Returns:
      The log10 probability; ``-inf`` if ``word`` is not a unigram of ``lm``.
      ``<s>`` gets ARPA's ``-99`` (it is never predicted).
    """
    hist: Ngram = tuple(history)[-(lm.order - 1):] if lm.order > 1 else ()
    bo = 0.0
    while True:
        g = hist + (word,)
        p = lm.probs[len(g) - 1].get(g)
        if p is not None:
            return bo + p
        if not hist:
            return -math.inf
        bo += lm.backoffs[len(hist) - 1].get(hist, 0.0)
        hist = hist[1:]


def _linear(logp: float) -> float:
    """10**logp, with ARPA's -99 mapped to an exact zero."""
    return 0.0 if logp <= _ZERO_THRESHOLD else 10.0 ** logp


# ---------------------------------------------------------------------------
# Back-off weights


def _backoffs_for_order(lm: NgramLM, n: int) -> None:
    """Sets the back-off weights of the n-grams (histories of the (n+1)-grams).

    For a history h with listed successors S(h), requiring that
    P(. | h) sums to 1 gives::

        bo(h) = (1 - sum_{w in S(h)} p(h w)) / (1 - sum_{w in S(h)} P(w | h[1:]))

    Lower orders must already be final because P(w | h[1:]) uses them.  When the
    listed successors already carry all the mass (numerator ~ 0) the weight is
    zero (log10 -99), or irrelevant (0.0) if they also cover all lower-order
    mass.  When the numerator is positive but the lower order has no mass left
    for the unlisted words (denominator ~ 0), back-off cannot fix the sum, so
    the listed probabilities of h are scaled to sum to 1 instead.  A
    negative numerator (listed probabilities summing to more than 1, only in
    a broken input file) is fixed the same way.
    """
    successors: dict[Ngram, list[Ngram]] = defaultdict(list)
    for g in lm.probs[n]:
        successors[g[:-1]].append(g)
    new_bo: dict[Ngram, float] = {}
    for h in lm.probs[n - 1]:
        # A history without listed successors passes all its mass down unchanged.
        new_bo[h] = 0.0
    for h, grams in successors.items():
        if h not in lm.probs[n - 1]:
            log.warning("n-gram context '%s' is not listed; its back-off weight cannot be set", " ".join(h))
            continue
        listed = sum(_linear(lm.probs[n][g]) for g in grams)
        lower = sum(_linear(ngram_logprob(lm, g[-1], h[1:])) for g in grams)
        num, den = 1.0 - listed, 1.0 - lower
        if num > _EPS and den > _EPS:
            new_bo[h] = math.log10(num / den)
        elif abs(num) <= _EPS:
            new_bo[h] = 0.0 if den <= _EPS else LOG10_ZERO
        else:
            # Back-off cannot repair this history: renormalize its listed n-grams.
            scale = -math.log10(listed) if listed > 0 else 0.0
            for g in grams:
                lm.probs[n][g] = max(lm.probs[n][g] + scale, LOG10_ZERO)
            new_bo[h] = LOG10_ZERO if den > _EPS else 0.0
    lm.backoffs[n - 1] = new_bo


def recompute_backoffs(lm: NgramLM) -> None:
    """Recomputes every back-off weight of ``lm`` in place, lowest order first.

    Afterwards P(. | h) sums to 1 over the vocabulary (without ``<s>``) for
    every history h, provided the unigrams sum to 1 (see
    :func:`_backoffs_for_order` for the cases where back-off cannot reach 1).
    The highest order has no back-off weights.
    """
    for n in range(1, lm.order):
        _backoffs_for_order(lm, n)
    lm.backoffs[lm.order - 1] = {}


def _normalize_unigrams(lm: NgramLM) -> None:
    """Scales the unigram probabilities (all but ``<s>``) to sum to 1."""
    total = sum(_linear(p) for g, p in lm.probs[0].items() if g != (BOS,))
    if total <= 0:
        raise LanguageModelError("language model has no unigram probability mass left")
    shift = -math.log10(total)
    for g, p in lm.probs[0].items():
        if g != (BOS,) and p > _ZERO_THRESHOLD:
            lm.probs[0][g] = p + shift


# ---------------------------------------------------------------------------
# Estimation


def _clean_vocab(vocab: Iterable[str]) -> list[str]:
    """Vocabulary in order, deduplicated, with ``<s>``/``</s>`` added.

    ``<eps>`` and disambiguation symbols (``#0``, ``#1``...) are dropped because
    a words.txt read as-is contains them and they must never be LM words.
    """
    out = [BOS, EOS]
    seen = set(out)
    for w in vocab:
        if w in seen or w == "<eps>" or re.fullmatch(r"#\d+", w):
            continue
        seen.add(w)
        out.append(w)
    return out


def _count_ngrams(sentences: list[list[str]], order: int, vocab: set[str]) -> list[Counter]:
    """Raw counts of all 1..order-grams of ``<s> sentence </s>``."""
    counts = [Counter() for _ in range(order)]
    for k, sent in enumerate(sentences):
        for w in sent:
            if w not in vocab or w in (BOS, EOS):
                raise ValueError(f"sentence {k}: word '{w}' is not in the vocabulary (or is {BOS}/{EOS})")
        s = (BOS, *sent, EOS)
        for n in range(1, order + 1):
            c = counts[n - 1]
            for i in range(len(s) - n + 1):
                c[s[i:i + n]] += 1
    counts[0].pop((BOS,), None)  # <s> is never predicted
    return counts


def _kn_discounts(counts: Iterable[int]) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts (D1, D2, D3+) from counts-of-counts.

    Falls back to plain KN's D = n1 / (n1 + 2 n2) for all three when some
    count-of-count is zero or a discount leaves its valid range (tiny data),
    and to 0.5 when even that is undefined.
    """
    coc = Counter(c for c in counts if c <= 4)
    n1, n2, n3, n4 = (coc[k] for k in (1, 2, 3, 4))
    if n1 > 0 and n2 > 0:
        y = n1 / (n1 + 2 * n2)
        if n3 > 0 and n4 > 0:
            d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
            if all(0 < dk < k for k, dk in zip((1, 2, 3), d)):
                return d
        return (y, y, y)
    return (0.5, 0.5, 0.5)


def _discount(d: tuple[float, float, float], c: int) -> float:
    return d[min(c, 3) - 1]


def _kn_adjusted_counts(raw: list[Counter]) -> list[dict[Ngram, int]]:
    """Kneser-Ney counts: raw counts at the top order and for n-grams starting
    with ``<s>`` (nothing can precede them), continuation counts elsewhere."""
    order = len(raw)
    adj: list[dict[Ngram, int]] = [dict() for _ in range(order)]
    adj[order - 1] = dict(raw[order - 1])
    for n in range(order - 1, 0, -1):
        cont: Counter = Counter(g[1:] for g in raw[n])
        adj[n - 1] = {g: (c if g[0] == BOS else cont[g]) for g, c in raw[n - 1].items()}
    return adj


def _group_by_history(counts: dict[Ngram, int]) -> dict[Ngram, list[tuple[str, int]]]:
    groups: dict[Ngram, list[tuple[str, int]]] = defaultdict(list)
    for g, c in counts.items():
        groups[g[:-1]].append((g[-1], c))
    return groups


# One smoothing method: (adjusted counts of one order) -> a function that splits
# one history's successors ``[(word, count), ...]`` into the probabilities of the
# listed words and gamma, the mass left for the lower order.
HistorySplit = Callable[[list[tuple[str, int]]], tuple[dict[str, float], float]]


@dataclass(frozen=True)
class LmEstimator:
    """A smoothing method for :func:`estimate_ngram` (an entry of :data:`LM_ESTIMATORS`).

    Both registered methods are interpolated: for a history h with listed
    successors w, ``P(w | h) = listed(w) + gamma(h) * P(w | h[1:])``.

    Attributes:
      name: The registry key (``--method`` of ``asr compile-graph``).
      summary: One line for ``--help`` and the docs.
      aliases: Other accepted spellings.
      adjust_counts: Raw counts per order -> the counts the method smooths.
      splitter: Adjusted counts of one order -> its :data:`HistorySplit`.
    """

    name: str
    summary: str
    aliases: tuple[str, ...]
    adjust_counts: Callable[[list[Counter]], list[dict[Ngram, int]]]
    splitter: Callable[[dict[Ngram, int]], HistorySplit]


#: Smoothing methods by name; ``asr compile-graph --method`` offers these.
LM_ESTIMATORS: dict[str, LmEstimator] = {}


def register_estimator(estimator: LmEstimator) -> LmEstimator:
    """Adds ``estimator`` to :data:`LM_ESTIMATORS` (one line per method)."""
    LM_ESTIMATORS[estimator.name] = estimator
    return estimator


def get_estimator(method: str) -> LmEstimator:
    """The estimator called ``method`` (or one of its aliases; ``_`` counts as ``-``).

    Raises:
      ValueError: if no estimator has that name.
    """
    key = method.lower().replace("_", "-")
    for est in LM_ESTIMATORS.values():
        if key == est.name or key in est.aliases:
            return est
    raise ValueError(f"unknown smoothing method '{method}' (use {' or '.join(LM_ESTIMATORS)})")


def _kneser_ney_splitter(counts: dict[Ngram, int]) -> HistorySplit:
    """Modified KN: ``listed(w) = (c - D(c)) / total``, ``gamma = sum_w D(c_w) / total``."""
    disc = _kn_discounts(counts.values())

    def split(succ: list[tuple[str, int]]) -> tuple[dict[str, float], float]:
        total = sum(c for _, c in succ)
        mass = sum(_discount(disc, c) for _, c in succ)  # left for lower orders
        return {w: (c - _discount(disc, c)) / total for w, c in succ}, mass / total

    return split


def _witten_bell_split(succ: list[tuple[str, int]]) -> tuple[dict[str, float], float]:
    """Witten-Bell: with T successor types, ``listed(w) = c / (total + T)``, ``gamma = T / (total + T)``."""
    total = sum(c for _, c in succ)
    mass = float(len(succ))  # one "new word" event per type
    return {w: c / (total + mass) for w, c in succ}, mass / (total + mass)


register_estimator(LmEstimator(
    "kneser-ney", "interpolated modified Kneser-Ney (plain-KN and fixed-discount fallbacks for tiny data)",
    ("kn", "modified-kneser-ney"), _kn_adjusted_counts, _kneser_ney_splitter,
))
register_estimator(LmEstimator(
    "witten-bell", "interpolated Witten-Bell", ("wb",),
    lambda raw: [dict(c) for c in raw], lambda counts: _witten_bell_split,
))


def estimate_ngram(
    sentences: list[list[str]], vocab: list[str], order: int, method: str = "kneser-ney"
) -> NgramLM:
    """Estimates an interpolated back-off n-gram model.

    Args:
      sentences: Training sentences as word lists, without ``<s>``/``</s>``
        (they are added here). Every word must be in ``vocab``.
      vocab: The whole word list (e.g. the lexicon's words, plus ``<UNK>`` if
        wanted). ``<s>`` and ``</s>`` are added; ``<eps>`` and ``#N`` are
        ignored. Every word gets a unigram probability > 0, seen or not.
      order: The n-gram order, >= 1 (1 to 4 are the tested ones).
      method: A name or alias in :data:`LM_ESTIMATORS`: ``"kneser-ney"``
        (interpolated modified Kneser-Ney, with plain-KN and fixed-discount
        fallbacks for tiny data) or ``"witten-bell"`` (interpolated Witten-Bell).

    Returns:
      The model; every n-gram seen in training is listed, and the back-off
      weights make each conditional distribution sum to 1.

    Raises:
      ValueError: on a bad order or method, or a sentence word not in vocab.
    """
    if order < 1:
        raise ValueError(f"n-gram order must be >= 1, got {order}")
    estimator = get_estimator(method)
    words = _clean_vocab(vocab)
    counts = estimator.adjust_counts(_count_ngrams(sentences, order, set(words)))

    lm = NgramLM(probs=[{} for _ in range(order)])
    predicted = [w for w in words if w != BOS]
    uniform = 1.0 / len(predicted)
    for n in range(1, order + 1):
        split = estimator.splitter(counts[n - 1])
        for h, succ in _group_by_history(counts[n - 1]).items():
            listed, gamma = split(succ)
            for w, p in listed.items():
                lower = uniform if n == 1 else _linear(ngram_logprob(lm, w, h[1:]))
                lm.probs[n - 1][h + (w,)] = math.log10(p + gamma * lower)
            if n == 1:
                for w in predicted:  # unseen vocabulary words: uniform share only
                    if (w,) not in lm.probs[0]:
                        lm.probs[0][(w,)] = math.log10(gamma * uniform) if gamma > 0 else LOG10_ZERO
        if n == 1:
            if not lm.probs[0]:  # no training text at all: uniform
                lm.probs[0] = {(w,): math.log10(uniform) for w in predicted}
            lm.probs[0] = {(BOS,): LOG10_ZERO, **dict(sorted(lm.probs[0].items()))}
        else:
            _backoffs_for_order(lm, n - 1)
    return lm


def train_lm_from_text(
    text_files: list[Path],
    vocab_words: list[str],
    order: int,
    method: str = "kneser-ney",
    oov: str | None = "<UNK>",
) -> tuple[NgramLM, int]:
    """Estimates an LM from Kaldi ``text`` files (``uttid w1 w2 ...``).

    ``<s>``/``</s>`` tokens in the text (AN4's training transcripts wrap lines
    in them) are removed, since the model adds its own.  Utterances with no
    words are skipped: they would only teach the model the ``<s> </s>``
    bigram, i.e. to favour empty output.

    Args:
      text_files: Kaldi text files.
      vocab_words: The lexicon's word list (the model's vocabulary).
      order: N-gram order.
      method: See :func:`estimate_ngram`.
      oov: Word that replaces out-of-vocabulary tokens (added to the
        vocabulary); ``None`` drops OOV tokens instead.

    Returns:
      The model and the number of OOV tokens (for the caller to log).

    Raises:
      DataDirError: if a text file is missing or not UTF-8.
    """
    vocab = set(vocab_words)
    sentences: list[list[str]] = []
    oov_count = 0
    for path in text_files:
        for line in read_lines(path, DataDirError):
            fields = line.split()
            sent = []
            for w in fields[1:]:
                if w in (BOS, EOS):
                    continue
                if w not in vocab:
                    oov_count += 1
                    if oov is None:
                        continue
                    w = oov
                sent.append(w)
            if sent:
                sentences.append(sent)
    words = list(vocab_words) + ([oov] if oov is not None and oov not in vocab else [])
    return estimate_ngram(sentences, words, order, method), oov_count


# ---------------------------------------------------------------------------
# ARPA I/O


def _fmt(x: float) -> str:
    return f"{max(x, LOG10_ZERO):.7f}"


def arpa_text(lm: NgramLM) -> str:
    """``lm`` as the text of a standard ARPA file.

    N-grams are written sorted (unigrams in the model's order); back-off
    weights are written for every n-gram below the top order that has one.
    """
    out = ["\\data\\\n"]
    for n, c in enumerate(lm.counts(), 1):
        out.append(f"ngram {n}={c}\n")
    for n in range(1, lm.order + 1):
        out.append(f"\n\\{n}-grams:\n")
        bos = lm.backoffs[n - 1] if n < lm.order else {}
        items = lm.probs[0].items() if n == 1 else sorted(lm.probs[n - 1].items())
        for g, p in items:
            line = f"{_fmt(p)}\t{' '.join(g)}"
            if g in bos:
                line += f"\t{_fmt(bos[g])}"
            out.append(line + "\n")
    out.append("\n\\end\\\n")
    return "".join(out)


def write_arpa(lm: NgramLM, path: PathLike) -> None:
    """Writes ``lm`` as a standard ARPA file (:func:`arpa_text`), atomically."""
    atomic_write_text(path, arpa_text(lm))


_COUNT_RE = re.compile(r"ngram\s+(\d+)\s*=\s*(\d+)")
_SECTION_RE = re.compile(r"\\(\d+)-grams:")


def _parse_float(text: str, where: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise LanguageModelError(f"{where}: '{text}' is not a number") from None
    if math.isnan(v):
        raise LanguageModelError(f"{where}: NaN in ARPA file")
    return v


def read_arpa(path: PathLike) -> NgramLM:
    """Reads an ARPA file.

    Everything before the first line that is exactly ``\\data\\`` is ignored
    (AN4's ``an4.ug.lm`` has comment lines that mention ``\\data\\`` and
    ``\\1-grams:`` inside text), and so is everything after ``\\end\\``.

    Raises:
      LanguageModelError: naming ``file:line`` if the file is missing, has no
        ``\\data\\`` header, a bad header line, sections out of order, a
        malformed or duplicate n-gram line, no ``\\end\\``, or a section whose
        size differs from the header's ``ngram N=count``.
    """
    lines = read_lines(path, LanguageModelError)
    declared, body = _read_arpa_header(lines, path)
    return _read_arpa_sections(lines, body, declared, path)


def _read_arpa_header(lines: list[str], path: PathLike) -> tuple[dict[int, tuple[int, int]], int]:
    """The ``\\data\\`` section's ``ngram N=count`` lines.

    Returns:
      ``{order: (count, line number)}`` and the index of the line after the
      header (the first that starts with a backslash, or the end).
    """
    start = next((i for i, ln in enumerate(lines) if ln.rstrip() == "\\data\\"), None)
    if start is None:
        raise LanguageModelError(f"{path}: no '\\data\\' line; not an ARPA file")
    declared: dict[int, tuple[int, int]] = {}
    i = start + 1
    while i < len(lines) and not lines[i].strip().startswith("\\"):
        text = lines[i].strip()
        if text:
            m = _COUNT_RE.fullmatch(text)
            if not m:
                raise LanguageModelError(f"{path}:{i + 1}: bad ARPA header line '{text[:60]}'")
            n = int(m.group(1))
            if n != len(declared) + 1:
                raise LanguageModelError(f"{path}:{i + 1}: expected 'ngram {len(declared) + 1}=...', got '{text}'")
            declared[n] = (int(m.group(2)), i + 1)
        i += 1
    if not declared:
        raise LanguageModelError(f"{path}:{start + 1}: ARPA header declares no n-gram counts")
    return declared, i


def _read_arpa_sections(
    lines: list[str], body: int, declared: dict[int, tuple[int, int]], path: PathLike
) -> NgramLM:
    """The ``\\N-grams:`` sections from line index ``body`` to ``\\end\\``, each checked against its count."""
    order = len(declared)
    lm = NgramLM(probs=[{} for _ in range(order)])
    n = 0  # the order of the current section
    ended = False
    for i in range(body, len(lines)):
        text = lines[i].strip()
        where = f"{path}:{i + 1}"
        if not text:
            continue
        if text.startswith("\\"):
            if n:
                _check_count(lm, n, declared, path)
            if text == "\\end\\":
                ended = True
                break
            m = _SECTION_RE.fullmatch(text)
            if not m:
                raise LanguageModelError(f"{where}: unexpected line '{text[:60]}'")
            if int(m.group(1)) != n + 1 or n + 1 > order:
                raise LanguageModelError(f"{where}: section '{text}' out of order or not in the header")
            n += 1
            continue
        if n == 0:
            raise LanguageModelError(f"{where}: n-gram line before any '\\N-grams:' section")
        _add_ngram_line(lm, n, text, where)
    if not ended:
        raise LanguageModelError(f"{path}: no '\\end\\' line (truncated file?)")
    if n != order:
        raise LanguageModelError(f"{path}: header declares {order} orders but only {n} section(s) found")
    return lm


def _add_ngram_line(lm: NgramLM, n: int, text: str, where: str) -> None:
    """Adds a line ``log10-prob w1 .. wn [log10-back-off]`` of the n-gram section (no back-off at the top order)."""
    fields = text.split()
    if len(fields) not in (n + 1, n + 2) or (len(fields) == n + 2 and n == lm.order):
        raise LanguageModelError(
            f"{where}: malformed {n}-gram line (expected log-prob, {n} word(s)"
            f"{'' if n == lm.order else ' and optional back-off'}): '{text[:60]}'"
        )
    g = tuple(fields[1:n + 1])
    if g in lm.probs[n - 1]:
        raise LanguageModelError(f"{where}: duplicate {n}-gram '{' '.join(g)}'")
    lm.probs[n - 1][g] = _parse_float(fields[0], where)
    if len(fields) == n + 2:
        lm.backoffs[n - 1][g] = _parse_float(fields[-1], where)


def _check_count(lm: NgramLM, n: int, declared: dict[int, tuple[int, int]], path: PathLike) -> None:
    want, line = declared[n]
    got = len(lm.probs[n - 1])
    if got != want:
        raise LanguageModelError(
            f"{path}:{line}: header says ngram {n}={want} but the \\{n}-grams: section has {got}"
        )


# ---------------------------------------------------------------------------
# Pruning


def _drop_where(lm: NgramLM, pred) -> tuple[NgramLM, int]:
    """Copy of ``lm`` without the n-grams for which ``pred(g)`` is true, renormalized.

    Trailing orders left empty are removed (AN4's bigram model becomes a
    unigram model once ``<s> </s>`` is dropped).
    """
    out = copy.deepcopy(lm)
    dropped = 0
    unigram_dropped = False
    for n in range(lm.order):
        doomed = [g for g in out.probs[n] if pred(g)]
        for g in doomed:
            del out.probs[n][g]
            out.backoffs[n].pop(g, None)
        dropped += len(doomed)
        unigram_dropped |= n == 0 and bool(doomed)
    # An emptied top order would give an ARPA section with "ngram N=0"; the
    # model simply has a lower order then.
    while out.order > 1 and not out.probs[-1]:
        out.probs.pop()
        out.backoffs.pop()
    if dropped:
        if unigram_dropped:
            _normalize_unigrams(out)
        recompute_backoffs(out)
    return out, dropped


def prune_to_vocab(lm: NgramLM, vocab: Iterable[str]) -> tuple[NgramLM, list[str]]:
    """Reports and drops the n-grams that contain words outside ``vocab``.

    ``<s>`` and ``</s>`` are always kept.  Renormalization: if unigrams were
    dropped, the remaining unigram probabilities are scaled to sum to 1; then
    all back-off weights are recomputed (:func:`recompute_backoffs`), so the
    mass of a dropped n-gram ``h w`` is shared out over the unlisted words of
    h in proportion to the lower-order model.  Where back-off cannot restore a
    sum of 1 (no lower-order mass left), the listed n-grams of that history
    are scaled instead.

    Returns:
      A new model and the sorted list of dropped words (the caller logs them).
    """
    keep = set(vocab) | {BOS, EOS}
    dropped_words = sorted({w for g in lm.probs[0] for w in g if w not in keep})
    if not dropped_words:
        return copy.deepcopy(lm), []
    bad = set(dropped_words)
    out, count = _drop_where(lm, lambda g: any(w in bad for w in g))
    log.info("dropped %d n-grams with %d words not in the vocabulary", count, len(dropped_words))
    return out, dropped_words


def drop_ngram(lm: NgramLM, ngram: Sequence[str]) -> NgramLM:
    """Drops one n-gram, e.g. AN4's degenerate ``<s> </s>`` bigram.

    Also drops every listed n-gram that contains ``ngram`` as a contiguous
    part (they would refer to the dropped one), then renormalizes as
    :func:`prune_to_vocab` does.  For ``("<s>", "</s>")`` this makes
    P(</s> | <s>) back off to the unigram P(</s>) instead of 1, so G's start
    state is no longer final at zero cost.

    Returns:
      A new model (an unchanged copy if ``ngram`` is not listed).
    """
    target = tuple(ngram)
    k = len(target)

    def contains(g: Ngram) -> bool:
        return any(g[i:i + k] == target for i in range(len(g) - k + 1))

    out, count = _drop_where(lm, contains)
    if count:
        log.info("dropped n-gram '%s' (%d n-grams in all)", " ".join(target), count)
    return out
