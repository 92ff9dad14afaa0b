"""`asr score --details`: substitution pairs and per-word error counts (sclite-style)."""

from __future__ import annotations

import pytest

from asr.cli import main
from asr.scoring.wer import (format_details, format_substitutions, format_word_errors, score,
                             substitution_pairs, word_errors)

REF = {"a-1": "OPEN THE DOOR".split(), "a-2": "RED BALL".split(),
       "b-1": "OPEN THE WINDOW".split(), "b-2": ["STOP"]}
HYP = {"a-1": "OPEN A DOOR".split(), "a-2": "RED BALL BALL".split(),
       "b-1": "CLOSE A WINDOW".split(), "b-2": []}


def test_substitution_pairs_most_frequent_first():
    assert substitution_pairs(score(REF, HYP)) == [("THE", "A", 2), ("OPEN", "CLOSE", 1)]


def test_word_errors_split_by_kind():
    per = word_errors(score(REF, HYP))
    assert (per["THE"].ref, per["THE"].correct, per["THE"].subs, per["THE"].dels, per["THE"].ins) == (2, 0, 2, 0, 0)
    assert (per["OPEN"].ref, per["OPEN"].correct, per["OPEN"].subs) == (2, 1, 1)
    assert (per["STOP"].dels, per["STOP"].errors) == (1, 1)
    # An insertion counts against the inserted word, beside its correct occurrence.
    assert (per["BALL"].ref, per["BALL"].correct, per["BALL"].ins) == (1, 1, 1)
    # Hypothesis-only words appear with ref 0 ("A" was only ever a substitute, not an insertion).
    assert "A" not in per
    assert sum(w.subs for w in per.values()) == score(REF, HYP).subs


def test_totals_agree_with_the_wer_line():
    result = score(REF, HYP)
    per = word_errors(result)
    assert sum(w.errors for w in per.values()) == result.errors
    assert sum(w.ref for w in per.values()) == result.words
    assert sum(n for _, _, n in substitution_pairs(result)) == result.subs


def test_tables_are_ranked_and_cut_at_top():
    result = score(REF, HYP)
    subs = format_substitutions(result, top=1)
    assert subs[0].startswith("SUBSTITUTIONS: 1 most frequent of 2 pairs (3 in all)")
    assert subs[1].split() == ["REF", "HYP", "COUNT"] and subs[2].split() == ["THE", "A", "2"]
    assert len(subs) == 3
    words = format_word_errors(result)
    assert words[1].split() == ["WORD", "REF", "CORR", "SUB", "DEL", "INS", "ERR"]
    assert [line.split()[0] for line in words[2:]] == ["THE", "BALL", "OPEN", "STOP"]  # errors desc, then C order
    assert words[2].split() == ["THE", "2", "0", "2", "0", "0", "2"]


def test_no_errors_gives_empty_tables():
    result = score(REF, REF)
    assert format_substitutions(result) == ["SUBSTITUTIONS: 0 most frequent of 0 pairs (0 in all)"]
    assert len(format_word_errors(result)) == 1


def test_details_sections_in_order():
    text = format_details(score(REF, HYP))
    order = [text.index(s) for s in ("a-1 ref", "SPEAKER", "SUBSTITUTIONS:", "WORD ERRORS:")]
    assert order == sorted(order)


def _write(path, table):
    path.write_text("".join(f"{u} {' '.join(w)}\n" for u, w in table.items()))
    return str(path)


def test_cli_details_and_top(tmp_path, capsys):
    ref, hyp = _write(tmp_path / "ref", REF), _write(tmp_path / "hyp", HYP)
    assert main(["score", ref, hyp, "--details", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "%WER 55.56 [ 5 / 9, 1 ins, 1 del, 3 sub ]"
    assert "SUBSTITUTIONS: 1 most frequent of 2 pairs" in out
    assert "WORD ERRORS: 1 of the 4 words with errors" in out
    assert main(["score", ref, hyp, "--details", "--top", "0"]) == 0
    assert "WORD ERRORS: 4 of the 4 words" in capsys.readouterr().out


def test_cli_rejects_negative_top(tmp_path, capsys):
    ref = _write(tmp_path / "ref", REF)
    assert main(["score", ref, ref, "--top", "-1"]) == 1
    assert "--top must be >= 0" in capsys.readouterr().err
