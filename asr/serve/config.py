"""The typed config of ``asr serve`` (defaults here; ``asr/serve/serve.yaml`` repeats them)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from asr.config import check_range, load_config, option, parse_config

#: The packaged default config (package data beside this module).
DEFAULT_CONFIG = "serve.yaml"


@dataclass
class ServeConfig:
    """Limits and display settings of the live demo server (``asr serve --serve-config``)."""

    max_sessions: int = option(4, "WebSocket sessions decoded at once; more are refused with an error message")
    max_message_bytes: int = option(
        64000, "largest audio frame or control message accepted (bytes; 64000 is 2 s of 16 kHz 16-bit PCM)")
    chunk_seconds: float = option(0.1, "seconds of audio the page sends per frame")
    idle_timeout: float = option(30.0, "seconds without a message after which a session is closed")
    low_confidence: float = option(0.5, "words with a confidence below this are marked on the page")
    workers: int = option(1, "threads that run recognition (sessions share them and the one loaded model)")

    def check(self, where: str, prefix: str = "") -> None:
        check_range(where, f"{prefix}max_sessions", self.max_sessions >= 1, "a positive integer", self.max_sessions)
        check_range(where, f"{prefix}max_message_bytes", 1024 <= self.max_message_bytes <= 16 * 2**20,
                    "in 1024..16777216", self.max_message_bytes)
        check_range(where, f"{prefix}chunk_seconds", 0.01 <= self.chunk_seconds <= 1.0, "in [0.01, 1] s",
                    self.chunk_seconds)
        check_range(where, f"{prefix}idle_timeout", self.idle_timeout > 0, "a number > 0", self.idle_timeout)
        check_range(where, f"{prefix}low_confidence", 0.0 <= self.low_confidence <= 1.0, "in [0, 1]",
                    self.low_confidence)
        check_range(where, f"{prefix}workers", 1 <= self.workers <= 64, "in 1..64", self.workers)


def packaged_serve_config() -> Path:
    """The path of the shipped ``serve.yaml``."""
    return Path(str(resources.files("asr.serve").joinpath(DEFAULT_CONFIG)))


def serve_config(path: str | Path | None = None) -> ServeConfig:
    """The checked config of a YAML file (None: the packaged default).

    Raises:
      ConfigError: one line naming the file and the key.
    """
    p = packaged_serve_config() if path is None else Path(path)
    return parse_config(ServeConfig, load_config(p), str(p))
