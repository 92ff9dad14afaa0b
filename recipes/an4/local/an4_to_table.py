#!/usr/bin/env python3
"""Writes AN4's train and test sets as import tables (TSV: utt, speaker, path, text).

``asr prepare-data table OUT/an4_train.tsv data/train`` then gives the same
data dir, byte for byte, as ``asr prepare-data an4`` (tests/test_importers.py
checks it).  The corpus is only read; audio paths are absolute.

Usage: an4_to_table.py [--corpus CORPUS_DIR] OUT_DIR
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from asr.data.corpora.an4 import read_transcription
from asr.errors import AsrError, DataDirError
from asr.fileio import atomic_open, read_lines

REPO = Path(__file__).resolve().parents[3]
COLUMNS = ("utt", "speaker", "path", "text")


def an4_rows(corpus: Path, split: str) -> list[tuple[str, str, str, str]]:
    """``(utt, speaker, audio path, transcript)`` of one AN4 split, in file-list order.

    Raises:
      DataDirError: naming ``file:line`` of a malformed file list or a file without transcript.
    """
    fileids = corpus / "etc" / f"an4_{split}.fileids"
    transcripts = read_transcription(corpus / "etc" / f"an4_{split}.transcription")
    rows = []
    for i, line in enumerate(read_lines(fileids, DataDirError), 1):
        fileid = line.strip()
        if not fileid:
            continue
        parts = fileid.split("/")
        if len(parts) < 2 or parts[-1] not in transcripts:
            raise DataDirError(f"{fileids}:{i}: '{fileid}' is not '<dir>/<speaker>/<file>' with a transcript")
        speaker, base = parts[-2], parts[-1]
        rows.append((f"{speaker}-{base}", speaker, str(corpus / "wav" / f"{fileid}.sph"), transcripts[base]))
    return rows


def write_an4_tables(corpus_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Writes ``out_dir/an4_train.tsv`` and ``out_dir/an4_test.tsv``; returns ``{split: path}``."""
    corpus = Path(corpus_dir).resolve()
    out = {}
    for split in ("train", "test"):
        out[split] = Path(out_dir) / f"an4_{split}.tsv"
        with atomic_open(out[split]) as f:
            writer = csv.writer(f, delimiter="\t", lineterminator="\n")
            writer.writerow(COLUMNS)
            writer.writerows(an4_rows(corpus, split))
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpora" / "an4",
                   help="AN4 corpus dir (default ../shared/corpora/an4 relative to the repo)")
    p.add_argument("out_dir", type=Path)
    args = p.parse_args()
    try:
        tables = write_an4_tables(args.corpus, args.out_dir)
    except AsrError as e:
        print(f"an4_to_table.py: error: {e}", file=sys.stderr)
        return 1
    for split, path in tables.items():
        print(f"{split}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
