"""Broken, mismatched and malicious model dirs.

Loading (ModelDir.load, Recognizer.from_dir, ``asr transcribe``) refuses each
with one line naming the file; a pickle that would run code is never run.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from asr.errors import AsrError, ModelDirError
from asr.model_dir import ModelDir
from asr.recognizer import Recognizer
from reliability_fixtures import (
    LEXICON, assert_cli_error, copy_model_dir, run_cli, write_malicious_pickle, yesno_wavs,
)


@pytest.fixture()
def md(tmp_path, tiny) -> Path:
    return copy_model_dir(tiny, tmp_path / "model")


def _transcribe(capsys, md: Path, *extra):
    return run_cli(capsys, "transcribe", "--model-dir", md, *extra, yesno_wavs(1)[0])


def test_copy_loads(md):
    ModelDir.load(md)
    assert Recognizer.from_dir(md).transcribe(yesno_wavs(1)[0]).text


@pytest.mark.parametrize("name", ["model.pt", "model.yaml", "lang"])
def test_missing_file(capsys, md, name):
    target = md / name
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(ModelDirError, match=f"{target}: missing from model dir"):
        ModelDir.load(md)
    rc, out, err = _transcribe(capsys, md)
    assert_cli_error(rc, err, "transcribe", str(target), "missing")
    assert out == ""


def test_missing_graph(capsys, md):
    shutil.rmtree(md / "graph")
    rc, _, err = _transcribe(capsys, md)
    assert_cli_error(rc, err, "transcribe", "HLG.pt")


def test_missing_model_dir(tmp_path, capsys):
    rc, _, err = _transcribe(capsys, tmp_path / "nope")
    assert_cli_error(rc, err, "transcribe", str(tmp_path / "nope"))


def test_checkpoint_from_other_config(capsys, md):
    text = (md / "model.yaml").read_text()
    assert "hidden: 16" in text
    (md / "model.yaml").write_text(text.replace("hidden: 16", "hidden: 32"))
    with pytest.raises(ModelDirError, match=f"{md / 'model.pt'}: does not match the model config"):
        ModelDir.load(md)
    rc, _, err = _transcribe(capsys, md)
    assert_cli_error(rc, err, "transcribe", str(md / "model.pt"), "does not match")


def test_lang_pdf_count_mismatch(tmp_path, capsys, md):
    from asr.cli import main

    # A lang dir with one more word (and phone, so three more pdfs).
    lex = tmp_path / "lex.txt"
    lex.write_text(LEXICON.read_text() + "MAYBE M\n")
    assert main(["prepare-lang", str(lex), str(tmp_path / "lang2")]) == 0
    shutil.rmtree(md / "lang")
    shutil.copytree(tmp_path / "lang2", md / "lang")
    with pytest.raises(ModelDirError, match=r"lang dir has \d+ pdfs but the model outputs \d+"):
        ModelDir.load(md)
    rc, _, err = _transcribe(capsys, md)
    assert_cli_error(rc, err, "transcribe", str(md / "lang"), "pdfs")


def test_garbage_model_pt_and_yaml(capsys, md):
    (md / "model.pt").write_bytes(b"not a torch file at all")
    rc, _, err = _transcribe(capsys, md)
    assert_cli_error(rc, err, "transcribe", str(md / "model.pt"))
    (md / "model.yaml").write_text("model: [unclosed\n")
    rc, _, err = _transcribe(capsys, md)
    assert_cli_error(rc, err, "transcribe", "model.yaml")


def test_wrong_priors_count(capsys, md):
    torch.save(torch.zeros(3), md / "priors.pt")
    rc, _, err = _transcribe(capsys, md)
    assert_cli_error(rc, err, "transcribe", str(md / "priors.pt"), "3 priors")


# ---------------------------------------------------------------------------
# Security: a model dir is untrusted input


@pytest.mark.parametrize("name", ["model.pt", "graph/HLG.pt", "priors.pt"])
def test_malicious_pickle_refused(tmp_path, capsys, md, name):
    marker = tmp_path / "PWNED"
    target = md / name
    write_malicious_pickle(target, marker)
    # The payload does run if loaded unsafely (so the test is meaningful) ...
    probe = tmp_path / "probe"
    write_malicious_pickle(tmp_path / "probe.pt", probe)
    torch.load(tmp_path / "probe.pt", weights_only=False)
    assert probe.exists()
    # ... but every loading path refuses it.
    if name != "graph/HLG.pt":
        with pytest.raises(ModelDirError, match=f"{target}: refused to load"):
            ModelDir.load(md)
    with pytest.raises(AsrError, match=f"{target}: refused to load"):
        Recognizer.from_dir(md)
    rc, out, err = _transcribe(capsys, md)
    assert_cli_error(rc, err, "transcribe", str(target), "refused to load", "Unsupported global")
    assert out == ""
    assert not marker.exists()


def test_malicious_graph_dir_refused(tmp_path, capsys, md):
    marker = tmp_path / "PWNED"
    g = tmp_path / "graph"
    g.mkdir()
    write_malicious_pickle(g / "HLG.pt", marker)
    rc, _, err = run_cli(capsys, "transcribe", "--model-dir", md, "--graph-dir", g, yesno_wavs(1)[0])
    assert_cli_error(rc, err, "transcribe", str(g / "HLG.pt"), "refused to load")
    assert not marker.exists()
