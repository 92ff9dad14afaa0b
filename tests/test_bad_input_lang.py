"""Bad lexicons and ARPA LMs through ``asr prepare-lang`` and ``asr compile-graph``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from asr.errors import LexiconError
from asr.lang.lexicon import read_lexicon
from reliability_fixtures import LEXICON, assert_cli_error, run_cli

ARPA_OK = """\
\\data\\
ngram 1=4
ngram 2=2

\\1-grams:
-99 <s> -0.3
-0.5 </s>
-0.5 YES -0.3
-0.5 NO -0.3

\\2-grams:
-0.3 <s> YES
-0.3 YES NO

\\end\\
"""


@pytest.fixture(scope="module")
def lang(tmp_path_factory) -> Path:
    from asr.cli import main

    d = tmp_path_factory.mktemp("lang") / "lang"
    assert main(["prepare-lang", str(LEXICON), str(d)]) == 0
    return d


def _lexicon(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "lexicon.txt"
    p.write_text(text, encoding="utf-8")
    return p


def test_duplicate_pronunciation_dropped_with_warning(tmp_path, capsys, caplog):
    lex = _lexicon(tmp_path, "<SIL> SIL\nNO N\nYES Y\nNO N\n")
    with caplog.at_level(logging.WARNING, logger="asr"):
        rc, out, err = run_cli(capsys, "prepare-lang", lex, tmp_path / "lang")
    assert rc == 0, err
    assert f"{lex}:4: duplicate pronunciation of 'NO' dropped" in caplog.text
    lines = (tmp_path / "lang" / "lexicon.txt").read_text().splitlines()
    assert lines.count("NO N") == 1


def test_phone_not_in_phone_set(tmp_path):
    lex = _lexicon(tmp_path, "<SIL> SIL\nNO N\nYES Y EH\n")
    with pytest.raises(LexiconError, match=rf"{lex}:3: phone 'EH' is not in the phone set"):
        read_lexicon(lex, phone_set={"SIL", "N", "Y"})


def test_reserved_phone_symbol(tmp_path, capsys):
    lex = _lexicon(tmp_path, "<SIL> SIL\nNO N #1\n")
    rc, _, err = run_cli(capsys, "prepare-lang", lex, tmp_path / "lang")
    assert_cli_error(rc, err, "prepare-lang", f"{lex}:2", "'#1'", "reserved")
    assert not (tmp_path / "lang" / "L.pt").exists()


def test_word_without_pronunciation(tmp_path, capsys):
    lex = _lexicon(tmp_path, "<SIL> SIL\nNO\n")
    rc, _, err = run_cli(capsys, "prepare-lang", lex, tmp_path / "lang")
    assert_cli_error(rc, err, "prepare-lang", f"{lex}:2", "'NO'", "no pronunciation")


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_lexicon(tmp_path, capsys, text):
    lex = _lexicon(tmp_path, text)
    rc, _, err = run_cli(capsys, "prepare-lang", lex, tmp_path / "lang")
    assert_cli_error(rc, err, "prepare-lang", str(lex), "lexicon is empty")
    assert not (tmp_path / "lang").exists()


def test_missing_lexicon(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "prepare-lang", tmp_path / "nope.txt", tmp_path / "lang")
    assert_cli_error(rc, err, "prepare-lang", str(tmp_path / "nope.txt"), "no such file")


def test_non_utf8_lexicon(tmp_path, capsys):
    lex = tmp_path / "lex.txt"
    lex.write_bytes(b"<SIL> SIL\nN\xf6 N\n")
    rc, _, err = run_cli(capsys, "prepare-lang", lex, tmp_path / "lang")
    assert_cli_error(rc, err, "prepare-lang", f"{lex}:2", "UTF-8")


# ---------------------------------------------------------------------------
# ARPA


def _compile(capsys, lang: Path, tmp_path: Path, arpa_text: str):
    arpa = tmp_path / "lm.arpa"
    arpa.write_text(arpa_text, encoding="utf-8")
    out = tmp_path / "lang_lm"
    rc, stdout, err = run_cli(capsys, "compile-graph", lang, out, "--arpa", arpa)
    return rc, stdout, err, arpa, out


def test_arpa_ok(tmp_path, capsys, lang):
    rc, out, err, _, d = _compile(capsys, lang, tmp_path, ARPA_OK)
    assert rc == 0, err
    assert (d / "HLG.pt").is_file()


@pytest.mark.parametrize("arpa_text, culprit, words", [
    (ARPA_OK.replace("\\data\\\n", ""), "lm.arpa", "no '\\data\\' line"),
    (ARPA_OK.replace("ngram 2=2", "ngram two=2"), "lm.arpa:3", "bad ARPA header line"),
    (ARPA_OK.replace("ngram 1=4", "ngram 1=5"), "lm.arpa:2", "header says ngram 1=5"),
    (ARPA_OK.replace("ngram 2=2", "ngram 2=7"), "lm.arpa:3", "header says ngram 2=7"),
    (ARPA_OK.replace("\\end\\\n", ""), "lm.arpa", "no '\\end\\' line"),
    (ARPA_OK.replace("-0.5 NO -0.3", "oops NO -0.3"), "lm.arpa:9", "oops"),
    (ARPA_OK.replace("-0.3 YES NO", "-0.3 YES"), "lm.arpa:13", "malformed 2-gram"),
])
def test_bad_arpa(tmp_path, capsys, lang, arpa_text, culprit, words):
    rc, _, err, arpa, out = _compile(capsys, lang, tmp_path, arpa_text)
    assert_cli_error(rc, err, "compile-graph", culprit, words)
    assert not (out / "HLG.pt").exists() and not (out / "G.pt").exists()


def test_arpa_missing(tmp_path, capsys, lang):
    rc, _, err = run_cli(capsys, "compile-graph", lang, tmp_path / "o", "--arpa", tmp_path / "none.arpa")
    assert_cli_error(rc, err, "compile-graph", "none.arpa")


def test_arpa_words_not_in_lexicon_dropped_and_reported(tmp_path, capsys, caplog, lang):
    text = ARPA_OK.replace("ngram 1=4", "ngram 1=5").replace("ngram 2=2", "ngram 2=3")
    text = text.replace("-0.5 NO -0.3\n", "-0.5 NO -0.3\n-0.7 MAYBE -0.3\n")
    text = text.replace("-0.3 YES NO\n", "-0.3 YES NO\n-0.3 NO MAYBE\n")
    with caplog.at_level(logging.WARNING, logger="asr"):
        rc, out, err, arpa, d = _compile(capsys, lang, tmp_path, text)
    assert rc == 0, err
    assert f"{arpa}: dropped 1 words not in the lexicon: MAYBE" in caplog.text
    written = (d / "lm.arpa").read_text()
    assert "MAYBE" not in written and (d / "HLG.pt").is_file()


def test_compile_graph_bad_lang_dir(tmp_path, capsys):
    rc, _, err = run_cli(capsys, "compile-graph", tmp_path / "nolang", tmp_path / "o", "--arpa", tmp_path / "x")
    assert_cli_error(rc, err, "compile-graph", "nolang")
