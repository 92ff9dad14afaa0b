"""Tests of asr.data.datadir: writing, loading and Kaldi-style validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.data.datadir import DataDir, Segment, read_text, validate_data_dir, write_data_dir
from asr.errors import DataDirError


def _good(d: Path) -> DataDir:
    wav = {"spkA-u1": "/a/1.wav", "spkA-u2": "/a/2.wav", "spkB-u1": "/b/1.wav"}
    text = {"spkA-u1": "YES NO", "spkA-u2": "NO", "spkB-u1": "YES"}
    utt2spk = {"spkA-u1": "spkA", "spkA-u2": "spkA", "spkB-u1": "spkB"}
    return write_data_dir(d, wav, text, utt2spk, utt2dur={"spkA-u1": 1.0, "spkA-u2": 2.0, "spkB-u1": 0.5})


def test_write_and_load(tmp_path: Path) -> None:
    dd = _good(tmp_path / "d")
    assert (tmp_path / "d" / "spk2utt").read_text() == "spkA spkA-u1 spkA-u2\nspkB spkB-u1\n"
    again = DataDir.load(tmp_path / "d")
    assert again.text == dd.text and again.spk2utt == {"spkA": ["spkA-u1", "spkA-u2"], "spkB": ["spkB-u1"]}
    assert again.utt2dur["spkA-u2"] == 2.0
    assert again.utterances == ["spkA-u1", "spkA-u2", "spkB-u1"]
    assert again.audio_source("spkB-u1") == ("/b/1.wav", 0.0, None)


def test_segments(tmp_path: Path) -> None:
    d = tmp_path / "d"
    dd = write_data_dir(
        d, {"rec1": "/r.wav"}, {"s-a": "A", "s-b": "B"}, {"s-a": "s", "s-b": "s"},
        segments={"s-a": Segment("rec1", 0.0, 1.5), "s-b": Segment("rec1", 1.5, -1)},
    )
    assert dd.audio_source("s-a") == ("/r.wav", 0.0, 1.5)
    assert dd.audio_source("s-b") == ("/r.wav", 1.5, None)
    (d / "segments").write_text("s-a rec2 0.0 1.5\ns-b rec1 1.5 -1\n")
    with pytest.raises(DataDirError, match=r"segments:1.*rec2"):
        DataDir.load(d)


def _expect(d: Path, pattern: str) -> None:
    with pytest.raises(DataDirError, match=pattern):
        validate_data_dir(d)


def test_duplicate_key(tmp_path: Path) -> None:
    d = tmp_path / "d"
    _good(d)
    (d / "text").write_text("spkA-u1 YES NO\nspkA-u1 NO\nspkB-u1 YES\n")
    _expect(d, r"text:2: duplicate key 'spkA-u1'")


def test_unsorted(tmp_path: Path) -> None:
    d = tmp_path / "d"
    _good(d)
    (d / "wav.scp").write_text("spkA-u2 /a/2.wav\nspkA-u1 /a/1.wav\nspkB-u1 /b/1.wav\n")
    _expect(d, r"wav\.scp:2: not sorted")


def test_c_order_not_locale_order(tmp_path: Path) -> None:
    # In C order uppercase sorts before lowercase; a locale sort would flag this.
    d = tmp_path / "d"
    write_data_dir(d, {"B-1": "/x", "a-1": "/y"}, {"B-1": "X", "a-1": "Y"}, {"B-1": "B", "a-1": "a"})
    assert (d / "utt2spk").read_text().splitlines()[0].startswith("B-1")
    validate_data_dir(d)


def test_missing_from_text(tmp_path: Path) -> None:
    d = tmp_path / "d"
    _good(d)
    (d / "text").write_text("spkA-u1 YES NO\nspkB-u1 YES\n")
    _expect(d, r"text: utterance 'spkA-u2'.*missing")


def test_extra_in_wav_scp(tmp_path: Path) -> None:
    d = tmp_path / "d"
    _good(d)
    (d / "wav.scp").write_text("spkA-u1 /a\nspkA-u2 /b\nspkA-u3 /c\nspkB-u1 /d\n")
    _expect(d, r"wav\.scp:3: utterance 'spkA-u3' is not in .*utt2spk")


def test_empty_transcript(tmp_path: Path) -> None:
    d = tmp_path / "d"
    _good(d)
    (d / "text").write_text("spkA-u1 YES NO\nspkA-u2\nspkB-u1 YES\n")
    _expect(d, r"text:2: empty transcript")


def test_crlf_accepted(tmp_path: Path) -> None:
    d = tmp_path / "d"
    _good(d)
    for name in ("text", "utt2spk", "wav.scp", "spk2utt"):
        p = d / name
        p.write_bytes(p.read_bytes().replace(b"\n", b"\r\n"))
    dd = validate_data_dir(d)
    assert dd.text["spkA-u2"] == "NO"


def test_non_utf8_rejected(tmp_path: Path) -> None:
    d = tmp_path / "d"
    _good(d)
    (d / "text").write_bytes(b"spkA-u1 YES NO\nspkA-u2 N\xe9\nspkB-u1 YES\n")
    _expect(d, r"text:2: .*UTF-8")


def test_speaker_order(tmp_path: Path) -> None:
    d = tmp_path / "d"
    _good(d)
    (d / "utt2spk").write_text("spkA-u1 zed\nspkA-u2 zed\nspkB-u1 amy\n")
    (d / "spk2utt").unlink()
    _expect(d, r"utt2spk:3: speaker 'amy'")


def test_spk2utt_inconsistent(tmp_path: Path) -> None:
    d = tmp_path / "d"
    _good(d)
    (d / "spk2utt").write_text("spkA spkA-u1\nspkB spkB-u1\n")
    _expect(d, r"spk2utt:1: utterances of speaker 'spkA'")


def test_missing_required_file(tmp_path: Path) -> None:
    d = tmp_path / "d"
    _good(d)
    (d / "utt2spk").unlink()
    _expect(d, r"utt2spk: no such file")


def test_check_audio(tmp_path: Path) -> None:
    d = tmp_path / "d"
    ok = tmp_path / "ok.wav"
    sf.write(ok, np.zeros(800, dtype=np.float32), 8000)
    write_data_dir(d, {"a": str(ok), "b": str(tmp_path / "gone.wav")}, {"a": "X", "b": "Y"}, {"a": "a", "b": "b"})
    validate_data_dir(d)  # headers are not opened by default
    with pytest.raises(DataDirError, match=r"wav\.scp:2: .*gone\.wav"):
        validate_data_dir(d, check_audio=True)


def test_read_text_allows_empty_transcripts_and_names_bad_lines(tmp_path):
    p = tmp_path / "text"
    p.write_text("u1 A B\r\nu2\n")
    assert read_text(p) == {"u1": ["A", "B"], "u2": []}
    p.write_text("u1 A\nu1 B\n")
    with pytest.raises(DataDirError, match=r"text:2: duplicate utterance id 'u1'"):
        read_text(p)
