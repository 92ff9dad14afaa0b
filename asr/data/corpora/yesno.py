"""The yesno corpus (OpenSLR SLR1): 60 files named by their YES/NO labels."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from asr.data.audio import audio_duration
from asr.data.datadir import write_data_dir
from asr.data.registry import add_corpus_arguments, register_preparer
from asr.errors import DataDirError

log = logging.getLogger("asr.data.corpora.yesno")

_WORDS = {"0": "NO", "1": "YES"}


def _transcript(path: Path) -> str:
    labels = path.stem.split("_")
    if not labels or any(lab not in _WORDS for lab in labels):
        raise DataDirError(f"{path}: file name is not a sequence of 0/1 labels like 0_1_1_0.wav")
    return " ".join(_WORDS[lab] for lab in labels)


def prepare_yesno(corpus_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Writes ``out_dir/train`` and ``out_dir/test`` data dirs for yesno.

    The sorted file list is split as lhotse and icefall do: even positions
    go to train, odd positions to test (30 each).  The utterance id is the
    file stem and, as Kaldi does when speakers are unknown, each utterance
    is its own speaker (so per-speaker CMVN is per-utterance CMVN).  Audio
    paths are absolute; the corpus dir is only read.

    Args:
      corpus_dir: Folder holding the ``*.wav`` files (other files are ignored).
      out_dir: Where the ``train`` and ``test`` dirs are written.

    Returns:
      ``{"train": path, "test": path}``.

    Raises:
      DataDirError: if the folder is missing or holds no wav files.
      AudioError: if a wav file is unreadable.
    """
    corpus = Path(corpus_dir).resolve()
    if not corpus.is_dir():
        raise DataDirError(f"{corpus}: no such corpus directory")
    wavs = sorted(corpus.glob("*.wav"), key=lambda p: p.name.encode())
    if not wavs:
        raise DataDirError(f"{corpus}: no *.wav files (is this the yesno corpus?)")
    splits = {"train": wavs[0::2], "test": wavs[1::2]}
    out = {}
    for split, files in splits.items():
        wav_scp, text, utt2spk, utt2dur = {}, {}, {}, {}
        for f in files:
            utt = f.stem
            wav_scp[utt] = str(f)
            text[utt] = _transcript(f)
            utt2spk[utt] = utt
            utt2dur[utt] = audio_duration(f)
        out[split] = Path(out_dir) / split
        write_data_dir(out[split], wav_scp, text, utt2spk, utt2dur=utt2dur)
        log.info("yesno %s: %d utterances -> %s", split, len(files), out[split])
    return out


@register_preparer("yesno", help="prepare the yesno corpus", add_arguments=add_corpus_arguments,
                   description=prepare_yesno.__doc__.splitlines()[0])
def _run(args: argparse.Namespace) -> dict[str, Path]:
    return prepare_yesno(args.corpus_dir, args.out_dir)
