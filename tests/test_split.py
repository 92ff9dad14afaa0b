"""Tests of data dir subsets and train/test splits (asr prepare-data split)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.data.datadir import DataDir, Segment, write_data_dir
from asr.data.split import split_data_dir, subset_data_dir
from asr.errors import DataDirError

RATE = 8000


def _data_dir(tmp_path: Path, utts_per_speaker: dict[str, int]) -> Path:
    """A data dir with one short wav per utterance, ids ``<speaker>-<n>``."""
    wav_scp, text, utt2spk, utt2dur = {}, {}, {}, {}
    samples = np.zeros(RATE // 4, dtype=np.float32)
    for speaker, count in utts_per_speaker.items():
        for n in range(count):
            utt = f"{speaker}-{n}"
            path = tmp_path / "audio" / f"{utt}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, samples, RATE, subtype="PCM_16")
            wav_scp[utt], text[utt], utt2spk[utt], utt2dur[utt] = str(path), f"WORD{n}", speaker, 0.25
    return write_data_dir(tmp_path / "all", wav_scp, text, utt2spk, utt2dur=utt2dur).path


def _speakers(d: Path) -> set[str]:
    return set(DataDir.load(d).spk2utt)


def test_split_by_speaker_is_seeded_and_keeps_speakers_whole(tmp_path: Path) -> None:
    src = _data_dir(tmp_path, {f"s{i}": 2 + i % 3 for i in range(10)})
    dirs = split_data_dir(src, tmp_path / "a", by="speaker", test_fraction=0.2, seed=0)
    train, test = DataDir.load(dirs["train"]), DataDir.load(dirs["test"])
    assert len(test.spk2utt) == 2 and len(train.spk2utt) == 8
    assert not set(train.spk2utt) & set(test.spk2utt)
    assert set(train.utt2spk) | set(test.utt2spk) == set(DataDir.load(src).utt2spk)
    assert train.utt2dur is not None and train.text is not None
    again = split_data_dir(src, tmp_path / "b", seed=0)
    assert (again["test"] / "utt2spk").read_bytes() == (dirs["test"] / "utt2spk").read_bytes()
    others = {frozenset(_speakers(split_data_dir(src, tmp_path / f"s{seed}", seed=seed)["test"]))
              for seed in range(1, 6)}
    assert len(others) > 1, "different seeds should draw different speakers"


def test_split_warns_when_whole_speakers_distort_the_fraction(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    src = _data_dir(tmp_path, {"big": 12, "small": 1})
    with caplog.at_level(logging.WARNING):
        dirs = split_data_dir(src, tmp_path / "out", test_fraction=0.1, seed=0)
    held_out = len(DataDir.load(dirs["test"]).utt2spk)
    assert held_out in (1, 12)
    assert ("asked for 10.0%" in caplog.text) == (held_out == 12)


def test_split_by_pattern(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _data_dir(tmp_path, {"ann": 2, "bob": 2, "cid": 1})
    assert main(["prepare-data", "split", str(src), str(tmp_path / "out"), "--by", "pattern",
                 "--test-pattern", "^(bob|cid)-"]) == 0
    out = capsys.readouterr().out
    assert f"train: {tmp_path / 'out' / 'train'}" in out and f"test: {tmp_path / 'out' / 'test'}" in out
    assert _speakers(tmp_path / "out" / "train") == {"ann"}
    assert _speakers(tmp_path / "out" / "test") == {"bob", "cid"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"by": "pattern", "test_pattern": "-0$"}, r"speaker 'ann' would be split, 'ann-0' matches"),
        ({"by": "pattern", "test_pattern": "zzz"}, "the split leaves test empty"),
        ({"by": "pattern", "test_pattern": "."}, "the split leaves train empty"),
        ({"by": "pattern", "test_pattern": "("}, r"test pattern '\(':"),
        ({"by": "pattern"}, "--by pattern needs --test-pattern"),
        ({"by": "speaker", "test_fraction": 1.5}, "test fraction must be between 0 and 1"),
    ],
)
def test_split_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    src = _data_dir(tmp_path, {"ann": 2, "bob": 2})
    with pytest.raises(DataDirError, match=message):
        split_data_dir(src, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_split_of_one_speaker_is_refused(tmp_path: Path) -> None:
    src = _data_dir(tmp_path, {"solo": 3})
    with pytest.raises(DataDirError, match="one speaker cannot be split"):
        split_data_dir(src, tmp_path / "out")


def test_subset_keeps_only_the_recordings_its_segments_use(tmp_path: Path) -> None:
    for name in ("r1", "r2"):
        sf.write(tmp_path / f"{name}.wav", np.zeros(RATE, dtype=np.float32), RATE, subtype="PCM_16")
    src = write_data_dir(
        tmp_path / "src",
        {"r1": str(tmp_path / "r1.wav"), "r2": str(tmp_path / "r2.wav")},
        {"a-1": "X", "a-2": "Y", "b-1": "Z"},
        {"a-1": "a", "a-2": "a", "b-1": "b"},
        segments={"a-1": Segment("r1", 0.0, 0.5), "a-2": Segment("r1", 0.5, -1), "b-1": Segment("r2", 0.0, 1.0)},
    )
    sub = subset_data_dir(src, ["a-2", "a-1"], tmp_path / "sub")
    assert sub.wav_scp == {"r1": str(tmp_path / "r1.wav")}
    assert (tmp_path / "sub" / "segments").read_text() == "a-1 r1 0.000 0.500\na-2 r1 0.500 -1\n"
    with pytest.raises(DataDirError, match=r"1 utterances are not in the data dir, e.g. 'zz'"):
        subset_data_dir(src, ["a-1", "zz"], tmp_path / "bad")
