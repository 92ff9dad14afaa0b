"""``asr train``: one training run from config to model dir."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from asr.adapt.data import (
    IvectorDir, attach_training_ivectors, model_with_ivectors, perturbed_ivectors, record_extractor,
)
from asr.config import load_config, resolve_config
from asr.errors import ConfigError
from asr.fileio import atomic_write_text
from asr.features.extract import load_feature_config
from asr.lang.lang_dir import LangDir
from asr.model_dir import ModelDir
from asr.models.priors import estimate_log_priors
from asr.training.config import TrainConfig
from asr.training.data import load_utterances, split_validation
from asr.training.registry import CRITERIA, Criterion, CriterionContext, parse_train_config
from asr.training.sanity import check_schedule, check_validation_split
from asr.training.trainer import Trainer, write_model_dir

log = logging.getLogger("asr.training.run")

def set_threads(threads: int | None) -> None:
    """Sets torch's intra-op thread count: the config's ``threads``, else the policy of :mod:`asr.threads`.

    The thread count is part of the arithmetic: reductions split across
    threads round differently, so only runs at the same count (on the same
    CPU model) give bit-identical weights.
    """
    from asr.threads import set_torch_threads

    set_torch_threads(threads, what="train")


def add_file_log(out_dir: Path) -> logging.Handler:
    """Mirrors the ``asr`` log into ``out_dir/train.log`` (rank 0 only under DDP)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if int(os.environ.get("RANK", "0")) != 0:
        return logging.NullHandler()
    logger = logging.getLogger("asr")
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    handler = logging.FileHandler(out_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    logging.getLogger("asr").addHandler(handler)
    return handler


def align_training_data(model_dir: Path, utts, config: TrainConfig) -> None:
    """Aligns the training data with the final model into ``model_dir/ali`` (as Kaldi's train_mono.sh)."""
    from asr.training.align import align_utterances, write_alignments

    md = ModelDir.load(model_dir)
    alignments = align_utterances(md, utts, config.max_frames, config.output_beam, bool(md.info.get("use_priors")))
    write_alignments(md, alignments, model_dir / "ali", len(utts))


def initial_state(init: ModelDir, lang: LangDir) -> dict[str, Tensor]:
    """The weights of ``init`` as the start of a model for ``lang``.

    When ``lang`` refines the phones of the initial model's lang (word-position
    or context-dependent units, :func:`asr.lang.context.pdf_map`), each new
    output row starts as a copy of its base phone's row, its bias lowered by
    the log of the number of copies: the new units of one base phone start
    with the posterior the base phone had, shared equally.  This is the
    neural counterpart of Kaldi's building triphones from the monophone
    system instead of from scratch.
    """
    state = init.model.state_dict()
    same_units = (init.lang.context is None) == (lang.context is None)  # a tree may have as many leaves
    if init.model.num_pdfs == lang.num_pdfs and same_units:
        return state
    from asr.lang.context import pdf_map

    columns = pdf_map(init.lang, lang)[1:] - 1
    copies = torch.bincount(columns, minlength=init.model.num_pdfs).clamp(min=1).to(state["output.bias"].dtype)
    state["output.weight"] = state["output.weight"][columns].clone()
    state["output.bias"] = state["output.bias"][columns] - copies.log()[columns]
    log.info("initial output layer: %d pdfs of %s mapped to the %d pdfs of %s", init.model.num_pdfs,
             init.lang.path, lang.num_pdfs, lang.path)
    return state


def read_criterion_alignments(spec: Criterion, ali_dir: str | Path | None) -> dict[str, Tensor] | None:
    """The alignments the criterion needs (``--ali-dir``), or None when it takes none."""
    if spec.alignments == "none" or (spec.alignments == "optional" and ali_dir is None):
        return None
    if ali_dir is None:
        raise ConfigError(f"criterion '{spec.name}' needs alignments (--ali-dir)")
    from asr.training.align import read_alignments

    return read_alignments(ali_dir)


def held_out_split(utts: list, cfg: TrainConfig) -> tuple[list, list]:
    """Training and validation utterances (whole speakers held out), with a warning when the split is odd."""
    # The held-out speakers depend on valid_seed alone, so runs at other training
    # seeds tune and validate on the same speakers.
    train_utts, valid_utts = split_validation(utts, cfg.valid_fraction, cfg.valid_seed)
    if cfg.valid_fraction > 0:
        check_validation_split(len(train_utts), valid_utts, len({u.speaker for u in valid_utts}),
                               len({u.speaker for u in utts}))
    return train_utts, valid_utts


def finish(trainer: Trainer, spec: Criterion, cfg: TrainConfig, utts: list, aligned: bool,
           data_dir: str | Path, graph_dir: str | Path | None, ivectors: IvectorDir | None = None) -> None:
    """Writes the model dir (with priors when the criterion keeps them, and the i-vector extractor); aligns if asked."""
    priors = None
    # LF-MMI outputs are pseudo log-likelihoods: no priors (model.yaml use_priors: false).
    if aligned and spec.writes_priors and cfg.use_priors:
        priors = estimate_log_priors((u.alignment for u in utts), trainer.lang.num_pdfs)
    write_model_dir(
        trainer, trainer.final_state(), load_feature_config(data_dir), spec.name, priors,
        Path(graph_dir) if graph_dir else None,
    )
    if ivectors is not None:
        record_extractor(trainer.out_dir, ivectors)
    if cfg.align_after:
        align_training_data(trainer.out_dir, utts, cfg)


@dataclass
class TrainingData:
    """The utterances of one run.

    ``utts``: every loaded utterance (validation speakers included);
    ``train_utts``: those trained on (speed-perturbed copies included);
    ``valid_utts``: the held-out speakers'; ``aligned``: whether they carry alignments.
    """

    utts: list
    train_utts: list
    valid_utts: list
    aligned: bool
    ivectors: IvectorDir | None = None  # the training i-vectors, for a network that takes them


def read_train_config(config: str | Path, overrides: dict | None) -> tuple[dict, TrainConfig, Criterion]:
    """The config as given (overrides applied; saved as ``train.yaml``), checked, and its criterion."""
    raw = load_config(config)
    raw.update(overrides or {})
    cfg = parse_train_config(raw, str(resolve_config(config)))
    return raw, cfg, CRITERIA.get(cfg.criterion, str(config))


def load_training_data(spec: Criterion, cfg: TrainConfig, data_dir: str | Path, ali_dir: str | Path | None,
                       ivector_dir: str | Path | None = None, where: str = "train config") -> TrainingData:
    """Features (and alignments when the criterion takes them, i-vectors when the model does), the held-out
    split and speed perturbation (whose copies get i-vectors of their own)."""
    alignments = read_criterion_alignments(spec, ali_dir)
    utts = load_utterances(data_dir, alignments)
    ivectors = attach_training_ivectors(utts, ivector_dir, int(cfg.model.get("ivector_dim", 0)), where)
    train_utts, valid_utts = held_out_split(utts, cfg)
    if cfg.speed_perturb:
        from asr.training.data import add_speed_perturbed

        train_utts = add_speed_perturbed(train_utts, data_dir, [float(f) for f in cfg.speed_perturb],
                                         perturbed_ivectors(ivectors) if ivectors else None)
    log.info("training on %d utterances, validating on %d", len(train_utts), len(valid_utts))
    return TrainingData(utts, train_utts, valid_utts, alignments is not None, ivectors)


def write_valid_list(out_dir: Path, valid_utts: list) -> None:
    """``out_dir/valid_utts.txt``, the held-out utterance ids (rank 0 only)."""
    if int(os.environ.get("RANK", "0")) == 0:
        # Recipes tune decoding weights on these held-out speakers.
        atomic_write_text(out_dir / "valid_utts.txt", "".join(f"{u.utt_id}\n" for u in valid_utts))


def build_trainer(raw: dict, cfg: TrainConfig, spec: Criterion, lang: LangDir, data: TrainingData, out_dir: Path,
                  graph_dir: str | Path | None, init_model_dir: str | Path | None) -> Trainer:
    """The criterion, the initial weights (``init_model_dir`` or random) and the :class:`Trainer`."""
    criterion = spec.build(CriterionContext(cfg, lang, data.train_utts, data.utts,
                                            Path(graph_dir) if graph_dir else None))
    init_state = None
    if init_model_dir is not None:
        init_state = initial_state(ModelDir.load(init_model_dir), lang)
    trainer = Trainer(raw, criterion, data.train_utts, data.valid_utts, lang, out_dir, init_state)
    check_schedule(cfg, trainer.total_steps)
    return trainer


def run_epochs(trainer: Trainer, resume: bool) -> None:
    """Trains every epoch (from the last checkpoint with ``resume``); warns about OOV transcript words."""
    if resume and not trainer.resume():
        log.info("--resume: no checkpoint in %s, starting from scratch", trainer.ckpt_dir)
    trainer.train()
    criterion = trainer.criterion
    if getattr(criterion, "oov_count", 0):
        log.warning("%d OOV words in training transcripts were mapped to <UNK>", criterion.oov_count)


def end_run(handler: logging.Handler) -> None:
    """Leaves the DDP process group (if any) and closes ``train.log``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    logging.getLogger("asr").removeHandler(handler)
    handler.close()


def train(
    config: str | Path,
    data_dir: str | Path,
    lang_dir: str | Path,
    out_dir: str | Path,
    ali_dir: str | Path | None = None,
    graph_dir: str | Path | None = None,
    init_model_dir: str | Path | None = None,
    resume: bool = False,
    overrides: dict | None = None,
    ivector_dir: str | Path | None = None,
) -> Trainer:
    """Trains a model and writes its model dir.

    Args:
      config: Training YAML (``criterion``, ``model``, ``optimizer``, ...).
      data_dir: Training data dir with features.
      lang_dir: The lang dir (defines the pdfs).
      out_dir: The model dir to write (checkpoints go to ``out_dir/checkpoints``).
      ali_dir: Alignments (``asr align`` output); needed by ``ce``.
      graph_dir: A ``data/lang_<lm>`` folder whose HLG is copied into the model dir.
      init_model_dir: Start from this model's weights (e.g. a second CE pass).
      resume: Continue from the last complete checkpoint in ``out_dir``.
      overrides: Config keys that replace those in the file.
      ivector_dir: Training i-vectors (``asr extract-ivectors``): the model
        takes them as input (``model.ivector_dim`` 0 becomes their dimension).
    """
    raw, cfg, spec = read_train_config(config, overrides)
    if ivector_dir is not None:
        raw["model"] = model_with_ivectors(raw.get("model"), ivector_dir, str(resolve_config(config)))
        cfg = parse_train_config(raw, str(resolve_config(config)))
    set_threads(cfg.threads)
    out_dir = Path(out_dir)
    handler = add_file_log(out_dir)
    try:
        t0 = time.perf_counter()
        lang = LangDir.load(lang_dir)
        data = load_training_data(spec, cfg, data_dir, ali_dir, ivector_dir, str(resolve_config(config)))
        write_valid_list(out_dir, data.valid_utts)
        trainer = build_trainer(raw, cfg, spec, lang, data, out_dir, graph_dir, init_model_dir)
        run_epochs(trainer, resume)
        if trainer.dist.is_main:
            finish(trainer, spec, cfg, data.utts, data.aligned, data_dir, graph_dir, data.ivectors)
            log.info("wrote model dir %s (training took %.1f s)", out_dir, time.perf_counter() - t0)
        return trainer
    finally:
        end_run(handler)
