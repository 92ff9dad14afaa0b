"""Audio I/O, Kaldi data directories and corpus preparation."""

from asr.data.audio import audio_duration, audio_info, load_audio, load_audio_segment
from asr.data.datadir import DataDir, Segment, validate_data_dir, write_data_dir

__all__ = [
    "DataDir",
    "Segment",
    "audio_duration",
    "audio_info",
    "load_audio",
    "load_audio_segment",
    "validate_data_dir",
    "write_data_dir",
]
