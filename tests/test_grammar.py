"""Tests of asr.lang.grammar: the grammar kinds of ``asr compile-graph`` and their G's language."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import k2
import pytest

from asr.cli import main as asr_main
from asr.config import load_config
from asr.lang import lm as lmlib
from asr.lang.grammar import (
    GRAMMARS,
    GrammarError,
    JsgfConfig,
    WordListConfig,
    cli_options,
    compile_grammar,
)
from asr.lang.graph import build_graph_dir, compile_graph_dir

from helpers_tiny import make_lang, word_ids_on_path
from reliability_fixtures import yesno_wavs

# One-phone words; with conf/lang.yaml the pdfs are SIL=1, then 3 per phone in this order.
LEXICON = "<SIL> SIL\nA PA\nB PB\nC PC\nGO PG\nSTOP PS\nTHE PT\nLEFT PL\nRIGHT PR\nONE PO\nTWO PW\n"
VOCAB = ["A", "B", "C", "GO", "STOP", "THE", "LEFT", "RIGHT", "ONE", "TWO"]
# Enumerated sentences are cut at this many words (loops make languages infinite).
MAX_WORDS = 4


@pytest.fixture(scope="module")
def lang(tmp_path_factory):
    return make_lang(tmp_path_factory.mktemp("grammar"), LEXICON)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _sentences(G: k2.Fsa, lang, max_words: int = MAX_WORDS) -> dict[tuple[str, ...], float]:
    """Every sentence of G with at most ``max_words`` words -> its best path score.

    Walks G's arcs depth first (G's states are few); an arc labelled -1 ends a sentence.
    """
    arcs = G.arcs.values()[:, :3].tolist()
    scores = G.scores.tolist()
    by_state: dict[int, list[tuple[int, int, float]]] = {}
    for (src, dst, label), score in zip(arcs, scores):
        by_state.setdefault(src, []).append((dst, label, score))
    found: dict[tuple[str, ...], float] = {}

    def walk(state: int, words: tuple[str, ...], total: float) -> None:
        for dst, label, score in by_state.get(state, []):
            if label == -1:
                found[words] = max(found.get(words, -math.inf), total + score)
            elif len(words) < max_words:
                walk(dst, words + (lang.words.id2sym[label],), total + score)

    walk(0, (), 0.0)
    return found


def _accepts(G: k2.Fsa, lang, sentence: str) -> bool:
    """Whether G accepts the word sequence (intersection with a linear acceptor)."""
    ids = [lang.words[w] for w in sentence.split()]
    fsa = k2.connect(k2.intersect(k2.arc_sort(G), k2.linear_fsa(ids), treat_epsilons_specially=True))
    return fsa.num_arcs > 0


def _word_list(tmp_path: Path, words: list[str], name: str = "words.txt") -> Path:
    return _write(tmp_path / name, "".join(w + "\n" for w in words))


def _jsgf(lang, tmp_path: Path, text: str, rule: str | None = None) -> k2.Fsa:
    return compile_grammar(lang, "jsgf", JsgfConfig(_write(tmp_path / "g.jsgf", text), rule)).G


def _products(*choices: list[list[str]]) -> set[tuple[str, ...]]:
    """All concatenations of one option from each list of options."""
    return {tuple(w for part in parts for w in part) for parts in itertools.product(*choices)}


# ---------------------------------------------------------------------------
# The registry and the CLI options


def test_registry_gives_the_cli_choices():
    assert list(GRAMMARS) == ["ngram", "one-of", "word-loop", "jsgf"]
    flags = {e.option.flag: e.kinds for e in cli_options()}
    assert flags["--words"] == ["one-of", "word-loop"] and flags["--jsgf"] == ["jsgf"]
    assert flags["--arpa"] == flags["--text"] == ["ngram"]
    method = next(e for e in cli_options() if e.option.flag == "--method")
    assert method.option.argparse_kwargs["choices"] == tuple(lmlib.LM_ESTIMATORS) == ("kneser-ney", "witten-bell")


def test_lm_estimator_registry_names_and_aliases():
    assert lmlib.get_estimator("KN").name == "kneser-ney"
    assert lmlib.get_estimator("witten_bell").name == "witten-bell"
    with pytest.raises(ValueError, match="unknown smoothing method 'good-turing'"):
        lmlib.get_estimator("good-turing")
    # Each estimator gives a proper distribution over the vocabulary after <s>.
    for name in lmlib.LM_ESTIMATORS:
        model = lmlib.estimate_ngram([["A", "B"], ["B"]], ["A", "B", "C"], 2, name)
        total = sum(10 ** lmlib.ngram_logprob(model, w, ["<s>"]) for w in ("A", "B", "C", "</s>"))
        assert total == pytest.approx(1.0, abs=1e-6), name


# ---------------------------------------------------------------------------
# The language of each kind


def test_one_of_accepts_exactly_one_listed_word(lang, tmp_path):
    G = compile_grammar(lang, "one-of", WordListConfig(_word_list(tmp_path, ["A", "B", "", "C"]))).G
    sentences = _sentences(G, lang)
    assert set(sentences) == {("A",), ("B",), ("C",)}
    # Uniform and normalized: each word ln(1/3).
    assert all(s == pytest.approx(math.log(1 / 3), abs=1e-6) for s in sentences.values())
    assert _accepts(G, lang, "B")
    assert not _accepts(G, lang, "A B") and not _accepts(G, lang, "") and not _accepts(G, lang, "GO")
    # Deterministic, epsilon-free (no #0 needed) and minimal: start, after a word, k2's final state.
    labels = [lab for lab in G.labels.tolist() if lab != -1]
    assert 0 not in labels and lang.words["#0"] not in labels
    assert G.shape[0] == 3


def test_word_loop_accepts_any_sequence_of_listed_words(lang, tmp_path):
    G = compile_grammar(lang, "word-loop", WordListConfig(_word_list(tmp_path, ["A", "B"]))).G
    sentences = _sentences(G, lang)
    expected = {s for n in range(1, MAX_WORDS + 1) for s in itertools.product(["A", "B"], repeat=n)}
    assert set(sentences) == expected
    assert not _accepts(G, lang, "") and not _accepts(G, lang, "A C")
    # First word ln(1/2); each later word and the stop ln(1/3) (2 words + stopping).
    assert sentences[("A", "B")] == pytest.approx(math.log(1 / 2) + 2 * math.log(1 / 3), abs=1e-6)


JSGF_COMMANDS = """#JSGF V1.0;
grammar commands;

// a command: a move or STOP
public <command> = <move> | STOP;   /* the root */
<move> = GO [THE] (LEFT | RIGHT) <count>*;
<count> = ONE | TWO;
"""


def test_jsgf_alternatives_optional_repetition_and_references(lang, tmp_path):
    G = _jsgf(lang, tmp_path, JSGF_COMMANDS)
    sentences = set(_sentences(G, lang))
    counts = [[]] + [[c] for c in ("ONE", "TWO")] + [[a, b] for a in ("ONE", "TWO") for b in ("ONE", "TWO")]
    moves = _products([["GO"]], [[], ["THE"]], [["LEFT"], ["RIGHT"]], counts)
    expected = {s for s in moves if len(s) <= MAX_WORDS} | {("STOP",)}
    assert sentences == expected
    assert _accepts(G, lang, "GO THE LEFT ONE TWO ONE TWO ONE")  # '*' is unbounded
    for rejected in ("GO", "THE LEFT", "GO THE THE LEFT", "STOP STOP", "GO LEFT STOP", ""):
        assert not _accepts(G, lang, rejected), rejected


def test_jsgf_plus_needs_one_and_rule_option_picks_the_root(lang, tmp_path):
    text = "public <digits> = (ONE | TWO)+;\npublic <yes> = A;\n"
    G = _jsgf(lang, tmp_path, text)
    assert _accepts(G, lang, "ONE") and _accepts(G, lang, "TWO ONE TWO") and not _accepts(G, lang, "")
    assert not _accepts(G, lang, "A")
    G_yes = _jsgf(lang, tmp_path, text, rule="<yes>")
    assert set(_sentences(G_yes, lang)) == {("A",)}


def test_jsgf_scores_are_a_distribution(lang, tmp_path):
    # An acyclic grammar: its sentences' probabilities must sum to 1.
    G = _jsgf(lang, tmp_path, "public <a> = (A | B C) [THE] | GO;\n")
    sentences = _sentences(G, lang)
    assert set(sentences) == {("A",), ("A", "THE"), ("B", "C"), ("B", "C", "THE"), ("GO",)}
    assert sum(math.exp(s) for s in sentences.values()) == pytest.approx(1.0, abs=1e-5)


def test_jsgf_scores_depend_only_on_the_language(lang, tmp_path):
    # Same language written three ways -> the same sentences with the same scores.
    texts = ["public <a> = A B | A C;\n", "public <a> = A (B | C);\n", "public <a> = A (C | B | C);\n"]
    results = [_sentences(_jsgf(lang, tmp_path, t), lang) for t in texts]
    assert set(results[0]) == {("A", "B"), ("A", "C")}
    for other in results[1:]:
        assert other.keys() == results[0].keys()
        assert all(other[k] == pytest.approx(results[0][k], abs=1e-6) for k in other)


def test_jsgf_optional_only_accepts_empty_with_warning(lang, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="asr"):
        G = _jsgf(lang, tmp_path, "public <a> = [GO];\n")
    assert set(_sentences(G, lang)) == {(), ("GO",)}
    assert "accepts the empty sentence" in caplog.text


# ---------------------------------------------------------------------------
# HLG and graph dirs


def _linear_words(HLG: k2.Fsa, pdfs: list[int]) -> list[int] | None:
    """Words of HLG's best path over exactly this pdf sequence."""
    fsa = k2.connect(k2.intersect(HLG, k2.linear_fsa(pdfs), treat_epsilons_specially=False))
    if fsa.num_arcs == 0:
        return None
    return word_ids_on_path(k2.shortest_path(k2.create_fsa_vec([fsa]), use_double_scores=True))


def test_one_of_hlg_maps_one_word_and_graph_dir_files(lang, tmp_path):
    words = _word_list(tmp_path, ["A", "B"])
    out = tmp_path / "lang_oneof"
    HLG = compile_graph_dir(lang.path, out, "one-of", WordListConfig(words))
    # pdfs: SIL=1, PA=2..4, PB=5..7, PC=8..10
    assert _linear_words(HLG, [1, 2, 3, 4, 1]) == [lang.words["A"]]
    assert _linear_words(HLG, [5, 6, 7]) == [lang.words["B"]]
    assert _linear_words(HLG, [2, 3, 4, 5, 6, 7]) is None  # two words
    assert _linear_words(HLG, [8, 9, 10]) is None  # C is not in the list
    assert sorted(p.name for p in out.iterdir()) == ["G.pt", "HLG.pt", "graph.yaml"]
    info = load_config(out / "graph.yaml")
    assert info["grammar"] == "one-of" and info["source"] == str(words) and info["words"] == 2
    assert info["HLG"]["arcs"] == HLG.num_arcs


def test_grammar_replaces_an_ngram_graph_dir_without_stale_lm(lang, tmp_path):
    out = tmp_path / "lang_x"
    build_graph_dir(lang.path, out, text_files=[_write(tmp_path / "text", "u1 A B\n")], order=1)
    assert (out / "lm.arpa").is_file()
    compile_graph_dir(lang.path, out, "word-loop", WordListConfig(_word_list(tmp_path, ["A"])))
    assert not (out / "lm.arpa").exists()  # it would be copied into a model dir with this HLG
    assert load_config(out / "graph.yaml")["grammar"] == "word-loop"


def test_cli_grammar_kinds(lang, tmp_path, capsys):
    words = _word_list(tmp_path, ["GO", "STOP"])
    jsgf = _write(tmp_path / "c.jsgf", JSGF_COMMANDS)
    runs = {
        "one-of": ["--grammar", "one-of", "--words", str(words)],
        "word-loop": ["--grammar", "word-loop", "--words", str(words)],
        "jsgf": ["--grammar", "jsgf", "--jsgf", str(jsgf), "--rule", "move"],
        "ngram": ["--grammar", "ngram", "--text", str(_write(tmp_path / "text", "u1 GO LEFT\n")), "--order", "1"],
    }
    for kind, argv in runs.items():
        out = tmp_path / f"lang_{kind}"
        assert asr_main(["compile-graph", str(lang.path), str(out), *argv]) == 0, capsys.readouterr().err
        assert f"{out}/HLG.pt" in capsys.readouterr().out
        assert (out / "HLG.pt").is_file() and (out / "lm.arpa").is_file() == (kind == "ngram")
    assert load_config(tmp_path / "lang_jsgf" / "graph.yaml")["rule"] == "move"


# ---------------------------------------------------------------------------
# Errors: one line naming the file (and line), nothing written


def _cli_error(capsys, lang, tmp_path: Path, *argv: str) -> str:
    out = tmp_path / "lang_bad"
    rc = asr_main(["compile-graph", str(lang.path), str(out), *argv])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("asr compile-graph: error: ")]
    assert len(lines) == 1, err
    assert not out.exists(), "a failed compile-graph must leave nothing behind"
    return lines[0]


@pytest.mark.parametrize("kind", ["one-of", "word-loop"])
def test_word_list_errors(lang, tmp_path, capsys, kind):
    bad = _word_list(tmp_path, ["A", "DOG"])
    assert f"{bad}:2: word 'DOG' is not in the lexicon" in _cli_error(capsys, lang, tmp_path, "--grammar", kind, "--words", str(bad))
    empty = _write(tmp_path / "empty.txt", "\n  \n")
    assert f"{empty}: the word list is empty" in _cli_error(capsys, lang, tmp_path, "--grammar", kind, "--words", str(empty))
    two = _write(tmp_path / "two.txt", "A\nGO LEFT\n")
    assert f"{two}:2: expected one word per line" in _cli_error(capsys, lang, tmp_path, "--grammar", kind, "--words", str(two))
    missing = tmp_path / "missing.txt"
    assert f"{missing}: no such file" in _cli_error(capsys, lang, tmp_path, "--grammar", kind, "--words", str(missing))


@pytest.mark.parametrize("text, culprit, words", [
    ("public <a> = (GO | STOP;\n", ":1:", "'(' is not closed by ')'"),
    ("public <a> = [GO\n | STOP);\n", ":2:", "expected ']' to close the '[' of line 1, got ')'"),
    ("public <a> = GO );\n", ":1:", "unexpected ')'"),
    ("public <a> = GO <b>;\n\n<c> = STOP;\n", ":1:", "unknown rule <b>"),
    ("public <a> = GO <b>;\n<b> = STOP [<a>];\n", ":2:", "rule <a> is recursive (<a> -> <b> -> <a>)"),
    ("public <a> = GO | <a>;\n", ":1:", "rule <a> is recursive (<a> -> <a>)"),
    ("// words\npublic <a> = GO\n  | DOG;\n", ":3:", "word 'DOG' is not in the lexicon"),
    ("public <a> = GO\npublic <b> = STOP;\n", ":2:", "expected ';'"),
    ("public <a> = GO | ;\n", ":1:", "expected a word, <rule>, '(' or '[', got ';'"),
    ("public <a> = GO /2/ | STOP;\n", ":1:", "unsupported JSGF syntax"),
    ("public <a> = GO;\n<a> = STOP;\n", ":2:", "rule <a> is already defined on line 1"),
    ("public <a> = GO", ":1:", "rule <a> has no closing ';'"),
    ("public <a> = GO; /* to the end\n", ":1:", "'/*' comment is not closed"),
    ("<a> = GO;\n", "", "no public rule"),
])
def test_jsgf_errors_name_file_and_line(lang, tmp_path, capsys, text, culprit, words):
    path = _write(tmp_path / "bad.jsgf", text)
    line = _cli_error(capsys, lang, tmp_path, "--grammar", "jsgf", "--jsgf", str(path))
    assert f"{path}{culprit}" in line and words in line, line


def test_option_errors(lang, tmp_path, capsys):
    words = str(_word_list(tmp_path, ["A"]))
    assert "--words is an option of --grammar one-of or word-loop, not of --grammar ngram" in _cli_error(
        capsys, lang, tmp_path, "--words", words)
    assert "--grammar one-of needs --words" in _cli_error(capsys, lang, tmp_path, "--grammar", "one-of")
    assert "--order is an option of --grammar ngram, not of --grammar jsgf" in _cli_error(
        capsys, lang, tmp_path, "--grammar", "jsgf", "--jsgf", words, "--order", "3")
    assert "needs an ARPA file (--arpa) or training text (--text)" in _cli_error(capsys, lang, tmp_path)
    jsgf = str(_write(tmp_path / "g.jsgf", "public <a> = A;\n"))
    assert "no rule <b> (rules: <a>)" in _cli_error(capsys, lang, tmp_path, "--grammar", "jsgf", "--jsgf", jsgf, "--rule", "b")


def test_failed_rebuild_keeps_the_previous_graph(lang, tmp_path):
    out = tmp_path / "lang_keep"
    compile_graph_dir(lang.path, out, "one-of", WordListConfig(_word_list(tmp_path, ["A", "B"])))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(GrammarError, match="word 'DOG' is not in the lexicon"):
        compile_graph_dir(lang.path, out, "one-of", WordListConfig(_word_list(tmp_path, ["DOG"], "bad.txt")))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# ---------------------------------------------------------------------------
# End to end: a trained (tiny) yesno model decodes through a one-of graph


def test_one_of_graph_decodes_a_yesno_file_to_one_word(tiny, tmp_path, capsys):
    words = _word_list(tmp_path, ["YES", "NO"])
    graph = tmp_path / "lang_yesno_one_of"
    assert asr_main(["compile-graph", str(tiny.lang), str(graph), "--grammar", "one-of", "--words", str(words)]) == 0
    wav = yesno_wavs(1)[0]  # eight spoken words
    capsys.readouterr()
    assert asr_main(["transcribe", "--model-dir", str(tiny.model_dir), "--graph-dir", str(graph), str(wav)]) == 0
    path, text = capsys.readouterr().out.rstrip("\n").split("\t")
    assert path == str(wav) and text in ("YES", "NO")
