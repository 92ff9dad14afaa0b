"""Bad audio through load_audio, ``asr compute-feats`` and ``asr transcribe``.

Each bad file gives a one-line ``asr <cmd>: error: ...`` naming the file and
exit status 1 (no traceback, no half-written outputs); convertible input
(stereo, another sample rate) is converted with a warning.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.data.audio import load_audio
from asr.errors import AudioError
from reliability_fixtures import (
    AN4, FBANK, assert_cli_error, run_cli, sphere_header, tone, write_sphere, write_wav, yesno_wavs,
)

RATE = 8000  # the tiny yesno model's rate


def _bad_files(d: Path) -> dict[str, Path]:
    """Unreadable audio files, by case name."""
    d.mkdir(parents=True, exist_ok=True)
    good = yesno_wavs(1)[0].read_bytes()
    files = {
        "missing": d / "missing.wav",
        "zero_bytes": d / "zero.wav",
        "truncated_wav_header": d / "trunc.wav",
        "truncated_sphere_header": d / "trunc.sph",
        "text_as_wav": d / "text.wav",
        "unsupported_format": d / "shorten.sph",
        "nan_samples": d / "nan.wav",
        "inf_samples": d / "inf.wav",
    }
    files["zero_bytes"].write_bytes(b"")
    files["truncated_wav_header"].write_bytes(good[:30])
    files["truncated_sphere_header"].write_bytes(sphere_header(16000)[:200])
    files["text_as_wav"].write_text("this is not audio\n" * 20, encoding="utf-8")
    # Shorten-compressed SPHERE (as some LDC corpora ship): libsndfile cannot read it.
    files["unsupported_format"].write_bytes(sphere_header(16000, coding="pcm,embedded-shorten-v2.00") + b"\x01" * 4000)
    x = tone(0.5, RATE)
    x[100] = np.nan
    write_wav(files["nan_samples"], x, RATE, "FLOAT")
    y = tone(0.5, RATE)
    y[50] = np.inf
    write_wav(files["inf_samples"], y, RATE, "FLOAT")
    return files


BAD_CASES = ["missing", "zero_bytes", "truncated_wav_header", "truncated_sphere_header", "text_as_wav",
             "unsupported_format", "nan_samples", "inf_samples"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_load_audio_refuses(tmp_path, case):
    path = _bad_files(tmp_path)[case]
    with pytest.raises(AudioError, match=str(path.name)):
        load_audio(path, RATE)


def test_stereo_downmixed_with_warning(tmp_path, caplog):
    p = write_wav(tmp_path / "stereo.wav", tone(0.5, RATE, channels=2), RATE)
    with caplog.at_level(logging.WARNING, logger="asr"):
        wave = load_audio(p, RATE)
    assert wave.ndim == 1 and wave.numel() == RATE // 2
    assert any("2 channels" in r.getMessage() and "stereo.wav" in r.getMessage() for r in caplog.records)


def test_8khz_to_16khz_resampled_with_warning(tmp_path, caplog):
    p = write_wav(tmp_path / "low.wav", tone(0.5, 8000), 8000)
    with caplog.at_level(logging.WARNING, logger="asr"):
        wave = load_audio(p, 16000)
    assert wave.numel() == 8000
    assert any("resampling from 8000 Hz to 16000 Hz" in r.getMessage() for r in caplog.records)


def test_absurd_header_rate_is_an_error_not_an_allocation(tmp_path):
    """A corrupt header claiming 264 MHz once made resampling ask for gigabytes (found by fuzzing)."""
    p = write_sphere(tmp_path / "fast.sph", tone(0.25, 16000), 264_242_161)
    with pytest.raises(AudioError, match=r"fast\.sph: sample rate 264242161 Hz is outside 1000-384000 Hz"):
        load_audio(p, 8000)


def test_odd_rate_is_rounded_before_resampling(tmp_path, caplog):
    """44101 Hz and 16000 Hz share no factor: resampled as 44100 Hz, with a warning, in bounded memory."""
    p = write_wav(tmp_path / "odd.wav", tone(0.5, 44101), 44101)
    with caplog.at_level(logging.WARNING, logger="asr"):
        wave = load_audio(p, 16000)
    assert abs(wave.numel() - 8000) <= 1
    assert "odd.wav: 44101 Hz treated as 44100 Hz for resampling" in caplog.text


def test_sphere_pcm_reads(tmp_path):
    p = write_sphere(tmp_path / "ok.sph", tone(0.25, 16000), 16000)
    assert load_audio(p, 16000).numel() == 4000


# ---------------------------------------------------------------------------
# asr compute-feats


def _one_utt_dir(d: Path, audio: Path) -> Path:
    from asr.data.datadir import write_data_dir

    write_data_dir(d, {"u-1": str(audio)}, {"u-1": "YES"}, {"u-1": "u"})
    return d


@pytest.mark.parametrize("case", BAD_CASES)
def test_compute_feats_refuses(tmp_path, capsys, case):
    audio = _bad_files(tmp_path / "audio")[case]
    data = _one_utt_dir(tmp_path / "data", audio)
    rc, _, err = run_cli(capsys, "compute-feats", data, tmp_path / "fbank", "--config", FBANK)
    assert_cli_error(rc, err, "compute-feats", audio.name)
    assert not (data / "feats.scp").exists() and not (data / "cmvn.scp").exists()
    assert not list((tmp_path / "fbank").glob("*.ark"))
    assert not list((tmp_path / "fbank").glob("*.tmp")) and not list(data.glob(".*.tmp"))


def test_compute_feats_too_short_10ms(tmp_path, capsys):
    audio = write_wav(tmp_path / "short.wav", tone(0.01, RATE), RATE)
    data = _one_utt_dir(tmp_path / "data", audio)
    rc, _, err = run_cli(capsys, "compute-feats", data, tmp_path / "fbank", "--config", FBANK)
    line = assert_cli_error(rc, err, "compute-feats", "short.wav")
    assert "too short" in line
    assert not (data / "feats.scp").exists()


def test_compute_feats_converts_stereo_and_rate(tmp_path, capsys, caplog):
    """Stereo 16 kHz into an 8 kHz config: downmixed and resampled, with warnings."""
    audio = write_wav(tmp_path / "st16.wav", tone(1.0, 16000, channels=2), 16000)
    data = _one_utt_dir(tmp_path / "data", audio)
    rc, out, err = run_cli(capsys, "compute-feats", data, tmp_path / "fbank", "--config", FBANK)
    assert rc == 0, err
    assert "st16.wav: 2 channels, averaging to mono" in caplog.text
    assert "st16.wav: resampling from 16000 Hz to 8000 Hz" in caplog.text
    assert (data / "utt2num_frames").read_text().split() == ["u-1", "98"]


# ---------------------------------------------------------------------------
# asr transcribe


@pytest.mark.parametrize("case", BAD_CASES)
def test_transcribe_refuses(tmp_path, capsys, tiny, case):
    audio = _bad_files(tmp_path)[case]
    good = yesno_wavs(1)[0]
    rc, out, err = run_cli(capsys, "transcribe", "--model-dir", tiny.model_dir, audio, good)
    assert_cli_error(rc, err, "transcribe", audio.name)
    # The good file after the bad one is still transcribed.
    assert out.startswith(f"{good}\t")
    assert str(audio) not in out


def test_transcribe_short_silence_stereo_and_rate(tmp_path, capsys, caplog, tiny):
    files = [
        write_wav(tmp_path / "10ms.wav", tone(0.01, RATE), RATE),
        write_wav(tmp_path / "silence.wav", np.zeros(RATE, dtype=np.float32), RATE),
        write_wav(tmp_path / "stereo.wav", tone(1.0, RATE, channels=2), RATE),
        write_wav(tmp_path / "16k.wav", tone(1.0, 16000), 16000),
    ]
    rc, out, err = run_cli(capsys, "transcribe", "--model-dir", tiny.model_dir, *files)
    # 10 ms is shorter than one 25 ms frame: a clear error; the rest are transcribed.
    assert_cli_error(rc, err, "transcribe", "10ms.wav", "too short")
    lines = dict(ln.split("\t", 1) for ln in out.splitlines())
    assert set(lines) == {str(f) for f in files[1:]}
    assert "stereo.wav: 2 channels, averaging to mono" in caplog.text
    assert "16k.wav: resampling from 16000 Hz to 8000 Hz" in caplog.text
    assert "Traceback" not in err


def test_transcribe_silence_alone_succeeds(tmp_path, capsys, tiny):
    silence = write_wav(tmp_path / "silence.wav", np.zeros(RATE * 2, dtype=np.float32), RATE)
    rc, out, err = run_cli(capsys, "transcribe", "--model-dir", tiny.model_dir, silence)
    assert rc == 0, err
    assert out.startswith(f"{silence}\t")


@pytest.mark.skipif(not (AN4 / "wav").is_dir(), reason="AN4 corpus not available")
def test_transcribe_16khz_sphere_to_8khz_model(capsys, caplog, tiny):
    sph = next((AN4 / "wav" / "an4test_clstk").rglob("*.sph"))
    rc, out, err = run_cli(capsys, "transcribe", "--model-dir", tiny.model_dir, sph)
    assert rc == 0, err
    assert "resampling from 16000 Hz to 8000 Hz" in caplog.text
