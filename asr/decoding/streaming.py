"""Streaming recognition: online features and CMVN, a chunked network, incremental HLG search, endpoints.

Audio goes through :class:`asr.features.online.OnlineFeatures`, sliding CMVN
(:class:`asr.features.online_cmvn.SlidingCmvn`), the network chunk by chunk
(:class:`asr.decoding.stream_model.StreamingNetwork`) and
``k2.OnlineDenseIntersecter`` over HLG, every ``search_interval`` seconds of
network output.  Kaldi's endpoint rules (:mod:`asr.decoding.endpoint`) cut
the stream into segments; at each endpoint, and at the maximum segment
length (rule5), the segment's best path becomes a final result and the
search starts again with a new intersecter.  The intersecter's decode state
keeps every frame of its segment, so this restart is what bounds memory on
an endless stream.  The network and the CMVN window run on across segments.

The graph is HLG plus, from every state, an arc to the final state with
score 0 (marked ``real_final = 0``): so the lattice after each chunk holds the
best partial path as well as the best path ending in a real final state, and
their score difference is Kaldi's final relative cost.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import k2
import numpy as np
import torch

from asr.config import load_config, parse_config, resolve_config
from asr.decoding.ctm import TimedWord
from asr.decoding.endpoint import EndpointConfig, endpoint_rule, trailing_silence
from asr.decoding.confidence import mean_frame_posteriors, word_confidences
from asr.decoding.search import PathInfo, SearchConfig, read_paths, words_per_arc
from asr.decoding.stream_model import StreamingNetwork, lookahead_frames
from asr.errors import AudioError, ConfigError, ModelDirError
from asr.features.online import OnlineFeatures
from asr.features.online_cmvn import SlidingCmvn, feature_prior, sliding_config
from asr.lang.k2fsa import dense_fsa_vec
from asr.models.priors import scaled_log_likelihoods

log = logging.getLogger("asr.decoding.streaming")

#: Most look-ahead (model right context plus CMVN window look-ahead) a streaming model may have, in seconds.
MAX_LOOKAHEAD = 0.2
#: Model dirs already warned about streaming with a CMVN they were not trained with.
_WARNED: set[str] = set()


def endpoint_config(path: str = "endpoint.yaml") -> EndpointConfig:
    """The endpoint rules of a YAML file (a bare name: the packaged ``asr/conf/endpoint.yaml``)."""
    return parse_config(EndpointConfig, load_config(path), str(resolve_config(path)))


@dataclass
class Segment:
    """A piece of the stream between endpoints, with absolute times (seconds from the stream's start)."""

    text: str
    words: list[TimedWord]
    start: float
    end: float
    final: bool
    endpoint: str | None = None  # the rule that ended it ("rule2", ...), "end" when the stream ended


def partial_final_graph(HLG: k2.Fsa) -> k2.Fsa:
    """HLG (prepared: arc-sorted, with ``lm_scores``) plus a 0-score final arc from every state, as an FsaVec.

    Arcs get ``real_final``: 1 on HLG's own final arcs, 0 elsewhere.
    """
    arcs = HLG.arcs.values()
    final = HLG.shape[0] - 1
    num = final  # one extra arc from each non-final state
    extra = torch.stack([torch.arange(num, dtype=torch.int32), torch.full((num,), final, dtype=torch.int32),
                         torch.full((num,), -1, dtype=torch.int32), torch.zeros(num, dtype=torch.int32)], dim=1)
    order = torch.sort(torch.cat([arcs[:, 0], extra[:, 0]]), stable=True).indices
    graph = k2.Fsa(torch.cat([arcs, extra])[order])
    graph.scores = torch.cat([HLG.scores, torch.zeros(num)])[order]
    graph.lm_scores = torch.cat([HLG.lm_scores, torch.zeros(num)])[order]
    graph.phones = torch.cat([HLG.phones, torch.full((num,), -1, dtype=HLG.phones.dtype)])[order]
    graph.real_final = torch.cat([(HLG.labels == -1).to(torch.float32), torch.zeros(num)])[order]
    aux = HLG.aux_labels
    if isinstance(aux, k2.RaggedTensor):
        none = k2.RaggedTensor(k2.ragged.create_ragged_shape2(row_splits=torch.zeros(num + 1, dtype=torch.int32)),
                               torch.zeros(0, dtype=torch.int32))
        graph.aux_labels = k2.ragged.cat([aux, none], axis=0).index(order.to(torch.int32), axis=0)[0]
    else:
        graph.aux_labels = torch.cat([aux, torch.zeros(num, dtype=aux.dtype)])[order]
    return k2.create_fsa_vec([k2.arc_sort(graph)])


class SegmentSearch:
    """The incremental search of one segment (a fresh ``k2.OnlineDenseIntersecter`` and decode state)."""

    def __init__(self, graph: k2.Fsa, cfg: SearchConfig):
        self.cfg = cfg
        self.intersecter = k2.OnlineDenseIntersecter(
            graph, 1, cfg.search_beam, cfg.output_beam, cfg.min_active_states, cfg.max_active_states)
        self.state = k2.DecodeStateInfo()
        self.frames = 0  # frames the decode state holds
        self.lattice: k2.Fsa | None = None
        self._best: tuple[PathInfo | None, float] | None = None  # cached until the next decode

    def decode(self, am: torch.Tensor) -> None:
        """Searches (n, S) unscaled acoustic log-likelihoods of the next frames."""
        dense, _ = dense_fsa_vec(self.cfg.acoustic_scale * am.unsqueeze(0), torch.tensor([am.shape[0]]))
        self.lattice, states = self.intersecter.decode(dense, [self.state])
        self.state = states[0]
        self.frames += am.shape[0]
        self._best = None

    def best(self) -> tuple[PathInfo | None, float]:
        """The best path (through a real final state when there is one) and the final relative cost."""
        if self._best is None:
            self._best = self._find_best()
        return self._best

    def _find_best(self) -> tuple[PathInfo | None, float]:
        if self.lattice is None or self.lattice.num_arcs == 0:
            return None, math.inf
        lat = self.lattice
        best = k2.shortest_path(lat, use_double_scores=True)
        if bool((best.real_final[best.labels == -1] > 0).any()):
            return read_paths(best, [self.frames])[0], 0.0  # the best path of all ends in a real final state
        any_end = float(best.scores.double().sum())
        real = lat.clone()
        real.scores = lat.scores.masked_fill((lat.labels == -1) & (lat.real_final == 0), -math.inf)
        real_end = float(real.get_tot_scores(use_double_scores=True, log_semiring=False)[0])
        if not math.isfinite(real_end):  # no real final state within the lattice beam: the partial path
            return read_paths(best, [self.frames])[0], math.inf
        path = read_paths(k2.shortest_path(real, use_double_scores=True), [self.frames])[0]
        return path, max(0.0, any_end - real_end)

    def confidence_lattice(self) -> tuple[k2.Fsa, torch.Tensor] | None:
        """The lattice and its arc scores for word confidences at a cut (None before any search).

        The paths that end at a real final state, when there are any (the
        others get score -inf); else every path, partial ones included. The
        scores are the 1-best's own (graph score plus scaled acoustics, less
        the word penalty) times ``confidence_scale``, as in offline decoding.
        """
        if self.lattice is None or self.lattice.num_arcs == 0:
            return None
        lat = self.lattice  # read only: the scores go out beside it (prune_for_posteriors copies)
        scores = lat.scores - self.cfg.word_penalty * words_per_arc(lat)
        fake_final = (lat.labels == -1) & (lat.real_final == 0)
        if bool(((lat.labels == -1) & (lat.real_final > 0)).any()):
            scores = scores.masked_fill(fake_final, -math.inf)
        # The partial-final graph leaves a final arc on every state; word_confidences prunes
        # the arcs no path uses (asr.decoding.confidence.prune_for_posteriors).
        return lat, self.cfg.confidence_scale * scores


def stream_normaliser(feature_config: dict, dim: int, where: str) -> SlidingCmvn:
    """The sliding CMVN of a model's feature config; other CMVN kinds get the defaults, with a warning."""
    kind = feature_config.get("cmvn") or "per-utterance"
    if kind == "none":
        return _Identity(dim)  # type: ignore[return-value]
    cfg = sliding_config(feature_config, where)
    if kind != "sliding" and where not in _WARNED:
        _WARNED.add(where)  # once per model, not once per stream (a server opens many)
        log.warning("%s was trained with %s CMVN; streaming normalises with a sliding window "
                    "(train with asr compute-feats --cmvn sliding to match)", where, kind)
    norm_vars = bool(feature_config.get("norm_vars", False))
    return SlidingCmvn(cfg, dim, norm_vars, feature_prior(feature_config, dim, where))


class _Identity:
    """No CMVN (a model trained with ``--cmvn none``)."""

    def __init__(self, dim: int):
        self.dim = dim

    def accept(self, feats: torch.Tensor) -> torch.Tensor:
        return feats

    def finish(self) -> torch.Tensor:
        return torch.zeros(0, self.dim)


@dataclass
class StreamStats:
    """What a stream did so far (for tests and benchmarks)."""

    samples: int = 0
    output_frames: int = 0
    searches: int = 0
    segments: int = 0
    max_frames_held: int = 0  # most frames one intersecter's state ever held
    endpoints: dict[str, int] = field(default_factory=dict)


class RecognitionStream:
    """One audio stream: ``accept`` chunks, read ``partial``, ``finish`` at the end.

    Made by :meth:`asr.Recognizer.stream`.  ``accept`` and ``finish`` return
    the segments that became final (cut at endpoints; segments with no words,
    e.g. silence up to rule1, are not returned); ``partial`` is the current
    segment's best path so far.  ``stats`` counts segments, endpoints and the
    most frames an intersecter held.

    Raises:
      ModelDirError: for a model that cannot stream (BLSTM, CNN-LSTM,
        i-vectors, or more than :data:`MAX_LOOKAHEAD` of look-ahead).
    """

    def __init__(self, decoder, endpoint: EndpointConfig, graph: k2.Fsa, search_interval: float = 0.2):
        md = decoder.md
        where = str(md.path)
        if getattr(md.model, "ivector_dim", 0):
            raise ModelDirError(f"{where}: a model with i-vectors cannot stream yet")
        self.decoder = decoder
        self.endpoint = endpoint
        self.graph = graph
        fc = md.feature_config
        self.sample_rate = int(fc["sample_rate"])
        self.features = OnlineFeatures(fc)
        self.cmvn = stream_normaliser(fc, self.features.dim, where)
        self.network = StreamingNetwork(md.model, where)
        self.frame_shift = md.frame_shift  # seconds per output frame (kaldi#1184: not per feature frame)
        self._check_lookahead(fc, where)
        self.interval = max(1, round(search_interval / self.frame_shift))
        self.max_frames = max(1, int(endpoint.max_segment() / self.frame_shift))
        lang = md.lang
        names = endpoint.silence_phones if endpoint.silence_phones is not None else lang.silence_phones
        unknown = [p for p in names if p not in lang.phones]
        if unknown:
            raise ConfigError(f"endpoint config: silence phone '{unknown[0]}' is not in {md.path / 'lang'}/phones.txt")
        self.silence = {lang.phones[p] for p in names}
        self.stats = StreamStats()
        self._pending: list[torch.Tensor] = []  # network output not searched yet
        self._post: list[torch.Tensor] = []  # this segment's log-posteriors (for confidences)
        self._search = SegmentSearch(graph, decoder.cfg)
        self._start_frame = 0  # output frame where the segment starts
        self.finished = False

    def _check_lookahead(self, fc: dict, where: str) -> None:
        feat_shift = float(fc.get("frame_shift", 10.0)) / 1000.0
        model_ahead = lookahead_frames(self.network.model) * feat_shift
        cmvn_ahead = self.cmvn.cfg.lookahead() * feat_shift if isinstance(self.cmvn, SlidingCmvn) else 0.0
        self.lookahead = model_ahead + cmvn_ahead
        if self.lookahead > MAX_LOOKAHEAD + 1e-9:
            raise ModelDirError(f"{where}: {self.lookahead:.2f} s of look-ahead (model {model_ahead:.2f} s, "
                                f"CMVN window {cmvn_ahead:.2f} s); streaming allows at most {MAX_LOOKAHEAD} s")

    def accept(self, samples, sample_rate: int) -> list[Segment]:
        """Adds a chunk of 1-D float samples in [-1, 1] at the model's rate; returns segments that ended.

        Raises:
          AudioError: (one line) for another rate, integer samples, more than one
            channel, NaN/Inf, or a chunk after :meth:`finish`.
        """
        wave = self._check_chunk(samples, sample_rate)
        self.stats.samples += len(wave)
        post = self.network.accept(self.cmvn.accept(self.features.accept(wave)))
        return self._add(post, final=False)

    def finish(self) -> list[Segment]:
        """Flushes the look-ahead and ends the stream; returns the last final segments."""
        if self.finished:
            return []
        self.finished = True
        normed = self.cmvn.accept(self.features.finish())
        post = torch.cat([self.network.accept(torch.cat([normed, self.cmvn.finish()])), self.network.finish()])
        return self._add(post, final=True)

    def partial(self) -> Segment:
        """The current segment's best hypothesis so far (not final; empty before any search)."""
        path, _ = self._search.best()
        return self._segment(path, final=False, rule=None)

    def _check_chunk(self, samples, sample_rate) -> torch.Tensor:
        if self.finished:
            raise AudioError("stream: accept() after finish()")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
            raise AudioError(f"stream: sample_rate must be an integer, got {sample_rate!r}")
        if int(sample_rate) != self.sample_rate:
            raise AudioError(f"stream: chunk at {sample_rate} Hz, but the model takes {self.sample_rate} Hz "
                             "(resample the stream first)")
        dtype = samples.dtype if isinstance(samples, (np.ndarray, torch.Tensor)) else None
        if dtype is None:
            raise AudioError(f"stream: expected a numpy array or tensor of samples, got {type(samples).__name__}")
        is_float = dtype.is_floating_point if isinstance(dtype, torch.dtype) else np.issubdtype(dtype, np.floating)
        if not is_float:
            raise AudioError(f"stream: expected float samples in [-1, 1], got {dtype} "
                             "(divide 16-bit PCM by 32768)")
        wave = torch.as_tensor(samples).to(torch.float32)
        if wave.ndim != 1:
            raise AudioError(f"stream: expected 1-D mono samples, got shape {tuple(wave.shape)}")
        if not torch.isfinite(wave).all():
            raise AudioError("stream: chunk contains NaN or Inf samples")
        return wave

    def _add(self, post: torch.Tensor, final: bool) -> list[Segment]:
        """Queues network output; searches it in steps of ``interval`` frames, cutting at endpoints."""
        if post.shape[0]:
            self._pending.append(post)
            self.stats.output_frames += post.shape[0]
        queued = torch.cat(self._pending) if self._pending else torch.zeros(0, self.network.model.num_pdfs)
        done: list[Segment] = []
        pos = 0
        while queued.shape[0] - pos >= self.interval or (final and pos < queued.shape[0]):
            room = self.max_frames - self._search.frames
            step = min(self.interval, queued.shape[0] - pos, room)
            self._step(queued[pos:pos + step])
            pos += step
            seg = self._endpoint()
            if seg is not None and seg.words:
                done.append(seg)
        self._pending = [queued[pos:]] if pos < queued.shape[0] else []
        if final and self._search.frames:
            seg = self._cut("end")
            if seg.words:
                done.append(seg)
        return done

    def _step(self, post: torch.Tensor) -> None:
        am = scaled_log_likelihoods(post, self.decoder.log_priors, 1.0)
        self._search.decode(am)
        self._post.append(post)
        self.stats.searches += 1
        self.stats.max_frames_held = max(self.stats.max_frames_held, self._search.frames)

    def _endpoint(self) -> Segment | None:
        """Cuts the segment if an endpoint rule fires (rule5 at the maximum length)."""
        path, cost = self._search.best()
        frames = self._search.frames
        silence = frames if path is None else trailing_silence(path.phone_starts, frames, self.silence)
        rule = endpoint_rule(self.endpoint, frames, silence, self.frame_shift, cost)
        if rule is None and frames >= self.max_frames:
            rule = "rule5"  # float rounding of the maximum length must not let a segment grow past it
        return None if rule is None else self._cut(rule, path)

    def _cut(self, rule: str, path: PathInfo | None = None) -> Segment:
        """Ends the segment with its best path; starts a new search."""
        if path is None:
            path, _ = self._search.best()
        seg = self._segment(path, final=True, rule=rule, lattice=self._search.confidence_lattice())
        self.stats.segments += 1
        self.stats.endpoints[rule] = self.stats.endpoints.get(rule, 0) + 1
        self._start_frame += self._search.frames
        self._search = SegmentSearch(self.graph, self.decoder.cfg)
        self._post = []
        return seg

    def _segment(self, path: PathInfo | None, final: bool, rule: str | None,
                 lattice: tuple[k2.Fsa, torch.Tensor] | None = None) -> Segment:
        offset = self._start_frame * self.frame_shift
        end = offset + self._search.frames * self.frame_shift
        if path is None:
            return Segment("", [], offset, end, final, rule)
        words = self._timed_words(path, offset, lattice)
        return Segment(" ".join(w.word for w in words), words, offset, end, final, rule)

    def _timed_words(self, path: PathInfo, offset: float,
                     lattice: tuple[k2.Fsa, torch.Tensor] | None) -> list[TimedWord]:
        """Words with absolute times and confidences.

        A final segment's confidences are lattice word posteriors, as offline
        (:func:`asr.decoding.confidence.word_confidences`); a partial result's
        are the mean posterior of the path's pdfs over each word, which costs
        no forward-backward per chunk.
        """
        aligner = self.decoder.aligner
        segments = aligner.segments(path)
        post = torch.cat(self._post) if self._post else torch.zeros(0, self.network.model.num_pdfs)
        if lattice is not None and segments:
            confs = word_confidences(lattice[0], lattice[1], [path], [segments], self.decoder.lexicon,
                                     post.unsqueeze(0), [f"stream segment at {offset:.2f} s"])[0]
        else:
            confs = mean_frame_posteriors(path, segments, post) if len(post) else [1.0] * len(segments)
        return [TimedWord(self.decoder.words.get(w), offset + start * self.frame_shift, dur * self.frame_shift, conf)
                for (start, dur, w), conf in zip(segments, confs)]
