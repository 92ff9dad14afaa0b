"""The WebSocket protocol of ``asr serve``: frames in, JSON messages out (no server code here).

Client to server:

- binary frames: mono 16-bit little-endian PCM at the model's sample rate
  (the ``ready`` message says which), at most ``max_message_bytes`` each;
- a text frame ``{"type": "end"}``: the audio is over; the server sends the
  last final segments, then ``{"type": "done"}``, and closes.

Server to client (text frames, one JSON object each):

- ``{"type": "ready", "sample_rate": R, "chunk_seconds": c, "low_confidence": t, "max_message_bytes": M}``;
- ``{"type": "partial", "text": ..., "words": [...]}`` when the current
  segment's best hypothesis changes;
- ``{"type": "final", "text": ..., "words": [...], "start": s, "end": e, "endpoint": rule}``
  for each segment cut at an endpoint (times in seconds from the stream's start);
- ``{"type": "error", "message": ...}`` for a refused frame (the session goes on)
  or a refused session (then the socket closes);
- ``{"type": "done"}`` after ``end``.

Each word is ``{"word", "start", "duration", "confidence", "low"}``, ``low``
being ``confidence < low_confidence``.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, Sequence

import numpy as np

from asr.errors import AsrError

#: 16-bit PCM full scale: samples are divided by this to lie in [-1, 1).
PCM_SCALE = 32768.0


class FrameError(AsrError):
    """A frame the server refuses (the session goes on)."""


class TimedWordLike(Protocol):
    word: str
    start: float
    duration: float
    confidence: float


class SegmentLike(Protocol):
    text: str
    words: Sequence[TimedWordLike]
    start: float
    end: float
    endpoint: str | None


def pcm_samples(data: bytes, max_bytes: int) -> np.ndarray:
    """A binary frame of 16-bit little-endian PCM as (n,) float32 samples in [-1, 1).

    Raises:
      FrameError: for an empty frame, an odd byte count or more than ``max_bytes``.
    """
    if len(data) == 0:
        raise FrameError("empty binary frame: expected 16-bit PCM samples")
    if len(data) > max_bytes:
        raise FrameError(f"binary frame of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    if len(data) % 2:
        raise FrameError(f"binary frame of {len(data)} bytes: 16-bit PCM needs an even number of bytes")
    return (np.frombuffer(data, dtype="<i2").astype(np.float32) / PCM_SCALE).astype(np.float32)


def control_message(text: str, max_bytes: int) -> str:
    """The type of a text (control) frame; only ``end`` exists.

    Raises:
      FrameError: for text over ``max_bytes``, JSON garbage, a non-object or an unknown type.
    """
    if len(text.encode("utf-8")) > max_bytes:
        raise FrameError(f"text frame exceeds the limit of {max_bytes} bytes")
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as e:
        raise FrameError(f"text frame is not JSON ({e.msg} at character {e.pos}); "
                         "send audio as binary 16-bit PCM frames and {\"type\": \"end\"} at the end") from None
    if not isinstance(msg, dict):
        raise FrameError(f"text frame must be a JSON object, got {type(msg).__name__}")
    kind = msg.get("type")
    if kind != "end":
        raise FrameError(f"unknown message type {kind!r} (the client sends binary audio and {{\"type\": \"end\"}})")
    return kind


def word_messages(words: Sequence[TimedWordLike], low_confidence: float) -> list[dict[str, Any]]:
    """Words as JSON objects (times rounded to ms, confidences to 3 decimals)."""
    return [{"word": w.word, "start": round(float(w.start), 3), "duration": round(float(w.duration), 3),
             "confidence": round(float(w.confidence), 3), "low": bool(w.confidence < low_confidence)}
            for w in words]


def partial_message(segment: SegmentLike, low_confidence: float) -> dict[str, Any]:
    """The ``partial`` message of the current segment."""
    return {"type": "partial", "text": segment.text, "words": word_messages(segment.words, low_confidence)}


def final_message(segment: SegmentLike, low_confidence: float) -> dict[str, Any]:
    """The ``final`` message of a segment cut at an endpoint."""
    return {"type": "final", "text": segment.text, "words": word_messages(segment.words, low_confidence),
            "start": round(float(segment.start), 3), "end": round(float(segment.end), 3),
            "endpoint": segment.endpoint}


def error_message(message: str) -> dict[str, Any]:
    return {"type": "error", "message": message}
