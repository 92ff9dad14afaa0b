"""Training and alignment with i-vector inputs on tiny synthetic data (asr train --ivector-dir, asr align)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.adapt.config import ExtractorConfig, IvectorConfig, IvectorFeatureConfig, OnlineConfig, UbmConfig
from asr.adapt.data import IvectorDir, extract_data_dir
from asr.adapt.train import train_ivector_model
from asr.config import load_config
from asr.errors import ConfigError, DataDirError
from asr.model_dir import ModelDir
from asr.training.align import align_data_dir
from asr.training.run import train
from helpers_tiny import make_data_dir, make_lang, train_config

DIM = 3


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ivector_training")
    lang = make_lang(tmp)
    data = make_data_dir(tmp / "data", num_speakers=3, utts_per_speaker=4)
    cfg = IvectorConfig(IvectorFeatureConfig(splice=1, pca_dim=4),
                        UbmConfig(num_gauss=4, split_iters=1, num_iters=2, max_frames=0),
                        ExtractorConfig(ivector_dim=DIM, num_iters=2, subsample=1, min_count=0.0),
                        OnlineConfig(period=5))
    model = train_ivector_model(data, tmp / "ext", cfg)
    extract_data_dir(model, data, tmp / "iv")
    return tmp, lang, data


def model_config(**extra) -> dict:
    return {"type": "tdnn", "hidden": 16, "context": [[-1, 0, 1], [-1, 0, 1]], "dropout": 0.0, **extra}


def test_ivector_dir_matches_kaldi_layout(setup) -> None:
    tmp, _, data = setup
    ivd = IvectorDir.load(tmp / "iv")
    assert ivd.period == 5 and ivd.dim == DIM and (tmp / "iv" / "ivector_period").read_text() == "5\n"
    assert all(len(utts) <= 2 for utts in ivd.spk2utt.values())  # pseudo-speakers of at most 2 utterances
    frames = {line.split()[0]: int(line.split()[1]) for line in (data / "utt2num_frames").read_text().splitlines()}
    assert {u: r.shape for u, r in ivd.rows.items()} == {u: (-(-n // 5), DIM) for u, n in frames.items()}


def test_train_with_ivectors_writes_the_extractor_and_aligns(setup, tmp_path: Path) -> None:
    tmp, lang, data = setup
    # a config without ivector_dim: --ivector-dir gives the network their dimension
    cfg = train_config(tmp_path / "flat.yaml", "flat-start", epochs=2, model=model_config())
    train(cfg, data, lang.path, tmp_path / "m", ivector_dir=tmp / "iv")
    info = load_config(tmp_path / "m" / "model.yaml")
    assert info["model"]["ivector_dim"] == DIM
    assert info["ivector"]["dim"] == DIM and info["ivector"]["source"] == str((tmp / "ext").resolve())
    md = ModelDir.load(tmp_path / "m")
    assert md.ivector is not None and md.ivector.period == 5  # the model dir's own copy
    online = align_data_dir(tmp_path / "m", data, tmp_path / "ali", 1000, 20.0)
    given = align_data_dir(tmp_path / "m", data, tmp_path / "ali2", 1000, 20.0, ivector_dir=tmp / "iv")
    assert len(online) == len(given) > 0
    (tmp_path / "m" / "ivector" / "ubm.pt").unlink()
    with pytest.raises(Exception, match=r"ubm.pt: missing from the i-vector extractor dir"):
        ModelDir.load(tmp_path / "m")


def test_mismatched_ivector_settings_are_one_line_errors(setup, tmp_path: Path) -> None:
    tmp, lang, data = setup
    wrong = train_config(tmp_path / "wrong.yaml", "flat-start", epochs=1, model=model_config(ivector_dim=DIM + 1))
    with pytest.raises(ConfigError, match=r"wrong.yaml: 'model.ivector_dim' is 4 but .* holds i-vectors of dim 3"):
        train(wrong, data, lang.path, tmp_path / "w", ivector_dir=tmp / "iv")
    with pytest.raises(ConfigError, match=r"wrong.yaml: 'model.ivector_dim' is 4: pass the training i-vectors"):
        train(wrong, data, lang.path, tmp_path / "w")
    with pytest.raises(DataDirError, match=r"ivector_online.scp: no such file"):
        IvectorDir.load(tmp_path)
