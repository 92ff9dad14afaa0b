"""The wheel works outside the source tree (issue 16, "Packaging").

A wheel is built without build isolation and installed, without its
dependencies, into a fresh venv that borrows the dependencies of the
repository's ``.venv`` through a ``.pth`` file. From a folder outside the
checkout, ``asr --help``, ``asr prepare-lang`` with its default config and
``asr transcribe`` with its default config must work, importing ``asr`` from
the wheel: ``.venv`` holds an editable install whose finder would otherwise
resolve ``import asr`` to the checkout and let this test pass without testing
the wheel.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from reliability_fixtures import REPO, Tiny, yesno_wavs

#: What the wheel is built from: setuptools reads only these (packages.find
#: over asr*, package-data, readme). Building from a copy keeps setuptools'
#: build/ folder, which never drops stale files, out of the checkout.
WHEEL_SOURCES = ("asr", "pyproject.toml", "README.md")

#: Checks, in the new venv, where asr and its default configs come from, and
#: that no editable-install finder was installed (their .pth files must not run).
PROBE = """\
import os, sys
import asr, asr.config
print(asr.__file__)
print(os.path.abspath(str(asr.config.resolve_config("lang.yaml"))))
print(sorted(m for m in sys.modules if "editable" in m))
print([type(f).__name__ for f in sys.meta_path if "editable" in type(f).__module__.lower()])
"""


def _run(argv: list[str | Path], cwd: Path, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Runs a command with no PYTHONPATH, so that nothing points back into the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{argv}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def _build_wheel(dest: Path, scratch: Path) -> Path:
    src = scratch / "src"
    src.mkdir()
    for name in WHEEL_SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          ".", "-w", dest], cwd=src)
    (wheel,) = dest.glob("asr-*.whl")
    return wheel


def _venv_with_borrowed_deps(env_dir: Path) -> Path:
    """A venv without pip whose site-packages ends with this interpreter's site-packages.

    A plain path line in a .pth file is appended to sys.path without processing
    the .pth files of that folder, so the editable install's finder
    (``__editable__*.pth``) stays inactive, and the venv's own site-packages
    comes first.
    """
    _run([sys.executable, "-m", "venv", "--without-pip", env_dir], cwd=env_dir.parent)
    python = env_dir / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   cwd=env_dir).stdout.strip()
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()] or [sysconfig.get_paths()["purelib"]]
    (Path(purelib) / "zz_asr_borrowed_deps.pth").write_text("\n".join(deps) + "\n", encoding="utf-8")
    return python


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory) -> tuple[Path, Path]:
    """(bin dir of a venv with the asr wheel installed, a work folder outside the checkout)."""
    root = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(root / "dist", root)
    python = _venv_with_borrowed_deps(root / "env")
    # pip runs from .venv but installs for the new interpreter: the venv has no pip of its own.
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
         cwd=root)
    work = root / "work"
    work.mkdir()
    assert REPO not in work.resolve().parents
    return python.parent, work


def test_asr_is_imported_from_the_wheel(wheel_env) -> None:
    bin_dir, work = wheel_env
    out = _run([bin_dir / "python", "-c", PROBE], cwd=work).stdout.splitlines()
    asr_file, lang_yaml, editable_modules, editable_finders = out
    env_dir = bin_dir.parent.resolve()
    for p in (Path(asr_file).resolve(), Path(lang_yaml).resolve()):
        assert REPO not in p.parents, p
        assert env_dir in p.parents, p
    assert Path(lang_yaml).name == "lang.yaml" and Path(lang_yaml).parent.name == "conf"
    assert editable_modules == "[]" and editable_finders == "[]"


def test_help_lists_the_steps_but_not_bench(wheel_env) -> None:
    bin_dir, work = wheel_env
    out = _run([bin_dir / "asr", "--help"], cwd=work).stdout
    for step in ("prepare-data", "compute-feats", "prepare-lang", "compile-graph", "train", "align", "decode",
                 "score", "transcribe"):
        assert step in out
    assert "bench" not in out


def test_prepare_lang_with_the_packaged_default_config(wheel_env) -> None:
    bin_dir, work = wheel_env
    lexicon = work / "lexicon.txt"
    lexicon.write_text("<SIL> SIL\nNO N\nYES Y\n", encoding="utf-8")
    _run([bin_dir / "asr", "prepare-lang", lexicon, work / "lang"], cwd=work)
    # the lang dir records the config it was made with: the packaged lang.yaml's 3-state topology
    import yaml

    cfg = yaml.safe_load((work / "lang" / "lang.yaml").read_text(encoding="utf-8"))
    assert cfg["topology"]["name"] == "kaldi-3state"
    assert (work / "lang" / "L.pt").is_file() and (work / "lang" / "H.pt").is_file()


def test_transcribe_with_a_model_dir_from_the_suite(wheel_env, tiny: Tiny) -> None:
    bin_dir, work = wheel_env
    wav = yesno_wavs(1)[0]
    out = _run([bin_dir / "asr", "transcribe", "--model-dir", tiny.model_dir, wav], cwd=work).stdout
    (line,) = out.splitlines()
    name, _, transcript = line.partition("\t")
    assert name == str(wav)
    # the tiny model's accuracy is irrelevant; it decodes into the lexicon's words
    assert set(transcript.split()) <= {"YES", "NO"}
