"""Profile of the AN4 cross-entropy training step (benchmarks/README.md, "Profile of AN4 CE training").

Two modes, both on a finished AN4 work dir (``data/train``, ``data/lang``,
the flat-start alignments) with the recipe's stage-5 config:

- ``phases``: runs ``--epochs`` epochs exactly as ``Trainer.train`` does (same
  batches, SpecAugment, dropout and optimizer steps, TensorBoard scalars,
  validation and a checkpoint per epoch) with ``time.perf_counter`` around
  each phase, and prints the seconds and share of each.
- ``torch``: ``torch.profiler`` (CPU) over the first ``--batches`` batches of
  epoch 1 and one validation pass, with ``record_function`` labels per
  phase; prints the op table by self time and by total time and writes a
  Chrome trace into ``--out``.

Run as a script so that ``PYTHONPATH`` can point at another copy of ``asr``
(to time two versions back to back)::

    cd recipes/an4
    ../../.venv/bin/python ../../benchmarks/profile_train.py phases --out /tmp/prof_phases --epochs 2
    ../../.venv/bin/python ../../benchmarks/profile_train.py torch --out /tmp/prof_torch --batches 42
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def make_trainer(args: argparse.Namespace, epochs: int):
    """The ``Trainer`` that ``asr train`` builds for the CE config (``asr/training/run.py``)."""
    from asr.config import load_config
    from asr.lang.lang_dir import LangDir
    from asr.training.align import read_alignments
    from asr.training.criteria import CrossEntropyCriterion
    from asr.training.data import load_utterances, split_validation
    from asr.training.trainer import Trainer

    cfg = load_config(args.config)
    cfg["epochs"] = epochs
    setup = {}
    t = time.perf_counter()
    lang = LangDir.load(args.lang)
    alignments = read_alignments(args.ali_dir)
    setup["read alignments"] = time.perf_counter() - t
    t = time.perf_counter()
    utts = load_utterances(args.data, alignments)
    setup["load features"] = time.perf_counter() - t
    train, valid = split_validation(utts, float(cfg.get("valid_fraction", 0.1)), int(cfg.get("seed", 0)))
    t = time.perf_counter()
    trainer = Trainer(cfg, CrossEntropyCriterion(float(cfg.get("label_smoothing", 0.0))), train, valid, lang, args.out)
    setup["build trainer"] = time.perf_counter() - t
    return trainer, setup


def run_phases(args: argparse.Namespace) -> None:
    from torch.utils.tensorboard import SummaryWriter

    from asr.training.augment import spec_augment
    from asr.training.data import collate

    self, setup = make_trainer(args, args.epochs)
    acc: dict[str, float] = {}

    def tick(name: str, t: float) -> float:
        now = time.perf_counter()
        acc[name] = acc.get(name, 0.0) + now - t
        return now

    t = time.perf_counter()
    self.writer = SummaryWriter(str(Path(args.out) / "tensorboard"))
    tick("logging/TensorBoard", t)
    self.model.train()
    epoch_times = []
    for epoch in range(1, args.epochs + 1):
        t_epoch = t = time.perf_counter()
        gen = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        batches = self._epoch_batches(epoch)
        t = tick("batching: make_batches", t)
        tot_loss, tot_frames, correct = 0.0, 0, 0.0
        for idx in batches:
            t = time.perf_counter()
            batch = collate([self.train_utts[i] for i in idx])
            t = tick("batching: collate", t)
            for i, n in enumerate(batch.lengths.tolist()):
                batch.feats[i, :n] = spec_augment(batch.feats[i, :n], self.spec_augment_cfg, gen)
            t = tick("SpecAugment", t)
            log_probs, out_lengths = self.ddp_model(batch.feats.to(self.device), batch.lengths.to(self.device))
            t = tick("forward", t)
            out = self.criterion(log_probs, out_lengths.cpu(), batch)
            t = tick("loss (CE + targets)", t)
            self.optimizer.zero_grad(set_to_none=True)
            (out.loss / out.frames).backward()
            t = tick("backward", t)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip))
            t = tick("gradient clipping", t)
            self.optimizer.step()
            self.scheduler.step()
            t = tick("optimizer + scheduler", t)
            self.step += 1
            tot_loss += float(out.loss.detach())
            tot_frames += out.frames
            correct += out.stats["correct"]
            self.writer.add_scalar("train/loss", float(out.loss.detach()) / out.frames, self.step)
            self.writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.step)
            self.writer.add_scalar("train/grad_norm", grad_norm, self.step)
            t = tick("logging/TensorBoard", t)
        t = time.perf_counter()
        valid = self.validate()
        t = tick("validation", t)
        self.save_checkpoint(epoch)
        tick("checkpoint", t)
        epoch_times.append(time.perf_counter() - t_epoch)
        print(
            f"epoch {epoch}: {epoch_times[-1]:.2f} s, train loss {tot_loss / tot_frames:.4f}, "
            f"frame acc {correct / tot_frames:.4f}, valid {valid}",
            flush=True,
        )
    self.writer.close()
    total = sum(epoch_times)
    print(f"{args.epochs} epochs: {total:.2f} s")
    for name, sec in sorted(acc.items(), key=lambda kv: -kv[1]):
        print(f"  {name:26s} {sec:8.2f} s {100 * sec / total:5.1f}%")
    for name, sec in setup.items():
        print(f"  (once) {name:19s} {sec:8.2f} s")


def run_torch_profile(args: argparse.Namespace) -> None:
    from torch.profiler import ProfilerActivity, profile, record_function

    self, _ = make_trainer(args, 1)
    self.model.train()
    gen = torch.Generator().manual_seed(self.seed * 1000 + 1)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for idx in self._epoch_batches(1)[: args.batches]:
            with record_function("## batch + SpecAugment"):
                batch = self._batch(self.train_utts, idx, True, gen)
            with record_function("## forward"):
                log_probs, out_lengths = self.ddp_model(batch.feats, batch.lengths)
            with record_function("## loss"):
                out = self.criterion(log_probs, out_lengths.cpu(), batch)
            self.optimizer.zero_grad(set_to_none=True)
            with record_function("## backward"):
                (out.loss / out.frames).backward()
            with record_function("## clipping + optimizer"):
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
                self.optimizer.step()
                self.scheduler.step()
        with record_function("## validation"):
            self.validate()
    table = prof.key_averages()
    print(table.table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=50))
    print(table.table(sort_by="cpu_time_total", row_limit=25, max_name_column_width=50))
    prof.export_chrome_trace(str(Path(args.out) / "trace.json"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["phases", "torch"])
    p.add_argument("--out", required=True, help="scratch dir (checkpoints, TensorBoard, trace)")
    p.add_argument("--config", default=str(REPO / "conf/an4/blstm.yaml"))
    p.add_argument("--data", default="data/train")
    p.add_argument("--lang", default="data/lang")
    p.add_argument("--ali-dir", default="exp/flat/ali")
    p.add_argument("--epochs", type=int, default=2, help="phases: epochs to run")
    p.add_argument("--batches", type=int, default=42, help="torch: batches to profile (an AN4 epoch has 42)")
    args = p.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.mode == "phases":
        run_phases(args)
    else:
        run_torch_profile(args)


if __name__ == "__main__":
    main()
