"""Tests of asr.training.augment and asr.training.checkpoint_avg."""

from __future__ import annotations

import math

import pytest
import torch

from asr.errors import AsrError, ConfigError, ModelDirError
from asr.fileio import atomic_torch_save
from asr.training.augment import perturb_alignment, spec_augment, speed_perturb
from asr.training.checkpoint_avg import average_checkpoints

SPEC_CFG = {"num_freq_masks": 2, "max_freq_width": 5, "num_time_masks": 3, "max_time_width": 8, "max_time_ratio": None}


def masked_runs(mask: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a 1-D bool tensor."""
    runs, n = [], 0
    for v in mask.tolist() + [False]:
        if v:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs


def test_spec_augment_deterministic_and_within_limits() -> None:
    feats = torch.randn(60, 20) + 5.0  # no natural zeros
    outs = [spec_augment(feats, SPEC_CFG, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], spec_augment(feats, SPEC_CFG, torch.Generator().manual_seed(8)))
    assert torch.equal(feats, feats.clone())  # input untouched
    out = outs[0]
    zero = out == 0
    changed = out != feats
    assert torch.equal(zero, changed)
    freq_cols = zero.all(0)
    time_rows = zero.all(1)
    # every changed cell lies in a fully masked row or column
    assert torch.equal(changed, freq_cols[None, :] | time_rows[:, None])
    # overlapping masks can merge, so bound the union by count * width
    assert int(freq_cols.sum()) <= 2 * 5 and all(r <= 2 * 5 for r in masked_runs(freq_cols))
    assert int(time_rows.sum()) <= 3 * 8


def test_spec_augment_many_seeds_respect_widths() -> None:
    feats = torch.ones(30, 12)
    cfg = {"num_freq_masks": 1, "max_freq_width": 4, "num_time_masks": 1, "max_time_width": 6, "max_time_ratio": 0.1}
    for seed in range(50):
        out = spec_augment(feats, cfg, torch.Generator().manual_seed(seed))
        cols = (out == 0).all(0)
        rows = (out == 0).all(1)
        assert int(cols.sum()) <= 4 and len(masked_runs(cols)) <= 1
        assert int(rows.sum()) <= 3  # 0.1 * 30 caps the 6-frame width


def test_spec_augment_mean_value_and_bad_key() -> None:
    feats = torch.randn(10, 8)
    cfg = {"num_time_masks": 0, "num_freq_masks": 1, "max_freq_width": 8, "mask_value": "mean"}
    out = spec_augment(feats, cfg, torch.Generator().manual_seed(0))
    changed = (out != feats).any(0)
    assert torch.allclose(out[:, changed], feats.mean().expand(10, int(changed.sum())))
    with pytest.raises(ConfigError):
        spec_augment(feats, {"num_masks": 2}, torch.Generator())
    with pytest.raises(ConfigError):
        spec_augment(feats, {"max_time_width": -1}, torch.Generator())


@pytest.mark.parametrize("factor", [0.9, 1.0, 1.1])
def test_speed_perturb_length(factor: float) -> None:
    sr = 16000
    wav = torch.sin(torch.arange(sr // 10) * 0.05).unsqueeze(0)  # (1, 1600)
    out = speed_perturb(wav, sr, factor)
    assert out.shape[0] == 1
    assert abs(out.shape[1] - wav.shape[1] / factor) <= 2


def test_speed_perturb_bad_factor() -> None:
    with pytest.raises(ConfigError):
        speed_perturb(torch.zeros(100), 16000, 0.0)


@pytest.mark.parametrize("new_t", [7, 10, 13, 20, 41])
def test_perturb_alignment_keeps_order_and_length(new_t: int) -> None:
    ali = torch.tensor([1, 1, 1, 4, 4, 2, 2, 2, 2, 3, 5, 5, 5, 5, 1, 1])
    out = perturb_alignment(ali, new_t)
    assert out.shape == (new_t,) and out.dtype == ali.dtype
    assert torch.equal(torch.unique_consecutive(out), torch.unique_consecutive(ali))


def test_perturb_alignment_nearest_neighbour() -> None:
    ali = torch.tensor([0] * 10 + [1] * 10 + [2] * 10)
    assert perturb_alignment(ali, 27).tolist() == [0] * 9 + [1] * 9 + [2] * 9
    assert perturb_alignment(ali, 33).tolist() == [0] * 11 + [1] * 11 + [2] * 11
    assert torch.equal(perturb_alignment(ali, 30), ali)


def test_perturb_alignment_too_short() -> None:
    with pytest.raises(ValueError):
        perturb_alignment(torch.tensor([0, 1, 2, 3]), 3)


def _state(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "w": torch.randn(3, 4, generator=g),
        "b": torch.randn(4, generator=g).half(),
        "bn.num_batches_tracked": torch.tensor(10 * seed, dtype=torch.int64),
    }


def test_average_checkpoints(tmp_path) -> None:
    paths = []
    for seed in (1, 2):
        p = tmp_path / f"epoch{seed}.pt"
        atomic_torch_save({"model": _state(seed), "epoch": seed, "lr": 0.1}, p)
        paths.append(p)
    avg = average_checkpoints(paths)
    a, b = _state(1), _state(2)
    torch.testing.assert_close(avg["w"], (a["w"] + b["w"]) / 2)
    assert avg["b"].dtype == torch.float16
    torch.testing.assert_close(avg["b"], ((a["b"].double() + b["b"].double()) / 2).half())
    assert avg["bn.num_batches_tracked"].item() == 20


def test_average_checkpoints_errors(tmp_path) -> None:
    with pytest.raises(ModelDirError):
        average_checkpoints([])
    good = tmp_path / "a.pt"
    atomic_torch_save({"model": _state(1)}, good)
    other = tmp_path / "b.pt"
    atomic_torch_save({"model": {"w": torch.zeros(3, 4)}}, other)
    with pytest.raises(ModelDirError, match="b.pt"):
        average_checkpoints([good, other])
    notckpt = tmp_path / "c.pt"
    atomic_torch_save({"epoch": 1}, notckpt)
    with pytest.raises(ModelDirError, match="c.pt"):
        average_checkpoints([notckpt])
    with pytest.raises(AsrError):
        average_checkpoints([tmp_path / "missing.pt"])
    assert math.isfinite(float(average_checkpoints([good])["w"].sum()))
