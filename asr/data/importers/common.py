"""Pieces the importers share: collected tables, Kaldi ids, all-or-nothing writing."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from asr.data.datadir import DataDir, Segment, write_data_dir
from asr.errors import AsrError, DataDirError
from asr.fileio import PathLike

log = logging.getLogger("asr.data.importers.common")


class OptionalDependencyError(AsrError):
    """An importer needs a package that is not installed (an optional extra)."""


def normalize_text(text: str) -> str:
    """Collapses runs of whitespace (including newlines inside a CSV cell) to one space."""
    return " ".join(text.split())


def check_id(value: str, what: str, where: str) -> str:
    """Returns ``value`` if it can be a Kaldi id (non-empty, no whitespace).

    Raises:
      DataDirError: ``WHERE: WHAT '...' ...`` otherwise.
    """
    if not value:
        raise DataDirError(f"{where}: empty {what}")
    if value != "".join(value.split()):
        raise DataDirError(f"{where}: {what} '{value}' contains whitespace (Kaldi ids cannot)")
    return value


def speaker_prefixed(utt: str, speaker: str) -> str:
    """Returns ``<speaker>-<utt>`` unless ``utt`` already is or starts with ``<speaker>-``.

    Kaldi requires that sorting utterances also sorts their speakers; a
    speaker prefix guarantees it (AN4's ids are ``fash-an251-fash-b``).
    """
    if utt == speaker or utt.startswith(f"{speaker}-"):
        return utt
    return f"{speaker}-{utt}"


@dataclass
class DataDirTables:
    """The tables of a data dir being collected, with where each entry came from.

    ``wav_scp`` is keyed by utterance, or by recording when ``segments`` is used.
    ``origin`` maps each key to its source (``FILE:LINE``) for duplicate messages.
    """

    wav_scp: dict[str, str] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    utt2spk: dict[str, str] = field(default_factory=dict)
    utt2dur: dict[str, float] = field(default_factory=dict)
    segments: dict[str, Segment] | None = None
    origin: dict[str, str] = field(default_factory=dict)

    def add_utterance(self, where: str, utt: str, speaker: str, text: str, duration: float) -> None:
        """Adds one utterance.

        Raises:
          DataDirError: on a bad id, an empty transcript or a duplicate utterance id.
        """
        check_id(speaker, "speaker id", where)
        check_id(utt, "utterance id", where)
        if utt in self.utt2spk:
            raise DataDirError(f"{where}: duplicate utterance id '{utt}' (first from {self.origin[utt]})")
        if not text:
            raise DataDirError(f"{where}: empty transcript for '{utt}'")
        self.origin[utt] = where
        self.text[utt] = text
        self.utt2spk[utt] = speaker
        self.utt2dur[utt] = duration

    def add_audio(self, where: str, key: str, audio: str) -> None:
        """Adds a ``wav.scp`` entry; a recording may be listed again with the same file.

        Raises:
          DataDirError: if ``key`` already names another file.
        """
        check_id(key, "recording id", where)
        previous = self.wav_scp.setdefault(key, audio)
        if previous != audio:
            raise DataDirError(f"{where}: recording id '{key}' is already used by {previous}")

    def add_segment(self, utt: str, segment: Segment) -> None:
        """Records that ``utt`` is a part of a recording (switches the dir to ``segments``)."""
        if self.segments is None:
            self.segments = {}
        self.segments[utt] = segment


def write_tables(out_dir: PathLike, tables: DataDirTables, source: str) -> DataDir:
    """Writes a validated data dir, or nothing at all.

    The dir is first written and validated in a temporary sibling folder, so
    a problem found by the validator (e.g. speakers that do not sort with
    their utterances) leaves ``out_dir`` untouched.

    Args:
      out_dir: The data dir to write.
      tables: The collected tables.
      source: What was imported (for the error when it holds no utterances).

    Raises:
      DataDirError: if there are no utterances or the dir would be invalid.
    """
    out = Path(out_dir)
    if not tables.utt2spk:
        raise DataDirError(f"{source}: no utterances to import")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        _write(staging, tables)
    except DataDirError as e:
        raise DataDirError(str(e).replace(str(staging), str(out))) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    dd = _write(out, tables)
    log.info("%s: %d utterances, %d speakers -> %s", source, len(dd.utt2spk), len(dd.spk2utt), out)
    return dd


def _write(path: Path, tables: DataDirTables) -> DataDir:
    return write_data_dir(path, tables.wav_scp, tables.text, tables.utt2spk,
                          segments=tables.segments, utt2dur=tables.utt2dur)
