"""Code conventions of docs/DESIGN.md that are cheap to check from the source."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "asr"

#: The package logger itself: training adds its log-file handler there (asr/training/run.py).
PACKAGE_LOGGER = "asr"


def _module_name(path: Path) -> str:
    """``asr/lang/graph.py`` -> ``asr.lang.graph``; a package's ``__init__`` is the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_module_loggers_are_named_after_their_module() -> None:
    # Assignments like `log = logging.getLogger("...")` are a module's own logger;
    # other getLogger calls (the package logger "asr") are allowed.
    assignment = re.compile(r'^(?:log|logger)\s*=\s*logging\.getLogger\("([^"]+)"\)', re.M)
    wrong = []
    for path in _sources():
        for name in assignment.findall(path.read_text(encoding="utf-8")):
            if name != _module_name(path):
                wrong.append(f"{path.relative_to(PACKAGE.parent)}: {name!r}, expected {_module_name(path)!r}")
    assert not wrong, "\n".join(wrong)
    # every getLogger call names the module's logger or the package logger
    for path in _sources():
        for name in re.findall(r'getLogger\("([^"]+)"\)', path.read_text(encoding="utf-8")):
            assert name in (_module_name(path), PACKAGE_LOGGER), f"{path}: getLogger({name!r})"


def test_pathlike_is_defined_once() -> None:
    defining = [p for p in _sources() if re.search(r"^PathLike\s*=", p.read_text(encoding="utf-8"), re.M)]
    assert [p.relative_to(PACKAGE.parent).as_posix() for p in defining] == ["asr/fileio.py"]
