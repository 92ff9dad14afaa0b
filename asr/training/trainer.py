"""The training loop shared by every criterion.

Handles batching, the optimizer and learning-rate schedule, gradient
clipping (recurrent nets have cliff-shaped error surfaces), validation,
per-epoch checkpoints with exact resume, checkpoint averaging, TensorBoard
scalars, and DDP when launched by ``torchrun`` with several processes.

Resume is exact at epoch granularity: the batch order of epoch ``e`` depends
only on ``seed + e``, and the checkpoint stores the torch RNG state (dropout,
SpecAugment), so an interrupted run continued with ``--resume`` reproduces
the uninterrupted one on the same machine.  Bitwise equality across thread
counts or devices is not guaranteed (floating-point reduction order).
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from tqdm import tqdm

from asr.config import parse_config, save_config
from asr.faults import fault_point
from asr.fileio import atomic_torch_save, safe_torch_load
from asr.lang.lang_dir import LangDir
from asr.model_dir import copy_graph, copy_lang, save_model_dir
from asr.models import AcousticModel, build_model, model_config_dict
from asr.training.augment import spec_augment
from asr.training.checkpoint_avg import average_checkpoints
from asr.training.config import OptimizerConfig, SchedulerConfig
from asr.training.data import Batch, Utterance, collate, make_batches
from asr.training.metrics import MetricsTracker, epoch_message, per_frame_stats
from asr.training.registry import as_train_config

if TYPE_CHECKING:
    from asr.training.criteria import LossOutput

log = logging.getLogger("asr.training.trainer")

CHECKPOINT_RE = re.compile(r"epoch-(\d+)\.pt$")


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> DistInfo:
    """Joins the process group when launched by ``torchrun`` with several processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    # One thread per process: on a small CPU several processes would
    # otherwise oversubscribe the cores.
    if device == "cpu":
        torch.set_num_threads(1)
    return DistInfo(dist.get_rank(), dist.get_world_size())


def make_optimizer(model: torch.nn.Module, cfg: OptimizerConfig | dict) -> torch.optim.Optimizer:
    """The optimizer of an ``optimizer`` section (typed, or a mapping checked here)."""
    if isinstance(cfg, dict):
        cfg = parse_config(OptimizerConfig, cfg, "optimizer")
    if cfg.name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def make_scheduler(
    opt: torch.optim.Optimizer, cfg: SchedulerConfig | dict, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up then ``constant``, ``cosine`` (to ``final_lr_ratio``) or ``exponential`` decay per step."""
    if isinstance(cfg, dict):
        cfg = parse_config(SchedulerConfig, cfg, "scheduler")
    name, warmup, final = cfg.name, cfg.warmup_steps, cfg.final_lr_ratio

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if name == "constant":
            return 1.0
        if name == "cosine":
            return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))
        return final**progress

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def list_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(1)), p) for p in ckpt_dir.glob("epoch-*.pt") if (m := CHECKPOINT_RE.search(p.name))]
    return sorted(found)


class Trainer:
    """Trains an acoustic model with a criterion (see :mod:`asr.training.criteria`)."""

    def __init__(
        self,
        cfg: dict,
        criterion,
        train_utts: list[Utterance],
        valid_utts: list[Utterance],
        lang: LangDir,
        out_dir: Path,
        init_state: dict | None = None,
    ):
        self.cfg = cfg  # as given: saved as train.yaml
        self.config = as_train_config(cfg)
        self.criterion = criterion
        self.train_utts = train_utts
        self.valid_utts = valid_utts
        self.lang = lang
        self.out_dir = Path(out_dir)
        self.device = self.config.device
        self.dist = init_distributed(self.device)
        self.seed = self.config.seed
        torch.manual_seed(self.seed)
        feat_dim = train_utts[0].feats.shape[1]
        self.model: AcousticModel = build_model(self.config.model, feat_dim, lang.num_pdfs)
        if init_state is not None:
            self.model.load_state_dict(init_state)
        self.model.to(self.device)
        self.ddp_model = self.model
        if self.dist.world_size > 1:
            self.ddp_model = torch.nn.parallel.DistributedDataParallel(self.model)
        self.epochs = self.config.epochs
        self.max_frames = self.config.max_frames
        self.grad_clip = float(self.config.grad_clip)
        self.spec_augment_cfg = self.config.spec_augment
        self.optimizer = make_optimizer(self.model, self.config.optimizer)
        steps_per_epoch = len(self._epoch_batches(0))
        #: Optimizer steps of the whole run (batches whose gradient is skipped included).
        self.total_steps = self.epochs * steps_per_epoch
        self.scheduler = make_scheduler(self.optimizer, self.config.scheduler, self.total_steps)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.start_epoch = 1
        self.step = 0
        self.writer = None

    # -- batching -----------------------------------------------------------
    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        batches = make_batches(self.train_utts, self.max_frames, shuffle=True, seed=self.seed + epoch)
        w = self.dist.world_size
        if w > 1:
            # Every rank must run the same number of steps or DDP hangs.
            batches = batches[: len(batches) // w * w][self.dist.rank :: w]
        return batches

    def _batch(self, utts: list[Utterance], indices: list[int], augment: bool, gen: torch.Generator) -> Batch:
        batch = collate([utts[i] for i in indices])
        if augment and self.spec_augment_cfg:
            for i, n in enumerate(batch.lengths.tolist()):
                batch.feats[i, :n] = spec_augment(batch.feats[i, :n], self.spec_augment_cfg, gen)
        return batch

    # -- checkpoints ----------------------------------------------------------
    def save_checkpoint(self, epoch: int, metrics: dict[str, dict[str, float]] | None = None) -> None:
        """Writes ``checkpoints/epoch-<epoch>.pt`` (rank 0 only).

        ``metrics``: the epoch's summed statistics over all ranks, e.g.
        ``{"train": {"loss": ..., "frames": ..., ...}, "valid": {...}}``, kept
        in the checkpoint as a record (plain floats).
        """
        if not self.dist.is_main:
            return
        atomic_torch_save(
            {
                "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "epoch": epoch,
                "step": self.step,
                "rng": torch.get_rng_state(),
                # Stateful criteria (flat start's running prior) resume exactly too.
                "criterion": self.criterion.state_dict() if hasattr(self.criterion, "state_dict") else {},
                "metrics": metrics or {},
            },
            self.ckpt_dir / f"epoch-{epoch}.pt",
        )

    def resume(self) -> bool:
        """Restores the last complete checkpoint; returns False if there is none."""
        ckpts = list_checkpoints(self.ckpt_dir)
        if not ckpts:
            return False
        epoch, path = ckpts[-1]
        state = safe_torch_load(path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        if state.get("criterion") and hasattr(self.criterion, "load_state_dict"):
            self.criterion.load_state_dict(state["criterion"])
        self.start_epoch = int(state["epoch"]) + 1
        self.step = int(state["step"])
        log.info("resumed from %s: continuing at epoch %d, step %d", path, self.start_epoch, self.step)
        return True

    # -- loops -----------------------------------------------------------------
    def _forward(self, batch: Batch, model: torch.nn.Module):
        feats = batch.feats.to(self.device)
        ivectors = batch.ivectors.to(self.device) if batch.ivectors is not None else None
        log_probs, out_lengths = model(feats, batch.lengths.to(self.device), ivectors)
        return self.criterion(log_probs, out_lengths.cpu(), batch)

    def validation_metrics(self) -> MetricsTracker | None:
        """Summed statistics of the validation set (None without one).

        Under DDP each rank scores every ``world_size``-th batch and the sums
        are reduced, so every rank returns the whole set's statistics.  (The
        forward pass uses the bare model, so the ranks may run different
        numbers of batches.)
        """
        if not self.valid_utts:
            return None
        self.model.eval()
        totals = MetricsTracker()
        batches = make_batches(self.valid_utts, self.max_frames, shuffle=False, seed=0)
        with torch.no_grad():
            for idx in batches[self.dist.rank :: self.dist.world_size]:
                out = self._forward(self._batch(self.valid_utts, idx, False, None), self.model)
                totals.add(MetricsTracker.of_batch(float(out.loss), out.frames, len(idx), out.stats))
        self.model.train()
        totals.reduce(self.device)
        return totals

    def validate(self) -> dict[str, float]:
        """The validation report (loss and statistics per frame; empty without validation data)."""
        valid = self.validation_metrics()
        return valid.per_frame() if valid is not None else {}

    def _train_step(self, epoch: int, idx: list[int], gen: torch.Generator) -> tuple[LossOutput, float] | None:
        """Forward, backward and optimizer step on one batch: ``(LossOutput, gradient norm)``.

        None when the batch is skipped: no frame to learn from, or a
        non-finite gradient norm (the step is not taken, nothing is counted).
        """
        out = self._forward(self._batch(self.train_utts, idx, True, gen), self.ddp_model)
        if out.frames == 0:
            return None
        self.optimizer.zero_grad(set_to_none=True)
        (out.loss / out.frames).backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip))
        if not math.isfinite(grad_norm):
            log.warning("epoch %d step %d: non-finite gradient norm, batch skipped", epoch, self.step)
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        fault_point("step", self.step)
        return out, grad_norm

    def _write_step_scalars(self, out: LossOutput, grad_norm: float) -> None:
        """TensorBoard ``train/*`` scalars of one step (this rank's batch: rank 0's under DDP)."""
        if not self.writer:
            return
        self.writer.add_scalar("train/loss", float(out.loss.detach()) / out.frames, self.step)
        self.writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], self.step)
        self.writer.add_scalar("train/grad_norm", grad_norm, self.step)
        for k, v in per_frame_stats(out.stats, out.frames).items():
            self.writer.add_scalar(f"train/{k}", v, self.step)

    def train_epoch(self, epoch: int) -> MetricsTracker:
        """One pass over this rank's batches of ``epoch``; the sums over all ranks' batches."""
        gen = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        batches = self._epoch_batches(epoch)
        totals = MetricsTracker()
        bar = tqdm(batches, desc=f"epoch {epoch}/{self.epochs}", disable=not self.dist.is_main, leave=False)
        for idx in bar:
            step = self._train_step(epoch, idx, gen)
            if step is None:
                continue
            out, grad_norm = step
            totals.add(MetricsTracker.of_batch(float(out.loss.detach()), out.frames, len(idx), out.stats))
            bar.set_postfix(loss=f"{float(out.loss.detach()) / out.frames:.3f}")
            self._write_step_scalars(out, grad_norm)
        totals.reduce(self.device)
        return totals

    def _write_epoch_scalars(self, epoch: int, train: MetricsTracker, valid: dict[str, float]) -> None:
        """TensorBoard ``epoch/*`` scalars: the reduced training statistics and the validation report."""
        if not self.writer:
            return
        report = train.per_frame()
        self.writer.add_scalar("epoch/train_loss", report["loss"], epoch)
        if "frame_acc" in report:
            self.writer.add_scalar("epoch/train_frame_acc", report["frame_acc"], epoch)
        for k, v in train.criterion_per_frame().items():
            self.writer.add_scalar(f"epoch/train_{k}", v, epoch)
        for k, v in valid.items():
            self.writer.add_scalar(f"epoch/valid_{k}", v, epoch)

    def train(self) -> None:
        """Runs the epochs from ``start_epoch``: train, validate, log, checkpoint."""
        if self.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.out_dir / "tensorboard"))
        self.model.train()
        for epoch in range(self.start_epoch, self.epochs + 1):
            t0 = time.perf_counter()
            train = self.train_epoch(epoch)
            valid = self.validation_metrics()
            report = valid.per_frame() if valid is not None else {}
            log.info("%s (%.1f s)", epoch_message(epoch, train, report), time.perf_counter() - t0)
            self._write_epoch_scalars(epoch, train, report)
            record = {"train": train.as_dict(), "valid": valid.as_dict() if valid is not None else {}}
            self.save_checkpoint(epoch, record)
            fault_point("checkpoint", epoch)
        if self.writer:
            self.writer.close()

    def final_state(self) -> dict:
        """Weights averaged over the last ``average_last`` epochs (1 = last epoch)."""
        n = self.config.average_last
        ckpts = [p for _, p in list_checkpoints(self.ckpt_dir)][-n:]
        if n <= 1 or len(ckpts) < 2:
            return {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        log.info("averaging the last %d checkpoints", len(ckpts))
        return average_checkpoints(ckpts)


def write_model_dir(
    trainer: Trainer,
    state: dict,
    feature_config: dict,
    criterion: str,
    log_priors: torch.Tensor | None,
    graph_dir: Path | None,
) -> None:
    """Writes the model dir (model.yaml, weights, priors, lang copy, graph)."""
    out = trainer.out_dir
    info = {
        "model": model_config_dict(trainer.model),
        "feat_dim": trainer.model.feat_dim,
        "num_pdfs": trainer.model.num_pdfs,
        "subsampling": trainer.model.subsampling_factor,
        "criterion": criterion,
        "use_priors": log_priors is not None,
        "features": feature_config,
    }
    save_model_dir(out, trainer.model, info, state, log_priors)
    copy_lang(trainer.lang.path, out / "lang")
    if graph_dir is not None:
        copy_graph(Path(graph_dir), out / "graph")
    save_config(trainer.cfg, out / "train.yaml")
