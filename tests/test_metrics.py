"""MetricsTracker: summed training statistics, reduced over DDP ranks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from asr.training.metrics import MetricsTracker, epoch_message, per_frame_stats


def test_add_sums_every_key_in_first_seen_order() -> None:
    a = MetricsTracker.of_batch(12.5, 10, 2, {"correct": 7.0})
    b = MetricsTracker.of_batch(3.5, 4, 1, {"correct": 1.0, "unalignable": 1.0})
    total = a + b
    assert dict(total) == {"loss": 16.0, "frames": 14, "utterances": 3, "correct": 8.0, "unalignable": 1.0}
    assert list(total) == ["loss", "frames", "utterances", "correct", "unalignable"]
    assert dict(a) == {"loss": 12.5, "frames": 10, "utterances": 2, "correct": 7.0}  # + leaves its operands alone
    acc = MetricsTracker()
    acc += a
    acc.add(b)
    assert dict(acc) == dict(total)


def test_adding_to_an_empty_tracker_keeps_the_exact_floats() -> None:
    # The one-process logs must not change: sums start at 0.0 and add in order.
    losses = [0.1, 0.7, 1e-17, 3.3]
    acc = MetricsTracker()
    expected = 0.0
    for x in losses:
        acc.add(MetricsTracker.of_batch(x, 1, 1, {}))
        expected += x
    assert acc["loss"] == expected


def test_criterion_stats_may_not_shadow_the_base_sums() -> None:
    with pytest.raises(ValueError, match="frames"):
        MetricsTracker.of_batch(1.0, 2, 1, {"frames": 3.0})


def test_per_frame_report() -> None:
    t = MetricsTracker.of_batch(20.0, 8, 2, {"num": -4.0, "den": -6.0, "correct": 6.0, "unalignable": 1.0})
    assert t.per_frame() == {"loss": 2.5, "frame_acc": 0.75, "num": -0.5, "den": -0.75}
    assert t.criterion_per_frame() == {"num": -0.5, "den": -0.75}
    assert t.unalignable == 1
    assert MetricsTracker().per_frame() == {"loss": 0.0}
    assert per_frame_stats({"num": 3.0, "correct": 2.0}, 0) == {"num": 3.0}


def test_epoch_message() -> None:
    t = MetricsTracker.of_batch(20.0, 8, 2, {"num": -4.0, "correct": 6.0, "unalignable": 2.0})
    valid = {"loss": 3.0, "frame_acc": 0.5}
    assert epoch_message(4, t, valid) == (
        "epoch 4: train loss 2.5000, train frame acc 0.750, train num -0.5000, "
        "valid loss 3.0000, frame_acc 0.5000, 2 utterances too short for their transcript"
    )
    assert epoch_message(1, MetricsTracker.of_batch(1.0, 4, 1, {}), {}) == "epoch 1: train loss 0.2500"


def test_reduce_without_a_process_group_changes_nothing() -> None:
    assert not dist.is_initialized()
    t = MetricsTracker.of_batch(0.1 + 0.2, 3, 1, {"correct": 2.0})
    before = dict(t)
    t.reduce("cpu")
    assert dict(t) == before
    assert t["frames"] == 3 and isinstance(t["frames"], int)


def _reduce_worker(rank: int, store: str, out_dir: str) -> None:
    """One of two gloo ranks: each adds its own shard, reduces, and writes the result."""
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        shard = MetricsTracker.of_batch(1.5 + rank, 100 + rank, 2, {"correct": 10.0 * (rank + 1)})
        if rank == 1:  # a statistic only one rank saw must not misalign the packed tensor
            shard.add({"unalignable": 3.0})
        shard.reduce("cpu")
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(list(shard.items())))
    finally:
        dist.destroy_process_group()


def test_reduce_sums_over_two_gloo_ranks(tmp_path: Path) -> None:
    mp.spawn(_reduce_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    expected = [["loss", 4.0], ["frames", 201.0], ["utterances", 4.0], ["correct", 30.0], ["unalignable", 3.0]]
    assert results[0] == expected
    assert results[1] == expected
