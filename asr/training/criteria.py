"""Training criteria: flat-start maximum likelihood and frame cross-entropy.

A criterion takes the model output for a batch and returns the summed loss,
the number of frames it covers and scalars to log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from asr.lang.lang_dir import LangDir
from asr.training.alignment import graph_log_likelihood
from asr.training.augment import perturb_alignment
from asr.training.data import Batch
from asr.training.graphs import NumeratorGraphCompiler
from asr.training.registry import CriterionContext


@dataclass
class LossOutput:
    loss: torch.Tensor  # summed over frames of the utterances kept
    frames: int
    stats: dict[str, float] = field(default_factory=dict)


class FlatStartCriterion:
    """Negative log-likelihood of the transcript over all its HMM state paths.

    The forward-backward runs in k2 (``intersect_dense`` + total scores).
    Utterances too short for their transcript (score -inf) are dropped from
    the batch and counted.

    Maximising the likelihood of *posteriors* has a degenerate optimum: the
    silence states explain almost every frame and each phone holds only its
    minimum number of frames (like CTC's peaky blank).  So the scores are
    prior-normalised, ``log P(s|x) - prior_scale * log P(s)``, with P(s) a
    running average of the network's own posteriors (not differentiated):
    the hybrid likelihood that decoding uses, which makes labelling speech
    frames as silence costly.  The scale ramps up from 0 over
    ``prior_warmup_steps``: the un-normalised start finds each word's
    position, the normalised end gives it its full extent (starting with
    the full scale can instead let a word swallow the leading silence).
    """

    def __init__(
        self,
        lang: LangDir,
        output_beam: float,
        prior_scale: float = 1.0,
        prior_decay: float = 0.9,
        prior_warmup_steps: int = 0,
    ):
        self.compiler = NumeratorGraphCompiler(lang)
        self.prior_warmup_steps = prior_warmup_steps
        self.train_steps = 0
        self.output_beam = output_beam
        self.oov_count = 0
        self.prior_scale = prior_scale
        self.prior_decay = prior_decay
        self.log_prior: torch.Tensor | None = None

    def state_dict(self) -> dict:
        """The running prior and step count; checkpoints keep them so that resume is exact."""
        return {"train_steps": self.train_steps, "log_prior": self.log_prior}

    def load_state_dict(self, state: dict) -> None:
        self.train_steps = int(state["train_steps"])
        self.log_prior = state["log_prior"]

    def _update_prior(self, log_probs: torch.Tensor, out_lengths: torch.Tensor) -> None:
        with torch.no_grad():
            mask = torch.arange(log_probs.shape[1])[None, :] < out_lengths[:, None]
            post = log_probs.detach().cpu().exp()[mask].mean(0)
            if self.log_prior is None:
                prior = post
            else:
                prior = self.prior_decay * self.log_prior.exp() + (1 - self.prior_decay) * post
            self.log_prior = prior.clamp_min(1e-8).log()

    def __call__(self, log_probs: torch.Tensor, out_lengths: torch.Tensor, batch: Batch) -> LossOutput:
        word_ids, oov = self.compiler.batch_word_ids(batch.words)
        self.oov_count += oov
        graphs = self.compiler.compile(word_ids)
        scores = log_probs
        if self.prior_scale > 0:
            if log_probs.requires_grad:
                self._update_prior(log_probs, out_lengths)
                self.train_steps += 1
            ramp = min(1.0, self.train_steps / self.prior_warmup_steps) if self.prior_warmup_steps else 1.0
            if self.log_prior is not None:
                scores = log_probs - ramp * self.prior_scale * self.log_prior.to(log_probs.device)
        tot = graph_log_likelihood(scores, out_lengths, graphs, self.output_beam)
        ok = torch.isfinite(tot)
        frames = int(out_lengths[ok.to(out_lengths.device)].sum())
        loss = -(tot[ok].sum()).to(log_probs.dtype)
        return LossOutput(loss, frames, {"unalignable": float((~ok).sum())})


class CrossEntropyCriterion:
    """Frame cross-entropy against forced alignments, with label smoothing.

    Alignments made at another frame rate (for example by a flat-start model
    with different subsampling) are stretched to the output length.
    """

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = label_smoothing

    def targets(self, out_lengths: torch.Tensor, batch: Batch, max_len: int) -> torch.Tensor:
        assert batch.alignments is not None, "cross-entropy training needs alignments"
        targets = torch.full((len(batch.alignments), max_len), -100, dtype=torch.int64)
        for i, ali in enumerate(batch.alignments):
            n = int(out_lengths[i])
            if len(ali) != n:
                try:
                    ali = perturb_alignment(ali, n)
                except ValueError:
                    continue  # too few frames for its states: the utterance is ignored
            targets[i, :n] = ali - 1  # pdf id i+1 is column i
        return targets

    def __call__(self, log_probs: torch.Tensor, out_lengths: torch.Tensor, batch: Batch) -> LossOutput:
        targets = self.targets(out_lengths, batch, log_probs.shape[1]).to(log_probs.device)
        flat = log_probs.reshape(-1, log_probs.shape[-1])
        loss = F.cross_entropy(
            flat, targets.reshape(-1), ignore_index=-100, label_smoothing=self.label_smoothing, reduction="sum"
        )
        valid = targets.reshape(-1) >= 0
        correct = (flat.argmax(-1) == targets.reshape(-1))[valid].sum()
        return LossOutput(loss, int(valid.sum()), {"correct": float(correct)})


def build_flat_start(ctx: CriterionContext) -> FlatStartCriterion:
    """The ``flat-start`` registry factory."""
    o = ctx.options
    return FlatStartCriterion(ctx.lang, ctx.config.output_beam, o.prior_scale, o.prior_decay, o.prior_warmup_steps)


def build_cross_entropy(ctx: CriterionContext) -> CrossEntropyCriterion:
    """The ``ce`` registry factory."""
    return CrossEntropyCriterion(ctx.options.label_smoothing)
