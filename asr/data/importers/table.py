"""``asr prepare-data table``: a CSV/TSV table of audio files and transcripts -> a data dir.

One row per utterance, a header row naming the columns.  Required: an audio
path and a transcript; optional: a speaker, an utterance id, and start/end
times (seconds) that make the row a segment of its recording (Kaldi
``segments``).  Relative audio paths are resolved against the table's folder.
See docs/IMPORT.md.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

from asr.data.audio import audio_duration
from asr.data.datadir import DataDir, Segment
from asr.data.importers.common import DataDirTables, normalize_text, speaker_prefixed, write_tables
from asr.data.registry import register_preparer
from asr.errors import AsrError, DataDirError
from asr.fileio import PathLike

#: Table suffix -> delimiter, for ``--delimiter auto``.
_DELIMITER_BY_SUFFIX = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
#: Spellings of the delimiters accepted by ``--delimiter`` (a shell passes ``\t`` as two characters).
_DELIMITER_NAMES = {",": ",", "comma": ",", "\t": "\t", "\\t": "\t", "tab": "\t", ";": ";", "semicolon": ";"}
#: How far (seconds) a segment's end may pass the end of its audio (rounding in the table).
END_TOLERANCE_S = 0.01
#: Kaldi's segment ids carry times in centiseconds.
_CENTISECONDS = 100


@dataclass(frozen=True)
class TableColumns:
    """Column names of an import table; ``None`` = not used.

    ``speaker``, ``utt``, ``start`` and ``end`` given as ``None`` are still
    used when the table has a column of their default name (see :func:`resolve_columns`).
    """

    audio: str = "path"
    text: str = "text"
    speaker: str | None = None
    utt: str | None = None
    start: str | None = None
    end: str | None = None


#: Default names of the optional columns, used when the table has them.
OPTIONAL_DEFAULTS = {"speaker": "speaker", "utt": "utt", "start": "start", "end": "end"}


def resolve_columns(columns: TableColumns, header: list[str], table: Path) -> dict[str, int]:
    """Maps each used role (audio, text, speaker, ...) to its column index.

    Raises:
      DataDirError: naming a requested column the header lacks, and the columns it has.
    """
    index = {name: i for i, name in enumerate(header)}
    roles: dict[str, int] = {}
    for role in ("audio", "text", "speaker", "utt", "start", "end"):
        name = getattr(columns, role)
        if name is None:
            default = OPTIONAL_DEFAULTS.get(role)
            if default in index:
                roles[role] = index[default]
            continue
        if name not in index:
            have = ", ".join(header) or "none"
            raise DataDirError(f"{table}:1: no column '{name}' for the {role} (columns: {have})")
        roles[role] = index[name]
    return roles


def _delimiter(table: Path, delimiter: str, first_line: str) -> str:
    if delimiter != "auto":
        return _DELIMITER_NAMES[delimiter]
    if table.suffix.lower() in _DELIMITER_BY_SUFFIX:
        return _DELIMITER_BY_SUFFIX[table.suffix.lower()]
    return "\t" if "\t" in first_line else ","


def read_rows(table: Path, delimiter: str = "auto") -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Reads a CSV/TSV table into its header and ``(line, cells)`` rows (blank rows skipped).

    Raises:
      DataDirError: if the file is missing, not UTF-8, empty, has a duplicate
        column name, or a row with another number of cells (``FILE:LINE``).
    """
    try:
        content = table.read_text(encoding="utf-8-sig")  # -sig: Excel writes a BOM
    except FileNotFoundError:
        raise DataDirError(f"{table}: no such table") from None
    except UnicodeDecodeError:
        raise DataDirError(f"{table}: not a UTF-8 text file") from None
    except OSError as e:
        raise DataDirError(f"{table}: cannot read ({e.strerror})") from None
    reader = csv.reader(content.splitlines(keepends=True),
                        delimiter=_delimiter(table, delimiter, content.partition("\n")[0]))
    try:
        header = [name.strip() for name in next(reader, [])]
        if not any(header):
            raise DataDirError(f"{table}: empty table (no header row)")
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates:
            raise DataDirError(f"{table}:1: column '{duplicates[0]}' appears twice in the header")
        rows = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                raise DataDirError(f"{table}:{reader.line_num}: expected {len(header)} fields "
                                   f"({', '.join(header)}), got {len(cells)}")
            rows.append((reader.line_num, [cell.strip() for cell in cells]))
    except csv.Error as e:
        raise DataDirError(f"{table}:{reader.line_num}: malformed row ({e})") from None
    if not rows:
        raise DataDirError(f"{table}: empty table (a header but no rows)")
    return header, rows


def _audio_path(cell: str, table_dir: Path) -> str:
    """An absolute path: a relative one is taken from the table's folder."""
    path = Path(cell)
    return str(path if path.is_absolute() else (table_dir / path).resolve())


def _time(cell: str, name: str, where: str, empty: float) -> float:
    if not cell:
        return empty
    try:
        return float(cell)
    except ValueError:
        raise DataDirError(f"{where}: {name} '{cell}' is not a number of seconds") from None


def _segment(row: dict[str, str], recording: str, duration: float, where: str) -> Segment:
    """The row's part of its recording; an empty start is 0, an empty end the end of the audio."""
    start = _time(row.get("start", ""), "start", where, 0.0)
    end = _time(row.get("end", ""), "end", where, -1.0)
    if start < 0 or start >= duration:
        raise DataDirError(f"{where}: start {start} is outside the audio ({duration:.3f} s)")
    if end >= 0 and end <= start:
        raise DataDirError(f"{where}: end {end} is not after start {start}")
    if end > duration + END_TOLERANCE_S:
        raise DataDirError(f"{where}: end {end} is after the end of the audio ({duration:.3f} s)")
    return Segment(recording, start, end)


def _segment_id(recording: str, segment: Segment, duration: float) -> str:
    """Kaldi's ``<recording>-<start>-<end>`` id, times in centiseconds."""
    end = segment.end if segment.end >= 0 else duration
    return f"{recording}-{round(segment.start * _CENTISECONDS):07d}-{round(end * _CENTISECONDS):07d}"


def _add_row(tables: DataDirTables, row: dict[str, str], table_dir: Path, where: str) -> None:
    """Adds one table row (audio, text and the optional columns) to ``tables``."""
    if not row["audio"]:
        raise DataDirError(f"{where}: empty audio path")
    audio = _audio_path(row["audio"], table_dir)
    try:
        duration = audio_duration(audio)
    except AsrError as e:
        raise DataDirError(f"{where}: {e}") from None
    recording = Path(audio).stem
    segmented = "start" in row or "end" in row
    segment = _segment(row, recording, duration, where) if segmented else None
    utt = row.get("utt") or (_segment_id(recording, segment, duration) if segment else recording)
    speaker = row.get("speaker") or None
    if speaker is None:  # unknown speaker: each utterance its own, as Kaldi recommends
        speaker = utt
    utt = speaker_prefixed(utt, speaker)
    if segment is None:
        tables.add_utterance(where, utt, speaker, normalize_text(row["text"]), duration)
        tables.add_audio(where, utt, audio)
        return
    end = segment.end if segment.end >= 0 else duration
    tables.add_utterance(where, utt, speaker, normalize_text(row["text"]), end - segment.start)
    tables.add_audio(where, recording, audio)
    tables.add_segment(utt, segment)


def import_table(
    table: PathLike, out_dir: PathLike, columns: TableColumns = TableColumns(), delimiter: str = "auto"
) -> DataDir:
    """Writes the data dir ``out_dir`` from a CSV/TSV table (see the module docstring).

    Utterance ids are the ``utt`` column, else the audio file's stem (plus
    ``-<start>-<end>`` in centiseconds for segments); they get a
    ``<speaker>-`` prefix unless they start with it.  Without a speaker
    column each utterance is its own speaker.

    Returns:
      The validated :class:`DataDir`.

    Raises:
      DataDirError: naming the table (and line) of a missing table or
        column, an empty table, a bad row, missing or unreadable audio, or a
        duplicate id.  Nothing is written then.
    """
    table = Path(table)
    header, rows = read_rows(table, delimiter)
    roles = resolve_columns(columns, header, table)
    tables = DataDirTables()
    for line, cells in rows:
        row = {role: cells[i] for role, i in roles.items()}
        _add_row(tables, row, table.resolve().parent, f"{table}:{line}")
    return write_tables(out_dir, tables, str(table))


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("table", metavar="TABLE", help="CSV or TSV file with a header row")
    p.add_argument("out_dir", metavar="OUT_DIR", help="the data dir to write")
    p.add_argument("--audio-column", default="path", help="column of audio paths (default: path)")
    p.add_argument("--text-column", default="text", help="column of transcripts (default: text)")
    for role, what, otherwise in (
        ("speaker", "speaker ids", "each utterance is its own speaker"),
        ("utt", "utterance ids", "the audio file's stem"),
        ("start", "segment start times in seconds (writes segments)", "0"),
        ("end", "segment end times in seconds (writes segments)", "the end of the audio"),
    ):
        p.add_argument(f"--{role}-column", default=None,
                       help=f"column of {what} (default: '{role}' if the table has it, else {otherwise})")
    p.add_argument("--delimiter", default="auto", choices=["auto", *_DELIMITER_NAMES], metavar="auto|,|tab|;",
                   help="field separator; auto: tab for .tsv/.tab, comma for .csv, "
                   "else tab if the header has one (default: auto)")


@register_preparer("table", help="import a CSV/TSV table of audio paths and transcripts",
                   add_arguments=_add_arguments, description=__doc__)
def _run(args: argparse.Namespace) -> dict[str, Path]:
    columns = TableColumns(audio=args.audio_column, text=args.text_column, speaker=args.speaker_column,
                           utt=args.utt_column, start=args.start_column, end=args.end_column)
    return {"data": import_table(args.table, args.out_dir, columns, args.delimiter).path}
