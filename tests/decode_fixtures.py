"""Shared fixtures of the decoding, transcription and yesno-recipe tests.

The yesno recipe (``recipes/yesno/run.sh``) is run once per test session into
a temporary work dir; the tests then use its trained model dir
(``exp/tdnn``), graph (``data/lang_ug``) and decode dir
(``exp/tdnn/decode_test_ug``).  Tests must not change the recipe's outputs
except where they check that a rerun reproduces them.

Import the fixtures into a test module with
``from decode_fixtures import yesno, yesno_run  # noqa: F401``.  A fixture
imported into several modules is registered once per module, so the recipe
run itself is cached here, at module level, to run only once per session.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RUN_SH = REPO / "recipes" / "yesno" / "run.sh"
ASR = REPO / ".venv" / "bin" / "asr"
YESNO_CORPUS = REPO.parent / "shared" / "corpora" / "yesno"
#: Its name says 8 words but its audio holds only 7, so it always has one deletion.
HARD_UTT = "0_1_0_1_0_0_0_0"


@dataclass
class RecipeRun:
    """One run of ``recipes/yesno/run.sh``."""

    workdir: Path
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    @property
    def model_dir(self) -> Path:
        return self.workdir / "exp" / "tdnn"

    @property
    def graph_dir(self) -> Path:
        return self.workdir / "data" / "lang_ug"

    @property
    def decode_dir(self) -> Path:
        return self.workdir / "exp" / "tdnn" / "decode_test_ug"

    @property
    def test_dir(self) -> Path:
        return self.workdir / "data" / "test"


def run_recipe(workdir: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Runs the yesno recipe with extra arguments; output captured as text."""
    return subprocess.run(
        [str(RUN_SH), "--workdir", str(workdir), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )


def read_table(path: Path) -> dict[str, str]:
    """A Kaldi table as ``{key: rest of the line}``."""
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        key, _, rest = line.partition(" ")
        out[key] = rest.strip()
    return out


def read_ctm(path: Path) -> list[tuple[str, str, float, float, str, float]]:
    """CTM lines as ``(utt, channel, start, dur, word, conf)``."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        utt, ch, start, dur, word, conf = line.split()
        out.append((utt, ch, float(start), float(dur), word, float(conf)))
    return out


def copy_decode_dir(src: Path, dest: Path) -> Path:
    """A copy of a decode dir (jobs included, so decoding it again only merges)."""
    shutil.copytree(src, dest)
    return dest


_RUN: RecipeRun | None = None


@pytest.fixture(scope="session")
def yesno_run(tmp_path_factory) -> RecipeRun:
    """The yesno recipe, run once per session (whatever its exit status)."""
    global _RUN
    if _RUN is None:
        workdir = tmp_path_factory.mktemp("yesno_recipe")
        t0 = time.perf_counter()
        proc = run_recipe(workdir)
        _RUN = RecipeRun(workdir, proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0)
    return _RUN


@pytest.fixture(scope="session")
def yesno(yesno_run) -> RecipeRun:
    """The yesno recipe's outputs; fails the test if the recipe failed."""
    if yesno_run.returncode != 0:
        pytest.fail(f"yesno recipe failed (exit {yesno_run.returncode}):\n{yesno_run.stderr[-3000:]}")
    return yesno_run
