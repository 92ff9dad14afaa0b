"""lhotse manifests <-> data dirs: ``asr prepare-data lhotse`` and ``asr prepare-data to-lhotse``.

Import reads a ``RecordingSet`` and a ``SupervisionSet`` (``.jsonl.gz``,
``.jsonl`` or ``.json``, anything lhotse's ``from_file`` reads) and writes one
data dir.  When each recording has exactly one supervision covering all of
it, the dir has no ``segments`` and ``wav.scp`` is keyed by utterance;
otherwise supervisions become Kaldi segments of their recordings.  Export
writes ``PREFIX_recordings.jsonl.gz`` and ``PREFIX_supervisions.jsonl.gz``.
Needs the optional extra: ``pip install 'asr[lhotse]'``.  See docs/IMPORT.md.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from asr.data.audio import audio_info
from asr.data.datadir import DataDir, Segment
from asr.data.importers.common import (
    DataDirTables,
    OptionalDependencyError,
    normalize_text,
    speaker_prefixed,
    write_tables,
)
from asr.data.registry import register_preparer
from asr.errors import AsrError, DataDirError
from asr.fileio import PathLike

log = logging.getLogger("asr.data.importers.lhotse_manifests")

#: How far (seconds) a supervision may differ from its recording and still cover all of it.
WHOLE_RECORDING_TOLERANCE_S = 0.01
MANIFEST_SUFFIX = ".jsonl.gz"


def _lhotse() -> Any:
    """Imports lhotse, or says how to install it."""
    try:
        import lhotse
    except ImportError as e:
        raise OptionalDependencyError(
            f"lhotse manifests need the lhotse package ({e}): pip install 'asr[lhotse]'"
        ) from None
    return lhotse


def _load_manifest(path: PathLike, kind: str) -> Any:
    """Reads a RecordingSet or SupervisionSet, turning lhotse's exceptions into one line."""
    path = Path(path)
    if not path.is_file():
        raise DataDirError(f"{path}: no such {kind} manifest")
    manifest_class = getattr(_lhotse(), kind)
    try:
        return manifest_class.from_file(path)
    except Exception as e:  # lhotse raises anything from json, gzip, KeyError to TypeError
        message = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise DataDirError(f"{path}: not a lhotse {kind} ({message})") from None


def _recording_audio(recording: Any, manifest: Path) -> str:
    """The one audio file of a recording (relative paths are taken from the cwd, as lhotse does)."""
    where = f"{manifest}: recording '{recording.id}'"
    if len(recording.sources) != 1 or recording.sources[0].type != "file":
        kinds = ", ".join(s.type for s in recording.sources) or "none"
        raise DataDirError(f"{where}: needs exactly one source of type 'file', has {kinds}")
    if len(recording.sources[0].channels) > 1:
        log.warning("%s: %d channels, read as their mono mix", where, len(recording.sources[0].channels))
    audio = str(Path(recording.sources[0].source).resolve())
    try:
        audio_info(audio)
    except AsrError as e:
        raise DataDirError(f"{where}: {e}") from None
    return audio


def _covers_whole(supervisions: dict[str, list[Any]], recordings: Any) -> bool:
    """Whether each recording has exactly one supervision spanning all of it."""
    for recording in recordings:
        sups = supervisions.get(recording.id, [])
        if len(sups) != 1 or abs(sups[0].start) > WHOLE_RECORDING_TOLERANCE_S or \
                abs(sups[0].duration - recording.duration) > WHOLE_RECORDING_TOLERANCE_S:
            return False
    return True


def _group_supervisions(sup_set: Any, recordings: Any, manifest: Path) -> dict[str, list[Any]]:
    """Recording id -> its supervisions, checking that each names a known recording."""
    known = {recording.id for recording in recordings}
    grouped: dict[str, list[Any]] = {}
    for sup in sup_set:
        if sup.recording_id not in known:
            raise DataDirError(f"{manifest}: supervision '{sup.id}' names unknown recording '{sup.recording_id}'")
        grouped.setdefault(sup.recording_id, []).append(sup)
    return grouped


def import_lhotse(recordings: PathLike, supervisions: PathLike, out_dir: PathLike) -> DataDir:
    """Writes the data dir ``out_dir`` from lhotse manifests (see the module docstring).

    Utterance ids are the supervision ids with a ``<speaker>-`` prefix
    unless they start with it; a supervision without a speaker is its own
    speaker.  Recordings without supervisions are left out.

    Raises:
      OptionalDependencyError: if lhotse is not installed.
      DataDirError: on a missing or unreadable manifest, a supervision without
        text or with an unknown recording, a recording that is not one audio
        file, missing audio, or duplicate ids.  Nothing is written then.
    """
    rec_set = _load_manifest(recordings, "RecordingSet")
    sup_set = _load_manifest(supervisions, "SupervisionSet")
    grouped = _group_supervisions(sup_set, rec_set, Path(supervisions))
    whole = _covers_whole(grouped, rec_set)
    tables = DataDirTables()
    for recording in rec_set:
        if recording.id not in grouped:
            continue
        audio = _recording_audio(recording, Path(recordings))
        for sup in grouped[recording.id]:
            where = f"{supervisions}: supervision '{sup.id}'"
            speaker = sup.speaker or sup.id
            utt = speaker_prefixed(sup.id, speaker)
            # A whole recording's duration comes from its samples: exactly what the header says.
            duration = recording.num_samples / recording.sampling_rate if whole else sup.duration
            tables.add_utterance(where, utt, speaker, normalize_text(sup.text or ""), duration)
            if whole:
                tables.add_audio(where, utt, audio)
            else:
                tables.add_audio(where, recording.id, audio)
                tables.add_segment(utt, Segment(recording.id, sup.start, sup.start + sup.duration))
    return write_tables(out_dir, tables, f"{recordings} + {supervisions}")


def _recording(lhotse: Any, key: str, audio: str, where: str) -> Any:
    """A lhotse ``Recording`` of one audio file, from its header (all channels)."""
    try:
        info = audio_info(audio)
    except AsrError as e:
        raise DataDirError(f"{where}: {e}") from None
    source = lhotse.audio.AudioSource(type="file", channels=list(range(info.channels)), source=audio)
    return lhotse.Recording(id=key, sources=[source], sampling_rate=info.samplerate,
                            num_samples=info.frames, duration=info.frames / info.samplerate)


def _supervision(lhotse: Any, dd: DataDir, utt: str, recordings: dict[str, Any]) -> Any:
    """A lhotse ``SupervisionSegment`` of one utterance (all channels of its recording)."""
    audio_key, start, end = (dd.segments[utt] if dd.segments is not None else (utt, 0.0, -1.0))
    recording = recordings[audio_key]
    end = recording.duration if end < 0 else end
    channels = recording.sources[0].channels
    return lhotse.SupervisionSegment(
        id=utt, recording_id=audio_key, start=start, duration=end - start,
        channel=channels[0] if len(channels) == 1 else channels,
        text=dd.text[utt] if dd.text is not None else None, speaker=dd.utt2spk[utt],
    )


def _write_manifest(manifest: Any, path: Path) -> None:
    """Writes a manifest atomically (lhotse picks the format from the suffix, so the temp file keeps it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=MANIFEST_SUFFIX)
    os.close(fd)
    try:
        manifest.to_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def export_lhotse(data_dir: PathLike, out_prefix: PathLike) -> dict[str, Path]:
    """Writes a data dir as ``OUT_PREFIX_recordings.jsonl.gz`` and ``OUT_PREFIX_supervisions.jsonl.gz``.

    Recordings are the ``wav.scp`` entries, read from their headers;
    supervisions are the utterances (whole recordings, or their segments),
    with text and speaker.

    Returns:
      ``{"recordings": path, "supervisions": path}``.

    Raises:
      OptionalDependencyError: if lhotse is not installed.
      DataDirError: if the data dir is invalid or an audio file is unreadable.
    """
    lhotse = _lhotse()
    dd = DataDir.load(data_dir, require_text=False)
    recordings = {key: _recording(lhotse, key, audio, f"{dd.path / 'wav.scp'}: '{key}'")
                  for key, audio in dd.wav_scp.items()}
    supervisions = [_supervision(lhotse, dd, utt, recordings) for utt in dd.utterances]
    prefix = str(out_prefix)
    out = {"recordings": Path(f"{prefix}_recordings{MANIFEST_SUFFIX}"),
           "supervisions": Path(f"{prefix}_supervisions{MANIFEST_SUFFIX}")}
    _write_manifest(lhotse.RecordingSet.from_recordings(recordings.values()), out["recordings"])
    _write_manifest(lhotse.SupervisionSet.from_segments(supervisions), out["supervisions"])
    log.info("%s: %d recordings, %d supervisions -> %s_*%s", dd.path, len(recordings), len(supervisions),
             prefix, MANIFEST_SUFFIX)
    return out


def _add_import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recordings", metavar="RECORDINGS", help="lhotse RecordingSet manifest (.jsonl.gz, .json)")
    p.add_argument("supervisions", metavar="SUPERVISIONS", help="lhotse SupervisionSet manifest")
    p.add_argument("out_dir", metavar="OUT_DIR", help="the data dir to write")


def _add_export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data_dir", metavar="DATA_DIR", help="the data dir to export")
    p.add_argument("out_prefix", metavar="OUT_PREFIX",
                   help=f"writes OUT_PREFIX_recordings{MANIFEST_SUFFIX} and OUT_PREFIX_supervisions{MANIFEST_SUFFIX}")


@register_preparer("lhotse", help="import lhotse RecordingSet + SupervisionSet manifests",
                   add_arguments=_add_import_arguments, description=__doc__)
def _run_import(args: argparse.Namespace) -> dict[str, Path]:
    return {"data": import_lhotse(args.recordings, args.supervisions, args.out_dir).path}


@register_preparer("to-lhotse", help="export a data dir as lhotse manifests",
                   add_arguments=_add_export_arguments, description=__doc__)
def _run_export(args: argparse.Namespace) -> dict[str, Path]:
    return export_lhotse(args.data_dir, args.out_prefix)
