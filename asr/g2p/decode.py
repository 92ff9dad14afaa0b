"""Beam search for the best pronunciations of a spelling under a graphone n-gram.

A hypothesis covers the first ``i`` letters of the word with graphones
``g_1 ... g_k`` and scores

    score = sum_k log10 P(g_k | history),

and is extended by every graphone whose letters are the next 1, 2, ...
letters.  Hypotheses are grouped by the letter position they reach; at each
position only the ``beam`` best are extended, and two hypotheses with the
same LM state and the same phones are merged (the better one is kept: the
Viterbi approximation of summing over segmentations).  A complete hypothesis
adds ``log10 P(</s> | history)``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from asr.g2p.align import Pronunciation

_BOS_ID = 0
_EOS_ID = 1

#: (LM history of token ids, phones so far)
_State = tuple[tuple[int, ...], Pronunciation]


@dataclass(frozen=True)
class DecodeConfig:
    """Search settings.

    Attributes:
      beam: Hypotheses kept per letter position (larger: slower, rarely better beyond ~30).
    """

    beam: int = 30


class G2PDecoder:
    """Pronounces spellings with a :class:`~asr.g2p.model.G2PModel`."""

    # model: an asr.g2p.model.G2PModel, not imported here: model.py imports this module to re-segment
    def __init__(self, model: Any, config: DecodeConfig = DecodeConfig()):
        self.model = model
        self.config = config
        self.by_letters: dict[str, list[int]] = defaultdict(list)
        for tok, (letters, _) in enumerate(model.graphones[2:], 2):
            self.by_letters[letters].append(tok)
        self.max_letters = max(map(len, self.by_letters))
        self.letters = model.letters
        self.by_graphone: dict[tuple[str, Pronunciation], int] = {
            g: tok for tok, g in enumerate(model.graphones[2:], 2)}
        self.max_phones = max(len(p) for _, p in model.graphones)

    def logprob(self, history: tuple[int, ...], token: int) -> float:
        """``log10 P(token | history)`` with ARPA back-off (``-inf`` if unseen at every order)."""
        probs, backoffs = self.model.probs, self.model.backoffs
        bo = 0.0
        while True:
            gram = history + (token,)
            p = probs[len(gram) - 1].get(gram)
            if p is not None:
                return bo + p
            if not history:
                return -math.inf
            bo += backoffs[len(history) - 1].get(history, 0.0)
            history = history[1:]

    def next_history(self, history: tuple[int, ...], token: int) -> tuple[int, ...]:
        """The LM state after ``token``: the longest suffix of ``history + token``
        (at most order - 1 tokens) that is a listed n-gram.  An unlisted history
        backs off with weight 1, so dropping it changes no probability and lets
        more hypotheses merge."""
        hist = (history + (token,))[-(self.model.order - 1):] if self.model.order > 1 else ()
        while hist and hist not in self.model.probs[len(hist) - 1]:
            hist = hist[1:]
        return hist

    def _extend(self, word: str, start: int, state: _State, score: float, frontier: list[dict]) -> None:
        history, phones = state
        for k in range(1, min(self.max_letters, len(word) - start) + 1):
            for tok in self.by_letters.get(word[start:start + k], ()):
                s = score + self.logprob(history, tok)
                if s == -math.inf:
                    continue
                key = (self.next_history(history, tok), phones + self.model.graphones[tok][1])
                if s > frontier[start + k].get(key, -math.inf):
                    frontier[start + k][key] = s

    def pronounce(self, word: str, nbest: int = 1) -> list[tuple[Pronunciation, float]]:
        """Up to ``nbest`` distinct pronunciations of ``word``, best first, with
        their log10 joint probabilities; empty if no graphone sequence spells it."""
        frontier: list[dict[_State, float]] = [dict() for _ in range(len(word) + 1)]
        frontier[0][((_BOS_ID,), ())] = 0.0
        for i in range(len(word)):
            best = sorted(frontier[i].items(), key=lambda kv: -kv[1])[:self.config.beam]
            for state, score in best:
                self._extend(word, i, state, score, frontier)
        finals: dict[Pronunciation, float] = {}
        for (history, phones), score in frontier[len(word)].items():
            s = score + self.logprob(history, _EOS_ID)
            if s > finals.get(phones, -math.inf):
                finals[phones] = s
        ranked = sorted(finals.items(), key=lambda kv: -kv[1])
        return [(p, s) for p, s in ranked[:nbest] if s > -math.inf and p]

    def segment(self, word: str, pron: Pronunciation) -> list[int] | None:
        """The most likely graphone sequence (token ids) that spells ``word`` as ``pron``
        (Viterbi under the n-gram, with the same beam as :meth:`pronounce`);
        ``None`` if the model's graphones cannot make the pair.

        Training re-segments its pairs with this (:func:`asr.g2p.model.train_g2p`).
        """
        # (LM history, phones consumed) -> (score, tokens so far), per letter position
        frontier: list[dict[tuple[tuple[int, ...], int], tuple[float, tuple[int, ...]]]] = [
            dict() for _ in range(len(word) + 1)]
        frontier[0][((_BOS_ID,), 0)] = (0.0, ())
        for i in range(len(word)):
            best = sorted(frontier[i].items(), key=lambda kv: -kv[1][0])[:self.config.beam]
            for (history, j), (score, tokens) in best:
                self._extend_forced(word, pron, i, j, history, score, tokens, frontier)
        finals = [(score + self.logprob(history, _EOS_ID), tokens)
                  for (history, j), (score, tokens) in frontier[len(word)].items() if j == len(pron)]
        if not finals:
            return None
        score, tokens = max(finals)
        return list(tokens) if score > -math.inf else None

    def _extend_forced(self, word: str, pron: Pronunciation, i: int, j: int, history: tuple[int, ...],
                       score: float, tokens: tuple[int, ...], frontier: list[dict]) -> None:
        """Extends one hypothesis of :meth:`segment` by every graphone that continues both sides."""
        for k in range(1, min(self.max_letters, len(word) - i) + 1):
            letters = word[i:i + k]
            for n in range(min(self.max_phones, len(pron) - j) + 1):
                tok = self.by_graphone.get((letters, pron[j:j + n]))
                if tok is None:
                    continue
                s = score + self.logprob(history, tok)
                if s == -math.inf:
                    continue
                key = (self.next_history(history, tok), j + n)
                if s > frontier[i + k].get(key, (-math.inf, ()))[0]:
                    frontier[i + k][key] = (s, tokens + (tok,))
