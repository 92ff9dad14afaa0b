"""AN4 end to end (about 35 minutes on 2 cores): run with `tools/test.sh -m slow`."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
AN4 = REPO.parent / "shared" / "corpora" / "an4"


@pytest.mark.slow
def test_an4_recipe_end_to_end(tmp_path):
    if not AN4.is_dir():
        pytest.fail(f"AN4 corpus not found at {AN4}")
    work = tmp_path / "an4"
    proc = subprocess.run(
        [str(REPO / "recipes/an4/run.sh"), "--workdir", str(work)], capture_output=True, text=True, timeout=3600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # results.tsv: one row per system and LM; CE+MMI with the trigram, weight tuned on held-out speakers.
    rows = [l.split("\t") for l in (work / "results.tsv").read_text().splitlines()]
    header, rows = rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]
    assert header == ["system", "lm", "seed", "wer_decode_config", "wer_tuned_heldout", "wer_best_on_test"]
    # Default: per-speaker CMVN (names end in _spkcmvn) and one chosen tree (units tree<N>).
    trees = {re.search(r"_(tree\d+)_", r["system"]).group(1) for r in rows if "_tree" in r["system"]}
    assert len(trees) == 1, trees
    tree = trees.pop()
    systems = [f"blstm_{c}_{u}_spkcmvn" for c in ("ce", "mmi") for u in ("mono", tree)]
    assert {(r["system"], r["lm"]) for r in rows} == {(s, lm) for s in systems for lm in ("tg", "bg", "ug")}
    for system in ("blstm_mmi_mono_spkcmvn", f"blstm_mmi_{tree}_spkcmvn"):
        tg = next(r for r in rows if r["system"] == system and r["lm"] == "tg")
        assert float(tg["wer_tuned_heldout"]) < 10.0, tg
    # Alignment of the test set with the trained model.
    ali = work / "exp/blstm/ali_test"
    assert (ali / "ali.scp").is_file() and (ali / "word.ctm").stat().st_size > 0
    # `asr transcribe` gives the same words as the recipe's decode (same decode config).
    hyp = dict(
        (l.split(" ", 1) + [""])[:2] for l in (work / "exp/blstm/decode_test_tg/text").read_text().splitlines()
    )
    wav = dict(l.split(" ", 1) for l in (work / "data/test/wav.scp").read_text().splitlines())
    utts = sorted(hyp)[:5]
    out = subprocess.run(
        [str(REPO / ".venv/bin/asr"), "transcribe", "--model-dir", str(work / "exp/blstm"),
         "--graph-dir", str(work / "data/lang_tg"), "--config", str(REPO / "conf/an4/decode.yaml")]
        + [wav[u] for u in utts],
        capture_output=True, text=True, check=True,
    )
    got = [l.split("\t", 1)[1] for l in out.stdout.splitlines()]
    assert got == [hyp[u].strip() for u in utts]
