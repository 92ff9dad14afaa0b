"""``asr align``: forced alignment of a data dir with a trained model."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "align",
        help="force-align a data dir with a model",
        description="Viterbi-align each utterance's transcript with a trained model. Writes ali.ark/ali.scp "
        "(pdf ids, int32 vectors), phone.ctm and word.ctm. Utterances that cannot be aligned are reported "
        "and skipped.",
    )
    p.add_argument("--model-dir", required=True)
    p.add_argument("data_dir")
    p.add_argument("out_dir")
    p.add_argument(
        "--lang",
        help="align in this lang dir instead of the model's, e.g. a monophone model into a lang with "
        "word-internal context-dependent phones (each unit is scored by its base phone)",
    )
    p.add_argument("--ivector-dir", help="i-vectors of the data (asr extract-ivectors), for a model with "
                   "i-vectors; default: online per utterance with the model's extractor")
    p.add_argument("--config", default="align.yaml", help="alignment options (default align.yaml, shipped in asr/conf)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: OMP_NUM_THREADS if set, "
                   "else 1; see asr/threads.py). Results are bit-identical only at the same thread count")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr.config import load_typed_config
    from asr.threads import set_torch_threads
    from asr.training.align import align_data_dir
    from asr.training.config import AlignConfig

    set_torch_threads(args.threads, what="align")
    cfg = load_typed_config(args.config, AlignConfig)
    align_data_dir(args.model_dir, args.data_dir, args.out_dir, cfg.max_frames, cfg.output_beam, args.lang,
                   args.ivector_dir)
    return 0
