"""Tests of the G2P (asr.g2p) and ``asr prepare-lexicon``."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from asr.cli import main
from asr.errors import AsrError, LexiconError
from asr.g2p import default_decoder, default_model_path
from asr.g2p.align import AlignConfig, align
from asr.g2p.cmu import Accuracy, cmudict_pronunciations, evaluate, split_words, strip_stress
from asr.g2p.decode import G2PDecoder
from asr.g2p.lexicon import read_phone_map, words_from_text
from asr.g2p.model import G2PConfig, G2PError, load_model, model_to_state, save_model, train_g2p

# A regular toy spelling: b d t -> B D T, a i -> AE IH, "sh" -> SH, final silent "e".
TINY = {
    "bad": "B AE D", "dab": "D AE B", "bid": "B IH D", "did": "D IH D", "tab": "T AE B",
    "bit": "B IH T", "tad": "T AE D", "dib": "D IH B", "bat": "B AE T", "tid": "T IH D",
    "shad": "SH AE D", "bash": "B AE SH", "dish": "D IH SH", "ship": "SH IH P", "pad": "P AE D",
    "bade": "B AE D", "tide": "T IH D", "pit": "P IH T", "sit": "S IH T", "sad": "S AE D",
    "hat": "HH AE T", "his": "HH IH S", "tip": "T IH P", "dip": "D IH P", "shade": "SH AE D",
}
TINY_PAIRS = [(w, tuple(p.split())) for w, p in TINY.items()]


@pytest.fixture(scope="module")
def tiny_model():
    return train_g2p(TINY_PAIRS, G2PConfig(order=3))


@pytest.fixture(scope="module")
def tiny_model_file(tmp_path_factory, tiny_model) -> Path:
    path = tmp_path_factory.mktemp("g2p") / "tiny.pt"
    save_model(tiny_model, path)
    return path


def best(decoder: G2PDecoder, word: str) -> str:
    out = decoder.pronounce(word)
    return " ".join(out[0][0]) if out else ""


def test_alignment_segments_words_and_finds_silent_letters():
    aligned = dict(zip(TINY, align(TINY_PAIRS, AlignConfig())))
    for word, pron in TINY_PAIRS:
        graphones = aligned[word]
        assert "".join(g for g, _ in graphones) == word
        assert tuple(p for _, ph in graphones for p in ph) == pron
    assert aligned["bade"] == [("b", ("B",)), ("a", ("AE",)), ("d", ("D",)), ("e", ())]
    assert aligned["tip"] == [("t", ("T",)), ("i", ("IH",)), ("p", ("P",))]


def test_alignment_leaves_out_impossible_pairs():
    # one letter cannot carry three phones with moves of at most two phones
    assert align([("x", ("K", "S", "T")), ("ab", ("AE", "B"))], AlignConfig())[0] is None


def test_tiny_g2p_reproduces_training_words(tiny_model):
    decoder = G2PDecoder(tiny_model)
    for word, pron in TINY.items():
        assert best(decoder, word) == pron, word


def test_tiny_g2p_generalizes(tiny_model):
    decoder = G2PDecoder(tiny_model)
    assert best(decoder, "shid") == "SH IH D"
    assert best(decoder, "pish") == "P IH SH"
    assert best(decoder, "tade") == "T AE D"


def test_segment_spells_the_pair_and_refuses_impossible_ones(tiny_model):
    decoder = G2PDecoder(tiny_model)
    tokens = decoder.segment("shade", ("SH", "AE", "D"))
    graphones = [tiny_model.graphones[t] for t in tokens]
    assert "".join(g for g, _ in graphones) == "shade"
    assert tuple(p for _, ph in graphones for p in ph) == ("SH", "AE", "D")
    assert graphones[-1] == ("e", ())
    assert decoder.segment("bad", ("B", "AE", "D", "D", "D", "D", "D")) is None


def test_resegmented_training_still_reproduces_training_words():
    model = train_g2p(TINY_PAIRS, G2PConfig(order=3, realign_rounds=1, realign_order=2))
    assert model.config["realign_rounds"] == 1
    decoder = G2PDecoder(model)
    for word, pron in TINY.items():
        assert best(decoder, word) == pron, word


def test_nbest_is_distinct_and_ranked(tiny_model):
    out = G2PDecoder(tiny_model).pronounce("shid", nbest=3)  # "sh" is SH, or S + HH
    prons = [p for p, _ in out]
    scores = [s for _, s in out]
    assert len(set(prons)) == len(prons) >= 2
    assert scores == sorted(scores, reverse=True)


def test_unspellable_word_gives_nothing(tiny_model):
    assert G2PDecoder(tiny_model).pronounce("b4d") == []


def test_model_file_round_trip(tiny_model, tiny_model_file):
    loaded = load_model(tiny_model_file)
    assert loaded.graphones == tiny_model.graphones
    assert [len(p) for p in loaded.probs] == [len(p) for p in tiny_model.probs]
    decoder = G2PDecoder(loaded)
    assert all(best(decoder, w) == p for w, p in TINY.items())


class _Touch:
    """A pickle that would create a file when loaded."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_model_loading_refuses_pickles(tmp_path, tiny_model):
    marker = tmp_path / "ran"
    state = model_to_state(tiny_model) | {"config": _Touch(marker)}
    evil = tmp_path / "evil.pt"
    torch.save(state, evil)
    with pytest.raises(AsrError, match="refused to load"):
        load_model(evil)
    assert not marker.exists()
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(_Touch(marker), protocol=2))
    with pytest.raises(AsrError):
        load_model(raw)
    assert not marker.exists()


def test_model_loading_refuses_other_tensor_files(tmp_path, tiny_model):
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(G2PError, match="not a G2P model"):
        load_model(other)
    broken = model_to_state(tiny_model)
    broken["ngrams_2"] = broken["ngrams_2"][:, :1]
    torch.save(broken, other)
    with pytest.raises(G2PError, match="bad shapes of the 2-gram"):
        load_model(other)


def test_split_is_seeded_and_disjoint():
    words = [f"w{i}" for i in range(100)]
    train, test = split_words(words, 0.1, seed=3)
    assert len(test) == 10 and not set(train) & set(test) and set(train) | set(test) == set(words)
    assert split_words(words, 0.1, seed=3) == (train, test)
    assert split_words(words, 0.1, seed=4)[1] != test


def test_evaluate_counts_any_reference_as_right():
    refs = {"a": [("AH",), ("EY",)], "the": [("DH", "AH")]}
    acc = evaluate({"a": ("EY",), "the": ("D", "AH")}.get, refs)
    assert (acc.words, acc.word_errors, acc.phone_errors, acc.ref_phones) == (2, 1, 1, 3)
    assert acc.wer == 0.5 and acc.per == pytest.approx(1 / 3)
    assert Accuracy().wer == 0.0


def test_strip_stress():
    assert [strip_stress(p) for p in ("AH0", "EY1", "K")] == ["AH", "EY", "K"]


def test_shipped_model_pronounces_common_words():
    assert default_model_path().is_file()
    decoder = default_decoder()
    assert best(decoder, "cat") == "K AE T"
    assert best(decoder, "ship") == "SH IH P"
    assert best(decoder, "thinking") == "TH IH NG K IH NG"


# ---------------------------------------------------------------------------
# asr prepare-lexicon (real CMUdict; the tiny model as the G2P keeps it fast)


def read_lex(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_prepare_lexicon_from_text(tmp_path, tiny_model_file):
    text = tmp_path / "text"
    text.write_text("utt1 <s> THE CAT </s>\nutt2 SHID ship [noise]\nutt3 CAT\n", encoding="utf-8")
    out = tmp_path / "dict" / "lexicon.txt"
    assert main(["prepare-lexicon", "--text", str(text), "--g2p-model", str(tiny_model_file), str(out)]) == 0
    assert read_lex(out) == ["<SIL> SIL", "CAT K AE T", "SHID SH IH D", "THE DH AH", "THE DH IY", "ship SH IH P"]
    assert read_lex(out.with_name("lexicon_g2p.txt")) == ["SHID SH IH D"]
    from asr.lang.lexicon import read_lexicon

    assert len(read_lexicon(out)) == 6  # what prepare-lang reads


def test_prepare_lexicon_keeps_stress_and_nbest(tmp_path, tiny_model_file):
    words = tmp_path / "words.txt"
    words.write_text("read\nshid\n", encoding="utf-8")
    out = tmp_path / "lexicon.txt"
    g2p = tmp_path / "g2p_words.txt"
    rc = main(["prepare-lexicon", "--words", str(words), "--keep-stress", "--g2p-nbest", "2",
               "--g2p-model", str(tiny_model_file), "--g2p-out", str(g2p), str(out)])
    assert rc == 0
    lines = read_lex(out)
    assert "read R EH1 D" in lines and "read R IY1 D" in lines
    shid = [ln for ln in lines if ln.startswith("shid ")]
    assert len(shid) == 2 and shid[0] == "shid SH IH D"
    assert read_lex(g2p) == shid


def test_prepare_lexicon_error_names_word_and_line(tmp_path, tiny_model_file, capsys):
    text = tmp_path / "text"
    text.write_text("utt1 CAT\nutt2 SHID R2D2\n", encoding="utf-8")
    out = tmp_path / "lexicon.txt"
    assert main(["prepare-lexicon", "--text", str(text), "--g2p-model", str(tiny_model_file), str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert f"{text}:2: word 'R2D2' is not in CMUdict and the G2P cannot spell '2'" in err
    assert len(err.splitlines()) == 1 and not out.exists()
    assert main(["prepare-lexicon", "--text", str(text), "--no-g2p", str(out)]) == 1
    assert f"{text}:2: word 'SHID' is not in CMUdict (and the G2P is off)" in capsys.readouterr().err


def test_prepare_lexicon_phone_map_and_phone_set(tmp_path, tiny_model_file, capsys):
    words = tmp_path / "words"
    words.write_text("THE\nSHIP\n", encoding="utf-8")
    phone_map = tmp_path / "map"
    phone_map.write_text("# AN4 has no DH or SH\nDH D\nSH S  # nearest\n", encoding="utf-8")
    phones = tmp_path / "phones"
    phones.write_text("AH\nIY\nD\nS\nIH\nP\n", encoding="utf-8")
    out = tmp_path / "lexicon.txt"
    argv = ["prepare-lexicon", "--words", str(words), "--phone-set", str(phones), str(out)]
    assert main(argv + ["--phone-map", str(phone_map)]) == 0
    assert read_lex(out) == ["<SIL> SIL", "SHIP S IH P", "THE D AH", "THE D IY"]
    assert main(argv) == 1
    assert f"{words}:1: word 'THE': phone(s) DH not in the phone set" in capsys.readouterr().err


def test_phone_map_errors(tmp_path):
    bad = tmp_path / "map"
    bad.write_text("DH D\nSH\n", encoding="utf-8")
    with pytest.raises(LexiconError, match=r"map:2: expected 'ARPABET TARGET"):
        read_phone_map(bad)
    bad.write_text("DH D\nDH TH\n", encoding="utf-8")
    with pytest.raises(LexiconError, match="map:2: phone 'DH' is mapped twice"):
        read_phone_map(bad)


def test_words_from_text_skips_markers_and_keeps_first_line(tmp_path):
    text = tmp_path / "text"
    text.write_text("u1 <s> A [laugh] B </s>\nu2 B C <UNK>\n", encoding="utf-8")
    got = [(s.word, s.line) for s in words_from_text(text)]
    assert got == [("A", 1), ("B", 1), ("C", 2)]


def test_prepare_lexicon_with_the_shipped_g2p(tmp_path):
    text = tmp_path / "text"
    text.write_text("utt1 HELLO ZORBLAT\n", encoding="utf-8")
    out = tmp_path / "lexicon.txt"
    assert main(["prepare-lexicon", "--text", str(text), str(out)]) == 0
    lines = read_lex(out)
    assert "HELLO HH AH L OW" in lines
    g2p = read_lex(tmp_path / "lexicon_g2p.txt")
    assert len(g2p) == 1 and g2p[0].startswith("ZORBLAT Z ") and g2p[0] in lines
    arpabet = {p for prons in cmudict_pronunciations().values() for pron in prons for p in pron}
    assert set(g2p[0].split()[1:]) <= arpabet
