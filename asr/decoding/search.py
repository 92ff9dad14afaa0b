"""Pruned Viterbi search over HLG and what to read off its lattices.

The acoustic model's log-posteriors become scaled log-likelihoods
(:func:`asr.models.priors.scaled_log_likelihoods`) and a
``k2.DenseFsaVec``; ``k2.intersect_dense_pruned`` searches HLG with them.
Every lattice keeps two per-arc score attributes so that it can be rescored
without decoding again:

- ``am_scores``: unscaled acoustic log-likelihoods, log P(s|x) - log P(s);
- ``lm_scores``: graph scores (LM plus the lexicon's silence probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass

import k2
import torch

from asr.config import check_range, option, parse_config

from asr.lang.k2fsa import arc_splits, dense_fsa_vec


@dataclass
class SearchConfig:
    """The ``search`` section of a decode config (``asr/conf/decode.yaml`` repeats these defaults; a test keeps them equal)."""

    acoustic_scale: float = option(0.1, "weight of log P(x|s) against graph scores (Kaldi's acwt)")
    word_penalty: float = option(0.0, "subtracted per output word (Kaldi's word insertion penalty)")
    search_beam: float = option(15.0, "search beam of k2.intersect_dense_pruned")
    output_beam: float = option(7.0, "lattice beam")
    min_active_states: int = option(30, "fewest active states per frame")
    max_active_states: int = option(3000, "most active states per frame")
    allow_partial: bool = option(True, "keep a partial path rather than nothing; logged when used")
    max_frames: int = option(10000, "padded input frames per batch (bounds lattice memory)")
    confidence_scale: float = option(
        1.0, "scale on the decode scores before the forward-backward of word confidences (Kaldi scales "
        "lattices the same way before lattice-to-post); below 1 flattens sharp lattices. Choose it on "
        "held-out speakers (python -m benchmarks.confidence)")

    def check(self, where: str, prefix: str = "") -> None:
        check_range(where, f"{prefix}confidence_scale", self.confidence_scale > 0, "a positive number",
                    self.confidence_scale)

    @classmethod
    def from_dict(cls, cfg: dict, where: str = "decode config") -> "SearchConfig":
        """Checks a ``search`` mapping (unknown keys, types) and builds the config."""
        return parse_config(cls, cfg, where, prefix="search.")


@dataclass
class SweepConfig:
    """The ``sweep`` section: the LM-weight sweep of ``asr decode --sweep`` (Kaldi's score.sh)."""

    lm_weights: list[float] = option(
        factory=lambda: [5.0, 7.0, 9.0, 10.0, 11.0, 13.0, 15.0, 17.0], doc="LM weights (acoustic scale 1/LMWT)")
    word_penalties: list[float] = option(factory=lambda: [0.0, 0.5, 1.0], doc="word insertion penalties")


@dataclass
class DecodeConfig:
    """A decode config (``asr decode``, ``asr transcribe``, ``Recognizer.from_dir``)."""

    search: SearchConfig = option(factory=SearchConfig, doc="search section")
    use_priors: bool = option(
        True, "divide posteriors by the model dir's state priors (hybrid models); a model without priors "
        "(e.g. LF-MMI) is decoded from its outputs as they are")
    prior_scale: float = option(1.0, "scale of the log priors subtracted from the log posteriors")
    sweep: SweepConfig = option(factory=SweepConfig, doc="LM-weight sweep section")


def decode_config(cfg: DecodeConfig | dict, where: str = "decode config") -> DecodeConfig:
    """A decode config, typed and checked (a mapping read from YAML is parsed; errors name ``where``)."""
    return cfg if isinstance(cfg, DecodeConfig) else parse_config(DecodeConfig, cfg, where)


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


def decode_scores(lattice: k2.Fsa, lm_weight: float, word_penalty: float, acoustic_scale: float = 1.0) -> torch.Tensor:
    """(arcs,) ``acoustic_scale * am + lm_weight * lm - word_penalty * words``: the scores a 1-best maximises
    (and word posteriors, :mod:`asr.decoding.confidence`, are computed with)."""
    return acoustic_scale * lattice.am_scores + lm_weight * lattice.lm_scores - word_penalty * words_per_arc(lattice)


def rescore_best_paths(lattice: k2.Fsa, lm_weight: float, word_penalty: float, acoustic_scale: float = 1.0) -> k2.Fsa:
    """Best paths under :func:`decode_scores`.

    With ``acoustic_scale = 1 / LMWT`` and ``lm_weight = 1`` this is Kaldi's
    ``lattice-scale --inv-acoustic-scale=LMWT | lattice-add-penalty``.
    """
    lat = lattice.clone()
    lat.scores = decode_scores(lat, lm_weight, word_penalty, acoustic_scale)
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
