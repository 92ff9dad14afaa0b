"""``asr build-tree`` as a library call: statistics, questions, tree, files."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from asr.fileio import atomic_write_text
from asr.lang.lang_dir import LangDir
from asr.tree.build import build_tree
from asr.tree.config import TreeConfig
from asr.tree.questions import read_extra_questions
from asr.tree.stats import accumulate_tree_stats
from asr.tree.tree import TREE_FILE, Tree

log = logging.getLogger(__name__)

#: The questions used, one phone set per line (usable as an extra-questions file).
QUESTIONS_FILE = "questions.txt"


def build_tree_dir(
    ali_dir: str | Path,
    data_dir: str | Path,
    lang_dir: str | Path,
    out_dir: str | Path,
    cfg: TreeConfig,
    extra_questions: str | Path | None = None,
) -> Tree:
    """Accumulates statistics, builds the tree and writes ``out_dir/tree.yaml`` and ``questions.txt``.

    Raises:
      AsrError: for missing or inconsistent inputs (each message names the file).
    """
    lang = LangDir.load(lang_dir)
    extra = read_extra_questions(extra_questions, lang.phones) if extra_questions is not None else []
    start = time.perf_counter()
    stats = accumulate_tree_stats(ali_dir, data_dir, lang, cfg.context_width, cfg.central_position, cfg.deltas)
    accumulated = time.perf_counter()
    tree = build_tree(stats, lang, cfg, extra)
    log.info("tree stats %.1f s, tree %.1f s", accumulated - start, time.perf_counter() - accumulated)
    out_dir = Path(out_dir)
    tree.save(out_dir / TREE_FILE)
    # The boundary (0) has no name in phones.txt; a line of it alone is left out.
    lines = [" ".join(lang.phones.get(p) for p in q if p != 0) + "\n" for q in tree.questions if any(q)]
    atomic_write_text(out_dir / QUESTIONS_FILE, "".join(lines))
    return tree
