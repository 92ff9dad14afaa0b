"""Training under torchrun with two processes (DDP, gloo on the CPU)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import torch

from asr.fileio import safe_torch_load
from asr.model_dir import ModelDir
from asr.training.data import load_utterances


def test_torchrun_two_processes(tiny, tmp_path):
    out = tmp_path / "ddp"
    # --standalone: the rendezvous takes a free port, so two suites on one machine don't collide.
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "asr", "train", "--config", str(tiny.train_conf), "--data", str(tiny.data),
        "--lang", str(tiny.lang), "--out", str(out), "--graph-dir", str(tiny.graph),
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Both ranks trained (each logs its epochs to the console) ...
    assert proc.stderr.count("epoch 2:") == 2, proc.stderr[-3000:]
    # ... but only rank 0 wrote the log, the checkpoints and the model dir.
    log = (out / "train.log").read_text()
    assert log.count("epoch 2:") == 1
    assert sorted(p.name for p in (out / "checkpoints").glob("epoch-*.pt")) == ["epoch-1.pt", "epoch-2.pt"]
    md = ModelDir.load(out)
    assert md.model.num_pdfs == md.lang.num_pdfs
    assert_epoch_statistics_cover_both_shards(proc.stderr, log, out, md, tiny)


def assert_epoch_statistics_cover_both_shards(stderr: str, log: str, out: Path, md: ModelDir, tiny) -> None:
    """The epoch statistics are sums over both ranks' batches, and both ranks log the same line."""
    utts = load_utterances(tiny.data)
    # The tiny set makes an even number of batches (see _epoch_batches), so the
    # two shards together hold every utterance (each rank alone holds only its own).
    frames = int(md.model.output_lengths(torch.tensor([len(u.feats) for u in utts])).sum())
    for epoch in (1, 2):
        train = safe_torch_load(out / "checkpoints" / f"epoch-{epoch}.pt")["metrics"]["train"]
        assert train["utterances"] == len(utts) == 6, train
        assert train["frames"] == frames, train
        assert train["unalignable"] == 0, train
        logged = re.search(rf"epoch {epoch}: train loss (\S+) \(", log)
        assert logged and logged.group(1) == f"{train['loss'] / train['frames']:.4f}", (logged, train)
        # Rank 1 logs to the console only: the reduced line, the same as rank 0's.
        lines = re.findall(rf"\] (epoch {epoch}: .*) \(\d+\.\d s\)$", stderr, re.M)
        assert len(lines) == 2 and lines[0] == lines[1], lines
