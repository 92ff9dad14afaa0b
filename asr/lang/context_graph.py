"""Phonetic context in graphs: C o X and H o (C o X) over a decision tree's tied pdfs.

A lang dir with a ``tree.yaml`` (``asr build-tree --lang-out``) models phones
in context: the pdfs of a phone's HMM depend on the ``context_width`` phones
around it, through the tree.  Every graph that a monophone lang builds as
``H o X`` (X = LG for decoding, a transcript's phone graph for alignment, a
phone LM for the MMI denominator) becomes ``H o C o X``:

- **C** (:meth:`ContextDependency.expand_context`) rewrites a phone-labelled
  FSA X into one labelled with *units*, a phone in its context window.  With
  a right context (triphones: width 3, centre 1) the unit of a phone depends
  on the phone that follows it; instead of delaying the output by one phone
  (Kaldi's C, which needs epsilons at the start), each arc *predicts* the
  next phone and the arc that follows must honour the prediction.  The
  right contexts that the tree ties to the same unit are predicted together,
  by one arc.  A state is ``(X state, last centre phones read, set of
  allowed next phones)``, so word labels
  and phone boundaries stay on the arc of the phone they belong to, no
  epsilon or disambiguation symbol is needed, and only reachable states are
  built (like OpenFst's lazy ``fstcomposecontext``).  The utterance's edges
  are the boundary phone 0 in the window, as in the tree's statistics.
  Supported: any left context; a right context of 0 or 1 phone.
- A unit's pdfs are the tree's leaves for each pdf class of its central
  phone's topology (pdf id = leaf + 1).  Units with the same central
  topology and pdfs are the same HMM, as in Kaldi's ``ilabel_info`` after
  tying.
- **H** (:meth:`ContextDependency.expand_hmm`) replaces each unit arc by the
  unit's HMM, state by state: a state of the result is ``(C o X state after
  the unit, unit, HMM state)``, with the self-loops there.  A prebuilt H over
  all units would need an arc from every unit's exit to every unit's entry,
  quadratic in the number of units; expanding only the arcs of C o X keeps
  the result about as large as HLG is for a monophone lang.

The result has the graph conventions of ``H o X`` in a monophone lang: pdf
ids as labels, no epsilon arcs (one frame per arc), X's scores and aux labels
on the arc that enters a unit, and a ``phones`` attribute holding the central
phone id on that arc (0 on the others), which word times and alignments read.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

import k2
import torch

from asr.errors import LexiconError
from asr.lang.fsa_io import arcs_to_fsa
from asr.lang.topology import Topology
from asr.tree.tree import Tree

log = logging.getLogger("asr.lang.context_graph")

#: The phone id of positions outside the utterance (``<eps>``), as in the tree's statistics.
BOUNDARY = 0
#: Predicted-next-phone value of a state that has not predicted anything (the start).
ANY = -1


@dataclass
class FsaArcs:
    """A single FSA as Python lists, one entry per arc (k2 order: by source state).

    ``aux`` holds each arc's aux labels as a list (empty for none), or is None
    when the FSA has no aux labels.
    """

    src: list[int]
    dst: list[int]
    labels: list[int]
    scores: list[float]
    aux: list[list[int]] | None
    num_states: int

    @classmethod
    def from_fsa(cls, fsa: k2.Fsa) -> "FsaArcs":
        arcs = fsa.arcs.values()[:, :3].tolist()
        aux = None
        if hasattr(fsa, "aux_labels"):
            labels = fsa.aux_labels
            if isinstance(labels, k2.RaggedTensor):
                splits, values = labels.shape.row_splits(1).tolist(), labels.values.tolist()
                aux = [[w for w in values[splits[i] : splits[i + 1]] if w > 0] for i in range(len(arcs))]
            else:
                aux = [[w] if w > 0 else [] for w in labels.tolist()]
        return cls([a[0] for a in arcs], [a[1] for a in arcs], [a[2] for a in arcs],
                   fsa.scores.detach().tolist(), aux, int(fsa.shape[0]))

    def out_arcs(self) -> list[list[int]]:
        """Arc indices leaving each state."""
        out: list[list[int]] = [[] for _ in range(self.num_states)]
        for i, s in enumerate(self.src):
            out[s].append(i)
        return out


@dataclass(frozen=True)
class Unit:
    """A tied context-dependent HMM: the central phone and one pdf id per pdf class."""

    phone: int
    pdfs: tuple[int, ...]


class ContextDependency:
    """Maps phone context windows to tied HMMs and expands graphs through them.

    Args:
      tree: The decision tree (``tree.yaml``).
      topologies: Phone id -> its HMM topology (every phone the tree may see
        as a central phone).
    """

    def __init__(self, tree: Tree, topologies: dict[int, Topology]):
        self.tree = tree
        self.width = tree.context_width
        self.left = tree.central_position
        self.right = tree.context_width - 1 - tree.central_position
        if self.right > 1:
            raise LexiconError(
                f"tree: right context of {self.right} phones (width {self.width}, centre {self.left}); "
                "graphs support at most 1")
        self.topologies = topologies
        self.units: list[Unit] = [Unit(0, ())]  # unit 0 is epsilon
        self._unit_ids: dict[Unit, int] = {}
        self._by_context: dict[tuple[int, ...], int] = {}

    @property
    def num_pdfs(self) -> int:
        return self.tree.num_leaves

    def unit(self, context: tuple[int, ...]) -> int:
        """The unit id (from 1) of a context window (``width`` phone ids, 0 at the utterance's edges)."""
        uid = self._by_context.get(context)
        if uid is None:
            phone = context[self.left]
            topo = self.topologies.get(phone)
            if topo is None:
                raise LexiconError(f"tree: phone id {phone} has no topology in the lang")
            pdfs = tuple(self.tree.leaf(context, c) + 1 for c in range(topo.num_pdf_classes))
            unit = Unit(phone, pdfs)
            uid = self._unit_ids.setdefault(unit, len(self.units))
            if uid == len(self.units):
                self.units.append(unit)
            self._by_context[context] = uid
        return uid

    # ------------------------------------------------------------------ C

    def expand_context(self, fsa: k2.Fsa) -> k2.Fsa:
        """C o X for an epsilon-free X with phone-id labels (and optional aux labels).

        Returns:
          An FSA with unit ids as labels, X's scores and aux labels on the
          corresponding arcs, and ``phones``: the central phone of each arc's unit.
        """
        x = FsaArcs.from_fsa(fsa)
        if any(l == 0 for l in x.labels):
            raise LexiconError("context expansion needs an epsilon-free phone graph")
        out_arcs = x.out_arcs()
        # Phones that may follow a state: its arcs' labels, the boundary for its final arc.
        nexts = [sorted({BOUNDARY if x.labels[i] == -1 else x.labels[i] for i in arcs}) for arcs in out_arcs]
        start = (0, (BOUNDARY,) * self.left, ANY)
        ids = {start: 0}
        queue = [start]
        arcs: list[tuple[int, int, int, float]] = []
        arc_of: list[int] = []  # source arc of X of each output arc
        finals: list[tuple[int, int]] = []
        while queue:
            state = queue.pop()
            s, hist, allowed = state
            for i in out_arcs[s]:
                p = x.labels[i]
                if p == -1:
                    if allowed == ANY or BOUNDARY in allowed:
                        finals.append((ids[state], i))
                    continue
                if allowed != ANY and p not in allowed:
                    continue
                after = hist + (p,)
                for unit, nexts_allowed in self._units_by_right(after, nexts[x.dst[i]]):
                    nxt = (x.dst[i], after[len(after) - self.left:] if self.left else (), nexts_allowed)
                    if nxt not in ids:
                        ids[nxt] = len(ids)
                        queue.append(nxt)
                    arcs.append((ids[state], ids[nxt], unit, x.scores[i]))
                    arc_of.append(i)
        final = len(ids)
        arcs += [(s, final, -1, x.scores[i]) for s, i in finals]
        arc_of += [i for _, i in finals]
        phones = [self.units[a[2]].phone if a[2] > 0 else 0 for a in arcs]
        aux = [x.aux[i] for i in arc_of] if x.aux is not None else None
        return _build(arcs, aux, phones)

    def _units_by_right(self, left_and_centre: tuple[int, ...], nexts: list[int]) -> list[tuple[int, object]]:
        """The units of a phone (after its left context) for each right context it may get.

        Right contexts that tie to the same unit are grouped, so one arc
        (to one state that allows any of them next) stands for them all:
        ``[(unit, frozenset of allowed next phones)]``; without right
        context, ``[(unit, ANY)]``.
        """
        if not self.right:
            return [(self.unit(left_and_centre), ANY)]
        groups: dict[int, list[int]] = {}
        for r in nexts:
            groups.setdefault(self.unit(left_and_centre + (r,)), []).append(r)
        return [(u, frozenset(rs)) for u, rs in groups.items()]

    # ------------------------------------------------------------------ H

    def expand_hmm(self, fsa: k2.Fsa) -> k2.Fsa:
        """H o Y for Y labelled with unit ids (from :meth:`expand_context`): pdf-id labels.

        A state of the result is ``(Y state reached after the unit, unit,
        HMM state of the unit)``; the start and Y's final arcs come from
        ``(Y start, 0, 0)`` and from every state that ends a unit.
        """
        y = FsaArcs.from_fsa(fsa)
        out_arcs = y.out_arcs()
        start = (0, 0, 0)
        ids = {start: 0}
        queue = [start]
        arcs: list[tuple[int, int, int, float]] = []
        aux: list[list[int]] = []
        phones: list[int] = []

        def add(src: tuple, dst: tuple, pdf: int, score: float, words: list[int], phone: int) -> None:
            if dst not in ids:
                ids[dst] = len(ids)
                queue.append(dst)
            arcs.append((ids[src], ids[dst], pdf, score))
            aux.append(words)
            phones.append(phone)

        finals: list[tuple[int, int]] = []
        while queue:
            state = queue.pop()
            s, u, k = state
            topo = self.topologies[self.units[u].phone] if u else None
            if topo is not None:
                pdfs = self.units[u].pdfs
                add(state, state, pdfs[topo.states[k].loop], 0.0, [], 0)
                if k + 1 < len(topo.states):
                    add(state, (s, u, k + 1), pdfs[topo.states[k + 1].enter], 0.0, [], 0)
                    continue
            # The unit is done (or nothing started yet): enter the next unit or finish.
            for i in out_arcs[s]:
                v = y.labels[i]
                if v == -1:
                    finals.append((ids[state], i))
                    continue
                first = self.topologies[self.units[v].phone].states[0].enter
                add(state, (y.dst[i], v, 0), self.units[v].pdfs[first], y.scores[i],
                    y.aux[i] if y.aux is not None else [], self.units[v].phone)
        final = len(ids)
        for s, i in finals:
            arcs.append((s, final, -1, y.scores[i]))
            aux.append(y.aux[i] if y.aux is not None else [])
            phones.append(0)
        return _build(arcs, aux if y.aux is not None else None, phones)

    def compose(self, fsa: k2.Fsa) -> k2.Fsa:
        """H o C o X for an epsilon-free phone FSA X (see the module docstring)."""
        return self.expand_hmm(self.expand_context(fsa))


def _build(arcs: list[tuple[int, int, int, float]], aux: list[list[int]] | None, phones: list[int]) -> k2.Fsa:
    """An arc-sorted k2.Fsa from arcs (any order), ragged aux labels and a ``phones`` attribute."""
    order = sorted(range(len(arcs)), key=lambda i: (arcs[i][0], arcs[i][2], arcs[i][1]))
    fsa = arcs_to_fsa([arcs[i] for i in order])
    if aux is not None:
        fsa.aux_labels = k2.RaggedTensor([aux[i] for i in order], dtype=torch.int32)
    fsa.phones = torch.tensor([phones[i] for i in order], dtype=torch.int32)
    return k2.arc_sort(fsa)


def phone_topologies(lang) -> dict[int, Topology]:
    """Phone id -> topology of every HMM phone of a lang dir."""
    silence = set(lang.silence_phones)
    return {lang.phones[p]: (lang.silence_topology if p in silence else lang.topology) for p in lang.hmm_phones}


def leaf_source_pdfs(mono: LangDir, tree: Tree) -> torch.Tensor:
    """For each leaf (index ``leaf + 1``; 0 unused), the monophone pdf id that stands in for it.

    Every context window whose central phone the tree models is walked down
    the tree; a leaf takes the (central phone, pdf class) pdf reached by most
    windows (ties: the lowest pdf id).  A leaf of one phone's root thus maps
    to one of that phone's position variants.
    """
    phone_ids = sorted(mono.phones[p] for p in mono.hmm_phones)
    values = torch.tensor([0] + phone_ids)
    grids = torch.meshgrid(*([values] * tree.context_width), indexing="ij")
    contexts = torch.stack([g.reshape(-1) for g in grids], dim=1)
    centre = contexts[:, tree.central_position]
    contexts = contexts[centre > 0]
    table = mono.pdf_table
    index = {mono.phones[p]: j for j, p in enumerate(mono.hmm_phones)}
    votes: list[Counter] = [Counter() for _ in range(tree.num_leaves)]
    for c in range(max(t.num_pdf_classes for t in table.topologies)):
        phones = contexts[:, tree.central_position].contiguous()  # a column view: searchsorted wants contiguous input
        has_class = torch.tensor([table.topologies[index[int(p)]].num_pdf_classes > c for p in phone_ids])
        keep = has_class[torch.searchsorted(torch.tensor(phone_ids), phones)]
        leaves = tree.leaf_ids(contexts[keep], torch.full((int(keep.sum()),), c, dtype=torch.int64))
        mono_pdf = torch.tensor([table.pdf_id(index[int(p)], c) for p in phone_ids])
        pdfs = mono_pdf[torch.searchsorted(torch.tensor(phone_ids), phones[keep])]
        pairs, counts = torch.unique(torch.stack([leaves, pdfs], 1), dim=0, return_counts=True)
        for (leaf, pdf), n in zip(pairs.tolist(), counts.tolist()):
            votes[leaf][pdf] += n
    out = [0]
    for leaf, v in enumerate(votes):
        if not v:
            raise LexiconError(f"tree: leaf {leaf} is reached by no context of {mono.path}'s phones")
        out.append(min(v, key=lambda pdf: (-v[pdf], pdf)))
    return torch.tensor(out, dtype=torch.int64)
