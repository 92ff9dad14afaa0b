#!/usr/bin/env python3
"""Copies a Kaldi data dir into the recipe's work dir (``data/train``, ``data/test``).

Only the data tables travel (``wav.scp text utt2spk spk2utt segments
utt2dur``), validated on the way; features are computed again in the work
dir.  ``utt2dur`` (which the config scaler reads) is written from the audio
headers when the source dir has none.
"""

from __future__ import annotations

import sys
from pathlib import Path

from asr.data.audio import audio_duration
from asr.data.datadir import DataDir
from asr.data.split import subset_data_dir
from asr.errors import AsrError


def durations(dd: DataDir) -> dict[str, float]:
    """Seconds per utterance: the segment's length, else the audio file's."""
    if dd.segments is None:
        return {utt: audio_duration(dd.wav_scp[utt]) for utt in dd.utt2spk}
    out = {}
    for utt, (rec, start, end) in dd.segments.items():
        out[utt] = (end if end >= 0 else audio_duration(dd.wav_scp[rec])) - start
    return out


def copy_data_dir(src: Path, dest: Path) -> DataDir:
    """Writes ``dest`` as a validated copy of ``src``'s tables (with ``utt2dur``)."""
    dd = DataDir.load(src)
    if dd.utt2dur is None:
        dd.utt2dur = durations(dd)
    return subset_data_dir(dd, list(dd.utt2spk), dest)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} SRC_DATA_DIR DEST_DATA_DIR")
    try:
        copy_data_dir(Path(sys.argv[1]), Path(sys.argv[2]))
    except AsrError as e:
        sys.exit(f"copy_data_dir.py: error: {e}")
