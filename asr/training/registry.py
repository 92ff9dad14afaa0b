"""The one registry of training criteria, :data:`CRITERIA`.

A criterion declares what it needs and what it leaves:

- ``alignments``: ``none`` (never read), ``optional`` (used when ``--ali-dir``
  is given) or ``required``;
- ``writes_priors``: whether the model dir keeps state priors estimated from
  the alignments (with ``use_priors: true``); decoding then divides by them;
- ``decode_acoustic_scale``: the acoustic scale its outputs are meant to be
  decoded at (``None``: a hybrid model, tune it; the decoder warns when a
  decode config differs from a declared one), and ``decode_use_priors``.

``asr train``'s help, the training-config validation and docs/CONFIG.md
come from here.  Adding a criterion = its module (an options dataclass, in a
module without torch such as :mod:`asr.training.config`, and a
``build(ctx: CriterionContext)`` function) plus one ``register_criterion``
line below.  This module imports no torch: the factory is imported when used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from asr.registry import Registry
from asr.training.config import CrossEntropyOptions, FlatStartOptions, LfMmiOptions, MmiOptions, TrainConfig

Alignments = Literal["none", "optional", "required"]


@dataclass(frozen=True)
class Criterion:
    """A registry entry (see the module doc)."""

    name: str
    summary: str
    options: type
    alignments: Alignments
    writes_priors: bool
    decode_acoustic_scale: float | None
    decode_use_priors: bool
    factory: str  # "module:function" building the criterion from a CriterionContext

    def build(self, ctx: "CriterionContext") -> Any:
        """The criterion object for one training run."""
        module, function = self.factory.split(":")
        return getattr(importlib.import_module(module), function)(ctx)


@dataclass
class CriterionContext:
    """What a criterion factory may use."""

    config: TrainConfig
    lang: Any  # LangDir
    train_utts: list  # training utterances (speed-perturbed copies included)
    utts: list  # every loaded utterance (validation speakers included), e.g. for priors
    graph_dir: Path | None

    @property
    def options(self) -> Any:
        """The criterion's own options (``config.criterion_options``)."""
        return self.config.criterion_options


#: Training criteria by name, in registration order.
CRITERIA: Registry[Criterion] = Registry("criterion")


def register_criterion(criterion: Criterion) -> None:
    """Adds a criterion to :data:`CRITERIA`."""
    CRITERIA.register(criterion.name, criterion)


register_criterion(Criterion(
    "flat-start", "maximum likelihood over each transcript's HMM state paths, from scratch", FlatStartOptions,
    "none", False, None, False, "asr.training.criteria:build_flat_start"))
register_criterion(Criterion(
    "ce", "frame cross-entropy on alignments (asr align or align_after)", CrossEntropyOptions,
    "required", True, None, True, "asr.training.criteria:build_cross_entropy"))
register_criterion(Criterion(
    "lfmmi", "lattice-free MMI; without --ali-dir flat-start (E2E) LF-MMI; no priors, decode at scale 1",
    LfMmiOptions, "optional", False, 1.0, False, "asr.training.lfmmi:build_lfmmi"))
register_criterion(Criterion(
    "mmi", "MMI fine-tuning on alignments (phone-LM or HLG denominator)", MmiOptions,
    "required", True, None, True, "asr.training.lfmmi:build_mmi"))


def criteria_help() -> str:
    """One line per criterion, for ``asr train --help``."""
    return "; ".join(f"'{name}' ({c.summary})" for name, c in CRITERIA.items())
