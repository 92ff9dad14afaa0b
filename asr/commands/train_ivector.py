"""``asr train-ivector``: train the i-vector extractor (PCA, UBM, total variability model) on a data dir."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-ivector",
        help="train an i-vector extractor (UBM + total variability matrix)",
        description="Train the i-vector extractor on a data dir's raw features (feats.scp, no CMVN): a splice + "
        "PCA transform, a diagonal UBM (EM, mixing up from one Gaussian) and the total variability model (EM on "
        "the UBM's top-N posteriors), as Kaldi's train_diag_ubm.sh and train_ivector_extractor.sh. Writes "
        "ivector.yaml, ubm.pt and extractor.pt into OUT_DIR. Config keys: docs/CONFIG.md.",
    )
    p.add_argument("data_dir", help="training data dir with features")
    p.add_argument("out_dir", help="extractor dir to write, e.g. exp/ivector")
    p.add_argument("--config", default="ivector.yaml", help="i-vector config (default ivector.yaml, shipped in asr/conf)")
    p.add_argument("--exclude-utts", help="utterance ids to leave out, one per line (e.g. a model's valid_utts.txt)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr.adapt.config import IvectorConfig
    from asr.adapt.train import train_ivector_model
    from asr.config import load_typed_config

    cfg = load_typed_config(args.config, IvectorConfig)
    train_ivector_model(args.data_dir, args.out_dir, cfg, args.exclude_utts)
    return 0
