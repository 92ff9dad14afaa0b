"""Tests of asr.lang: lexicon reading, disambiguation, prepare_lang outputs, H, L and fsa_io."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import k2
import pytest
import torch

from asr.errors import AsrError, LexiconError
from asr.lang.fsa_io import load_fsa, save_fsa
from asr.lang.lang_dir import SymbolTable
from asr.lang.lexicon import add_disambig_symbols, read_lexicon

from helpers_tiny import LOG_HALF, make_lang, write_lexicon


# -- lexicon reading ----------------------------------------------------------


def test_duplicate_pronunciation_dropped_with_warning(tmp_path, caplog):
    lex = write_lexicon(tmp_path / "lex.txt", "A AH\nB B IY\nA AH\nA EY\n")
    with caplog.at_level(logging.WARNING, logger="asr.lang"):
        out = read_lexicon(lex)
    assert out == [("A", ["AH"]), ("B", ["B", "IY"]), ("A", ["EY"])]
    assert any("duplicate" in r.message and ":3:" in r.message for r in caplog.records)


def test_phone_not_in_phone_set_names_file_and_line(tmp_path):
    lex = write_lexicon(tmp_path / "lex.txt", "A AH\n\nB B IY\nC S IY\n")
    with pytest.raises(LexiconError, match=rf"{tmp_path / 'lex.txt'}:4: phone 'S'"):
        read_lexicon(lex, {"AH", "B", "IY"})


def test_empty_lexicon_refused(tmp_path):
    lex = write_lexicon(tmp_path / "lex.txt", "\n  \n")
    with pytest.raises(LexiconError, match="empty"):
        read_lexicon(lex)


@pytest.mark.parametrize("line", ["#1 AH", "<s> SIL", "A <eps>", "A AH #0", "A"])
def test_reserved_symbols_and_missing_phones_refused(tmp_path, line):
    lex = write_lexicon(tmp_path / "lex.txt", f"B B\n{line}\n")
    with pytest.raises(LexiconError, match=r"lex.txt:2:"):
        read_lexicon(lex)


# -- disambiguation symbols ----------------------------------------------------


def test_disambig_symbols_for_homophones_and_prefixes():
    lexicon = [
        ("A", ["AH"]),          # prefix of AN's pronunciation
        ("AN", ["AH", "N"]),
        ("TWO", ["T", "UW"]),   # homophones
        ("TOO", ["T", "UW"]),
        ("TO", ["T", "UW"]),
        ("CAT", ["K", "AE", "T"]),
    ]
    out, max_id = add_disambig_symbols(lexicon)
    assert out == [
        ("A", ["AH", "#1"]),
        ("AN", ["AH", "N"]),
        ("TWO", ["T", "UW", "#1"]),
        ("TOO", ["T", "UW", "#2"]),
        ("TO", ["T", "UW", "#3"]),
        ("CAT", ["K", "AE", "T"]),
    ]
    assert max_id == 3
    assert add_disambig_symbols([("X", ["K"]), ("Y", ["L"])]) == ([("X", ["K"]), ("Y", ["L"])], 0)


def test_prepare_lang_disambig_files(tmp_path):
    lang = make_lang(tmp_path, "<SIL> SIL\nTWO T UW\nTOO T UW\nA AH\nAN AH N\n")
    phones = SymbolTable.read(tmp_path / "lang/phones.txt")
    assert [s for s in phones.sym2id if s.startswith("#")] == ["#0", "#1", "#2"]
    assert (tmp_path / "lang/phones/disambig.txt").read_text().split() == ["#0", "#1", "#2"]
    lines = (tmp_path / "lang/lexicon_disambig.txt").read_text().splitlines()
    assert "TWO T UW #1" in lines and "TOO T UW #2" in lines and "A AH #1" in lines and "AN AH N" in lines
    assert lang.phones["#0"] == max(i for s, i in phones.sym2id.items() if not s.startswith("#")) + 1


# -- prepare_lang outputs ------------------------------------------------------


def test_prepare_lang_tables(tiny_lang):
    lang = tiny_lang
    d = lang.path
    phones = [l.split() for l in (d / "phones.txt").read_text().splitlines()]
    # <SIL> and the added <UNK> are both pronounced SIL: homophones, so #1 and #2.
    assert phones == [["<eps>", "0"], ["SIL", "1"], ["PA", "2"], ["PB", "3"], ["#0", "4"], ["#1", "5"], ["#2", "6"]]
    words = [l.split() for l in (d / "words.txt").read_text().splitlines()]
    assert words[0] == ["<eps>", "0"]
    assert [w for w, _ in words] == ["<eps>", "<SIL>", "<UNK>", "A", "B", "#0", "<s>", "</s>"]
    assert [int(i) for _, i in words] == list(range(8))
    # <UNK> was added, pronounced as the optional silence phone.
    assert "<UNK> SIL" in (d / "lexicon.txt").read_text().splitlines()
    pdfs = [l.split() for l in (d / "pdfs.txt").read_text().splitlines()]
    # Silence has the 1-state topology, the other phones Kaldi's 3 states.
    assert pdfs == [["SIL_0", "1"], ["PA_0", "2"], ["PA_1", "3"], ["PA_2", "4"],
                    ["PB_0", "5"], ["PB_1", "6"], ["PB_2", "7"]]
    assert lang.num_pdfs == 7
    assert (d / "phones/silence.txt").read_text().split() == ["SIL"]
    assert (d / "phones/nonsilence.txt").read_text().split() == ["PA", "PB"]
    assert (d / "phones/optional_silence.txt").read_text().split() == ["SIL"]
    assert lang.pdf_to_phone().tolist() == [0, 1, 2, 2, 2, 3, 3, 3]


def test_prepare_lang_keeps_lexicon_unk(tmp_path):
    make_lang(tmp_path, "<SIL> SIL\n<UNK> GBG\nA PA\n")
    lex = (tmp_path / "lang/lexicon.txt").read_text().splitlines()
    assert [l for l in lex if l.startswith("<UNK>")] == ["<UNK> GBG"]


def _h_phones(H: k2.Fsa, pdfs: list[int]) -> list[int] | None:
    """Phone ids that H outputs for a pdf sequence (None if H rejects it)."""
    fsa = k2.connect(k2.intersect(k2.arc_sort(H), k2.linear_fsa(pdfs), treat_epsilons_specially=False))
    if fsa.num_arcs == 0:
        return None
    path = k2.shortest_path(k2.create_fsa_vec([fsa]), use_double_scores=True)
    return [int(p) for p in path.aux_labels.tolist() if p > 0]


def test_h_kaldi_3state_topology(tiny_lang):
    lang = tiny_lang
    H = lang.load_graph("H")
    SIL, PA, PB = (lang.phones[p] for p in ("SIL", "PA", "PB"))
    # SIL_0=1; PA_0..2 = 2..4; PB_0..2 = 5..7
    assert _h_phones(H, [1, 1, 2, 3, 3, 4, 5, 6, 7, 7, 1]) == [SIL, PA, PB, SIL]
    assert _h_phones(H, [2, 3, 4, 2, 3, 4]) == [PA, PA]
    # A phone must pass through all its states in order.
    assert _h_phones(H, [2, 4]) is None
    assert _h_phones(H, [3, 4]) is None
    assert _h_phones(H, [2, 3, 4, 3]) is None


def test_h_chain_topology(tiny_chain_lang):
    lang = tiny_chain_lang
    pdfs = (lang.path / "pdfs.txt").read_text().split()
    assert pdfs == ["SIL_0", "1", "PA_0", "2", "PA_1", "3", "PB_0", "4", "PB_1", "5"]
    H = lang.load_graph("H")
    SIL, PA, PB = (lang.phones[p] for p in ("SIL", "PA", "PB"))
    # Chain: first frame pdf class 0, repeats pdf class 1; one frame per phone suffices.
    assert _h_phones(H, [1, 2, 3, 3, 4, 1]) == [SIL, PA, PB, SIL]
    assert _h_phones(H, [2, 4]) == [PA, PB]
    assert _h_phones(H, [2, 2]) == [PA, PA]
    assert _h_phones(H, [3]) is None  # a phone cannot start with its repeat pdf


def _l_words(L: k2.Fsa, phone_ids: list[int]) -> tuple[list[int], float] | None:
    fsa = k2.connect(k2.intersect(k2.arc_sort(L), k2.linear_fsa(phone_ids), treat_epsilons_specially=True))
    if fsa.num_arcs == 0:
        return None
    path = k2.shortest_path(k2.create_fsa_vec([fsa]), use_double_scores=True)
    score = float(path.get_tot_scores(use_double_scores=True, log_semiring=False)[0])
    return [int(w) for w in path.aux_labels.tolist() if w > 0], score


@pytest.mark.parametrize("name", ["L", "L_disambig"])
def test_l_accepts_words_with_and_without_silence(tiny_lang, name):
    lang = tiny_lang
    L = lang.load_graph(name)
    SIL, PA, PB = (lang.phones[p] for p in ("SIL", "PA", "PB"))
    A, B = lang.words["A"], lang.words["B"]
    # n words: n + 1 silence decisions (at the start and after each word), each log(0.5).
    for phones in ([PA, PB], [SIL, PA, PB, SIL], [SIL, PA, SIL, PB], [PA, SIL, PB]):
        words, score = _l_words(L, phones)
        assert words == [A, B]
        assert score == pytest.approx(3 * LOG_HALF, abs=1e-5)
    assert _l_words(L, [PB])[0] == [B]
    # Optional silence is a single phone: a second SIL must be a silence word.
    two_sil = _l_words(L, [PA, SIL, SIL, PB])
    if name == "L":
        assert two_sil[0][0] == A and two_sil[0][2] == B
        assert lang.words.get(two_sil[0][1]) in ("<SIL>", "<UNK>")
    else:  # in L_disambig the silence words end with #1/#2
        assert two_sil is None
    nonzero = {round(float(s), 5) for s in L.scores if s != 0}
    assert nonzero == {round(math.log(0.5), 5)}


def test_l_disambig_has_backoff_loop(tiny_lang):
    lang = tiny_lang
    L = lang.load_graph("L_disambig")
    loops = [(int(l), int(a)) for l, a in zip(L.labels, L.aux_labels) if l == lang.phones["#0"]]
    assert loops == [(lang.phones["#0"], lang.words["#0"])]
    # Plain L has no disambiguation symbols at all.
    assert int(lang.load_graph("L").labels.max()) < lang.phones["#0"]
    assert int(L.labels.max()) > lang.phones["#0"]  # #1/#2 of the <SIL>/<UNK> homophones


# -- fsa_io ------------------------------------------------------------------


def test_fsa_io_round_trip_tensor_attrs(tmp_path, tiny_lang):
    H = tiny_lang.load_graph("H")
    save_fsa(H, tmp_path / "H2.pt")
    H2 = load_fsa(tmp_path / "H2.pt")
    assert torch.equal(H.arcs.values(), H2.arcs.values())
    assert torch.equal(H.aux_labels, H2.aux_labels)
    assert torch.equal(H.scores, H2.scores)


def test_fsa_io_round_trip_ragged_aux_labels(tmp_path):
    fsa = k2.Fsa.from_str("0 1 3 0.5\n1 2 4 -1.5\n2 3 -1 0\n3", acceptor=True)
    fsa.aux_labels = k2.RaggedTensor([[5, 6], [], [-1]])
    fsa.phones = torch.tensor([1, 0, 0], dtype=torch.int32)
    save_fsa(fsa, tmp_path / "g.pt")
    # The file holds only plain tensors: torch's safe loader accepts it.
    torch.load(tmp_path / "g.pt", weights_only=True)
    back = load_fsa(tmp_path / "g.pt")
    assert isinstance(back.aux_labels, k2.RaggedTensor)
    assert back.aux_labels.tolist() == [[5, 6], [], [-1]]
    assert back.labels.tolist() == [3, 4, -1]
    assert back.scores.tolist() == pytest.approx([0.5, -1.5, 0.0])
    assert back.phones.tolist() == [1, 0, 0]


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/asr-test-should-not-exist"),))


class _Arbitrary:
    pass


@pytest.mark.parametrize("obj", [_Arbitrary(), _Evil()])
def test_fsa_io_refuses_pickled_objects(tmp_path, obj):
    path = tmp_path / "bad.pt"
    torch.save({"format": "asr.k2-fsa.v1", "arcs": torch.zeros(1, 4, dtype=torch.int32), "x": obj}, path)
    marker = Path("/tmp/asr-test-should-not-exist")
    marker.unlink(missing_ok=True)
    with pytest.raises(AsrError, match="refused to load"):
        load_fsa(path)
    assert not marker.exists()


def test_fsa_io_refuses_other_dicts(tmp_path):
    torch.save({"arcs": torch.zeros(1, 4, dtype=torch.int32)}, tmp_path / "x.pt")
    with pytest.raises(AsrError, match="not an asr FSA file"):
        load_fsa(tmp_path / "x.pt")
