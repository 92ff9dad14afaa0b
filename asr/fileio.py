"""Atomic file output and Kaldi-style text tables.

Every output of `asr` is written to a temporary file in the destination
directory, flushed, fsync'ed and renamed into place, so an interrupted run
never leaves a half-written file and a failed write keeps the previous one.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import IO, Iterable, Iterator

from asr.errors import AsrError, DataDirError

PathLike = str | os.PathLike


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Opens a temporary file that replaces ``path`` only if the block succeeds.

    Args:
      path: Final destination.
      mode: ``"w"`` for text or ``"wb"`` for bytes.
      encoding: Text encoding (ignored for binary mode).

    Raises:
      AsrError: if the directory is not writable or the write fails (for
        example a full disk); the message names ``path``.
    """
    path = Path(path)
    binary = "b" in mode
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise AsrError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, mode, **({} if binary else {"encoding": encoding, "newline": "\n"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise AsrError(f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    """Writes ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_torch_save(obj, path: PathLike) -> None:
    """Saves ``obj`` with ``torch.save`` atomically.

    Keep ``obj`` to tensors and plain Python types so that it loads back with
    ``torch.load(weights_only=True)``.
    """
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_open(path, "wb") as f:
        f.write(buf.getbuffer())


def safe_torch_load(path: PathLike):
    """Loads a file saved by :func:`atomic_torch_save` without running code.

    Raises:
      AsrError: if the file is missing or holds anything but tensors and
        plain types (a pickle that could run code is refused, never run).
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise AsrError(f"{path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message starts with advice (with ANSI codes); the culprit is on the "Unsupported global" line.
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        first = next((ln for ln in lines if "Unsupported global" in ln), lines[0] if lines else "unsafe content")
        first = first.replace("\x1b[1m", "").replace("\x1b[0m", "").split(" was not an allowed global")[0]
        raise AsrError(f"{path}: refused to load, it is not a plain-tensor file ({first[:160]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise AsrError(f"{path}: cannot load ({str(e).splitlines()[0][:160] if str(e) else type(e).__name__})") from None


def read_lines(path: PathLike, error: type[AsrError] = DataDirError) -> list[str]:
    """Reads a UTF-8 text file into lines, accepting Windows line endings.

    Raises:
      ``error``: if the file is missing or not valid UTF-8; names the file
        and line.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as e:
        raise error(f"{path}: cannot read ({e.strerror})") from None
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = []
    for i, raw in enumerate(lines, 1):
        try:
            out.append(raw.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError:
            raise error(f"{path}:{i}: line is not valid UTF-8") from None
    return out


def read_table(path: PathLike, error: type[AsrError] = DataDirError) -> dict[str, str]:
    """Reads a Kaldi two-column table (``key rest-of-line``).

    Raises:
      ``error``: on an empty key or a duplicate key, naming file and line.
    """
    table: dict[str, str] = {}
    for i, line in enumerate(read_lines(path, error), 1):
        if not line.strip():
            raise error(f"{path}:{i}: empty line")
        key, _, value = line.strip().partition(" ")
        if key in table:
            raise error(f"{path}:{i}: duplicate key '{key}'")
        table[key] = value.strip()
    return table


def write_table(path: PathLike, items: Iterable[tuple[str, str]]) -> None:
    """Writes a Kaldi table atomically, sorted by key in C locale order."""
    rows = sorted(items, key=lambda kv: kv[0].encode("utf-8"))
    atomic_write_text(path, "".join(f"{k} {v}\n" if v != "" else f"{k}\n" for k, v in rows))
