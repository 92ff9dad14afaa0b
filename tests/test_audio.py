"""Tests of asr.data.audio: formats, conversions and clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.data.audio import audio_duration, load_audio, load_audio_segment
from asr.errors import AudioError


def _tone(n: int = 1600, rate: int = 16000) -> np.ndarray:
    t = np.arange(n) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize(
    "ext,fmt,subtype",
    [("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"), ("sph", "NIST", "PCM_16")],
)
def test_formats_round_trip(tmp_path: Path, ext: str, fmt: str, subtype: str) -> None:
    x = _tone()
    path = tmp_path / f"a.{ext}"
    sf.write(path, x, 16000, format=fmt, subtype=subtype)
    y = load_audio(path, 16000)
    assert y.dtype == torch.float32 and y.ndim == 1 and y.shape[0] == x.shape[0]
    assert float(y.abs().max()) <= 1.0
    np.testing.assert_allclose(y.numpy(), x, atol=1 / 32768 + 1e-6)
    assert audio_duration(path) == pytest.approx(0.1)


def test_stereo_downmix_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    x = _tone()
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([x, np.zeros_like(x)], axis=1), 16000)
    with caplog.at_level(logging.WARNING, logger="asr"):
        y = load_audio(path, 16000)
    assert y.ndim == 1
    np.testing.assert_allclose(y.numpy(), x / 2, atol=1e-4)
    assert any("stereo.wav" in r.getMessage() and "mono" in r.getMessage() for r in caplog.records)


def test_resample_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "r8k.wav"
    sf.write(path, _tone(800, 8000), 8000)
    with caplog.at_level(logging.WARNING, logger="asr"):
        y = load_audio(path, 16000)
    assert y.shape[0] == 1600
    assert any("r8k.wav" in r.getMessage() and "resampl" in r.getMessage() for r in caplog.records)


def test_segment(tmp_path: Path) -> None:
    x = _tone(16000)
    path = tmp_path / "seg.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    y = load_audio_segment(path, 16000, 0.25, 0.5)
    np.testing.assert_array_equal(y.numpy(), x[4000:8000])
    assert load_audio(path, 16000, start=0.5, end=-1).shape[0] == 8000
    with pytest.raises(AudioError, match="seg.wav"):
        load_audio(path, 16000, start=2.0, end=3.0)


def _errors_case(tmp_path: Path, case: str) -> Path:
    path = tmp_path / f"{case}.wav"
    if case == "missing":
        return path
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("this is not audio\n" * 10)
    elif case == "truncated":
        sf.write(tmp_path / "full.wav", _tone(), 16000)
        path.write_bytes((tmp_path / "full.wav").read_bytes()[:20])
    elif case == "shorten":
        # A SPHERE header announcing shorten compression, as some LDC corpora use.
        header = (
            "NIST_1A\n   1024\nsample_count -i 16000\nsample_rate -i 16000\nchannel_count -i 1\n"
            "sample_n_bytes -i 2\nsample_coding -s26 pcm,embedded-shorten-v2.00\n"
            "sample_byte_format -s2 01\nend_head\n"
        ).encode()
        path = tmp_path / "shorten.sph"
        path.write_bytes(header.ljust(1024, b" ") + b"ajkq\x00\x01\x02" * 100)
    elif case == "nan":
        x = _tone()
        x[10] = np.nan
        sf.write(path, x, 16000, subtype="FLOAT")
    return path


@pytest.mark.parametrize("case", ["missing", "empty", "text", "truncated", "shorten", "nan"])
def test_bad_files_raise_naming_file(tmp_path: Path, case: str) -> None:
    path = _errors_case(tmp_path, case)
    with pytest.raises(AudioError) as e:
        load_audio(path, 16000)
    assert path.name in str(e.value)
    assert "\n" not in str(e.value)


def test_pipe_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(AudioError, match="pipes"):
        load_audio(f"touch {marker} |", 16000)
    assert not marker.exists()
