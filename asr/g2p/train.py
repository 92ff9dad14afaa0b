"""Trains the shipped G2P model on all of CMUdict (stress removed).

Usage (from the repository root)::

    OMP_NUM_THREADS=1 .venv/bin/python -m asr.g2p.train [--out asr/g2p/data/cmudict_g2p.pt]

Takes about a minute and a half on one idle core.  ``benchmarks/g2p.py`` measures
the same settings (:data:`SHIPPED_CONFIG`) on a 90/10 split.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from asr.g2p import default_model_path
from asr.g2p.cmu import cmudict_pronunciations, pairs_of
from asr.g2p.model import G2PConfig, save_model, train_g2p

log = logging.getLogger("asr.g2p.train")

#: The settings of the shipped model: order-8 graphones, singleton 8-grams pruned (on every
#: 3rd test word: 25.8% WER, as unpruned, at 17 MB instead of 21.5; order 7 with singleton
#: 6- and 7-grams pruned, the previous setting, gave 26.3% at 8.7 MB; benchmarks/RESULTS.md).
SHIPPED_CONFIG = G2PConfig(order=8, prune_min_count=2, prune_from_order=8)


def train_cmudict(out: Path, config: G2PConfig = SHIPPED_CONFIG) -> None:
    """Trains on every CMUdict word and writes the model to ``out``."""
    lexicon = cmudict_pronunciations()
    start = time.perf_counter()
    model = train_g2p(pairs_of(lexicon, sorted(lexicon)), config)
    save_model(model, out)
    log.info("%s: %d graphones, %d n-grams, %.1f MB, trained in %.0f s", out, len(model.graphones) - 2,
             model.num_ngrams(), out.stat().st_size / 1e6, time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=default_model_path(), help="model file (default: the shipped one)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    train_cmudict(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
