"""Online fbank/MFCC: samples in, feature frames out, equal to the batch features.

:class:`OnlineFeatures` computes each frame with the same
``torchaudio.compliance.kaldi`` function and options as
:func:`asr.features.extract.compute_utterance_features`, on exactly the
samples the batch computation frames: every Kaldi frame depends only on its
own window of samples (dither 0, per-frame DC removal, pre-emphasis and
energy), so a frame is final as soon as its window has arrived.

- ``snip_edges: true`` (Kaldi's default): frame ``i`` covers samples
  ``[i*shift, i*shift + length)``; nothing waits for the end of the stream.
- ``snip_edges: false``: torchaudio reflects the audio at both ends; the left
  reflection is known once ``pad = length//2 - shift//2`` samples have
  arrived, and the last frames (those reaching past the end) come out of
  :meth:`OnlineFeatures.finish`.

Options that need the whole utterance (``subtract_mean``) are refused.
"""

from __future__ import annotations

from typing import Any

import torch

from asr.errors import ConfigError
from asr.features.extract import INT16_SCALE, _kaldi_function, feature_dim, validate_feature_config

#: torchaudio's own conversion of milliseconds to samples (``int(rate * ms * 0.001)``).
MS = 0.001


class OnlineFeatures:
    """Frame-by-frame Kaldi features of a stream of samples.

    Args:
      config: A feature config (``asr/conf/fbank.yaml``); normalisation keys
        (``cmvn``, ``sliding_cmvn``, ...) are ignored here.

    Raises:
      ConfigError: for a bad config, or one that cannot be computed online.
    """

    def __init__(self, config: dict[str, Any]):
        kwargs = dict(validate_feature_config(config))
        if kwargs.get("subtract_mean", False):
            raise ConfigError("feature config: 'subtract_mean' needs the whole utterance; it cannot stream")
        rate = kwargs["sample_frequency"]
        self.shift = int(rate * float(kwargs.get("frame_shift", 10.0)) * MS)
        self.length = int(rate * float(kwargs.get("frame_length", 25.0)) * MS)
        self.snip_edges = bool(kwargs.get("snip_edges", True))
        self.pad = 0 if self.snip_edges else self.length // 2 - self.shift // 2
        if self.pad < 0:
            raise ConfigError("feature config: snip_edges false with frame_shift > frame_length cannot stream")
        kwargs["snip_edges"] = True  # frames are cut from the (virtually padded) stream here
        self._kwargs = kwargs
        self._fn = _kaldi_function(config["type"])
        self.dim = feature_dim(config)
        self.received = 0  # real samples
        self.next_frame = 0
        self._head = torch.zeros(0)  # real samples until the left reflection is known
        self._virtual: torch.Tensor | None = None  # padded stream, from virtual sample _v0
        self._v0 = 0
        self._tail = torch.zeros(0)  # last `length` real samples, for the right reflection
        self.finished = False

    def accept(self, samples: torch.Tensor) -> torch.Tensor:
        """Adds 1-D float samples in [-1, 1]; returns the (n, D) frames now complete."""
        if self.finished:
            raise RuntimeError("OnlineFeatures.accept after finish")
        x = samples.reshape(-1).to(torch.float32) * INT16_SCALE
        self.received += len(x)
        self._tail = torch.cat([self._tail, x])[-self.length:]
        if self._virtual is None:
            self._head = torch.cat([self._head, x])
            if len(self._head) < self.pad or len(self._head) == 0:
                return self._empty()
            # torchaudio's left pad: the first `pad` samples, reversed
            self._virtual = torch.cat([self._head[: self.pad].flip(0), self._head])
            self._head = torch.zeros(0)
        else:
            self._virtual = torch.cat([self._virtual, x])
        if self.received < self.length:  # the batch features of so short an input are empty
            return self._empty()
        return self._frames(self._v0 + len(self._virtual), None)

    def finish(self) -> torch.Tensor:
        """The frames that reach past the end (``snip_edges: false``); the stream ends here."""
        self.finished = True
        if self.received < self.length or self.snip_edges or self._virtual is None:
            return self._empty()
        total = (self.received + self.shift // 2) // self.shift
        end = (total - 1) * self.shift + self.length  # virtual end of the last frame
        need = end - (self.pad + self.received)
        if need > 0:  # torchaudio's right pad: the whole waveform, reversed
            self._virtual = torch.cat([self._virtual, self._tail.flip(0)[:need]])
        return self._frames(self._v0 + len(self._virtual), total)

    def _frames(self, virtual_end: int, total: int | None) -> torch.Tensor:
        """Frames from ``next_frame`` whose windows end by ``virtual_end`` (at most ``total``)."""
        if virtual_end < self.length:
            return self._empty()
        n = (virtual_end - self.length) // self.shift + 1 - self.next_frame
        if total is not None:
            n = min(n, total - self.next_frame)
        if n <= 0:
            return self._empty()
        begin = self.next_frame * self.shift - self._v0
        end = (self.next_frame + n - 1) * self.shift + self.length - self._v0
        feats = self._fn(self._virtual[begin:end].reshape(1, -1), **self._kwargs)
        self.next_frame += n
        drop = self.next_frame * self.shift - self._v0
        self._virtual = self._virtual[drop:]
        self._v0 += drop
        return feats.reshape(n, self.dim).to(torch.float32)

    def _empty(self) -> torch.Tensor:
        return torch.zeros(0, self.dim)
