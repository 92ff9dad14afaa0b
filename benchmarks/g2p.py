"""G2P benchmark: train on a seeded 90% of CMUdict's words, score the other 10%.

Stress is removed.  A word is right if the best pronunciation equals any of its
CMUdict pronunciations (WER); PER counts phone edits against the closest one.
The model is scored as stored (saved and loaded back), with the shipped
model's settings unless told otherwise.

Usage, from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.g2p [--seed 0] [--limit N] [--prune-min-counts 2,1] \
        [--write-results benchmarks/RESULTS.md]

``--prune-min-counts 2,1`` measures the shipped (pruned) settings and the unpruned model, a row each.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.common import machine_info, markdown_table

log = logging.getLogger("benchmarks.g2p")


def run_benchmark(seed: int, test_fraction: float, limit: int | None, order: int | None, prune_min_count: int | None,
                  stride: int = 1) -> dict:
    """Trains, stores, reloads and scores the G2P; returns the figures."""
    from asr.g2p.cmu import cmudict_pronunciations, evaluate, pairs_of, split_words
    from asr.g2p.decode import G2PDecoder
    from asr.g2p.model import load_model, save_model, train_g2p
    from asr.g2p.train import SHIPPED_CONFIG

    config = SHIPPED_CONFIG
    if order is not None:
        config = replace(config, order=order)
    if prune_min_count is not None:
        config = replace(config, prune_min_count=prune_min_count)
    lexicon = cmudict_pronunciations()
    train, test = split_words(list(lexicon), test_fraction, seed)
    test = test[::stride][:limit] if limit else test[::stride]
    start = time.perf_counter()
    model = train_g2p(pairs_of(lexicon, train), config)
    train_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g2p.pt"
        save_model(model, path)
        size = path.stat().st_size
        start = time.perf_counter()
        decoder = G2PDecoder(load_model(path))
        load_s = time.perf_counter() - start
    start = time.perf_counter()
    acc = evaluate(lambda w: next(iter(decoder.pronounce(w)), (None,))[0], {w: lexicon[w] for w in test})
    decode_s = time.perf_counter() - start
    return {
        "seed": seed, "test_fraction": test_fraction, "stride": stride, "train_words": len(train), "test_words": acc.words,
        "train_pronunciations": len(pairs_of(lexicon, train)), "config": model.config,
        "wer": acc.wer, "per": acc.per, "word_errors": acc.word_errors, "phone_errors": acc.phone_errors,
        "ref_phones": acc.ref_phones, "train_s": train_s, "load_s": load_s,
        "decode_ms_per_word": 1000 * decode_s / max(acc.words, 1),
        "graphones": len(model.graphones) - 2, "ngrams": model.num_ngrams(), "model_bytes": size,
    }


def _row(r: dict) -> list:
    cfg = r["config"]
    pruning = f"n-grams of order >= {cfg['prune_from_order']} seen < {cfg['prune_min_count']}×" \
        if cfg["prune_min_count"] > 1 else "none"
    return [f"{cfg['order']}-gram, pruned: {pruning}",
            f"{100 * r['wer']:.2f}% ({r['word_errors']} / {r['test_words']})",
            f"{100 * r['per']:.2f}% ({r['phone_errors']} / {r['ref_phones']})",
            f"{r['train_s']:.0f} s", f"{r['decode_ms_per_word']:.1f} ms", f"{r['load_s']:.1f} s",
            f"{r['model_bytes'] / 1e6:.1f} MB", f"{r['ngrams']:,}", r["graphones"]]


def render_markdown(results: list[dict], command: str, machine: dict) -> str:
    """The "G2P" section of benchmarks/RESULTS.md, a row per model."""
    r = results[0]
    every = f" (every {r['stride']}-th word)" if r["stride"] > 1 else ""
    return (
        "\n## G2P\n\n"
        "Joint-sequence graphone n-gram (`asr/g2p/`, modified Kneser-Ney), trained on "
        f"{r['train_words']:,} CMUdict words ({r['train_pronunciations']:,} pronunciations) and scored on "
        f"{r['test_words']:,} of the other {r['test_fraction']:.0%}{every} (seed {r['seed']}, stress removed; a word is right if it matches any reference; "
        "PER against the closest reference). Times: training (alignment + n-gram), decoding per word, loading the "
        "stored model.  \n"
        f"Command: `{command}` (commit {machine['git_commit']}{', dirty working tree' if machine['git_dirty'] else ''}).  \n"
        f"Machine: {machine['cpu_model']}, {machine['nproc']} CPUs (nproc), Python {machine['python']}, one thread, "
        "nice 19 with another training job on the machine (times are upper bounds).\n\n"
        + markdown_table(["model", "WER", "PER", "train", "decode / word", "load", "model file", "n-grams",
                          "graphones"], [_row(x) for x in results])
        + "\n\nThe first row is the shipped model's settings (`asr.g2p.train.SHIPPED_CONFIG`; the shipped file is "
        "trained on all words). Published joint-sequence models reach about 24-25% WER on CMUdict "
        "(Sequitur, Phonetisaurus; their own splits of older CMUdict versions).\n"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    p.add_argument("--test-fraction", type=float, default=0.1, help="held-out share of the words (default 0.1)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N test words (a quick run)")
    p.add_argument("--stride", type=int, default=1, help="score every K-th test word (default 1: all)")
    p.add_argument("--order", type=int, default=None, help="n-gram order (default: the shipped model's)")
    p.add_argument("--prune-min-counts", default=None,
                   help="comma list of pruning counts, a model each (default: the shipped model's; 1 = no pruning)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/g2p.json"), help="JSON output")
    p.add_argument("--write-results", type=Path, default=None, help="append the G2P section to this markdown file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
    counts = [int(c) for c in args.prune_min_counts.split(",")] if args.prune_min_counts else [None]
    results = []
    for count in counts:
        result = run_benchmark(args.seed, args.test_fraction, args.limit, args.order, count, args.stride)
        results.append(result)
        print(f"G2P: WER {100 * result['wer']:.2f}%  PER {100 * result['per']:.2f}%  on {result['test_words']} words; "
              f"train {result['train_s']:.0f} s, model {result['model_bytes'] / 1e6:.1f} MB, "
              f"{result['decode_ms_per_word']:.1f} ms/word ({result['config']})", flush=True)
    machine = machine_info()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"g2p": results, "machine": machine}, indent=2) + "\n", encoding="utf-8")
    if args.write_results:
        command = "OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python -m benchmarks.g2p " + " ".join(argv or sys.argv[1:])
        with open(args.write_results, "a", encoding="utf-8") as f:
            f.write(render_markdown(results, command.strip(), machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
