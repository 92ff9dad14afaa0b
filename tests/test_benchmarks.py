"""Smoke test of the benchmark suite (benchmarks/): a quick run on the yesno work dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
YESNO = ROOT / "recipes" / "yesno"


@pytest.mark.slow
def test_quick_decode_and_features(tmp_path):
    if not (YESNO / "exp" / "tdnn" / "model.pt").is_file():
        subprocess.run([str(YESNO / "run.sh")], cwd=ROOT, check=True)
    out = tmp_path / "results.json"
    md = tmp_path / "RESULTS.md"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "decode,features", "--repeats", "1",
         "--workdir", str(YESNO), "--out", str(out), "--write-results", str(md)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    for key in ("command", "machine", "sections", "model", "repeats"):
        assert key in result
    for key in ("nproc", "cpu_model", "torch", "k2", "git_commit", "git_dirty"):
        assert key in result["machine"]
    assert set(result["sections"]) == {"decode", "features"}
    decode = result["sections"]["decode"]
    assert decode["status"] == "ok"
    one = decode["data"]["threads_1"]
    for key in ("rtf", "features", "forward", "search", "model_load", "graph_load", "wer"):
        assert key in one
    assert {"median", "min", "max"} <= set(one["rtf"])
    assert one["rtf"]["median"] > 0
    assert 0.0 <= one["wer"] <= 100.0
    assert decode["data"]["audio_seconds"] > 0
    features = result["sections"]["features"]
    assert features["status"] == "ok"
    assert features["data"]["threads_1"]["audio_seconds_per_second"]["median"] > 0
    assert "## decode" in md.read_text()
