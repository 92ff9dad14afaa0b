"""``asr transcribe``: recognize audio files with a trained model dir."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transcribe",
        help="transcribe WAV/FLAC/SPHERE files",
        description="Print one 'FILE<TAB>TRANSCRIPT' line per file. Audio at another sample rate is resampled "
        "and multi-channel audio downmixed (with a warning). A file that cannot be read gets an error line on "
        "stderr; the others are still transcribed and the exit status is 1.",
    )
    p.add_argument("--model-dir", required=True)
    p.add_argument("--graph-dir", help="use this HLG.pt instead of the model dir's graph/")
    p.add_argument("--config", default="decode.yaml", help="decoder settings (default decode.yaml, shipped in asr/conf)")
    p.add_argument("--ctm", action="store_true", help="print word CTM lines (file 1 start dur word conf) instead")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: OMP_NUM_THREADS if set, "
                   "else min(cores, 8); see asr/threads.py). Results are bit-identical only at the same thread count")
    p.add_argument("--ivector-session", action="store_true",
                   help="models with i-vectors: the files are one speaker's, in order (each file's i-vector "
                   "continues from the previous files'); default: every file starts afresh")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr.decoding.ctm import ctm_line
    from asr.errors import AsrError
    from asr.recognizer import Recognizer
    from asr.threads import set_torch_threads

    set_torch_threads(args.threads, what="transcribe")
    rec = Recognizer.from_dir(args.model_dir, args.graph_dir, args.config)
    rec.set_ivector_session(args.ivector_session)
    failed = 0
    for path in args.files:
        try:
            result = rec.transcribe(path)
        except AsrError as e:
            print(f"asr transcribe: error: {e}", file=sys.stderr)
            failed += 1
            continue
        if args.ctm:
            sys.stdout.writelines(ctm_line(path, w) for w in result.words)
        else:
            print(f"{path}\t{result.text}")
        sys.stdout.flush()
    return 1 if failed else 0
