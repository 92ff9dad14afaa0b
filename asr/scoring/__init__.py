"""Word error rate scoring (Kaldi ``compute-wer`` compatible)."""

from asr.scoring.wer import (
    ScoreResult,
    UttScore,
    format_details,
    format_wer,
    normalize_text,
    score,
)

__all__ = [
    "ScoreResult",
    "UttScore",
    "format_details",
    "format_wer",
    "normalize_text",
    "score",
]
