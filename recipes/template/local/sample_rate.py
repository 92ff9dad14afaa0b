#!/usr/bin/env python3
"""Prints the sample rate of the first recording of a data dir's ``wav.scp``.

The template's ``--sample-rate auto``: features are computed at the rate the
corpus is recorded at (other files are resampled to it, with a warning).
"""

from __future__ import annotations

import sys
from pathlib import Path

import soundfile as sf

from asr.fileio import read_table


def first_sample_rate(data_dir: Path) -> int:
    """The sample rate of the first (C-sorted) entry of ``data_dir/wav.scp``."""
    wav_scp = read_table(data_dir / "wav.scp")
    first = sorted(wav_scp, key=lambda k: k.encode("utf-8"))[0]
    return int(sf.info(wav_scp[first]).samplerate)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} DATA_DIR")
    print(first_sample_rate(Path(sys.argv[1])))
