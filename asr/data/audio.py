"""Reading audio files into float32 tensors.

All audio is read with soundfile (WAV, FLAC, NIST SPHERE PCM, ...).  torchaudio
is only used for resampling: its own I/O is deprecated in 2.8.  Nothing is ever
run through a shell, so Kaldi ``wav.scp`` pipe entries (``cmd ... |``) are
refused.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.errors import AudioError
from asr.fileio import PathLike

log = logging.getLogger("asr.data.audio")


def _check_path(path: PathLike) -> Path:
    """Refuses pipes and missing or empty files before soundfile sees them."""
    text = str(path).strip()
    if text.endswith("|") or text.startswith("|"):
        raise AudioError(f"{text}: pipes in wav.scp are not supported (give a plain audio file path)")
    p = Path(text)
    if not p.is_file():
        raise AudioError(f"{p}: no such audio file")
    try:
        size = p.stat().st_size
    except OSError as e:
        raise AudioError(f"{p}: cannot read ({e.strerror})") from None
    if size == 0:
        raise AudioError(f"{p}: audio file is empty (0 bytes)")
    return p


def _first_line(e: Exception) -> str:
    msg = str(e).strip()
    return msg.splitlines()[0][:200] if msg else type(e).__name__


#: Input sample rates accepted, in Hz: below or above these a header is taken for corrupt.
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000
#: Largest polyphase kernel (output phases x input taps, float32) resampling may build.
#: torchaudio's kernel has (new / g) x (orig / g) entries for g = gcd(orig, new), so
#: an odd rate such as 44101 Hz would need gigabytes.
MAX_RESAMPLE_KERNEL = 10_000_000
#: Odd rates are rounded to a multiple of this many Hz (a pitch change under 0.1%).
RATE_ROUNDING_HZ = 50


def resample(wave: "torch.Tensor", rate: int, sample_rate: int, name: str) -> "torch.Tensor":
    """Resamples 1-D audio from ``rate`` to ``sample_rate`` Hz with a warning naming ``name``.

    A rate whose ratio to ``sample_rate`` reduces to large integers is first
    rounded to a multiple of :data:`RATE_ROUNDING_HZ`, with a warning, so the
    kernel stays under :data:`MAX_RESAMPLE_KERNEL` entries.

    Raises:
      AudioError: if ``rate`` is outside ``MIN_SAMPLE_RATE..MAX_SAMPLE_RATE``.
    """
    import torchaudio.functional as AF

    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(f"{name}: sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz")
    g = math.gcd(rate, sample_rate)
    if (rate // g) * (sample_rate // g) > MAX_RESAMPLE_KERNEL:
        rounded = max(RATE_ROUNDING_HZ, round(rate / RATE_ROUNDING_HZ) * RATE_ROUNDING_HZ)
        log.warning("%s: %d Hz treated as %d Hz for resampling", name, rate, rounded)
        rate, g = rounded, math.gcd(rounded, sample_rate)
    log.warning("%s: resampling from %d Hz to %d Hz", name, rate, sample_rate)
    return AF.resample(wave, rate // g, sample_rate // g)


def audio_info(path: PathLike) -> sf._SoundFileInfo:
    """Returns soundfile's header information of an audio file.

    Raises:
      AudioError: if the file is missing, empty, not audio or unsupported.
    """
    p = _check_path(path)
    try:
        info = sf.info(str(p))
    except (RuntimeError, OSError, ValueError, TypeError) as e:
        # LibsndfileError is a RuntimeError: not audio, truncated header,
        # unsupported encoding (e.g. shorten-compressed SPHERE).
        raise AudioError(f"{p}: not a readable audio file ({_first_line(e)})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(f"{p}: audio file holds no samples")
    return info


def audio_duration(path: PathLike) -> float:
    """Returns the duration of an audio file in seconds (from its header).

    Raises:
      AudioError: as :func:`audio_info`.
    """
    info = audio_info(path)
    return info.frames / info.samplerate


def load_audio(
    path: PathLike, sample_rate: int, start: float = 0.0, end: float | None = None
) -> torch.Tensor:
    """Reads an audio file (or a segment of it) as mono float32 samples.

    Multi-channel audio is averaged to mono and audio at another rate is
    resampled to ``sample_rate``; both are reported with ``logger.warning``
    naming the file.  Integer PCM gives values in [-1, 1); float files are
    clipped to [-1, 1] (with a warning) so the contract holds for every input.

    Args:
      path: An audio file in a format soundfile reads (WAV, FLAC, SPHERE PCM).
      sample_rate: Wanted sample rate in Hz.
      start: Segment start in seconds (Kaldi ``segments``), in the file's
        own time base.
      end: Segment end in seconds; ``None`` or a negative value (Kaldi's
        ``-1``) means the end of the file.

    Returns:
      A 1-D float32 tensor.

    Raises:
      AudioError: naming the file if it is a pipe, missing, empty, not audio,
        has a truncated header, an unsupported encoding (shorten SPHERE), a
        segment outside the file, no samples, or NaN/Inf samples (raised,
        not repaired: such a file is broken and silently zeroing it would
        hide that).
    """
    info = audio_info(path)
    p = Path(str(path).strip())
    rate = info.samplerate
    first = int(round(start * rate))
    last = info.frames if end is None or end < 0 else min(int(round(end * rate)), info.frames)
    if first < 0 or first >= last:
        raise AudioError(
            f"{p}: segment {start:.3f}-{end} s is outside the audio ({info.frames / rate:.3f} s)"
        )
    try:
        data = sf.read(str(p), start=first, stop=last, dtype="float32", always_2d=True)[0]
    except (RuntimeError, OSError, ValueError, TypeError) as e:
        raise AudioError(f"{p}: cannot read audio ({_first_line(e)})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{p}: audio file holds no samples (truncated?)")
    if not np.isfinite(data).all():
        raise AudioError(f"{p}: audio holds NaN or Inf samples")
    if data.shape[1] > 1:
        log.warning("%s: %d channels, averaging to mono", p, data.shape[1])
    import torch  # imported here so data preparation runs without loading torch

    wave = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1, dtype=np.float32)))
    if rate != sample_rate:
        wave = resample(wave, rate, sample_rate, str(p))
    peak = float(wave.abs().max())
    if peak > 1.0:
        # Float WAVs may exceed full scale and resampling can overshoot a bit.
        if peak > 1.01:
            log.warning("%s: samples exceed full scale (peak %.3f), clipping", p, peak)
        wave = wave.clamp_(-1.0, 1.0)
    return wave.to(torch.float32)


def load_audio_segment(path: PathLike, sample_rate: int, start: float, end: float) -> torch.Tensor:
    """Reads the part ``[start, end)`` seconds of an audio file; see :func:`load_audio`."""
    return load_audio(path, sample_rate, start=start, end=end)
