"""Kaldi data directories: reading, writing and validation.

A data dir holds ``wav.scp``, ``text``, ``utt2spk`` and ``spk2utt``, and
optionally ``segments``, ``utt2dur``, ``feats.scp``, ``cmvn.scp`` and
``utt2num_frames``.  The checks follow Kaldi's ``validate_data_dir.sh``:
each table is sorted by key in C (byte) order without duplicates, the
utterance sets of all tables agree, and sorting ``utt2spk`` by utterance also
sorts it by speaker (so speaker ids should be prefixes of utterance ids).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, NamedTuple

from asr.errors import AsrError, DataDirError
from asr.fileio import PathLike, read_lines, write_table

log = logging.getLogger("asr.data.datadir")


#: Files that depend on features; removed when a data dir is rewritten.
FEATURE_FILES = ("feats.scp", "cmvn.scp", "utt2num_frames", "conf/feats.yaml")


class Segment(NamedTuple):
    """One line of Kaldi ``segments``: a part of a recording (``end`` -1 = to the end)."""

    recording: str
    start: float
    end: float


class _Row(NamedTuple):
    line: int
    key: str
    value: str


def _c_key(key: str) -> bytes:
    return key.encode("utf-8")


def _read_sorted_table(path: Path, need_value: bool = True) -> dict[str, _Row]:
    """Reads a Kaldi table checking UTF-8, sorting and duplicate keys.

    Raises:
      DataDirError: naming ``file:line`` of the first offending line.
    """
    rows: dict[str, _Row] = {}
    prev: str | None = None
    for i, line in enumerate(read_lines(path, DataDirError), 1):
        parts = line.strip().split(maxsplit=1)
        if not parts:
            raise DataDirError(f"{path}:{i}: empty line")
        key = parts[0]
        value = parts[1].strip() if len(parts) > 1 else ""
        if key in rows:
            raise DataDirError(f"{path}:{i}: duplicate key '{key}' (first at line {rows[key].line})")
        if prev is not None and _c_key(key) < _c_key(prev):
            raise DataDirError(
                f"{path}:{i}: not sorted, '{key}' comes after '{prev}' (sort with LC_ALL=C sort)"
            )
        if need_value and not value:
            raise DataDirError(f"{path}:{i}: key '{key}' has no value")
        rows[key] = _Row(i, key, value)
        prev = key
    return rows


def _check_same_keys(
    ref: dict[str, _Row], ref_path: Path, other: dict[str, _Row], other_path: Path
) -> None:
    """Raises naming the first utterance in one table but missing from the other."""
    for key in ref:
        if key not in other:
            raise DataDirError(f"{other_path}: utterance '{key}' (in {ref_path}) is missing")
    for key, row in other.items():
        if key not in ref:
            raise DataDirError(f"{other_path}:{row.line}: utterance '{key}' is not in {ref_path}")


def _parse_segments(path: Path, rows: dict[str, _Row]) -> dict[str, Segment]:
    out = {}
    for key, row in rows.items():
        parts = row.value.split()
        try:
            if len(parts) != 3:
                raise ValueError
            seg = Segment(parts[0], float(parts[1]), float(parts[2]))
        except ValueError:
            raise DataDirError(
                f"{path}:{row.line}: expected '<utt> <recording> <start> <end>'"
            ) from None
        if seg.start < 0 or (seg.end >= 0 and seg.end <= seg.start):
            raise DataDirError(f"{path}:{row.line}: bad times {seg.start} {seg.end}")
        out[key] = seg
    return out


def _parse_numbers(path: Path, rows: dict[str, _Row], kind: type) -> dict:
    out = {}
    for key, row in rows.items():
        try:
            value = kind(row.value)
        except ValueError:
            raise DataDirError(f"{path}:{row.line}: '{row.value}' is not a valid {kind.__name__}") from None
        if not value > 0:
            raise DataDirError(f"{path}:{row.line}: value must be positive, got {row.value}")
        out[key] = value
    return out


@dataclass
class DataDir:
    """A loaded and validated Kaldi data directory.

    Attributes:
      path: The directory.
      wav_scp: Recording (or utterance, without segments) id -> audio path.
      text: Utterance id -> transcript; ``None`` if the dir has no ``text``.
      utt2spk: Utterance id -> speaker id.
      spk2utt: Speaker id -> sorted utterance ids.
      segments: Utterance id -> :class:`Segment`, or ``None``.
      utt2dur, feats_scp, cmvn_scp, utt2num_frames: Optional tables or ``None``.
    """

    path: Path
    wav_scp: dict[str, str]
    text: dict[str, str] | None
    utt2spk: dict[str, str]
    spk2utt: dict[str, list[str]]
    segments: dict[str, Segment] | None = None
    utt2dur: dict[str, float] | None = None
    feats_scp: dict[str, str] | None = None
    cmvn_scp: dict[str, str] | None = None
    utt2num_frames: dict[str, int] | None = None
    _wav_lines: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """The directory's base name (e.g. ``train``)."""
        return self.path.resolve().name

    @property
    def utterances(self) -> list[str]:
        """Utterance ids in C order."""
        return sorted(self.utt2spk, key=_c_key)

    def audio_source(self, utt: str) -> tuple[str, float, float | None]:
        """Returns ``(audio_path, start, end)`` of an utterance (``end`` None = to the end)."""
        if self.segments is not None:
            seg = self.segments[utt]
            return self.wav_scp[seg.recording], seg.start, (seg.end if seg.end >= 0 else None)
        return self.wav_scp[utt], 0.0, None

    @classmethod
    def load(cls, path: PathLike, require_text: bool = True) -> "DataDir":
        """Reads and validates a data dir (see :func:`validate_data_dir`).

        Raises:
          DataDirError: naming the file (and line or key) of the first problem.
        """
        return _load(Path(path), require_text)


def _load(d: Path, require_text: bool) -> DataDir:
    """Reads and validates the data dir ``d`` (:meth:`DataDir.load`), file by file."""
    if not d.is_dir():
        raise DataDirError(f"{d}: no such data directory")
    for name in ("wav.scp", "utt2spk"):
        if not (d / name).is_file():
            raise DataDirError(f"{d / name}: no such file (required in a data dir)")
    utt2spk_rows = _read_utt2spk(d / "utt2spk")
    utt2spk = {k: r.value for k, r in utt2spk_rows.items()}
    text = _read_text_table(d, utt2spk_rows, require_text)
    wav_rows, segments = _read_audio_tables(d, utt2spk_rows)
    spk2utt = _derive_spk2utt(utt2spk)
    if (d / "spk2utt").is_file():
        _check_spk2utt(d / "spk2utt", spk2utt)

    dd = DataDir(
        path=d,
        wav_scp={k: r.value for k, r in wav_rows.items()},
        text=text,
        utt2spk=utt2spk,
        spk2utt=spk2utt,
        segments=segments,
        _wav_lines={k: r.line for k, r in wav_rows.items()},
    )
    if (rows := _optional_utt_table(d, "utt2dur", utt2spk_rows)) is not None:
        dd.utt2dur = _parse_numbers(d / "utt2dur", rows, float)
    if (rows := _optional_utt_table(d, "utt2num_frames", utt2spk_rows)) is not None:
        dd.utt2num_frames = _parse_numbers(d / "utt2num_frames", rows, int)
    if (rows := _optional_utt_table(d, "feats.scp", utt2spk_rows)) is not None:
        dd.feats_scp = {k: r.value for k, r in rows.items()}
    if (d / "cmvn.scp").is_file():
        dd.cmvn_scp = _read_cmvn_scp(d / "cmvn.scp", spk2utt, utt2spk)
    return dd


def _read_utt2spk(path: Path) -> dict[str, _Row]:
    """``utt2spk`` rows: at least one, one speaker each, speakers in utterance order."""
    rows = _read_sorted_table(path)
    if not rows:
        raise DataDirError(f"{path}: no utterances")
    for row in rows.values():
        if len(row.value.split()) != 1:
            raise DataDirError(f"{path}:{row.line}: expected '<utt> <speaker>'")
    _check_speaker_order(path, rows)
    return rows


def _optional_utt_table(d: Path, name: str, utt2spk_rows: dict[str, _Row]) -> dict[str, _Row] | None:
    """The rows of ``d/name`` (keyed by the utterances of utt2spk, all of them), or None without the file."""
    if not (d / name).is_file():
        return None
    rows = _read_sorted_table(d / name)
    _check_same_keys(utt2spk_rows, d / "utt2spk", rows, d / name)
    return rows


def _read_text_table(d: Path, utt2spk_rows: dict[str, _Row], require_text: bool) -> dict[str, str] | None:
    """``text`` (every transcript non-empty), or None when absent and not required."""
    path = d / "text"
    if not path.is_file():
        if require_text:
            raise DataDirError(f"{path}: no such file (required in a data dir)")
        return None
    rows = _read_sorted_table(path, need_value=False)
    for row in rows.values():
        if not row.value:
            raise DataDirError(f"{path}:{row.line}: empty transcript for '{row.key}'")
    _check_same_keys(utt2spk_rows, d / "utt2spk", rows, path)
    return {k: r.value for k, r in rows.items()}


def _read_audio_tables(d: Path, utt2spk_rows: dict[str, _Row]) -> tuple[dict[str, _Row], dict[str, Segment] | None]:
    """``wav.scp`` rows and ``segments`` (None without it): every utterance has audio, every segment a recording."""
    wav_rows = _read_sorted_table(d / "wav.scp")
    seg_rows = _optional_utt_table(d, "segments", utt2spk_rows)
    if seg_rows is None:
        _check_same_keys(utt2spk_rows, d / "utt2spk", wav_rows, d / "wav.scp")
        return wav_rows, None
    segments = _parse_segments(d / "segments", seg_rows)
    for utt, seg in segments.items():
        if seg.recording not in wav_rows:
            raise DataDirError(
                f"{d / 'segments'}:{seg_rows[utt].line}: recording '{seg.recording}' is not in {d / 'wav.scp'}"
            )
    return wav_rows, segments


def _read_cmvn_scp(path: Path, spk2utt: dict[str, list[str]], utt2spk: dict[str, str]) -> dict[str, str]:
    """``cmvn.scp``: keys are all the speakers (per-speaker CMVN) or all the utterances (per-utterance)."""
    rows = _read_sorted_table(path)
    ref = spk2utt if set(rows) <= set(spk2utt) or not set(rows) <= set(utt2spk) else utt2spk
    for key in ref:
        if key not in rows:
            raise DataDirError(f"{path}: key '{key}' is missing")
    for key, row in rows.items():
        if key not in ref:
            raise DataDirError(f"{path}:{row.line}: '{key}' is neither a speaker nor an utterance")
    return {k: r.value for k, r in rows.items()}


def _check_speaker_order(path: Path, rows: dict[str, _Row]) -> None:
    """Kaldi requires that utt2spk sorted by utterance is also sorted by speaker."""
    prev: _Row | None = None
    for row in rows.values():
        if prev is not None and _c_key(row.value) < _c_key(prev.value):
            raise DataDirError(
                f"{path}:{row.line}: speaker '{row.value}' of '{row.key}' sorts before speaker "
                f"'{prev.value}' of the line before; make speaker ids prefixes of utterance ids"
            )
        prev = row


def _derive_spk2utt(utt2spk: dict[str, str]) -> dict[str, list[str]]:
    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk, key=_c_key):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return {s: spk2utt[s] for s in sorted(spk2utt, key=_c_key)}


def _check_spk2utt(path: Path, expected: dict[str, list[str]]) -> None:
    rows = _read_sorted_table(path)
    for key, row in rows.items():
        if key not in expected:
            raise DataDirError(f"{path}:{row.line}: speaker '{key}' is not in utt2spk")
        if sorted(row.value.split(), key=_c_key) != expected[key]:
            raise DataDirError(f"{path}:{row.line}: utterances of speaker '{key}' differ from utt2spk")
    for key in expected:
        if key not in rows:
            raise DataDirError(f"{path}: speaker '{key}' (in utt2spk) is missing")


def validate_data_dir(
    path: PathLike,
    check_audio: bool = False,
    sample_rate: int | None = None,
    require_text: bool = True,
) -> DataDir:
    """Validates a Kaldi data dir in the spirit of ``validate_data_dir.sh``.

    Args:
      path: The data directory.
      check_audio: Also open every audio file's header with soundfile.
      sample_rate: With ``check_audio``, log a warning for each recording at
        another rate (it will be resampled when read).
      require_text: Whether ``text`` must exist (not for data to transcribe).

    Returns:
      The loaded :class:`DataDir`.

    Raises:
      DataDirError: naming the file and line (or key) of the first problem.
    """
    dd = DataDir.load(path, require_text=require_text)
    if check_audio:
        from asr.data.audio import audio_info

        for key, audio in dd.wav_scp.items():
            try:
                info = audio_info(audio)
            except AsrError as e:
                raise DataDirError(f"{dd.path / 'wav.scp'}:{dd._wav_lines[key]}: {e}") from None
            if sample_rate is not None and info.samplerate != sample_rate:
                log.warning("%s: %d Hz, will be resampled to %d Hz", audio, info.samplerate, sample_rate)
    return dd


def write_data_dir(
    path: PathLike,
    wav_scp: dict[str, str],
    text: dict[str, str] | None,
    utt2spk: dict[str, str],
    segments: dict[str, Segment] | None = None,
    utt2dur: dict[str, float] | None = None,
) -> DataDir:
    """Writes a Kaldi data dir (sorted tables, derived ``spk2utt``) and validates it.

    Feature files left from an earlier version of the dir (``feats.scp``,
    ``cmvn.scp``, ...) are removed because they would no longer match.

    Returns:
      The validated :class:`DataDir`.

    Raises:
      DataDirError: if the written dir is inconsistent (e.g. a missing utterance).
    """
    d = Path(path)
    d.mkdir(parents=True, exist_ok=True)
    for name in FEATURE_FILES + ("segments", "utt2dur"):
        if (d / name).exists():
            log.info("%s: removing stale %s", d, name)
            (d / name).unlink()
    write_table(d / "wav.scp", wav_scp.items())
    if text is not None:
        write_table(d / "text", text.items())
    write_table(d / "utt2spk", utt2spk.items())
    write_table(d / "spk2utt", ((s, " ".join(u)) for s, u in _derive_spk2utt(utt2spk).items()))
    if segments is not None:
        write_table(
            d / "segments",
            ((u, f"{s.recording} {s.start:.3f} {s.end:.3f}" if s.end >= 0 else f"{s.recording} {s.start:.3f} -1")
             for u, s in segments.items()),
        )
    if utt2dur is not None:
        write_table(d / "utt2dur", ((u, f"{v:.6g}") for u, v in utt2dur.items()))
    return DataDir.load(d, require_text=text is not None)


def read_text(path: PathLike) -> dict[str, list[str]]:
    """Reads a Kaldi ``text`` file (``uttid w1 w2 ...``; no words is allowed).

    Raises:
      DataDirError: on a missing file, a blank line or a duplicate utterance
        id, naming file and line.
    """
    out: dict[str, list[str]] = {}
    for i, line in enumerate(read_lines(path, DataDirError), 1):
        fields = line.split()
        if not fields:
            raise DataDirError(f"{path}:{i}: empty line")
        if fields[0] in out:
            raise DataDirError(f"{path}:{i}: duplicate utterance id '{fields[0]}'")
        out[fields[0]] = fields[1:]
    return out


def write_int_table(path: PathLike, items: Iterable[tuple[str, int]]) -> None:
    """Writes a ``key integer`` table (e.g. ``utt2num_frames``)."""
    write_table(path, ((k, str(int(v))) for k, v in items))
