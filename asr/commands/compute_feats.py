"""``asr compute-feats``: Kaldi-compatible fbank/MFCC features and CMVN stats of a data dir."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``compute-feats`` to the ``asr`` command line."""
    p = subparsers.add_parser(
        "compute-feats",
        help="extract features and CMVN stats of a data dir",
        description="Write FEAT_DIR/raw_<type>_<name>.<job>.ark, DATA_DIR/feats.scp, "
        "utt2num_frames, cmvn.scp and conf/feats.yaml. Finished jobs are skipped on rerun.",
    )
    p.add_argument("data_dirs", metavar="DATA_DIR", nargs="+", help="one or more data dirs")
    p.add_argument("feat_dir", metavar="FEAT_DIR", help="where the ark files go")
    p.add_argument("--config", default="fbank.yaml",
                   help="feature YAML (default fbank.yaml; a bare name not found in the working directory is "
                   "one shipped in asr/conf: fbank.yaml, mfcc.yaml)")
    p.add_argument("--nj", type=int, default=1, help="parallel jobs (default 1)")
    p.add_argument("--cmvn", choices=("per-speaker", "per-utterance", "sliding", "none"), default="per-speaker",
                   help="CMVN stats per speaker (default), per utterance, a sliding window (what streaming "
                   "recognition uses; options: the config's sliding_cmvn section), or none")
    p.add_argument("--cmvn-prior", metavar="SRC",
                   help="with --cmvn sliding: the prior's stats, from the training data dir (or a Kaldi stats "
                   "matrix / cmvn.scp); default: the data dir's own global stats (right for training data)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Runs feature extraction; errors are AsrError subclasses printed by the CLI."""
    from asr.config import load_config, resolve_config
    from asr.errors import ConfigError
    from asr.features.extract import compute_features, validate_feature_config

    if args.nj < 1:
        raise ConfigError(f"--nj must be at least 1, got {args.nj}")
    cfg = load_config(args.config)
    validate_feature_config(cfg, str(resolve_config(args.config)))  # errors name the file
    prior = None
    if args.cmvn_prior is not None:
        if args.cmvn != "sliding":
            raise ConfigError("--cmvn-prior goes with --cmvn sliding")
        from asr.features.session_cmvn import load_cmvn_stats

        prior = load_cmvn_stats(args.cmvn_prior)
    for data_dir in args.data_dirs:
        print(compute_features(data_dir, args.feat_dir, cfg, nj=args.nj, cmvn=args.cmvn, cmvn_prior=prior))
    return 0
