"""Tests of asr.features: Kaldi compatibility, job outputs, CMVN and failures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as tak

from asr.config import load_config
from asr.data.audio import load_audio
from asr.data.datadir import DataDir, write_data_dir
from asr.errors import AudioError, ConfigError
from asr.features import (
    apply_cmvn,
    cmvn_stats,
    compute_features,
    compute_utterance_features,
    load_feature_config,
    load_features,
    read_matrix,
)

RATE = 8000


def _config(kind: str = "fbank") -> dict:
    cfg = load_config(f"{kind}.yaml")
    cfg["sample_rate"] = RATE
    return cfg


def _make_dir(tmp_path: Path, n: int = 5) -> Path:
    """A data dir of n noisy utterances over 2 speakers (deterministic)."""
    rng = np.random.default_rng(0)
    wav, text, utt2spk = {}, {}, {}
    for i in range(n):
        spk = f"s{i % 2}"
        utt = f"{spk}-u{i}"
        path = tmp_path / "audio" / f"{utt}.wav"
        path.parent.mkdir(exist_ok=True)
        x = (0.1 * rng.standard_normal(RATE // 4 + 400 * i)).clip(-1, 1).astype(np.float32)
        sf.write(path, x, RATE, subtype="PCM_16")
        wav[utt], text[utt], utt2spk[utt] = str(path), "YES", spk
    d = tmp_path / "data"
    write_data_dir(d, wav, text, utt2spk)
    return d


@pytest.mark.parametrize("kind", ["fbank", "mfcc"])
def test_matches_torchaudio(tmp_path: Path, kind: str) -> None:
    cfg = _config(kind)
    path = tmp_path / "a.wav"
    sf.write(path, (0.2 * np.random.default_rng(1).standard_normal(RATE)).clip(-1, 1), RATE)
    wave = load_audio(path, RATE)
    ours = compute_utterance_features(wave, cfg)
    kwargs = {k: v for k, v in cfg.items() if k not in ("type", "sample_rate", "norm_vars")}
    ref = getattr(tak, kind)(wave.unsqueeze(0) * 32768, sample_frequency=RATE, **kwargs)
    assert torch.equal(ours, ref)
    assert ours.shape == (98, 40 if kind == "fbank" else 13)


def test_bad_config() -> None:
    with pytest.raises(ConfigError, match="num_cepz"):
        compute_utterance_features(torch.zeros(8000), {**_config("mfcc"), "num_cepz": 3})
    with pytest.raises(ConfigError, match="type"):
        compute_utterance_features(torch.zeros(8000), {**_config(), "type": "plp"})


def test_compute_features_and_cmvn(tmp_path: Path) -> None:
    d = _make_dir(tmp_path)
    scp = compute_features(d, tmp_path / "feats", _config(), nj=1, cmvn="per-speaker")
    dd = DataDir.load(d)
    assert scp == dd.path / "feats.scp" and dd.feats_scp is not None
    assert set(dd.cmvn_scp) == {"s0", "s1"}
    assert load_feature_config(d)["cmvn"] == "per-speaker"
    raw = {u: read_matrix(dd.feats_scp[u]) for u in dd.utterances}
    assert all(m.dtype == np.float32 and m.shape[1] == 40 for m in raw.values())
    assert dd.utt2num_frames == {u: m.shape[0] for u, m in raw.items()}
    # Equal to extracting one utterance directly.
    u = dd.utterances[0]
    direct = compute_utterance_features(load_audio(dd.wav_scp[u], RATE), _config())
    np.testing.assert_array_equal(raw[u], direct.numpy())
    # Stats of speaker s0, Kaldi layout.
    stats = read_matrix(dd.cmvn_scp["s0"])
    s0 = np.concatenate([raw[u].astype(np.float64) for u in dd.spk2utt["s0"]])
    assert stats.dtype == np.float64 and stats.shape == (2, 41)
    np.testing.assert_allclose(stats[0, :40], s0.sum(0), rtol=1e-10)
    np.testing.assert_allclose(stats[1, :40], (s0 ** 2).sum(0), rtol=1e-10)
    assert stats[0, 40] == s0.shape[0] and stats[1, 40] == 0
    # load_features applies mean normalization: each speaker's frames average to 0.
    normed = dict(load_features(d))
    cat = torch.cat([normed[u] for u in dd.spk2utt["s0"]])
    assert cat.mean(0).abs().max() < 1e-3
    # And kaldiio reads our arks (the scp format is plain Kaldi).
    import kaldiio

    with kaldiio.ReadHelper(f"scp:{d / 'feats.scp'}") as reader:
        for utt, mat in reader:
            np.testing.assert_array_equal(mat, raw[utt])


def test_apply_cmvn_semantics() -> None:
    x = torch.randn(50, 4, dtype=torch.float64) * 3 + 5
    stats = cmvn_stats(x.numpy())
    m = apply_cmvn(x.float(), stats)
    assert torch.allclose(m.mean(0), torch.zeros(4), atol=1e-4)
    v = apply_cmvn(x.float(), stats, norm_vars=True)
    assert torch.allclose(v.std(0, unbiased=False), torch.ones(4), atol=1e-4)
    with pytest.raises(ValueError):
        apply_cmvn(x.float(), np.zeros((2, 5)))


def test_per_utterance_and_none(tmp_path: Path) -> None:
    d = _make_dir(tmp_path, n=3)
    compute_features(d, tmp_path / "f", _config("mfcc"), cmvn="per-utterance")
    dd = DataDir.load(d)
    assert set(dd.cmvn_scp) == set(dd.utt2spk)
    for _, f in load_features(d):
        assert f.mean(0).abs().max() < 1e-3
    compute_features(d, tmp_path / "f", _config("mfcc"), cmvn="none")
    assert not (d / "cmvn.scp").exists()
    raw = dict(load_features(d))
    assert raw[dd.utterances[0]].mean(0).abs().max() > 1e-2


def test_nj2_identical_and_rerun_skips(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = _make_dir(tmp_path)
    compute_features(d, tmp_path / "f1", _config(), nj=1)
    one = {u: read_matrix(s).tobytes() for u, s in DataDir.load(d).feats_scp.items()}
    cmvn1 = (tmp_path / "f1" / "cmvn_data.ark").read_bytes()
    nf1 = (d / "utt2num_frames").read_bytes()

    compute_features(d, tmp_path / "f2", _config(), nj=2)
    assert (tmp_path / "f2" / "raw_fbank_data.2.ark").is_file()
    two = {u: read_matrix(s).tobytes() for u, s in DataDir.load(d).feats_scp.items()}
    assert one == two
    assert (tmp_path / "f2" / "cmvn_data.ark").read_bytes() == cmvn1
    assert (d / "utt2num_frames").read_bytes() == nf1

    # Rerun: finished jobs are skipped; a job whose marker is gone is redone.
    ark1 = tmp_path / "f2" / "raw_fbank_data.1.ark"
    mtime = ark1.stat().st_mtime_ns
    (tmp_path / "f2" / "raw_fbank_data.2.done.json").unlink()
    with caplog.at_level("INFO", logger="asr"):
        compute_features(d, tmp_path / "f2", _config(), nj=2)
    assert ark1.stat().st_mtime_ns == mtime
    assert "job 1 already done" in caplog.text and "job 2 already done" not in caplog.text
    assert {u: read_matrix(s).tobytes() for u, s in DataDir.load(d).feats_scp.items()} == one
    # A changed config is not mistaken for finished work.
    compute_features(d, tmp_path / "f2", {**_config(), "num_mel_bins": 30}, nj=2)
    assert read_matrix(DataDir.load(d).feats_scp["s0-u0"]).shape[1] == 30


def test_bad_audio_leaves_no_outputs(tmp_path: Path) -> None:
    d = _make_dir(tmp_path, n=3)
    compute_features(d, tmp_path / "f", _config(), nj=1)
    bad = Path(DataDir.load(d).wav_scp["s0-u0"])
    bad.write_text("not audio at all\n")
    with pytest.raises(AudioError, match=bad.name):
        compute_features(d, tmp_path / "f", {**_config(), "num_mel_bins": 20}, nj=1)
    for name in ("feats.scp", "cmvn.scp", "utt2num_frames"):
        assert not (d / name).exists()
    left = sorted(p.name for p in (tmp_path / "f").iterdir() if p.name.startswith("raw_"))
    assert left == []  # the only job failed: its old outputs were for another config and are gone
    assert not [p for p in (tmp_path / "f").iterdir() if p.name.endswith(".tmp")]


def test_cli(tmp_path: Path) -> None:
    from asr.cli import main

    d = _make_dir(tmp_path, n=2)
    cfg = tmp_path / "fb.yaml"
    cfg.write_text("type: fbank\nsample_rate: 8000\nnum_mel_bins: 23\ndither: 0.0\n")
    assert main(["compute-feats", str(d), str(tmp_path / "f"), "--config", str(cfg), "--cmvn", "none"]) == 0
    assert len(dict(load_features(d))["s0-u0"][0]) == 23
    assert main(["compute-feats", str(d), str(tmp_path / "f"), "--config", str(tmp_path / "nope.yaml")]) == 1


def test_bad_audio_in_worker(tmp_path: Path) -> None:
    d = _make_dir(tmp_path, n=4)
    bad = Path(DataDir.load(d).wav_scp["s1-u3"])
    bad.write_bytes(b"")
    with pytest.raises(AudioError, match=bad.name):
        compute_features(d, tmp_path / "f", _config(), nj=2)
    assert not (d / "feats.scp").exists()
    assert not (tmp_path / "f" / "raw_fbank_data.2.ark").exists()
