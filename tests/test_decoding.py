"""Tests of asr.decoding and ``asr decode`` (mostly with the yesno recipe's model, see decode_fixtures)."""

from __future__ import annotations

import math
import re

import k2
import pytest
import torch

from decode_fixtures import HARD_UTT, copy_decode_dir, read_ctm, read_table

from asr.cli import main
from asr.decoding.decode_dir import job_paths, sweep
from asr.decoding.rescore import prepare_rescoring_g, rescore_with_lm
from asr.decoding.search import read_paths, rescore_best_paths
from asr.fileio import atomic_torch_save
from asr.lang.fsa_io import fsa_to_tensors
from asr.lang.lang_dir import SymbolTable
from asr.models.priors import scaled_log_likelihoods

WER_RE = re.compile(r"%WER (\d+\.\d+) \[ (\d+) / (\d+),")


def decode(yesno, out, *extra: str) -> int:
    return main(["decode", "--model-dir", str(yesno.model_dir), str(yesno.test_dir), str(out), *extra])


# --- outputs of the recipe's decoding ------------------------------------------------------------


def test_text_equals_reference_for_learnable_utterances(yesno):
    hyp = read_table(yesno.decode_dir / "text")
    ref = read_table(yesno.test_dir / "text")
    assert sorted(hyp) == sorted(ref)
    assert list(hyp) == sorted(hyp, key=str.encode)  # Kaldi (C) order
    for utt in ref:
        if utt != HARD_UTT:
            assert hyp[utt] == ref[utt], utt
    # The hard file has 7 spoken words: the hypothesis is the reference less one word.
    assert len(hyp[HARD_UTT].split()) in (7, 8)


def test_ctm_times_confidences_and_words(yesno):
    ctm = read_ctm(yesno.decode_dir / "ctm")
    dur = {u: float(d) for u, d in read_table(yesno.test_dir / "utt2dur").items()}
    hyp = read_table(yesno.decode_dir / "text")
    words: dict[str, list[str]] = {u: [] for u in hyp}
    last_end: dict[str, float] = {}
    for utt, ch, start, d, word, conf in ctm:
        assert ch == "1"
        assert start >= 0 and d > 0
        assert start + d <= dur[utt] + 1e-6, (utt, start, d, dur[utt])
        assert 0.0 <= conf <= 1.0
        assert start >= last_end.get(utt, 0.0) - 1e-6, "words overlap or are out of order"
        last_end[utt] = start + d
        words[utt].append(word)
    assert {u: " ".join(w) for u, w in words.items()} == hyp
    # A well-trained model is confident about these easy words.
    assert sum(c for *_, c in ctm) / len(ctm) > 0.5


def test_parallel_jobs_identical_and_rerun_redoes_only_missing_job(yesno, tmp_path):
    out = tmp_path / "decode_nj2"
    assert decode(yesno, out, "--nj", "2") == 0
    # The recipe decoded with --nj 1.
    for name in ("text", "ctm"):
        assert (out / name).read_bytes() == (yesno.decode_dir / name).read_bytes(), name
    assert all(p.is_file() for j in (1, 2) for p in job_paths(out, j))
    assert not job_paths(out, 3)[0].exists()
    # Remove one of job 2's outputs: only job 2 is redone.
    job1 = {p: p.stat().st_mtime_ns for p in job_paths(out, 1)}
    job2 = {p: p.stat().st_mtime_ns for p in job_paths(out, 2)}
    job_paths(out, 2)[2].unlink()
    text, ctm = (out / "text").read_bytes(), (out / "ctm").read_bytes()
    (out / "text").unlink()
    assert decode(yesno, out, "--nj", "2") == 0
    assert {p: p.stat().st_mtime_ns for p in job_paths(out, 1)} == job1
    assert all(p.is_file() and p.stat().st_mtime_ns > job2[p] for p in job_paths(out, 2) if p in job2)
    assert (out / "text").read_bytes() == text and (out / "ctm").read_bytes() == ctm


# --- LM-weight / penalty sweep -------------------------------------------------------------------


def test_sweep_writes_wer_files_and_best_is_minimum(yesno, tmp_path, capsys):
    out = copy_decode_dir(yesno.decode_dir, tmp_path / "decode")
    assert decode(yesno, out, "--sweep") == 0
    printed = capsys.readouterr().out
    scoring = out / "scoring"
    files = sorted(scoring.glob("wer_*"))
    assert len(files) == 8 * 3  # asr/conf/decode.yaml: 8 LM weights x 3 penalties
    wers = {}
    for f in files:
        m = WER_RE.match(f.read_text())
        assert m, f
        assert int(m[3]) == 240
        wers[f] = float(m[1])
    best = (scoring / "best_wer").read_text().strip()
    m = WER_RE.match(best)
    assert m and float(m[1]) == min(wers.values())
    best_file = best.split()[-1]
    assert wers[scoring / best_file.rsplit("/", 1)[-1]] == min(wers.values())
    assert "best over the sweep" in printed and best in printed
    assert min(wers.values()) <= 0.42


def two_word_lattice(am: tuple[float, float], lm: tuple[float, float]) -> k2.Fsa:
    """One frame, two competing arcs: pdf 1 / word 3 (NO) and pdf 2 / word 4 (YES)."""
    s = "\n".join(["0 1 1 3 0.0", "0 1 2 4 0.0", "1 2 -1 -1 0.0", "2"])
    lat = k2.Fsa.from_str(s, acceptor=False)
    lat.am_scores = torch.tensor([am[0], am[1], 0.0])
    lat.lm_scores = torch.tensor([lm[0], lm[1], 0.0])
    lat.scores = lat.am_scores + lat.lm_scores
    return k2.create_fsa_vec([lat])


WORDS = SymbolTable({"<eps>": 0, "<SIL>": 1, "<UNK>": 2, "NO": 3, "YES": 4, "#0": 5, "<s>": 6, "</s>": 7})


def test_sweep_picks_known_best_lm_weight(tmp_path):
    # AM prefers NO by 2 (unscaled); the LM prefers YES by 1.  With acoustic
    # scale 1/LMWT: LMWT 1 -> NO, LMWT 10 -> YES (0.2 < 1).  The reference is YES.
    out = tmp_path / "dec"
    lat = two_word_lattice(am=(-1.0, -3.0), lm=(-2.0, -1.0))
    atomic_torch_save({"utt_ids": ["u1"], "acoustic_scale": 0.1, "lattice": fsa_to_tensors(lat)}, job_paths(out, 1)[2])
    ref = tmp_path / "ref"
    ref.write_text("u1 YES\n")
    best, wer = sweep(out, 1, ref, WORDS, [1, 10], [0.0])
    assert wer == 0.0
    assert best.endswith("wer_10_0") and best.startswith("%WER 0.00")
    assert (out / "scoring" / "wer_1_0").read_text().startswith("%WER 100.00 [ 1 / 1, 0 ins, 0 del, 1 sub ]")
    assert (out / "scoring" / "wer_10_0").read_text().startswith("%WER 0.00")
    assert (out / "scoring" / "best_wer").read_text().strip() == best


def test_sweep_word_penalty_removes_insertion(tmp_path):
    # Path A: one word NO; path B: NO YES (an insertion), slightly better before the penalty.
    s = "\n".join(["0 1 1 3 0.0", "0 2 1 3 0.0", "1 3 1 0 0.0", "2 3 2 4 0.0", "3 4 -1 -1 0.0", "4"])
    lat = k2.Fsa.from_str(s, acceptor=False)
    lat.am_scores = torch.tensor([-1.0, -1.0, -1.0, -0.5, 0.0])
    lat.lm_scores = torch.zeros(5)
    lat.scores = lat.am_scores.clone()
    out = tmp_path / "dec"
    atomic_torch_save(
        {"utt_ids": ["u1"], "acoustic_scale": 0.1, "lattice": fsa_to_tensors(k2.create_fsa_vec([lat]))},
        job_paths(out, 1)[2],
    )
    ref = tmp_path / "ref"
    ref.write_text("u1 NO\n")
    best, wer = sweep(out, 1, ref, WORDS, [1], [0.0, 1.0])
    assert wer == 0.0 and best.endswith("wer_1_1")
    assert "1 ins" in (out / "scoring" / "wer_1_0").read_text()


# --- rescoring with another LM -------------------------------------------------------------------


def test_rescore_with_lm_flips_best_path():
    # The decoding LM strongly prefers NO; the acoustics slightly prefer NO.
    lat = two_word_lattice(am=(-1.0, -1.5), lm=(-0.1, -5.0))
    best = rescore_best_paths(lat, 1.0, 0.0, 1.0)
    assert read_paths(best, [1])[0].word_ids == [3]
    # A new LM (a one-word acceptor) that strongly prefers YES.
    G = k2.Fsa.from_str("\n".join(["0 1 3 -6.0", "0 1 4 -0.2", "1 2 -1 0.0", "2"]), acceptor=True)
    G_r = prepare_rescoring_g(G, WORDS)
    new = rescore_with_lm(lat, G_r)
    assert torch.allclose(new.lm_scores.sort().values, torch.tensor([-6.0, -0.2, 0.0]).sort().values)
    # AM scores are kept: per word, am is as before.
    best = rescore_best_paths(new, 1.0, 0.0, 1.0)
    path = read_paths(best, [1])[0]
    assert path.word_ids == [4]
    assert path.frame_pdfs == [2]
    assert float(best.am_scores.sum()) == pytest.approx(-1.5)
    # With the AM weighted heavily enough, NO wins again (am gap 0.5, lm gap 5.8).
    assert read_paths(rescore_best_paths(new, 1.0, 0.0, 20.0), [1])[0].word_ids == [3]


def test_rescore_with_trigram_graph_dir(yesno, tmp_path, capsys):
    tri = tmp_path / "lang_tg"
    data = yesno.data
    assert main(["compile-graph", str(data / "lang"), str(tri), "--text", str(data / "train" / "text"),
                 "--order", "3"]) == 0
    assert (tri / "G.pt").is_file() and (tri / "HLG.pt").is_file()
    assert "\\3-grams:" in (tri / "lm.arpa").read_text()
    ref = read_table(yesno.test_dir / "text")
    hyp = read_table(yesno.decode_dir / "text")

    out = copy_decode_dir(yesno.decode_dir, tmp_path / "dec_tg")
    assert decode(yesno, out, "--rescore-graph-dir", str(tri)) == 0
    rescored = read_table(out / "text_rescored")
    assert sorted(rescored) == sorted(ref)
    assert all(set(w.split()) <= {"YES", "NO"} for w in rescored.values())
    assert (out / "text").read_bytes() == (yesno.decode_dir / "text").read_bytes()  # not redecoded
    m = WER_RE.search(capsys.readouterr().out)
    assert m and float(m[1]) <= 5.0  # scored on text_rescored

    # Rescoring with the LM used for decoding keeps the 1-best.
    out = copy_decode_dir(yesno.decode_dir, tmp_path / "dec_ug")
    assert decode(yesno, out, "--rescore-graph-dir", str(yesno.graph_dir)) == 0
    assert read_table(out / "text_rescored") == hyp


# --- acoustic scores -----------------------------------------------------------------------------


def test_scaled_log_likelihoods_bayes_rule():
    log_post = torch.tensor([[0.5, 0.5], [0.9, 0.1]]).log()
    log_prior = torch.tensor([0.8, 0.2]).log()
    llk = scaled_log_likelihoods(log_post, log_prior, 1.0)
    expected = torch.tensor([[0.625, 2.5], [1.125, 0.5]]).log()
    assert torch.allclose(llk, expected, atol=1e-6)
    assert torch.allclose(scaled_log_likelihoods(log_post, log_prior, 0.1), 0.1 * expected, atol=1e-6)
    assert torch.equal(scaled_log_likelihoods(log_post, None, 1.0), log_post)


def test_decoder_acoustic_scores_divide_by_priors(yesno):
    from asr.decoding.decoder import Decoder
    from asr.decoding.search import SearchConfig
    from asr.features.extract import load_features

    utt, feats = next(iter(load_features(yesno.test_dir)))
    x, lengths = feats.unsqueeze(0), torch.tensor([len(feats)])
    dec = Decoder.from_model_dir(yesno.model_dir, SearchConfig())
    log_prior = dec.md.log_priors
    assert log_prior is not None and math.isclose(float(log_prior.exp().sum()), 1.0, rel_tol=1e-4)
    log_post, am, out_lengths = dec.acoustic_scores(x, lengths)
    assert log_post.shape[-1] == log_prior.numel() and int(out_lengths[0]) == log_post.shape[1]
    assert torch.allclose(log_post.exp().sum(-1), torch.ones(log_post.shape[:2]), atol=1e-4)
    assert torch.allclose(am, log_post - log_prior, atol=1e-6)
    # Without priors the outputs are used as they are; prior_scale scales the priors.
    no_prior = Decoder.from_model_dir(yesno.model_dir, SearchConfig(), use_priors=False)
    assert torch.allclose(no_prior.acoustic_scores(x, lengths)[1], log_post, atol=1e-6)
    half = Decoder.from_model_dir(yesno.model_dir, SearchConfig(), prior_scale=0.5)
    assert torch.allclose(half.acoustic_scores(x, lengths)[1], log_post - 0.5 * log_prior, atol=1e-6)
