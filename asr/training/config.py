"""Typed training configs: the keys of a training YAML, their types, defaults and docs.

A training YAML is flat: the keys of :class:`TrainConfig` (every criterion)
plus the keys of its criterion's options class (:class:`FlatStartOptions`,
:class:`CrossEntropyOptions`, :class:`LfMmiOptions`, :class:`MmiOptions`,
:class:`SmbrOptions`;
the criterion registry, :mod:`asr.training.registry`, says which).
:func:`asr.training.registry.parse_train_config` checks a mapping against both: an unknown or
misspelled key, a wrong type or a bad range is a one-line ConfigError naming
the file and the key.  docs/CONFIG.md is generated from these classes.

This module imports no torch, so the CLI can list the criteria cheaply.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from asr.config import check_range, config_fields, option

#: Log-domain pruning beam of forced alignment and of the numerator/flat-start
#: lattices: wide enough to keep every path that matters on these tasks
#: (the one default of ``output_beam`` in training and in asr/conf/align.yaml).
ALIGNMENT_BEAM = 20.0
#: Padded frames per batch when aligning (asr/conf/align.yaml).
ALIGN_MAX_FRAMES = 20000


@dataclass
class OptimizerConfig:
    """The ``optimizer`` section."""

    lr: float = option(doc="peak learning rate (after warm-up)")
    name: Literal["adamw", "sgd"] = option("adamw", "optimizer")
    weight_decay: float = option(0.0, "decoupled (adamw) or L2 (sgd) weight decay")
    momentum: float = option(0.9, "sgd only: momentum")


@dataclass
class SchedulerConfig:
    """The ``scheduler`` section: linear warm-up, then a per-step decay."""

    name: Literal["constant", "cosine", "exponential"] = option("cosine", "decay after the warm-up")
    warmup_steps: int = option(0, "optimizer steps of linear warm-up from 0 to lr")
    final_lr_ratio: float = option(0.05, "cosine/exponential: learning rate at the end, as a fraction of lr")

    def check(self, where: str, prefix: str = "") -> None:
        check_range(where, f"{prefix}warmup_steps", self.warmup_steps >= 0, "a non-negative integer", self.warmup_steps)


@dataclass
class SpecAugmentConfig:
    """The ``spec_augment`` section (absent, null or empty: no SpecAugment)."""

    num_freq_masks: int = option(2, "frequency masks per utterance")
    max_freq_width: int = option(10, "widest frequency mask, in bins")
    num_time_masks: int = option(2, "time masks per utterance")
    max_time_width: int = option(20, "widest time mask, in frames")
    # caps a time mask at this fraction of the utterance so short ones survive
    max_time_ratio: float | None = option(0.2, "caps a time mask at this fraction of the utterance (null: no cap)")
    # 0.0 suits CMVN-normalized features
    mask_value: float | Literal["mean"] = option(0.0, "value of masked cells: a number, or 'mean' (the utterance mean)")

    def check(self, where: str, prefix: str = "") -> None:
        for key in ("num_freq_masks", "max_freq_width", "num_time_masks", "max_time_width"):
            value = getattr(self, key)
            check_range(where, f"{prefix}{key}", value >= 0, "a non-negative integer", value)
        r = self.max_time_ratio
        check_range(where, f"{prefix}max_time_ratio", r is None or 0.0 <= r <= 1.0, "a number in [0, 1] or null", r)


@dataclass
class TrainConfig:
    """Keys of every training config, whatever the criterion."""

    criterion: str = option(doc="training criterion, one of the criterion registry's (see below)")
    model: dict[str, Any] = option(doc="the acoustic model: 'type' and that type's keys (see Model configs)")
    optimizer: OptimizerConfig = option(doc="optimizer section")
    epochs: int = option(doc="number of epochs")
    max_frames: int = option(doc="padded input frames per batch")
    scheduler: SchedulerConfig = option(factory=SchedulerConfig, doc="learning-rate schedule section")
    grad_clip: float = option(5.0, "clip the gradient norm to this")
    spec_augment: SpecAugmentConfig | None = option(None, "SpecAugment section (null or {}: none)")
    speed_perturb: list[float] | None = option(
        None, "speed factors of extra copies of the training data (Kaldi's [0.9, 1.1]); null: none")
    valid_fraction: float = option(0.1, "fraction of the speakers held out to validate (at least one)")
    valid_seed: int = option(0, "seed choosing the held-out speakers (independent of seed)")
    seed: int = option(0, "training seed: initial weights, batch order, dropout, SpecAugment")
    threads: int | None = option(None, "torch intra-op threads (null: OMP_NUM_THREADS if set, else 1; asr/threads.py)")
    device: str = option("cpu", "cpu or cuda")
    average_last: int = option(1, "average the weights of the last N epochs' checkpoints")
    align_after: bool = option(False, "align the training data into <out>/ali after training")
    output_beam: float = option(
        ALIGNMENT_BEAM, "lattice beam of the numerator / flat-start graphs and of align_after")
    use_priors: bool = option(
        True, "estimate state priors from the alignments and keep them in the model dir (criteria that write "
        "priors; mmi also trains on log y - log prior)")
    #: The parsed criterion options (not a YAML key; set by asr.training.registry.parse_train_config).
    criterion_options: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def check(self, where: str, prefix: str = "") -> None:
        from asr.models import parse_model_config  # torch: only when a config is actually checked

        parse_model_config(self.model, where, "model.")
        for key in ("epochs", "max_frames", "average_last"):
            check_range(where, key, getattr(self, key) >= 1, "a positive integer", getattr(self, key))
        if self.threads is not None:
            check_range(where, "threads", self.threads >= 1, "a positive integer", self.threads)
        check_range(where, "valid_fraction", 0.0 <= self.valid_fraction < 1.0, "a number in [0, 1)",
                    self.valid_fraction)
        for factor in self.speed_perturb or []:
            check_range(where, "speed_perturb", factor > 0, "a list of positive speed factors", self.speed_perturb)


# ---------------------------------------------------------------------------
# Criterion options: the keys only one criterion reads.


@dataclass
class FlatStartOptions:
    """``criterion: flat-start``: maximum likelihood over the transcript's HMM state paths."""

    prior_scale: float = option(1.0, "scale of the running log prior subtracted from the outputs (0: none)")
    prior_decay: float = option(0.9, "decay of the running average of the posteriors that gives the prior")
    prior_warmup_steps: int = option(0, "steps over which the prior scale ramps up from 0 (0: full from the start)")


@dataclass
class CrossEntropyOptions:
    """``criterion: ce``: frame cross-entropy against alignments."""

    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy")


@dataclass
class SequenceOptions:
    """Keys shared by the sequence criteria (asr/training/lfmmi.py)."""

    den_order: int = option(3, "order of the phone n-gram LM in the denominator")
    den_max_histories: int | None = option(None, "top-order histories with their own LM state (null: all)")
    leaky_hmm_coefficient: float = option(0.0, "leaky-HMM probability, in [0, 1) (0: none)")
    den_output_beam: float | None = option(None, "denominator lattice beam (null: output_beam)")
    den_pruned: bool = option(False, "pruned denominator intersection (for large denominators such as HLG)")
    den_search_beam: float = option(20.0, "den_pruned: search beam")
    den_min_active_states: int = option(30, "den_pruned: fewest active states per frame")
    den_max_active_states: int = option(10000, "den_pruned: most active states per frame")
    ce_weight: float = option(0.0, "weight of CE against the numerator occupancy (Kaldi's xent regulariser)")
    l2_weight: float = option(0.0, "L2 penalty on the output (Kaldi's --chain.l2-regularize)")

    def check(self, where: str, prefix: str = "") -> None:
        check_range(where, "den_order", self.den_order >= 1, "an integer >= 1", self.den_order)
        check_range(where, "leaky_hmm_coefficient", 0.0 <= self.leaky_hmm_coefficient < 1.0, "a number in [0, 1)",
                    self.leaky_hmm_coefficient)


@dataclass
class LfMmiOptions(SequenceOptions):
    """``criterion: lfmmi``: lattice-free MMI (flat start without alignments = E2E LF-MMI)."""

    num_phone_lm: bool = option(True, "compose the numerator with the phone LM too (as Kaldi's normalization FST)")


@dataclass
class MmiOptions(SequenceOptions):
    """``criterion: mmi``: MMI fine-tuning on alignments."""

    den: Literal["phone", "hlg"] = option("phone", "denominator: H o phone LM, or the word-level HLG of --graph-dir")
    boost: float = option(0.0, "frame-level boosted-MMI margin (0: plain MMI)")
    acoustic_scale: float = option(1.0, "scale of the acoustic scores before both graphs")


@dataclass
class SmbrOptions(SequenceOptions):
    """``criterion: smbr``: state-level minimum Bayes risk fine-tuning on alignments (asr/training/smbr.py)."""

    acoustic_scale: float = option(1.0, "scale of the acoustic scores in the denominator lattice")
    accuracy: Literal["auto", "phone", "pdf"] = option(
        "auto", "frame accuracy: same phone as the alignment, or same pdf (auto: phone, pdf for a lang with a tree)")

    def check(self, where: str, prefix: str = "") -> None:
        super().check(where, prefix)
        check_range(where, "acoustic_scale", self.acoustic_scale > 0, "a number > 0", self.acoustic_scale)


def field_names(cls: type) -> list[str]:
    """The YAML keys of a config dataclass."""
    return [f.name for f, _ in config_fields(cls) if f.init]


@dataclass
class AlignConfig:
    """``asr align`` (asr/conf/align.yaml)."""

    max_frames: int = option(ALIGN_MAX_FRAMES, "padded frames per batch")
    output_beam: float = option(ALIGNMENT_BEAM, "pruning beam of the dense intersection (log domain)")
