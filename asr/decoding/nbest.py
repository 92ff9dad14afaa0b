"""Exact n-best lists from decoding lattices (``asr decode --nbest N``).

The n-best list of an utterance is its ``N`` best *distinct word sequences*
under the scores the 1-best uses (:func:`asr.decoding.search.decode_scores`),
each scored by its best alignment in the lattice, as Kaldi's
``lattice-to-nbest`` gives on a determinized lattice.  It is exact, not
sampled: the k-th hypothesis is the best path of the lattice restricted to the
word sequences not found yet.  Each round intersects the word lattice
(``k2.invert``: words as labels, several words on one arc turned into a
chain) with an acceptor of every word sequence except those found (a trie of
them whose unfinished branches lead to an accepting sink), and takes the
shortest path (``k2.shortest_path``, whose acoustic and graph scores give
``ac_cost`` and ``lm_cost``).  The first round is the Viterbi 1-best.

That is ``N`` intersections per utterance, the k-th up to k times the
lattice's size (a lattice state pairs with each found prefix it can follow),
so about ``N^2 / 2`` lattice sizes of work.
(Determinizing the word lattice instead would first have to remove its
epsilons, and at one arc per frame the epsilon closures of a frame-level
lattice are too large for that.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import k2
import torch

from asr.decoding.search import decode_scores
from asr.lang.k2fsa import arc_splits

log = logging.getLogger("asr.decoding.nbest")


@dataclass
class NbestEntry:
    """One hypothesis of an n-best list.

    Attributes:
      word_ids: The words.
      score: Its decode score (``acoustic_scale * am + lm_weight * lm - word_penalty * words``; higher is better).
      ac_cost: Acoustic cost of its best alignment, ``-am`` (unscaled, as Kaldi's ``ac_cost``).
      lm_cost: Graph cost of that alignment, ``-lm`` (LM and lexicon; without the word penalty).
    """

    word_ids: list[int]
    score: float
    ac_cost: float
    lm_cost: float


def word_lattice(lattice: k2.Fsa, lm_weight: float, word_penalty: float, acoustic_scale: float) -> k2.Fsa:
    """Lattices as word acceptors (0: no word), arc-sorted, with decode scores and ``am_scores``/``lm_scores``."""
    lat = k2.Fsa(lattice.arcs.clone())
    lat.scores = decode_scores(lattice, lm_weight, word_penalty, acoustic_scale).to(torch.float32)
    lat.aux_labels = lattice.aux_labels.clone()
    lat.am_scores = lattice.am_scores.clone()
    lat.lm_scores = lattice.lm_scores.clone()
    words = k2.invert(lat)
    acceptor = k2.Fsa(words.arcs.clone())  # the pdfs (now aux_labels) are not wanted
    acceptor.am_scores = words.am_scores
    acceptor.lm_scores = words.lm_scores
    return k2.arc_sort(acceptor)


def exclusion_acceptor(found: list[tuple[int, ...]], vocabulary: list[int]) -> k2.Fsa:
    """An acceptor of every sequence over ``vocabulary`` except those in ``found``.

    States: a trie of the found sequences (state 0 the empty prefix) and an
    accepting sink that a word off the trie leads to; a trie state is final
    unless its prefix is one of ``found``.
    """
    trie: dict[tuple[int, ...], int] = {(): 0}
    for seq in found:
        for k in range(1, len(seq) + 1):
            trie.setdefault(seq[:k], len(trie))
    sink, final, excluded = len(trie), len(trie) + 1, set(found)
    lines = []
    for prefix, state in sorted(trie.items(), key=lambda kv: kv[1]):
        lines += [f"{state} {trie.get(prefix + (w,), sink)} {w} 0" for w in vocabulary]
        if prefix not in excluded:
            lines.append(f"{state} {final} -1 0")
    lines += [f"{sink} {sink} {w} 0" for w in vocabulary] + [f"{sink} {final} -1 0", str(final)]
    return k2.arc_sort(k2.Fsa.from_str("\n".join(lines), acceptor=True))


def _read_best(best: k2.Fsa) -> list[NbestEntry | None]:
    """Each best path of an FsaVec as an entry (None for an empty one: nothing left to find)."""
    splits = arc_splits(best).tolist()
    labels = best.labels.tolist()
    scores = best.scores.to(torch.float64)
    am, lm = best.am_scores.to(torch.float64), best.lm_scores.to(torch.float64)
    out: list[NbestEntry | None] = []
    for i in range(best.shape[0]):
        b, e = splits[i], splits[i + 1]
        if b == e:
            out.append(None)
            continue
        out.append(NbestEntry([w for w in labels[b:e] if w > 0], float(scores[b:e].sum()), -float(am[b:e].sum()),
                              -float(lm[b:e].sum())))
    return out


def nbest_lists(lattice: k2.Fsa, n: int, lm_weight: float, word_penalty: float, acoustic_scale: float) -> list[list[NbestEntry]]:
    """The ``n`` best distinct word sequences of each lattice of an FsaVec (module docstring).

    Args:
      lattice: Decoder lattices with ``am_scores``, ``lm_scores`` and word ``aux_labels``.
      n: Hypotheses per lattice (fewer if the lattice holds fewer word sequences).
      lm_weight, word_penalty, acoustic_scale: The decode's scales.

    Returns:
      Per lattice, its hypotheses, best first (empty for an empty lattice).
    """
    words = word_lattice(lattice, lm_weight, word_penalty, acoustic_scale)
    splits = arc_splits(words).tolist()
    labels = words.labels.tolist()
    vocabularies = [sorted({w for w in labels[splits[i] : splits[i + 1]] if w > 0}) for i in range(words.shape[0])]
    lists: list[list[NbestEntry]] = [[] for _ in range(words.shape[0])]
    active = [i for i in range(words.shape[0]) if splits[i + 1] > splits[i]]
    while active:
        allowed = k2.create_fsa_vec(
            [exclusion_acceptor([tuple(e.word_ids) for e in lists[i]], vocabularies[i]) for i in active])
        sub = k2.index_fsa(words, torch.tensor(active, dtype=torch.int32))
        # The intersection's states come in no topological order; shortest_path needs one.
        both = k2.top_sort(k2.connect(k2.intersect(sub, allowed, treat_epsilons_specially=True)))
        found = _read_best(k2.shortest_path(both, use_double_scores=True))
        for i, entry in zip(active, found):
            if entry is not None:
                lists[i].append(entry)
        active = [i for i, entry in zip(active, found) if entry is not None and len(lists[i]) < n]
    return lists


def expected_errors(entries: list[NbestEntry], scale: float = 1.0) -> list[float]:
    """Each hypothesis's expected word errors against the n-best list's own distribution.

    With posteriors ``P(j) = softmax(scale * score)`` over the list,
    ``E_i = sum_j P(j) * edit_distance(h_i, h_j)``: the Bayes risk of
    answering ``h_i`` when the truth is drawn from the list. The list stands
    in for the lattice (n-best MBR, as Stolcke et al.'s "explicit word error
    minimization in n-best list rescoring"); ``scale`` is the decode's
    ``confidence_scale``.
    """
    import kaldialign

    if not entries:
        return []
    logits = torch.tensor([scale * e.score for e in entries], dtype=torch.float64)
    post = torch.softmax(logits, dim=0).tolist()
    seqs = [e.word_ids for e in entries]
    return [sum(p * kaldialign.edit_distance(a, b)["total"] for p, b in zip(post, seqs)) for a in seqs]


def mbr_choice(entries: list[NbestEntry], scale: float = 1.0) -> int:
    """Index of the minimum-Bayes-risk hypothesis of an n-best list (:func:`expected_errors`; ties: the better score)."""
    risks = expected_errors(entries, scale)
    return min(range(len(risks)), key=lambda i: (risks[i], i)) if risks else -1
