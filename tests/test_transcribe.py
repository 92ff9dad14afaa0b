"""Tests of ``asr transcribe`` and asr.Recognizer with the yesno recipe's model (see decode_fixtures)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from decode_fixtures import ASR, HARD_UTT, REPO, read_ctm, read_table

import asr
from asr.cli import main
from asr.errors import AudioError

N_FILES = 3


@pytest.fixture(scope="module")
def test_files(yesno):
    """A few easy test utterances: ``[(utt, wav path, recipe hypothesis)]``."""
    wav = read_table(yesno.test_dir / "wav.scp")
    hyp = read_table(yesno.decode_dir / "text")
    utts = [u for u in sorted(wav) if u != HARD_UTT][:N_FILES]
    return [(u, wav[u], hyp[u]) for u in utts]


@pytest.fixture(scope="module")
def odd_files(test_files, tmp_path_factory):
    """Derived inputs from the first test file: stereo, 16 kHz, 0.1 s, empty."""
    import torchaudio.functional as AF

    d = tmp_path_factory.mktemp("odd audio")
    data, rate = sf.read(test_files[0][1], dtype="float32")
    assert data.ndim == 1 and rate == 8000
    stereo = d / "stereo.wav"
    sf.write(stereo, np.stack([data, data], axis=1), rate, subtype="PCM_16")
    up = d / "rate16k.wav"
    sf.write(up, AF.resample(torch.from_numpy(data), rate, 16000).clamp(-1, 1).numpy(), 16000, subtype="PCM_16")
    short = d / "short.wav"
    sf.write(short, data[: rate // 10], rate, subtype="PCM_16")
    empty = d / "empty.wav"
    empty.write_bytes(b"")
    return {"stereo": stereo, "16k": up, "short": short, "empty": empty, "missing": d / "missing.wav"}


def transcribe_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ASR), "transcribe", *args], capture_output=True, text=True, timeout=1800, cwd=REPO)


def test_cli_matches_recipe_and_handles_bad_and_converted_inputs(yesno, test_files, odd_files):
    good = [p for _, p, _ in test_files]
    bad = [odd_files["missing"], odd_files["empty"]]
    files = [good[0], str(bad[0]), good[1], str(bad[1]), str(odd_files["stereo"]), str(odd_files["16k"]), good[2]]
    proc = transcribe_cli("--model-dir", str(yesno.model_dir), *files)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr

    # One FILE<TAB>TRANSCRIPT line per readable file, in the order given.
    lines = proc.stdout.splitlines()
    result = dict(line.split("\t") for line in lines)
    assert [line.split("\t")[0] for line in lines] == [f for f in files if f not in map(str, bad)]
    for _, path, hyp in test_files:
        assert result[path] == hyp
    # Stereo (both channels the same) and 16 kHz copies give the mono 8 kHz file's words.
    assert result[str(odd_files["stereo"])] == test_files[0][2]
    assert result[str(odd_files["16k"])] == test_files[0][2]

    # Bad files: exactly one error line each, naming the file.
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 2, proc.stderr
    assert str(bad[0]) in errors[0] and "no such audio file" in errors[0]
    assert str(bad[1]) in errors[1] and "empty" in errors[1]
    # Conversions are warned about, naming the file.
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert any(str(odd_files["stereo"]) in w and "mono" in w for w in warnings), proc.stderr
    assert any(str(odd_files["16k"]) in w and "16000" in w and "8000" in w for w in warnings), proc.stderr


def test_cli_ctm_matches_recipe_ctm(yesno, test_files, capsys):
    utt, path, hyp = test_files[1]
    assert main(["transcribe", "--model-dir", str(yesno.model_dir), "--ctm", path]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    assert all(line[0] == path and line[1] == "1" for line in lines)
    assert " ".join(line[4] for line in lines) == hyp
    ref = [c for c in read_ctm(yesno.decode_dir / "ctm") if c[0] == utt]
    assert len(ref) == len(lines)
    for line, r in zip(lines, ref):
        assert float(line[2]) == pytest.approx(r[2], abs=0.011)
        assert float(line[3]) == pytest.approx(r[3], abs=0.021)
        assert 0.0 <= float(line[5]) <= 1.0


def test_very_short_file_gives_a_result(yesno, odd_files, capsys):
    assert main(["transcribe", "--model-dir", str(yesno.model_dir), str(odd_files["short"])]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1
    name, _, text = out[0].partition("\t")
    assert name == str(odd_files["short"])
    assert set(text.split()) <= {"YES", "NO"} and len(text.split()) <= 1


def test_empty_file_alone_exits_1_with_one_line(yesno, odd_files, capsys):
    assert main(["transcribe", "--model-dir", str(yesno.model_dir), str(odd_files["empty"])]) == 1
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.strip() == f"asr transcribe: error: {odd_files['empty']}: audio file is empty (0 bytes)"


def test_python_api_path_and_array_agree(yesno, test_files, odd_files, caplog):
    rec = asr.Recognizer.from_dir(yesno.model_dir)
    _, path, hyp = test_files[2]
    from_path = rec.transcribe(path)
    assert from_path.text == hyp
    assert [w.word for w in from_path.words] == hyp.split()
    data, rate = sf.read(path, dtype="float32")
    from_array = rec.transcribe(data, rate)
    assert from_array.text == from_path.text
    assert [w.start for w in from_array.words] == pytest.approx([w.start for w in from_path.words])
    # Tensors, and a (channels, samples) array, work too; the downmix is warned about.
    assert rec.transcribe(torch.from_numpy(data), rate).text == hyp
    with caplog.at_level("WARNING", logger="asr"):
        assert rec.transcribe(np.stack([data, data]), rate).text == hyp
    assert any("downmixing" in r.getMessage() for r in caplog.records)
    with pytest.raises(AudioError, match="sample_rate is required"):
        rec.transcribe(data)
