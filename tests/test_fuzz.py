"""Fuzzing audio input: only AsrError subclasses (or success), never another exception."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asr.data.audio import load_audio
from asr.errors import AsrError
from reliability_fixtures import sphere_header, yesno_wavs

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

_GOOD_WAV = yesno_wavs(1)[0].read_bytes()


@st.composite
def audio_bytes(draw):
    """Random bytes, or a valid header (WAV/SPHERE) followed by random or cut content."""
    kind = draw(st.sampled_from(["random", "wav_prefix", "wav_mutated", "sphere"]))
    if kind == "random":
        return draw(st.binary(max_size=2048))
    if kind == "wav_prefix":
        return _GOOD_WAV[: draw(st.integers(0, 400))]
    if kind == "wav_mutated":
        data = bytearray(_GOOD_WAV[:3000])
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, 80))
            data[i] = draw(st.integers(0, 255))
        return bytes(data)
    return sphere_header(draw(st.integers(-5, 10**6)), draw(st.sampled_from([8000, 16000, 0]))) + draw(
        st.binary(max_size=512))


@pytest.fixture(scope="module")
def recognizer(tiny):
    from asr.recognizer import Recognizer

    return Recognizer.from_dir(tiny.model_dir)


def _only_asr_errors(fn):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()
    except AsrError as e:
        assert str(e) and "\n" not in str(e)
        return None


@pytest.mark.parametrize("suffix", [".wav", ".sph", ".flac"])
@FUZZ
@given(data=audio_bytes())
def test_load_audio_random_bytes(tmp_path, suffix, data):
    p = tmp_path / f"fuzz{suffix}"
    p.write_bytes(data)
    wave = _only_asr_errors(lambda: load_audio(p, 8000))
    if wave is not None:
        assert wave.ndim == 1 and wave.numel() > 0 and bool(wave.abs().max() <= 1.0)


@pytest.mark.parametrize("suffix", [".wav", ".sph"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=audio_bytes())
def test_transcribe_random_bytes(tmp_path, recognizer, suffix, data):
    p = tmp_path / f"fuzz{suffix}"
    p.write_bytes(data)
    result = _only_asr_errors(lambda: recognizer.transcribe(p))
    if result is not None:
        assert isinstance(result.text, str)


_floats = st.floats(allow_nan=True, allow_infinity=True, width=32)


@st.composite
def arrays(draw):
    shape = draw(st.sampled_from(["1d", "2d", "3d", "scalar"]))
    n = draw(st.integers(0, 3000))
    if draw(st.booleans()):
        # mostly tame values with a few extremes sprinkled in
        x = np.full(n, draw(st.floats(-1, 1, width=32)), dtype=np.float32)
        for _ in range(draw(st.integers(0, 3))):
            if n:
                x[draw(st.integers(0, n - 1))] = draw(_floats)
    else:
        x = np.array(draw(st.lists(_floats, max_size=64)), dtype=np.float32)
    if shape == "2d" and x.size:
        c = draw(st.integers(1, 3))
        x = np.resize(x, (c, max(1, x.size // c)))
        if draw(st.booleans()):
            x = x.T
    elif shape == "3d":
        x = x.reshape(1, 1, -1)
    elif shape == "scalar":
        x = np.float32(x[0] if x.size else 0.0)
    return x


@FUZZ
@given(x=arrays(), rate=st.sampled_from([8000, 16000, 4000, 0, -8000]))
def test_transcribe_random_arrays(recognizer, x, rate):
    result = _only_asr_errors(lambda: recognizer.transcribe(x, rate))
    if result is not None:
        assert isinstance(result.text, str)


@pytest.mark.parametrize("x", [np.zeros(0, np.float32), np.full(8000, np.nan, np.float32),
                               np.full(8000, 1e30, np.float32), np.zeros((2, 8000), np.float32)])
def test_transcribe_edge_arrays(recognizer, x):
    _only_asr_errors(lambda: recognizer.transcribe(x, 8000))
