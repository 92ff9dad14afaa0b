"""``asr extract-ivectors``: online (or offline) i-vectors of a data dir, as Kaldi's extract_ivectors_online.sh."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extract-ivectors",
        help="extract i-vectors of a data dir",
        description="Write ivector_online.scp/.ark into OUT_DIR: per utterance a matrix with one i-vector per "
        "period (the extractor's online.period), row k estimated from frames 0..k*period of the utterance and "
        "the earlier utterances of its (pseudo-)speaker. Training data: pseudo-speakers of at most 2 utterances "
        "(the config's online.utts_per_spk_max, Kaldi's modify_speaker_info.sh); test data for decoding as "
        "asr transcribe does: --utts-per-spk-max 1.",
    )
    p.add_argument("--extractor-dir", required=True, help="the i-vector extractor (asr train-ivector output)")
    p.add_argument("data_dir", help="data dir with features")
    p.add_argument("out_dir", help="i-vector dir to write")
    p.add_argument("--utts-per-spk-max", type=int, help="pseudo-speakers of at most N utterances "
                   "(default: the extractor's online.utts_per_spk_max; 1: each utterance alone; 0: real speakers)")
    p.add_argument("--offline", action="store_true",
                   help="one i-vector per (pseudo-)speaker from all its frames instead of online rows")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr.adapt.data import extract_data_dir
    from asr.adapt.model import IvectorModel
    from asr.errors import ConfigError

    if args.utts_per_spk_max is not None and args.utts_per_spk_max < 0:
        raise ConfigError(f"--utts-per-spk-max must be 0 or more, got {args.utts_per_spk_max}")
    model = IvectorModel.load(args.extractor_dir)
    extract_data_dir(model, args.data_dir, args.out_dir, args.utts_per_spk_max, args.offline)
    return 0
