"""i-vectors end to end on yesno: train-ivector, extract-ivectors, train (TDNN and BLSTM), decode, transcribe."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from asr.cli import main
from asr.config import load_config, save_config
from decode_fixtures import read_table, yesno, yesno_run  # noqa: F401

IVECTOR_DIM = 6


@pytest.fixture(scope="module")
def ivectors(yesno, tmp_path_factory) -> Path:  # noqa: F811
    """A small extractor on yesno's training data and the training i-vectors (pseudo-speakers of 2)."""
    root = tmp_path_factory.mktemp("ivector_yesno")
    cfg = {"features": {"splice": 1, "pca_dim": 12}, "ubm": {"num_gauss": 8, "split_iters": 1, "num_iters": 2},
           "extractor": {"ivector_dim": IVECTOR_DIM, "num_iters": 2, "min_count": 0.0},
           "online": {"period": 10, "utts_per_spk_max": 2}}
    save_config(cfg, root / "ivector.yaml")
    assert main(["train-ivector", str(yesno.data / "train"), str(root / "ext"), "--config", str(root / "ivector.yaml")]) == 0
    assert main(["extract-ivectors", "--extractor-dir", str(root / "ext"), str(yesno.data / "train"),
                 str(root / "train")]) == 0
    return root


def train_config(path: Path, model: dict) -> Path:
    save_config({"criterion": "ce", "model": {**model, "ivector_dim": IVECTOR_DIM, "dropout": 0.0},
                 "optimizer": {"name": "adamw", "lr": 0.01}, "scheduler": {"name": "constant"}, "epochs": 1,
                 "max_frames": 100000, "valid_fraction": 0.0, "threads": 1}, path)
    return path


@pytest.mark.parametrize("model", [{"type": "tdnn", "hidden": 16, "context": [[-2, -1, 0, 1, 2], [-3, 0, 3]]},
                                   {"type": "blstm", "hidden": 8, "layers": 1}],
                         ids=["tdnn", "blstm"])
def test_model_with_ivectors_trains_decodes_and_transcribes(yesno, ivectors, model, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "model"
    cfg = train_config(tmp_path / "train.yaml", model)
    assert main(["train", "--config", str(cfg), "--data", str(yesno.data / "train"), "--lang", str(yesno.data / "lang"),
                 "--out", str(out), "--ali-dir", str(yesno.workdir / "exp" / "flat" / "ali"),
                 "--graph-dir", str(yesno.graph_dir), "--ivector-dir", str(ivectors / "train")]) == 0
    info = load_config(out / "model.yaml")
    assert info["model"]["ivector_dim"] == IVECTOR_DIM and info["ivector"]["period"] == 10
    assert (out / "ivector" / "extractor.pt").is_file()
    # decoding computes online i-vectors per utterance; the same ones extracted beforehand give the same lattices
    assert main(["decode", "--model-dir", str(out), str(yesno.test_dir), str(tmp_path / "dec")]) == 0
    assert main(["extract-ivectors", "--extractor-dir", str(ivectors / "ext"), str(yesno.test_dir),
                 str(tmp_path / "iv_test"), "--utts-per-spk-max", "1"]) == 0
    assert main(["decode", "--model-dir", str(out), str(yesno.test_dir), str(tmp_path / "dec2"),
                 "--ivector-dir", str(tmp_path / "iv_test")]) == 0
    hyp = read_table(tmp_path / "dec" / "text")
    assert hyp == read_table(tmp_path / "dec2" / "text") and len(hyp) == len(read_table(yesno.test_dir / "text"))
    assert (tmp_path / "dec" / "wer").read_text().startswith("%WER")
    # asr transcribe on the adapted model gives the decode's words
    wav = read_table(yesno.test_dir / "wav.scp")
    utt = sorted(wav)[0]
    capsys.readouterr()
    assert main(["transcribe", "--model-dir", str(out), wav[utt]]) == 0
    assert capsys.readouterr().out.strip().split("\t")[1:] == ([hyp[utt]] if hyp[utt] else [])


def test_recognizer_ivectors_repeat_and_sessions_accumulate(yesno, ivectors, tmp_path):  # noqa: F811
    import asr

    out = tmp_path / "model"
    cfg = train_config(tmp_path / "train.yaml", {"type": "tdnn", "hidden": 8, "context": [[-1, 0, 1]]})
    assert main(["train", "--config", str(cfg), "--data", str(yesno.data / "train"), "--lang", str(yesno.data / "lang"),
                 "--out", str(out), "--ali-dir", str(yesno.workdir / "exp" / "flat" / "ali"),
                 "--graph-dir", str(yesno.graph_dir), "--ivector-dir", str(ivectors / "train")]) == 0
    wav = read_table(yesno.test_dir / "wav.scp")
    first, second = (wav[u] for u in sorted(wav)[:2])
    rec = asr.Recognizer.from_dir(out)
    raw = rec.raw_features(first)
    once, twice = rec.ivectors(raw), rec.ivectors(rec.raw_features(first))
    assert torch.equal(once, twice)  # the same audio twice: identical i-vectors
    assert once.shape == (-(-len(raw) // 10), IVECTOR_DIM)
    session = asr.Recognizer.from_dir(out)
    session.set_ivector_session(True)
    session.ivectors(raw)
    continued = session.ivectors(session.raw_features(second))
    fresh = rec.ivectors(rec.raw_features(second))
    assert not torch.allclose(continued[0], fresh[0])  # the second file starts from the first's statistics
    session.set_ivector_session(True)  # forgets the history
    assert torch.equal(session.ivectors(session.raw_features(second)), fresh)
    session.set_ivector_session(True)
    assert session.transcribe(first) == rec.transcribe(first)  # a fresh session's first file: the plain result


def test_training_without_ivector_dir_is_a_one_line_error(yesno, tmp_path, capsys):  # noqa: F811
    cfg = train_config(tmp_path / "train.yaml", {"type": "tdnn", "hidden": 8, "context": [[-1, 0, 1]]})
    assert main(["train", "--config", str(cfg), "--data", str(yesno.data / "train"), "--lang", str(yesno.data / "lang"),
                 "--out", str(tmp_path / "m"), "--ali-dir", str(yesno.workdir / "exp" / "flat" / "ali")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "'model.ivector_dim' is 6: pass the training i-vectors with --ivector-dir" in err and str(cfg) in err
