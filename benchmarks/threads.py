"""Two trainings at once against one alone, under the old and the new thread defaults (issue 16).

``python -m benchmarks threads`` (or ``python -m benchmarks.threads``), from the repository root.

For each model (a TDNN and a BLSTM, CE on yesno features copied ``--copies``
times) and each variant of the thread settings, it runs one ``asr train``
alone, then two identical ones started at the same moment, and reports each
concurrent job's slowdown: its mean epoch time (from its ``train.log``)
over the mean epoch time of the run alone. The issue's target is at most
2.5x. Variants (:data:`VARIANTS`):

* ``old``: the defaults before asr/threads.py, emulated: ``--threads`` = the
  cores, ``GOMP_SPINCOUNT`` = libgomp's own default (what an unset
  ``OMP_WAIT_POLICY`` means).
* ``new``: the defaults of asr/threads.py: nothing set, the policy decides
  (one thread per process, bounded spinning).
* ``two``: the new bounded spinning with ``--threads`` = the cores, the
  automatic choice of an earlier policy (min(cores, 8)), for comparison.

The setup (yesno data dir, features, lang, flat-start alignments, the copies)
is made once in ``--workdir`` and not timed. Run it on an otherwise idle
machine: the load average is recorded with every measurement. See
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import ROOT, machine_info, markdown_table, text_table

#: The issue's target: each of two concurrent jobs at most this much slower than alone.
TARGET_SLOWDOWN = 2.5
#: Kaldi tables of a data dir; utt2spk and spk2utt also get their values renamed.
DATA_TABLES = ("feats.scp", "cmvn.scp", "text", "wav.scp", "utt2dur", "utt2num_frames", "utt2spk", "spk2utt")
EPOCH_RE = re.compile(r"\] epoch (\d+): .*\(([\d.]+) s\)\s*$")
THREADS_RE = re.compile(r"\[asr\.threads\] (train: .*)$")
SPIN_VARIABLES = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "OMP_NUM_THREADS")


@dataclass(frozen=True)
class Variant:
    """Thread settings of one measured configuration."""

    title: str
    env: dict[str, str] = field(default_factory=dict)  # set on top of the environment, less SPIN_VARIABLES
    threads: str | None = None  # --threads: a number, "cores", or None (the policy decides)


def _variants() -> dict[str, Variant]:
    from asr.threads import LIBGOMP_DEFAULT_SPINCOUNT

    return {
        "old": Variant("old defaults: threads = cores, libgomp's default spinning "
                       f"(GOMP_SPINCOUNT={LIBGOMP_DEFAULT_SPINCOUNT})", {"GOMP_SPINCOUNT": LIBGOMP_DEFAULT_SPINCOUNT},
                       "cores"),
        "new": Variant("new defaults (asr/threads.py): one thread per process, bounded spinning"),
        "two": Variant("bounded spinning with --threads = the cores (the earlier automatic min(cores, 8))",
                       {}, "cores"),
    }


VARIANTS = _variants()


# -- setup (not timed) -------------------------------------------------------------


def _asr(args: list[str], cwd: Path, log_file: Path) -> None:
    """Runs one ``asr`` command for the setup (one thread), its output appended to ``log_file``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    with open(log_file, "a", encoding="utf-8") as log:
        log.write(f"$ asr {shlex.join(args)}\n")
        log.flush()
        proc = subprocess.run([sys.executable, "-m", "asr", *args], cwd=cwd, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"setup failed: asr {shlex.join(args)} (exit {proc.returncode}); see {log_file}")


def prepare_setup(work: Path, corpus: Path, flat_epochs: int | None) -> None:
    """yesno data/train, data/lang and exp/flat/ali (a flat start's alignments) in ``work``, once.

    ``work`` is the benchmark's own folder (``<workdir>/setup``): it is emptied
    when the setup has to be redone (a --tiny setup is not reused for the real run).
    """
    stamp, done = work / "setup.done", f"flat-start epochs: {flat_epochs or 'config'}\n"
    if stamp.is_file() and stamp.read_text() == done:
        return
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    log_file = work / "setup.log"
    conf = ROOT / "conf" / "yesno"
    _asr(["prepare-data", "yesno", str(corpus), "data"], work, log_file)
    _asr(["compute-feats", "data/train", "fbank", "--config", str(conf / "fbank.yaml"), "--cmvn", "per-utterance"],
         work, log_file)
    _asr(["prepare-lang", str(ROOT / "lexicon" / "yesno" / "lexicon.txt"), "data/lang", "--config", "lang.yaml"],
         work, log_file)
    flat = ["train", "--config", str(conf / "flat_start.yaml"), "--data", "data/train", "--lang", "data/lang",
            "--out", "exp/flat"]
    _asr(flat + (["--epochs", str(flat_epochs)] if flat_epochs else []), work, log_file)
    stamp.write_text(done)


def _renamed(line: str, prefix: str, all_fields: bool) -> tuple[str, str]:
    fields = line.split()
    key, rest = prefix + fields[0], fields[1:]
    if all_fields:
        rest = [prefix + f for f in rest]
    return key, " ".join(rest)


def replicate_data(src: Path, dst: Path, copies: int) -> None:
    """A data dir with ``copies`` copies of every utterance and speaker (``rNN-`` prefixes), same features."""
    from asr.fileio import atomic_write_text, write_table

    dst.mkdir(parents=True, exist_ok=True)
    for name in DATA_TABLES:
        if not (src / name).is_file():
            continue
        lines = [l for l in (src / name).read_text(encoding="utf-8").splitlines() if l.strip()]
        rows = [_renamed(l, f"r{k:02d}-", name in ("utt2spk", "spk2utt")) for k in range(copies) for l in lines]
        write_table(dst / name, rows)
    for conf in (src / "conf").glob("*"):
        (dst / "conf").mkdir(exist_ok=True)
        atomic_write_text(dst / "conf" / conf.name, conf.read_text(encoding="utf-8"))


def replicate_alignments(src: Path, dst: Path, copies: int) -> None:
    """``ali.ark``/``ali.scp`` with the alignments of :func:`replicate_data`'s utterance ids."""
    from asr.training.align import read_alignments, write_alignment_ark

    alignments = read_alignments(src)
    write_alignment_ark({f"r{k:02d}-{u}": a for k in range(copies) for u, a in alignments.items()}, dst)


def training_configs(work: Path, tiny: bool) -> dict[str, Path]:
    """CE configs of the two models: AN4's BLSTM (conf/an4/blstm.yaml) and flat-start TDNN, no speed perturbation."""
    import yaml

    an4 = ROOT / "conf" / "an4"
    base = yaml.safe_load((an4 / "blstm.yaml").read_text())
    base.pop("speed_perturb", None)  # would need the audio again; the copies make the epochs long instead
    base.update(average_last=1, seed=0, scheduler={"name": "cosine", "warmup_steps": 0, "final_lr_ratio": 0.05})
    tdnn = dict(yaml.safe_load((an4 / "flat_start.yaml").read_text())["model"])
    blstm = dict(base["model"])
    if tiny:
        tdnn.update(hidden=32)
        blstm.update(hidden=32, layers=1)
    out = {}
    for name, model in (("tdnn", tdnn), ("blstm", blstm)):
        path = work / "conf" / f"{name}{'_tiny' if tiny else ''}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(dict(base, model=model), sort_keys=False))
        out[name] = path
    return out


# -- measurement ---------------------------------------------------------------------


def parse_train_log(path: Path) -> list[float]:
    """The epoch times (seconds) logged in an ``asr train`` run's ``train.log``."""
    times = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = EPOCH_RE.search(line)
        if m:
            times.append(float(m.group(2)))
    return times


def _job_env(variant: Variant) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SPIN_VARIABLES}
    env.update(variant.env, PYTHONPATH=str(ROOT))
    return env


def _wait_all(procs: list[subprocess.Popen]) -> list[tuple[float, float]]:
    """Waits for every process; (wall seconds from start, CPU seconds) of each, reaped as each one ends."""
    t0, done = time.perf_counter(), {}
    while len(done) < len(procs):
        for i, proc in enumerate(procs):
            if i in done:
                continue
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                done[i] = (time.perf_counter() - t0, usage.ru_utime + usage.ru_stime)
        time.sleep(0.1)
    return [done[i] for i in range(len(procs))]


def run_jobs(command: list[str], variant: Variant, outs: list[Path]) -> list[dict]:
    """Starts one ``asr train`` per output dir at the same moment and waits for all of them.

    Returns per job: epoch times, mean epoch, wall and CPU seconds (``wait4``),
    and the thread choice ``asr`` logged.
    """
    from asr.threads import usable_cores

    if variant.threads is None:
        threads = []
    else:
        threads = ["--threads", str(usable_cores()) if variant.threads == "cores" else variant.threads]
    procs, logs = [], []
    for out in outs:
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        logs.append(out.parent / f"{out.name}.log")
        with open(logs[-1], "w", encoding="utf-8") as log:  # the child keeps its own descriptor
            argv = [sys.executable, "-m", "asr", *command, *threads, "--out", str(out)]
            procs.append(subprocess.Popen(argv, env=_job_env(variant), stdout=log, stderr=subprocess.STDOUT,
                                          cwd=ROOT))
    results = []
    for proc, out, log, (wall, cpu) in zip(procs, outs, logs, _wait_all(procs)):
        text = log.read_text(encoding="utf-8")
        epochs = parse_train_log(out / "train.log") if proc.returncode == 0 else []
        if not epochs:
            raise RuntimeError(f"asr train gave no epoch times (exit {proc.returncode}), see {log}:\n{text[-2000:]}")
        choice = [m.group(1) for m in map(THREADS_RE.search, text.splitlines()) if m]
        results.append({"epochs": epochs, "mean_epoch": sum(epochs) / len(epochs), "wall": wall, "cpu": cpu,
                        "threads_log": choice[0] if choice else None})
    return results


def measure(command: list[str], variant: Variant, out_dir: Path) -> dict:
    """One run alone, then two at once; slowdown = a concurrent job's mean epoch / the lone run's."""
    load_before = os.getloadavg()[0]
    alone = run_jobs(command, variant, [out_dir / "alone"])[0]
    load_between = os.getloadavg()[0]
    together = run_jobs(command, variant, [out_dir / "job1", out_dir / "job2"])
    slowdown = [job["mean_epoch"] / alone["mean_epoch"] for job in together]
    return {"alone": alone, "together": together, "slowdown": slowdown, "within_target": max(slowdown) <= TARGET_SLOWDOWN,
            "load_1min": {"before_alone": load_before, "before_together": load_between}}


# -- report --------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def result_rows(runs: dict) -> list[list[str]]:
    """One table row per (model, variant)."""
    rows = []
    for (model, variant), r in runs.items():
        together = r["together"]
        rows.append([model, variant, r["alone"]["threads_log"] or "-", _fmt(r["alone"]["mean_epoch"]),
                     ", ".join(_fmt(j["mean_epoch"]) for j in together),
                     ", ".join(f"{s:.2f}x" for s in r["slowdown"]), "yes" if r["within_target"] else "no",
                     f"{_fmt(r['alone']['cpu'])}, " + ", ".join(_fmt(j["cpu"]) for j in together),
                     f"{r['load_1min']['before_alone']:.2f}, {r['load_1min']['before_together']:.2f}"])
    return rows


COLUMNS = ["model", "variant", "thread choice (asr log)", "alone: epoch s", "together: epoch s (job 1, 2)",
           "slowdown (job 1, 2)", f"<= {TARGET_SLOWDOWN}x", "CPU s (alone; job 1, 2)", "load 1 min (before alone, together)"]


def render_markdown(result: dict) -> str:
    """The "## Threads" section of benchmarks/RESULTS.md."""
    m, s = result["machine"], result["setup"]
    lines = ["## Threads", "",
             f"Command: `{result['command']}`  ",
             f"Commit: `{m['git_commit']}`{' (dirty working tree)' if m['git_dirty'] else ''}  ",
             f"Date: {result['date']}  ",
             f"Machine: {m['cpu_model']}, {m['nproc']} CPUs (nproc), {m['usable_cpus']} usable, Python {m['python']}, "
             f"torch {m['torch']}  ",
             f"Setup: yesno training set x {s['copies']} copies ({s['utterances']} utterances, {s['frames']:,} frames), "
             f"CE on flat-start alignments, epochs: " + ", ".join(f"{k} {v}" for k, v in s["epochs"].items()) + "; "
             "models from conf/an4/blstm.yaml (BLSTM) and conf/an4/flat_start.yaml (TDNN), no speed perturbation", "",
             "Slowdown = a concurrent job's mean epoch time / the lone run's (each job's `train.log`). Variants:", ""]
    lines += [f"- `{name}`: {v.title}" for name, v in VARIANTS.items() if name in result["variants"]]
    lines += ["", markdown_table(COLUMNS, result["rows"]), ""]
    return "\n".join(lines)


def write_section(md_path: Path, section: str) -> None:
    """Replaces the "## Threads" section of ``md_path`` (up to the next "## " heading), or appends it."""
    from asr.fileio import atomic_write_text

    text = md_path.read_text(encoding="utf-8") if md_path.is_file() else "# Benchmark results\n"
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.strip() == "## Threads"), None)
    if start is None:
        new = lines + [""] + section.splitlines()
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        new = lines[:start] + section.splitlines() + ([""] if end < len(lines) else []) + lines[end:]
    atomic_write_text(md_path, "\n".join(new).rstrip("\n") + "\n")


# -- driver --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks threads", description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default=str(ROOT / "benchmarks" / "out" / "threads"),
                   help="setup and training outputs (default benchmarks/out/threads; the setup is reused)")
    p.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpora" / "yesno"), help="yesno corpus dir")
    p.add_argument("--models", default="tdnn,blstm", help="comma-separated: tdnn, blstm")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated: {', '.join(VARIANTS)}")
    # Sized from RESULTS.md's training speeds (2 cores: TDNN ~39k, BLSTM ~26k frames/s) for 20-60 s alone.
    p.add_argument("--copies", type=int, default=16, help="copies of the yesno training set (default 16, ~290k frames)")
    p.add_argument("--tdnn-epochs", type=int, default=4, help="epochs of each TDNN run (default 4)")
    p.add_argument("--blstm-epochs", type=int, default=3, help="epochs of each BLSTM run (default 3)")
    p.add_argument("--tiny", action="store_true", help="smoke test: 1 copy, 1 epoch, 32-unit models, 2-epoch flat start")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "threads.json"), help="JSON output")
    p.add_argument("--write-results", metavar="MD", help="write the table as the Threads section of MD "
                                                         "(benchmarks/RESULTS.md)")
    return p


def _setup(args: argparse.Namespace, work: Path) -> dict:
    prepare_setup(work, Path(args.corpus).resolve(), 2 if args.tiny else None)
    data = work / "data" / f"train_x{args.copies}"
    replicate_data(work / "data" / "train", data, args.copies)
    replicate_alignments(work / "exp" / "flat" / "ali", work / "exp" / f"ali_x{args.copies}", args.copies)
    frames = sum(int(l.split()[1]) for l in (data / "utt2num_frames").read_text().splitlines())
    utts = len((data / "utt2spk").read_text().splitlines())
    return {"data": str(data), "ali": str(work / "exp" / f"ali_x{args.copies}"), "copies": args.copies,
            "utterances": utts, "frames": frames}


def run(args: argparse.Namespace) -> int:
    if args.tiny:
        args.copies, args.tdnn_epochs, args.blstm_epochs = 1, 1, 1
    work = Path(args.workdir).resolve()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [m for m in models if m not in ("tdnn", "blstm")] + [v for v in variants if v not in VARIANTS]
    if bad:
        raise SystemExit(f"benchmarks threads: unknown model(s) or variant(s): {', '.join(bad)}")
    setup = _setup(args, work / "setup")
    configs = training_configs(work, args.tiny)
    epochs = {"tdnn": args.tdnn_epochs, "blstm": args.blstm_epochs}
    setup["epochs"] = {m: epochs[m] for m in models}
    result = {"command": "python -m benchmarks threads " + shlex.join(args.argv),
              "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "machine": machine_info(), "setup": setup,
              "variants": variants, "runs": {}}
    if os.getloadavg()[0] > 0.5:
        print(f"warning: load average {os.getloadavg()[0]:.2f}: the machine is not idle", file=sys.stderr)
    runs = {}
    for model in models:
        command = ["train", "--config", str(configs[model]), "--data", setup["data"], "--lang",
                   str(work / "setup" / "data" / "lang"), "--ali-dir", setup["ali"], "--epochs", str(epochs[model])]
        for variant in variants:
            t0 = time.perf_counter()
            print(f"{model} / {variant}: one run alone, then two at once ...", file=sys.stderr, flush=True)
            runs[(model, variant)] = measure(command, VARIANTS[variant], work / "runs" / f"{model}_{variant}")
            print(f"  slowdown {', '.join(f'{s:.2f}x' for s in runs[(model, variant)]['slowdown'])} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
            result["runs"][f"{model}/{variant}"] = runs[(model, variant)]
    result["rows"] = result_rows(runs)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(text_table("threads: one training alone, two at once (slowdown = concurrent / alone epoch time)",
                     COLUMNS, result["rows"]))
    print(f"wrote {out}")
    if args.write_results:
        write_section(Path(args.write_results), render_markdown(result))
        print(f"wrote the Threads section of {args.write_results}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
