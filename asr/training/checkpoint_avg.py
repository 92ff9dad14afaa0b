"""Averaging the model weights of several checkpoints (e.g. the last epochs)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import Tensor

from asr.errors import ModelDirError
from asr.fileio import PathLike, safe_torch_load

logger = logging.getLogger("asr.training.checkpoint_avg")


def _model_state(path: Path) -> dict[str, Tensor]:
    """Loads the ``model`` state_dict of one checkpoint file.

    Raises:
      ModelDirError: if the file is not a dict with a ``model`` mapping.
      AsrError: if the file is missing or unsafe (from ``safe_torch_load``).
    """
    ckpt = safe_torch_load(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise ModelDirError(f"{path}: not a checkpoint (expected a dict with a 'model' state_dict)")
    return ckpt["model"]


def average_checkpoints(paths: list[PathLike]) -> dict[str, Tensor]:
    """Averages the ``model`` state_dicts of checkpoint files.

    Floating-point tensors are averaged (accumulated in float64, returned in
    their own dtype); integer tensors such as BatchNorm's
    ``num_batches_tracked`` are counters, not weights, so the last
    checkpoint's value is kept.

    Args:
      paths: Checkpoint files written by ``atomic_torch_save``, each a dict
        with key ``"model"`` holding a state_dict.

    Returns:
      The averaged state_dict (load it with ``model.load_state_dict``).

    Raises:
      ModelDirError: if ``paths`` is empty, a file is not a checkpoint, or
        the checkpoints' keys or shapes differ (the message names the file).
      AsrError: if a file is missing or unsafe to load.
    """
    if not paths:
        raise ModelDirError("average_checkpoints: no checkpoint files given")
    paths = [Path(p) for p in paths]
    first = _model_state(paths[0])
    sums: dict[str, Tensor] = {k: v.double() for k, v in first.items() if v.is_floating_point()}
    avg: dict[str, Tensor] = dict(first)
    for path in paths[1:]:
        state = _model_state(path)
        if set(state) != set(first):
            diff = sorted(set(state) ^ set(first))
            raise ModelDirError(f"{path}: parameters differ from {paths[0]} (e.g. '{diff[0]}')")
        for k, v in state.items():
            if v.shape != first[k].shape:
                raise ModelDirError(f"{path}: '{k}' has shape {tuple(v.shape)}, {paths[0]} has {tuple(first[k].shape)}")
            if k in sums:
                sums[k] += v.double()
            else:
                avg[k] = v  # integer buffers: keep the last checkpoint's
    for k, s in sums.items():
        avg[k] = (s / len(paths)).to(first[k].dtype)
    logger.info("averaged %d checkpoints: %s", len(paths), ", ".join(str(p) for p in paths))
    return avg
