"""recipes/template: the config scaler (local/scale_config.py) and the data-stage helpers, on tiny data dirs."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "recipes" / "template"
sys.path.insert(0, str(TEMPLATE / "local"))

import copy_data_dir  # noqa: E402
import feats_config  # noqa: E402
import scale_config as sc  # noqa: E402

from asr.errors import ConfigError  # noqa: E402


def make_data_dir(path: Path, speakers: int, utts_per_speaker: int, seconds: float) -> Path:
    """utt2dur and utt2spk of a corpus (the scaler reads nothing else)."""
    path.mkdir(parents=True)
    rows = [(f"s{s:02d}-u{u:03d}", f"s{s:02d}") for s in range(speakers) for u in range(utts_per_speaker)]
    (path / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in rows))
    (path / "utt2dur").write_text("".join(f"{u} {seconds}\n" for u, _ in rows))
    return path


def scaled(tmp_path: Path, kind: str, speakers: int, utts: int, seconds: float = 1.0, override: dict | None = None):
    tmp_path.mkdir(exist_ok=True)
    data = make_data_dir(tmp_path / "data", speakers, utts, seconds)
    args = ["--data", str(data), "--base", str(TEMPLATE / "conf" / f"{kind}.yaml"), "--kind", kind]
    if override is not None:
        (tmp_path / "override.yaml").write_text(yaml.safe_dump(override))
        args += ["--override", str(tmp_path / "override.yaml")]
    out = tmp_path / "out.yaml"
    assert sc.main(args + [str(out)]) == 0
    cfg = yaml.safe_load(out.read_text())
    corpus = sc.read_corpus(data, {})
    frames = sc.training_frames(corpus, cfg["valid_fraction"], 0, 1 + len(cfg.get("speed_perturb") or []))
    return cfg, cfg["epochs"] * sc.steps_per_epoch(frames, cfg["max_frames"]), out


@pytest.mark.parametrize("speakers,utts,seconds", [(1, 30, 6.0), (6, 200, 0.9), (74, 13, 3.0), (3, 2, 0.5)])
def test_flat_start_warmups_end_before_training(tmp_path, speakers, utts, seconds):
    cfg, total, _ = scaled(tmp_path, "flat_start", speakers, utts, seconds)
    lo, hi = sc.KIND_RULES["flat_start"].epochs
    assert lo <= cfg["epochs"] <= hi
    assert 0 < cfg["prior_warmup_steps"] < total
    assert cfg["scheduler"]["warmup_steps"] < cfg["prior_warmup_steps"]
    assert cfg["prior_warmup_steps"] == int(sc.KIND_RULES["flat_start"].prior_warmup_fraction * total)


def test_target_steps_reached_when_the_epoch_range_allows(tmp_path):
    cfg, total, _ = scaled(tmp_path, "ce", 20, 100, 2.0, override={"ce": {"speed_perturb": []}})
    assert sc.KIND_RULES["ce"].epochs[0] < cfg["epochs"] < sc.KIND_RULES["ce"].epochs[1]
    assert total >= sc.KIND_RULES["ce"].target_steps
    per_epoch = total // cfg["epochs"]
    assert total - per_epoch < sc.KIND_RULES["ce"].target_steps  # one epoch fewer would fall short
    assert sc.RULES.max_frames_range[0] <= cfg["max_frames"] <= sc.RULES.max_frames_range[1]


def test_tiny_corpus_gets_several_batches_an_epoch(tmp_path):
    cfg, total, _ = scaled(tmp_path, "flat_start", 1, 30, 6.0)  # yesno-sized
    assert total // cfg["epochs"] >= sc.RULES.min_batches_per_epoch
    assert cfg["model"]["hidden"] == sc.width_for(0.05)


# 5 or 6 equal speakers: one of them is 20% or 17% of the data, more than training tolerates (15%).
@pytest.mark.parametrize("speakers,expected", [(1, 0.0), (4, 0.0), (6, 0.0), (7, 0.1), (74, 0.1)])
def test_speakers_held_out_only_with_enough_speakers(tmp_path, speakers, expected):
    cfg, _, _ = scaled(tmp_path, "ce", speakers, 10)
    assert cfg["valid_fraction"] == expected


def test_override_wins_key_by_key(tmp_path):
    override = {"all": {"device": "cuda", "model": {"dropout": 0.1}}, "ce": {"epochs": 3, "model": {"hidden": 512}},
                "mmi": {"epochs": 99}}
    cfg, _, out = scaled(tmp_path, "ce", 6, 50, override=override)
    assert cfg["device"] == "cuda" and cfg["epochs"] == 3
    assert cfg["model"]["hidden"] == 512 and cfg["model"]["dropout"] == 0.1
    assert cfg["model"]["type"] == "tdnn" and "context" in cfg["model"]  # nested keys merged, not replaced
    assert out.read_text().startswith("# Written by recipes/template/local/scale_config.py")


def test_speed_perturbed_copies_keep_the_epochs_and_add_steps(tmp_path):
    perturbed, perturbed_steps, _ = scaled(tmp_path / "a", "ce", 20, 100, 2.0)  # the template's default
    plain, plain_steps, _ = scaled(tmp_path / "b", "ce", 20, 100, 2.0, override={"ce": {"speed_perturb": []}})
    assert perturbed["speed_perturb"] == [0.9, 1.1] and plain["speed_perturb"] == []
    # Kaldi's train_sp: the same epochs and batches over three copies of the data, so about 3x the updates.
    assert perturbed["epochs"] == plain["epochs"] and perturbed["max_frames"] == plain["max_frames"]
    assert 2.5 * plain_steps <= perturbed_steps <= 3.5 * plain_steps
    assert perturbed["scheduler"]["warmup_steps"] == int(sc.KIND_RULES["ce"].warmup_fraction * perturbed_steps)


def test_override_warmup_too_long_is_warned(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        scaled(tmp_path, "flat_start", 1, 10, override={"flat_start": {"prior_warmup_steps": 10**6}})
    assert any("prior_warmup_steps = 1000000 is not below" in r.getMessage() for r in caplog.records)


def test_override_unknown_section_is_an_error(tmp_path):
    (tmp_path / "o.yaml").write_text("epochs: 3\n")
    with pytest.raises(ConfigError, match="unknown section 'epochs'"):
        sc.read_override(str(tmp_path / "o.yaml"), "ce")


def test_frames_follow_kaldi_framing():
    assert sc.num_frames(1.0, 25.0, 10.0, True) == 98
    assert sc.num_frames(1.0, 25.0, 10.0, False) == 100


def test_feats_config_narrowband():
    assert feats_config.feats_config(8000)["num_mel_bins"] == feats_config.NARROWBAND_MEL_BINS
    wide = feats_config.feats_config(16000)
    assert wide["sample_rate"] == 16000 and wide["num_mel_bins"] == 40


def test_copy_data_dir_adds_utt2dur(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(8000, dtype=np.float32), 16000)
    (src / "wav.scp").write_text(f"s1-a {wav}\n")
    (src / "text").write_text("s1-a HELLO\n")
    (src / "utt2spk").write_text("s1-a s1\n")
    (src / "spk2utt").write_text("s1 s1-a\n")
    copy_data_dir.copy_data_dir(src, tmp_path / "dest")
    assert (tmp_path / "dest" / "utt2dur").read_text().split() == ["s1-a", "0.5"]
    assert (tmp_path / "dest" / "text").read_text() == "s1-a HELLO\n"


def test_run_sh_usage():
    proc = subprocess.run([str(TEMPLATE / "run.sh"), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "--train DATA_DIR --test DATA_DIR" in proc.stdout
    proc = subprocess.run([str(TEMPLATE / "run.sh"), "--no-such-option", "x"], capture_output=True, text=True)
    assert proc.returncode == 2 and "unknown option: --no-such-option" in proc.stderr


YESNO = ROOT.parent / "shared" / "corpora" / "yesno"


@pytest.mark.slow
@pytest.mark.skipif(not YESNO.is_dir(), reason=f"yesno corpus not found at {YESNO}")
def test_yesno_through_the_template_reaches_its_floor(tmp_path):
    """No hand-set values: yesno's data dirs and lexicon in, the scaler picks the rest."""
    asr = ROOT / ".venv" / "bin" / "asr"
    subprocess.run([str(asr), "prepare-data", "yesno", str(YESNO), str(tmp_path / "import")], check=True,
                   capture_output=True)
    proc = subprocess.run([str(TEMPLATE / "run.sh"), "--train", str(tmp_path / "import" / "train"),
                           "--test", str(tmp_path / "import" / "test"),
                           "--lexicon", str(ROOT / "lexicon" / "yesno" / "lexicon.txt"),
                           "--workdir", str(tmp_path / "work")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("%WER") and "/ 240," in last
    errors = int(last.split("[ ")[1].split(" /")[0])
    assert errors <= 1, last  # 1/240: 0_1_0_1_0_0_0_0.wav holds seven spoken words, not eight
