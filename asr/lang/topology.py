"""HMM topologies and the H transducer (HMM states -> phones).

A topology is a left-to-right chain of emitting states per phone.  Each state
has two pdf classes: the one of the arc that enters it and the one of its
self-loop.  Kaldi's 3-state HMM uses the same class for both; the chain
topology has one state whose first frame and repeats have different pdfs.

pdf ids are numbered from 1 because k2 reserves column 0 of the network
output (label 0 is not epsilon in dense intersection), so the acoustic model
predicts ``num_pdfs`` classes and column ``i`` of its output is pdf ``i + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import k2
import torch

from asr.config import option
from asr.errors import ConfigError


@dataclass(frozen=True)
class HmmState:
    """One emitting state: pdf classes of its entry arc and of its self-loop."""

    enter: int
    loop: int


@dataclass(frozen=True)
class Topology:
    """A per-phone HMM topology."""

    name: str
    states: tuple[HmmState, ...]

    @property
    def num_pdf_classes(self) -> int:
        return 1 + max(max(s.enter, s.loop) for s in self.states)

    @property
    def min_frames(self) -> int:
        """The fewest frames one phone can take."""
        return len(self.states)

    def to_config(self) -> dict:
        return {"name": self.name, "states": [[s.enter, s.loop] for s in self.states]}


@dataclass
class TopologyConfig:
    """A ``topology`` / ``silence_topology`` section of a lang config."""

    states: list[list[int]] = option(doc="one [entry pdf class, self-loop pdf class] pair per emitting state")
    name: str = option("custom", "a name for logs and lang.yaml")


def topology_from_config(cfg: dict) -> Topology:
    """Builds a topology from ``{name: ..., states: [[enter, loop], ...]}``.

    Raises:
      ConfigError: if the states are missing or the pdf classes are not
        ``0..K-1`` without gaps.
    """
    try:
        states = tuple(HmmState(int(e), int(l)) for e, l in cfg["states"])
        name = str(cfg.get("name", "custom"))
    except (KeyError, TypeError, ValueError):
        raise ConfigError("topology: expected {name: str, states: [[enter_class, loop_class], ...]}") from None
    if not states:
        raise ConfigError("topology: needs at least one state")
    used = {c for s in states for c in (s.enter, s.loop)}
    if used != set(range(len(used))):
        raise ConfigError(f"topology '{name}': pdf classes must be 0..K-1, got {sorted(used)}")
    return Topology(name, states)


class PdfTable:
    """pdf ids of every phone's HMM states (ids from 1, in phone order).

    Each phone has its own topology (silence phones may differ, as in
    Kaldi, where an ergodic silence model lets silence of any shape pass).
    """

    def __init__(self, phones: list[str], topologies: list[Topology]):
        self.phones = list(phones)
        self.topologies = list(topologies)
        self.offsets = []
        next_id = 1
        for topo in self.topologies:
            self.offsets.append(next_id)
            next_id += topo.num_pdf_classes
        self.num_pdfs = next_id - 1

    def pdf_id(self, phone_index: int, pdf_class: int) -> int:
        return self.offsets[phone_index] + pdf_class

    def names(self) -> list[str]:
        """Names of the pdfs in id order; the name at index ``i`` is pdf ``i + 1``."""
        return [f"{p}_{c}" for p, t in zip(self.phones, self.topologies) for c in range(t.num_pdf_classes)]

    def pdf_to_phone_index(self) -> list[int]:
        """For each pdf id (index ``i`` is pdf ``i + 1``), the index of its phone."""
        return [j for j, t in enumerate(self.topologies) for _ in range(t.num_pdf_classes)]


def build_h(phone_ids: list[int], table: PdfTable) -> k2.Fsa:
    """Builds H, mapping pdf-id sequences (labels) to phone sequences (aux_labels).

    State 0 is a hub from which any phone may start; the last HMM state of
    every phone may go straight to the first state of any phone.  Entering a
    phone outputs its id, every other arc outputs epsilon (0).  H has no
    epsilon input arcs, so intersecting it with network output consumes one
    frame per arc, and it is deterministic on its input.

    Args:
      phone_ids: ids (from phones.txt) of the phones in ``table`` order.
      table: The phones' topologies and pdf ids.
    """
    first_state, exit_state = [], []
    next_state = 1
    for topo in table.topologies:
        first_state.append(next_state)
        exit_state.append(next_state + len(topo.states) - 1)
        next_state += len(topo.states)
    final = next_state
    exits = [0] + exit_state
    arcs: list[tuple[int, int, int, int]] = []
    for j, (phone, topo) in enumerate(zip(phone_ids, table.topologies)):
        first = table.pdf_id(j, topo.states[0].enter)
        arcs += [(src, first_state[j], first, phone) for src in exits]
        for k, st in enumerate(topo.states):
            state = first_state[j] + k
            arcs.append((state, state, table.pdf_id(j, st.loop), 0))
            if k + 1 < len(topo.states):
                arcs.append((state, state + 1, table.pdf_id(j, topo.states[k + 1].enter), 0))
    arcs += [(src, final, -1, -1) for src in exits]
    arcs.sort(key=lambda a: (a[0], a[2]))
    t = torch.tensor(arcs, dtype=torch.int32)
    scores = torch.zeros(len(arcs), dtype=torch.float32)
    arcs_tensor = torch.cat([t[:, :3], scores.view(torch.int32).unsqueeze(1)], dim=1)
    return k2.arc_sort(k2.Fsa(arcs_tensor, aux_labels=t[:, 3].contiguous()))
