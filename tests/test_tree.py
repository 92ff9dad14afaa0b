"""Decision-tree state tying (asr.tree, asr build-tree): statistics, questions, splitting, file, CLI."""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from asr.config import load_config
from asr.errors import ConfigError, LexiconError
from asr.lang.lang_dir import LangDir, prepare_lang
from asr.tree.build import Splitter, build_tree, make_roots, merge_leaves
from asr.tree.config import load_tree_config
from asr.tree.gaussian import frame_stats, log_likelihood
from asr.tree.questions import cluster_groups, read_extra_questions
from asr.tree.stats import (
    TreeStats,
    accumulate_tree_stats,
    add_deltas,
    phone_instances,
    pdf_continues,
    pdf_phone_and_class,
    stretch_to_input_rate,
)
from asr.tree.tree import Tree, TreeError
from reliability_fixtures import assert_cli_error, run_cli

LEXICON = "AB A B\nBA B A\nC C\nABC A B C\n"
WORDS = ["AB", "BA", "C", "ABC"]
SUBSAMPLING = 3
FEAT_DIM = 2


def cfg(**overrides):
    return load_tree_config(None, {"deltas": False, "min_leaf_count": 5, "split_threshold": 0.0, **overrides})


@pytest.fixture(scope="module")
def lang(tmp_path_factory) -> LangDir:
    """A chain-topology lang with word-position-dependent phones A_B A_E B_B B_E B_I C_S C_E and SIL."""
    d = tmp_path_factory.mktemp("tree_lang")
    (d / "lexicon.txt").write_text(LEXICON, encoding="utf-8")
    return prepare_lang(d / "lexicon.txt", d / "lang", load_config("lang_chain_pos.yaml"))


def synthetic_utterance(lang: LangDir, rng: random.Random) -> tuple[list[int], np.ndarray]:
    """Output-rate pdf ids and 10 ms features of a random word sequence between silences.

    Feature 0 is 4 * (base phone index) + pdf class; a phone after silence is
    shifted by +2, so the tree has a left-context split to find.
    """
    table = lang.pdf_table
    lexicon = dict(lang.lexicon)
    phones = ["SIL"] + [p for w in rng.choices(WORDS, k=rng.randint(1, 4)) for p in lexicon[w]] + ["SIL"]
    pdfs, means = [], []
    for i, phone in enumerate(phones):
        j = lang.hmm_phones.index(phone)
        classes = table.topologies[j].num_pdf_classes
        base = "SILABC".index(phone[0]) if phone != "SIL" else 0
        for t in range(rng.randint(2, 6)):
            c = min(t, classes - 1)
            pdfs.append(table.pdf_id(j, c))
            means.append(4.0 * base + c + (2.0 if i > 0 and phones[i - 1] == "SIL" and phone != "SIL" else 0.0))
    num_feats = SUBSAMPLING * len(pdfs) - rng.randint(0, SUBSAMPLING - 1)
    mean = np.repeat(np.array(means), SUBSAMPLING)[:num_feats]
    noise = np.random.default_rng(rng.randint(0, 2**31)).normal(0.0, 0.3, (num_feats, FEAT_DIM))
    return pdfs, (noise + mean[:, None]).astype(np.float32)


def write_synthetic(root: Path, lang: LangDir, num_utts: int = 40, seed: int = 0) -> tuple[Path, Path]:
    """A data dir (feats.scp, no CMVN) and an alignment dir (ali.ark, info.yaml at 30 ms) of synthetic utterances."""
    from asr.data.datadir import write_data_dir
    from asr.features.ark import write_matrices

    rng = random.Random(seed)
    utts = {f"u{i:03d}": synthetic_utterance(lang, rng) for i in range(num_utts)}
    data, ali = root / "data", root / "ali"
    write_data_dir(data, {u: "/dev/null" for u in utts}, {u: "AB" for u in utts}, {u: "spk" for u in utts})
    write_matrices((data / "feats.ark").resolve(), data / "feats.scp", ((u, f) for u, (_, f) in utts.items()))
    (data / "conf").mkdir()
    (data / "conf/feats.yaml").write_text(yaml.safe_dump({"type": "fbank", "frame_shift": 10.0, "cmvn": "none"}))
    ali.mkdir()
    with kaldiio.WriteHelper(f"ark,scp:{ali / 'ali.ark'},{ali / 'ali.scp'}") as writer:
        for u, (pdfs, _) in utts.items():
            writer(u, np.array(pdfs, dtype=np.int32))
    (ali / "info.yaml").write_text(yaml.safe_dump({"frame_shift": 0.03}))
    return data, ali


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory, lang) -> tuple[Path, Path]:
    return write_synthetic(tmp_path_factory.mktemp("tree_synth"), lang)


def one_dim_stats(*sets: list[float]) -> torch.Tensor:
    return torch.stack([frame_stats(torch.tensor(s, dtype=torch.float64).unsqueeze(1)).sum(0) for s in sets])


# ---------------------------------------------------------------------------
# Likelihood and one split


def test_log_likelihood_matches_hand_formula():
    stats = one_dim_stats([0.0, 2.0], [1.0, 1.0])
    ll = log_likelihood(stats, variance_floor=0.01)
    # {0, 2}: n 2, variance 1.  {1, 1}: variance 0, floored to 0.01.
    assert ll[0].item() == pytest.approx(-0.5 * 2 * (math.log(2 * math.pi * 1.0) + 1))
    assert ll[1].item() == pytest.approx(-0.5 * 2 * (math.log(2 * math.pi * 0.01) + 1))


def test_split_gain_against_hand_computation():
    # Left context 1 holds frames {0, 2}, left context 2 holds {10, 12}; the centre phone is 5.
    rows = one_dim_stats([0.0, 2.0], [10.0, 12.0])
    stats = TreeStats(torch.tensor([[1, 5, 0], [2, 5, 0]]), torch.tensor([0, 0]), rows, central_position=1)
    splitter = Splitter(stats, [[1], [5]], [], cfg(min_leaf_count=1))
    split = splitter.best(torch.arange(2), rows.sum(0), ask_class=False)
    # Parent {0, 2, 10, 12}: mean 6, variance 62 - 36 = 26; each half: variance 1.
    # gain = 2 * (-(log 2pi + 1)) - 4 * (-0.5 (log(2pi 26) + 1)) = 2 log 26.
    assert split.gain == pytest.approx(2 * math.log(26.0))
    assert (split.key, split.question) == (0, 0)
    assert split.yes.tolist() == [True, False]


def test_split_respects_min_count():
    rows = one_dim_stats([0.0, 2.0], [10.0, 12.0])
    stats = TreeStats(torch.tensor([[1, 5, 0], [2, 5, 0]]), torch.tensor([0, 0]), rows, central_position=1)
    assert Splitter(stats, [[1]], [], cfg(min_leaf_count=3)).best(torch.arange(2), rows.sum(0), False) is None


def test_merge_leaves_joins_only_cheap_pairs():
    # Two nearly identical leaves and a distant one: only the first two merge.
    leaves = one_dim_stats([0.0, 1.0, 2.0], [0.1, 1.1, 2.1], [50.0, 51.0, 52.0])
    assert merge_leaves(leaves, threshold=1.0, variance_floor=0.01) == [0, 0, 1]
    assert merge_leaves(leaves, threshold=0.0, variance_floor=0.01) == [0, 1, 2]


# ---------------------------------------------------------------------------
# Questions


def test_cluster_phones_separates_two_groups():
    gen = torch.Generator().manual_seed(1)
    low = [torch.randn(200, 3, generator=gen) + torch.tensor([0.0, 0.0, 0.0]) + 0.3 * i for i in range(3)]
    high = [torch.randn(200, 3, generator=gen) + torch.tensor([8.0, -6.0, 5.0]) + 0.3 * i for i in range(3)]
    items = low[:1] + high[:2] + low[1:] + high[2:]  # interleaved: items 0, 3, 4 are low; 1, 2, 5 high
    stats = torch.stack([frame_stats(x).sum(0) for x in items])
    nodes = cluster_groups(stats, variance_floor=0.01, restarts=4, seed=0)
    assert sorted(map(sorted, nodes[:2])) == [[0, 3, 4], [1, 2, 5]]
    assert sorted(n for node in nodes if len(node) == 1 for n in node) == list(range(6))


def test_extra_questions_file(tmp_path, lang):
    path = tmp_path / "extra.txt"
    path.write_text("A_B A_E\n\nSIL C_S\n")
    assert read_extra_questions(path, lang.phones) == [sorted([lang.phones["A_B"], lang.phones["A_E"]]),
                                                       sorted([lang.phones["SIL"], lang.phones["C_S"]])]
    path.write_text("A_B A_E\nA_B XX\n")
    with pytest.raises(LexiconError, match=rf"{path}:2: 'XX' is not a phone"):
        read_extra_questions(path, lang.phones)
    path.write_text("A_B #0\n")
    with pytest.raises(LexiconError, match=rf"{path}:1: '#0'"):
        read_extra_questions(path, lang.phones)


# ---------------------------------------------------------------------------
# Statistics


def test_phone_instances_split_repeated_phone(lang):
    """C_S C_S (two one-phone words) is two instances: class 0 after class 1 starts a phone."""
    j = lang.hmm_phones.index("C_S")
    table = lang.pdf_table
    c0, c1 = table.pdf_id(j, 0), table.pdf_id(j, 1)
    pdf_phone, _ = pdf_phone_and_class(lang)
    phones, frame_instance = phone_instances(torch.tensor([c0, c1, c1, c0, c1]), pdf_phone, pdf_continues(lang))
    assert phones.tolist() == [lang.phones["C_S"]] * 2
    assert frame_instance.tolist() == [0, 0, 0, 1, 1]


def test_stretch_centres_output_frames():
    # Output frame t is centred on input t*3: inputs 0,1 -> 0; 2,3,4 -> 1; 5,6 -> 2 (T = 7, T' = 3).
    assert stretch_to_input_rate(torch.tensor([10, 11, 12]), 7, 3).tolist() == [10, 10, 11, 11, 11, 12, 12]


def test_add_deltas_of_a_ramp():
    x = torch.arange(10, dtype=torch.float32).unsqueeze(1)
    out = add_deltas(x)
    assert out.shape == (10, 3)
    # Away from the edges a unit ramp has delta 1 and delta-delta 0 (Kaldi's window-2 filters).
    assert out[4:6, 1].tolist() == pytest.approx([1.0, 1.0])
    assert out[4:6, 2].tolist() == pytest.approx([0.0, 0.0], abs=1e-6)


def test_accumulate_counts_every_frame_once(synthetic, lang):
    data, ali = synthetic
    stats = accumulate_tree_stats(ali, data, lang, width=3, centre=1, deltas=False)
    num_feats = sum(len(m) for _, m in kaldiio.load_scp(str(data / "feats.scp")).items())
    assert stats.stats[:, 0].sum().item() == num_feats
    assert stats.stats.shape[1] == 1 + 2 * FEAT_DIM
    # Utterances start and end in silence, whose outer context is the boundary 0.
    sil = lang.phones["SIL"]
    assert bool(((stats.contexts[:, 0] == 0) & (stats.central_phones == sil)).any())
    assert bool(((stats.contexts[:, 2] == 0) & (stats.central_phones == sil)).any())
    assert not bool(((stats.contexts[:, 0] == 0) & (stats.central_phones != sil)).any())
    biphone = accumulate_tree_stats(ali, data, lang, width=2, centre=1, deltas=True)
    assert biphone.context_width == 2 and biphone.stats.shape[1] == 1 + 2 * 3 * FEAT_DIM


# ---------------------------------------------------------------------------
# The tree


@pytest.fixture(scope="module")
def synthetic_stats(synthetic, lang) -> TreeStats:
    data, ali = synthetic
    return accumulate_tree_stats(ali, data, lang, width=3, centre=1, deltas=False)


def test_position_variants_share_a_root(lang, synthetic_stats):
    tree = build_tree(synthetic_stats, lang, cfg())
    p = lang.phones
    assert tree.root_index(p["A_B"], 0) == tree.root_index(p["A_E"], 1)
    assert tree.root_index(p["B_B"], 0) == tree.root_index(p["B_I"], 0) == tree.root_index(p["B_E"], 0)
    assert tree.root_index(p["A_B"], 0) != tree.root_index(p["B_B"], 0)
    assert len(tree.roots) == 4  # SIL, A, B, C
    separate = make_roots(lang, share_positions=False, share_pdf_classes=False)
    assert ([p["A_B"]], [1]) in separate and len(separate) == 1 + 2 * (len(lang.hmm_phones) - 1)


def test_tree_finds_the_left_context_and_pdf_class(lang, synthetic_stats):
    tree = build_tree(synthetic_stats, lang, cfg())
    keys = {node[0] for node in tree.nodes if len(node) == 4}
    assert {-1, 0} <= keys  # pdf class and left context are what the features depend on
    p = lang.phones
    after_sil = tree.leaf((p["SIL"], p["A_B"], p["B_E"]), 0)
    after_b = tree.leaf((p["B_I"], p["A_B"], p["B_E"]), 0)
    assert after_sil != after_b
    assert tree.leaf((p["SIL"], p["A_B"], p["B_E"]), 1) != after_sil


def test_min_count_and_max_leaves(lang, synthetic_stats):
    limited = build_tree(synthetic_stats, lang, cfg(max_leaves=6, merge_threshold=0.0))
    assert limited.num_leaves == 6
    frames = synthetic_stats.stats[:, 0].sum().item()
    big = build_tree(synthetic_stats, lang, cfg(min_leaf_count=frames / 8, max_leaves=1000, merge_threshold=0.0))
    assert min(big.leaf_counts) >= frames / 8
    # Each split needs both sides >= min count, so no tree can have more leaves than frames / min count.
    assert big.num_leaves <= 8
    roots_only = build_tree(synthetic_stats, lang, cfg(min_leaf_count=frames))
    assert roots_only.num_leaves == len(roots_only.roots)
    with pytest.raises(TreeError, match="max_leaves 3 is below the number of roots"):
        build_tree(synthetic_stats, lang, cfg(max_leaves=3))


def test_pdf_classes_in_separate_roots(lang, synthetic_stats):
    tree = build_tree(synthetic_stats, lang, cfg(share_pdf_classes=False))
    assert tree.class_questions == []
    assert all(len(r.pdf_classes) == 1 for r in tree.roots)
    assert all(node[0] != -1 for node in tree.nodes if len(node) == 4)


def all_events(tree: Tree) -> tuple[torch.Tensor, torch.Tensor]:
    values = [0] + sorted(tree.phones.values())
    contexts, classes = [], []
    for root in tree.roots:
        for ctx in itertools.product(values, repeat=tree.context_width):
            if ctx[tree.central_position] in root.phones:
                for c in root.pdf_classes:
                    contexts.append(ctx)
                    classes.append(c)
    return torch.tensor(contexts), torch.tensor(classes)


def test_tree_file_round_trips(tmp_path, lang, synthetic_stats):
    tree = build_tree(synthetic_stats, lang, cfg(merge_threshold=50.0))
    tree.save(tmp_path / "tree.yaml")
    loaded = Tree.load(tmp_path)
    contexts, classes = all_events(tree)
    expected = [tree.leaf(tuple(c), k) for c, k in zip(contexts.tolist(), classes.tolist())]
    assert [loaded.leaf(tuple(c), k) for c, k in zip(contexts.tolist(), classes.tolist())] == expected
    assert loaded.leaf_ids(contexts, classes).tolist() == expected
    assert sorted(set(expected)) == list(range(tree.num_leaves))
    assert loaded.to_dict() == tree.to_dict()
    loaded.check_lang(lang.phones.sym2id, str(lang.path))


def test_every_trained_event_maps_to_a_leaf_with_frames(lang, synthetic_stats):
    tree = build_tree(synthetic_stats, lang, cfg())
    leaves = tree.leaf_ids(synthetic_stats.contexts, synthetic_stats.pdf_classes)
    counts = torch.zeros(tree.num_leaves, dtype=torch.float64).index_add_(0, leaves, synthetic_stats.stats[:, 0])
    assert counts.tolist() == pytest.approx(tree.leaf_counts)
    assert min(tree.leaf_counts) >= 5


def test_tree_file_is_checked(tmp_path, lang, synthetic_stats):
    tree = build_tree(synthetic_stats, lang, cfg())
    data = tree.to_dict()
    data["nodes"][0] = [0, 0, 0, 0]  # a cycle
    (tmp_path / "tree.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(TreeError, match=r"tree.yaml: nodes\[0\]: children must come after"):
        Tree.load(tmp_path / "tree.yaml")
    (tmp_path / "tree.yaml").write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(TreeError, match="invalid YAML"):
        Tree.load(tmp_path / "tree.yaml")
    with pytest.raises(TreeError, match="no such tree file"):
        Tree.load(tmp_path / "missing")
    with pytest.raises(TreeError, match="no root for phone id 0"):
        tree.leaf((0, 0, 0), 0)


# ---------------------------------------------------------------------------
# Config and CLI


def test_config_unknown_key_and_bad_value(tmp_path):
    path = tmp_path / "tree.yaml"
    path.write_text("max_leafs: 200\n")
    with pytest.raises(ConfigError, match=rf"{path}: unknown key 'max_leafs'"):
        load_tree_config(path)
    path.write_text("share_positions: 'no'\n")
    with pytest.raises(ConfigError, match=rf"{path}: 'share_positions' must be bool"):
        load_tree_config(path)
    path.write_text("context_width: 2\ncentral_position: 2\n")
    with pytest.raises(ConfigError, match=rf"{path}: 'central_position' must be in"):
        load_tree_config(path)


def test_cli_builds_and_shows(tmp_path, capsys, synthetic, lang):
    data, ali = synthetic
    conf = tmp_path / "tree.yaml"
    conf.write_text("deltas: false\nmin_leaf_count: 5\nsplit_threshold: 0.0\nmax_leaves: 12\n")
    extra = tmp_path / "extra.txt"
    extra.write_text("A_B B_B\n")
    out = tmp_path / "tree"
    rc, stdout, err = run_cli(capsys, "build-tree", "--ali-dir", ali, "--data", data, "--lang", lang.path, out,
                              "--config", conf, "--extra-questions", extra)
    assert rc == 0, err
    tree = Tree.load(out / "tree.yaml")
    assert f"{tree.num_leaves} leaves" in stdout and tree.num_leaves <= 12
    assert "A_B B_B" in (out / "questions.txt").read_text().splitlines()
    rc, shown, err = run_cli(capsys, "build-tree", "--show", out)
    assert rc == 0, err
    assert f"{tree.num_leaves} leaves" in shown.splitlines()[0]
    assert "root 1: {A_B A_E}" in shown and "ctx[-1] in q" in shown and "pdf-class in c0?" in shown
    assert shown.count("leaf ") >= tree.num_leaves


def test_cli_bad_inputs(tmp_path, capsys, synthetic, lang):
    data, ali = synthetic
    out = tmp_path / "tree"
    rc, _, err = run_cli(capsys, "build-tree", "--ali-dir", tmp_path / "none", "--data", data, "--lang", lang.path, out)
    assert_cli_error(rc, err, "build-tree", tmp_path / "none" / "ali.ark")
    extra = tmp_path / "extra.txt"
    extra.write_text("A_B\nA_B QQ\n")
    rc, _, err = run_cli(capsys, "build-tree", "--ali-dir", ali, "--data", data, "--lang", lang.path, out,
                         "--extra-questions", extra)
    assert_cli_error(rc, err, "build-tree", f"{extra}:2", "QQ")
    bad_ali = tmp_path / "ali"
    bad_ali.mkdir()
    (bad_ali / "info.yaml").write_text((ali / "info.yaml").read_text())
    with kaldiio.WriteHelper(f"ark:{bad_ali / 'ali.ark'}") as writer:
        pdfs = next(iter(kaldiio.load_ark(str(ali / "ali.ark"))))[1]
        writer("u000", np.concatenate([pdfs, pdfs[-1:]]).astype(np.int32))  # one frame too many
    rc, _, err = run_cli(capsys, "build-tree", "--ali-dir", bad_ali, "--data", data, "--lang", lang.path, out)
    assert_cli_error(rc, err, "build-tree", bad_ali / "ali.ark", "'u000'", data / "feats.scp")
    assert not (out / "tree.yaml").exists()


def test_build_from_a_trained_models_alignment(tmp_path, capsys, tiny):
    """End to end on an alignment by the tiny yesno model (3-state HMM, no subsampling)."""
    out, ali = tmp_path / "tree", tmp_path / "ali"
    rc, _, err = run_cli(capsys, "align", "--model-dir", tiny.model_dir, tiny.data, ali)
    assert rc == 0, err
    rc, _, err = run_cli(capsys, "build-tree", "--ali-dir", ali, "--data", tiny.data,
                         "--lang", tiny.lang, out, "--max-leaves", "8")
    assert rc == 0, err
    tree = Tree.load(out)
    lang = LangDir.load(tiny.lang)
    assert len(tree.roots) == len(lang.hmm_phones) and tree.num_leaves <= 8
    assert sum(tree.leaf_counts) > 0
    # Every pdf class of every phone in any context has a leaf.
    contexts, classes = all_events(tree)
    assert set(tree.leaf_ids(contexts, classes).tolist()) <= set(range(tree.num_leaves))
