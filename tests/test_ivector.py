"""The i-vector chain (asr.adapt): UBM and extractor EM, online/offline extraction, storage."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from asr.adapt.config import ExtractorConfig, IvectorConfig, IvectorFeatureConfig, OnlineConfig, UbmConfig
from asr.adapt.ivector import sparse_stats, train_extractor
from asr.adapt.model import IvectorModel
from asr.adapt.online import (
    block_ids, frame_ivectors, offline_ivector, online_ivectors, pseudo_speakers,
)
from asr.adapt.train import extractor_stats, pca_and_ubm_frames, train_ivector_model
from asr.adapt.ubm import accumulate, em_iterations, splice_frames, train_ubm
from asr.errors import ModelDirError

FEAT_DIM = 6


def speaker_utterances(num_speakers: int = 4, utts: int = 6, frames: int = 40, seed: int = 0) -> list[torch.Tensor]:
    """Synthetic raw features: 3 'phone' clusters, shifted and scaled per speaker."""
    rng = np.random.default_rng(seed)
    phones = rng.normal(0, 3, (3, FEAT_DIM))
    out = []
    for _ in range(num_speakers):
        shift, scale = rng.normal(0, 1.5, FEAT_DIM), rng.uniform(0.7, 1.3)
        for _ in range(utts):
            labels = rng.integers(0, 3, frames)
            out.append(torch.tensor(scale * phones[labels] + shift + rng.normal(0, 0.5, (frames, FEAT_DIM)),
                                    dtype=torch.float32))
    return out


def tiny_config(**online) -> IvectorConfig:
    return IvectorConfig(
        features=IvectorFeatureConfig(splice=1, pca_dim=8),
        ubm=UbmConfig(num_gauss=8, split_iters=1, num_iters=4, max_frames=0, chunk_frames=300),
        extractor=ExtractorConfig(ivector_dim=4, num_iters=5, subsample=1, min_count=0.0, num_gselect=3),
        online=OnlineConfig(**{"period": 5, **online}),
    )


@pytest.fixture(scope="module")
def trained() -> IvectorModel:
    cfg = tiny_config()
    feats = speaker_utterances()
    transform, frames = pca_and_ubm_frames(feats, cfg)
    ubm, _ = train_ubm(frames, cfg.ubm)
    model = IvectorModel(cfg, transform, ubm, None)  # type: ignore[arg-type]
    model.extractor, _ = train_extractor(ubm, extractor_stats(model, feats, 1), cfg.extractor)
    return model


def test_splice_replicates_edges_in_kaldi_layout() -> None:
    x = torch.arange(6.0).reshape(3, 2)
    assert splice_frames(x, 1).tolist() == [[0, 1, 0, 1, 2, 3], [0, 1, 2, 3, 4, 5], [2, 3, 4, 5, 4, 5]]


def test_ubm_em_log_likelihood_increases_every_iteration() -> None:
    cfg = tiny_config()
    _, frames = pca_and_ubm_frames(speaker_utterances(), cfg)
    ubm, history = train_ubm(frames, cfg.ubm)
    assert [n for n, _ in history] == [2, 4, 8, 8, 8, 8, 8]  # one EM iteration per split, then 4 at 8
    full = [ll for n, ll in history if n == 8]
    assert all(b > a for a, b in zip(full, full[1:])), full
    assert accumulate(ubm, frames, 300).log_likelihood / len(frames) > full[-1]  # the last M-step helped too
    assert full[-1] > history[0][1] + 0.3  # 8 Gaussians fit better than 2
    # ten more iterations: still never down (EM with a fixed variance floor)
    more: list = []
    em_iterations(ubm, frames, 10, cfg.ubm.variance_floor * frames.double().var(0), cfg.ubm, more)
    lls = [ll for _, ll in more]
    assert all(b >= a - 1e-9 for a, b in zip(lls, lls[1:])), lls


def test_extractor_em_objective_increases_every_iteration(trained: IvectorModel) -> None:
    cfg = trained.config
    stats = extractor_stats(trained, speaker_utterances(), 1)
    for update_sigma, update_prior in [(True, True), (False, False)]:
        ecfg = dataclasses.replace(cfg.extractor, num_iters=8, update_sigma=update_sigma, update_prior=update_prior)
        ext, history = train_extractor(trained.ubm, stats, ecfg)
        assert len(history) == 9
        assert all(b > a for a, b in zip(history, history[1:])), history
    assert ext.prior_offset == cfg.extractor.prior_offset  # not re-estimated when update_prior is off


def test_ivectors_separate_speakers(trained: IvectorModel) -> None:
    feats = speaker_utterances()
    vecs = torch.stack([offline_ivector(trained, [f]) for f in feats]).double()
    spk = torch.arange(len(feats)) // 6
    dist = torch.cdist(vecs, vecs)
    same = dist[(spk[:, None] == spk[None, :]) & ~torch.eye(len(feats), dtype=torch.bool)].mean()
    assert same < 0.5 * dist[spk[:, None] != spk[None, :]].mean()


def test_same_audio_twice_gives_identical_ivectors(trained: IvectorModel) -> None:
    f = speaker_utterances()[3]
    rows1, s1 = online_ivectors(trained, f)
    rows2, s2 = online_ivectors(trained, f.clone())
    assert torch.equal(rows1, rows2) and torch.equal(s1.quad, s2.quad)
    assert torch.equal(offline_ivector(trained, [f]), offline_ivector(trained, [f.clone()]))


def ivector_of_frames(model: IvectorModel, x, idx, post) -> torch.Tensor:
    """The i-vector of UBM features and posteriors given directly (the offline formula)."""
    ext = model.extractor
    return ext.ivector(*ext.projected(*sparse_stats(idx, post, x, ext.num_gauss))).float()


def test_online_at_the_end_equals_offline(trained: IvectorModel) -> None:
    ext = trained.extractor
    for f in speaker_utterances()[:5]:
        rows, state = online_ivectors(trained, f)
        assert rows.shape == (-(-len(f) // trained.period), ext.ivector_dim)
        at_end = ext.ivector(state.quad, state.lin).float()
        torch.testing.assert_close(at_end, offline_ivector(trained, [f]), atol=1e-4, rtol=0)
        # row k is the i-vector of frames 0..k*period (of the utterance's UBM features)
        x, idx, post = trained.posteriors(f)
        for k in (0, 3, len(rows) - 1):
            n = k * trained.period + 1
            torch.testing.assert_close(rows[k], ivector_of_frames(trained, x[:n], idx[:n], post[:n]), atol=1e-4,
                                       rtol=0)


def test_speaker_session_continues_the_statistics(trained: IvectorModel) -> None:
    a, b = speaker_utterances()[:2]
    _, after_a = online_ivectors(trained, a)
    rows_b, after_b = online_ivectors(trained, b, after_a)
    torch.testing.assert_close(trained.extractor.ivector(after_b.quad, after_b.lin).float(),
                               offline_ivector(trained, [a, b]), atol=1e-4, rtol=0)
    assert not torch.allclose(rows_b[0], online_ivectors(trained, b)[0][0])  # history counts from frame 0
    # Kaldi's max_remembered_frames: older statistics scaled down
    capped = after_a.remembered(10)
    assert capped.frames == 10 and torch.allclose(capped.quad, after_a.quad * 10 / len(a))
    assert after_a.remembered(0) is after_a


def test_frame_and_block_bookkeeping() -> None:
    assert block_ids(12, 5).tolist() == [0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3]
    rows = torch.arange(3.0).unsqueeze(1)
    assert frame_ivectors(rows, 5, 12).squeeze(1).tolist() == [0] * 5 + [1] * 5 + [2] * 2
    assert frame_ivectors(rows[:1], 5, 7).squeeze(1).tolist() == [0] * 7  # offline: one row for all
    spk = {"a": ["a1", "a2", "a3"], "b": ["b1"]}
    assert pseudo_speakers(spk, 2) == {"a-1": ["a1", "a2"], "a-2": ["a3"], "b-1": ["b1"]}
    assert pseudo_speakers(spk, 0) == spk


def test_model_dir_round_trip_and_one_line_errors(trained: IvectorModel, tmp_path: Path) -> None:
    trained.save(tmp_path / "iv")
    loaded = IvectorModel.load(tmp_path / "iv")
    f = speaker_utterances()[7]
    assert torch.equal(online_ivectors(loaded, f)[0], online_ivectors(trained, f)[0])
    assert loaded.config == trained.config
    (tmp_path / "iv" / "extractor.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelDirError, match=r"extractor.pt: (cannot load|refused to load)"):
        IvectorModel.load(tmp_path / "iv")
    (tmp_path / "iv" / "extractor.pt").unlink()
    with pytest.raises(ModelDirError, match=r"extractor.pt: missing from the i-vector extractor dir"):
        IvectorModel.load(tmp_path / "iv")
    torch.save({"T": torch.zeros(2, 2, 2), "sigma": torch.ones(2, 2), "prior_offset": torch.tensor(1.0)},
               tmp_path / "iv" / "extractor.pt")
    with pytest.raises(ModelDirError, match=r"do not fit a UBM of 8 Gaussians"):
        IvectorModel.load(tmp_path / "iv")
