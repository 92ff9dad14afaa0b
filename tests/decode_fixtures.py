"""Helpers of the decoding, transcription and yesno-recipe tests.

The fixtures ``yesno_run`` and ``yesno`` (``tests/conftest.py``) run the yesno
recipe (``recipes/yesno/run.sh``) once per test session into a temporary work
dir with :func:`run_yesno_recipe`; the tests then use its trained model dir
(``exp/tdnn``), graph (``data/lang_ug``) and decode dir
(``exp/tdnn/decode_test_ug``).  Tests must not change the recipe's outputs
except where they check that a rerun reproduces them.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

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


def run_yesno_recipe(workdir: Path) -> RecipeRun:
    """Runs the yesno recipe into ``workdir`` (the ``yesno_run`` fixture); any exit status."""
    t0 = time.perf_counter()
    proc = run_recipe(workdir)
    return RecipeRun(workdir, proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0)


def __getattr__(name: str):
    """``from decode_fixtures import yesno, yesno_run`` in a test module written before
    the fixtures moved to conftest.py still imports (a placeholder, no fixture): the
    test's ``yesno`` argument is conftest's fixture.  Drop such imports."""
    if name in ("yesno", "yesno_run"):
        return MOVED_TO_CONFTEST
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


MOVED_TO_CONFTEST = "fixture moved to tests/conftest.py"
