"""Questions of the decision tree: phone sets (Kaldi's ``cluster-phones``, word-position classes, user sets).

A question asks whether the phone at one position of the context window
belongs to a set.  The sets come from three sources:

- **clustering** (Kaldi's ``cluster-phones``): the phone groups (a base phone
  with all its word-position variants) are split top-down into a binary tree;
  each split divides a set of groups in two so that the total log-likelihood
  of one diagonal Gaussian per side (:mod:`asr.tree.gaussian`) is highest.
  Every node of that tree but the root is a question;
- **word-position classes**: all phones ending in ``_B``, in ``_I``, ... (the
  phones of a lang with ``position_dependent: true``), and the silence phones
  together with the utterance boundary (0);
- **extra questions** from a file: one question per line, phone names
  separated by spaces (Kaldi's ``extra_questions.txt``).

When a root's pdf classes share it, questions about the pdf class are the
singletons ``{c}`` and the prefixes ``{0..c}``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from asr.errors import LexiconError
from asr.fileio import read_lines
from asr.lang.context import POSITIONS
from asr.lang.lang_dir import EPS, LangDir, SymbolTable
from asr.tree.gaussian import log_likelihood
from asr.tree.stats import BOUNDARY

#: Local-search passes of one 2-way split are bounded by this many moves per item.
MAX_MOVES_PER_ITEM = 4


def phone_groups(lang: LangDir, share_positions: bool) -> list[tuple[str, list[int]]]:
    """The lang's phones grouped by base phone (or one group per phone).

    Returns:
      ``[(group name, [phone ids])]`` in the lang's phone order; the name is
      the base phone (``lang.yaml`` ``base_phones``) or the phone itself.
    """
    bases = (lang.config.get("base_phones") or {}) if share_positions else {}
    groups: dict[str, list[int]] = {}
    for phone in lang.hmm_phones:
        groups.setdefault(bases.get(phone, phone), []).append(lang.phones[phone])
    return list(groups.items())


def split_in_two(stats: torch.Tensor, variance_floor: float, restarts: int, generator: torch.Generator) -> torch.Tensor:
    """The best 2-way partition of items found by local search from random starts.

    Each start assigns items to two sides at random, then repeatedly moves the
    single item whose move most increases ``LL(side 0) + LL(side 1)``
    (exact objective, all candidate moves evaluated at once) until no move
    helps; a side is never emptied.

    Args:
      stats: (K, 1 + 2 D) item statistics, K >= 2.

    Returns:
      (K,) bool, True for side 1.
    """
    k = len(stats)
    best_side, best_ll = None, -float("inf")
    for _ in range(restarts):
        side = torch.randperm(k, generator=generator) < k // 2
        for _ in range(MAX_MOVES_PER_ITEM * k):
            totals = torch.stack([stats[~side].sum(0), stats[side].sum(0)])
            before = log_likelihood(totals, variance_floor).sum()
            own = totals[side.long()]  # (K, 1+2D): each item's current side
            other = totals[1 - side.long()]
            after = log_likelihood(own - stats, variance_floor) + log_likelihood(other + stats, variance_floor)
            gain = after - before
            sizes = torch.stack([(~side).sum(), side.sum()])
            gain[sizes[side.long()] == 1] = -float("inf")
            best = int(gain.argmax())
            if gain[best] <= 1e-9 * abs(float(before)):
                break
            side[best] = ~side[best]
        ll = float(log_likelihood(torch.stack([stats[~side].sum(0), stats[side].sum(0)]), variance_floor).sum())
        if ll > best_ll:
            best_side, best_ll = side.clone(), ll
    return best_side


def cluster_groups(stats: torch.Tensor, variance_floor: float, restarts: int, seed: int) -> list[list[int]]:
    """Kaldi's ``cluster-phones``: a binary tree of item sets by repeated 2-way splits.

    Args:
      stats: (K, 1 + 2 D) statistics of K items (phone groups); items with
        no frames are not clustered and appear only as singletons.

    Returns:
      Every node of the tree except the root, as sorted item-index lists
      (children after their parent; leaves are singletons).
    """
    generator = torch.Generator().manual_seed(seed)
    seen = [i for i in range(len(stats)) if float(stats[i, 0]) > 0]
    out: list[list[int]] = [[i] for i in range(len(stats)) if i not in seen]
    pending = [seen] if len(seen) > 1 else []
    if len(seen) == 1:
        out.append(seen)
    while pending:
        items = pending.pop()
        side = split_in_two(stats[items], variance_floor, restarts, generator)
        for part in ([i for i, s in zip(items, side.tolist()) if not s], [i for i, s in zip(items, side.tolist()) if s]):
            out.append(part)
            if len(part) > 1:
                pending.append(part)
    return out


def position_questions(lang: LangDir) -> list[list[int]]:
    """The phones of each word position (``_B``, ``_I``, ``_E``, ``_S``) present, and silence plus the boundary."""
    silence = [lang.phones[p] for p in lang.silence_phones if p in lang.phones]
    out = [sorted(silence + [BOUNDARY])]
    for suffix in POSITIONS:
        ids = [lang.phones[p] for p in lang.hmm_phones if p.endswith(suffix)]
        if ids:
            out.append(sorted(ids))
    return out


def read_extra_questions(path: str | Path, phones: SymbolTable) -> list[list[int]]:
    """Reads a questions file: one question per line, phone names separated by spaces; blank lines are skipped.

    Raises:
      LexiconError: naming the file and line for an unknown phone, a
        disambiguation symbol or ``<eps>``, or a phone repeated on a line.
    """
    out = []
    for number, line in enumerate(read_lines(path, LexiconError), 1):
        names = line.split()
        if not names:
            continue
        for name in names:
            if name not in phones or name == EPS or name.startswith("#"):
                raise LexiconError(f"{path}:{number}: '{name}' is not a phone of the lang")
        if len(set(names)) != len(names):
            raise LexiconError(f"{path}:{number}: a phone is repeated")
        out.append(sorted(phones[n] for n in names))
    return out


def pdf_class_questions(num_classes: int) -> list[list[int]]:
    """Singletons ``{c}`` and prefixes ``{0..c}`` of the pdf classes, without duplicates or the full set."""
    candidates = [[c] for c in range(num_classes)] + [list(range(c + 1)) for c in range(num_classes - 1)]
    return unique_sets(candidates, universe=set(range(num_classes)))


def unique_sets(sets: list[list[int]], universe: set[int] | None = None) -> list[list[int]]:
    """Sorted, duplicate-free sets in first-seen order; empty sets and ``universe`` itself are dropped."""
    out, seen = [], set()
    for s in sets:
        key = frozenset(s)
        if not key or key in seen or (universe is not None and key == universe):
            continue
        seen.add(key)
        out.append(sorted(key))
    return out
