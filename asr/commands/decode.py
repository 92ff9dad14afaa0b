"""``asr decode``: decode a data dir with a model dir and HLG, then score it."""

from __future__ import annotations

import argparse
from pathlib import Path


def positive_int(value: str) -> int:
    """An argparse type: an integer of at least 1."""
    n = int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "decode",
        help="decode a data dir (with features) and score it",
        description="Decode a data dir with k2.intersect_dense_pruned over HLG in --nj parallel jobs. Writes "
        "text, ctm and per-job lattices into OUT_DIR; if the data dir has a text file, scores it into OUT_DIR/wer "
        "and prints the %%WER line. --sweep rescored the saved lattices over LM weights and word insertion "
        "penalties (Kaldi's score.sh); --rescore-graph-dir rescoring them with a bigger LM's G; --nbest N writing "
        "each utterance's N best distinct word sequences (exact) into OUT_DIR/nbest/{text,ac_cost,lm_cost}. The CTM's "
        "confidences are lattice word posteriors.",
    )
    p.add_argument("--model-dir", required=True)
    p.add_argument("--graph-dir", help="data/lang_<lm> with HLG.pt (default: the model dir's graph/)")
    p.add_argument("data_dir")
    p.add_argument("out_dir")
    p.add_argument("--config", default=None, help="decoder settings (default: the model dir's decode.yaml if it has one, else the one "
                   "shipped in asr/conf)")
    p.add_argument("--nj", type=int, default=1, help="parallel jobs")
    p.add_argument("--threads", "--threads-per-job", dest="threads", type=int,
                   help="torch threads in each job (default: OMP_NUM_THREADS if set, else 1, so hypotheses and "
                   "lattices do not depend on the machine); results are bit-identical only at the same count")
    p.add_argument("--ivector-dir", help="the data's i-vectors (asr extract-ivectors), for a model with "
                   "i-vectors; default: online per utterance with the model's extractor, as asr transcribe")
    p.add_argument("--sweep", action="store_true", help="sweep LM weight and word penalty over the lattices")
    p.add_argument("--rescore-graph-dir", help="rescore lattices with this dir's G.pt (e.g. a trigram)")
    p.add_argument("--nbest", type=positive_int, metavar="N",
                   help="write the N best word sequences of each utterance (exact, from the decode lattices, at the "
                   "decode config's scales) to OUT_DIR/nbest: text (UTT-n lines), ac_cost, lm_cost")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asr.config import load_config
    from asr.data.batching import split_jobs
    from asr.decoding.decode_dir import decode_data_dir, rescore_text, sweep, write_nbest
    from asr.data.datadir import DataDir
    from asr.fileio import atomic_write_text
    from asr.lang.fsa_io import load_fsa
    from asr.lang.lang_dir import SymbolTable
    from asr.decoding.rescore import prepare_rescoring_g
    from asr.data.datadir import read_text
    from asr.scoring.wer import format_wer, score
    from asr.threads import resolve_threads

    from asr.config import resolve_config
    from asr.decoding.search import decode_config

    from asr.model_dir import default_decode_config

    args.config = default_decode_config(args.model_dir, args.config)
    cfg = load_config(args.config)
    typed = decode_config(cfg, str(resolve_config(args.config)))  # checks keys and types; defaults filled in
    out = Path(args.out_dir)
    threads = resolve_threads(args.threads, what="decode").threads
    text = decode_data_dir(args.model_dir, args.data_dir, out, cfg, args.graph_dir, args.nj, threads,
                           args.ivector_dir)
    dd = DataDir.load(args.data_dir, require_text=False)
    nj = len(split_jobs(dd.utterances, args.nj))
    words = SymbolTable.read(Path(args.model_dir) / "lang" / "words.txt")
    ref = dd.path / "text"
    if args.nbest:
        nbest_dir = write_nbest(out, nj, words, args.nbest, typed.search.word_penalty)
        print(f"{args.nbest}-best lists in {nbest_dir}")
    if args.rescore_graph_dir:
        G_path = Path(args.rescore_graph_dir) / "G.pt"
        acoustic_scale = typed.search.acoustic_scale
        rescore_text(out, nj, words, G_path, acoustic_scale, out / "text_rescored")
        text = out / "text_rescored"
    if not ref.is_file():
        print(f"hypotheses in {text}")
        return 0
    lines = format_wer(score(read_text(ref), read_text(text)))
    atomic_write_text(out / "wer", lines + "\n")
    if args.sweep:
        G = prepare_rescoring_g(load_fsa(Path(args.rescore_graph_dir) / "G.pt"), words) if args.rescore_graph_dir else None
        best, _ = sweep(out, nj, ref, words, typed.sweep.lm_weights, typed.sweep.word_penalties, G)
        print(f"best over the sweep: {best}")
    print(lines)
    return 0
