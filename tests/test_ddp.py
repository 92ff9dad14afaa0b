"""Training under torchrun with two processes (DDP, gloo on the CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from asr.model_dir import ModelDir
from reliability_fixtures import tiny  # noqa: F401


def test_torchrun_two_processes(tiny, tmp_path):  # noqa: F811
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
