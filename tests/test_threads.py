"""The thread policy (asr/threads.py): its decisions, and that ``asr`` bounds OpenMP spinning before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from asr.errors import ConfigError
from asr.threads import (
    BOUNDED_SPINCOUNT, DEFAULT_THREADS, bound_openmp_spinning, choose_threads, parse_omp_num_threads,
)


def test_default_is_one_thread_per_process():
    choice = choose_threads(None, {})
    assert choice.threads == DEFAULT_THREADS == 1
    assert "default" in choice.reason


def test_explicit_option_wins_over_environment():
    choice = choose_threads(3, {"OMP_NUM_THREADS": "1"})
    assert (choice.threads, choice.reason) == (3, "--threads")


def test_omp_num_threads_wins_over_the_default():
    assert choose_threads(None, {"OMP_NUM_THREADS": "2"}).threads == 2
    assert choose_threads(None, {"OMP_NUM_THREADS": "2"}).reason == "OMP_NUM_THREADS"


@pytest.mark.parametrize("value, parsed", [("4", 4), (" 2 ", 2), ("4,2", 4), ("0", None), ("-1", None),
                                           ("", None), ("many", None), (None, None)])
def test_omp_num_threads_values(value, parsed):
    assert parse_omp_num_threads(value) == parsed
    env = {} if value is None else {"OMP_NUM_THREADS": value}
    assert choose_threads(None, env).threads == (parsed or DEFAULT_THREADS)


def test_zero_threads_is_a_config_error():
    with pytest.raises(ConfigError, match="--threads must be at least 1, got 0"):
        choose_threads(0, {})


def test_spinning_is_bounded_unless_the_user_set_a_policy():
    env: dict[str, str] = {}
    assert bound_openmp_spinning(env) == {"GOMP_SPINCOUNT": BOUNDED_SPINCOUNT}
    assert env == {"GOMP_SPINCOUNT": BOUNDED_SPINCOUNT}
    for user in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "300000"}):
        env = dict(user)
        assert bound_openmp_spinning(env) == {}
        assert env == user


# The real entry point (the `asr` script is asr.cli:main) in a child; then torch's thread count.
# OMP_DISPLAY_ENV makes libgomp print the settings it read when torch loaded it.
_CHILD = """
import sys
from asr.cli import main
rc = main(sys.argv[1:])
import torch
print(f"CHILD rc={rc} threads={torch.get_num_threads()}")
"""


def _run_cli(tmp_path, args: list[str], **env_changes: str) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    env.update(env_changes, OMP_DISPLAY_ENV="VERBOSE")
    # transcribe sets the threads first, then fails on the missing model dir (exit 1)
    argv = ["transcribe", "--model-dir", str(tmp_path / "no_model"), *args, str(tmp_path / "x.wav")]
    proc = subprocess.run([sys.executable, "-c", _CHILD, *argv], env=env, capture_output=True, text=True, timeout=600)
    line = [l for l in proc.stdout.splitlines() if l.startswith("CHILD ")]
    assert line, proc.stderr[-2000:]
    return line[-1], proc.stderr


def test_cli_bounds_spinning_before_torch_loads_and_applies_the_policy(tmp_path):
    child, err = _run_cli(tmp_path, [])
    assert child == f"CHILD rc=1 threads={DEFAULT_THREADS}"  # rc 1: the missing model dir
    assert f"GOMP_SPINCOUNT = '{BOUNDED_SPINCOUNT}'" in err  # libgomp read it: set before torch loaded
    assert f"transcribe: {DEFAULT_THREADS} torch thread(s) (the default" in err
    assert f"OpenMP spinning: GOMP_SPINCOUNT={BOUNDED_SPINCOUNT}" in err


def test_cli_keeps_the_users_environment_and_option(tmp_path):
    child, err = _run_cli(tmp_path, ["--threads", "1"], OMP_WAIT_POLICY="ACTIVE", OMP_NUM_THREADS="2")
    assert child == "CHILD rc=1 threads=1"
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in err and f"GOMP_SPINCOUNT = '{BOUNDED_SPINCOUNT}'" not in err
    assert "transcribe: 1 torch thread(s) (--threads); OpenMP spinning: OMP_WAIT_POLICY=ACTIVE" in err


# -- benchmarks/threads.py helpers (the measurement itself is run by hand: benchmarks/README.md)

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_benchmark_copies_of_a_data_dir_are_training_data(tmp_path, monkeypatch):
    import torch

    from asr.training.data import load_utterances
    from helpers_tiny import make_data_dir

    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.threads import replicate_data

    src = make_data_dir(tmp_path / "src", num_speakers=2, utts_per_speaker=2)
    replicate_data(src, tmp_path / "x3", 3)
    orig = {u.utt_id: u for u in load_utterances(src)}
    copies = load_utterances(tmp_path / "x3")
    assert len(copies) == 3 * len(orig)
    assert {u.utt_id.partition("-")[0] for u in copies} == {"r00", "r01", "r02"}
    for u in copies:
        prefix, _, base = u.utt_id.partition("-")
        assert torch.equal(u.feats, orig[base].feats)
        assert (u.speaker, u.words) == (f"{prefix}-{orig[base].speaker}", orig[base].words)


def test_benchmark_replaces_only_the_threads_section(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks.threads import write_section

    md = tmp_path / "RESULTS.md"
    md.write_text("# Benchmark results\n\n## decode\n\nkept\n")
    write_section(md, "## Threads\n\nfirst")
    assert md.read_text() == "# Benchmark results\n\n## decode\n\nkept\n\n## Threads\n\nfirst\n"
    md.write_text(md.read_text() + "\n## G2P\n\nalso kept\n")
    write_section(md, "## Threads\n\nsecond")
    assert md.read_text() == "# Benchmark results\n\n## decode\n\nkept\n\n## Threads\n\nsecond\n\n## G2P\n\nalso kept\n"
