"""Chunk-by-chunk evaluation of a causal or bounded-look-ahead acoustic model.

A unidirectional LSTM (``type: lstm``) carries its layers' ``(h, c)`` from
chunk to chunk; a TDNN (``type: tdnn``) is evaluated layer by layer, each
layer keeping the input frames its splice still needs, so the left context of
a chunk is never recomputed from scratch and each layer replicates *its own*
first and last frame at the stream's edges, as the offline model does
(:func:`asr.models.base.edge_pad_time`).  The LSTM's strided front end is the
same kind of splice.  The outputs equal the offline forward of the whole
utterance up to float rounding (tests/test_streaming.py).

Look-ahead: an output frame is computed once all the input frames its
splices read have arrived; :func:`lookahead_frames` says how many input
frames past its centre that is.
"""

from __future__ import annotations

import torch
from torch import Tensor

from asr.errors import ModelDirError
from asr.models import TDNN, AcousticModel, LSTMModel
from asr.models.base import SplicedConv1d


class SpliceStream:
    """A :class:`SplicedConv1d` over a stream of (C, n) chunks.

    Output frame ``t`` reads input frames ``t * stride + offset``, clamped to
    ``[0, T - 1]`` as the offline layer's edge replication does; before the
    stream ends, it is computed only once all of those frames exist.
    """

    def __init__(self, layer: SplicedConv1d):
        self.conv = layer.conv
        self.offsets = layer.offsets
        self.stride = layer.stride
        # A chunk has a handful of output frames: one gathered matmul is several times
        # cheaper than a Conv1d call of that size (oneDNN's per-call setup dominates).
        self.weight = layer.conv.weight.detach().reshape(layer.conv.out_channels, -1).contiguous()
        self.bias = layer.conv.bias.detach() if layer.conv.bias is not None else None
        self._offsets = torch.tensor(self.offsets)
        self.buffer: Tensor | None = None  # input frames buf_start .. received-1
        self.buf_start = 0
        self.received = 0
        self.next_out = 0

    def accept(self, x: Tensor) -> Tensor:
        """Adds (C, n) input frames; returns the (C_out, m) outputs now computable."""
        self.buffer = x if self.buffer is None else torch.cat([self.buffer, x], dim=1)
        self.received += x.shape[1]
        last_full = self.received - 1 - self.offsets[-1]  # highest t*stride whose context has arrived
        upto = min(last_full, self.received - 1)
        count = upto // self.stride + 1 if upto >= 0 else 0
        return self._run(count, None)

    def finish(self) -> Tensor:
        """The outputs left at the end of the stream (``ceil(T / stride)`` in all)."""
        return self._run(-(-self.received // self.stride), self.received - 1)

    def _run(self, end_t: int, last: int | None) -> Tensor:
        """Outputs ``next_out .. end_t-1``; ``last`` is the final input frame (None: not known yet)."""
        t0 = self.next_out
        if end_t <= t0 or self.buffer is None:
            return self._empty()
        pos = (torch.arange(t0, end_t) * self.stride).unsqueeze(1) + self._offsets  # (m, k) input frames
        pos = pos.clamp(min=0)
        if last is not None:
            pos = pos.clamp(max=last)
        frames = self.buffer[:, pos - self.buf_start]  # (C, m, k), flattened as the weight's (C, k)
        y = torch.nn.functional.linear(frames.permute(1, 0, 2).reshape(end_t - t0, -1), self.weight, self.bias).t()
        self.next_out = end_t
        keep = max(0, end_t * self.stride + self.offsets[0])  # first input frame still needed
        if keep > self.buf_start:
            self.buffer = self.buffer[:, keep - self.buf_start:]
            self.buf_start = keep
        return y

    def _empty(self) -> Tensor:
        return torch.zeros(self.conv.out_channels, 0)


class StreamingNetwork:
    """Feeds normalised feature chunks through a model; returns its log-posteriors.

    Raises:
      ModelDirError: for a model that needs the whole utterance (BLSTM,
        CNN-LSTM), naming ``where``.
    """

    def __init__(self, model: AcousticModel, where: str = "model"):
        if model.training:
            raise ValueError("StreamingNetwork needs a model in eval mode")
        self.model = model
        if isinstance(model, LSTMModel):
            if model.lstm.lstm.bidirectional:
                raise ModelDirError(f"{where}: a BLSTM needs the whole utterance; streaming needs type: lstm or tdnn")
            self._splices = [SpliceStream(model.frontend)] if model.frontend is not None else []
            lstm = model.lstm.lstm
            self._state: list[tuple[Tensor, Tensor] | None] = [None] * lstm.num_layers
        elif isinstance(model, TDNN):
            self._splices = [SpliceStream(conv) for conv in model.convs]
        else:
            raise ModelDirError(f"{where}: a '{model.config.get('type')}' model cannot stream (use type: lstm or tdnn)")
        self.frames_out = 0

    def accept(self, feats: Tensor) -> Tensor:
        """(n, F) normalised frames in; (m, num_pdfs) log-posteriors of the output frames now final."""
        return self._forward(feats, final=False)

    def finish(self) -> Tensor:
        """The output frames that waited for the end of the stream."""
        return self._forward(torch.zeros(0, self.model.feat_dim), final=True)

    @torch.no_grad()
    def _forward(self, feats: Tensor, final: bool) -> Tensor:
        x = feats.t().to(torch.float32)  # (F, n)
        if isinstance(self.model, TDNN):
            for splice, norm in zip(self._splices, self.model.norms):
                x = self._layer(splice, x, final)
                x = norm.bn(torch.relu(x).t()).t() if x.shape[1] else torch.zeros(splice.conv.out_channels, 0)
            out = x.t()
        else:
            if self._splices:
                x = torch.relu(self._layer(self._splices[0], x, final))
            out = self._lstm(x.t())
        self.frames_out += out.shape[0]
        if out.shape[0] == 0:
            return torch.zeros(0, self.model.num_pdfs)
        return torch.log_softmax(self.model.output(out), dim=-1)

    @staticmethod
    def _layer(splice: SpliceStream, x: Tensor, final: bool) -> Tensor:
        y = splice.accept(x) if x.shape[1] else splice._empty()
        return torch.cat([y, splice.finish()], dim=1) if final else y

    def _lstm(self, x: Tensor) -> Tensor:
        """(n, in) through the LSTM layers with the state carried over; (n, out)."""
        stack = self.model.lstm
        lstm = stack.lstm
        if x.shape[0] == 0:
            return torch.zeros(0, stack.out_dim)
        y = x.unsqueeze(0)
        for layer in range(lstm.num_layers):
            state = self._state[layer]
            if state is None:
                state = (y.new_zeros(1, 1, lstm.proj_size or lstm.hidden_size), y.new_zeros(1, 1, lstm.hidden_size))
            weights = stack._layer_weights(layer, "")
            # (input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
            y, h, c = torch.lstm(y, state, weights, True, 1, 0.0, False, False, True)
            self._state[layer] = (h, c)
        return y[0]


def lookahead_frames(model: AcousticModel) -> int:
    """Input frames past an output frame's centre that its computation reads (the model's right context)."""
    if isinstance(model, TDNN):
        layers = list(zip(model.convs, model.strides))
    elif isinstance(model, LSTMModel) and model.frontend is not None:
        layers = [(model.frontend, model.frontend.stride)]
    else:
        return 0
    right, scale = 0, 1
    for conv, stride in layers:
        right += max(0, conv.offsets[-1]) * scale
        scale *= stride
    return right
