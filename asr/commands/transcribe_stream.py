"""``asr transcribe --stream``: files, or raw PCM from stdin, fed to a streaming recognizer in chunks.

Output, one line per event, tab-separated::

    FILE  partial  TEXT                  (the current segment's hypothesis, when it changes)
    FILE  final    START  END  TEXT      (a segment cut at an endpoint; seconds from the stream's start)

With ``--ctm`` only the final segments' words are printed, as CTM lines with
absolute times.  ``-`` as the file reads 16-bit little-endian mono PCM at
``--raw-rate`` Hz from stdin until it closes.
"""

from __future__ import annotations

import logging
import sys
from typing import BinaryIO, Iterator, TextIO

import numpy as np

from asr.errors import AudioError

log = logging.getLogger("asr.commands.transcribe_stream")

#: 16-bit PCM full scale.
PCM_SCALE = 32768.0


def file_chunks(path: str, rate: int, chunk: float) -> Iterator[np.ndarray]:
    """A file's samples (downmixed to mono) in chunks of ``chunk`` seconds.

    A file at the model's rate is read block by block, so memory stays bounded
    however long it is; one at another rate is read whole and resampled (with
    a warning), as offline transcription does.
    """
    import soundfile as sf

    from asr.data.audio import audio_info, load_audio

    info = audio_info(path)  # one-line errors for missing, empty or corrupt files
    step = max(1, int(round(chunk * rate)))
    if info.samplerate != rate:
        wave = load_audio(path, rate).numpy()
        for i in range(0, len(wave), step):
            yield wave[i:i + step]
        return
    if info.channels > 1:
        log.warning("%s: %d channels, averaging to mono", path, info.channels)
    try:
        with sf.SoundFile(path) as f:
            for block in f.blocks(blocksize=step, dtype="float32", always_2d=True):
                if not np.isfinite(block).all():
                    raise AudioError(f"{path}: audio holds NaN or Inf samples")
                yield np.clip(block.mean(axis=1), -1.0, 1.0)
    except (RuntimeError, OSError) as e:
        raise AudioError(f"{path}: cannot read audio ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def pcm_chunks(stream: BinaryIO, rate: int, chunk: float) -> Iterator[np.ndarray]:
    """16-bit little-endian mono PCM read from ``stream`` in chunks of ``chunk`` seconds, as floats in [-1, 1).

    Raises:
      AudioError: when the input ends inside a sample (an odd number of bytes).
    """
    size = 2 * max(1, int(round(chunk * rate)))
    left = b""
    while True:
        data = stream.read(size - len(left))
        if not data:
            break
        data = left + data
        if len(data) < size:  # a pipe may deliver less than asked for
            left = data
            continue
        left = b""
        yield np.frombuffer(data, dtype="<i2").astype(np.float32) / PCM_SCALE
    if len(left) % 2:
        raise AudioError("stdin: raw PCM ended inside a 16-bit sample (odd number of bytes)")
    if left:
        yield np.frombuffer(left, dtype="<i2").astype(np.float32) / PCM_SCALE


def stream_one(rec, name: str, chunks: Iterator[np.ndarray], rate: int, ctm: bool, out: TextIO) -> None:
    """Feeds one input through a new stream of ``rec``, printing partial and final results as they come."""
    from asr.decoding.ctm import ctm_line

    stream = rec.stream()
    last = ""

    def finals(segments) -> None:
        nonlocal last
        for seg in segments:
            if ctm:
                out.writelines(ctm_line(name, w) for w in seg.words)
            else:
                out.write(f"{name}\tfinal\t{seg.start:.2f}\t{seg.end:.2f}\t{seg.text}\n")
            last = ""

    for samples in chunks:
        finals(stream.accept(samples, rate))
        text = stream.partial().text
        if not ctm and text != last:
            out.write(f"{name}\tpartial\t{text}\n")
            last = text
        out.flush()
    finals(stream.finish())
    out.flush()


def run_stream(rec, files: list[str], chunk: float, raw_rate: int | None, ctm: bool) -> int:
    """``asr transcribe --stream``: each file (or ``-``) in turn; one error line per failed input; exit status."""
    from asr.errors import AsrError, ConfigError

    if chunk <= 0:
        raise ConfigError(f"--chunk must be a positive number of seconds, got {chunk}")
    if files.count("-") > 1:
        raise ConfigError("'-' (stdin) can be given only once")
    if "-" in files and raw_rate is None:
        raise ConfigError("'-' reads raw 16-bit PCM from stdin: give its rate with --raw-rate")
    if raw_rate is not None and "-" not in files:
        raise ConfigError("--raw-rate is the rate of raw PCM on stdin: give '-' as the file")
    if raw_rate is not None and raw_rate != rec.sample_rate:
        raise AudioError(f"stdin: raw PCM at {raw_rate} Hz, but the model takes {rec.sample_rate} Hz "
                         "(resample it first, e.g. sox -r)")
    failed = 0
    for name in files:
        try:
            if name == "-":
                stream_one(rec, name, pcm_chunks(sys.stdin.buffer, raw_rate, chunk), raw_rate, ctm, sys.stdout)
            else:
                stream_one(rec, name, file_chunks(name, rec.sample_rate, chunk), rec.sample_rate, ctm, sys.stdout)
        except AsrError as e:
            print(f"asr transcribe: error: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0
