"""docs/OWN_CORPUS.md: its ```bash blocks, run verbatim in one shell on a small espeak-ng corpus.

Slow (a few minutes: a whole template run). Needs espeak-ng (Debian package
``espeak-ng``) for the corpus; skipped without it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "OWN_CORPUS.md"
GENERATOR = ROOT / "recipes" / "template" / "local" / "make_espeak_corpus.py"
WER_LINE = re.compile(r"^%WER \d+\.\d+ \[ \d+ / \d+, \d+ ins, \d+ del, \d+ sub \]$", re.M)
#: A small corpus: 6 training voices x 30 utterances, 3 test voices x 10.
SMALL_CORPUS = ["--words-per-voice", "24", "--phrases-per-voice", "6", "--test-utts-per-voice", "10"]


def bash_blocks(text: str) -> list[str]:
    """The bodies of the ```bash fenced blocks, in order."""
    return re.findall(r"^```bash\n(.*?)^```$", text, flags=re.M | re.S)


def test_doc_has_the_walkthrough_blocks():
    blocks = bash_blocks(DOC.read_text())
    joined = "\n".join(blocks)
    for step in ("prepare-data table", "prepare-data split", "prepare-lexicon", "recipes/template/run.sh",
                 "--override", "wer_details"):
        assert step in joined, step


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None,
                    reason="espeak-ng is not installed (apt-get install espeak-ng): it synthesizes the corpus")
def test_doc_blocks_run_verbatim(tmp_path):
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, str(GENERATOR), str(corpus), *SMALL_CORPUS], check=True, capture_output=True)
    script = "set -euo pipefail\n" + "\n".join(bash_blocks(DOC.read_text()))
    env = dict(os.environ, CORPUS=str(corpus), WORK=str(tmp_path / "work"))
    proc = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert WER_LINE.search(proc.stdout), proc.stdout[-2000:]
    assert "SUBSTITUTIONS:" in proc.stdout and "WORD ERRORS:" in proc.stdout
    assert "hidden: 160" in proc.stdout  # the override reached the scaled config
    assert (tmp_path / "work" / "lexicon_g2p.txt").read_text().strip()  # invented words came from the G2P
