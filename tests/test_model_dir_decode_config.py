"""A model dir's own decode.yaml is the default decode config of transcribe, serve, decode and Recognizer."""

from __future__ import annotations

import shutil

import pytest

from asr.errors import ConfigError
from asr.model_dir import DECODE_CONFIG_NAME, default_decode_config


def test_explicit_config_wins_then_the_model_dirs_then_the_packaged_one(tmp_path):
    assert default_decode_config(tmp_path) == DECODE_CONFIG_NAME  # packaged (a bare name)
    (tmp_path / "decode.yaml").write_text("search: {acoustic_scale: 1.0}\n")
    assert default_decode_config(tmp_path) == tmp_path / "decode.yaml"
    assert default_decode_config(tmp_path, "other.yaml") == "other.yaml"


def test_recognizer_reads_the_model_dirs_decode_config(yesno, tmp_path):
    import asr

    model = tmp_path / "model"
    shutil.copytree(yesno.model_dir, model)
    (model / "decode.yaml").write_text("search: {acoustic_scale: 0.5, confidence_scale: 0.25}\n")
    rec = asr.Recognizer.from_dir(model)
    assert (rec.decoder.cfg.acoustic_scale, rec.decoder.cfg.confidence_scale) == (0.5, 0.25)
    (model / "decode.yaml").write_text("search: {acoustic_scal: 0.5}\n")
    with pytest.raises(ConfigError, match=r"decode\.yaml.*acoustic_scal"):
        asr.Recognizer.from_dir(model)
    assert asr.Recognizer.from_dir(model, config="decode.yaml").decoder.cfg.acoustic_scale == 0.1  # explicit wins
