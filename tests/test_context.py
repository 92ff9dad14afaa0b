"""Context-dependent and word-position-dependent phones: unit choice, lang dirs, and moving a monophone model into them."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from asr.config import load_config
from asr.errors import LexiconError
from asr.lang.context import choose_unit, context_counts, expand_lexicon, pdf_map, position_dependent_lexicon
from asr.lang.lang_dir import LangDir, prepare_lang
from asr.training.align import align_utterances
from asr.training.data import load_utterances
from asr.training.run import initial_state

from helpers_tiny import make_data_dir, make_lang, write_lexicon

LEXICON = [
    ("<SIL>", ["SIL"]),
    ("BE", ["B", "IY"]),
    ("DE", ["D", "IY"]),
    ("E", ["IY"]),
    ("BED", ["B", "EH", "D"]),
    ("BEAD", ["B", "IY", "D"]),
    ("BEAD", ["B", "IY", "D", "SIL"]),  # a silence phone inside a pronunciation is no one's context
]


def test_context_counts_share_words_between_pronunciations():
    counts = context_counts([("W", ["A", "B"]), ("W", ["A", "C"])], Counter({"W": 10, "OOV": 99}))
    assert counts[(None, "A", "B")] == 5 and counts[(None, "A", "C")] == 5
    assert counts[(None, "A", None)] == 10
    assert counts[("A", "B", None)] == 5
    assert counts[(None, "A", None)] + counts[(None, "B", None)] + counts[(None, "C", None)] == 20


def test_expand_lexicon_hand_counted_case():
    words = Counter({"BE": 30, "DE": 5, "E": 50, "BED": 12, "BEAD": 16})
    lexicon, base = expand_lexicon(LEXICON, words, min_count=10, silence_phones=["SIL"])
    prons = {}
    for w, p in lexicon:
        prons.setdefault(w, []).append(p)
    assert prons["<SIL>"] == [["SIL"]]
    # B+IY: 30 (BE) + 8 + 8 (BEAD's two pronunciations); B-IY the same.
    assert prons["BE"] == [["B+IY", "B-IY"]]
    # D+IY seen 5 times: D falls back to the monophone; IY after D (5) too.
    assert prons["DE"] == [["D", "IY"]]
    # A one-phone word has no context.
    assert prons["E"] == [["IY"]]
    # BED (12): every context of its phones is seen 12 times, so each gets its most specific one.
    assert prons["BED"] == [["B+EH", "B-EH+D", "EH-D"]]
    # BEAD: B-IY+D seen 16 times -> triphone; D after IY 16 -> biphone; silence stays.
    assert prons["BEAD"] == [["B+IY", "B-IY+D", "IY-D"], ["B+IY", "B-IY+D", "IY-D", "SIL"]]
    assert base == {"B+IY": "B", "B-IY": "IY", "B+EH": "B", "B-EH+D": "EH", "EH-D": "D", "B-IY+D": "IY", "IY-D": "D"}


def test_choose_unit_prefers_the_more_frequent_biphone_and_backs_off():
    counts = Counter({("L", "P", None): 5, (None, "P", "R"): 9, ("L", "P", "R"): 3})
    assert choose_unit("L", "P", "R", counts, 4) == "P+R"
    assert choose_unit("L", "P", "R", counts, 3) == "L-P+R"
    assert choose_unit("L", "P", "R", counts, 10) == "P"
    assert choose_unit("L", "P", None, counts, 5) == "L-P"
    assert choose_unit(None, "P", None, counts, 1) == "P"


def test_expand_lexicon_rejects_context_characters_and_bad_min_count():
    with pytest.raises(LexiconError, match="'A\\+B'"):
        expand_lexicon([("W", ["A+B"])], Counter({"W": 1}), 1, [])
    with pytest.raises(LexiconError, match="min_count"):
        expand_lexicon([("W", ["A"])], Counter({"W": 1}), 0, [])


def _cd_config(min_count: float = 1) -> dict:
    return {**load_config("lang.yaml"), "context": {"min_count": min_count}}


def test_prepare_lang_with_context_needs_text_and_records_base_phones(tmp_path):
    lex = write_lexicon(tmp_path / "lexicon.txt", "<SIL> SIL\nA PA PB\nB PB PA\n")
    with pytest.raises(LexiconError, match="--text"):
        prepare_lang(lex, tmp_path / "lang", _cd_config())
    (tmp_path / "text").write_text("u1 A B\nu2 A\n")
    lang = prepare_lang(lex, tmp_path / "lang", _cd_config(), tmp_path / "text")
    assert sorted(lang.hmm_phones) == ["PA+PB", "PA-PB", "PB+PA", "PB-PA", "SIL"]
    assert LangDir.load(lang.path).config["base_phones"] == {
        "PA+PB": "PA", "PA-PB": "PB", "PB+PA": "PB", "PB-PA": "PA"}
    assert lang.num_pdfs == 1 + 4 * 3  # 1-state silence, 3-state units


def test_pdf_map_scores_each_unit_with_its_base_phone(tmp_path):
    mono = make_lang(tmp_path, "<SIL> SIL\nA PA PB\nB PB PA\n", name="mono")
    lex = write_lexicon(tmp_path / "lexicon.txt", "<SIL> SIL\nA PA PB\nB PB PA\n")
    (tmp_path / "text").write_text("u1 A B\n")
    cd = prepare_lang(lex, tmp_path / "cd", _cd_config(), tmp_path / "text")
    names_mono = (mono.path / "pdfs.txt").read_text().split()[::2]
    names_cd = (cd.path / "pdfs.txt").read_text().split()[::2]
    m = pdf_map(mono, cd)
    assert m[0] == 0 and len(m) == cd.num_pdfs + 1
    for j, name in enumerate(names_cd, 1):
        unit, cls = name.rsplit("_", 1)
        base = cd.config.get("base_phones", {}).get(unit, unit)
        assert names_mono[m[j] - 1] == f"{base}_{cls}"
    # A lang whose topology differs cannot be mapped.
    chain = make_lang(tmp_path, "<SIL> SIL\nA PA PB\nB PB PA\n", config="lang_chain.yaml", name="chain")
    with pytest.raises(LexiconError, match="pdf classes"):
        pdf_map(chain, cd)


class _ScoresAreFeatures(torch.nn.Module):
    """A stand-in acoustic model whose input features are its log-probabilities."""

    def __init__(self, num_pdfs: int):
        super().__init__()
        self.num_pdfs = num_pdfs
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, feats, lengths, ivectors=None):
        return feats.log_softmax(-1), lengths


def test_monophone_scores_align_into_the_context_dependent_lang(tmp_path):
    lexicon = "<SIL> SIL\nA PA PB\nB PB PA\n"
    mono = make_lang(tmp_path, lexicon, name="mono")
    (tmp_path / "text").write_text("u1 A B\n")
    cd = prepare_lang(write_lexicon(tmp_path / "lexicon.txt", lexicon), tmp_path / "cd", _cd_config(),
                      tmp_path / "text")
    mono_names = (mono.path / "pdfs.txt").read_text().split()[::2]
    path = ["SIL_0"] + [f"PA_{c}" for c in range(3)] + [f"PB_{c}" for c in range(3)] * 2 \
        + [f"PA_{c}" for c in range(3)] + ["SIL_0"]
    feats = np.full((len(path), mono.num_pdfs), -10.0, dtype=np.float32)
    for t, name in enumerate(path):
        feats[t, mono_names.index(name)] = 10.0
    data = make_data_dir(tmp_path / "data", {"s0_u1": ["A", "B"]}, feats={"s0_u1": feats})
    md = SimpleNamespace(lang=mono, log_priors=None, model=_ScoresAreFeatures(mono.num_pdfs))
    (ali,) = align_utterances(md, load_utterances(data), 1000, 20.0, lang=cd).values()
    cd_names = (cd.path / "pdfs.txt").read_text().split()[::2]
    expected = ["SIL_0"] + [f"PA+PB_{c}" for c in range(3)] + [f"PA-PB_{c}" for c in range(3)] \
        + [f"PB+PA_{c}" for c in range(3)] + [f"PB-PA_{c}" for c in range(3)] + ["SIL_0"]
    assert [cd_names[p - 1] for p in ali.pdfs.tolist()] == expected
    assert [cd.words.get(w) for _, w in ali.word_starts] == ["A", "B"]


def test_position_dependent_lexicon_marks_begin_inside_end_and_singletons():
    lexicon, base = position_dependent_lexicon(LEXICON, ["SIL"])
    prons = {}
    for w, p in lexicon:
        prons.setdefault(w, []).append(p)
    assert prons["<SIL>"] == [["SIL"]]
    assert prons["BE"] == [["B_B", "IY_E"]]
    assert prons["E"] == [["IY_S"]]
    assert prons["BED"] == [["B_B", "EH_I", "D_E"]]
    # A silence phone neither gets a suffix nor counts as a position.
    assert prons["BEAD"] == [["B_B", "IY_I", "D_E"], ["B_B", "IY_I", "D_E", "SIL"]]
    assert base["IY_S"] == "IY" and base["D_E"] == "D" and "SIL" not in base
    with pytest.raises(LexiconError, match="suffix"):
        position_dependent_lexicon([("W", ["A_B"])], [])


def test_position_dependent_units_of_context_units_map_to_the_monophone():
    cd, cd_base = expand_lexicon(LEXICON, Counter({"BE": 30}), 10, ["SIL"])
    lexicon, base = position_dependent_lexicon(cd, ["SIL"], cd_base)
    assert dict(lexicon)["BE"] == ["B+IY_B", "B-IY_E"]
    assert base["B+IY_B"] == "B" and base["B-IY_E"] == "IY" and base["IY_S"] == "IY"


def test_prepare_lang_position_dependent_creates_only_used_variants(tmp_path):
    lex = write_lexicon(tmp_path / "lexicon.txt", "<SIL> SIL\nA PA PB\nB PB\n")
    cfg = {**load_config("lang_chain_pos.yaml")}
    lang = prepare_lang(lex, tmp_path / "lang", cfg)
    assert sorted(lang.hmm_phones) == ["PA_B", "PB_E", "PB_S", "SIL"]
    assert LangDir.load(lang.path).config["base_phones"] == {"PA_B": "PA", "PB_E": "PB", "PB_S": "PB"}
    with pytest.raises(LexiconError, match="position_dependent must be true or false, got 'false'"):
        prepare_lang(lex, tmp_path / "bad", {**cfg, "position_dependent": "false"})
    assert not (tmp_path / "bad").exists()
    mono = make_lang(tmp_path, "<SIL> SIL\nA PA PB\nB PB\n", config="lang_chain.yaml", name="mono")
    m = pdf_map(mono, lang)
    mono_names = (mono.path / "pdfs.txt").read_text().split()[::2]
    pos_names = (lang.path / "pdfs.txt").read_text().split()[::2]
    for j, name in enumerate(pos_names, 1):
        unit, cls = name.rsplit("_", 1)
        base = lang.config.get("base_phones", {}).get(unit, unit)
        assert mono_names[m[j] - 1] == f"{base}_{cls}"


class _Linear(torch.nn.Module):
    def __init__(self, num_pdfs: int):
        super().__init__()
        self.num_pdfs = num_pdfs
        self.output = torch.nn.Linear(4, num_pdfs)

    def forward(self, x):
        return self.output(x).log_softmax(-1)


def test_initial_state_copies_base_rows_and_keeps_each_base_phone_posterior(tmp_path):
    lexicon = "<SIL> SIL\nA PA PB\nB PB\n"
    mono = make_lang(tmp_path, lexicon, config="lang_chain.yaml", name="mono")
    pos = prepare_lang(write_lexicon(tmp_path / "lexicon.txt", lexicon), tmp_path / "pos",
                       load_config("lang_chain_pos.yaml"))
    torch.manual_seed(0)
    src = _Linear(mono.num_pdfs)
    state = initial_state(SimpleNamespace(model=src, lang=mono), pos)
    dst = _Linear(pos.num_pdfs)
    dst.load_state_dict(state)
    x = torch.randn(5, 4)
    columns = pdf_map(mono, pos)[1:] - 1
    # Summed over the copies of each monophone pdf, the new model gives the old posteriors.
    summed = torch.zeros(5, mono.num_pdfs).index_add_(1, columns, dst(x).exp())
    torch.testing.assert_close(summed, src(x).exp())
    # Same pdf count: the state is passed through untouched.
    assert torch.equal(initial_state(SimpleNamespace(model=src, lang=mono), mono)["output.bias"], src.output.bias)
