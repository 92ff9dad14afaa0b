"""The one registry of ``asr prepare-data`` subcommands (corpus preparers and importers).

Each preparer module registers itself when imported::

    @register_preparer("mycorpus", help="prepare MyCorpus", add_arguments=add_corpus_arguments)
    def _run(args: argparse.Namespace) -> dict[str, Path]:
        return prepare_mycorpus(args.corpus_dir, args.out_dir)

and is named once in :data:`PREPARER_MODULES`.  The CLI builds one
subcommand per entry, in that order, from :func:`preparers`.  The modules are
imported only when the registry is first read, so importing this module has no
side effects and no import cycles.
"""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

#: Modules whose import registers a preparer; adding a corpus = adding its module here.
PREPARER_MODULES = (
    "asr.data.corpora.yesno",
    "asr.data.corpora.an4",
    "asr.data.importers.table",
    "asr.data.importers.folder",
    "asr.data.importers.lhotse_manifests",
    "asr.data.split",
)

#: Runs a subcommand on parsed arguments; returns ``{label: path}`` of what it wrote.
RunFunction = Callable[[argparse.Namespace], dict[str, Path]]
#: Adds a subcommand's own arguments to its parser.
ArgumentsFunction = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Preparer:
    """One ``asr prepare-data NAME`` subcommand.

    Attributes:
      name: The subcommand name.
      help: One line for ``asr prepare-data --help``.
      description: Longer text for ``asr prepare-data NAME --help`` (defaults to ``help``).
      add_arguments: Adds the subcommand's arguments to its parser.
      run: Does the work; returns ``{label: path}`` of the outputs.
    """

    name: str
    help: str
    description: str
    add_arguments: ArgumentsFunction
    run: RunFunction


_REGISTRY: dict[str, Preparer] = {}


def register_preparer(
    name: str, help: str, add_arguments: ArgumentsFunction, description: str = ""
) -> Callable[[RunFunction], RunFunction]:
    """Decorator registering ``run`` as the ``asr prepare-data NAME`` subcommand.

    Raises:
      ValueError: if ``name`` is already registered (a programming error).
    """

    def decorate(run: RunFunction) -> RunFunction:
        if name in _REGISTRY:
            raise ValueError(f"preparer '{name}' is registered twice")
        _REGISTRY[name] = Preparer(name, help, description or help, add_arguments, run)
        return run

    return decorate


def preparers() -> dict[str, Preparer]:
    """Returns every registered preparer, name -> :class:`Preparer`, in registration order."""
    for module in PREPARER_MODULES:
        importlib.import_module(module)
    # A module may import another preparer module first; the list's order wins.
    order = {module: i for i, module in enumerate(PREPARER_MODULES)}
    ranked = sorted(_REGISTRY.values(), key=lambda p: order.get(p.run.__module__, len(order)))
    return {p.name: p for p in ranked}


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of a corpus preparer that writes ``OUT_DIR/train`` and ``OUT_DIR/test``."""
    parser.add_argument("corpus_dir", metavar="CORPUS_DIR", help="the corpus as downloaded")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="where train/ and test/ are written")
