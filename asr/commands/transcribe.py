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
        "stderr; the others are still transcribed and the exit status is 1. With --stream (streaming models: "
        "type lstm or tdnn, trained on --cmvn sliding features), files (or raw PCM from stdin, '-') are fed in "
        "chunks, and 'FILE<TAB>partial<TAB>TEXT' and 'FILE<TAB>final<TAB>START<TAB>END<TAB>TEXT' lines are "
        "printed as results come, segments cut at endpoints (asr/conf/endpoint.yaml).",
    )
    p.add_argument("--model-dir", required=True)
    p.add_argument("--graph-dir", help="use this HLG.pt instead of the model dir's graph/")
    p.add_argument("--config", default=None, help="decoder settings (default: the model dir's decode.yaml if it has one, else the one "
                   "shipped in asr/conf)")
    p.add_argument("--ctm", action="store_true", help="print word CTM lines (file 1 start dur word conf) instead")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: OMP_NUM_THREADS if set, "
                   "else 1; see asr/threads.py). Results are bit-identical only at the same thread count")
    p.add_argument("--cmvn", choices=("per-utterance", "per-speaker", "sliding", "none"),
                   help="CMVN (default: the model's own). per-speaker: statistics of all files of this run so far "
                   "(one speaker), or --cmvn-stats")
    p.add_argument("--cmvn-stats", metavar="SRC", help="per-speaker CMVN stats to use for every file: a cmvn.scp "
                   "(with --cmvn-key; without, all its entries summed), a Kaldi stats matrix, or a data dir")
    p.add_argument("--cmvn-key", metavar="SPK", help="the entry of --cmvn-stats' cmvn.scp")
    p.add_argument("--stream", action="store_true", help="streaming recognition with endpoints (see above)")
    p.add_argument("--chunk", type=float, default=0.16, help="--stream: seconds of audio per chunk (default 0.16)")
    p.add_argument("--raw-rate", type=int, metavar="R",
                   help="--stream with FILE '-': stdin holds 16-bit little-endian mono PCM at R Hz")
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
    stats = None
    if args.cmvn_stats is not None:
        from asr.features.session_cmvn import load_cmvn_stats

        stats = load_cmvn_stats(args.cmvn_stats, args.cmvn_key)
    rec = Recognizer.from_dir(args.model_dir, args.graph_dir, args.config, cmvn=args.cmvn, cmvn_stats=stats)
    if args.stream:
        from asr.commands.transcribe_stream import run_stream

        return run_stream(rec, args.files, args.chunk, args.raw_rate, args.ctm)
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
