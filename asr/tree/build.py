"""Growing the tree (Kaldi's ``build-tree``): greedy likelihood splits, then merging of leaves.

Roots.  Each root is a set of central phones and pdf classes that start one
tree: with ``share_positions`` all word-position variants of a phone (its
base phone in ``lang.yaml``; Kaldi's ``roots.txt`` "shared split"), and with
``share_pdf_classes`` all pdf classes of its HMM (questions about the pdf
class then split them), otherwise one root per class.

Splitting.  A leaf holding the events ``A`` may split by any question
``(key, set)``: events whose phone at window position ``key`` (or whose pdf
class, key -1) is in ``set`` go to ``Y``, the rest to ``N``.  The gain is
``LL(Y) + LL(N) - LL(A)`` with the diagonal-Gaussian ``LL`` of
:mod:`asr.tree.gaussian`; both sides need ``min_leaf_count`` frames.  The
best split of every leaf waits in one queue over all roots; the best of all
is applied while it gains more than ``split_threshold`` and there are fewer
than ``max_leaves`` leaves.

Merging.  Then, within each root, the two leaves whose union loses the least
likelihood (``LL(a) + LL(b) - LL(a u b)``) merge while that loss is below
``merge_threshold`` (Kaldi's ``--cluster-thresh``); merged leaves share a leaf id.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass

import torch

from asr.lang.lang_dir import LangDir
from asr.tree.config import TreeConfig
from asr.tree.gaussian import log_likelihood, merge_costs
from asr.tree.questions import (
    cluster_groups,
    pdf_class_questions,
    phone_groups,
    position_questions,
    unique_sets,
)
from asr.tree.stats import TreeStats
from asr.tree.tree import PDF_CLASS_KEY, Root, Tree, TreeError

log = logging.getLogger(__name__)


def make_roots(lang: LangDir, share_positions: bool, share_pdf_classes: bool) -> list[tuple[list[int], list[int]]]:
    """``[(central phone ids, pdf classes)]`` of every root, in the lang's phone order.

    Raises:
      TreeError: if phones that share a root have different numbers of pdf classes.
    """
    table = lang.pdf_table
    classes_of = {lang.phones[p]: t.num_pdf_classes for p, t in zip(table.phones, table.topologies)}
    roots = []
    for name, ids in phone_groups(lang, share_positions):
        counts = {classes_of[i] for i in ids}
        if len(counts) != 1:
            raise TreeError(f"{lang.path}: the variants of '{name}' have different HMM topologies; they cannot share a root")
        classes = list(range(counts.pop()))
        roots += [(ids, classes)] if share_pdf_classes else [(ids, [c]) for c in classes]
    return roots


def tree_questions(stats: TreeStats, lang: LangDir, cfg: TreeConfig, extra: list[list[int]]) -> list[list[int]]:
    """Phone-set questions: clustered phone groups, word-position classes, then ``extra``."""
    groups = phone_groups(lang, share_positions=True)
    group_of = torch.full((int(stats.contexts.max()) + 1,), -1, dtype=torch.int64)
    for g, (_, ids) in enumerate(groups):
        group_of[[i for i in ids if i < len(group_of)]] = g
    central = group_of[stats.central_phones]
    if bool((central < 0).any()):
        raise TreeError(f"{lang.path}: the statistics have a central phone the lang does not know")
    group_stats = torch.zeros(len(groups), stats.stats.shape[1], dtype=torch.float64)
    group_stats.index_add_(0, central, stats.stats)
    clustered = cluster_groups(group_stats, cfg.variance_floor, cfg.cluster_restarts, cfg.seed)
    phone_sets = [sorted(i for g in node for i in groups[g][1]) for node in clustered]
    everything = {lang.phones[p] for p in lang.hmm_phones}
    questions = unique_sets(phone_sets + position_questions(lang) + extra, universe=everything)
    log.info("questions: %d phone sets (%d from clustering %d phone groups)", len(questions), len(clustered), len(groups))
    return questions


@dataclass
class _Split:
    gain: float
    key: int
    question: int
    yes: torch.Tensor  # (rows,) bool


@dataclass
class _Leaf:
    node: int
    root: int
    rows: torch.Tensor  # indices into the stats
    total: torch.Tensor  # (1 + 2 D,)
    split: _Split | None = None


class Splitter:
    """Finds the best question for a set of statistics rows (all keys and questions at once)."""

    def __init__(self, stats: TreeStats, phone_questions: list[list[int]], class_questions: list[list[int]], cfg: TreeConfig):
        self.stats, self.cfg = stats, cfg
        self.values = torch.cat([stats.contexts, stats.pdf_classes.unsqueeze(1)], dim=1)
        self.phone_member = self._member(phone_questions, int(stats.contexts.max()) + 1)
        self.class_member = self._member(class_questions, int(stats.pdf_classes.max()) + 1)

    @staticmethod
    def _member(questions: list[list[int]], num_values: int) -> torch.Tensor:
        member = torch.zeros(len(questions), num_values, dtype=torch.float64)
        for q, values in enumerate(questions):
            member[q, [v for v in values if v < num_values]] = 1.0
        return member

    def _gains(self, rows: torch.Tensor, total: torch.Tensor, column: int, member: torch.Tensor) -> torch.Tensor:
        """(Q,) gain of every question of ``member`` on value column ``column``; -inf where a side is too small."""
        by_value = torch.zeros(member.shape[1], total.shape[0], dtype=torch.float64)
        by_value.index_add_(0, self.values[rows, column], self.stats.stats[rows])
        yes = member @ by_value
        no = total - yes
        floor = self.cfg.variance_floor
        gain = log_likelihood(yes, floor) + log_likelihood(no, floor) - log_likelihood(total, floor)
        small = (yes[:, 0] < self.cfg.min_leaf_count) | (no[:, 0] < self.cfg.min_leaf_count)
        return gain.masked_fill(small, -float("inf"))

    def best(self, rows: torch.Tensor, total: torch.Tensor, ask_class: bool) -> _Split | None:
        """The best split of ``rows`` (None if no question keeps both sides large enough)."""
        width = self.stats.context_width
        candidates = [(k, self._gains(rows, total, k, self.phone_member)) for k in range(width)]
        if ask_class and len(self.class_member):
            candidates.append((PDF_CLASS_KEY, self._gains(rows, total, width, self.class_member)))
        best_gain, best_key, best_q = -float("inf"), 0, 0
        for key, gains in candidates:
            if len(gains) and float(gains.max()) > best_gain:
                best_gain, best_key, best_q = float(gains.max()), key, int(gains.argmax())
        if best_gain == -float("inf"):
            return None
        column = width if best_key == PDF_CLASS_KEY else best_key
        member = self.class_member if best_key == PDF_CLASS_KEY else self.phone_member
        yes = member[best_q, self.values[rows, column]] > 0
        return _Split(best_gain, best_key, best_q, yes)


def _root_rows(stats: TreeStats, roots: list[tuple[list[int], list[int]]]) -> list[torch.Tensor]:
    """The statistics rows of each root (by central phone and pdf class)."""
    lookup = torch.full((int(stats.contexts.max()) + 1, int(stats.pdf_classes.max()) + 1), -1, dtype=torch.int64)
    for r, (phones, classes) in enumerate(roots):
        for p in phones:
            if p < lookup.shape[0]:
                lookup[p, [c for c in classes if c < lookup.shape[1]]] = r
    owner = lookup[stats.central_phones, stats.pdf_classes]
    if bool((owner < 0).any()):
        raise TreeError("the statistics have an event whose central phone and pdf class no root covers")
    return [torch.nonzero(owner == r).squeeze(1) for r in range(len(roots))]


def grow(stats: TreeStats, roots: list[tuple[list[int], list[int]]], splitter: Splitter, cfg: TreeConfig
         ) -> tuple[list[list[int] | None], list[_Leaf]]:
    """Best-first splitting over all roots (module docstring).

    Returns:
      ``(nodes, leaves)``: the node list, with ``None`` for a leaf node, and
      the leaves (node index, root, rows, total statistics).
    """
    nodes: list[list[int] | None] = []
    leaves: list[_Leaf] = []
    queue: list[tuple[float, int, _Leaf]] = []

    def add_leaf(root: int, rows: torch.Tensor) -> None:
        leaf = _Leaf(len(nodes), root, rows, stats.stats[rows].sum(0))
        nodes.append(None)
        leaves.append(leaf)
        leaf.split = splitter.best(rows, leaf.total, ask_class=len(roots[root][1]) > 1)
        if leaf.split is not None and leaf.split.gain > cfg.split_threshold:
            # heapq is a min-heap; the node index breaks ties deterministically.
            heapq.heappush(queue, (-leaf.split.gain, leaf.node, leaf))

    for r, rows in enumerate(_root_rows(stats, roots)):
        add_leaf(r, rows)
    if len(leaves) > cfg.max_leaves:
        raise TreeError(f"max_leaves {cfg.max_leaves} is below the number of roots ({len(leaves)})")
    num_leaves = len(leaves)
    while queue and num_leaves < cfg.max_leaves:
        _, _, leaf = heapq.heappop(queue)
        split = leaf.split
        nodes[leaf.node] = [split.key, split.question, len(nodes), len(nodes) + 1]
        add_leaf(leaf.root, leaf.rows[split.yes])
        add_leaf(leaf.root, leaf.rows[~split.yes])
        num_leaves += 1
    return nodes, [leaf for leaf in leaves if nodes[leaf.node] is None]


def merge_leaves(leaf_stats: torch.Tensor, threshold: float, variance_floor: float) -> list[int]:
    """Agglomerative merging of one root's leaves while the cheapest merge costs less than ``threshold``.

    Args:
      leaf_stats: (L, 1 + 2 D) statistics of the leaves.

    Returns:
      The cluster (0..C-1, in order of first member) of each leaf.
    """
    clusters = leaf_stats.clone()
    owner = list(range(len(clusters)))
    cost = merge_costs(clusters, variance_floor)
    while len(clusters) > 1:
        flat = int(cost.argmin())
        a, b = divmod(flat, len(clusters))
        if float(cost[a, b]) >= threshold:
            break
        keep, gone = min(a, b), max(a, b)
        clusters[keep] += clusters[gone]
        owner = [keep if o == gone else o for o in owner]
        # Close the gap left by ``gone`` in the cluster numbering and the cost matrix.
        owner = [o - 1 if o > gone else o for o in owner]
        clusters = torch.cat([clusters[:gone], clusters[gone + 1 :]])
        cost = torch.cat([cost[:gone], cost[gone + 1 :]])
        cost = torch.cat([cost[:, :gone], cost[:, gone + 1 :]], dim=1)
        ll = log_likelihood(clusters, variance_floor)
        row = ll[keep] + ll - log_likelihood(clusters + clusters[keep], variance_floor)
        row[keep] = float("inf")
        cost[keep], cost[:, keep] = row, row
    first_seen: dict[int, int] = {}
    return [first_seen.setdefault(o, len(first_seen)) for o in owner]


def _warn_empty_roots(roots: list[tuple[list[int], list[int]]], leaves: list[_Leaf], lang: LangDir) -> None:
    """Roots without frames get one leaf with count 0; a model cannot learn it from these alignments."""
    totals = [0.0] * len(roots)
    for leaf in leaves:
        totals[leaf.root] += float(leaf.total[0])
    empty = [
        f"{'/'.join(lang.phones.get(p) for p in phones)} (pdf classes {classes})"
        for (phones, classes), total in zip(roots, totals) if total == 0
    ]
    if empty:
        log.warning("%d roots have no frames in the alignments: %s", len(empty), ", ".join(empty))


def build_tree(stats: TreeStats, lang: LangDir, cfg: TreeConfig, extra_questions: list[list[int]] | None = None) -> Tree:
    """``build-tree``: questions, greedy splitting and merging of leaves (module docstring).

    Args:
      stats: From :func:`asr.tree.stats.accumulate_tree_stats` on ``lang``'s alignments.
      lang: The lang dir; its phones, topologies and ``base_phones``.
      cfg: Validated config (:func:`asr.tree.config.load_tree_config`).
      extra_questions: Phone-id sets to ask besides the automatic ones.

    Raises:
      TreeError: for roots that cannot be formed or ``max_leaves`` below their number.
    """
    phone_questions = tree_questions(stats, lang, cfg, extra_questions or [])
    roots = make_roots(lang, cfg.share_positions, cfg.share_pdf_classes)
    num_classes = max(len(classes) for _, classes in roots)
    class_questions = pdf_class_questions(num_classes) if cfg.share_pdf_classes else []
    splitter = Splitter(stats, phone_questions, class_questions, cfg)
    nodes, leaves = grow(stats, roots, splitter, cfg)
    leaf_ids, counts = {}, []
    for r in range(len(roots)):
        mine = [leaf for leaf in leaves if leaf.root == r]
        clusters = merge_leaves(torch.stack([leaf.total for leaf in mine]), cfg.effective_merge_threshold, cfg.variance_floor)
        for leaf, c in zip(mine, clusters):
            leaf_ids[leaf.node] = len(counts) + c
        for c in range(max(clusters) + 1):
            counts.append(sum(float(leaf.total[0]) for leaf, k in zip(mine, clusters) if k == c))
    _warn_empty_roots(roots, leaves, lang)
    log.info("tree: %d leaves after splitting, %d after merging (%d roots)", len(leaves), len(counts), len(roots))
    final_nodes = [node if node is not None else [leaf_ids[i]] for i, node in enumerate(nodes)]
    return Tree(
        context_width=stats.context_width,
        central_position=stats.central_position,
        phones={p: lang.phones[p] for p in lang.hmm_phones},
        questions=phone_questions,
        class_questions=class_questions,
        # grow() makes root r's node first, as node r.
        roots=[Root(list(p), list(c), r) for r, (p, c) in enumerate(roots)],
        nodes=final_nodes,
        leaf_counts=counts,
    )
