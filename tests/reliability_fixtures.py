"""Shared helpers of the bad-input, fault and fuzz tests.

:func:`build_tiny` builds a tiny yesno pipeline in a dir: a 6-utterance data
dir with features, a lang dir, a unigram graph and a flat-start model dir
(2 epochs, 16 hidden units) trained through ``asr train``.  Its accuracy is
irrelevant; it only has to load and decode.  It is much faster than the full
recipe run of ``decode_fixtures.py``.  The session fixture ``tiny``
(``tests/conftest.py``) builds it once per session.

Tests that change the model dir must work on a copy (:func:`copy_model_dir`).
"""

from __future__ import annotations

import os
import pickle
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
YESNO = REPO.parent / "shared" / "corpora" / "yesno"
AN4 = REPO.parent / "shared" / "corpora" / "an4"
LEXICON = REPO / "lexicon" / "yesno" / "lexicon.txt"
FBANK = REPO / "conf" / "yesno" / "fbank.yaml"
WORDS = {"0": "NO", "1": "YES"}

TINY_TRAIN = """\
criterion: flat-start
model: {type: tdnn, hidden: 16, context: [[-2, -1, 0, 1, 2], [-1, 0, 1]], dropout: 0.0}
optimizer: {name: adamw, lr: 0.005, weight_decay: 0.0}
scheduler: {name: constant}
epochs: 2
max_frames: 4000
grad_clip: 5.0
output_beam: 20.0
valid_fraction: 0.2
prior_scale: 1.0
prior_warmup_steps: 0
seed: 0
device: cpu
"""


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Runs ``asr.cli.main(argv)``; returns (status, stdout, stderr)."""
    from asr.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_cli_error(rc: int, err: str, command: str, *culprits: str) -> str:
    """Checks a one-line ``asr <cmd>: error: ...`` naming every culprit, and no traceback."""
    assert rc == 1, err
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith(f"asr {command}: error: ")]
    assert len(lines) == 1, err
    for c in culprits:
        assert str(c) in lines[0], (c, lines[0])
    return lines[0]


def yesno_wavs(n: int) -> list[Path]:
    return sorted(YESNO.glob("*.wav"))[:n]


def make_data_dir(d: Path, wavs: list[Path]) -> Path:
    """A Kaldi data dir (one speaker 'yn') over yesno wav files."""
    from asr.data.datadir import write_data_dir

    utts = {f"yn-{w.stem}": w for w in wavs}
    write_data_dir(
        d,
        {u: str(w) for u, w in utts.items()},
        {u: " ".join(WORDS[c] for c in w.stem.split("_")) for u, w in utts.items()},
        {u: "yn" for u in utts},
    )
    return d


@dataclass
class Tiny:
    root: Path
    data: Path
    feat_dir: Path
    lang: Path
    graph: Path
    model_dir: Path
    train_conf: Path


def build_tiny(root: Path) -> Tiny:
    """The tiny pipeline under ``root``, built through the CLI (compute-feats, prepare-lang, compile-graph, train)."""
    from asr.cli import main

    data = make_data_dir(root / "data" / "train", yesno_wavs(6))
    t = Tiny(root, data, root / "fbank", root / "data" / "lang", root / "data" / "lang_ug",
             root / "exp" / "tiny", root / "tiny_train.yaml")
    t.train_conf.write_text(TINY_TRAIN, encoding="utf-8")
    steps = [
        ["compute-feats", data, t.feat_dir, "--config", FBANK, "--cmvn", "per-utterance"],
        ["prepare-lang", LEXICON, t.lang],
        ["compile-graph", t.lang, t.graph, "--text", data / "text", "--order", "1"],
        ["train", "--config", t.train_conf, "--data", data, "--lang", t.lang, "--out", t.model_dir,
         "--graph-dir", t.graph],
    ]
    for argv in steps:
        rc = main([str(a) for a in argv])
        assert rc == 0, argv
    return t


def copy_model_dir(tiny: Tiny, dest: Path) -> Path:
    shutil.copytree(tiny.model_dir, dest, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    return dest


# ---------------------------------------------------------------------------
# Audio files


def write_wav(path: Path, samples: np.ndarray, rate: int, subtype: str | None = None) -> Path:
    import soundfile as sf

    sf.write(str(path), samples, rate, subtype=subtype)
    return path


def tone(seconds: float, rate: int, channels: int = 1, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = (amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def sphere_header(sample_count: int, rate: int = 16000, coding: str = "pcm") -> bytes:
    body = (
        "NIST_1A\n   1024\n"
        f"sample_count -i {sample_count}\nsample_rate -i {rate}\nchannel_count -i 1\n"
        "sample_n_bytes -i 2\nsample_byte_format -s2 01\n"
        f"sample_coding -s{len(coding)} {coding}\nend_head\n"
    ).encode()
    return body + b" " * (1024 - len(body))


def write_sphere(path: Path, samples: np.ndarray, rate: int = 16000, coding: str = "pcm") -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    path.write_bytes(sphere_header(len(samples), rate, coding) + pcm)
    return path


# ---------------------------------------------------------------------------
# Malicious pickles


class PlantMarker:
    """Unpickling this runs ``open(marker, 'w')``: a stand-in for arbitrary code."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_malicious_pickle(path: Path, marker: Path) -> Path:
    """A torch.save file whose unpickling (weights_only=False) creates ``marker``."""
    import torch

    torch.save({"model": PlantMarker(str(marker))}, str(path))
    assert not marker.exists()
    return path


def sigkill_safe_listdir(d: Path) -> list[str]:
    try:
        return sorted(os.listdir(d))
    except FileNotFoundError:
        return []


def __getattr__(name: str):
    """``from reliability_fixtures import tiny`` in a test module written before the
    fixture moved to conftest.py still imports (a placeholder, no fixture): the test's
    ``tiny`` argument is conftest's fixture.  Drop such imports."""
    if name == "tiny":
        return MOVED_TO_CONFTEST
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


MOVED_TO_CONFTEST = "fixture moved to tests/conftest.py"

__all__ = ["Tiny", "build_tiny", "run_cli", "assert_cli_error", "struct", "pickle"]
