"""Acoustic models: per-frame log-probabilities over HMM states (pdfs).

``build_model(cfg, feat_dim, num_pdfs)`` turns a model config read from YAML
into a model; ``model.config`` holds the normalized config that rebuilds the
same architecture (store it next to the weights).

One registry, :data:`MODELS`, maps each ``type`` to its typed config (the
keys it accepts, with defaults and docs: docs/CONFIG.md) and its builder.
Adding a model type = its module (the ``nn.Module``, a config dataclass
derived from :class:`ModelConfig`, a ``build_<type>(cfg, feat_dim, num_pdfs,
where)`` function) plus one ``register_model`` line below.

The output has exactly ``num_pdfs`` columns; with pdf ids numbered from 1
(k2 reserves column 0) pass ``num_pdfs = max pdf id + 1``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from asr.config import parse_config
from asr.errors import ConfigError
from asr.models.base import OUTPUT_INITS, AcousticModel, ModelConfig, model_config_dict, parse_offsets
from asr.models.cnn_lstm import CNNLSTM, CnnLstmConfig, build_cnn_lstm
from asr.models.lstm import LSTMModel, LstmConfig, build_lstm
from asr.models.tdnn import TDNN, TdnnConfig, build_tdnn, default_contexts
from asr.registry import Registry

__all__ = [
    "AcousticModel", "CNNLSTM", "LSTMModel", "MODELS", "ModelConfig", "ModelType", "OUTPUT_INITS", "TDNN",
    "build_model", "model_config_dict", "parse_model_config", "register_model",
]

logger = logging.getLogger("asr.models")

WHERE = "model config"

#: Builds a model from its checked config: ``(cfg, feat_dim, num_pdfs, where) -> model``.
ModelBuilder = Callable[[Any, int, int, str], AcousticModel]


@dataclass(frozen=True)
class ModelType:
    """A registry entry: the config dataclass a ``type`` accepts and its builder."""

    name: str
    summary: str
    config_type: type[ModelConfig]
    build: ModelBuilder


#: Model types by name, in registration order.
MODELS: Registry[ModelType] = Registry("model type")


def register_model(name: str, summary: str, config_type: type[ModelConfig], build: ModelBuilder) -> None:
    """Adds a model type to :data:`MODELS`."""
    MODELS.register(name, ModelType(name, summary, config_type, build))


register_model("tdnn", "Kaldi nnet3-style TDNN (asr/models/tdnn.py)", TdnnConfig, build_tdnn)
register_model("lstm", "unidirectional LSTM stack (asr/models/lstm.py)", LstmConfig, build_lstm)
register_model("blstm", "bidirectional LSTM stack (asr/models/lstm.py)", LstmConfig, build_lstm)
register_model("cnn_lstm", "2-D conv front end + (B)LSTM (asr/models/cnn_lstm.py)", CnnLstmConfig, build_cnn_lstm)


def parse_model_config(cfg: Any, where: str = WHERE, prefix: str = "") -> ModelConfig:
    """Checks a model section against its type's config dataclass.

    Raises:
      ConfigError: naming ``where`` and the key, on an unknown type or key or a bad value.
    """
    if not isinstance(cfg, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(cfg).__name__}")
    entry = MODELS.get(cfg.get("type"), where)
    return parse_config(entry.config_type, cfg, where, prefix)


def build_model(cfg: dict[str, Any] | ModelConfig, feat_dim: int, num_pdfs: int, where: str = WHERE) -> AcousticModel:
    """Builds an acoustic model from a config mapping.

    Args:
      cfg: Model config (keys: docs/CONFIG.md), e.g. the ``model`` section of
        a training YAML or a saved ``model.config``; or one already parsed.
      feat_dim: Input feature dimension.
      num_pdfs: Number of output columns.
      where: The file (or section) named in errors.

    Returns:
      The model, with ``model.config`` set to the normalized config
      (defaults filled in) that rebuilds the same architecture.

    Raises:
      ConfigError: on an unknown type, an unknown key or a bad value.
    """
    parsed = cfg if isinstance(cfg, ModelConfig) else parse_model_config(cfg, where)
    model = MODELS.get(parsed.type, where).build(parsed, feat_dim, num_pdfs, where)
    if parsed.output_init != "default":
        # Only an initialisation: kept in the config for the record (the
        # default is left out, so existing model.yaml files are unchanged).
        model.config["output_init"] = parsed.output_init
        nn.init.zeros_(model.output.weight)
        nn.init.zeros_(model.output.bias)
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("built %s model: %d parameters (%.2fM), subsampling %d", parsed.type, n_params, n_params / 1e6,
                parsed.subsampling)
    return model
