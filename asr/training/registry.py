"""The one registry of training criteria, :data:`CRITERIA`.

A criterion declares what it needs and what it leaves:

- ``alignments``: ``none`` (never read), ``optional`` (used when ``--ali-dir``
  is given) or ``required``;
- ``writes_priors``: whether the model dir keeps state priors estimated from
  the alignments (with ``use_priors: true``); decoding then divides by them;
- ``decode_use_priors``: whether decoding divides by priors;
- ``decode_acoustic_scale``: the acoustic scale its outputs are meant to be
  decoded at (``None``: a hybrid model, tune it; the decoder warns when a
  decode config differs from a declared one).  It is declared in
  :data:`asr.model_dir.DECODE_ACOUSTIC_SCALES`, where decoding reads it
  without importing training.

``asr train``'s help, the training-config validation and docs/CONFIG.md
come from here.  Adding a criterion = its module (an options dataclass, in a
module without torch such as :mod:`asr.training.config`, and a
``build(ctx: CriterionContext)`` function) plus one ``register_criterion``
line below.  This module imports no torch: the factory is imported when used.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from asr.config import _closest, parse_config
from asr.errors import ConfigError
from asr.registry import Registry
from asr.training.config import (
    CrossEntropyOptions,
    FlatStartOptions,
    LfMmiOptions,
    MmiOptions,
    SmbrOptions,
    TrainConfig,
    field_names,
)

log = logging.getLogger("asr.training.registry")

Alignments = Literal["none", "optional", "required"]


@dataclass(frozen=True)
class Criterion:
    """A registry entry (see the module doc)."""

    name: str
    summary: str
    options: type
    alignments: Alignments
    writes_priors: bool
    decode_use_priors: bool
    factory: str  # "module:function" building the criterion from a CriterionContext

    @property
    def decode_acoustic_scale(self) -> float | None:
        """The acoustic scale to decode this criterion's models at (None: tune it)."""
        from asr.model_dir import DECODE_ACOUSTIC_SCALES  # torch: only when asked

        return DECODE_ACOUSTIC_SCALES.get(self.name)

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
    "none", False, False, "asr.training.criteria:build_flat_start"))
register_criterion(Criterion(
    "ce", "frame cross-entropy on alignments (asr align or align_after)", CrossEntropyOptions,
    "required", True, True, "asr.training.criteria:build_cross_entropy"))
register_criterion(Criterion(
    "lfmmi", "lattice-free MMI; without --ali-dir flat-start (E2E) LF-MMI; no priors, decode at scale 1",
    LfMmiOptions, "optional", False, False, "asr.training.lfmmi:build_lfmmi"))
register_criterion(Criterion(
    "mmi", "MMI fine-tuning on alignments (phone-LM or HLG denominator)", MmiOptions,
    "required", True, True, "asr.training.lfmmi:build_mmi"))
register_criterion(Criterion(
    "smbr", "lattice-free sMBR fine-tuning on alignments (expected frame accuracy over the MMI denominator)",
    SmbrOptions, "required", True, True, "asr.training.smbr:build_smbr"))


def criteria_help() -> str:
    """One line per criterion, for ``asr train --help``."""
    return "; ".join(f"'{name}' ({c.summary})" for name, c in CRITERIA.items())


def _criterion_keys(data: dict[str, Any], criterion: str, options: type, where: str) -> dict[str, Any]:
    """The criterion's own keys of a flat training mapping.

    A key no criterion knows raises (naming the criterion, with a spelling
    hint).  A key of another criterion (``prior_scale`` in an lfmmi config) is
    ignored with a warning: configs copied between criteria keep working.
    """
    common, own = field_names(TrainConfig), field_names(options)
    picked = {}
    for key, value in data.items():
        if key in own or key in common:
            if key in own:
                picked[key] = value
            continue
        owners = [name for name, c in CRITERIA.items() if key in field_names(c.options)]
        if not owners:
            raise ConfigError(f"{where}: unknown key '{key}' for criterion '{criterion}'"
                              f"{_closest(str(key), common + own)}")
        log.warning("%s: key '%s' is read only by criterion %s, not '%s': ignored", where, key,
                    ", ".join(owners), criterion)
    return picked


def parse_train_config(data: Any, where: str = "train config") -> TrainConfig:
    """Checks a training mapping and returns it typed, its criterion options in ``criterion_options``.

    Raises:
      ConfigError: one line naming ``where`` and the key.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a YAML mapping at top level")
    if "criterion" not in data:
        raise ConfigError(f"{where}: missing key 'criterion'")
    spec = CRITERIA.get(data["criterion"], where)
    own = _criterion_keys(data, spec.name, spec.options, where)
    common = set(field_names(TrainConfig))
    config = parse_config(TrainConfig, {k: v for k, v in data.items() if k in common}, where)
    if not data.get("spec_augment"):
        config.spec_augment = None  # an empty section has always meant no SpecAugment
    config.criterion_options = parse_config(spec.options, own, where)
    return config


def as_train_config(cfg: TrainConfig | dict[str, Any], where: str = "train config") -> TrainConfig:
    """``cfg`` typed (a mapping is parsed with :func:`parse_train_config`)."""
    return cfg if isinstance(cfg, TrainConfig) else parse_train_config(cfg, where)
