"""Malformed Kaldi data dirs and bad command lines.

Through ``asr prepare-data validate`` and ``asr compute-feats``: each problem
gives exit status 1 and one line ``asr <cmd>: error: FILE:LINE: ...`` naming
the file and line (or key); no feature files are left behind.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reliability_fixtures import FBANK, assert_cli_error, make_data_dir, run_cli, yesno_wavs


@pytest.fixture()
def data(tmp_path) -> Path:
    return make_data_dir(tmp_path / "data", yesno_wavs(3))


def _lines(p: Path) -> list[str]:
    return p.read_text(encoding="utf-8").splitlines(keepends=True)


def _validate(capsys, d: Path):
    return run_cli(capsys, "prepare-data", "validate", d)


def test_valid_dir_passes(capsys, data):
    rc, out, err = _validate(capsys, data)
    assert rc == 0 and "OK (3 utterances, 1 speakers)" in out


def test_duplicate_key(capsys, data):
    lines = _lines(data / "text")
    (data / "text").write_text("".join(lines[:2] + [lines[1]] + lines[2:]), encoding="utf-8")
    rc, _, err = _validate(capsys, data)
    line = assert_cli_error(rc, err, "prepare-data", f"{data / 'text'}:3", "duplicate key")
    assert "first at line 2" in line


def test_unsorted(capsys, data):
    lines = _lines(data / "wav.scp")
    (data / "wav.scp").write_text("".join([lines[1], lines[0], lines[2]]), encoding="utf-8")
    rc, _, err = _validate(capsys, data)
    assert_cli_error(rc, err, "prepare-data", f"{data / 'wav.scp'}:2", "not sorted", "LC_ALL=C sort")


@pytest.mark.parametrize("table", ["text", "wav.scp"])
def test_utterance_missing(capsys, data, table):
    lines = _lines(data / table)
    missing = lines[1].split()[0]
    (data / table).write_text("".join(lines[:1] + lines[2:]), encoding="utf-8")
    rc, _, err = _validate(capsys, data)
    assert_cli_error(rc, err, "prepare-data", str(data / table), f"'{missing}'", "missing")


def test_extra_utterance_in_text(capsys, data):
    (data / "text").write_text(data.joinpath("text").read_text() + "zz-extra YES\n", encoding="utf-8")
    rc, _, err = _validate(capsys, data)
    assert_cli_error(rc, err, "prepare-data", f"{data / 'text'}:4", "'zz-extra'", "not in")


def test_empty_transcript(capsys, data):
    lines = _lines(data / "text")
    key = lines[0].split()[0]
    (data / "text").write_text("".join([f"{key}\n"] + lines[1:]), encoding="utf-8")
    rc, _, err = _validate(capsys, data)
    assert_cli_error(rc, err, "prepare-data", f"{data / 'text'}:1", "empty transcript", key)


def test_windows_line_endings_accepted(tmp_path, capsys, data):
    for name in ("text", "wav.scp", "utt2spk", "spk2utt"):
        p = data / name
        p.write_bytes(p.read_bytes().replace(b"\n", b"\r\n"))
    rc, out, err = _validate(capsys, data)
    assert rc == 0, err
    rc, out, err = run_cli(capsys, "compute-feats", data, tmp_path / "fbank", "--config", FBANK,
                           "--cmvn", "per-utterance")
    assert rc == 0, err
    assert len((data / "feats.scp").read_text().splitlines()) == 3


def test_non_utf8(capsys, data):
    p = data / "text"
    p.write_bytes(p.read_bytes().replace(b"YES", b"Y\xe9S", 1))
    rc, _, err = _validate(capsys, data)
    assert_cli_error(rc, err, "prepare-data", f"{p}:1", "not valid UTF-8")


def test_missing_data_dir_and_required_file(tmp_path, capsys, data):
    rc, _, err = _validate(capsys, tmp_path / "nope")
    assert_cli_error(rc, err, "prepare-data", str(tmp_path / "nope"), "no such data directory")
    (data / "utt2spk").unlink()
    rc, _, err = _validate(capsys, data)
    assert_cli_error(rc, err, "prepare-data", str(data / "utt2spk"), "no such file")


def test_bad_audio_in_wav_scp_named_with_line(tmp_path, capsys, data):
    lines = _lines(data / "wav.scp")
    key = lines[1].split()[0]
    lines[1] = f"{key} {tmp_path / 'gone.wav'}\n"
    (data / "wav.scp").write_text("".join(lines), encoding="utf-8")
    rc, _, err = run_cli(capsys, "prepare-data", "validate", "--check-audio", data)
    assert_cli_error(rc, err, "prepare-data", f"{data / 'wav.scp'}:2", "gone.wav", "no such audio file")


@pytest.mark.parametrize("form", ["cmd |", "| cmd"])
def test_pipe_in_wav_scp_refused_and_not_run(tmp_path, capsys, data, form):
    marker = tmp_path / "PLANTED"
    cmd = f"touch {marker}"
    lines = _lines(data / "wav.scp")
    key = lines[0].split()[0]
    lines[0] = f"{key} {cmd} |\n" if form == "cmd |" else f"{key} | {cmd}\n"
    (data / "wav.scp").write_text("".join(lines), encoding="utf-8")
    rc, _, err = run_cli(capsys, "prepare-data", "validate", "--check-audio", data)
    assert_cli_error(rc, err, "prepare-data", f"{data / 'wav.scp'}:1", "pipes in wav.scp are not supported")
    rc, _, err = run_cli(capsys, "compute-feats", data, tmp_path / "fbank", "--config", FBANK)
    assert_cli_error(rc, err, "compute-feats", "touch", "pipes in wav.scp are not supported")
    assert not marker.exists()
    assert not (data / "feats.scp").exists()


def test_oov_words_map_to_unk_and_are_counted(tmp_path, capsys, tiny):
    """Words outside the lexicon become <UNK> in training; the count is logged (train.log)."""
    data = tmp_path / "train"
    shutil.copytree(tiny.data, data)
    lines = _lines(data / "text")
    lines[0] = lines[0].rstrip("\n") + " MAYBE PERHAPS\n"
    (data / "text").write_text("".join(lines), encoding="utf-8")
    out = tmp_path / "exp"
    rc, _, err = run_cli(capsys, "train", "--config", tiny.train_conf, "--data", data, "--lang", tiny.lang,
                         "--out", out, "--epochs", "1")
    assert rc == 0, err
    log = (out / "train.log").read_text(encoding="utf-8")
    assert "OOV words in training transcripts were mapped to <UNK>" in log
    assert (out / "model.pt").is_file()


# ---------------------------------------------------------------------------
# Command line


@pytest.mark.parametrize("argv", [
    ["compute-feats", "--no-such-option", "a", "b"],
    ["transcribe", "--model-dir", "m", "--bogus", "x.wav"],
    ["no-such-command"],
    ["compute-feats", "a", "b", "--nj", "two"],
])
def test_unknown_options_exit_2_with_usage(capsys, argv):
    from asr.cli import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "usage: asr" in err and "error:" in err and "Traceback" not in err


def test_nj_zero(capsys, data, tmp_path):
    rc, _, err = run_cli(capsys, "compute-feats", data, tmp_path / "f", "--config", FBANK, "--nj", "0")
    assert_cli_error(rc, err, "compute-feats", "--nj")


def test_output_parent_is_a_file(tmp_path, capsys, data):
    blocker = tmp_path / "blocker"
    blocker.write_text("I am a file\n")
    rc, _, err = run_cli(capsys, "compute-feats", data, blocker / "fbank", "--config", FBANK)
    assert_cli_error(rc, err, "compute-feats", str(blocker))
    assert not (data / "feats.scp").exists()
    assert blocker.read_text() == "I am a file\n"


def test_prepare_lang_out_under_a_file(tmp_path, capsys):
    from reliability_fixtures import LEXICON

    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    rc, _, err = run_cli(capsys, "prepare-lang", LEXICON, blocker / "lang")
    assert_cli_error(rc, err, "prepare-lang", str(blocker))


def test_output_in_unwritable_dir(tmp_path, capsys, monkeypatch):
    """A directory we may not write to (simulated: root ignores permission bits)."""
    import tempfile

    from reliability_fixtures import LEXICON

    real_mkstemp = tempfile.mkstemp
    locked = tmp_path / "locked"

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and str(dir).startswith(str(locked)):
            raise PermissionError(13, "Permission denied", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    rc, _, err = run_cli(capsys, "prepare-lang", LEXICON, locked / "lang")
    line = assert_cli_error(rc, err, "prepare-lang", str(locked / "lang"))
    assert "Permission denied" in line
    assert not list(locked.rglob("*.tmp"))


def test_transcribe_model_dir_is_a_file(tmp_path, capsys):
    f = tmp_path / "model"
    f.write_text("x")
    rc, _, err = run_cli(capsys, "transcribe", "--model-dir", f, "x.wav")
    assert_cli_error(rc, err, "transcribe", str(f))
