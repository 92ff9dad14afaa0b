"""Kaldi ark/scp matrix I/O (binary, through kaldiio), used for features and CMVN stats.

A scp value is ``ark_path:offset``.  Only plain files are read: kaldiio's own
scp loaders run ``cmd |`` entries through a shell.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
from kaldiio.matio import read_kaldi, write_array

from asr.errors import DataDirError
from asr.fileio import atomic_open, atomic_write_text


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


def write_matrices(ark_path: Path, scp_path: Path, mats: Iterable[tuple[str, np.ndarray]]) -> dict[str, str]:
    """Writes matrices to a binary ark plus its scp, each atomically.

    The scp names ``ark_path`` as given (make it absolute for portability).

    Returns:
      ``{key: "ark_path:offset"}``.
    """
    index: dict[str, str] = {}
    with atomic_open(ark_path, "wb") as f:
        for key, mat in mats:
            f.write(key.encode("utf-8") + b" ")
            index[key] = f"{ark_path}:{f.tell()}"
            write_array(f, mat)
    atomic_write_text(scp_path, "".join(f"{k} {v}\n" for k, v in index.items()))
    return index
