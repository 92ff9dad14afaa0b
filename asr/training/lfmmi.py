"""Sequence-level training: LF-MMI (lattice-free MMI) and MMI in k2.

Both criteria maximise the MMI objective ``log p(num) - log p(den)``: the
total score of the utterance's numerator graph minus that of a denominator
graph holding every competing hypothesis, each computed exactly (log
semiring forward over the dense network output) by ``k2.intersect_dense``.
Its gradient with respect to the network output is the numerator minus the
denominator state occupancy, frame by frame.

Denominator (:func:`build_denominator_graph`)
  A phone n-gram LM ``P`` (default order 3) is estimated from training phone
  sequences and built **directly as an epsilon-free acceptor**: one state per
  kept history, from each state one arc per phone with the exact back-off
  probability ``P(phone | history)`` (:func:`asr.lang.lm.ngram_logprob`), to
  the longest kept suffix of the new history, plus a final arc with
  ``P(</s> | history)``.  No ``#0`` back-off arcs are needed, so ``P`` composes
  with H as is: ``den = connect(compose(H, P, inner_labels="phones"))``.  Its
  size is controlled by ``order`` and ``max_histories`` (only the most frequent
  top-order histories get their own state; the others back off, which keeps
  a properly normalised, slightly smoother LM).  Phone sequences come from
  (a) alignments (``phones_from_alignments``: phone starts are read off the
  pdf sequence), used when training with ``--ali-dir``, or (b) transcripts
  (``phones_from_transcripts``: each word's first pronunciation, OOVs as
  ``<UNK>``, with the optional-silence phone at the start and the end of every
  utterance and none between words), used by flat-start (E2E) LF-MMI.

Leaky HMM (``leaky_hmm_coefficient``, 0 disables)
  Kaldi lets the denominator HMM jump, between any two frames, from any state
  to the initial distribution with a small probability.  k2's dense
  intersection has no epsilon arcs (every arc consumes a frame), so the jump
  is folded into the arcs: every state other than the start state gets, for
  each arc leaving the start state, a copy with score ``+ log(c)``; its own
  arcs keep their scores (Kaldi adds the leak without renormalising too, so
  every numerator path still scores at most as in the denominator).  The leak
  target is the start state's distribution (the phone LM's ``<s>`` context),
  not Kaldi's stationary one.  It costs ``(states - 1) x out-degree(start)``
  extra arcs, about doubling the graph.

Numerator
  LF-MMI: the transcript graphs of :class:`NumeratorGraphCompiler` (all
  alignments, optional silence from L), intersected at the phone level with
  the same phone LM ``P`` (as Kaldi composes the numerator with the
  normalization FST; ``num_phone_lm: false`` leaves it out).  Every numerator
  path then scores at most its denominator counterpart (L's silence
  probabilities are <= 1), so the loss is >= 0; without ``P`` the network can
  game the objective by placing silences the LM dislikes.  Not constrained to
  an alignment window.  MMI: a linear FSA over the alignment's pdfs (one path).

Regularisation (both criteria)
  ``ce_weight``: ``- ce_weight * sum_t sum_s gamma_num(t, s) log y(t, s)``,
  cross-entropy of the output against the numerator occupancy (the one-hot
  alignment for MMI); Kaldi uses a separate xent output layer, here it is the
  same output.  ``l2_weight``: ``0.5 * l2_weight * sum y^2`` on the output,
  as Kaldi's ``--chain.l2-regularize``.

Outputs and priors
  Our models end in ``log_softmax``; LF-MMI would rather have an unnormalised
  output, but the normalisation is a per-frame constant that the MMI ratio
  cancels (numerator and denominator consume the same frames), so it only
  restricts the function class slightly.  LF-MMI outputs are pseudo
  log-likelihoods: the model dir records ``use_priors: false`` (no priors.pt).
  MMI fine-tuning of a CE model keeps the hybrid convention: with
  ``use_priors: true`` (default) it trains ``log y - log prior`` and the model
  dir keeps the priors.

Flat start (E2E LF-MMI) and decoding
  From scratch nothing but the numerator ties pdfs to frames, and MMI is
  content with any pdf sequence that identifies the transcript, however
  unlike the audio (a word swallowing a silence, repeated words merged into
  one with one-frame "entries" for the others); such solutions do not
  generalise.  What keeps training on acoustically sensible alignments:
  (a) an output layer that starts at zero (model ``output_init: zero``, as
  Kaldi's ``output-layer``), so the first numerator occupancies come from the
  graph alone, not from the random output layer's per-frame preferences;
  (b) a topology whose states fit the phones: the one-state chain topology
  (asr/conf/lang_chain.yaml) is meant for phones of a few 30 ms frames; with
  whole-word "phones" (yesno) the end of a word and the start of the same
  word repeated share the self-loop pdf, and repeated words get deleted.
  LF-MMI outputs are trained against graph scores at scale 1: decode them at
  acoustic scale 1, as Kaldi decodes chain models (conf/yesno/decode_lfmmi.yaml).

Boosted MMI (``boost``, MMI only, 0 disables)
  Lattice-free, frame-level: every denominator arc at frame ``t`` whose pdf's
  phone differs from the alignment's phone at ``t`` gets ``+boost``; since each
  arc consumes exactly one frame this is a constant added to the dense
  denominator scores.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import k2
import torch

from asr.config import parse_config
from asr.errors import ConfigError
from asr.lang.fsa_io import arcs_to_fsa
from asr.lang.k2fsa import dense_fsa_vec
from asr.lang.lang_dir import UNK, LangDir
from asr.lang.lm import BOS, EOS, estimate_ngram, ngram_logprob
from asr.training.augment import perturb_alignment
from asr.training.criteria import LossOutput
from asr.training.data import Batch
from asr.training.config import ALIGNMENT_BEAM, LfMmiOptions, MmiOptions, SequenceOptions, field_names
from asr.training.graphs import NumeratorGraphCompiler
from asr.training.registry import CriterionContext

log = logging.getLogger("asr.training.lfmmi")

LN10 = math.log(10.0)


# ---------------------------------------------------------------------------
# Phone sequences


def phones_from_transcripts(lang: LangDir, transcripts: Iterable[list[str]], boundary_silence: bool = True) -> list[list[str]]:
    """Phone sequences of transcripts: first pronunciation of each word.

    OOV words use ``<UNK>``'s pronunciation.  With ``boundary_silence`` the
    optional-silence phone starts and ends every utterance (none between words).
    """
    prons: dict[str, list[str]] = {}
    for word, pron in lang.lexicon:
        prons.setdefault(word, list(pron))
    sil = [lang.optional_silence] if boundary_silence else []
    out = []
    for words in transcripts:
        seq = list(sil)
        for w in words:
            seq += prons.get(w, prons.get(UNK, []))
        out.append(seq + sil)
    return out


def phones_from_alignments(lang: LangDir, alignments: Iterable[torch.Tensor]) -> list[list[str]]:
    """Phone sequences read off pdf alignments.

    A phone starts where the pdf's phone changes, or where the pdf is the
    entry pdf of the phone's first state and differs from the previous frame's
    pdf or from that state's self-loop pdf.  (A repeated one-state phone whose
    entry and self-loop pdf are the same, like silence in the chain lang, is
    read as one phone.)
    """
    table = lang.pdf_table
    pdf2phone = lang.pdf_to_phone().tolist()
    first_enter = {}
    for j, topo in enumerate(table.topologies):
        st = topo.states[0]
        first_enter[table.pdf_id(j, st.enter)] = st.enter != st.loop
    out = []
    for ali in alignments:
        seq: list[str] = []
        prev = -1
        for p in ali.tolist():
            if p <= 0 or p >= len(pdf2phone):
                raise ValueError(f"pdf id {p} out of range 1..{len(pdf2phone) - 1}")
            new = prev < 0 or pdf2phone[p] != pdf2phone[prev]
            if not new and p in first_enter:
                new = first_enter[p] or p != prev
            if new:
                seq.append(lang.phones.get(pdf2phone[p]))
            prev = p
        out.append(seq)
    return out


# ---------------------------------------------------------------------------
# Phone LM and denominator graph


def phone_lm_fsa(
    lang: LangDir,
    sentences: list[list[str]],
    order: int = 3,
    max_histories: int | None = None,
    method: str = "witten-bell",
) -> k2.Fsa:
    """An epsilon-free phone n-gram acceptor (labels = phone ids, log-prob scores).

    States are the LM histories (``<s>``-initial ones included); the
    ``max_histories`` most frequent histories of length ``order - 1`` keep a
    state (all shorter ones always do).  Every state has an arc for every phone
    and a final arc, so the LM accepts every phone sequence.
    """
    if order < 1:
        raise ConfigError(f"phone LM order must be >= 1, got {order}")
    vocab = list(lang.hmm_phones)
    lm = estimate_ngram(sentences, vocab, order, method)
    counts: Counter = Counter()
    for s in sentences:
        ext = [BOS, *s]
        for i in range(len(ext)):
            for n in range(1, order):
                if i + 1 >= n:
                    counts[tuple(ext[i + 1 - n : i + 1])] += 1
    hist_len = order - 1
    kept: set[tuple[str, ...]] = {()}
    if hist_len > 0:
        for h in counts:
            if len(h) < hist_len:
                kept.add(h)
        top = sorted((h for h in counts if len(h) == hist_len), key=lambda h: (-counts[h], h))
        if max_histories is not None:
            top = top[: int(max_histories)]
        kept.update(top)
    start: tuple[str, ...] = (BOS,) if hist_len > 0 else ()
    kept.add(start)

    def state_of(h: tuple[str, ...]) -> tuple[str, ...]:
        h = h[max(0, len(h) - hist_len) :] if hist_len > 0 else ()
        while h not in kept:
            h = h[1:]
        return h

    ids: dict[tuple[str, ...], int] = {start: 0}
    queue = [start]
    arcs: list[tuple[int, int, int, float]] = []
    final_arcs: list[tuple[int, float]] = []
    while queue:
        h = queue.pop()
        src = ids[h]
        for p in vocab:
            nxt = state_of(h + (p,))
            if nxt not in ids:
                ids[nxt] = len(ids)
                queue.append(nxt)
            arcs.append((src, ids[nxt], lang.phones[p], ngram_logprob(lm, p, h) * LN10))
        final_arcs.append((src, ngram_logprob(lm, EOS, h) * LN10))
    final = len(ids)
    arcs += [(s, final, -1, w) for s, w in final_arcs]
    arcs.sort(key=lambda a: (a[0], a[2]))
    return k2.arc_sort(arcs_to_fsa(arcs))


def _arc_list(fsa: k2.Fsa) -> list[tuple[int, int, int, float]]:
    a = fsa.arcs.values()[:, :3].tolist()
    s = fsa.scores.detach().tolist()
    return [(x[0], x[1], x[2], w) for x, w in zip(a, s)]


def add_leaky_arcs(den: k2.Fsa, coefficient: float) -> k2.Fsa:
    """The leaky HMM folded into the arcs (see the module doc); 0 returns ``den``."""
    if coefficient <= 0:
        return den
    if coefficient >= 1:
        raise ConfigError(f"leaky_hmm_coefficient must be in [0, 1), got {coefficient}")
    arcs = _arc_list(den)
    leak = math.log(coefficient)
    start_arcs = [a for a in arcs if a[0] == 0 and a[2] != -1]
    out = list(arcs)
    states = sorted({a[0] for a in arcs})
    for s in states:
        if s != 0:
            out += [(s, d, l, w + leak) for _, d, l, w in start_arcs]
    out.sort(key=lambda a: (a[0], a[2]))
    return k2.arc_sort(arcs_to_fsa(out))


def build_denominator_graph(
    lang: LangDir,
    phone_sequences: list[list[str]],
    order: int = 3,
    max_histories: int | None = None,
    leaky_hmm_coefficient: float = 0.0,
) -> k2.Fsa:
    """The LF-MMI denominator: H composed with a phone n-gram LM.

    Args:
      lang: The lang dir (H, phones).
      phone_sequences: Training phone sequences (see :func:`phones_from_transcripts`,
        :func:`phones_from_alignments`).
      order: Phone LM order.
      max_histories: Cap on the top-order histories with their own state.
      leaky_hmm_coefficient: Leak probability (0 disables).

    Returns:
      An epsilon-free acceptor over pdf ids (connected, arc-sorted), no aux labels.
    """
    P = phone_lm_fsa(lang, phone_sequences, order, max_histories)
    return compose_denominator(lang, P, leaky_hmm_coefficient, order)


def compose_denominator(lang: LangDir, P: k2.Fsa, leaky_hmm_coefficient: float = 0.0, order: int = 0) -> k2.Fsa:
    """H o P (P from :func:`phone_lm_fsa`), epsilon-free over pdf ids, plus the leaky arcs.

    For a lang with a tree it is H o C o P, through the tree's context.
    """
    if lang.context is not None:
        den = lang.compose_h(P)
    else:
        H = k2.arc_sort(lang.load_graph("H"))
        den = k2.connect(k2.compose(H, P, treat_epsilons_specially=True))
    den = k2.arc_sort(arcs_to_fsa(_arc_list(den)))  # drop aux labels and attributes
    den = add_leaky_arcs(den, leaky_hmm_coefficient)
    log.info(
        "LF-MMI denominator: phone %d-gram %d states, %d arcs; den graph %d states, %d arcs (leaky %g)",
        order, P.shape[0], P.num_arcs, den.shape[0], den.num_arcs, leaky_hmm_coefficient,
    )
    return den


def den_graph_from_hlg(path: str | Path) -> k2.Fsa:
    """A word-level denominator: HLG's pdf labels and graph scores, without word labels."""
    from asr.lang.fsa_io import load_fsa

    hlg = load_fsa(path)
    return k2.arc_sort(arcs_to_fsa(_arc_list(hlg)))


# ---------------------------------------------------------------------------
# Criteria


def options_from_mapping(cfg: dict, options_type: type) -> tuple[SequenceOptions, float]:
    """A sequence criterion's options and ``output_beam`` from a mapping (e.g. a whole training config).

    Keys of other parts of a training config are left to :func:`asr.training.registry.parse_train_config`.
    """
    own = {k: v for k, v in cfg.items() if k in field_names(options_type)}
    where = "sequence criterion config"
    beam = cfg.get("output_beam", ALIGNMENT_BEAM)
    if not isinstance(beam, (int, float)) or isinstance(beam, bool):
        raise ConfigError(f"{where}: 'output_beam' must be float, got {beam!r}")
    return parse_config(options_type, own, where), beam


class _MmiBase:
    """Shared MMI objective over a numerator FsaVec and one denominator FSA."""

    options_type: type = SequenceOptions

    def __init__(self, den_graph: k2.Fsa, cfg: dict | SequenceOptions, output_beam: float = ALIGNMENT_BEAM):
        """``cfg``: the criterion's options, or a mapping with their keys (and ``output_beam``)."""
        if isinstance(cfg, dict):
            cfg, output_beam = options_from_mapping(cfg, self.options_type)
        self.den = k2.arc_sort(den_graph)
        self.num_beam = float(output_beam)
        self.den_beam = float(cfg.den_output_beam if cfg.den_output_beam is not None else self.num_beam)
        self.den_pruned = cfg.den_pruned
        self.search_beam = float(cfg.den_search_beam)
        self.min_active = cfg.den_min_active_states
        self.max_active = cfg.den_max_active_states
        self.ce_weight = float(cfg.ce_weight)
        self.l2_weight = float(cfg.l2_weight)
        self.options = cfg
        self._den_vec: tuple[int, k2.Fsa] | None = None

    def _den_fsas(self, n: int) -> k2.Fsa:
        if self.den_pruned:
            return k2.create_fsa_vec([self.den])  # shared by every sequence
        if self._den_vec is None or self._den_vec[0] != n:
            self._den_vec = (n, k2.create_fsa_vec([self.den] * n))
        return self._den_vec[1]

    def objective(
        self,
        log_probs: torch.Tensor,
        lengths: torch.Tensor,
        num_graphs: k2.Fsa,
        den_extra: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-utterance numerator and denominator log scores.

        Args:
          log_probs: (N, T, S) scores, sorted by decreasing ``lengths``.
          lengths: (N,) valid frames.
          num_graphs: N numerator graphs.
          den_extra: (N, T, S) constant added to the denominator's scores (boosting).

        Returns:
          ``(num, den, gamma, ok)``: num and den (N,) float64 totals, whose
          autograd gradients are the state occupancies; ``gamma`` (N, T, S) the
          detached numerator occupancy; ``ok`` the utterances with finite scores.
        """
        # The numerator occupancy (for the CE regulariser) is its gradient, so
        # the numerator runs on a detached leaf and is re-attached linearly.
        with torch.enable_grad():
            leaf = log_probs.detach().requires_grad_(True)
            dense, _ = dense_fsa_vec(leaf, lengths)
            num_lat = k2.intersect_dense(num_graphs, dense, output_beam=self.num_beam)
            num_tot = num_lat.get_tot_scores(log_semiring=True, use_double_scores=True)
            num_ok = torch.isfinite(num_tot)
            if bool(num_ok.any()):
                (gamma,) = torch.autograd.grad(num_tot[num_ok].sum(), leaf)
            else:
                gamma = torch.zeros_like(leaf)
        gamma = gamma.detach()
        num = num_tot.detach() + ((log_probs - log_probs.detach()) * gamma).sum(dim=(1, 2)).to(num_tot.dtype)
        den_scores = log_probs if den_extra is None else log_probs + den_extra.to(log_probs.device)
        dense, _ = dense_fsa_vec(den_scores, lengths)
        den_fsas = self._den_fsas(log_probs.shape[0])
        if self.den_pruned:
            den_lat = k2.intersect_dense_pruned(
                den_fsas, dense, self.search_beam, self.den_beam, self.min_active, self.max_active
            )
        else:
            den_lat = k2.intersect_dense(den_fsas, dense, output_beam=self.den_beam)
        den = den_lat.get_tot_scores(log_semiring=True, use_double_scores=True)
        ok = num_ok & torch.isfinite(den)
        return num, den, gamma, ok

    def loss(
        self,
        log_probs: torch.Tensor,
        out_lengths: torch.Tensor,
        num_graphs: k2.Fsa,
        den_extra: torch.Tensor | None = None,
        output: torch.Tensor | None = None,
    ) -> LossOutput:
        """``-(num - den)`` summed over the kept utterances, plus the regularisers.

        ``output`` is the network output the regularisers act on (default
        ``log_probs``; MMI passes the output before prior subtraction).
        """
        output = log_probs if output is None else output
        num, den, gamma, ok = self.objective(log_probs, out_lengths, num_graphs, den_extra)
        okd = ok.to(log_probs.device)
        loss = -(num[ok] - den[ok]).sum().to(log_probs.dtype)
        mask = (torch.arange(log_probs.shape[1])[None, :] < out_lengths[:, None]).to(log_probs.device) & okd[:, None]
        if self.ce_weight > 0:
            loss = loss - self.ce_weight * (gamma.to(output.device) * output)[mask].sum()
        if self.l2_weight > 0:
            loss = loss + 0.5 * self.l2_weight * (output**2)[mask].sum()
        frames = int(out_lengths[ok].sum())
        stats = {
            "num": float(num[ok].detach().sum()),
            "den": float(den[ok].detach().sum()),
            "unalignable": float((~ok).sum()),
        }
        return LossOutput(loss, frames, stats)


class LfMmiCriterion(_MmiBase):
    """Lattice-free MMI against a phone-LM denominator (flat start = E2E LF-MMI).

    Config keys: ``output_beam`` (numerator lattice beam), ``den_output_beam``,
    ``den_pruned`` (+ ``den_search_beam``, ``den_min_active_states``,
    ``den_max_active_states``), ``ce_weight``, ``l2_weight``.
    """

    options_type = LfMmiOptions

    def __init__(self, lang: LangDir, den_graph: k2.Fsa, cfg: dict | LfMmiOptions, phone_lm: k2.Fsa | None = None,
                 output_beam: float = ALIGNMENT_BEAM):
        super().__init__(den_graph, cfg, output_beam)
        self.compiler = NumeratorGraphCompiler(lang)
        self.oov_count = 0
        # With the phone LM, numerator paths carry the denominator's LM scores
        # too (as Kaldi composes the numerator with the normalization FST), so
        # num <= den path by path and the loss stays >= 0.
        self.phone_lm = k2.arc_sort(k2.add_epsilon_self_loops(phone_lm)) if phone_lm is not None else None

    def compile(self, word_ids: list[list[int]]) -> k2.Fsa:
        """Numerator graphs: H o (transcript phone graph [intersected with the phone LM])."""
        if self.phone_lm is None:
            return self.compiler.compile(word_ids)
        phone_fsa = self.compiler.phone_graphs(word_ids)
        phone_fsa = k2.arc_sort(k2.connect(k2.intersect(self.phone_lm, phone_fsa, treat_epsilons_specially=False)))
        num = k2.compose(self.compiler.H, phone_fsa, treat_epsilons_specially=False, inner_labels="phones")
        return k2.arc_sort(k2.connect(num))

    def __call__(self, log_probs: torch.Tensor, out_lengths: torch.Tensor, batch: Batch) -> LossOutput:
        word_ids, oov = self.compiler.batch_word_ids(batch.words)
        self.oov_count += oov
        return self.loss(log_probs, out_lengths, self.compile(word_ids))


class MmiCriterion(_MmiBase):
    """MMI fine-tuning on alignments: linear numerator, phone-LM or HLG denominator.

    Config keys as :class:`LfMmiCriterion`, plus ``boost`` (frame-level boosted
    MMI margin) and ``acoustic_scale`` (scales the acoustic scores before both
    graphs; mainly for an HLG denominator).  ``log_priors`` (if given) are
    subtracted from the output first (hybrid pseudo-likelihoods).
    """

    options_type = MmiOptions

    def __init__(self, lang: LangDir, den_graph: k2.Fsa, cfg: dict | MmiOptions, log_priors: torch.Tensor | None = None,
                 output_beam: float = ALIGNMENT_BEAM):
        super().__init__(den_graph, cfg, output_beam)
        self.boost = float(self.options.boost)
        self.acoustic_scale = float(self.options.acoustic_scale)
        self.log_priors = log_priors
        # Boosting compares phones; a tree lang's leaves have none of their own.
        self.pdf2phone = lang.pdf_to_phone() if self.boost > 0 else None

    def alignments(self, out_lengths: torch.Tensor, batch: Batch) -> list[torch.Tensor | None]:
        assert batch.alignments is not None, "MMI training needs alignments"
        return fit_alignments(batch.alignments, out_lengths)

    def __call__(self, log_probs: torch.Tensor, out_lengths: torch.Tensor, batch: Batch) -> LossOutput:
        alis = self.alignments(out_lengths, batch)
        # An utterance whose alignment does not fit gets an empty numerator (-inf, masked).
        num = k2.create_fsa_vec(
            [k2.linear_fsa(a.tolist()) if a is not None else k2.Fsa.from_str("0 1 -1 0\n1") for a in alis]
        )
        num = k2.arc_sort(num)
        scores = log_probs
        if self.log_priors is not None:
            scores = scores - self.log_priors.to(log_probs.device)
        scores = self.acoustic_scale * scores
        extra = None
        if self.boost > 0:
            n, t, s = log_probs.shape
            extra = torch.zeros(n, t, s)
            col_phone = self.pdf2phone[1:]  # column i is pdf i + 1
            for i, a in enumerate(alis):
                if a is not None:
                    ref = self.pdf2phone[a]
                    extra[i, : len(a)] = self.boost * (col_phone[None, :] != ref[:, None]).float()
        return self.loss(scores, out_lengths, num, extra, output=log_probs)


def fit_alignments(alignments: list[torch.Tensor], out_lengths: torch.Tensor) -> list[torch.Tensor | None]:
    """Each alignment stretched to its utterance's output length (None where it cannot be fitted)."""
    out: list[torch.Tensor | None] = []
    for ali, n in zip(alignments, out_lengths.tolist()):
        if len(ali) != n:
            try:
                ali = perturb_alignment(ali, n)
            except ValueError:
                ali = None
        out.append(ali)
    return out


def make_sequence_criterion(
    name: str,
    cfg: dict | LfMmiOptions | MmiOptions,
    lang: LangDir,
    utts: list,
    graph_dir: str | Path | None = None,
    log_priors: torch.Tensor | None = None,
    output_beam: float = ALIGNMENT_BEAM,
):
    """Builds ``lfmmi`` or ``mmi`` from its options and the training utterances.

    The phone LM comes from the utterances' alignments when they have them,
    else from their transcripts (always for a lang with a tree, whose leaves
    do not name phones: first pronunciations, silence at the edges).  ``cfg`` is the criterion's options
    (:class:`asr.training.config.LfMmiOptions` / ``MmiOptions``) or a mapping
    holding their keys and ``output_beam``.
    """
    options_type = LfMmiOptions if name == "lfmmi" else MmiOptions
    opts, output_beam = options_from_mapping(cfg, options_type) if isinstance(cfg, dict) else (cfg, output_beam)
    if name == "mmi" and opts.den == "hlg":
        if graph_dir is None:
            raise ConfigError("criterion 'mmi' with den: hlg needs --graph-dir (its HLG.pt is the denominator)")
        den = den_graph_from_hlg(Path(graph_dir) / "HLG.pt")
        log.info("MMI denominator: HLG of %s, %d states, %d arcs", graph_dir, den.shape[0], den.num_arcs)
    else:
        if all(u.alignment is not None for u in utts) and lang.context is None:
            seqs = phones_from_alignments(lang, (u.alignment for u in utts))
        else:
            seqs = phones_from_transcripts(lang, (u.words for u in utts))
        P = phone_lm_fsa(lang, seqs, opts.den_order, opts.den_max_histories)
        den = compose_denominator(lang, P, float(opts.leaky_hmm_coefficient), opts.den_order)
    if name == "lfmmi":
        return LfMmiCriterion(lang, den, opts, P if opts.num_phone_lm else None, output_beam)
    return MmiCriterion(lang, den, opts, log_priors, output_beam)


def build_lfmmi(ctx: CriterionContext) -> LfMmiCriterion:
    """The ``lfmmi`` registry factory: no priors (its outputs are pseudo log-likelihoods)."""
    return make_sequence_criterion("lfmmi", ctx.options, ctx.lang, ctx.train_utts, ctx.graph_dir, None,
                                   ctx.config.output_beam)


def build_mmi(ctx: CriterionContext) -> MmiCriterion:
    """The ``mmi`` registry factory: trains on ``log y - log prior`` with ``use_priors``."""
    from asr.models.priors import estimate_log_priors

    priors = None
    if ctx.config.use_priors:
        priors = estimate_log_priors((u.alignment for u in ctx.utts), ctx.lang.num_pdfs)
    return make_sequence_criterion("mmi", ctx.options, ctx.lang, ctx.train_utts, ctx.graph_dir, priors,
                                   ctx.config.output_beam)
