"""Word timings from a best path, and CTM lines.

Confidences come from :mod:`asr.decoding.confidence` (lattice word posteriors).
"""

from __future__ import annotations

from dataclasses import dataclass

from asr.decoding.search import PathInfo
from asr.lang.lang_dir import LangDir


@dataclass
class TimedWord:
    word: str
    start: float  # seconds
    duration: float  # seconds
    confidence: float  # in [0, 1]: the lattice word posterior (asr.decoding.confidence)


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

    def timed_words(
        self, segments: list[tuple[int, int, int]], frame_shift: float, confidences: list[float] | None = None
    ) -> list[TimedWord]:
        """Words with times in seconds and a confidence in [0, 1].

        Args:
          segments: :meth:`segments` of a best path.
          frame_shift: Seconds per (output) frame.
          confidences: One per segment, e.g. lattice word posteriors
            (:func:`asr.decoding.confidence.word_confidences`); 1.0 each when not given.
        """
        confs = confidences if confidences is not None else [1.0] * len(segments)
        return [
            TimedWord(self.lang.words.get(w), start * frame_shift, dur * frame_shift, conf)
            for (start, dur, w), conf in zip(segments, confs, strict=True)
        ]


def ctm_line(utt: str, w: TimedWord) -> str:
    """A Kaldi CTM line: ``utt 1 start dur word conf``."""
    return f"{utt} 1 {w.start:.3f} {w.duration:.3f} {w.word} {w.confidence:.3f}\n"
