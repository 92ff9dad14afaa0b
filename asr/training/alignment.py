"""Sequence likelihood and Viterbi forced alignment over numerator graphs.

Both run k2's dense intersection of the network output with the
utterances' numerator graphs (see :mod:`asr.training.graphs`).  An
utterance too short for its graph has no path: its total score is -inf, and
it is reported rather than allowed to poison gradients with NaNs.
"""

from __future__ import annotations

from dataclasses import dataclass

import k2
import torch

from asr.lang.k2fsa import arc_splits, dense_fsa_vec


def graph_log_likelihood(
    log_probs: torch.Tensor, lengths: torch.Tensor, graphs: k2.Fsa, output_beam: float
) -> torch.Tensor:
    """Total log-likelihood of each utterance over all paths of its graph.

    This is the flat-start objective: like CTC, but over our HMM topology.

    Args:
      log_probs: (N, T, S) network log-posteriors (pdf ``i+1`` in column ``i``),
        sorted by decreasing length.
      lengths: (N,) valid frames.
      graphs: FsaVec of N numerator graphs, in the same order.
      output_beam: Pruning beam of the intersection (log domain).

    Returns:
      (N,) float64 total scores (log semiring); -inf where no path fits.
    """
    dense, _ = dense_fsa_vec(log_probs, lengths)
    lattice = k2.intersect_dense(graphs, dense, output_beam=output_beam)
    return lattice.get_tot_scores(log_semiring=True, use_double_scores=True)


@dataclass
class Alignment:
    """A frame-level alignment of one utterance.

    Attributes:
      pdfs: (T,) pdf id (from 1) per output frame.
      phone_starts: ``(frame, phone_id)`` where each phone starts.
      word_starts: ``(frame, word_id)`` where each word's first phone starts.
      score: Viterbi log-likelihood of the path.
    """

    pdfs: torch.Tensor
    phone_starts: list[tuple[int, int]]
    word_starts: list[tuple[int, int]]
    score: float


def forced_align(
    log_probs: torch.Tensor, lengths: torch.Tensor, graphs: k2.Fsa, output_beam: float
) -> list[Alignment | None]:
    """Viterbi best path of each utterance through its numerator graph.

    Returns:
      One alignment per utterance, or None where the utterance cannot be
      aligned (too short for its transcript).
    """
    dense, _ = dense_fsa_vec(log_probs.detach(), lengths)
    lattice = k2.intersect_dense(graphs, dense, output_beam=output_beam)
    best = k2.shortest_path(lattice, use_double_scores=True)
    scores = best.get_tot_scores(log_semiring=False, use_double_scores=True)
    splits = arc_splits(best).tolist()
    labels = best.labels.tolist()
    phones = best.phones.tolist()
    aux_splits = best.aux_labels.shape.row_splits(1).tolist()
    aux_values = best.aux_labels.values.tolist()
    out: list[Alignment | None] = []
    for i in range(best.shape[0]):
        begin, end = splits[i], splits[i + 1]
        if not torch.isfinite(scores[i]) or end == begin:
            out.append(None)
            continue
        # One arc per frame, then the final arc (label -1); shortest_path
        # returns the arcs in path order.
        frames = range(begin, end - 1)
        words = [
            (t - begin, w) for t in frames for w in aux_values[aux_splits[t] : aux_splits[t + 1]] if w > 0
        ]
        out.append(
            Alignment(
                pdfs=torch.tensor(labels[begin : end - 1], dtype=torch.int64),
                phone_starts=[(t - begin, phones[t]) for t in frames if phones[t] > 0],
                word_starts=words,
                score=float(scores[i]),
            )
        )
    return out


def alignment_segments(
    ali: Alignment, silence_phone_ids: set[int]
) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
    """Phone and word segments of an alignment, in frames.

    A word spans from its first phone's start to the end of its last phone,
    which is where the next word or a silence phone starts (optional
    silence belongs to no word).

    Returns:
      ``(phone_segments, word_segments)``, each a list of
      ``(start_frame, num_frames, id)``.
    """
    num_frames = len(ali.pdfs)
    phones = ali.phone_starts
    phone_segs = [
        (start, (phones[k + 1][0] if k + 1 < len(phones) else num_frames) - start, pid)
        for k, (start, pid) in enumerate(phones)
    ]
    word_segs = []
    for k, (start, wid) in enumerate(ali.word_starts):
        next_word = ali.word_starts[k + 1][0] if k + 1 < len(ali.word_starts) else num_frames
        end = next_word
        for ps, _, pid in phone_segs:
            if start < ps < next_word and pid in silence_phone_ids:
                end = ps
                break
        word_segs.append((start, end - start, wid))
    return phone_segs, word_segs
