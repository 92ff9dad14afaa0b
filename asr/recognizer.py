"""The Python API: transcribe audio files or arrays with a trained model dir.

Example::

    import asr
    rec = asr.Recognizer.from_dir("recipes/an4/exp/cnn_lstm")
    result = rec.transcribe("an406-fcaw-b.sph")
    print(result.text)
    for w in result.words:
        print(w.word, w.start, w.duration, w.confidence)

    stream = rec.stream()              # streaming models (type: lstm or tdnn, sliding CMVN)
    for chunk in chunks:               # float samples at the model's rate
        for seg in stream.accept(chunk, 16000):
            print(seg.start, seg.end, seg.text)
        print(stream.partial().text)
    for seg in stream.finish():
        print(seg.start, seg.end, seg.text)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.config import load_config, resolve_config
from asr.data.audio import resample
from asr.decoding.ctm import TimedWord
from asr.decoding.decoder import Decoder
from asr.decoding.search import decode_config
from asr.errors import AudioError
from asr.features.extract import compute_utterance_features
from asr.features.session_cmvn import TranscriptionCmvn

log = logging.getLogger("asr.recognizer")


@dataclass
class Transcript:
    """A recognition result."""

    text: str
    words: list[TimedWord]


class Recognizer:
    """Feature extraction + acoustic model + HLG search, for whole files.

    CMVN (``cmvn``, asr/features/session_cmvn.py) defaults to the model's
    own: per utterance (the file's own statistics), per speaker (statistics
    of the files transcribed since :meth:`new_speaker`, or statistics given
    to it), sliding window, or none.  :meth:`transcribe` decodes a file in one
    pass, its memory linear in the length; :meth:`stream` decodes streaming
    models with bounded memory, cutting segments at endpoints.
    """

    def __init__(self, decoder: Decoder, cmvn: str | None = None, cmvn_stats=None):
        self.decoder = decoder
        self.feature_config = decoder.md.feature_config
        self.sample_rate = int(self.feature_config["sample_rate"])
        self.norm_vars = bool(self.feature_config.get("norm_vars", False))
        self.cmvn = TranscriptionCmvn(self.feature_config, cmvn, cmvn_stats, str(decoder.md.path))
        #: Carry i-vector statistics from one transcribe call to the next (one speaker); see ivectors().
        self.ivector_session = False
        self.ivector_state = None
        self._stream_graph = None

    @classmethod
    def from_dir(
        cls, model_dir: str | Path, graph_dir: str | Path | None = None, config: str | Path | None = None,
        device: str = "cpu", cmvn: str | None = None, cmvn_stats=None,
    ) -> "Recognizer":
        """Loads a model dir (and its ``graph/HLG.pt``, or ``graph_dir``'s).

        ``config``: the decode config; default: the model dir's ``decode.yaml`` if it has one, else the
        packaged one (:func:`asr.model_dir.default_decode_config`).
        ``cmvn`` and ``cmvn_stats``: see :class:`asr.features.session_cmvn.TranscriptionCmvn`.
        """
        from asr.model_dir import default_decode_config

        config = default_decode_config(model_dir, config)
        cfg = decode_config(load_config(config), str(resolve_config(config)))
        decoder = Decoder.from_model_dir(model_dir, cfg.search, graph_dir, cfg.use_priors, device, cfg.prior_scale)
        return cls(decoder, cmvn, cmvn_stats)

    def set_ivector_session(self, on: bool = True) -> None:
        """For a model with i-vectors: treat the files of successive :meth:`transcribe` calls as one speaker's.

        On, each file's online i-vector continues from the statistics of the
        files before it (Kaldi's online2 speaker adaptation); off (the
        default), every file starts afresh.  Either way the history is forgotten.
        """
        self.ivector_session, self.ivector_state = on, None

    def ivectors(self, raw_feats: torch.Tensor) -> torch.Tensor | None:
        """Online i-vectors (K, D) of a file's raw (T, F) features; None for a model without i-vectors.

        Cumulative over the file, one row per period (as ``asr decode``
        computes them), and over the earlier files of an i-vector session.
        """
        extractor = self.decoder.md.ivector
        if extractor is None:
            return None
        from asr.adapt.online import online_ivectors

        rows, state = online_ivectors(extractor, raw_feats, self.ivector_state if self.ivector_session else None)
        if self.ivector_session:
            self.ivector_state = state
        return rows

    def new_speaker(self, stats=None, key: str | None = None) -> None:
        """Starts a new per-speaker CMVN session; ``stats`` (an array, a cmvn.scp with ``key``, a stats
        file, a data dir) are then used for every file instead of the session's own statistics."""
        self.cmvn.new_speaker(stats, key)

    def stream(self, endpoint: str | Path = "endpoint.yaml", search_interval: float = 0.2):
        """A new :class:`asr.decoding.streaming.RecognitionStream` (``accept``, ``partial``, ``finish``).

        Args:
          endpoint: Endpoint rules (a bare name: the packaged asr/conf/endpoint.yaml).
          search_interval: Seconds of network output searched at a time.

        Raises:
          ModelDirError: for a model that cannot stream (BLSTM, CNN-LSTM, look-ahead over 0.2 s).
        """
        from asr.decoding.streaming import RecognitionStream, endpoint_config, partial_final_graph

        if self._stream_graph is None:
            self._stream_graph = partial_final_graph(self.decoder.HLG)
        return RecognitionStream(self.decoder, endpoint_config(str(endpoint)), self._stream_graph, search_interval)

    def features(self, audio: str | Path | np.ndarray | torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """CMVN-normalised features of a file or a waveform.

        Raises:
          AudioError: for unreadable files, or arrays that are empty, not
            1-D/2-D, or hold NaN/Inf.
        """
        return self.cmvn(self.raw_features(audio, sample_rate))

    def raw_features(self, audio: str | Path | np.ndarray | torch.Tensor, sample_rate: int | None = None) -> torch.Tensor:
        """Features of a file or a waveform before CMVN (what the i-vector extractor reads); see :meth:`features`."""
        from asr.data.audio import load_audio

        if isinstance(audio, (str, Path)):
            wave = load_audio(audio, self.sample_rate)
        else:
            wave = self._array(audio, sample_rate)
        feats = compute_utterance_features(wave, self.feature_config)
        if len(feats) == 0:
            raise AudioError(f"{audio if isinstance(audio, (str, Path)) else 'array'}: too short for one feature frame")
        return feats

    def _array(self, audio: np.ndarray | torch.Tensor, sample_rate: int | None) -> torch.Tensor:
        wave = torch.as_tensor(np.asarray(audio, dtype=np.float32) if not isinstance(audio, torch.Tensor) else audio)
        wave = wave.to(torch.float32)
        if wave.ndim == 2:
            # (channels, samples) or (samples, channels): average the shorter axis
            log.warning("array input has %d channels; downmixing to mono", min(wave.shape))
            wave = wave.mean(dim=0 if wave.shape[0] < wave.shape[1] else 1)
        if wave.ndim != 1 or wave.numel() == 0:
            raise AudioError(f"array input: expected a non-empty 1-D waveform, got shape {tuple(wave.shape)}")
        if not torch.isfinite(wave).all():
            raise AudioError("array input: contains NaN or Inf samples")
        if sample_rate is None:
            raise AudioError("array input: sample_rate is required")
        if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
            raise AudioError(f"array input: sample_rate must be a positive integer, got {sample_rate!r}")
        if sample_rate != self.sample_rate:
            wave = resample(wave, int(sample_rate), self.sample_rate, "array input")
        return wave

    def transcribe(
        self, audio: str | Path | np.ndarray | torch.Tensor, sample_rate: int | None = None
    ) -> Transcript:
        """Recognizes one file (WAV/FLAC/SPHERE, any rate) or a waveform array.

        Args:
          audio: A path, or samples in [-1, 1] (1-D, or 2-D multi-channel).
          sample_rate: Required for arrays; ignored for files.
        """
        raw = self.raw_features(audio, sample_rate)
        feats = self.cmvn(raw)
        ivectors = self.ivectors(raw)
        if len(feats) < self.decoder.md.model.subsampling_factor:
            return Transcript("", [])
        name = str(audio) if isinstance(audio, (str, Path)) else "array"
        hyps, _ = self.decoder.decode_batch([name], [feats], None if ivectors is None else [ivectors])
        return Transcript(" ".join(hyps[0].words), hyps[0].timed_words)
