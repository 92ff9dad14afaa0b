"""CMVN for transcription, where files come one at a time and without speakers (issue 14).

The choices (``asr transcribe --cmvn``, ``Recognizer(cmvn=...)``), named as
``asr compute-feats --cmvn`` names the training choices they match:

- ``per-utterance``: each file normalised with its own statistics;
- ``per-speaker``: statistics of a *session*, i.e. all the audio transcribed
  since the session started (the file itself included), so that one
  speaker's files are normalised more and more like Kaldi's per-speaker CMVN;
  :meth:`TranscriptionCmvn.new_speaker` starts a new session. Statistics
  supplied by the caller (a Kaldi ``cmvn.scp`` entry, a stats matrix file, an
  array) are used as they are instead, for every file until the next
  ``new_speaker``;
- ``sliding``: the sliding window of :mod:`asr.features.online_cmvn`, with the
  model's window options and prior (what streaming uses);
- ``none``.

The default is the model's own (``cmvn`` in its feature config); another
choice is warned about once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asr.errors import ConfigError
from asr.features.ark import read_matrix
from asr.features.cmvn import apply_cmvn, cmvn_stats
from asr.features.online_cmvn import check_stats, sliding_cmvn_for

log = logging.getLogger("asr.features.session_cmvn")

#: CMVN choices for transcription (``asr compute-feats --cmvn`` names the training choices alike).
TRANSCRIBE_CMVN = ("per-utterance", "per-speaker", "sliding", "none")


def load_cmvn_stats(source: Any, key: str | None = None, dim: int | None = None) -> np.ndarray:
    """Kaldi CMVN stats (a (2, D+1) float64 array) from an array, a file or a data dir.

    Args:
      source: A (2, D+1) array or tensor; a ``cmvn.scp`` (``key`` picks an
        entry, else all entries are summed: global stats); a file holding one
        Kaldi matrix, binary or text (e.g. ``matrix-sum scp:cmvn.scp global_cmvn.stats``);
        or a data dir (its ``cmvn.scp``, or the ``cmvn_prior`` of its
        ``conf/feats.yaml`` after ``--cmvn sliding``).
      key: The speaker (or utterance) of a ``cmvn.scp``.
      dim: The feature dimension the stats must fit.

    Raises:
      ConfigError: one line naming the source, for a missing file or key, or bad stats.
    """
    if isinstance(source, (np.ndarray, torch.Tensor, list)):
        return check_stats(source, dim, "CMVN stats")
    path = Path(source)
    where = str(path)
    if path.is_dir():
        return _data_dir_stats(path, key, dim)
    if not path.is_file():
        raise ConfigError(f"{path}: no such CMVN stats file")
    if path.suffix == ".scp":
        return _scp_stats(path, key, dim)
    if key is not None:
        raise ConfigError(f"{path}: a speaker key needs a cmvn.scp, not a single stats matrix")
    from kaldiio.matio import read_kaldi

    try:
        with open(path, "rb") as f:
            mat = read_kaldi(f)
    except Exception as e:  # kaldiio raises ValueError/AssertionError/... on other content
        raise ConfigError(f"{path}: not a Kaldi matrix ({type(e).__name__}: {e})") from None
    return check_stats(mat, dim, where)


def _scp_stats(path: Path, key: str | None, dim: int | None) -> np.ndarray:
    entries = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        k, _, spec = line.strip().partition(" ")
        if k:
            entries[k] = (spec, n)
    if not entries:
        raise ConfigError(f"{path}: no entries")
    if key is not None:
        if key not in entries:
            raise ConfigError(f"{path}: no entry for '{key}'")
        spec, n = entries[key]
        return check_stats(read_matrix(spec, f"{path}:{n}"), dim, f"{path}:{n}")
    return check_stats(sum(read_matrix(spec, f"{path}:{n}") for spec, n in entries.values()), dim, str(path))


def _data_dir_stats(path: Path, key: str | None, dim: int | None) -> np.ndarray:
    if (path / "cmvn.scp").is_file():
        return _scp_stats(path / "cmvn.scp", key, dim)
    from asr.config import load_config
    from asr.features.online_cmvn import feature_prior

    feats_yaml = path / "conf" / "feats.yaml"
    prior = feature_prior(load_config(feats_yaml), dim, str(feats_yaml)) if feats_yaml.is_file() else None
    if prior is None or key is not None:
        raise ConfigError(f"{path}: no cmvn.scp (nor a cmvn_prior in conf/feats.yaml) to take CMVN stats from")
    return prior


def trained_cmvn(feature_config: dict) -> str:
    """The CMVN a model was trained with (its feature config's ``cmvn``; older model dirs: per-utterance)."""
    return feature_config.get("cmvn") or "per-utterance"


class TranscriptionCmvn:
    """Normalises the features of the files a :class:`asr.Recognizer` transcribes.

    Args:
      feature_config: The model's feature config (``cmvn``, ``norm_vars``, sliding options).
      mode: One of :data:`TRANSCRIBE_CMVN`; None: the model's own.
      stats: Statistics supplied by the caller (see :func:`load_cmvn_stats`);
        they imply ``per-speaker``.
      where: Named in messages (the model dir).

    Raises:
      ConfigError: for an unknown mode, or stats with a mode other than per-speaker.
    """

    def __init__(self, feature_config: dict, mode: str | None = None, stats: Any = None, where: str = "model"):
        trained = trained_cmvn(feature_config)
        if mode is None:
            mode = "per-speaker" if stats is not None else trained
        if mode not in TRANSCRIBE_CMVN:
            raise ConfigError(f"cmvn must be one of {', '.join(TRANSCRIBE_CMVN)}, got '{mode}'")
        if stats is not None and mode != "per-speaker":
            raise ConfigError(f"CMVN statistics are per-speaker statistics; they cannot go with cmvn '{mode}'")
        if mode != trained:
            log.warning("%s was trained with %s CMVN but transcription normalises %s", where, trained,
                        "with supplied statistics" if stats is not None else mode)
        self.mode = mode
        self.trained = trained
        self.norm_vars = bool(feature_config.get("norm_vars", False))
        self._sliding = sliding_cmvn_for(feature_config, where) if mode == "sliding" else None
        self._session: np.ndarray | None = None
        self._fixed: np.ndarray | None = None
        if stats is not None:
            self.new_speaker(stats)

    def new_speaker(self, stats: Any = None, key: str | None = None) -> None:
        """Starts a new session; with ``stats`` (see :func:`load_cmvn_stats`), uses them for every file."""
        self._session = None
        self._fixed = None if stats is None else load_cmvn_stats(stats, key)

    @property
    def session_frames(self) -> int:
        """Frames in the current session's statistics (0 with supplied statistics)."""
        return 0 if self._session is None else int(self._session[0, -1])

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        """(T, D) raw features -> normalised ones (per-speaker sessions take in this file's statistics)."""
        if self.mode == "none":
            return feats
        if self.mode == "sliding":
            return self._sliding(feats)
        if self.mode == "per-utterance":
            return apply_cmvn(feats, cmvn_stats(feats), self.norm_vars)
        if self._fixed is not None:
            if self._fixed.shape[1] != feats.shape[1] + 1:
                raise ConfigError(f"CMVN stats of dim {self._fixed.shape[1] - 1} do not fit features of dim "
                                  f"{feats.shape[1]}")
            return apply_cmvn(feats, self._fixed, self.norm_vars)
        own = cmvn_stats(feats)
        self._session = own if self._session is None else self._session + own
        return apply_cmvn(feats, self._session, self.norm_vars)
