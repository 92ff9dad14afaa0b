"""Lattice-free sMBR (state-level minimum Bayes risk) in k2.

Objective
  The expected frame accuracy of the denominator lattice against the
  reference alignment::

      E[A] = sum_t sum_s gamma_t(s) * acc_t(s)

  where ``gamma_t(s)`` is the posterior of pdf ``s`` at frame ``t`` over the
  same lattice-free denominator graph as MMI (H o phone LM, through the tree
  for a lang with one, :func:`asr.training.lfmmi.compose_denominator`), in
  the log semiring, with the acoustic scores ``acoustic_scale * (log y - log
  prior)``; ``acc_t(s)`` is 1 when ``s`` is in the same class as the
  alignment's pdf at ``t``, else 0.  Silence frames count (Kaldi's
  ``--exclude-silence`` is not offered).  The loss is ``-E[A]`` summed over the
  utterances (the trainer divides by the frames: ``-E[A] / frames``), plus
  optional ``ce_weight`` cross-entropy against the alignment and ``l2_weight``
  on the output, as for MMI.

Frame accuracy classes (``accuracy``)
  ``phone``: the pdf's phone (:meth:`LangDir.pdf_to_phone`), so the entry and
  self-loop pdfs of the reference phone both count as right (Kaldi's sMBR).
  ``pdf``: pdf identity.  ``auto`` (default) is ``phone`` for a monophone lang
  and ``pdf`` for a lang with a decision tree: its leaves may be shared by
  phones, so a leaf names no phone, and the reference alignment holds leaves,
  not phones (a per-frame phone alignment would need an extra forced
  alignment through the tree).  ``pdf`` is the stricter accuracy: on a tree
  lang it counts a frame wrong when the lattice has the right phone in a
  different context.

Computation
  ``k2.intersect_dense`` gives the denominator lattice with each arc's row in
  the dense scores (``seqframe_idx``: utterance ``i``'s ``T_i`` frames then
  one row for its final arc, utterances one after the other), which indexes a
  flat table of the reference classes.  ``Fsa.get_arc_post(log_semiring=True)``
  gives each arc's log posterior, differentiably; ``E[A] = sum_arcs
  exp(post) * acc``.  Autograd through the forward-backward gives the classic
  sMBR derivative ``dE[A]/dx_t(s) = acoustic_scale * gamma_t(s) * (c_t(s) - E[A])``,
  with ``c_t(s)`` the expected accuracy of the paths through ``s`` at ``t``
  (checked against enumeration in tests/test_smbr.py).

Utterances whose alignment cannot be fitted to the output length, or whose
length the denominator cannot produce, are masked and counted
(``unalignable``).  Priors and decoding are as for MMI: the model dir keeps the
alignments' priors (``use_priors: true``) and is decoded as a hybrid model.
"""

from __future__ import annotations

import logging

import k2
import torch

from asr.lang.k2fsa import dense_fsa_vec
from asr.lang.lang_dir import LangDir
from asr.training.config import ALIGNMENT_BEAM, SmbrOptions
from asr.training.criteria import LossOutput
from asr.training.data import Batch
from asr.training.lfmmi import (
    _MmiBase,
    compose_denominator,
    fit_alignments,
    options_from_mapping,
    phone_lm_fsa,
    phones_from_alignments,
    phones_from_transcripts,
)
from asr.training.registry import CriterionContext

log = logging.getLogger("asr.training.smbr")

#: Attribute name of the lattice arcs' row in the dense scores.
SEQFRAME = "seqframe_idx"


def accuracy_classes(lang: LangDir, accuracy: str) -> torch.Tensor:
    """The class of each pdf id for frame accuracy: (num_pdfs + 1,) int64, index 0 unused.

    ``phone``: the pdf's phone id; ``pdf``: the pdf id itself; ``auto``:
    ``pdf`` for a lang with a tree, else ``phone``.

    Raises:
      LexiconError: ``phone`` on a lang with a tree (its leaves name no phone).
    """
    if accuracy == "auto":
        accuracy = "pdf" if lang.context is not None else "phone"
    if accuracy == "phone":
        return lang.pdf_to_phone().to(torch.int64)
    return torch.arange(lang.num_pdfs + 1, dtype=torch.int64)


def reference_rows(refs: list[torch.Tensor | None], lengths: torch.Tensor) -> torch.Tensor:
    """The reference class of every row of the dense scores, flat: (sum_i (T_i + 1),) int64.

    Utterance ``i`` holds ``lengths[i]`` rows, its reference's classes, then
    the row its final arc consumes; that row, and every row of an utterance
    without a reference (None), get -1, which matches no class.
    """
    parts = []
    for ref, n in zip(refs, lengths.tolist()):
        rows = torch.full((n + 1,), -1, dtype=torch.int64)
        if ref is not None:
            rows[:n] = ref[:n]
        parts.append(rows)
    return torch.cat(parts)


def arc_accuracies(lattice: k2.Fsa, classes: torch.Tensor, ref_rows: torch.Tensor) -> torch.Tensor:
    """``acc`` of each lattice arc (float64, (num_arcs,)): 1 where its pdf's class is the reference's.

    ``lattice`` carries :data:`SEQFRAME`; final arcs (label -1) get 0.
    """
    labels = lattice.labels.to(torch.int64)
    rows = getattr(lattice, SEQFRAME).to(torch.int64)
    real = labels > 0
    acc = torch.zeros(labels.shape[0], dtype=torch.float64)
    acc[real] = (classes[labels[real]] == ref_rows[rows[real]]).to(torch.float64)
    return acc


def expected_accuracy(lattice: k2.Fsa, arc_acc: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """Per-utterance ``E[A] = sum_arcs exp(log posterior) * acc``: (N,) float64, differentiable.

    Arcs of utterances not in ``ok`` (N,) bool are left out before the
    exponential, so a lattice without a finite total gives no NaN gradient.
    """
    shape = lattice.arcs.shape()
    fsa_of_arc = shape.row_ids(1).to(torch.int64)[shape.row_ids(2).to(torch.int64)]
    post = lattice.get_arc_post(use_double_scores=True, log_semiring=True)
    keep = ok[fsa_of_arc] & (arc_acc > 0)
    out = torch.zeros(ok.shape[0], dtype=torch.float64)
    return out.index_add(0, fsa_of_arc[keep], post[keep].exp() * arc_acc[keep])


class SmbrCriterion(_MmiBase):
    """Lattice-free sMBR fine-tuning on alignments (see the module doc).

    Config keys: the denominator's (``den_order``, ``den_max_histories``,
    ``leaky_hmm_coefficient``, ``den_output_beam``, ``den_pruned`` ...),
    ``acoustic_scale``, ``accuracy``, ``ce_weight``, ``l2_weight``.
    ``log_priors`` (if given) are subtracted from the output first.
    """

    options_type = SmbrOptions

    def __init__(self, lang: LangDir, den_graph: k2.Fsa, cfg: dict | SmbrOptions,
                 log_priors: torch.Tensor | None = None, output_beam: float = ALIGNMENT_BEAM):
        super().__init__(den_graph, cfg, output_beam)
        self.acoustic_scale = float(self.options.acoustic_scale)
        self.classes = accuracy_classes(lang, self.options.accuracy)
        self.log_priors = log_priors

    def alignments(self, out_lengths: torch.Tensor, batch: Batch) -> list[torch.Tensor | None]:
        """Each utterance's alignment at the output length (None where it cannot be fitted)."""
        assert batch.alignments is not None, "sMBR training needs alignments"
        return fit_alignments(batch.alignments, out_lengths)

    def lattice(self, scores: torch.Tensor, lengths: torch.Tensor) -> k2.Fsa:
        """The denominator lattice of (N, T, S) scores, with :data:`SEQFRAME` on its arcs."""
        dense, _ = dense_fsa_vec(scores, lengths)
        den_fsas = self._den_fsas(scores.shape[0])
        if self.den_pruned:
            return k2.intersect_dense_pruned(den_fsas, dense, self.search_beam, self.den_beam, self.min_active,
                                             self.max_active, seqframe_idx_name=SEQFRAME)
        return k2.intersect_dense(den_fsas, dense, output_beam=self.den_beam, seqframe_idx_name=SEQFRAME)

    def objective(self, scores: torch.Tensor, lengths: torch.Tensor,
                  alis: list[torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(E[A], den, ok)``: (N,) float64 expected accuracies (differentiable), log totals, kept utterances.

        ``scores``: (N, T, S) acoustic scores at the training scale, sorted by
        decreasing ``lengths``; ``alis``: reference pdf sequences (None: masked).
        """
        lattice = self.lattice(scores, lengths)
        den = lattice.get_tot_scores(log_semiring=True, use_double_scores=True).detach()
        has_ref = torch.tensor([a is not None for a in alis], dtype=torch.bool)
        ok = has_ref & torch.isfinite(den)
        refs = [self.classes[a] if a is not None else None for a in alis]
        acc = arc_accuracies(lattice, self.classes, reference_rows(refs, lengths.cpu()))
        return expected_accuracy(lattice, acc, ok), den, ok

    def __call__(self, log_probs: torch.Tensor, out_lengths: torch.Tensor, batch: Batch) -> LossOutput:
        alis = self.alignments(out_lengths, batch)
        return self.loss(log_probs, out_lengths, alis)

    def loss(self, log_probs: torch.Tensor, out_lengths: torch.Tensor,
             alis: list[torch.Tensor | None]) -> LossOutput:
        """``-sum_utts E[A]`` over the kept utterances, plus the regularisers on ``log_probs``.

        ``log_probs``: (N, T, S) network output (column ``i`` is pdf ``i + 1``).
        """
        scores = log_probs
        if self.log_priors is not None:
            scores = scores - self.log_priors.to(log_probs.device)
        exp_acc, den, ok = self.objective(self.acoustic_scale * scores, out_lengths, alis)
        loss = -exp_acc[ok].sum().to(log_probs.dtype).to(log_probs.device)
        mask = (torch.arange(log_probs.shape[1])[None, :] < out_lengths.cpu()[:, None]) & ok[:, None]
        mask = mask.to(log_probs.device)
        if self.ce_weight > 0:
            loss = loss - self.ce_weight * self._alignment_log_likelihood(log_probs, alis, ok)
        if self.l2_weight > 0:
            loss = loss + 0.5 * self.l2_weight * (log_probs**2)[mask].sum()
        stats = {
            "expected_acc": float(exp_acc[ok].detach().sum()),
            "den": float(den[ok].sum()),
            "unalignable": float((~ok).sum()),
        }
        return LossOutput(loss, int(out_lengths.cpu()[ok].sum()), stats)

    @staticmethod
    def _alignment_log_likelihood(log_probs: torch.Tensor, alis: list[torch.Tensor | None],
                                  ok: torch.Tensor) -> torch.Tensor:
        """``sum_i sum_t log y_i(t, ali_i(t))`` over the kept utterances (the CE regulariser's negative)."""
        total = log_probs.new_zeros(())
        for i, ali in enumerate(alis):
            if ali is not None and bool(ok[i]):
                cols = (ali.to(torch.int64) - 1).to(log_probs.device)
                total = total + log_probs[i, : len(ali)].gather(1, cols[:, None]).sum()
        return total


def smbr_denominator(lang: LangDir, utts: list, opts: SmbrOptions) -> k2.Fsa:
    """H o phone LM, the LM from the utterances' alignments (transcripts for a lang with a tree, as MMI)."""
    if all(u.alignment is not None for u in utts) and lang.context is None:
        seqs = phones_from_alignments(lang, (u.alignment for u in utts))
    else:
        seqs = phones_from_transcripts(lang, (u.words for u in utts))
    P = phone_lm_fsa(lang, seqs, opts.den_order, opts.den_max_histories)
    return compose_denominator(lang, P, float(opts.leaky_hmm_coefficient), opts.den_order)


def make_smbr_criterion(cfg: dict | SmbrOptions, lang: LangDir, utts: list, log_priors: torch.Tensor | None = None,
                        output_beam: float = ALIGNMENT_BEAM) -> SmbrCriterion:
    """sMBR from its options (or a mapping with their keys) and the training utterances."""
    opts, output_beam = options_from_mapping(cfg, SmbrOptions) if isinstance(cfg, dict) else (cfg, output_beam)
    return SmbrCriterion(lang, smbr_denominator(lang, utts, opts), opts, log_priors, output_beam)


def build_smbr(ctx: CriterionContext) -> SmbrCriterion:
    """The ``smbr`` registry factory: trains on ``log y - log prior`` with ``use_priors`` (as MMI)."""
    from asr.models.priors import estimate_log_priors

    priors = None
    if ctx.config.use_priors:
        priors = estimate_log_priors((u.alignment for u in ctx.utts), ctx.lang.num_pdfs)
    return make_smbr_criterion(ctx.options, ctx.lang, ctx.train_utts, priors, ctx.config.output_beam)
