"""End-to-end test of recipes/yesno/run.sh (run once per session, see decode_fixtures)."""

from __future__ import annotations

import re
import shutil

from decode_fixtures import HARD_UTT, YESNO_CORPUS, read_table, run_recipe

from asr.cli import main

WER_RE = re.compile(r"^%WER (\d+\.\d+) \[ (\d+) / (\d+), (\d+) ins, (\d+) del, (\d+) sub \]$")


def test_recipe_runs_and_reports_wer(yesno_run):
    assert yesno_run.returncode == 0, yesno_run.stderr[-3000:]
    last = yesno_run.stdout.strip().splitlines()[-1]
    m = WER_RE.match(last)
    assert m, f"last stdout line is not a %WER line: {last!r}"
    wer, errors, words = float(m[1]), int(m[2]), int(m[3])
    assert words == 240  # 30 test files x 8 words
    assert wer <= 0.42 and errors <= 1
    # The same line is kept in the decode dir.
    assert (yesno_run.decode_dir / "wer").read_text().splitlines()[0] == last


def test_data_dirs_validate(yesno, capsys):
    for split, n in (("train", 30), ("test", 30)):
        assert main(["prepare-data", "validate", str(yesno.data / split), "--check-audio"]) == 0
        assert f"OK ({n} utterances" in capsys.readouterr().out
        text = read_table(yesno.data / split / "text")
        assert len(text) == n
        assert all(set(words.split()) <= {"YES", "NO"} for words in text.values())


def test_lang_graph_and_model_dir(yesno):
    lang = yesno.data / "lang"
    for name in ("words.txt", "phones.txt", "L.pt", "H.pt"):
        assert (lang / name).is_file(), name
    for name in ("HLG.pt", "G.pt", "lm.arpa"):
        assert (yesno.graph_dir / name).is_file(), name
    md = yesno.model_dir
    for name in ("model.yaml", "model.pt", "priors.pt", "lang/words.txt", "graph/HLG.pt"):
        assert (md / name).is_file(), name
    # The model dir's graph is the one it was trained with (data/lang_ug).
    assert (md / "graph" / "HLG.pt").read_bytes() == (yesno.graph_dir / "HLG.pt").read_bytes()
    assert (md / "lang" / "words.txt").read_text() == (lang / "words.txt").read_text()


def test_rerun_of_decoding_stage_only_gives_same_text(yesno):
    before = (yesno.decode_dir / "text").read_bytes()
    model_mtime = (yesno.model_dir / "model.pt").stat().st_mtime_ns
    feats_mtime = (yesno.test_dir / "feats.scp").stat().st_mtime_ns
    proc = run_recipe(yesno.workdir, "--stage", "6", "--stop-stage", "6")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "stage 6" in proc.stderr and "stage 5" not in proc.stderr and "stage 0" not in proc.stderr
    assert WER_RE.match(proc.stdout.strip().splitlines()[-1])
    assert (yesno.decode_dir / "text").read_bytes() == before
    # Earlier stages were not rerun.
    assert (yesno.model_dir / "model.pt").stat().st_mtime_ns == model_mtime
    assert (yesno.test_dir / "feats.scp").stat().st_mtime_ns == feats_mtime


def test_corpus_at_another_path_and_stop_stage(tmp_path):
    corpus = (tmp_path / "my corpus").resolve()  # a space in the path, too
    shutil.copytree(YESNO_CORPUS, corpus)
    work = tmp_path / "work"
    proc = run_recipe(work, "--corpus", str(corpus), "--stop-stage", "0", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    wav = read_table(work / "data" / "test" / "wav.scp")
    assert len(wav) == 30
    assert all(p.startswith(str(corpus) + "/") for p in wav.values())  # the copy's files are used
    # --stop-stage 0: data dirs only, no features, lang dir or models.
    assert not (work / "fbank").exists() and not (work / "exp").exists() and not (work / "data" / "lang").exists()


def test_missing_corpus_is_a_clear_error(tmp_path):
    proc = run_recipe(tmp_path / "work", "--corpus", str(tmp_path / "nowhere"), timeout=900)
    assert proc.returncode != 0
    assert "corpus dir not found" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "work" / "data").exists()


def test_hard_utterance_is_the_only_error(yesno):
    text = read_table(yesno.decode_dir / "text")
    ref = read_table(yesno.test_dir / "text")
    wrong = sorted(u for u in ref if text.get(u) != ref[u])
    assert set(wrong) <= {HARD_UTT}
