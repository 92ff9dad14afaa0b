"""Online features and sliding-window CMVN equal their batch versions (issue 17, issue 14)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.errors import ConfigError
from asr.features.extract import compute_utterance_features
from asr.features.online import OnlineFeatures
from asr.features.online_cmvn import SlidingCmvn, SlidingCmvnConfig, sliding_cmvn


def kaldi_sliding_reference(x: np.ndarray, window: int, center: bool, min_window: int, norm_vars: bool,
                            prior: np.ndarray | None = None, prior_frames: float = 0.0) -> np.ndarray:
    """A direct port of Kaldi's SlidingWindowCmnInternal (transform/cmvn.cc), frame by frame with
    running sums, plus online2's SmoothOnlineCmvnStats prior; the code under test uses cumulative sums."""
    n, dim = x.shape
    out = np.zeros_like(x, dtype=np.float64)
    cur_sum = np.zeros(dim)
    cur_sumsq = np.zeros(dim)
    last_start = last_end = -1
    for t in range(n):
        if center:
            start = t - window // 2
            end = start + window
        else:
            start = t - window
            end = t + 1
        if start < 0:
            end -= start
            start = 0
        if not center and end > t:
            end = max(t + 1, min_window)
        if end > n:
            start -= end - n
            end = n
            start = max(start, 0)
        if last_start == -1:
            cur_sum = x[start:end].sum(axis=0)
            cur_sumsq = (x[start:end] ** 2).sum(axis=0)
        else:
            if start > last_start:
                assert start == last_start + 1
                cur_sum = cur_sum - x[last_start]
                cur_sumsq = cur_sumsq - x[last_start] ** 2
            if end > last_end:
                assert end == last_end + 1
                cur_sum = cur_sum + x[last_end]
                cur_sumsq = cur_sumsq + x[last_end] ** 2
        last_start, last_end = start, end
        count, s, sq = float(end - start), cur_sum.copy(), cur_sumsq.copy()
        if prior is not None and count < window:
            w = min(prior_frames, window - count)
            s += w / prior[0, -1] * prior[0, :-1]
            sq += w / prior[0, -1] * prior[1, :-1]
            count += w
        mean = s / count
        out[t] = x[t] - mean
        if norm_vars:
            if count == 1:
                out[t] = 0.0
            else:
                var = np.maximum(sq / count - mean * mean, 1e-10)
                out[t] /= np.sqrt(var)
    return out


def random_feats(n: int, dim: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # a drifting mean, as a channel change would give
    return (rng.normal(size=(n, dim)) * 2.0 + np.linspace(0, 5, n)[:, None] + 10.0).astype(np.float32)


def prior_stats(dim: int = 6) -> np.ndarray:
    from asr.features.cmvn import cmvn_stats

    return cmvn_stats(random_feats(5000, dim, seed=7))


CONFIGS = [  # windows short of the 250-frame input, so that they slide
    dict(window=100, center=False, min_window=0, prior_frames=40.0),   # online2-style (the default, scaled down)
    dict(window=100, center=False, min_window=30, prior_frames=0.0),   # apply-cmvn-sliding (also scaled down)
    dict(window=50, center=True, min_window=0, prior_frames=0.0),
    dict(window=51, center=True, min_window=0, prior_frames=30.0),
    dict(window=40, center=False, min_window=40, prior_frames=10.0),
]


def config_id(o: dict) -> str:
    return f"w{o['window']}c{int(o['center'])}m{o['min_window']}p{o['prior_frames']:g}"


@pytest.mark.parametrize("norm_vars", [False, True])
@pytest.mark.parametrize("options", CONFIGS, ids=config_id)
def test_online_cmvn_frame_by_frame_equals_batch_exactly(options, norm_vars):
    check_online_equals_batch(random_feats(250), SlidingCmvnConfig(**options), norm_vars)


def test_online_cmvn_with_the_default_window():
    check_online_equals_batch(random_feats(700), SlidingCmvnConfig(), norm_vars=False)


def check_online_equals_batch(x: np.ndarray, cfg: SlidingCmvnConfig, norm_vars: bool) -> None:
    """Fed one frame at a time and in random chunks, the stream gives the batch frames bit for bit."""
    prior = prior_stats() if cfg.prior_frames else None
    batch = sliding_cmvn(torch.from_numpy(x), cfg, norm_vars, prior)
    assert batch.shape == x.shape and batch.dtype == torch.float32
    rng = np.random.default_rng(1)
    for sizes in ("one", "random"):
        online = SlidingCmvn(cfg, x.shape[1], norm_vars, prior)
        outs, pos, emitted = [], 0, 0
        while pos < len(x):
            k = 1 if sizes == "one" else int(rng.integers(1, 40))
            out = online.accept(torch.from_numpy(x[pos:pos + k]))
            pos += k
            emitted += len(out)
            # a frame comes out as soon as its window has arrived, never later
            if cfg.center:
                assert emitted == (min(pos, len(x)) - cfg.lookahead() if pos >= cfg.window else 0)
            else:
                assert emitted == (min(pos, len(x)) if pos >= cfg.min_window else 0)
            outs.append(out)
        outs.append(online.finish())
        assert torch.equal(torch.cat(outs), batch), sizes
    ref = kaldi_sliding_reference(x.astype(np.float64), cfg.window, cfg.center, cfg.min_window, norm_vars, prior,
                                  cfg.prior_frames)
    np.testing.assert_allclose(batch.numpy(), ref, atol=2e-5, rtol=1e-5)


def test_sliding_cmvn_short_inputs_and_single_frames():
    cfg = SlidingCmvnConfig(window=600, center=False, min_window=100, prior_frames=0.0)
    x = random_feats(30)  # shorter than min_window: every window is the whole utterance
    out = sliding_cmvn(torch.from_numpy(x), cfg)
    np.testing.assert_allclose(out.numpy(), x - x.mean(axis=0), atol=1e-4)
    one = sliding_cmvn(torch.from_numpy(x[:1]), SlidingCmvnConfig(prior_frames=0.0), norm_vars=True)
    assert torch.equal(one, torch.zeros(1, x.shape[1]))  # Kaldi: one frame has no variance
    # with the prior the first frame is normalised by the prior's statistics, mostly
    prior = prior_stats()
    first = sliding_cmvn(torch.from_numpy(x[:1]), SlidingCmvnConfig(prior_frames=200.0), prior=prior)
    expected = x[0] - (x[0] + 200 * prior[0, :-1] / prior[0, -1]) / 201
    np.testing.assert_allclose(first.numpy()[0], expected, rtol=1e-5)


def test_sliding_cmvn_memory_stays_bounded():
    cfg = SlidingCmvnConfig(window=100, prior_frames=0.0)
    online = SlidingCmvn(cfg, 3)
    for _ in range(200):
        online.accept(torch.randn(50, 3))
    assert online.received == 10000
    assert len(online._cum) <= 2 * cfg.window + 2 and len(online._pending) == 0


def test_sliding_config_rejects_bad_values():
    from asr.config import parse_config

    with pytest.raises(ConfigError, match=r"^f.yaml: 'sliding_cmvn.min_window' must be in 0..window \(50\), got 60$"):
        parse_config(SlidingCmvnConfig, {"window": 50, "min_window": 60}, "f.yaml", "sliding_cmvn.")
    with pytest.raises(ConfigError, match="unknown key 'sliding_cmvn.windw'"):
        parse_config(SlidingCmvnConfig, {"windw": 50}, "f.yaml", "sliding_cmvn.")


def feature_config(kind: str, rate: int, snip_edges: bool) -> dict:
    cfg = {"type": kind, "sample_rate": rate, "frame_length": 25.0, "frame_shift": 10.0, "dither": 0.0,
           "energy_floor": 0.0, "snip_edges": snip_edges}
    cfg["num_ceps" if kind == "mfcc" else "num_mel_bins"] = 13 if kind == "mfcc" else 23
    return cfg


def test_online_features_equal_batch_features():
    rng = np.random.default_rng(3)
    for kind, rate, snip in [("fbank", 8000, True), ("fbank", 16000, False), ("mfcc", 16000, True),
                             ("mfcc", 8000, False)]:
        cfg = feature_config(kind, rate, snip)
        n = int(rate * 1.37) + 3
        # speech-like: a few tones and noise
        t = np.arange(n) / rate
        wave = (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 1.3 * t) + 0.01 * rng.normal(size=n))
        wave = torch.from_numpy(wave.astype(np.float32))
        batch = compute_utterance_features(wave, cfg)
        for chunking in ("samples", "random", "whole"):
            online = OnlineFeatures(cfg)
            outs, pos = [], 0
            while pos < n:
                k = {"samples": 1 if pos < 700 else 997, "random": int(rng.integers(1, 3000)), "whole": n}[chunking]
                outs.append(online.accept(wave[pos:pos + k]))
                pos += k
            outs.append(online.finish())
            got = torch.cat(outs)
            assert got.shape == batch.shape, (kind, rate, snip, chunking)
            # Each frame sees the same samples. torchaudio's MFCC of a frame computed alone differs from the
            # same frame in a batch by up to 5e-5 (1.5e-5 relative: its DCT matrix product rounds differently
            # for other batch sizes), so MFCC gets that tolerance; fbank stays within 1e-5.
            tol = dict(rtol=1e-4, atol=1e-4) if kind == "mfcc" else dict(rtol=0.0, atol=1e-5)
            torch.testing.assert_close(got, batch, **tol, msg=str((kind, rate, snip, chunking)))


def test_online_features_of_short_input_and_refused_options():
    cfg = feature_config("fbank", 8000, False)
    online = OnlineFeatures(cfg)
    assert len(online.accept(torch.zeros(150))) == 0  # shorter than one 200-sample window
    assert len(online.finish()) == len(compute_utterance_features(torch.zeros(150), cfg)) == 0
    with pytest.raises(ConfigError, match="subtract_mean"):
        OnlineFeatures(dict(cfg, subtract_mean=True))
