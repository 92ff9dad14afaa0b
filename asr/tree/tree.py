"""The decision tree: a map from (context window, pdf class) to a leaf (a tied state).

File format (``tree.yaml``, read with ``yaml.safe_load``; nothing is executed)::

    format: asr-tree-1
    context_width: 3            # N phones per window
    central_position: 1         # P, the modelled phone
    num_leaves: 500
    phones: {SIL: 1, AA_B: 2, ...}   # the lang's phone ids the tree speaks of; 0 = utterance edge
    questions:                  # phone-id sets, asked about window positions (keys 0..N-1)
    - [1, 2, 5]
    class_questions:            # pdf-class sets, asked by key -1
    - [0]
    roots:                      # the central phones and pdf classes each tree starts from
    - {phones: [2, 3, 4, 5], pdf_classes: [0, 1], node: 0}
    nodes:                      # [key, question, yes, no] or [leaf]
    - [-1, 0, 1, 2]             # key -1: class_questions[0] about the pdf class; 0..N-1: questions[q] about that position
    - [12]
    leaf_counts: [1234.0, ...]  # training frames (10 ms) of each leaf

A node's children come after it in ``nodes`` (so every walk ends).  Several
leaf nodes may share a leaf id: leaves merged after splitting.  Leaf ids run
from 0; a model over the tree's leaves would use pdf id ``leaf + 1`` (k2
reserves 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from asr.errors import AsrError
from asr.fileio import atomic_write_text

FORMAT = "asr-tree-1"
#: The key that asks about the pdf class instead of a window position (Kaldi's kPdfClass).
PDF_CLASS_KEY = -1
#: Key of leaf nodes in the vectorized node table (they ask nothing).
LEAF_KEY = -2
TREE_FILE = "tree.yaml"


class TreeError(AsrError):
    """A tree file is missing, malformed, or does not fit the lang."""


@dataclass
class Root:
    """The tree of one set of central phones and pdf classes starts at ``node``."""

    phones: list[int]
    pdf_classes: list[int]
    node: int


@dataclass
class Tree:
    """A loaded or freshly built decision tree (fields as in the module docstring)."""

    context_width: int
    central_position: int
    phones: dict[str, int]
    questions: list[list[int]]
    class_questions: list[list[int]]
    roots: list[Root]
    nodes: list[list[int]]
    leaf_counts: list[float]
    _root_of: dict[tuple[int, int], int] = field(default_factory=dict, repr=False, compare=False)
    _sets: list[frozenset[int]] = field(default_factory=list, repr=False, compare=False)
    _class_sets: list[frozenset[int]] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._root_of = {(p, c): r.node for r in self.roots for p in r.phones for c in r.pdf_classes}
        self._sets = [frozenset(q) for q in self.questions]
        self._class_sets = [frozenset(q) for q in self.class_questions]

    @property
    def num_leaves(self) -> int:
        return len(self.leaf_counts)

    def root_index(self, phone: int, pdf_class: int) -> int:
        """Index in :attr:`roots` of the root that models ``phone``'s ``pdf_class``."""
        node = self._root_node(phone, pdf_class)
        return next(i for i, r in enumerate(self.roots) if r.node == node)

    def _root_node(self, phone: int, pdf_class: int) -> int:
        try:
            return self._root_of[(int(phone), int(pdf_class))]
        except KeyError:
            raise TreeError(f"the tree has no root for phone id {phone}, pdf class {pdf_class}") from None

    def leaf(self, context: tuple[int, ...], pdf_class: int) -> int:
        """The leaf of one event.

        Args:
          context: ``context_width`` phone ids (0 outside the utterance), the
            modelled phone at ``central_position``.
          pdf_class: The pdf class of the modelled phone's HMM.
        """
        if len(context) != self.context_width:
            raise TreeError(f"context {tuple(context)} has {len(context)} phones, the tree wants {self.context_width}")
        node = self.nodes[self._root_node(context[self.central_position], pdf_class)]
        while len(node) == 4:
            key, question, yes, no = node
            asked = pdf_class in self._class_sets[question] if key == PDF_CLASS_KEY else context[key] in self._sets[question]
            node = self.nodes[yes if asked else no]
        return node[0]

    def leaf_ids(self, contexts: torch.Tensor, pdf_classes: torch.Tensor) -> torch.Tensor:
        """Vectorized :meth:`leaf`: (M, width) contexts and (M,) pdf classes -> (M,) int64 leaves."""
        contexts, pdf_classes = contexts.long(), pdf_classes.long()
        values = torch.cat([contexts, pdf_classes.unsqueeze(1)], dim=1)  # key -1 is the last column
        num_values = int(values.max()) + 1 if values.numel() else 1
        # One membership table: class questions follow the phone questions.
        member = torch.cat([membership(self.questions, num_values), membership(self.class_questions, num_values)])
        key, question, yes, no, leaf = self._node_table()
        question = torch.where(key == PDF_CLASS_KEY, question + len(self.questions), question)
        node = torch.tensor([self._root_node(p, c) for p, c in zip(
            contexts[:, self.central_position].tolist(), pdf_classes.tolist())], dtype=torch.int64)
        for _ in range(len(self.nodes)):
            inner = key[node] != LEAF_KEY
            if not bool(inner.any()):
                break
            n = node[inner]
            column = torch.where(key[n] == PDF_CLASS_KEY, values.shape[1] - 1, key[n])
            asked = member[question[n], values[inner].gather(1, column.unsqueeze(1)).squeeze(1)]
            node[inner] = torch.where(asked, yes[n], no[n])
        return leaf[node]

    def _node_table(self) -> tuple[torch.Tensor, ...]:
        """Columns of :attr:`nodes`; leaves get key :data:`LEAF_KEY` and their leaf id."""
        rows = [n if len(n) == 4 else [LEAF_KEY, 0, 0, 0] for n in self.nodes]
        key, question, yes, no = torch.tensor(rows, dtype=torch.int64).unbind(1)
        leaf = torch.tensor([n[0] if len(n) == 1 else -1 for n in self.nodes], dtype=torch.int64)
        return key, question, yes, no, leaf

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "context_width": self.context_width,
            "central_position": self.central_position,
            "num_leaves": self.num_leaves,
            "phones": dict(self.phones),
            "questions": [list(q) for q in self.questions],
            "class_questions": [list(q) for q in self.class_questions],
            "roots": [{"phones": r.phones, "pdf_classes": r.pdf_classes, "node": r.node} for r in self.roots],
            "nodes": [list(n) for n in self.nodes],
            "leaf_counts": [round(float(c), 3) for c in self.leaf_counts],
        }

    def save(self, path: str | Path) -> None:
        """Writes the tree as YAML atomically (lists of numbers in flow style, one node per line)."""
        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=120))

    @classmethod
    def load(cls, path: str | Path) -> "Tree":
        """Reads and checks a tree file (or ``tree.yaml`` in a folder).

        Raises:
          TreeError: naming the file and the field at fault.
        """
        path = Path(path)
        if path.is_dir():
            path = path / TREE_FILE
        if not path.is_file():
            raise TreeError(f"{path}: no such tree file (run asr build-tree)")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise TreeError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
        return tree_from_dict(data, str(path))

    def check_lang(self, phones: dict[str, int], where: str) -> None:
        """Checks that the tree's phone ids are the lang's (``phones``: the lang's phones.txt).

        Raises:
          TreeError: naming ``where`` and the first phone whose id differs.
        """
        for name, i in self.phones.items():
            if phones.get(name) != i:
                raise TreeError(f"{where}: phone '{name}' has id {phones.get(name)} there but {i} in the tree")


def membership(questions: list[list[int]], num_values: int) -> torch.Tensor:
    """(len(questions), num_values) bool: value ``v`` is in question ``q``'s set (larger values are in none)."""
    member = torch.zeros(len(questions), max(num_values, 1), dtype=torch.bool)
    for q, values in enumerate(questions):
        member[q, [v for v in values if 0 <= v < num_values]] = True
    return member


def _field(data: dict, key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TreeError(f"{where}: '{key}' must be {kind.__name__}, got {type(value).__name__}")
    return value


def _int_list(value: Any, where: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise TreeError(f"{where}: expected a list of integers, got {str(value)[:60]}")
    return value


def _check_node(i: int, node: list[int], tree_sizes: tuple[int, ...], where: str) -> None:
    """A node is ``[leaf]`` or ``[key, question, yes, no]`` with children after it."""
    num_nodes, num_questions, num_class_questions, num_leaves, width = tree_sizes
    if len(node) == 1:
        if not 0 <= node[0] < num_leaves:
            raise TreeError(f"{where}: nodes[{i}]: leaf {node[0]} outside 0..{num_leaves - 1}")
        return
    if len(node) != 4:
        raise TreeError(f"{where}: nodes[{i}]: expected [leaf] or [key, question, yes, no]")
    key, question, yes, no = node
    limit = num_class_questions if key == PDF_CLASS_KEY else num_questions
    if not PDF_CLASS_KEY <= key < width or not 0 <= question < limit:
        raise TreeError(f"{where}: nodes[{i}]: key {key} or question {question} out of range")
    if not (i < yes < num_nodes and i < no < num_nodes):
        raise TreeError(f"{where}: nodes[{i}]: children must come after the node and exist")


def tree_from_dict(data: Any, where: str) -> Tree:
    """Builds a :class:`Tree` from a loaded ``tree.yaml`` mapping, checking every field.

    Raises:
      TreeError: naming ``where`` and the field at fault.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TreeError(f"{where}: not a tree file (expected 'format: {FORMAT}')")
    width = _field(data, "context_width", int, where)
    centre = _field(data, "central_position", int, where)
    if not 0 <= centre < width:
        raise TreeError(f"{where}: central_position {centre} outside the window of {width}")
    phones = _field(data, "phones", dict, where)
    questions = [_int_list(q, f"{where}: questions[{i}]") for i, q in enumerate(_field(data, "questions", list, where))]
    class_questions = [
        _int_list(q, f"{where}: class_questions[{i}]") for i, q in enumerate(_field(data, "class_questions", list, where))
    ]
    nodes = [_int_list(n, f"{where}: nodes[{i}]") for i, n in enumerate(_field(data, "nodes", list, where))]
    counts = _field(data, "leaf_counts", list, where)
    if _field(data, "num_leaves", int, where) != len(counts):
        raise TreeError(f"{where}: num_leaves {data['num_leaves']} but {len(counts)} leaf_counts")
    for i, node in enumerate(nodes):
        _check_node(i, node, (len(nodes), len(questions), len(class_questions), len(counts), width), where)
    roots = []
    for i, r in enumerate(_field(data, "roots", list, where)):
        if not isinstance(r, dict) or not isinstance(r.get("node"), int) or not 0 <= r["node"] < len(nodes):
            raise TreeError(f"{where}: roots[{i}]: expected {{phones, pdf_classes, node}} with a valid node")
        roots.append(Root(_int_list(r.get("phones"), f"{where}: roots[{i}].phones"),
                          _int_list(r.get("pdf_classes"), f"{where}: roots[{i}].pdf_classes"), r["node"]))
    return Tree(width, centre, {str(k): int(v) for k, v in phones.items()}, questions, class_questions, roots, nodes,
                [float(c) for c in counts])
