"""Training throughput of sMBR next to MMI (issue 13): input frames per second and peak RSS.

Each run is the suite's train job (:func:`benchmarks.worker.job_train`) in a
process of its own: ``--warmup`` untimed then ``--batches`` timed training
steps (forward, criterion, backward, optimizer) of one training config on a
recipe's data, lang and alignments.  The models start from random weights
(no ``--init-model-dir``): the cost per step is the network's plus the
denominator lattice's, whose size with ``den_output_beam`` depends somewhat
on the scores.  The sequence criteria run without priors here (priors only
shift the scores).  From the repository root, after the AN4 recipe's stage 6::

    python -m benchmarks.smbr_train --workdir recipes/an4 --ali-dir exp/blstm/ali \\
        --configs conf/an4/mmi.yaml conf/an4/smbr.yaml --threads 1 --out benchmarks/out/smbr_train.json

Prints one row per config: frames/s and peak RSS, median (min-max) over ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.common import ROOT, fmt_stat, machine_info, run_worker, stat, text_table


def measure(config: Path, workdir: Path, ali_dir: Path, args: argparse.Namespace) -> dict:
    """``--repeats`` train jobs of one config: frames/s and peak RSS (MiB) stats, and the raw results."""
    from asr.config import load_config

    cfg = load_config(config)
    params = {"config": cfg, "data_dir": str(workdir / "data" / "train"), "lang_dir": str(workdir / "data" / "lang"),
              "ali_dir": str(ali_dir), "warmup": args.warmup, "batches": args.batches, "threads": args.threads}
    raw = [run_worker("train", params) for _ in range(args.repeats)]
    return {"config": str(config), "criterion": cfg["criterion"], "max_frames": cfg.get("max_frames"),
            "frames_per_second": stat([r["frames_per_second"] for r in raw]),
            "peak_rss_mb": stat([r["peak_rss_mb"] for r in raw]), "threads": raw[0]["threads"], "raw": raw}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, default=ROOT / "recipes" / "an4", help="recipe dir with data/train, data/lang")
    p.add_argument("--ali-dir", type=Path, default=Path("exp/blstm/ali"), help="alignments, relative to --workdir")
    p.add_argument("--configs", type=Path, nargs="+", default=[ROOT / "conf/an4/mmi.yaml", ROOT / "conf/an4/smbr.yaml"])
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch threads per run (default: torch's)")
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args(argv)
    ali = args.ali_dir if args.ali_dir.is_absolute() else args.workdir / args.ali_dir
    if not (ali / "ali.scp").is_file() and not (ali / "ali.ark").is_file():
        print(f"benchmarks.smbr_train: error: {ali}: no alignments (ali.scp/ali.ark)", file=sys.stderr)
        return 1
    runs = [measure(c, args.workdir, ali, args) for c in args.configs]
    title = (f"train: input frames (10 ms) per second over {args.batches} batches after {args.warmup} warm-up, "
             "one process per run; peak RSS of that process")
    rows = [[r["criterion"], fmt_stat(r["frames_per_second"]), fmt_stat(r["peak_rss_mb"]), r["threads"],
             r["max_frames"], r["config"]] for r in runs]
    print(text_table(title, ["criterion", "frames/s", "peak RSS MiB", "threads", "max_frames", "config"], rows))
    if args.out:
        from asr.fileio import atomic_write_text

        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, json.dumps({"machine": machine_info(), "runs": runs}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
