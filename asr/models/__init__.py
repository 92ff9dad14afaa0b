"""Acoustic models: per-frame log-probabilities over HMM states (pdfs).

``build_model(cfg, feat_dim, num_pdfs)`` turns a model config read from YAML
into a model; ``model.config`` holds the normalized config that rebuilds the
same architecture (store it next to the weights).

Config keys (defaults in brackets):

- ``type``: ``tdnn`` | ``lstm`` | ``blstm`` | ``cnn_lstm`` (required).
- all types: ``hidden`` [256], ``dropout`` [0.1], ``subsampling`` [1],
  ``output_init`` [``default``]: ``zero`` starts the output layer (weights
  and bias) at zero, as Kaldi's xconfig ``output-layer`` does
  (``param-stddev=0 bias-stddev=0``), so every frame starts with uniform
  outputs.  Flat-start LF-MMI needs it: a random output layer gives each
  frame random pdf preferences that seed the first numerator alignments,
  and training can lock into a degenerate one (conf/yesno/lfmmi.yaml).
- ``tdnn``: ``layers`` [len(context) or 6], ``context`` (one offset list or
  ``"-3,0,3"`` string per layer) [Kaldi-like default], ``subsampling_layer``
  [0] (which layer carries the stride).
- ``lstm`` / ``blstm``: ``layers`` [3], ``proj`` [0 = none].
- ``cnn_lstm``: ``layers`` [3], ``proj`` [0], ``channels`` [[32, 32]] (one
  entry per 3x3 conv, frequency stride 2), ``bidirectional`` [false].

The output has exactly ``num_pdfs`` columns; with pdf ids numbered from 1
(k2 reserves column 0) pass ``num_pdfs = max pdf id + 1``.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from asr.errors import ConfigError
from asr.models.base import AcousticModel, model_config_dict, parse_offsets
from asr.models.cnn_lstm import CNNLSTM
from asr.models.lstm import LSTMModel
from asr.models.tdnn import TDNN, default_contexts

__all__ = ["AcousticModel", "CNNLSTM", "LSTMModel", "MODEL_TYPES", "TDNN", "build_model", "model_config_dict"]

logger = logging.getLogger("asr.models")

WHERE = "model config"

_COMMON = {"type", "hidden", "dropout", "subsampling", "output_init"}
OUTPUT_INITS = ("default", "zero")
#: Keys each model type accepts; anything else is a ConfigError (likely a typo).
MODEL_TYPES: dict[str, set[str]] = {
    "tdnn": _COMMON | {"layers", "context", "subsampling_layer"},
    "lstm": _COMMON | {"layers", "proj"},
    "blstm": _COMMON | {"layers", "proj"},
    "cnn_lstm": _COMMON | {"layers", "proj", "channels", "bidirectional"},
}


def _pos_int(cfg: dict[str, Any], key: str, default: int) -> int:
    """Reads a positive int ``cfg[key]`` (booleans are not ints here)."""
    v = cfg.get(key, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ConfigError(f"{WHERE}: '{key}' must be a positive integer, got {v!r}")
    return v


def _dropout(cfg: dict[str, Any]) -> float:
    v = cfg.get("dropout", 0.1)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0.0 <= v < 1.0:
        raise ConfigError(f"{WHERE}: 'dropout' must be a number in [0, 1), got {v!r}")
    return float(v)


def _proj(cfg: dict[str, Any], hidden: int) -> int:
    v = cfg.get("proj", 0)
    if v is None:
        v = 0
    if not isinstance(v, int) or isinstance(v, bool) or v < 0 or (v and v >= hidden):
        # torch's LSTM requires proj_size < hidden_size
        raise ConfigError(f"{WHERE}: 'proj' must be 0 (none) or an integer below hidden={hidden}, got {v!r}")
    return v


def _bool(cfg: dict[str, Any], key: str, default: bool) -> bool:
    v = cfg.get(key, default)
    if not isinstance(v, bool):
        raise ConfigError(f"{WHERE}: '{key}' must be true or false, got {v!r}")
    return v


def _tdnn_contexts(cfg: dict[str, Any]) -> list[list[int]]:
    ctx = cfg.get("context")
    if ctx is None:
        return default_contexts(_pos_int(cfg, "layers", 6))
    if not isinstance(ctx, list) or not ctx:
        raise ConfigError(f"{WHERE}: 'context' must be a list with one splice per layer, got {ctx!r}")
    contexts = [parse_offsets(c, f"{WHERE}: context[{i}]") for i, c in enumerate(ctx)]
    if "layers" in cfg and _pos_int(cfg, "layers", 1) != len(contexts):
        raise ConfigError(f"{WHERE}: 'layers' is {cfg['layers']} but 'context' has {len(contexts)} entries")
    return contexts


def _channels(cfg: dict[str, Any]) -> list[int]:
    v = cfg.get("channels", [32, 32])
    if isinstance(v, int) and not isinstance(v, bool):
        v = [v, v]
    if not isinstance(v, list) or not v or not all(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in v):
        raise ConfigError(f"{WHERE}: 'channels' must be a list of positive integers, got {v!r}")
    return list(v)


def build_model(cfg: dict[str, Any], feat_dim: int, num_pdfs: int) -> AcousticModel:
    """Builds an acoustic model from a config mapping.

    Args:
      cfg: Model config (see the module docstring for keys), e.g. the
        ``model`` section of a training YAML or a saved ``model.config``.
      feat_dim: Input feature dimension.
      num_pdfs: Number of output columns.

    Returns:
      The model, with ``model.config`` set to the normalized config
      (defaults filled in) that rebuilds the same architecture.

    Raises:
      ConfigError: on an unknown type, an unknown key or a bad value.
    """
    if not isinstance(cfg, dict):
        raise ConfigError(f"{WHERE}: expected a mapping, got {type(cfg).__name__}")
    mtype = cfg.get("type")
    if mtype not in MODEL_TYPES:
        raise ConfigError(f"{WHERE}: unknown model type {mtype!r}, expected one of {', '.join(sorted(MODEL_TYPES))}")
    unknown = sorted(set(cfg) - MODEL_TYPES[mtype])
    if unknown:
        raise ConfigError(f"{WHERE}: unknown key '{unknown[0]}' for type '{mtype}'")
    hidden = _pos_int(cfg, "hidden", 256)
    dropout = _dropout(cfg)
    sub = _pos_int(cfg, "subsampling", 1)
    norm: dict[str, Any] = {"type": mtype, "hidden": hidden, "dropout": dropout, "subsampling": sub}
    output_init = cfg.get("output_init", "default")
    if output_init not in OUTPUT_INITS:
        raise ConfigError(f"{WHERE}: 'output_init' must be one of {', '.join(OUTPUT_INITS)}, got {output_init!r}")

    model: AcousticModel
    if mtype == "tdnn":
        contexts = _tdnn_contexts(cfg)
        sub_layer = cfg.get("subsampling_layer", 0)
        if not isinstance(sub_layer, int) or isinstance(sub_layer, bool) or not 0 <= sub_layer < len(contexts):
            raise ConfigError(f"{WHERE}: 'subsampling_layer' must be in 0..{len(contexts) - 1}, got {sub_layer!r}")
        norm.update(layers=len(contexts), context=contexts, subsampling_layer=sub_layer)
        model = TDNN(feat_dim, num_pdfs, hidden, contexts, dropout, sub, sub_layer, norm)
    else:
        layers = _pos_int(cfg, "layers", 3)
        proj = _proj(cfg, hidden)
        norm.update(layers=layers, proj=proj)
        if mtype == "cnn_lstm":
            channels = _channels(cfg)
            bidir = _bool(cfg, "bidirectional", False)
            norm.update(channels=channels, bidirectional=bidir)
            model = CNNLSTM(feat_dim, num_pdfs, channels, hidden, layers, proj, bidir, dropout, sub, norm)
        else:
            model = LSTMModel(feat_dim, num_pdfs, hidden, layers, proj, mtype == "blstm", dropout, sub, norm)
    if output_init != "default":
        # Only an initialisation: kept in the config for the record (the
        # default is left out, so existing model.yaml files are unchanged).
        model.config["output_init"] = output_init
        nn.init.zeros_(model.output.weight)
        nn.init.zeros_(model.output.bias)

    n_params = sum(p.numel() for p in model.parameters())
    logger.info("built %s model: %d parameters (%.2fM), subsampling %d", mtype, n_params, n_params / 1e6, sub)
    return model
