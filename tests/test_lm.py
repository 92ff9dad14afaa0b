"""Tests of asr.lang.lm: estimation, ARPA I/O, back-off normalization, pruning."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest

from asr.errors import LanguageModelError
from asr.lang.lm import (
    BOS,
    EOS,
    NgramLM,
    drop_ngram,
    estimate_ngram,
    ngram_logprob,
    prune_to_vocab,
    read_arpa,
    train_lm_from_text,
    write_arpa,
)

AN4_LM = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "an4" / "etc" / "an4.ug.lm"
if not AN4_LM.exists():
    AN4_LM = Path("/work/shared/corpora/an4/etc/an4.ug.lm")

SENTENCES = [s.split() for s in ["A B C", "A B", "B C A", "C C B A", "A", "B A B A C", "C"]]
# D, E and <UNK> never occur in the training text.
VOCAB = ["A", "B", "C", "D", "E", "<UNK>"]


def max_sum_error(lm: NgramLM) -> float:
    """Largest |sum_w P(w|h) - 1| over all histories up to order-1 words."""
    words = [w for w in lm.vocab if w != BOS]
    worst = 0.0
    for k in range(lm.order):
        for h in itertools.product(lm.vocab, repeat=k):
            total = sum(10 ** ngram_logprob(lm, w, h) for w in words)
            worst = max(worst, abs(total - 1.0))
    return worst


@pytest.mark.parametrize("method", ["kneser-ney", "witten-bell"])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_distributions_sum_to_one(method, order):
    lm = estimate_ngram(SENTENCES, VOCAB, order, method)
    assert lm.order == order
    assert max_sum_error(lm) < 1e-6
    # Unseen vocabulary words get probability mass; <s> gets ARPA's -99.
    for w in ("D", "E", "<UNK>"):
        assert -math.inf < ngram_logprob(lm, w, ["A"]) < 0
    assert lm.probs[0][(BOS,)] == -99.0
    assert ngram_logprob(lm, "NOT-A-WORD", []) == -math.inf


@pytest.mark.parametrize("method", ["kneser-ney", "witten-bell"])
def test_seen_ngrams_beat_unseen(method):
    lm = estimate_ngram(SENTENCES, VOCAB, 2, method)
    assert ngram_logprob(lm, "B", ["A"]) > ngram_logprob(lm, "D", ["A"])
    assert ngram_logprob(lm, "A", []) > ngram_logprob(lm, "D", [])


def test_tiny_and_empty_data_fall_back_safely():
    for sents in ([], [["A"]]):
        lm = estimate_ngram(sents, ["A", "B"], 3)
        assert max_sum_error(lm) < 1e-6
        assert ngram_logprob(lm, "B", []) > -math.inf


def test_bad_arguments():
    with pytest.raises(ValueError, match="order"):
        estimate_ngram(SENTENCES, VOCAB, 0)
    with pytest.raises(ValueError, match="method"):
        estimate_ngram(SENTENCES, VOCAB, 2, "good-turing")
    with pytest.raises(ValueError, match="'Z'"):
        estimate_ngram([["Z"]], VOCAB, 2)


@pytest.mark.parametrize("method", ["kneser-ney", "witten-bell"])
def test_write_read_round_trip(tmp_path, method):
    lm = estimate_ngram(SENTENCES, VOCAB, 3, method)
    path = tmp_path / "lm.arpa"
    write_arpa(lm, path)
    text = path.read_text()
    assert text.startswith("\\data\\\nngram 1=8\n")
    assert text.rstrip().endswith("\\end\\")
    back = read_arpa(path)
    assert back.counts() == lm.counts()
    assert set(back.probs[2]) == set(lm.probs[2])
    for n in range(3):
        for g, p in lm.probs[n].items():
            assert back.probs[n][g] == pytest.approx(p, abs=1e-6)
    assert max_sum_error(back) < 1e-6
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left no temp file


def test_kaldilm_accepts_our_arpa(tmp_path):
    kaldilm = pytest.importorskip("kaldilm")
    lm = estimate_ngram(SENTENCES, VOCAB, 3)
    arpa = tmp_path / "lm.arpa"
    write_arpa(lm, arpa)
    words = tmp_path / "words.txt"
    syms = ["<eps>", *VOCAB, "#0", BOS, EOS]
    words.write_text("".join(f"{w} {i}\n" for i, w in enumerate(syms)))
    fst = kaldilm.arpa2fst(str(arpa), disambig_symbol="#0", read_symbol_table=str(words), max_order=3)
    assert isinstance(fst, str) and fst.strip()


def test_train_from_kaldi_text(tmp_path):
    text = tmp_path / "text"
    text.write_text("u1 <s> A B ZZZ </s>\nu2 C A\nu3\nu4 YYY\n")
    lm, oov = train_lm_from_text([text], ["A", "B", "C", "D"], 2, "witten-bell")
    assert oov == 2
    assert ("<UNK>",) in lm.probs[0]
    assert (BOS, "<UNK>") in lm.probs[1] and ("B", "<UNK>") in lm.probs[1]
    assert (BOS, EOS) not in lm.probs[1]  # the empty utterance u3 was skipped
    assert ngram_logprob(lm, "D", []) > -math.inf
    assert max_sum_error(lm) < 1e-6
    lm2, oov2 = train_lm_from_text([text], ["A", "B", "C", "D"], 2, oov=None)
    assert oov2 == 2 and ("<UNK>",) not in lm2.probs[0]


def test_prune_to_vocab_renormalizes():
    lm = estimate_ngram(SENTENCES, VOCAB, 3)
    pruned, dropped = prune_to_vocab(lm, ["A", "B", "D", "E", "<UNK>"])
    assert dropped == ["C"]
    assert all("C" not in g for probs in pruned.probs for g in probs)
    assert max_sum_error(pruned) < 1e-6
    assert ("C",) in lm.probs[0]  # the input is not modified
    same, none = prune_to_vocab(lm, VOCAB)
    assert none == [] and same.counts() == lm.counts()


def test_drop_ngram_on_hand_written_bigram(tmp_path):
    path = tmp_path / "g.arpa"
    path.write_text(
        "\\data\\\nngram 1=4\nngram 2=2\n\n\\1-grams:\n"
        "-0.30103\t</s>\n-99\t<s>\t0.0\n-0.30103\tA\t0.0\n-99\tB\n"
        "\n\\2-grams:\n-0.1\t<s> A\n-0.2\tA </s>\n\\end\\\n"
    )
    lm = drop_ngram(read_arpa(path), (BOS, "A"))
    assert (BOS, "A") not in lm.probs[1]
    assert ngram_logprob(lm, "A", [BOS]) == pytest.approx(-0.30103)
    assert max_sum_error(lm) < 1e-6


def _an4_lm() -> NgramLM:
    if not AN4_LM.exists():
        pytest.skip("AN4 corpus not available")
    return read_arpa(AN4_LM)


def test_an4_unigram_lm_parses_and_drops_bos_eos(tmp_path):
    lm = _an4_lm()
    # The comment lines mention \data\ and \1-grams:, the real header says 107/1.
    assert lm.counts() == [107, 1]
    assert lm.probs[0][("A",)] == pytest.approx(-2.0253)
    assert lm.probs[0][(BOS,)] == -99.0
    assert ngram_logprob(lm, EOS, [BOS]) == 0.0  # the degenerate bigram
    fixed = drop_ngram(lm, (BOS, EOS))
    assert fixed.order == 1 and fixed.counts() == [107]
    assert ngram_logprob(fixed, EOS, [BOS]) < -1.5
    words = [w for w in fixed.vocab if w != BOS]
    assert sum(10 ** ngram_logprob(fixed, w, []) for w in words) == pytest.approx(1.0, abs=1e-3)
    out = tmp_path / "an4.arpa"
    write_arpa(fixed, out)
    assert read_arpa(out).counts() == [107]


def test_an4_prune_reports_words(tmp_path):
    lm = _an4_lm()
    pruned, dropped = prune_to_vocab(lm, [w for w in lm.vocab if w not in ("APOSTROPHE", "<UNK>")])
    assert dropped == ["<UNK>", "APOSTROPHE"]
    assert pruned.counts()[0] == 105
    words = [w for w in pruned.vocab if w != BOS]
    assert sum(10 ** ngram_logprob(pruned, w, []) for w in words) == pytest.approx(1.0, abs=1e-9)


GOOD = "\\data\\\nngram 1=2\nngram 2=1\n\n\\1-grams:\n-0.3\t<s>\t-0.1\n-0.3\t</s>\n\n\\2-grams:\n-0.1\t<s> </s>\n\n\\end\\\n"


@pytest.mark.parametrize(
    "text, match",
    [
        ("no header here\n", "no '\\\\data\\\\' line"),
        ("\\data\\\nngram one=2\n\\1-grams:\n\\end\\\n", r":2: bad ARPA header"),
        (GOOD.replace("ngram 1=2", "ngram 1=3"), r":2: header says ngram 1=3 but .* has 2"),
        (GOOD.replace("ngram 2=1", "ngram 2=5"), r":3: header says ngram 2=5"),
        (GOOD.replace("-0.1\t<s> </s>", "-0.1\t<s>"), r":10: malformed 2-gram"),
        (GOOD.replace("-0.3\t</s>", "abc\t</s>"), r":7: 'abc' is not a number"),
        (GOOD.replace("\\end\\\n", ""), "no '\\\\end\\\\'"),
        (GOOD.replace("\\2-grams:", "\\3-grams:"), r":9: section"),
    ],
)
def test_malformed_arpa_names_file_and_line(tmp_path, text, match):
    path = tmp_path / "bad.arpa"
    path.write_text(text)
    with pytest.raises(LanguageModelError, match=match) as e:
        read_arpa(path)
    assert str(path) in str(e.value)


def test_header_after_comments_is_found(tmp_path):
    path = tmp_path / "c.arpa"
    path.write_text("Beginning of data mark: \\data\\\n\\1-grams:\nxx\n\n" + GOOD)
    assert read_arpa(path).counts() == [2, 1]


def test_missing_file_raises(tmp_path):
    with pytest.raises(LanguageModelError, match="no such file"):
        read_arpa(tmp_path / "nope.arpa")
