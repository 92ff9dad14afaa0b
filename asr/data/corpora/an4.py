"""CMU AN4 (census) in its original layout (``etc/`` + ``wav/`` SPHERE files)."""

from __future__ import annotations

import argparse
import logging
import os
import re
from pathlib import Path

from asr.data.audio import audio_duration
from asr.data.datadir import write_data_dir
from asr.data.registry import add_corpus_arguments, register_preparer
from asr.errors import DataDirError
from asr.fileio import read_lines

log = logging.getLogger("asr.data.corpora.an4")

# "<s> WORDS </s> (fileid)" in train, "WORDS (fileid)" in test.
_LINE = re.compile(r"^(?P<words>.*?)\s*\((?P<id>[^()\s]+)\)\s*$")


def read_transcription(path: Path) -> dict[str, str]:
    """Reads an AN4 ``.transcription`` file into ``{fileid: words}``.

    Lines may or may not wrap the words in ``<s> … </s>``; the markers are dropped.

    Raises:
      DataDirError: naming ``file:line`` of a malformed or duplicate line,
        or an empty transcript.
    """
    out: dict[str, str] = {}
    for i, line in enumerate(read_lines(path, DataDirError), 1):
        if not line.strip():
            continue
        m = _LINE.match(line.strip())
        if m is None:
            raise DataDirError(f"{path}:{i}: expected 'WORDS (fileid)', got '{line.strip()[:80]}'")
        words = m.group("words").split()
        if words[:1] == ["<s>"]:
            words = words[1:]
        if words[-1:] == ["</s>"]:
            words = words[:-1]
        if not words or "<s>" in words or "</s>" in words:
            raise DataDirError(f"{path}:{i}: empty or malformed transcript for '{m.group('id')}'")
        fid = m.group("id")
        if fid in out:
            raise DataDirError(f"{path}:{i}: duplicate file id '{fid}'")
        out[fid] = " ".join(words)
    return out


def _prepare_split(corpus: Path, split: str, out: Path) -> None:
    fileids_path = corpus / "etc" / f"an4_{split}.fileids"
    trans_path = corpus / "etc" / f"an4_{split}.transcription"
    transcripts = read_transcription(trans_path)
    wav_scp, text, utt2spk, utt2dur = {}, {}, {}, {}
    for i, line in enumerate(read_lines(fileids_path, DataDirError), 1):
        fileid = line.strip()
        if not fileid:
            continue
        parts = fileid.split("/")
        if len(parts) < 2:
            raise DataDirError(f"{fileids_path}:{i}: expected '<dir>/<speaker>/<file>', got '{fileid}'")
        speaker, base = parts[-2], parts[-1]
        if base not in transcripts:
            raise DataDirError(f"{fileids_path}:{i}: '{base}' has no line in {trans_path}")
        # Speaker prefix keeps utt2spk sorted by speaker too (Kaldi requirement).
        utt = f"{speaker}-{base}"
        if utt in utt2spk:
            raise DataDirError(f"{fileids_path}:{i}: duplicate file id '{fileid}'")
        audio = corpus / "wav" / f"{fileid}.sph"
        wav_scp[utt] = str(audio)
        text[utt] = transcripts.pop(base)
        utt2spk[utt] = speaker
        utt2dur[utt] = audio_duration(audio)
    if transcripts:
        extra = next(iter(transcripts))
        raise DataDirError(f"{trans_path}: '{extra}' is not listed in {fileids_path}")
    write_data_dir(out, wav_scp, text, utt2spk, utt2dur=utt2dur)
    log.info("an4 %s: %d utterances, %d speakers -> %s", split, len(utt2spk), len(set(utt2spk.values())), out)


def prepare_an4(corpus_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Writes ``out_dir/train`` (948 utts) and ``out_dir/test`` (130) data dirs for AN4.

    The speaker is the folder holding the file and the utterance id is
    ``<speaker>-<fileid>`` (e.g. ``fash-an251-fash-b``).  Audio paths are
    absolute SPHERE files; the corpus dir is only read.

    Returns:
      ``{"train": path, "test": path}``.

    Raises:
      DataDirError: naming ``file:line`` of a malformed transcription or file list.
      AudioError: if an audio file is missing or unreadable.
    """
    corpus = Path(corpus_dir).resolve()
    if not (corpus / "etc").is_dir():
        raise DataDirError(f"{corpus}: not an AN4 corpus (no etc/ folder)")
    out = {}
    for split in ("train", "test"):
        out[split] = Path(out_dir) / split
        _prepare_split(corpus, split, out[split])
    return out


@register_preparer("an4", help="prepare the an4 corpus", add_arguments=add_corpus_arguments,
                   description=prepare_an4.__doc__.splitlines()[0])
def _run(args: argparse.Namespace) -> dict[str, Path]:
    return prepare_an4(args.corpus_dir, args.out_dir)
