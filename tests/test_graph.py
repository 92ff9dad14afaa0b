"""Tests of asr.lang.graph: G from ARPA, HLG compilation, graph dirs and their CLIs."""

from __future__ import annotations

import math
from pathlib import Path

import k2
import pytest
import torch

from asr.cli import main as asr_main
from asr.config import load_config
from asr.errors import LanguageModelError
from asr.lang.fsa_io import load_fsa
from asr.lang.grammar import arpa_to_g
from asr.lang.graph import build_graph_dir, compile_hlg
from asr.lang.k2fsa import dense_fsa_vec
from asr.lang.lm import read_arpa

from helpers_tiny import make_lang, one_hot_log_probs, word_ids_on_path, write_lexicon

LEXICON_ABC = "<SIL> SIL\nA PA\nB PB\nC PC\n"

# P(A|<s>) = 0.5, P(B|A) = 0.75, P(</s>|B) = 0.25 (log10 values in the file).
TINY_ARPA = f"""\\data\\
ngram 1=5
ngram 2=3

\\1-grams:
-99\t<s>\t{math.log10(0.5):.7f}
{math.log10(0.3):.7f}\tA\t{math.log10(0.5):.7f}
{math.log10(0.3):.7f}\tB\t{math.log10(0.5):.7f}
{math.log10(0.1):.7f}\tC
{math.log10(0.3):.7f}\t</s>

\\2-grams:
{math.log10(0.5):.7f}\t<s> A
{math.log10(0.75):.7f}\tA B
{math.log10(0.25):.7f}\tB </s>

\\end\\
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _path_score(G: k2.Fsa, word_ids: list[int]) -> float | None:
    """Best (tropical) score of G's path over ``word_ids``, back-off (#0) arcs blocked."""
    fsa = k2.connect(k2.intersect(k2.arc_sort(G), k2.linear_fsa(word_ids), treat_epsilons_specially=True))
    if fsa.num_arcs == 0:
        return None
    return float(k2.create_fsa_vec([fsa]).get_tot_scores(use_double_scores=True, log_semiring=False)[0])


def test_arpa_to_g_scores_are_natural_logs(tmp_path):
    lang = make_lang(tmp_path, LEXICON_ABC)
    G = arpa_to_g(_write(tmp_path / "lm.arpa", TINY_ARPA), lang.path / "words.txt")
    A, B = lang.words["A"], lang.words["B"]
    assert _path_score(G, [A, B]) == pytest.approx(math.log(0.5) + math.log(0.75) + math.log(0.25), abs=1e-4)
    # G's labels are word ids; back-off arcs carry #0, and <s>/</s> never appear.
    labels = set(G.labels.tolist())
    assert lang.words["#0"] in labels
    assert lang.words["<s>"] not in labels and lang.words["</s>"] not in labels
    assert labels <= set(lang.words.id2sym) | {-1}


def test_malformed_arpa_raises_naming_file(tmp_path):
    lang = make_lang(tmp_path, LEXICON_ABC)
    bad = _write(tmp_path / "bad.arpa", "\\data\\\nngram 1=2\n\n\\1-grams:\n-0.3\n-0.3 A\n\n\\end\\\n")
    with pytest.raises(LanguageModelError, match=str(bad)):
        arpa_to_g(bad, lang.path / "words.txt")
    with pytest.raises(LanguageModelError, match="no such ARPA file"):
        arpa_to_g(tmp_path / "missing.arpa", lang.path / "words.txt")


def _decode_words(HLG: k2.Fsa, pdfs: list[int], num_pdfs: int) -> list[int] | None:
    """Words on the best HLG path for frame scores that favour ``pdfs``."""
    dense, _ = dense_fsa_vec(one_hot_log_probs(pdfs, num_pdfs), torch.tensor([len(pdfs)]))
    lattice = k2.intersect_dense(k2.create_fsa_vec([HLG]), dense, output_beam=20.0)
    best = k2.shortest_path(lattice, use_double_scores=True)
    score = best.get_tot_scores(use_double_scores=True, log_semiring=False)[0]
    if not torch.isfinite(score):
        return None
    return word_ids_on_path(best)


def _linear_words(HLG: k2.Fsa, pdfs: list[int]) -> list[int] | None:
    """Words of HLG's best path over exactly this pdf sequence (linear acceptor)."""
    fsa = k2.connect(k2.intersect(HLG, k2.linear_fsa(pdfs), treat_epsilons_specially=False))
    if fsa.num_arcs == 0:
        return None
    return word_ids_on_path(k2.shortest_path(k2.create_fsa_vec([fsa]), use_double_scores=True))


def test_compile_hlg_maps_pdfs_to_words(tmp_path):
    lang = make_lang(tmp_path, LEXICON_ABC)
    G = arpa_to_g(_write(tmp_path / "lm.arpa", TINY_ARPA), lang.path / "words.txt")
    HLG = compile_hlg(lang, G)
    assert isinstance(HLG.aux_labels, k2.RaggedTensor)
    A, B = lang.words["A"], lang.words["B"]
    # SIL_0=1, PA_0..2=2..4, PB_0..2=5..7, PC_0..2=8..10
    assert _linear_words(HLG, [2, 3, 4, 5, 6, 7]) == [A, B]
    assert _linear_words(HLG, [1, 2, 2, 3, 4, 4, 1, 5, 6, 6, 7, 1]) == [A, B]
    assert _linear_words(HLG, [2, 3, 5, 6, 7]) is None  # PA cut short
    assert _decode_words(HLG, [1, 1, 2, 3, 4, 5, 6, 7, 1], lang.num_pdfs) == [A, B]
    assert _decode_words(HLG, [5, 6, 7, 2, 3, 4], lang.num_pdfs) == [B, A]  # via back-off


def test_build_graph_dir_from_text(tmp_path):
    lang = make_lang(tmp_path, LEXICON_ABC)
    text = _write(tmp_path / "text", "u1 A B\nu2 B A\nu3 A B A\n")
    out = tmp_path / "lang_bg"
    HLG = build_graph_dir(lang.path, out, text_files=[text], order=2)
    for name in ("lm.arpa", "G.pt", "HLG.pt", "graph.yaml"):
        assert (out / name).is_file(), name
    lm = read_arpa(out / "lm.arpa")
    assert lm.order == 2
    # C is in the lexicon but not in the text: it still gets probability > 0.
    assert lm.probs[0][("C",)] > -10
    assert ("A", "B") in lm.probs[1]
    info = load_config(out / "graph.yaml")
    assert info["order"] == 2 and info["HLG"]["arcs"] == HLG.num_arcs and info["G"]["arcs"] > 0
    saved = load_fsa(out / "HLG.pt")
    assert torch.equal(saved.labels, HLG.labels)
    assert saved.aux_labels.tolist() == HLG.aux_labels.tolist()
    # C is reachable in HLG.
    assert _linear_words(saved, [1, 8, 9, 10, 1]) == [lang.words["C"]]
    assert _linear_words(saved, [8, 9, 10, 2, 3, 4]) == [lang.words["C"], lang.words["A"]]


def test_cli_prepare_lang_and_compile_graph(tmp_path, capsys):
    lex = write_lexicon(tmp_path / "lex.txt", LEXICON_ABC)
    lang_dir = tmp_path / "lang"
    assert asr_main(["prepare-lang", str(lex), str(lang_dir), "--config", "lang.yaml"]) == 0
    for name in ("phones.txt", "words.txt", "pdfs.txt", "L.pt", "L_disambig.pt", "H.pt", "lang.yaml"):
        assert (lang_dir / name).is_file(), name
    assert "10 pdfs" in capsys.readouterr().out
    text = _write(tmp_path / "text", "u1 A B\nu2 C\n")
    out = tmp_path / "lang_ug"
    assert asr_main(["compile-graph", str(lang_dir), str(out), "--text", str(text), "--order", "1"]) == 0
    assert "HLG.pt" in capsys.readouterr().out
    assert load_config(out / "graph.yaml")["order"] == 1
    assert (out / "HLG.pt").is_file()
    # A user-fixable problem: exit status 1 and a one-line error naming the file.
    bad = _write(tmp_path / "bad.arpa", "not an arpa file\n")
    assert asr_main(["compile-graph", str(lang_dir), str(tmp_path / "x"), "--arpa", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and str(bad) in err
    empty = write_lexicon(tmp_path / "empty.txt", "\n")
    assert asr_main(["prepare-lang", str(empty), str(tmp_path / "lang2"), "--config", "lang.yaml"]) == 1
    assert "empty" in capsys.readouterr().err
