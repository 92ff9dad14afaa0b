"""Word timings and confidences from a best path."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from asr.decoding.search import PathInfo
from asr.lang.lang_dir import LangDir


@dataclass
class TimedWord:
    word: str
    start: float  # seconds
    duration: float  # seconds
    confidence: float


class WordAligner:
    """Splits a best path's phones into words using the lexicon.

    HLG's determinization may move word labels a few arcs away from where
    the word starts, so times come from the phones instead: each output word
    takes the phones that spell one of its pronunciations, and optional
    silence in between belongs to no word.
    """

    def __init__(self, lang: LangDir):
        self.lang = lang
        self.prons: dict[int, list[tuple[int, ...]]] = {}
        for word, pron in lang.lexicon:
            self.prons.setdefault(lang.words[word], []).append(tuple(lang.phones[p] for p in pron))
        self.silence = {lang.phones[p] for p in lang.silence_phones}

    def segments(self, path: PathInfo) -> list[tuple[int, int, int]]:
        """``(start_frame, num_frames, word_id)`` for each word of the path."""
        starts = path.phone_starts
        segs = [
            (s, (starts[k + 1][0] if k + 1 < len(starts) else path.num_frames) - s, p) for k, (s, p) in enumerate(starts)
        ]
        out, k = [], 0
        for n, w in enumerate(path.word_ids):
            match = None
            while k < len(segs) and match is None:
                for pron in sorted(self.prons.get(w, []), key=len, reverse=True):
                    if tuple(p for _, _, p in segs[k : k + len(pron)]) == pron:
                        match = pron
                        break
                if match is None:
                    if segs[k][2] not in self.silence:
                        break
                    k += 1
            if match is None:
                # Fall back to the arc that carries the word label.
                start = path.word_arcs[n]
                end = path.word_arcs[n + 1] if n + 1 < len(path.word_arcs) else path.num_frames
                out.append((start, max(1, end - start), w))
                continue
            first, last = segs[k], segs[k + len(match) - 1]
            out.append((first[0], last[0] + last[1] - first[0], w))
            k += len(match)
        return out

    def timed_words(self, path: PathInfo, frame_shift: float, log_post: torch.Tensor | None) -> list[TimedWord]:
        """Words with times in seconds and a confidence in [0, 1].

        The confidence is the mean network posterior of the path's pdf over
        the word's frames (1.0 when posteriors are not given).
        """
        out = []
        for start, dur, w in self.segments(path):
            conf = 1.0
            if log_post is not None and dur > 0:
                frames = torch.arange(start, min(start + dur, len(path.frame_pdfs)))
                if len(frames):
                    pdfs = torch.tensor([path.frame_pdfs[f] - 1 for f in frames.tolist()])
                    conf = float(log_post[frames, pdfs].exp().mean())
            out.append(TimedWord(self.lang.words.get(w), start * frame_shift, dur * frame_shift, conf))
        return out


def ctm_line(utt: str, w: TimedWord) -> str:
    """A Kaldi CTM line: ``utt 1 start dur word conf``."""
    return f"{utt} 1 {w.start:.3f} {w.duration:.3f} {w.word} {w.confidence:.3f}\n"
