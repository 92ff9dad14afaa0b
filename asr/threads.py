"""Thread policy: how many torch threads a command uses, and how long OpenMP threads spin.

Two settings decide how a computing command (``asr train``, ``align``,
``decode``, ``transcribe``, ``build-tree``, the benchmarks) behaves when
the machine is shared:

* **OpenMP spinning.** torch's CPU kernels run on GNU OpenMP (libgomp). A
  thread that reaches the end of a parallel region first spins, busy, for
  ``GOMP_SPINCOUNT`` iterations before it sleeps: 300000 by default, about
  3 ms by libgomp's own estimate of 100000 spins per ms. When another job
  holds the cores, the thread it waits for is descheduled and the spinning
  burns the time slice that thread needs. The ``asr`` command bounds it to
  :data:`BOUNDED_SPINCOUNT` (about 0.1 ms, longer than the gap between two
  kernels of one job) unless ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` is set
  in the environment. libgomp reads it once, when torch is first imported, so
  :func:`bound_openmp_spinning` runs first thing in ``asr.cli.main``.
* **Intra-op threads**, chosen by :func:`choose_threads`: an explicit
  ``--threads`` (or config ``threads``) wins, then the user's
  ``OMP_NUM_THREADS``, then the command's own per-job count (decoding: 1),
  then one thread per job when the command runs ``nj`` > 1 jobs at once,
  else ``min(cores, MAX_AUTO_THREADS)``.

The thread count is part of the arithmetic (reductions split over threads
round differently), so results are bit-identical only at the same count.
Spinning changes no result.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from asr.errors import ConfigError

log = logging.getLogger("asr.threads")

#: Environment variables that set libgomp's spinning; a user's value of either wins.
SPIN_VARIABLES = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
#: The spin count the ``asr`` command sets: about 0.1 ms (libgomp's default is 300000, about 3 ms).
BOUNDED_SPINCOUNT = "10000"
#: libgomp's spin count when neither variable is set (``libgomp/env.c``); the old behaviour.
LIBGOMP_DEFAULT_SPINCOUNT = "300000"
#: Most threads the automatic choice gives one job: small models gain nothing from more.
MAX_AUTO_THREADS = 8


@dataclass(frozen=True)
class ThreadChoice:
    """The torch intra-op thread count of one job and why it was chosen."""

    threads: int
    reason: str


def bound_openmp_spinning(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Sets ``GOMP_SPINCOUNT`` to :data:`BOUNDED_SPINCOUNT` unless the user set a spin policy.

    Must run before torch is first imported: libgomp reads the variable once
    when it loads. Child processes (spawned decoding and feature jobs)
    inherit it. Returns the variables it set (empty when the user's win).
    """
    env = os.environ if environ is None else environ
    if any(name in env for name in SPIN_VARIABLES):
        return {}
    env["GOMP_SPINCOUNT"] = BOUNDED_SPINCOUNT
    if environ is None and "torch" in sys.modules:
        log.debug("torch was imported before GOMP_SPINCOUNT was set: it applies to child processes only")
    return {"GOMP_SPINCOUNT": BOUNDED_SPINCOUNT}


def spin_policy(environ: Mapping[str, str] | None = None) -> str:
    """One line saying what bounds OpenMP spinning in ``environ`` (for the log)."""
    env = os.environ if environ is None else environ
    given = [f"{name}={env[name]}" for name in SPIN_VARIABLES if name in env]
    return ", ".join(given) if given else f"libgomp's default spinning (GOMP_SPINCOUNT {LIBGOMP_DEFAULT_SPINCOUNT})"


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask: taskset and cgroup cpusets count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def parse_omp_num_threads(value: str | None) -> int | None:
    """The first level of an ``OMP_NUM_THREADS`` value ("4" or "4,2"); None when unset or not a positive int."""
    if value is None:
        return None
    first = value.split(",")[0].strip()
    return int(first) if first.isdigit() and int(first) >= 1 else None


def choose_threads(
    requested: int | None,
    nj: int,
    cores: int,
    environ: Mapping[str, str],
    per_job_default: int | None = None,
) -> ThreadChoice:
    """The intra-op thread count of each of a command's ``nj`` concurrent jobs.

    Args:
      requested: ``--threads`` (or the config's ``threads``); wins when given.
      nj: How many jobs of this command run at once (``--nj``; DDP processes).
      cores: CPUs the process may use (:func:`usable_cores`).
      environ: The environment; a valid ``OMP_NUM_THREADS`` comes second.
      per_job_default: The command's own count when nothing is asked for
        (decoding: 1, so hypotheses and lattices do not depend on the machine).

    Returns:
      ``requested``; else ``OMP_NUM_THREADS``; else ``per_job_default``; else 1
      when ``nj > 1``; else ``min(cores, MAX_AUTO_THREADS)``.
    """
    if requested is not None:
        if requested < 1:
            raise ConfigError(f"--threads must be at least 1, got {requested}")
        return ThreadChoice(requested, "--threads")
    from_env = parse_omp_num_threads(environ.get("OMP_NUM_THREADS"))
    if from_env is not None:
        return ThreadChoice(from_env, "OMP_NUM_THREADS")
    if per_job_default is not None:
        return ThreadChoice(per_job_default, "this command's default per job")
    if nj > 1:
        return ThreadChoice(1, f"one per job, {nj} jobs at once")
    return ThreadChoice(min(cores, MAX_AUTO_THREADS), f"min({cores} cores, {MAX_AUTO_THREADS})")


def local_processes(environ: Mapping[str, str] | None = None) -> int:
    """Processes of this job on this machine: torchrun's ``LOCAL_WORLD_SIZE``, else 1."""
    env = os.environ if environ is None else environ
    value = env.get("LOCAL_WORLD_SIZE", "1")
    return int(value) if value.isdigit() and int(value) >= 1 else 1


def resolve_threads(requested: int | None = None, nj: int = 1, per_job_default: int | None = None,
                    what: str = "") -> ThreadChoice:
    """:func:`choose_threads` for this process (its cores and environment), logged at INFO."""
    choice = choose_threads(requested, nj, usable_cores(), os.environ, per_job_default)
    per_job = " per job" if nj > 1 or per_job_default is not None else ""
    log.info("%s%d torch thread(s)%s (%s); OpenMP spinning: %s", f"{what}: " if what else "",
             choice.threads, per_job, choice.reason, spin_policy())
    return choice


def set_torch_threads(requested: int | None = None, nj: int = 1, what: str = "") -> ThreadChoice:
    """Chooses this process's thread count (:func:`resolve_threads`) and gives it to torch."""
    import torch

    choice = resolve_threads(requested, nj, None, what)
    torch.set_num_threads(choice.threads)
    return choice
