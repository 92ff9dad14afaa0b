"""Lattice rescoring: LM-weight / insertion-penalty sweeps and a bigger n-gram LM."""

from __future__ import annotations

import k2
import torch

from asr.lang.lang_dir import SymbolTable


def prepare_rescoring_g(G: k2.Fsa, words: SymbolTable) -> k2.Fsa:
    """Turns G into an acceptor for lattice rescoring.

    Back-off arcs (``#0``) become epsilons, an approximation of exact
    back-off that k2/icefall use for whole-lattice rescoring; epsilon
    self-loops let the lattice's word-less arcs through.
    """
    G = G.clone()
    if hasattr(G, "aux_labels"):
        del G.aux_labels
    labels = G.labels
    labels[labels >= words["#0"]] = 0
    G.labels = labels
    G = k2.arc_sort(k2.add_epsilon_self_loops(k2.arc_sort(G)))
    G.lm_scores = G.scores.clone()
    return G


def rescore_with_lm(lattice: k2.Fsa, G_rescore: k2.Fsa) -> k2.Fsa:
    """Replaces the lattices' graph scores with those of another LM.

    Args:
      lattice: Decoder lattices (FsaVec) with ``am_scores`` and ``lm_scores``.
      G_rescore: From :func:`prepare_rescoring_g`.

    Returns:
      Lattices whose ``lm_scores`` are the new LM's and ``am_scores`` are
      unchanged.  (The lexicon's silence probabilities, part of the old
      graph scores, are dropped with the old LM.)
    """
    if len(G_rescore.shape) == 2:
        # intersect_device wants an FsaVec (G.pt holds a single Fsa).
        G_rescore = k2.create_fsa_vec([G_rescore])
    lat = lattice.clone()
    del lat.lm_scores
    lat.scores = torch.zeros_like(lat.scores)
    inv = k2.arc_sort(k2.invert(lat))
    b_to_a = torch.zeros(inv.shape[0], dtype=torch.int32)
    out = k2.intersect_device(G_rescore, inv, b_to_a, sorted_match_a=True)
    return k2.invert(k2.top_sort(k2.connect(out)))
