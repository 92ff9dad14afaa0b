"""Pruned Viterbi search over HLG and what to read off its lattices.

The acoustic model's log-posteriors become scaled log-likelihoods
(:func:`asr.training.priors.scaled_log_likelihoods`) and a
``k2.DenseFsaVec``; ``k2.intersect_dense_pruned`` searches HLG with them.
Every lattice keeps two per-arc score attributes so that it can be rescored
without decoding again:

- ``am_scores``: unscaled acoustic log-likelihoods, log P(s|x) - log P(s);
- ``lm_scores``: graph scores (LM plus the lexicon's silence probabilities).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import k2
import torch

from asr.training.graphs import arc_splits, dense_fsa_vec

log = logging.getLogger("asr.decoding.search")


@dataclass
class SearchConfig:
    """Decoder settings (``asr/conf/decode.yaml``)."""

    acoustic_scale: float = 0.1
    word_penalty: float = 0.0
    search_beam: float = 20.0
    output_beam: float = 8.0
    min_active_states: int = 30
    max_active_states: int = 10000
    allow_partial: bool = True
    max_frames: int = 30000

    @classmethod
    def from_dict(cls, cfg: dict) -> "SearchConfig":
        from asr.errors import ConfigError

        unknown = set(cfg) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"decode config: unknown keys {sorted(unknown)}")
        return cls(**cfg)


def prepare_hlg(HLG: k2.Fsa) -> k2.Fsa:
    """Marks all of HLG's scores as graph scores, before searching it."""
    HLG = k2.arc_sort(HLG)
    HLG.lm_scores = HLG.scores.clone()
    return HLG


def search(HLG: k2.Fsa, am: torch.Tensor, lengths: torch.Tensor, cfg: SearchConfig) -> k2.Fsa:
    """Builds lattices for a batch.

    Args:
      HLG: Decoding graph, prepared with :func:`prepare_hlg`.
      am: (N, T, S) unscaled acoustic log-likelihoods, sorted by decreasing length.
      lengths: (N,) valid frames.
      cfg: Beams and the acoustic scale.

    Returns:
      An FsaVec of N lattices with ``am_scores`` and ``lm_scores``.
    """
    dense, _ = dense_fsa_vec(cfg.acoustic_scale * am, lengths)
    lattice = k2.intersect_dense_pruned(
        HLG,
        dense,
        search_beam=cfg.search_beam,
        output_beam=cfg.output_beam,
        min_active_states=cfg.min_active_states,
        max_active_states=cfg.max_active_states,
        allow_partial=cfg.allow_partial,
    )
    lattice.am_scores = (lattice.scores - lattice.lm_scores) / cfg.acoustic_scale
    return lattice


def words_per_arc(lattice: k2.Fsa) -> torch.Tensor:
    """Number of real words (id > 0) on each arc."""
    aux = lattice.aux_labels
    if isinstance(aux, k2.RaggedTensor):
        positive = aux.values > 0
        counts = torch.zeros(aux.shape.tot_size(0), dtype=torch.float32)
        row_ids = aux.shape.row_ids(1).to(torch.int64)
        return counts.index_add_(0, row_ids[positive], torch.ones(int(positive.sum())))
    return (aux > 0).to(torch.float32)


def rescore_best_paths(lattice: k2.Fsa, lm_weight: float, word_penalty: float, acoustic_scale: float = 1.0) -> k2.Fsa:
    """Best paths under ``acoustic_scale * am + lm_weight * lm - word_penalty * words``.

    With ``acoustic_scale = 1 / LMWT`` and ``lm_weight = 1`` this is Kaldi's
    ``lattice-scale --inv-acoustic-scale=LMWT | lattice-add-penalty``.
    """
    lat = lattice.clone()
    lat.scores = acoustic_scale * lat.am_scores + lm_weight * lat.lm_scores - word_penalty * words_per_arc(lat)
    return k2.shortest_path(lat, use_double_scores=True)


@dataclass
class PathInfo:
    """What one best path says."""

    word_ids: list[int]
    frame_pdfs: list[int]  # pdf per frame
    phone_starts: list[tuple[int, int]]  # (frame, phone id)
    word_arcs: list[int]  # frame of the arc carrying each word label
    num_frames: int


def read_paths(best: k2.Fsa, num_frames: list[int]) -> list[PathInfo]:
    """Reads words, pdfs and phone starts off a vector of best paths.

    An empty path (the search found nothing even with allow_partial) gives
    no words.
    """
    splits = arc_splits(best).tolist()
    labels = best.labels.tolist()
    phones = best.phones.tolist() if hasattr(best, "phones") else [0] * len(labels)
    aux = best.aux_labels
    if isinstance(aux, k2.RaggedTensor):
        aux_splits = aux.shape.row_splits(1).tolist()
        aux_values = aux.values.tolist()
    else:
        aux_splits = list(range(len(labels) + 1))
        aux_values = aux.tolist()
    out = []
    for i in range(best.shape[0]):
        begin, end = splits[i], splits[i + 1]
        words, word_arcs = [], []
        frames = [a for a in range(begin, end) if labels[a] != -1]
        for a in range(begin, end):
            for w in aux_values[aux_splits[a] : aux_splits[a + 1]]:
                if w > 0:
                    words.append(w)
                    word_arcs.append(a - begin)
        out.append(
            PathInfo(
                word_ids=words,
                frame_pdfs=[labels[a] for a in frames],
                phone_starts=[(a - begin, phones[a]) for a in frames if phones[a] > 0],
                word_arcs=word_arcs,
                num_frames=num_frames[i],
            )
        )
    return out
