"""``asr train``: train an acoustic model with one of the registered criteria."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from asr.training.registry import criteria_help

    p = sub.add_parser(
        "train",
        help="train an acoustic model",
        description="Train an acoustic model. The criterion comes from the config's 'criterion' key: "
        f"{criteria_help()}. Config keys: docs/CONFIG.md. Run under torchrun for DDP.",
    )
    p.add_argument("--config", required=True, help="training YAML, e.g. conf/yesno/ce.yaml")
    p.add_argument("--data", required=True, help="training data dir with features")
    p.add_argument("--lang", required=True, help="lang dir")
    p.add_argument("--out", required=True, help="model dir to write")
    p.add_argument("--ali-dir", help="alignments (asr align output), for criteria 'ce' and 'mmi' (optional for 'lfmmi')")
    p.add_argument("--graph-dir", help="data/lang_<lm> dir whose HLG.pt is copied into the model dir")
    p.add_argument("--init-model-dir", help="start from this model's weights")
    p.add_argument("--ivector-dir", help="training i-vectors (asr extract-ivectors): the model takes them as input "
                   "(a config's model.ivector_dim 0 becomes their dimension); the model dir keeps a copy of their "
                   "extractor")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.add_argument("--device", help="cpu or cuda (overrides the config)")
    p.add_argument("--epochs", type=int, help="number of epochs (overrides the config)")
    p.add_argument("--seed", type=int, help="training seed: initial weights, batch order, dropout, SpecAugment "
                   "(overrides the config; the held-out speakers follow valid_seed, not this)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (overrides the config's 'threads'; "
                   "default: OMP_NUM_THREADS if set, else 1 per process; see asr/threads.py). Results are bit-identical only at the same thread count")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr.training.run import train

    overrides = {}
    if args.device:
        overrides["device"] = args.device
    if args.epochs:
        overrides["epochs"] = args.epochs
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.threads is not None:
        overrides["threads"] = args.threads
    train(args.config, args.data, args.lang, args.out, args.ali_dir, args.graph_dir, args.init_model_dir,
          args.resume, overrides, args.ivector_dir)
    return 0
