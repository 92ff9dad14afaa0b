"""Cepstral mean (and variance) normalization with Kaldi's stats format.

Stats of a speaker (or utterance) are a (2, dim+1) float64 matrix: row 0 holds
the sum of the features then the frame count, row 1 the sum of squares then 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from kaldiio.matio import read_kaldi

from asr.errors import DataDirError
from asr.fileio import PathLike


def cmvn_stats(feats: np.ndarray | torch.Tensor) -> np.ndarray:
    """Returns Kaldi CMVN stats of one (T, D) feature matrix as a (2, D+1) float64 array."""
    x = np.asarray(feats.numpy() if isinstance(feats, torch.Tensor) else feats, dtype=np.float64)
    stats = np.zeros((2, x.shape[1] + 1), dtype=np.float64)
    stats[0, :-1] = x.sum(axis=0)
    stats[0, -1] = x.shape[0]
    stats[1, :-1] = (x * x).sum(axis=0)
    return stats


def apply_cmvn(
    feats: torch.Tensor, stats: np.ndarray | torch.Tensor, norm_vars: bool = False
) -> torch.Tensor:
    """Normalizes features with Kaldi ``apply-cmvn`` semantics.

    Args:
      feats: (T, D) features.
      stats: (2, D+1) stats as from :func:`cmvn_stats` (summed over a speaker).
      norm_vars: Also scale to unit variance (variance floored at 1e-20 as Kaldi).

    Returns:
      (T, D) float32 normalized features.

    Raises:
      ValueError: if the shapes disagree or the count is below 1.
    """
    s = torch.as_tensor(np.asarray(stats), dtype=torch.float64)
    dim = feats.shape[-1]
    if s.shape != (2, dim + 1):
        raise ValueError(f"CMVN stats of shape {tuple(s.shape)} do not fit features of dim {dim}")
    count = float(s[0, dim])
    if count < 1.0:
        raise ValueError(f"insufficient CMVN stats (count {count})")
    mean = s[0, :dim] / count
    x = feats.to(torch.float64) - mean
    if norm_vars:
        var = (s[1, :dim] / count - mean * mean).clamp_min(1e-20)
        x = x / var.sqrt()
    return x.to(torch.float32)


def read_matrix(spec: str, where: str = "scp") -> np.ndarray:
    """Reads one matrix given as ``ark_path:offset`` (a Kaldi scp value).

    kaldiio's own loaders run ``cmd |`` entries through a shell; this reader
    opens plain files only, so a scp file from elsewhere can never run code.

    Raises:
      DataDirError: naming ``where`` for a pipe, a malformed entry or a bad ark.
    """
    text = spec.strip()
    if text.endswith("|") or text.startswith("|"):
        raise DataDirError(f"{where}: pipes are not supported ('{text[:80]}')")
    path, sep, offset = text.rpartition(":")
    if not sep or not offset.isdigit():
        raise DataDirError(f"{where}: expected 'ark_path:offset', got '{text[:80]}'")
    try:
        with open(path, "rb") as f:
            f.seek(int(offset))
            mat = read_kaldi(f)
    except OSError as e:
        raise DataDirError(f"{where}: cannot read {path} ({e.strerror})") from None
    except Exception as e:  # kaldiio raises ValueError/AssertionError/... on corrupt data
        raise DataDirError(f"{where}: corrupt matrix at {text} ({type(e).__name__}: {e})") from None
    if not isinstance(mat, np.ndarray) or mat.ndim != 2:
        raise DataDirError(f"{where}: {text} is not a matrix")
    # kaldiio may return a read-only view; torch wants writable memory.
    return mat if mat.flags.writeable else mat.copy()


def load_features(data_dir: PathLike, norm_vars: bool | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """Yields ``(utt, feats)`` with CMVN applied, in ``feats.scp`` order.

    Uses ``feats.scp``, ``cmvn.scp`` (keys are speakers or utterances, as
    recorded in ``conf/feats.yaml``) and ``utt2spk``.  Without ``cmvn.scp``
    (CMVN type ``none``) the raw features are yielded.

    Args:
      data_dir: A data dir after :func:`asr.features.compute_features`.
      norm_vars: Override the config's ``norm_vars``.

    Raises:
      DataDirError: if files are missing or inconsistent.
    """
    from asr.data.datadir import DataDir
    from asr.features.extract import load_feature_config

    dd = DataDir.load(data_dir, require_text=False)
    if dd.feats_scp is None:
        raise DataDirError(f"{dd.path / 'feats.scp'}: no such file (run asr compute-feats)")
    cfg = load_feature_config(dd.path)
    kind = cfg.get("cmvn", "per-speaker" if dd.cmvn_scp is not None else "none")
    if norm_vars is None:
        norm_vars = bool(cfg.get("norm_vars", False))
    if kind != "none" and dd.cmvn_scp is None:
        raise DataDirError(f"{dd.path / 'cmvn.scp'}: no such file but CMVN type is '{kind}'")
    cache: dict[str, np.ndarray] = {}
    for utt in dd.utterances:
        feats = torch.from_numpy(read_matrix(dd.feats_scp[utt], f"{dd.path / 'feats.scp'} '{utt}'"))
        if kind == "none":
            yield utt, feats
            continue
        key = utt if kind == "per-utterance" else dd.utt2spk[utt]
        if key not in cache:
            # Per-speaker stats are shared by all of a speaker's utterances.
            cache = {key: read_matrix(dd.cmvn_scp[key], f"{dd.path / 'cmvn.scp'} '{key}'")}
        yield utt, apply_cmvn(feats, cache[key], norm_vars)


def write_matrices(ark_path: Path, scp_path: Path, mats: Iterator[tuple[str, np.ndarray]]) -> dict[str, str]:
    """Writes matrices to a binary ark plus its scp, each atomically.

    The scp names ``ark_path`` as given (make it absolute for portability).

    Returns:
      ``{key: "ark_path:offset"}``.
    """
    from kaldiio.matio import write_array

    from asr.fileio import atomic_open, atomic_write_text

    index: dict[str, str] = {}
    with atomic_open(ark_path, "wb") as f:
        for key, mat in mats:
            f.write(key.encode("utf-8") + b" ")
            index[key] = f"{ark_path}:{f.tell()}"
            write_array(f, mat)
    atomic_write_text(scp_path, "".join(f"{k} {v}\n" for k, v in index.items()))
    return index
