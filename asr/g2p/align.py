"""Many-to-many alignment of spellings to pronunciations by EM.

A pronunciation dictionary says which phones a word has, not which letters
make which phones.  A joint-sequence G2P needs that segmentation: it learns
from *graphones*, pairs ``(letters, phones)`` such as ``("ph", ("F",))``,
``("x", ("K", "S"))`` or ``("e", ())`` (a silent letter).

The alignment model is a unigram over graphones (Bisani & Ney 2008, the
``m2m-aligner`` of Jiampojamarn et al. 2007): the probability of a word and
its pronunciation is the sum over all segmentations ``s = g_1 ... g_K`` of

    P(word, pron) = sum_s prod_k p(g_k),

and EM re-estimates ``p(g)`` from its expected count under the posterior over
segmentations (forward-backward on the letter x phone lattice).  The moves a
graphone may make, (letters consumed, phones consumed), are configured;
``(0, n)`` (phones without letters) is never allowed, so that decoding always
advances through the spelling.

The lattice computations are vectorized with numpy over words and over the
phone axis: with no letter-less move, row ``i`` of the lattice depends only on
rows ``i - 1`` and ``i - 2``, so each chunk costs ``letters x moves`` array
operations.  Words are processed in chunks of similar length.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger("asr.g2p.align")

Pronunciation = tuple[str, ...]
Graphone = tuple[str, Pronunciation]

#: Moves of the default alignment: 1-2 letters to 0-2 phones (Phonetisaurus' default).
DEFAULT_MOVES: tuple[tuple[int, int], ...] = ((1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2))


@dataclass(frozen=True)
class AlignConfig:
    """EM alignment settings.

    Attributes:
      moves: Allowed graphone shapes ``(n_letters, n_phones)``; n_letters >= 1.
      iterations: EM iterations (the log-likelihood converges in about 5-10).
      long_exponent: EM and Viterbi score a graphone with more than one letter or
        phone by ``p(g) ** long_exponent``.  Plain EM (1.0) favours long
        graphones (fewer factors, a higher product), which then generalize
        badly; Phonetisaurus penalizes them in the same spirit.
      chunk_cells: Lattice cells (words x letters x phones x moves) per chunk:
        bounds the memory of one vectorized step (8 bytes per cell, a few times).
    """

    moves: tuple[tuple[int, int], ...] = DEFAULT_MOVES
    iterations: int = 6
    long_exponent: float = 2.0
    chunk_cells: int = 4_000_000

    def __post_init__(self) -> None:
        if not self.moves or any(di < 1 or dj < 0 for di, dj in self.moves):
            raise ValueError(f"every move needs >= 1 letter and >= 0 phones, got {self.moves}")
        if len(set(self.moves)) != len(self.moves):
            raise ValueError(f"duplicate moves in {self.moves}")


@dataclass
class _Chunk:
    """Words of similar length, encoded and padded, with their lattice edge keys.

    ``keys[b, i, j, m]`` identifies the graphone of move ``m`` ending at letter
    ``i`` and phone ``j`` (``letters[i - di:i]``, ``phones[j - dj:j]``); moves that
    leave the lattice get the sentinel key, whose probability is 0.
    """

    index: np.ndarray  # (B,) positions of the words in the input list
    n_letters: np.ndarray  # (B,)
    n_phones: np.ndarray  # (B,)
    keys: np.ndarray  # (B, I + 1, J + 1, M) int64


class _KeySpace:
    """Integer keys of graphones: ``letters_id * phone_span + phones_id``.

    A substring ``s_1 ... s_k`` of symbols numbered from 1 has the id
    ``sum_t s_t * base^(k - t)`` with ``base = alphabet size + 1``; ids of
    different lengths never collide, and the empty substring is 0.
    """

    def __init__(self, letters: list[str], phones: list[str], moves: tuple[tuple[int, int], ...]):
        self.letter_ids = {c: i + 1 for i, c in enumerate(letters)}
        self.phone_ids = {p: i + 1 for i, p in enumerate(phones)}
        self.max_letters = max(di for di, _ in moves)
        self.max_phones = max(dj for _, dj in moves)
        self.letter_base = len(letters) + 1
        self.phone_base = len(phones) + 1
        self.phone_span = self.phone_base ** self.max_phones
        self.sentinel = (self.letter_base ** self.max_letters) * self.phone_span
        self.size = self.sentinel + 1

    def substring_ids(self, seqs: np.ndarray, base: int, max_len: int) -> np.ndarray:
        """``ids[b, i, k]``: id of ``seqs[b, i - k:i]`` (-1 where ``i < k``)."""
        batch, length = seqs.shape
        ids = np.full((batch, length + 1, max_len + 1), -1, dtype=np.int64)
        ids[:, :, 0] = 0
        for k in range(1, max_len + 1):
            acc = np.zeros((batch, length + 1 - k), dtype=np.int64)
            for t in range(k):
                acc = acc * base + seqs[:, t:length + 1 - k + t]
            ids[:, k:, k] = acc
        return ids

    def edge_keys(self, letters: np.ndarray, phones: np.ndarray, moves) -> np.ndarray:
        """Keys of every lattice edge, shape ``(B, I + 1, J + 1, M)``."""
        lsub = self.substring_ids(letters, self.letter_base, self.max_letters)
        psub = self.substring_ids(phones, self.phone_base, self.max_phones)
        out = []
        for di, dj in moves:
            lk = lsub[:, :, None, di]
            pk = psub[:, None, :, dj]
            key = lk * self.phone_span + pk
            out.append(np.where((lk < 0) | (pk < 0), self.sentinel, key))
        return np.stack(out, axis=-1)

    def decode(self, key: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Letter and phone symbol numbers (from 1) of a key."""
        lid, pid = divmod(int(key), self.phone_span)
        return _digits(lid, self.letter_base), _digits(pid, self.phone_base)


def _digits(value: int, base: int) -> tuple[int, ...]:
    out = []
    while value:
        value, d = divmod(value, base)
        out.append(d)
    return tuple(reversed(out))


def _pad(rows: list[list[int]], width: int) -> np.ndarray:
    arr = np.zeros((len(rows), width), dtype=np.int64)
    for b, r in enumerate(rows):
        arr[b, :len(r)] = r
    return arr


def _make_chunks(pairs: list[tuple[str, Pronunciation]], space: _KeySpace, config: AlignConfig) -> list[_Chunk]:
    """Encodes the pairs in chunks of similar size (sorted by lengths)."""
    order = sorted(range(len(pairs)), key=lambda k: (len(pairs[k][0]), len(pairs[k][1])))
    moves = config.moves
    chunks: list[_Chunk] = []
    start = 0
    while start < len(order):
        end = start + 1
        while end < len(order):
            last = pairs[order[end]]
            cells = (end + 1 - start) * (len(last[0]) + 1) * (len(last[1]) + 1) * len(moves)
            if cells > config.chunk_cells:
                break
            end += 1
        idx = np.array(order[start:end])
        words = [pairs[k][0] for k in idx]
        prons = [pairs[k][1] for k in idx]
        letters = _pad([[space.letter_ids[c] for c in w] for w in words], max(map(len, words)))
        phones = _pad([[space.phone_ids[p] for p in ph] for ph in prons], max(1, max(map(len, prons))))
        chunks.append(_Chunk(
            index=idx,
            n_letters=np.array([len(w) for w in words]),
            n_phones=np.array([len(p) for p in prons]),
            keys=space.edge_keys(letters, phones, moves),
        ))
        start = end
    return chunks


def _shifted(table: np.ndarray, di: int, dj: int) -> np.ndarray:
    """``out[:, i, j] = table[:, i - di, j - dj]`` (``-inf`` off the lattice)."""
    out = np.full_like(table, -np.inf)
    _, rows, cols = table.shape
    out[:, di:, dj:] = table[:, :rows - di, :cols - dj]
    return out


def _forward(lp: np.ndarray, moves, viterbi: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Forward scores ``alpha[b, i, j]`` (log-sum or, for Viterbi, log-max).

    ``alpha[i, j] = (+)_m alpha[i - di_m, j - dj_m] + lp[i, j, m]``, with
    ``alpha[0, 0] = 0``.  For Viterbi also returns the best move per cell.
    """
    batch, rows, cols, _ = lp.shape
    alpha = np.full((batch, rows, cols), -np.inf)
    alpha[:, 0, 0] = 0.0
    best = np.zeros((batch, rows, cols), dtype=np.int8) if viterbi else None
    for i in range(1, rows):
        cands = np.full((len(moves), batch, cols), -np.inf)
        for m, (di, dj) in enumerate(moves):
            if di <= i:
                cands[m, :, dj:] = alpha[:, i - di, :cols - dj] + lp[:, i, dj:, m]
        if viterbi:
            best[:, i] = cands.argmax(axis=0)
            alpha[:, i] = cands.max(axis=0)
        else:
            alpha[:, i] = np.logaddexp.reduce(cands, axis=0)
    return alpha, best


def _backward(lp: np.ndarray, moves, n_letters: np.ndarray, n_phones: np.ndarray) -> np.ndarray:
    """Backward scores: ``beta[i, j] = log sum_m lp[i + di, j + dj, m] + beta[i + di, j + dj]``,
    with ``beta = 0`` at each word's end cell."""
    batch, rows, cols, _ = lp.shape
    beta = np.full((batch, rows, cols), -np.inf)
    beta[np.arange(batch), n_letters, n_phones] = 0.0
    for i in range(rows - 2, -1, -1):
        cands = [beta[:, i]]
        for m, (di, dj) in enumerate(moves):
            if i + di < rows:
                cand = np.full((batch, cols), -np.inf)
                cand[:, :cols - dj] = lp[:, i + di, dj:, m] + beta[:, i + di, dj:]
                cands.append(cand)
        beta[:, i] = np.logaddexp.reduce(np.stack(cands), axis=0)
    return beta


def _edge_scores(chunk: _Chunk, logp: np.ndarray, moves, long_exponent: float) -> np.ndarray:
    """``lp[b, i, j, m] = log p(g) * e``, with ``e = long_exponent`` for moves longer than 1-1."""
    scale = np.array([long_exponent if max(di, dj) > 1 else 1.0 for di, dj in moves])
    with np.errstate(invalid="ignore"):
        return np.where(np.isneginf(logp[chunk.keys]), -np.inf, logp[chunk.keys] * scale)


def _expected_counts(chunk: _Chunk, logp: np.ndarray, config: AlignConfig, counts: np.ndarray) -> float:
    """Adds the chunk's posterior graphone counts to ``counts``; returns its log-likelihood.

    The posterior of edge ``m`` into cell ``(i, j)`` is
    ``exp(alpha[i - di, j - dj] + lp[i, j, m] + beta[i, j] - log Z)``.
    Words that cannot be aligned with the moves (``Z = 0``) contribute nothing.
    """
    moves = config.moves
    lp = _edge_scores(chunk, logp, moves, config.long_exponent)
    alpha, _ = _forward(lp, moves)
    beta = _backward(lp, moves, chunk.n_letters, chunk.n_phones)
    log_z = alpha[np.arange(len(alpha)), chunk.n_letters, chunk.n_phones]
    ok = np.isfinite(log_z)
    norm = np.where(ok, log_z, 0.0)[:, None, None]
    with np.errstate(invalid="ignore"):
        for m, (di, dj) in enumerate(moves):
            post = np.exp(_shifted(alpha, di, dj) + lp[..., m] + beta - norm)
            post[~ok] = 0.0
            keep = post > 0
            counts += np.bincount(chunk.keys[..., m][keep], weights=post[keep], minlength=len(counts))
    return float(log_z[ok].sum())


def _normalize(counts: np.ndarray, sentinel: int) -> np.ndarray:
    """Unigram log-probabilities ``log(c(g) / sum c)``; zero counts give ``-inf``."""
    counts = counts.copy()
    counts[sentinel] = 0.0
    with np.errstate(divide="ignore"):
        return np.log(counts / counts.sum())


def _backtrace(word: str, pron: Pronunciation, best: np.ndarray, moves) -> list[Graphone]:
    """Graphones of the best path ending at cell ``(len(word), len(pron))``."""
    i, j = len(word), len(pron)
    out: list[Graphone] = []
    while i > 0:
        di, dj = moves[int(best[i, j])]
        out.append((word[i - di:i], tuple(pron[j - dj:j])))
        i, j = i - di, j - dj
    out.reverse()
    return out


def _viterbi_chunk(chunk: _Chunk, logp: np.ndarray, pairs, config: AlignConfig) -> dict[int, list[Graphone]]:
    """Best segmentation of each alignable word of the chunk, by input position."""
    moves = config.moves
    alpha, best = _forward(_edge_scores(chunk, logp, moves, config.long_exponent), moves, viterbi=True)
    score = alpha[np.arange(len(alpha)), chunk.n_letters, chunk.n_phones]
    out = {}
    for b, k in enumerate(chunk.index):
        if np.isfinite(score[b]):
            word, pron = pairs[k]
            out[int(k)] = _backtrace(word, pron, best[b], moves)
    return out


def align(pairs: list[tuple[str, Pronunciation]], config: AlignConfig = AlignConfig()) -> list[list[Graphone] | None]:
    """Aligns each ``(spelling, phones)`` pair into graphones by EM + Viterbi.

    Starts from uniform graphone probabilities (every segmentation equally
    likely), runs ``config.iterations`` EM steps, then returns the most likely
    segmentation of each pair; ``None`` for a pair the moves cannot align
    (e.g. one letter with five phones).
    """
    letters = sorted({c for w, _ in pairs for c in w})
    phones = sorted({p for _, ph in pairs for p in ph})
    space = _KeySpace(letters, phones, config.moves)
    chunks = _make_chunks(pairs, space, config)
    logp = np.zeros(space.size)
    logp[space.sentinel] = -np.inf
    for it in range(config.iterations):
        counts = np.zeros(space.size)
        loglik = sum(_expected_counts(c, logp, config, counts) for c in chunks)
        logp = _normalize(counts, space.sentinel)
        log.info("alignment EM iteration %d: log-likelihood %.1f, %d graphones used",
                 it + 1, loglik, int(np.isfinite(logp).sum()))
    result: list[list[Graphone] | None] = [None] * len(pairs)
    for c in chunks:
        for k, graphones in _viterbi_chunk(c, logp, pairs, config).items():
            result[k] = graphones
    return result
