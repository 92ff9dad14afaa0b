"""Tiny lang dirs and synthetic feature data for the lang/graph/training tests.

(Kept out of conftest.py so that it does not clash with other test helpers.)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from asr.config import load_config, save_config
from asr.features.ark import write_matrices

# Two one-phone words plus silence: A is pronounced PA, B is PB.
TINY_LEXICON = "<SIL> SIL\nA PA\nB PB\n"
FEAT_DIM = 4
# Frames per segment of the synthetic data (a 3-state phone needs >= 3).
WORD_FRAMES = 6
SIL_FRAMES = 3


def write_lexicon(path: Path, text: str = TINY_LEXICON) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_lang(tmp: Path, lexicon: str = TINY_LEXICON, config: str = "lang.yaml", name: str = "lang"):
    """Runs prepare_lang on ``lexicon`` with ``conf/<config>``; returns the LangDir."""
    from asr.lang.lang_dir import prepare_lang

    lex = write_lexicon(tmp / f"{name}_lexicon.txt", lexicon)
    return prepare_lang(lex, tmp / name, load_config(config))


def word_frames(word: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Features of one segment: A ~ N(+2, 1), B ~ N(-2, 1), silence ~ N(0, 0.1)."""
    if word == "A":
        return rng.normal(2.0, 1.0, (n, FEAT_DIM))
    if word == "B":
        return rng.normal(-2.0, 1.0, (n, FEAT_DIM))
    return rng.normal(0.0, 0.1, (n, FEAT_DIM))


def synth_utterance(words: list[str], rng: np.random.Generator) -> np.ndarray:
    parts = [word_frames("<SIL>", SIL_FRAMES, rng)]
    for w in words:
        parts += [word_frames(w, WORD_FRAMES, rng), word_frames("<SIL>", SIL_FRAMES, rng)]
    return np.concatenate(parts).astype(np.float32)


def make_data_dir(
    d: Path,
    transcripts: dict[str, list[str]] | None = None,
    num_speakers: int = 3,
    utts_per_speaker: int = 4,
    seed: int = 0,
    feats: dict[str, np.ndarray] | None = None,
) -> Path:
    """Writes a Kaldi data dir with synthetic features (feats.scp, cmvn none).

    Utterance ids are ``s<k>_u<j>`` and speakers ``s<k>``.  Without
    ``transcripts`` each utterance gets 1 to 3 random words of A/B.
    """
    rng = np.random.default_rng(seed)
    if transcripts is None:
        transcripts = {}
        for k in range(num_speakers):
            for j in range(utts_per_speaker):
                n = int(rng.integers(1, 4))
                transcripts[f"s{k}_u{j:02d}"] = [str(w) for w in rng.choice(["A", "B"], n)]
    feats = dict(feats or {})
    for utt, words in transcripts.items():
        if utt not in feats:
            feats[utt] = synth_utterance(words, rng)
    d.mkdir(parents=True, exist_ok=True)
    keys = sorted(transcripts, key=lambda k: k.encode())
    spk = {u: u.split("_")[0] for u in keys}
    (d / "wav.scp").write_text("".join(f"{u} /nonexistent/{u}.wav\n" for u in keys))
    (d / "text").write_text("".join(f"{u} {' '.join(transcripts[u])}\n" for u in keys))
    (d / "utt2spk").write_text("".join(f"{u} {spk[u]}\n" for u in keys))
    spk2utt: dict[str, list[str]] = {}
    for u in keys:
        spk2utt.setdefault(spk[u], []).append(u)
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    index = write_matrices(
        (d / "feats.ark").resolve(), d / "feats.scp.tmp", ((u, feats[u]) for u in keys)
    )
    (d / "feats.scp.tmp").unlink()
    (d / "feats.scp").write_text("".join(f"{u} {index[u]}\n" for u in keys))
    (d / "utt2num_frames").write_text("".join(f"{u} {len(feats[u])}\n" for u in keys))
    (d / "conf").mkdir(exist_ok=True)
    save_config(
        {"type": "fbank", "sample_rate": 8000, "num_mel_bins": FEAT_DIM, "frame_length": 25.0,
         "frame_shift": 10.0, "dither": 0.0, "norm_vars": False, "cmvn": "none"},
        d / "conf" / "feats.yaml",
    )
    return d


def train_config(path: Path, criterion: str = "flat-start", epochs: int = 3, **extra) -> Path:
    """A small TDNN training config (fast on 2 CPU cores)."""
    cfg = {
        "criterion": criterion,
        "model": {"type": "tdnn", "hidden": 16, "context": [[-1, 0, 1], [-1, 0, 1]], "dropout": 0.0},
        "optimizer": {"name": "adamw", "lr": 0.01, "weight_decay": 0.0},
        "scheduler": {"name": "constant", "warmup_steps": 0},
        "epochs": epochs,
        "max_frames": 200,
        "grad_clip": 5.0,
        "output_beam": 20.0,
        "valid_fraction": 0.0,
        "prior_scale": 0.0,
        "seed": 0,
        "device": "cpu",
    }
    cfg.update(extra)
    save_config(cfg, path)
    return path


def linear_pdf_acceptor(pdfs: list[int]):
    """A linear acceptor over pdf labels (for intersecting with H or HLG)."""
    import k2

    return k2.linear_fsa(pdfs)


def word_ids_on_path(path) -> list[int]:
    """Word ids on a single path FSA (a k2.Fsa) whose aux_labels may be ragged."""
    import k2

    aux = path.aux_labels
    values = aux.values if isinstance(aux, k2.RaggedTensor) else aux
    return [int(w) for w in values.tolist() if w > 0]


def one_hot_log_probs(pdfs: list[int], num_pdfs: int, low: float = -10.0) -> torch.Tensor:
    """(1, T, num_pdfs) log-probs that favour pdf ``pdfs[t]`` at frame ``t`` (column ``pdf - 1``)."""
    lp = torch.full((1, len(pdfs), num_pdfs), low)
    for t, p in enumerate(pdfs):
        lp[0, t, p - 1] = 0.0
    return lp.log_softmax(-1)


LOG_HALF = math.log(0.5)
