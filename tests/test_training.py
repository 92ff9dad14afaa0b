"""Tests of asr.training on tiny synthetic data: flat start, alignment, priors, resume, CE, asr align."""

from __future__ import annotations

import logging
import math
import re
import shutil
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch

from asr.cli import main as asr_main
from asr.config import load_config
from asr.fileio import safe_torch_load
from asr.model_dir import ModelDir
from asr.models.priors import estimate_log_priors, scaled_log_likelihoods
from asr.training.alignment import alignment_segments, forced_align
from asr.training.graphs import NumeratorGraphCompiler
from asr.training.run import train

from helpers_tiny import make_data_dir, one_hot_log_probs, synth_utterance, train_config

SHORT_UTT = "s9_u00"  # 4 frames for three 3-state words: cannot be aligned


def _epoch_losses(log_file: Path) -> dict[int, float]:
    text = log_file.read_text()
    return {int(e): float(l) for e, l in re.findall(r"epoch (\d+): train loss (-?[\d.]+)", text)}


@pytest.fixture(scope="module", autouse=True)
def asr_info_logging():
    """train.log mirrors the 'asr' logger, which only the CLI sets to INFO."""
    logger = logging.getLogger("asr")
    old = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(old)


@pytest.fixture(scope="module")
def setup(asr_info_logging, tmp_path_factory, tiny_lang):
    """A lang dir, a data dir (with one too-short utterance) and a flat-start model."""
    tmp = tmp_path_factory.mktemp("train")
    lang = tiny_lang
    rng = np.random.default_rng(1)
    data = make_data_dir(
        tmp / "data", None, num_speakers=3, utts_per_speaker=4, seed=0,
    )
    # Append the short utterance (its own speaker) to the data dir.
    transcripts = {l.split()[0]: l.split()[1:] for l in (data / "text").read_text().splitlines()}
    transcripts[SHORT_UTT] = ["A", "B", "A"]
    feats = {u: synth_utterance(w, rng) for u, w in transcripts.items()}
    feats[SHORT_UTT] = feats[SHORT_UTT][:4]
    shutil.rmtree(data)
    make_data_dir(data, transcripts, feats=feats)
    cfg = train_config(tmp / "flat.yaml", "flat-start", epochs=6)
    flat = tmp / "flat"
    trainer = train(cfg, data, lang.path, flat)
    return {"tmp": tmp, "lang": lang, "data": data, "flat": flat, "trainer": trainer, "transcripts": transcripts}


def test_flat_start_lowers_loss_and_writes_model_dir(setup):
    losses = _epoch_losses(setup["flat"] / "train.log")
    assert sorted(losses) == [1, 2, 3, 4, 5, 6]
    assert losses[6] < losses[1] - 0.1, losses
    log_text = (setup["flat"] / "train.log").read_text()
    # The 4-frame utterance is counted, not allowed to poison the batch.
    assert "1 utterances too short for their transcript" in log_text
    assert "non-finite gradient" not in log_text
    md = ModelDir.load(setup["flat"])
    assert md.lang.num_pdfs == 7 and md.log_priors is None
    assert sorted(p.name for p in (setup["flat"] / "checkpoints").glob("epoch-*.pt"))[-1] == "epoch-6.pt"
    events = list((setup["flat"] / "tensorboard").glob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)


def test_forced_align_hand_made_case(tiny_lang):
    lang = tiny_lang
    compiler = NumeratorGraphCompiler(lang)
    A, B = lang.words["A"], lang.words["B"]
    SIL, PA, PB = (lang.phones[p] for p in ("SIL", "PA", "PB"))
    # SIL_0=1; PA_0..2=2..4; PB_0..2=5..7
    path = [1, 1, 2, 3, 3, 4, 5, 6, 7, 7, 1]
    graphs = compiler.compile([[A, B]])
    log_probs = one_hot_log_probs(path, lang.num_pdfs)
    (ali,) = forced_align(log_probs, torch.tensor([len(path)]), graphs, 20.0)
    assert ali.pdfs.tolist() == path
    assert ali.phone_starts == [(0, SIL), (2, PA), (6, PB), (10, SIL)]
    assert ali.word_starts == [(2, A), (6, B)]
    # Viterbi score: the frames' log-probs plus L's three silence decisions
    # (silence at the start, none after A, silence after B), each log(0.5).
    frame_score = sum(float(log_probs[0, t, p - 1]) for t, p in enumerate(path))
    assert ali.score == pytest.approx(frame_score + 3 * math.log(0.5), abs=1e-4)
    phone_segs, word_segs = alignment_segments(ali, {SIL})
    assert phone_segs == [(0, 2, SIL), (2, 4, PA), (6, 4, PB), (10, 1, SIL)]
    assert word_segs == [(2, 4, A), (6, 4, B)]
    # Even when the scores favour another path, the alignment follows the transcript.
    (ali_ba,) = forced_align(one_hot_log_probs(path, lang.num_pdfs), torch.tensor([len(path)]),
                             compiler.compile([[B, A]]), 20.0)
    assert [w for _, w in ali_ba.word_starts] == [B, A]
    # Too short: two 3-state words need 6 frames.
    (none,) = forced_align(one_hot_log_probs([2, 3, 4, 5, 6], lang.num_pdfs), torch.tensor([5]), graphs, 20.0)
    assert none is None


def test_priors_and_scaled_likelihoods():
    alis = [torch.tensor([1, 1, 2]), torch.tensor([3, 1])]
    log_priors = estimate_log_priors(alis, 4)
    assert log_priors.shape == (4,)
    assert float(log_priors.exp().sum()) == pytest.approx(1.0, abs=1e-6)
    # add-one smoothing: counts 1+[3, 1, 1, 0] = [4, 2, 2, 1]
    assert log_priors.exp().tolist() == pytest.approx([4 / 9, 2 / 9, 2 / 9, 1 / 9], abs=1e-6)
    log_post = torch.randn(2, 5, 4).log_softmax(-1)
    got = scaled_log_likelihoods(log_post, log_priors, 0.3)
    assert torch.allclose(got, 0.3 * (log_post - log_priors), atol=1e-6)
    assert torch.allclose(scaled_log_likelihoods(log_post, None, 0.5), 0.5 * log_post)


def test_resume_matches_uninterrupted_run(tmp_path, setup):
    data, lang = setup["data"], setup["lang"]
    cfg = train_config(tmp_path / "c.yaml", "flat-start", epochs=2, prior_scale=1.0, prior_warmup_steps=4)
    resumed_dir, straight_dir = tmp_path / "resumed", tmp_path / "straight"
    first = train(cfg, data, lang.path, resumed_dir)
    steps_per_epoch = first.step // 2
    assert steps_per_epoch > 0
    resumed = train(cfg, data, lang.path, resumed_dir, resume=True, overrides={"epochs": 4})
    straight = train(cfg, data, lang.path, straight_dir, overrides={"epochs": 4})
    assert resumed.start_epoch == 3
    assert resumed.step == straight.step == 4 * steps_per_epoch
    assert "continuing at epoch 3, step %d" % (2 * steps_per_epoch) in (resumed_dir / "train.log").read_text()
    assert _epoch_losses(resumed_dir / "train.log")[4] == pytest.approx(_epoch_losses(straight_dir / "train.log")[4])
    a = safe_torch_load(resumed_dir / "model.pt")
    b = safe_torch_load(straight_dir / "model.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_align_cli_and_ce_training(tmp_path, setup, caplog):
    flat, data, lang = setup["flat"], setup["data"], setup["lang"]
    ali_dir = tmp_path / "ali"
    with caplog.at_level(logging.WARNING, logger="asr"):
        rc = asr_main(["align", "--model-dir", str(flat), str(data), str(ali_dir),
                       "--config", "align.yaml"])
    assert rc == 0
    assert any("1 of 13 utterances could not be aligned" in r.getMessage() and SHORT_UTT in r.getMessage()
               for r in caplog.records)
    info = load_config(ali_dir / "info.yaml")
    assert info["aligned"] == 12 and info["failed"] == 1 and info["frame_shift"] == pytest.approx(0.01)

    num_frames = {l.split()[0]: int(l.split()[1]) for l in (data / "utt2num_frames").read_text().splitlines()}
    with kaldiio.ReadHelper(f"scp:{ali_dir / 'ali.scp'}") as reader:
        alis = {k: np.asarray(v) for k, v in reader}
    assert sorted(alis) == sorted(u for u in num_frames if u != SHORT_UTT)
    pdf_to_phone = lang.pdf_to_phone()
    sil = lang.phones["SIL"]
    phone_ctm = [l.split() for l in (ali_dir / "phone.ctm").read_text().splitlines()]
    for utt, ali in alis.items():
        assert len(ali) == num_frames[utt]
        assert ali.min() >= 1 and ali.max() <= lang.num_pdfs
        # Alignments respect the graph: each frame's pdf belongs to the phone it is aligned to,
        # and the non-silence phones spell the transcript.
        rows = [r for r in phone_ctm if r[0] == utt]
        frame_phone = []
        for r in rows:
            start, dur = round(float(r[2]) / 0.01), round(float(r[3]) / 0.01)
            assert start == len(frame_phone)
            frame_phone += [lang.phones[r[4]]] * dur
        assert frame_phone == pdf_to_phone[torch.from_numpy(ali.astype(np.int64))].tolist()
        spoken = [r[4] for r in rows if lang.phones[r[4]] != sil]
        assert spoken == ["P" + w for w in setup["transcripts"][utt]]
    for name in ("phone.ctm", "word.ctm"):
        lines = [l.split() for l in (ali_dir / name).read_text().splitlines()]
        assert lines
        for utt, chan, start, dur, _ in lines:
            assert chan == "1" and float(dur) > 0
            assert 0.0 <= float(start) and float(start) + float(dur) <= num_frames[utt] * 0.01 + 1e-6
    words = [l.split() for l in (ali_dir / "word.ctm").read_text().splitlines()]
    for utt in alis:
        assert [r[4] for r in words if r[0] == utt] == setup["transcripts"][utt]

    # CE training on those alignments writes a loadable model dir with priors.
    ce_dir = tmp_path / "ce"
    trainer = train(train_config(tmp_path / "ce.yaml", "ce", epochs=2), data, lang.path, ce_dir, ali_dir=ali_dir)
    assert trainer.step > 0
    assert (ce_dir / "priors.pt").is_file()
    md = ModelDir.load(ce_dir)
    assert md.info["criterion"] == "ce" and md.info["use_priors"] is True
    assert md.log_priors.shape == (lang.num_pdfs,)
    assert float(md.log_priors.exp().sum()) == pytest.approx(1.0, abs=1e-5)
    assert "train frame acc" in (ce_dir / "train.log").read_text()
    # The utterance without an alignment is left out of CE training, and the log says so.
    assert "1 utterances have no alignment" in (ce_dir / "train.log").read_text()
