"""Word confidences: word posteriors from decoding lattices.

A word's confidence is its posterior probability in the lattice: the
probability, under the lattice's path distribution, that the utterance has
the same word at a time span that overlaps the 1-best word's span.  This is
option (a) of issue 17 (arc posteriors summed over the word's arcs), not a
confusion network, so there is no MBR 1-best.

Path distribution.  A path ``pi`` of the lattice has the score the 1-best
search maximises (:func:`asr.decoding.search.decode_scores`)::

    s(pi) = acoustic_scale * am(pi) + lm_weight * lm(pi) - word_penalty * words(pi)
    P(pi) = exp(s(pi)) / sum_pi' exp(s(pi'))

computed by forward-backward in the log semiring with double-precision sums
(k2's ``get_arc_post``), so the arc posteriors of every frame sum to 1.

Word spans (as Kaldi's ``lattice-align-words``).  HLG is determinized, so a
word label may sit on an arc some frames before or after the word's phones
(k2's determinization delays it until the phones tell words apart).  The
lattice arcs also carry ``phones``: the phone id on each arc that enters a
phone.  :func:`align_lattice_words` rewrites the lattice so that each path
says where its words are: along a path, the k-th word label belongs to the
k-th word whose phones spell one of its pronunciations (silence phones in
between belong to no word).  It walks the lattice with a small matcher state
per lattice state -- the words whose phones started but whose label has not
been seen yet (guessed from the lexicon, and dropped when the label comes and
differs), the word being spelled and how far, and labels seen before their
phones -- so every lattice path maps to exactly one path of the result, with
the same score.  A word spans the frames from the arc that enters its first
phone to the arc before the next phone entry (or the end).

Word posterior.  With ``gamma(e)`` the posterior of arc ``e`` of the aligned
lattice, ``t(e)`` the frame it consumes, ``start(e)`` the word that starts on
it and ``word(e)`` the word whose span holds it, the confidence of a 1-best
word ``w`` spanning frames ``[S, E)`` is::

    conf(w, S, E) = min(1, sum_{e: start(e) = w, S <= t(e) < E} gamma(e)
                           + sum_{e: word(e) = w, t(e) = S, start(e) = 0} gamma(e))

The first sum counts paths on which ``w`` starts inside the span, the second
paths on which an earlier ``w`` still runs at frame ``S``: together, the
paths with ``w`` at an overlapping span (a path with two such ``w`` counts
twice, hence the clip at 1, as in Kaldi).  On a lattice with one path it is
1 for every word.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import k2
import torch

from asr.decoding.search import PathInfo
from asr.lang.k2fsa import arc_splits

log = logging.getLogger("asr.decoding.confidence")

Pron = tuple[int, ...]
#: Matcher state: (unconfirmed guessed words, word being spelled (word, pron, phones done) or None, early labels).
MatchState = tuple[tuple[int, ...], "tuple[int, Pron, int] | None", tuple[int, ...]]
_IDLE: MatchState = ((), None, ())
#: Arcs below this posterior (at the confidence scale) are dropped before words are placed on
#: phones (:func:`prune_for_posteriors`).  On 40 utterances of a 10 ms-frame template model it cut
#: decoding from 104 s to 5.5 s with confidences within 0.001 of unpruned ones; 1e-4 moved one
#: word's by 0.6 (a lattice can hold more than 1e4 such arcs, so their paths can carry real mass).
PRUNE_POSTERIOR = 1e-8


@dataclass(frozen=True)
class LexiconIndex:
    """The lexicon as phone ids: pronunciations per word and per first phone, and the silence phones."""

    prons: dict[int, tuple[Pron, ...]]
    by_first_phone: dict[int, tuple[tuple[int, Pron], ...]]
    silence: frozenset[int]

    @classmethod
    def build(cls, prons: dict[int, list[Pron]], silence: set[int]) -> "LexiconIndex":
        """From word id -> pronunciations (phone ids) and the silence phone ids (``WordAligner``'s tables)."""
        by_first: dict[int, list[tuple[int, Pron]]] = {}
        for w, ps in sorted(prons.items()):
            for p in dict.fromkeys(ps):
                if p:
                    by_first.setdefault(p[0], []).append((w, p))
        return cls(
            {w: tuple(dict.fromkeys(p for p in ps if p)) for w, ps in prons.items()},
            {p: tuple(v) for p, v in by_first.items()},
            frozenset(silence),
        )


class WordMatcher:
    """The matcher that places each word label on its word's phones.

    Its states (:data:`MatchState`) are numbered as they are met (0 is the
    idle state: nothing pending), and its steps are cached per (state, arc
    contents), since a lattice repeats the same few over and over.
    """

    IDLE = 0

    def __init__(self, lexicon: LexiconIndex):
        self.lexicon = lexicon
        self.states: list[MatchState] = [_IDLE]
        self._ids: dict[MatchState, int] = {_IDLE: 0}
        self._cache: dict[tuple[int, int, tuple[int, ...], bool], tuple[tuple[int, int, int], ...]] = {}

    def step(self, m: int, phone: int, words: tuple[int, ...], final: bool) -> tuple[tuple[int, int, int], ...]:
        """Successors of state ``m`` over one arc: (state, word starting on the arc, word spanning it) each.

        Args:
          m: The matcher state before the arc.
          phone: The phone the arc enters (0 or less: none).
          words: The arc's word labels (ids > 0), in order.
          final: Whether it is a final arc (the path ends: everything must be matched).
        """
        key = (m, phone, words, final)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = tuple((self._id(m2), start, span) for m2, start, span in
                                           self._step(self.states[m], phone, words, final))
        return hit

    def _id(self, m: MatchState) -> int:
        i = self._ids.get(m)
        if i is None:
            i = self._ids[m] = len(self.states)
            self.states.append(m)
        return i

    def _step(self, m: MatchState, phone: int, words: tuple[int, ...], final: bool):
        for m1, start in self._enter_phone(m, phone) if phone > 0 else [(m, 0)]:
            m2 = self._read_labels(m1, words)
            if m2 is None:
                continue
            if final:
                if m2[0] or m2[2]:
                    continue  # a word without its label, or a label without its phones
                yield _IDLE, 0, 0
                continue
            yield m2, start, (m2[1][0] if m2[1] is not None else 0)

    def _enter_phone(self, m: MatchState, phone: int) -> list[tuple[MatchState, int]]:
        """States after entering ``phone``: continue the current word, or end it and start silence or a word."""
        unconfirmed, current, early = m
        if current is not None:
            w, pron, done = current
            if done < len(pron):
                return [((unconfirmed, (w, pron, done + 1), early), 0)] if pron[done] == phone else []
        out: list[tuple[MatchState, int]] = []
        if phone in self.lexicon.silence:
            out.append(((unconfirmed, None, early), 0))
        if early:
            # The label came first: the word that starts here is known.
            w = early[0]
            out += [((unconfirmed, (w, p, 1), early[1:]), w) for p in self.lexicon.prons.get(w, ()) if p[0] == phone]
        else:
            out += [((unconfirmed + (w,), (w, p, 1), early), w) for w, p in self.lexicon.by_first_phone.get(phone, ())]
        return out

    @staticmethod
    def _read_labels(m: MatchState, words: tuple[int, ...]) -> MatchState | None:
        """Labels confirm the oldest guessed word (None if one differs), or wait for their phones."""
        unconfirmed, current, early = m
        for w in words:
            if unconfirmed:
                if unconfirmed[0] != w:
                    return None
                unconfirmed = unconfirmed[1:]
            else:
                early = early + (w,)
        return unconfirmed, current, early


@dataclass
class AlignedLattice:
    """One utterance's lattice with its words placed on their phones (see the module docstring).

    Attributes:
      fsa: The aligned lattice (connected, top-sorted; scores of the original arcs).
      arc_map: (A,) index of each arc's original arc within the utterance's lattice.
      frame: (A,) frame each arc consumes (final arcs: the number of frames).
      start_word: (A,) word that starts on each arc, 0 if none.
      span_word: (A,) word whose span holds each arc's frame, 0 for silence and final arcs.
    """

    fsa: k2.Fsa
    arc_map: torch.Tensor
    frame: torch.Tensor
    start_word: torch.Tensor
    span_word: torch.Tensor


@dataclass
class _LatticeArrays:
    """One utterance's arcs as Python lists (arcs sorted by source state, states top-sorted)."""

    src: list[int]
    dst: list[int]
    phones: list[int]
    words: list[tuple[int, ...]]
    final: list[bool]
    scores: torch.Tensor  # (arcs,) float32
    num_states: int


def _utterance_arrays(lattice: k2.Fsa, scores: torch.Tensor) -> list[_LatticeArrays]:
    """Splits an FsaVec's arcs into per-utterance lists (reading ragged aux_labels once)."""
    arcs = lattice.arcs.values()
    src, dst, labels = arcs[:, 0].tolist(), arcs[:, 1].tolist(), arcs[:, 2].tolist()
    phones = lattice.phones.tolist() if hasattr(lattice, "phones") else [0] * len(labels)
    aux = lattice.aux_labels
    if isinstance(aux, k2.RaggedTensor):
        row_splits, values = aux.shape.row_splits(1).tolist(), aux.values.tolist()
        words = [tuple(w for w in values[row_splits[a] : row_splits[a + 1]] if w > 0) for a in range(len(labels))]
    else:
        words = [(w,) if w > 0 else () for w in aux.tolist()]
    splits = arc_splits(lattice).tolist()
    state_splits = lattice.arcs.shape().row_splits(1).tolist()
    out = []
    for i in range(lattice.shape[0]):
        b, e = splits[i], splits[i + 1]
        out.append(
            _LatticeArrays(src[b:e], dst[b:e], phones[b:e], words[b:e], [l == -1 for l in labels[b:e]], scores[b:e],
                           state_splits[i + 1] - state_splits[i])
        )
    return out


def _state_frames(arrays: _LatticeArrays) -> list[int]:
    """Frame of each lattice state: every non-final arc consumes one frame."""
    frames = [0] * arrays.num_states
    for s, d, fin in zip(arrays.src, arrays.dst, arrays.final):
        if not fin:
            frames[d] = frames[s] + 1
    for s, d, fin in zip(arrays.src, arrays.dst, arrays.final):
        if fin:
            frames[d] = max(frames[d], frames[s])
    return frames


def align_lattice_words(arrays: _LatticeArrays, matcher: WordMatcher) -> AlignedLattice | None:
    """Expands one utterance's lattice by the matcher state (see the module docstring).

    Returns:
      The aligned lattice, or None when no path survives (e.g. a partial
      path that ends inside a word).
    """
    if arrays.num_states == 0 or not arrays.src:
        return None
    # states[s]: matcher state -> expanded state id, for lattice state s.
    states: list[dict[int, int]] = [dict() for _ in range(arrays.num_states)]
    states[0][WordMatcher.IDLE] = 0
    count = 1
    arcs: tuple[list[int], ...] = ([], [], [], [], [])  # src id, dst id, original arc, start word, span word
    src, dst, phones, words, final = arrays.src, arrays.dst, arrays.phones, arrays.words, arrays.final
    a = 0
    for s in range(arrays.num_states):
        begin = a  # arcs are sorted by source state
        while a < len(src) and src[a] == s:
            a += 1
        for m, sid in states[s].items():
            for e in range(begin, a):
                table = states[dst[e]]
                for m2, start, span in matcher.step(m, phones[e], words[e], final[e]):
                    did = table.get(m2)
                    if did is None:
                        did = table[m2] = count
                        count += 1
                    for column, value in zip(arcs, (sid, did, e, start, span)):
                        column.append(value)
    if WordMatcher.IDLE not in states[-1] or not arcs[0]:
        return None
    return _build_aligned(arrays, states, arcs)


def _build_aligned(arrays: _LatticeArrays, states: list[dict[int, int]], arcs: tuple[list[int], ...]) -> AlignedLattice:
    """Drops the guesses that died, renumbers the states in lattice-state order (top-sorted, final last)
    and builds the k2 FSA."""
    src_ids, dst_ids = arcs[0], arcs[1]
    # Arcs were made in lattice-state order, so in reverse each state's leaving arcs come before its entering ones.
    alive = [False] * sum(len(t) for t in states)
    alive[states[-1][WordMatcher.IDLE]] = True
    keep = [False] * len(src_ids)
    for i in range(len(src_ids) - 1, -1, -1):
        if alive[dst_ids[i]]:
            alive[src_ids[i]] = keep[i] = True
    order = [-1] * len(alive)
    k = 0
    for table in states:
        for sid in table.values():
            if alive[sid]:
                order[sid] = k
                k += 1
    kept = torch.tensor(keep)
    order_t = torch.tensor(order, dtype=torch.int64)
    src = order_t[torch.tensor(src_ids, dtype=torch.int64)[kept]]
    dst = order_t[torch.tensor(dst_ids, dtype=torch.int64)[kept]]
    orig = torch.tensor(arcs[2], dtype=torch.int64)[kept]
    perm = torch.argsort(src * (k + 1) + dst, stable=True)
    src, dst, orig = src[perm], dst[perm], orig[perm]
    final = torch.tensor(arrays.final)[orig]
    labels = torch.where(final, -1, 1)  # any non-negative label: only scores matter here
    table = torch.stack([src, dst, labels, torch.zeros_like(src)], dim=1).to(torch.int32)
    table[:, 3] = arrays.scores[orig].to(torch.float32).contiguous().view(torch.int32)
    frames = torch.tensor(_state_frames(arrays), dtype=torch.int64)[torch.tensor(arrays.src, dtype=torch.int64)]
    start_word = torch.tensor(arcs[3], dtype=torch.int64)[kept][perm]
    span_word = torch.tensor(arcs[4], dtype=torch.int64)[kept][perm]
    return AlignedLattice(k2.Fsa(table), orig, frames[orig], start_word, span_word)


def span_posterior(aligned: AlignedLattice, post: torch.Tensor, word: int, start: int, end: int) -> float:
    """Posterior of ``word`` at a span overlapping frames ``[start, end)`` (module docstring), in [0, 1].

    Args:
      aligned: The utterance's aligned lattice.
      post: (A,) arc posteriors of ``aligned.fsa`` (probabilities).
    """
    starts_inside = (aligned.start_word == word) & (aligned.frame >= start) & (aligned.frame < end)
    running = (aligned.span_word == word) & (aligned.frame == start) & (aligned.start_word == 0)
    return float(min(1.0, max(0.0, float(post[starts_inside | running].sum()))))


def prune_for_posteriors(lattice: k2.Fsa, scores: torch.Tensor,
                         threshold: float = PRUNE_POSTERIOR) -> tuple[k2.Fsa, torch.Tensor]:
    """Drops the arcs whose posterior under ``scores`` is below ``threshold`` (Kaldi prunes lattices
    before ``lattice-align-words`` for the same reason).

    Placing words on phones walks every arc once per matcher state, so its cost grows with
    the lattice; most arcs of a lattice at 10 ms frames carry almost no mass.  The paths
    dropped carry at most the sum of the dropped arcs' posteriors, and the kept lattice is
    renormalised by the forward-backward that follows.

    Returns:
      The pruned lattice (attributes kept) and its arcs' ``scores``.
    """
    lat = lattice.clone()
    lat.scores = scores.to(lat.scores.dtype)
    pruned = k2.prune_on_arc_post(lat, threshold, True)
    return pruned, pruned.scores


def word_posteriors(
    lattice: k2.Fsa, scores: torch.Tensor, segments: list[list[tuple[int, int, int]]], lexicon: LexiconIndex,
) -> list[list[float] | None]:
    """Confidences of the 1-best words of each lattice of an FsaVec.

    Args:
      lattice: Decoder lattices (FsaVec, with ``phones`` and word ``aux_labels``).
      scores: (arcs,) the decode's arc scores (:func:`asr.decoding.search.decode_scores`).
      segments: Per lattice, the 1-best words as ``(start_frame, num_frames, word_id)``
        (:meth:`asr.decoding.ctm.WordAligner.segments`).
      lexicon: The lexicon as phone ids.

    Returns:
      Per lattice, one posterior per segment, or None where the words could
      not be placed on the lattice's phones (the caller falls back).
    """
    lattice, scores = prune_for_posteriors(lattice, scores)
    matcher = WordMatcher(lexicon)
    aligned = [align_lattice_words(a, matcher) for a in _utterance_arrays(lattice, scores)]
    kept = [a for a in aligned if a is not None]
    if not kept:
        return [None] * len(aligned)
    fsas = k2.create_fsa_vec([a.fsa for a in kept])
    post = fsas.get_arc_post(use_double_scores=True, log_semiring=True).exp()
    splits = arc_splits(fsas).tolist()
    out: list[list[float] | None] = []
    j = 0
    for a, segs in zip(aligned, segments):
        if a is None:
            out.append(None)
            continue
        p = post[splits[j] : splits[j + 1]]
        j += 1
        out.append([span_posterior(a, p, w, s, s + n) for s, n, w in segs])
    return out


def mean_frame_posteriors(path: PathInfo, segments: list[tuple[int, int, int]], log_post: torch.Tensor) -> list[float]:
    """The old confidence: the mean network posterior of the path's pdf over each word's frames.

    Kept as the fallback where lattice posteriors fail, and as the baseline of
    ``benchmarks/confidence.py``.

    Args:
      path: A best path (pdf per frame).
      segments: Its words, ``(start_frame, num_frames, word_id)``.
      log_post: (T, S) network log-posteriors of the utterance (pdf ``p`` in column ``p - 1``).
    """
    out = []
    for start, dur, _ in segments:
        frames = list(range(start, min(start + dur, len(path.frame_pdfs))))
        if not frames:
            out.append(1.0)
            continue
        pdfs = torch.tensor([path.frame_pdfs[f] - 1 for f in frames])
        out.append(float(log_post[torch.tensor(frames), pdfs].exp().mean()))
    return out


def word_confidences(
    lattice: k2.Fsa, scores: torch.Tensor, paths: list[PathInfo], segments: list[list[tuple[int, int, int]]],
    lexicon: LexiconIndex, log_post: torch.Tensor, utt_ids: list[str],
) -> list[list[float]]:
    """Lattice word posteriors of each utterance's 1-best words (:func:`word_posteriors`).

    Where a lattice's words cannot be placed on its phones (a partial path
    that ends inside a word), the utterance falls back to
    :func:`mean_frame_posteriors`, with a warning.

    Args:
      lattice: The batch's lattices (FsaVec), in the order of ``paths``.
      scores: (arcs,) the decode's arc scores (:func:`asr.decoding.search.decode_scores`).
      paths: The 1-best paths (:func:`asr.decoding.search.read_paths`).
      segments: Their words (:meth:`asr.decoding.ctm.WordAligner.segments`).
      lexicon: The lexicon as phone ids.
      log_post: (N, T, S) network log-posteriors of the batch (for the fallback).
      utt_ids: Utterance ids (for the warning).
    """
    posteriors = word_posteriors(lattice, scores, segments, lexicon)
    failed = [i for i, p in enumerate(posteriors) if p is None and segments[i]]
    if failed:
        log.warning(
            "word posteriors: no lattice path whose words match its phones for %s; using mean frame posteriors",
            " ".join(utt_ids[i] for i in failed),
        )
    return [
        p if p is not None else mean_frame_posteriors(paths[i], segments[i], log_post[i, : paths[i].num_frames])
        for i, p in enumerate(posteriors)
    ]
