"""Interrupted runs, full disks and parallel jobs.

- ``asr train`` interrupted by SIGINT after a checkpoint and killed by
  SIGKILL mid-epoch, at points the run itself triggers (``asr.faults``):
  ``--resume`` completes with the weights of an uninterrupted run, and every
  checkpoint on disk loads.
- ``asr compute-feats`` killed and rerun: only unfinished jobs are redone and
  the features are identical; ``--nj 2`` equals ``--nj 1`` byte for byte.
- A write failing with ENOSPC: the error names the path and the previous
  file is kept unchanged.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from asr.errors import AsrError
from asr.faults import FAULT_ENV
from asr.fileio import atomic_torch_save, atomic_write_text, safe_torch_load
from reliability_fixtures import FBANK, REPO, assert_cli_error, make_data_dir, run_cli, yesno_wavs

PY = sys.executable


def _asr_proc(*argv, fault: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    # Own process group, so that a kill reaches the job's worker processes too (as a terminal's would).
    # SIGINT back to its default: a suite started as a background job (`cmd &` in a script) inherits
    # SIGINT ignored, and Python then never turns it into KeyboardInterrupt.
    return subprocess.Popen([PY, "-m", "asr", *map(str, argv)], cwd=REPO, env=env, start_new_session=True,
                            preexec_fn=_default_sigint, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _wait_for(pred, proc: subprocess.Popen) -> bool:
    """Polls until ``pred()``; False if the process ended first.

    No deadline: the process ends by itself, however slow the machine is.
    """
    while not pred():
        if proc.poll() is not None:
            return pred()
        time.sleep(0.02)
    return True


def _checkpoints(d: Path) -> list[Path]:
    from asr.training.trainer import list_checkpoints

    return [p for _, p in list_checkpoints(d / "checkpoints")]


def _check_all_checkpoints_load(out: Path) -> list[int]:
    epochs = []
    for p in _checkpoints(out):
        state = safe_torch_load(p)  # raises on a half-written file
        assert set(state) >= {"model", "optimizer", "epoch", "rng"}
        assert p.name == f"epoch-{state['epoch']}.pt"
        epochs.append(int(state["epoch"]))
    return epochs


EPOCHS = 6


def _final_weights(out: Path) -> dict:
    return safe_torch_load(out / "checkpoints" / f"epoch-{EPOCHS}.pt")["model"]


def test_training_killed_then_resumed(tmp_path, tiny):
    """SIGINT after checkpoint 2, SIGKILL in the middle of epoch 4, then --resume to the end.

    The run signals itself at those points (``asr.faults``), so the outcome
    is the same on a fast or a loaded machine.  The resumed run must end with
    the weights of an uninterrupted one, bit for bit (same machine, one thread).
    """
    conf = tmp_path / "train.yaml"
    conf.write_text(tiny.train_conf.read_text().replace("epochs: 2", f"epochs: {EPOCHS}"))

    def argv(out):
        return ["train", "--config", conf, "--data", tiny.data, "--lang", tiny.lang, "--out", out]

    ref = tmp_path / "uninterrupted"
    proc = _asr_proc(*argv(ref))
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    steps_per_epoch = int(safe_torch_load(ref / "checkpoints" / "epoch-1.pt")["step"])
    assert steps_per_epoch >= 2, "the tiny data must give several steps an epoch to stop mid-epoch"

    out = tmp_path / "exp"
    # 1) SIGINT right after checkpoint 2: a clean "interrupted", status 130.
    proc = _asr_proc(*argv(out), fault="checkpoint:2:SIGINT")
    _, err = proc.communicate()
    assert proc.returncode == 130, err
    assert "asr train: interrupted" in err and "Traceback" not in err
    assert _check_all_checkpoints_load(out) == [1, 2]

    # 2) --resume, SIGKILL after the first step of epoch 4: checkpoint 3 is complete, 4 never started.
    proc = _asr_proc(*argv(out), "--resume", fault=f"step:{3 * steps_per_epoch + 1}:SIGKILL")
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err
    assert _check_all_checkpoints_load(out) == [1, 2, 3]
    # What a kill during a checkpoint write leaves: a temporary, never taken for a checkpoint.
    (out / "checkpoints" / ".epoch-4.pt.abc123.tmp").write_bytes(b"half a checkpoint")

    # 3) --resume finishes the run.
    proc = _asr_proc(*argv(out), "--resume")
    _, err = proc.communicate()
    assert proc.returncode == 0, err
    log = (out / "train.log").read_text()
    assert f"resumed from {out / 'checkpoints' / 'epoch-2.pt'}" in log
    assert f"resumed from {out / 'checkpoints' / 'epoch-3.pt'}" in log
    assert _check_all_checkpoints_load(out) == list(range(1, EPOCHS + 1))
    from asr.model_dir import ModelDir

    ModelDir.load(out)
    resumed, uninterrupted = _final_weights(out), _final_weights(ref)
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


# ---------------------------------------------------------------------------
# Feature extraction


def _features(data: Path) -> dict[str, np.ndarray]:
    from asr.features.ark import read_matrix

    out = {}
    for line in (data / "feats.scp").read_text().splitlines():
        utt, _, spec = line.partition(" ")
        out[utt] = read_matrix(spec)
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes(), k


@pytest.fixture(scope="module")
def feats_nj1(tmp_path_factory):
    from asr.cli import main

    root = tmp_path_factory.mktemp("nj1")
    data = make_data_dir(root / "data", yesno_wavs(6))
    assert main(["compute-feats", str(data), str(root / "fbank"), "--config", str(FBANK), "--nj", "1"]) == 0
    return _features(data)


def test_nj2_byte_identical_to_nj1(tmp_path, capsys, feats_nj1):
    data = make_data_dir(tmp_path / "data", yesno_wavs(6))
    rc, _, err = run_cli(capsys, "compute-feats", data, tmp_path / "fbank", "--config", FBANK, "--nj", "2")
    assert rc == 0, err
    assert len(list((tmp_path / "fbank").glob("raw_fbank_data.*.ark"))) == 2
    _assert_same(_features(data), feats_nj1)


def test_feature_job_lost_is_redone_alone(tmp_path, capsys, caplog, feats_nj1):
    """A run that died during job 2: the rerun skips job 1 and redoes job 2."""
    data = make_data_dir(tmp_path / "data", yesno_wavs(6))
    fbank = tmp_path / "fbank"
    rc, _, err = run_cli(capsys, "compute-feats", data, fbank, "--config", FBANK, "--nj", "2")
    assert rc == 0, err
    ark1 = fbank / "raw_fbank_data.1.ark"
    stamp = ark1.stat().st_mtime_ns
    for name in ("raw_fbank_data.2.done.json", "raw_fbank_data.2.ark", "raw_fbank_data.2.scp"):
        (fbank / name).unlink()
    (data / "feats.scp").unlink()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="asr"):
        rc, _, err = run_cli(capsys, "compute-feats", data, fbank, "--config", FBANK, "--nj", "2")
    assert rc == 0, err
    assert "job 1 already done, skipping" in caplog.text
    assert "job 2 already done" not in caplog.text
    assert ark1.stat().st_mtime_ns == stamp
    _assert_same(_features(data), feats_nj1)


def test_feature_extraction_killed_then_rerun(tmp_path, capsys, feats_nj1):
    data = make_data_dir(tmp_path / "data", yesno_wavs(6))
    fbank = tmp_path / "fbank"
    proc = _asr_proc("compute-feats", data, fbank, "--config", FBANK, "--nj", "2")
    # Killed once the first job's done marker appears, or not at all if the run ends first: the
    # other job may be anywhere (not started, mid-ark, done), and what follows holds in every case.
    _wait_for(lambda: any(fbank.glob("*.done.json")), proc)
    _kill_group(proc)
    proc.communicate()
    # Whatever it left: no feats.scp that points at missing arks.
    if (data / "feats.scp").exists():
        _features(data)
    rc, _, err = run_cli(capsys, "compute-feats", data, fbank, "--config", FBANK, "--nj", "2")
    assert rc == 0, err
    _assert_same(_features(data), feats_nj1)


# ---------------------------------------------------------------------------
# Full disk


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_keeps_previous_text_file(tmp_path, monkeypatch):
    p = tmp_path / "table.txt"
    atomic_write_text(p, "good old content\n")
    monkeypatch.setattr("asr.fileio.os.fsync", _enospc)
    with pytest.raises(AsrError, match=f"cannot write {p}: No space left on device"):
        atomic_write_text(p, "new content that never lands\n")
    assert p.read_text() == "good old content\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["table.txt"]


def test_full_disk_keeps_previous_checkpoint(tmp_path, monkeypatch):
    import torch

    p = tmp_path / "epoch-1.pt"
    atomic_torch_save({"w": torch.ones(3)}, p)
    before = p.read_bytes()
    monkeypatch.setattr("asr.fileio.os.fsync", _enospc)
    with pytest.raises(AsrError, match=f"cannot write {p}: No space left on device"):
        atomic_torch_save({"w": torch.zeros(3)}, p)
    assert p.read_bytes() == before
    assert torch.equal(safe_torch_load(p)["w"], torch.ones(3))
    assert [x.name for x in tmp_path.iterdir()] == ["epoch-1.pt"]


def test_full_disk_through_cli(tmp_path, capsys, monkeypatch):
    from reliability_fixtures import LEXICON

    lang = tmp_path / "lang"
    rc, _, err = run_cli(capsys, "prepare-lang", LEXICON, lang)
    assert rc == 0, err
    before = {p: p.read_bytes() for p in lang.rglob("*") if p.is_file()}
    lex = tmp_path / "lex.txt"
    lex.write_text(LEXICON.read_text() + "MAYBE M\n")
    monkeypatch.setattr("asr.fileio.os.fsync", _enospc)
    rc, _, err = run_cli(capsys, "prepare-lang", lex, lang)
    assert_cli_error(rc, err, "prepare-lang", str(lang), "No space left on device")
    after = {p: p.read_bytes() for p in lang.rglob("*") if p.is_file()}
    assert after == before
