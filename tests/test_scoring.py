"""Tests of asr.scoring (WER/SER) and the ``asr score`` command."""

from __future__ import annotations

import logging

import pytest

from asr.cli import main
from asr.scoring import ScoreResult, format_details, format_wer, normalize_text, score
from asr.scoring.wer import format_alignment, speaker_of


def one(ref: str, hyp: str):
    return score({"u": ref.split()}, {"u": hyp.split()})


def test_substitution_and_deletion():
    r = one("A B C D", "A X C")
    assert (r.words, r.ins, r.dels, r.subs, r.errors) == (4, 0, 1, 1, 2)
    assert (r.sentences, r.sentence_errors) == (1, 1)
    assert r.utts["u"].alignment == [("A", "A"), ("B", "X"), ("C", "C"), ("D", None)]
    assert format_wer(r) == "%WER 50.00 [ 2 / 4, 0 ins, 1 del, 1 sub ]\n%SER 100.00 [ 1 / 1 ]"


def test_insertion():
    r = one("A B", "A Q B Q")
    assert (r.ins, r.dels, r.subs) == (2, 0, 0)
    assert r.wer == pytest.approx(100.0)


def test_empty_hyp_is_all_deletions():
    r = one("A B C", "")
    assert (r.ins, r.dels, r.subs) == (0, 3, 0)
    assert r.utts["u"].alignment == [("A", None), ("B", None), ("C", None)]


def test_identical_is_zero():
    r = score({"a": ["X", "Y"], "b": []}, {"a": ["X", "Y"], "b": []})
    assert format_wer(r) == "%WER 0.00 [ 0 / 2, 0 ins, 0 del, 0 sub ]\n%SER 0.00 [ 0 / 2 ]"


def test_empty_reference_set():
    assert format_wer(score({}, {})) == "%WER 0.00 [ 0 / 0, 0 ins, 0 del, 0 sub ]\n%SER 0.00 [ 0 / 0 ]"
    assert score({"u": []}, {"u": ["A"]}).wer == float("inf")


def test_kaldi_format_rounding():
    r = ScoreResult(words=773, ins=10, dels=12, subs=24, sentences=130, sentence_errors=39)
    assert format_wer(r).splitlines() == [
        "%WER 5.95 [ 46 / 773, 10 ins, 12 del, 24 sub ]",
        "%SER 30.00 [ 39 / 130 ]",
    ]


def test_missing_and_extra_utterances(caplog):
    ref = {"s1-a": ["A", "B"], "s1-b": ["C"]}
    hyp = {"s1-a": ["A", "B"], "zz": ["Q"]}
    with caplog.at_level(logging.WARNING, logger="asr.scoring.wer"):
        r = score(ref, hyp)
    assert r.missing == ["s1-b"] and r.extra == ["zz"]
    assert (r.words, r.dels, r.ins, r.sentence_errors) == (3, 1, 0, 1)
    assert "no hypothesis" in caplog.text and "ignored" in caplog.text


def test_normalization_is_explicit():
    words = ["<s>", "Hello", "[noise]", "World", "</s>"]
    assert normalize_text(words) == words
    assert normalize_text(words, "upper") == ["<S>", "HELLO", "[NOISE]", "WORLD", "</S>"]
    assert normalize_text(words, "lower", ["<s>", "</s>", "[NOISE]"]) == ["hello", "world"]
    assert normalize_text(words, None, ["[noise]"]) == ["<s>", "Hello", "World", "</s>"]
    with pytest.raises(ValueError):
        normalize_text(words, "title")


def test_alignment_lines_and_speakers():
    r = score({"spk1-u1": "A B C".split(), "spk2-u1": ["HELLO"]}, {"spk1-u1": "A CC".split(), "spk2-u1": ["HELLO"]})
    lines = format_alignment(r.utts["spk1-u1"])
    assert lines[0].split() == ["spk1-u1", "ref", "A", "B", "C"]
    assert lines[1].split() == ["spk1-u1", "hyp", "A", "***", "CC"] or lines[1].split() == [
        "spk1-u1", "hyp", "A", "CC", "***"]
    assert lines[2].split()[:2] == ["spk1-u1", "op"] and sorted(lines[2].split()[2:]) == ["C", "D", "S"]
    assert lines[3] == "spk1-u1 #csid 1 1 0 1"
    # Columns line up: every word of the ref row starts where the hyp row's does.
    assert [lines[0].index(w) for w in ("A",)] == [lines[1].index("A")]
    assert speaker_of("spk1-u1") == "spk1" and speaker_of("solo") == "solo"
    assert speaker_of("x", {"x": "bob"}) == "bob"
    details = format_details(r)
    table = details.split("\n\n")[1].splitlines()  # alignments, speakers, substitutions, word errors
    assert table[0].split()[0] == "SPEAKER"
    assert [row.split()[0] for row in table[1:]] == ["spk1", "spk2", "SUM"]
    assert table[2].split()[-2:] == ["0.00", "0.00"]


@pytest.fixture
def texts(tmp_path):
    ref = tmp_path / "ref"
    hyp = tmp_path / "hyp"
    ref.write_text("s1-u1 A B C D\ns1-u2 <s> hello world </s>\ns2-u1 X Y\n")
    hyp.write_text("s1-u1 A X C\ns1-u2 HELLO WORLD [noise]\ns2-u1\n")
    return ref, hyp


def test_cli_summary(texts, capsys):
    ref, hyp = texts
    assert main(["score", str(ref), str(hyp)]) == 0
    out = capsys.readouterr().out.splitlines()
    # No implicit normalization: <s>, </s>, case and [noise] all count as errors.
    assert out == ["%WER 80.00 [ 8 / 10, 0 ins, 4 del, 4 sub ]", "%SER 100.00 [ 3 / 3 ]"]


def test_cli_normalized_with_details(texts, capsys, tmp_path):
    ref, hyp = texts
    u2s = tmp_path / "utt2spk"
    u2s.write_text("s1-u1 alice\ns1-u2 alice\ns2-u1 bob\n")
    rc = main(["score", str(ref), str(hyp), "--normalize", "upper",
               "--remove-tokens", "<s>, </s>,[noise]", "--details", "--utt2spk", str(u2s)])
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["%WER 50.00 [ 4 / 8, 0 ins, 3 del, 1 sub ]", "%SER 66.67 [ 2 / 3 ]", ""]
    assert "s1-u2 #csid 2 0 0 0" in out
    assert any(line.split()[:1] == ["alice"] for line in out)
    assert any(line.split()[:1] == ["bob"] for line in out)


def test_cli_errors(texts, capsys, tmp_path):
    ref, hyp = texts
    assert main(["score", str(ref), str(tmp_path / "missing")]) == 1
    assert "missing: no such file" in capsys.readouterr().err
    u2s = tmp_path / "utt2spk"
    u2s.write_text("s1-u1 alice\n")
    assert main(["score", str(ref), str(hyp), "--details", "--utt2spk", str(u2s)]) == 1
    assert "utt2spk: no speaker for utterance 's1-u2'" in capsys.readouterr().err
    dup = tmp_path / "dup"
    dup.write_text("u A\nu B\n")
    assert main(["score", str(dup), str(hyp)]) == 1
    assert f"{dup}:2: duplicate utterance id 'u'" in capsys.readouterr().err
