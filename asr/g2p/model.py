"""Joint-sequence (graphone) n-gram G2P: training, safe storage, decoding.

The model of Bisani & Ney (2008, Sequitur) and Novak et al. (Phonetisaurus):
a spelling and its pronunciation are one sequence of graphones ``g_1 ... g_K``
(see :mod:`asr.g2p.align`), and

    P(word, pron) = max_s prod_k P(g_k | g_{k-n+1} ... g_{k-1})

with a back-off n-gram over graphones estimated by :mod:`asr.lang.lm`
(interpolated modified Kneser-Ney).  The pronunciation of a new word is the
phone side of the best graphone sequence whose letters spell the word, found
by beam search over segmentations (:mod:`asr.g2p.decode`).

The model file holds only tensors, strings and numbers (``torch.save`` of a
plain dict, loaded with ``weights_only=True``): nothing in it runs code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asr.errors import AsrError
from asr.g2p.align import AlignConfig, Graphone, Pronunciation, align
from asr.lang.lm import BOS, EOS, NgramLM, estimate_ngram

log = logging.getLogger("asr.g2p.model")

#: ``format`` field of a model file; refuses other torch files.
MODEL_FORMAT = "asr-g2p-graphone-ngram"
MODEL_VERSION = 1
#: Separates the letters from the phones in a graphone's LM token (CMUdict spellings never use it).
_TOKEN_SEP = "}"


class G2PError(AsrError):
    """A G2P model file is malformed, or a word cannot be converted."""


@dataclass(frozen=True)
class G2PConfig:
    """Training settings.

    Attributes:
      align: EM alignment settings.
      order: Graphone n-gram order (Phonetisaurus' CMUdict models use 7-8).
      smoothing: ``kneser-ney`` or ``witten-bell`` (:func:`asr.lang.lm.estimate_ngram`).
      prune_min_count: After estimation, n-grams of order >= ``prune_from_order``
        seen fewer times than this are dropped (their probability then comes
        from back-off); 1 keeps everything.  Most high-order graphone n-grams
        are seen once, so this mostly sets the model's size.
      prune_threshold: After the count pruning, n-grams (order >= ``prune_from_order``)
        whose log10 probability is within this of what back-off gives are
        dropped too: they add size, not information.  0 keeps them.
      prune_from_order: Lowest order that is pruned.
      realign_rounds: Rounds of re-segmentation after the EM alignment (Sequitur's
        idea): an n-gram of order ``realign_order`` is estimated on the current
        segmentations, and each training pair is re-segmented by Viterbi under it
        (:meth:`asr.g2p.decode.G2PDecoder.segment`), so that a graphone's
        context, not only its unigram frequency, decides the segmentation.
        0 keeps the EM alignment.
      realign_order: Order of the re-segmenting n-gram.  Lower than ``order`` on
        purpose: a high-order model has memorized each pair's current
        segmentation and would mostly keep it.
      realign_beam: Hypotheses per letter position of the re-segmentation search.
    """

    align: AlignConfig = field(default_factory=AlignConfig)
    order: int = 7
    smoothing: str = "kneser-ney"
    prune_min_count: int = 1
    prune_threshold: float = 0.0
    prune_from_order: int = 4
    realign_rounds: int = 0
    realign_order: int = 3
    realign_beam: int = 30


@dataclass
class G2PModel:
    """A graphone n-gram.

    Attributes:
      graphones: Token id -> graphone; ids 0 and 1 are ``<s>`` and ``</s>``
        (their entries are placeholders).
      probs: ``probs[n - 1]`` maps an n-gram of token ids to its log10 probability.
      backoffs: ``backoffs[n - 1]`` maps an n-gram to its log10 back-off weight.
      config: The training settings (for the record).
    """

    graphones: list[Graphone]
    probs: list[dict[tuple[int, ...], float]]
    backoffs: list[dict[tuple[int, ...], float]]
    config: dict = field(default_factory=dict)

    @property
    def order(self) -> int:
        return len(self.probs)

    @property
    def letters(self) -> set[str]:
        """Characters the model can spell with."""
        return {c for g, _ in self.graphones[2:] for c in g}

    def num_ngrams(self) -> int:
        return sum(len(p) for p in self.probs)


def graphone_token(g: Graphone) -> str:
    """The LM word of a graphone, e.g. ``x}K_S`` (``e}`` for a silent e)."""
    return g[0] + _TOKEN_SEP + "_".join(g[1])


def train_g2p(pairs: list[tuple[str, Pronunciation]], config: G2PConfig = G2PConfig()) -> G2PModel:
    """Trains a G2P on ``(spelling, phones)`` pairs (a word may have several).

    Aligns the pairs into graphones, then estimates the graphone n-gram; pairs
    the alignment moves cannot segment are left out (logged).
    """
    if not pairs:
        raise G2PError("no training pronunciations")
    alignments = align(pairs, config.align)
    for round_ in range(config.realign_rounds):
        alignments = resegment(pairs, alignments, config)
        log.info("re-segmentation round %d done", round_ + 1)
    sentences = [[graphone_token(g) for g in a] for a in alignments if a is not None]
    skipped = len(pairs) - len(sentences)
    if skipped:
        log.info("%d of %d pronunciations cannot be aligned with moves %s; left out",
                 skipped, len(pairs), config.align.moves)
    graphones = sorted({g for a in alignments if a is not None for g in a})
    lm = estimate_ngram(sentences, [graphone_token(g) for g in graphones], config.order, config.smoothing)
    if config.prune_min_count > 1:
        prune_rare_ngrams(lm, sentences, config.prune_min_count, config.prune_from_order)
    if config.prune_threshold > 0:
        prune_redundant_ngrams(lm, config.prune_threshold, config.prune_from_order)
    record = {"order": config.order, "smoothing": config.smoothing, "moves": [list(m) for m in config.align.moves],
              "iterations": config.align.iterations, "long_exponent": config.align.long_exponent,
              "prune_min_count": config.prune_min_count, "prune_threshold": config.prune_threshold,
              "prune_from_order": config.prune_from_order, "realign_rounds": config.realign_rounds,
              "realign_order": config.realign_order}
    return _from_lm(lm, graphones, record)


def resegment(pairs: list[tuple[str, Pronunciation]], alignments: list[list[Graphone] | None],
              config: G2PConfig) -> list[list[Graphone] | None]:
    """Re-segments each pair by Viterbi under an order-``config.realign_order`` graphone
    n-gram estimated on ``alignments`` (one round of :attr:`G2PConfig.realign_rounds`).

    A pair keeps its old segmentation if the search finds none (its beam lost
    every complete path); pairs without one (``None``) stay left out.
    """
    from asr.g2p.decode import DecodeConfig, G2PDecoder

    sentences = [[graphone_token(g) for g in a] for a in alignments if a is not None]
    graphones = sorted({g for a in alignments if a is not None for g in a})
    lm = estimate_ngram(sentences, [graphone_token(g) for g in graphones], config.realign_order, config.smoothing)
    model = _from_lm(lm, graphones, {})
    decoder = G2PDecoder(model, DecodeConfig(beam=config.realign_beam))
    out: list[list[Graphone] | None] = []
    changed = 0
    for (word, pron), old in zip(pairs, alignments):
        tokens = decoder.segment(word, pron) if old is not None else None
        new = [model.graphones[t] for t in tokens] if tokens is not None else old
        changed += new != old
        out.append(new)
    log.info("re-segmentation under a %d-gram changed %d of %d pronunciations", config.realign_order, changed,
             len(pairs))
    return out


def prune_rare_ngrams(lm: NgramLM, sentences: list[list[str]], min_count: int, from_order: int) -> None:
    """Drops the n-grams (n >= ``from_order``) seen fewer than ``min_count`` times, in place,
    and recomputes the back-off weights so that every distribution still sums to 1.

    The kept set stays prefix-closed: ``c(h w) >= c(h w x)``, so an n-gram that
    is dropped has no kept extension.
    """
    from collections import Counter

    from asr.lang.lm import recompute_backoffs

    for n in range(max(from_order, 2), lm.order + 1):
        counts: Counter = Counter()
        for sent in sentences:
            s = (BOS, *sent, EOS)
            counts.update(s[i:i + n] for i in range(len(s) - n + 1))
        level = lm.probs[n - 1]
        before = len(level)
        lm.probs[n - 1] = {g: p for g, p in level.items() if counts[g] >= min_count}
        lm.backoffs[n - 1] = {g: b for g, b in lm.backoffs[n - 1].items() if g in lm.probs[n - 1]}
        log.info("pruned %d of %d %d-grams seen < %d times", before - len(lm.probs[n - 1]), before, n, min_count)
    recompute_backoffs(lm)


def prune_redundant_ngrams(lm: NgramLM, threshold: float, from_order: int) -> None:
    """Drops, in place, the n-grams ``h w`` (n >= ``from_order``, highest order first) with

        |log10 p(w | h) - (log10 bo(h) + log10 P(w | h[1:]))| < threshold,

    i.e. those that back-off already predicts, unless a kept longer n-gram
    extends them; then recomputes the back-off weights.
    """
    from asr.lang.lm import ngram_logprob, recompute_backoffs

    for n in range(lm.order, max(from_order, 2) - 1, -1):
        needed = {g[:-1] for g in lm.probs[n]} if n < lm.order else set()
        level = lm.probs[n - 1]
        keep = {}
        for g, p in level.items():
            backed_off = lm.backoffs[n - 2].get(g[:-1], 0.0) + ngram_logprob(lm, g[-1], g[1:-1])
            if g in needed or abs(p - backed_off) >= threshold:
                keep[g] = p
        log.info("pruned %d of %d %d-grams that back-off predicts within %g", len(level) - len(keep),
                 len(level), n, threshold)
        lm.probs[n - 1] = keep
        lm.backoffs[n - 1] = {g: b for g, b in lm.backoffs[n - 1].items() if g in keep}
    recompute_backoffs(lm)


def _from_lm(lm: NgramLM, graphones: list[Graphone], config: dict) -> G2PModel:
    """Re-keys an LM over graphone tokens by token ids (``<s>`` = 0, ``</s>`` = 1)."""
    table: list[Graphone] = [(BOS, ()), (EOS, ())] + list(graphones)
    ids = {BOS: 0, EOS: 1} | {graphone_token(g): k + 2 for k, g in enumerate(graphones)}
    probs = [{tuple(ids[w] for w in g): p for g, p in level.items()} for level in lm.probs]
    backoffs = [{tuple(ids[w] for w in g): b for g, b in level.items() if b != 0.0} for level in lm.backoffs]
    return G2PModel(graphones=table, probs=probs, backoffs=backoffs, config=config)


def model_to_state(model: G2PModel) -> dict:
    """The model as a dict of tensors, strings and numbers (what the file holds).

    Per order n: ``ngrams_n`` (N, n) token ids (int16 while the graphones fit),
    ``logprob_n`` and ``backoff_n`` (N,) log10 in float16: its 11-bit
    mantissa puts a log10 of -4 within 0.002 (0.5% in probability), which the
    search does not notice, and halves the file.
    """
    import torch

    id_type = np.int16 if len(model.graphones) <= np.iinfo(np.int16).max else np.int32

    state: dict = {
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "graphone_letters": [g for g, _ in model.graphones],
        "graphone_phones": [" ".join(p) for _, p in model.graphones],
        "order": model.order,
        "config": dict(model.config),
    }
    for n, level in enumerate(model.probs, 1):
        grams = list(level)
        state[f"ngrams_{n}"] = torch.tensor(np.array(grams, dtype=id_type).reshape(len(grams), n))
        state[f"logprob_{n}"] = torch.tensor(np.array([level[g] for g in grams], dtype=np.float16))
        bo = model.backoffs[n - 1]
        state[f"backoff_{n}"] = torch.tensor(np.array([bo.get(g, 0.0) for g in grams], dtype=np.float16))
    return state


def save_model(model: G2PModel, path: str | Path) -> None:
    """Writes the model atomically (``torch.save`` of :func:`model_to_state`)."""
    from asr.fileio import atomic_torch_save

    atomic_torch_save(model_to_state(model), path)


def _require(state: dict, key: str, kind: type, path: Path):
    if key not in state or not isinstance(state[key], kind):
        raise G2PError(f"{path}: not a G2P model file (missing or bad '{key}')")
    return state[key]


def model_from_state(state, path: Path) -> G2PModel:
    """Rebuilds a model from :func:`model_to_state`'s dict; checks its shape.

    Raises:
      G2PError: naming ``path`` for another kind of file or inconsistent tables.
    """
    import torch

    if not isinstance(state, dict) or state.get("format") != MODEL_FORMAT:
        raise G2PError(f"{path}: not a G2P model file (format is not '{MODEL_FORMAT}')")
    if state.get("version") != MODEL_VERSION:
        raise G2PError(f"{path}: G2P model version {state.get('version')!r}, this asr reads {MODEL_VERSION}")
    letters = _require(state, "graphone_letters", list, path)
    phones = _require(state, "graphone_phones", list, path)
    order = _require(state, "order", int, path)
    if len(letters) != len(phones) or len(letters) < 3 or order < 1:
        raise G2PError(f"{path}: inconsistent graphone table or order")
    probs, backoffs = [], []
    for n in range(1, order + 1):
        grams = _require(state, f"ngrams_{n}", torch.Tensor, path)
        logp = _require(state, f"logprob_{n}", torch.Tensor, path)
        bo = _require(state, f"backoff_{n}", torch.Tensor, path)
        if (grams.dim() != 2 or grams.shape[1] != n or not len(grams) == len(logp) == len(bo)
                or grams.dtype.is_floating_point or not logp.dtype.is_floating_point):
            raise G2PError(f"{path}: bad shapes of the {n}-gram tables")
        if len(grams) and (int(grams.min()) < 0 or int(grams.max()) >= len(letters)):
            raise G2PError(f"{path}: {n}-gram token id out of range")
        keys = list(map(tuple, grams.tolist()))
        probs.append(dict(zip(keys, logp.double().tolist())))
        backoffs.append({k: b for k, b in zip(keys, bo.double().tolist()) if b != 0.0})
    graphones = [(g, tuple(p.split())) for g, p in zip(letters, phones)]
    return G2PModel(graphones=graphones, probs=probs, backoffs=backoffs, config=dict(state.get("config", {})))


def load_model(path: str | Path) -> G2PModel:
    """Loads a model file without running code (:func:`asr.fileio.safe_torch_load`).

    Raises:
      AsrError: for a missing file, a pickle with code, or a file that is not a G2P model.
    """
    from asr.fileio import safe_torch_load

    path = Path(path)
    return model_from_state(safe_torch_load(path), path)
