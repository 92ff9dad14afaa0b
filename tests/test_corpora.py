"""Tests of corpus preparation against the shared corpora (read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.cli import main
from asr.data.corpora import prepare_an4, prepare_yesno
from asr.data.corpora.an4 import read_transcription
from asr.data.datadir import DataDir, validate_data_dir
from asr.errors import DataDirError

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
if not CORPORA.is_dir():
    CORPORA = Path("/work/shared/corpora")


def _corpus(name: str) -> Path:
    path = CORPORA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


def test_yesno(tmp_path: Path) -> None:
    corpus = _corpus("yesno")
    dirs = prepare_yesno(corpus, tmp_path)
    train, test = DataDir.load(dirs["train"]), DataDir.load(dirs["test"])
    assert len(train.utt2spk) == 30 and len(test.utt2spk) == 30
    assert train.utterances[0] == "0_0_0_0_1_1_1_1"
    assert test.utterances[0] == "0_0_0_1_0_0_0_1"
    assert train.text["0_0_0_0_1_1_1_1"] == "NO NO NO NO YES YES YES YES"
    assert not set(train.utt2spk) & set(test.utt2spk)
    assert Path(train.wav_scp["0_0_0_0_1_1_1_1"]).is_absolute()
    assert train.utt2dur is not None and all(v > 0 for v in train.utt2dur.values())
    validate_data_dir(dirs["test"], check_audio=True)


def test_an4(tmp_path: Path) -> None:
    corpus = _corpus("an4")
    dirs = prepare_an4(corpus, tmp_path)
    train, test = DataDir.load(dirs["train"]), DataDir.load(dirs["test"])
    assert len(train.utt2spk) == 948 and len(test.utt2spk) == 130
    assert train.text["fash-an251-fash-b"] == "YES"
    assert train.utt2spk["fash-an251-fash-b"] == "fash"
    assert train.wav_scp["fash-an251-fash-b"].endswith("wav/an4_clstk/fash/an251-fash-b.sph")
    assert test.text["fcaw-an406-fcaw-b"] == "RUBOUT G M E F THREE NINE"
    assert not any("<s>" in t or "</s>" in t for t in list(train.text.values()) + list(test.text.values()))
    assert len(train.spk2utt) == 74 and len(test.spk2utt) == 10


def test_an4_transcription_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.transcription"
    path.write_text("<s> YES </s> (an1-a-b)\nNO GO (an2-a-b)\n")
    assert read_transcription(path) == {"an1-a-b": "YES", "an2-a-b": "NO GO"}
    path.write_text("<s> YES </s> (an1-a-b)\n<s> NO </s> an2-a-b\n")
    with pytest.raises(DataDirError, match=r"t\.transcription:2:"):
        read_transcription(path)
    path.write_text("<s> </s> (an1-a-b)\n")
    with pytest.raises(DataDirError, match=r"t\.transcription:1: empty"):
        read_transcription(path)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    corpus = _corpus("yesno")
    assert main(["prepare-data", "yesno", str(corpus), str(tmp_path / "y")]) == 0
    assert main(["prepare-data", "validate", str(tmp_path / "y" / "train")]) == 0
    (tmp_path / "y" / "train" / "text").write_text("zzz NO\n")
    assert main(["prepare-data", "validate", str(tmp_path / "y" / "train")]) == 1
    assert "text" in capsys.readouterr().err


def test_missing_corpus(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match="nope"):
        prepare_yesno(tmp_path / "nope", tmp_path / "out")
    with pytest.raises(DataDirError, match="nope"):
        prepare_an4(tmp_path / "nope", tmp_path / "out")
