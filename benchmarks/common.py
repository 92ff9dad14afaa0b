"""Shared helpers of the benchmark suite: statistics, machine info, tables, subprocess workers."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stat(values: list[float]) -> dict:
    """Median of repeated measurements with min and max (and the raw values)."""
    vals = [float(v) for v in values]
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals), "values": vals}


def fmt_stat(s: dict | None, digits: int = 3) -> str:
    if s is None:
        return "-"
    if s["n"] == 1 or s["min"] == s["max"]:
        return f"{s['median']:.{digits}g}" if digits < 0 else _num(s["median"], digits)
    return f"{_num(s['median'], digits)} ({_num(s['min'], digits)}–{_num(s['max'], digits)})"


def _num(x: float, digits: int) -> str:
    if x == 0 or not math.isfinite(x):
        return str(x)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:.{max(digits - 1, 1)}f}" if abs(x) < 10 else f"{x:.1f}"


def loglog_slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log y against log x (the exponent of a power law)."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    den = sum((p[0] - mx) ** 2 for p in pts)
    if den == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / den


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine_info() -> dict:
    import torch

    try:
        import k2

        k2_version = getattr(k2, "__dev_version__", None) or getattr(k2, "__version__", None)
    except ImportError:
        k2_version = None
    status = _git("status", "--porcelain")
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": affinity,
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_threads_default": torch.get_num_threads(),
        "k2": k2_version,
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
    }


def run_worker(job: str, params: dict, timeout: float | None = None) -> dict:
    """Runs ``python -m benchmarks.worker JOB PARAMS`` in a fresh process; returns its JSON result.

    A fresh process per measurement keeps peak resident memory (ru_maxrss) of
    one job from mixing with another's.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.worker", job, json.dumps(params)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )
    marker = "BENCH-RESULT "
    lines = [l for l in proc.stdout.splitlines() if l.startswith(marker)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"worker '{job}' failed (exit {proc.returncode}):\n{tail}")
    return json.loads(lines[-1][len(marker):])


def text_table(title: str, columns: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in columns]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    line = "  ".join("-" * w for w in widths)
    out = [title, line]
    for k, r in enumerate(cells):
        out.append("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
        if k == 0:
            out.append(line)
    return "\n".join(out)


def markdown_table(columns: list[str], rows: list[list]) -> str:
    esc = lambda v: ("" if v is None else str(v)).replace("|", "\\|")  # noqa: E731
    out = ["| " + " | ".join(esc(c) for c in columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    out += ["| " + " | ".join(esc(v) for v in r) + " |" for r in rows]
    return "\n".join(out)
