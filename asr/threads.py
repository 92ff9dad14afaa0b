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
  ``OMP_NUM_THREADS``, then :data:`DEFAULT_THREADS`: one thread per process,
  for every command and any number of jobs. This is Kaldi's convention (its
  nnet3 trainers and decoders are single-threaded per job), and the one
  measured to degrade gracefully: two one-thread trainings on two cores each
  run at 1.0-1.2x the time of one alone, while two-thread ones ran up to 18x
  slower (benchmarks/RESULTS.md, "Threads"). It also makes results
  independent of the machine's core count. On an idle machine a TDNN trains
  about 1.2x faster on two threads; ask for them with ``--threads``.

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
#: Torch threads per process when neither ``--threads`` nor ``OMP_NUM_THREADS`` says otherwise.
DEFAULT_THREADS = 1


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


def choose_threads(requested: int | None, environ: Mapping[str, str]) -> ThreadChoice:
    """The intra-op thread count of one process of a command.

    Args:
      requested: ``--threads`` (or the config's ``threads``); wins when given.
      environ: The environment; a valid ``OMP_NUM_THREADS`` comes second.

    Returns:
      ``requested``; else ``OMP_NUM_THREADS``; else :data:`DEFAULT_THREADS`.
    """
    if requested is not None:
        if requested < 1:
            raise ConfigError(f"--threads must be at least 1, got {requested}")
        return ThreadChoice(requested, "--threads")
    from_env = parse_omp_num_threads(environ.get("OMP_NUM_THREADS"))
    if from_env is not None:
        return ThreadChoice(from_env, "OMP_NUM_THREADS")
    return ThreadChoice(DEFAULT_THREADS, "the default, one per process; --threads N for more")


def resolve_threads(requested: int | None = None, what: str = "") -> ThreadChoice:
    """:func:`choose_threads` for this process's environment, logged once at INFO."""
    choice = choose_threads(requested, os.environ)
    log.info("%s%d torch thread(s) (%s); OpenMP spinning: %s", f"{what}: " if what else "",
             choice.threads, choice.reason, spin_policy())
    return choice


def set_torch_threads(requested: int | None = None, what: str = "") -> ThreadChoice:
    """Chooses this process's thread count (:func:`resolve_threads`) and gives it to torch."""
    import torch

    choice = resolve_threads(requested, what)
    torch.set_num_threads(choice.threads)
    return choice
