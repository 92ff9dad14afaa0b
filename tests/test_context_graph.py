"""Context-dependent graphs (asr.lang.context_graph), tree langs, convert-ali and training on a tree."""

from __future__ import annotations

import random

import k2
import pytest
import torch

from asr.lang.context import pdf_map
from asr.lang.context_graph import ContextDependency, phone_topologies
from asr.lang.graph import compile_hlg
from asr.lang.grammar import WordListConfig, compile_grammar
from asr.lang.lang_dir import LangDir
from asr.training.align import read_alignments
from asr.training.graphs import NumeratorGraphCompiler
from asr.tree.build import build_tree
from asr.tree.convert import alignment_leaves, convert_alignments, write_tree_lang
from asr.tree.stats import accumulate_tree_stats
from asr.tree.tree import Root, Tree
from reliability_fixtures import assert_cli_error, run_cli
from test_tree import cfg, lang, synthetic, write_synthetic  # noqa: F401


@pytest.fixture(scope="module")
def tree_lang(tmp_path_factory, lang, synthetic) -> LangDir:  # noqa: F811
    """The synthetic corpus's triphone tree, written into a copy of the lang."""
    data, ali = synthetic
    stats = accumulate_tree_stats(ali, data, lang, 3, 1, False)
    root = tmp_path_factory.mktemp("tree_lang")
    build_tree(stats, lang, cfg(max_leaves=12)).save(root / "tree.yaml")
    return write_tree_lang(lang.path, root / "tree.yaml", root / "lang_tree")


def acceptor(fsa: k2.Fsa) -> k2.Fsa:
    """The FSA without aux labels and attributes (pdf labels and scores only)."""
    arcs = fsa.arcs.values().clone()
    arcs[:, 3] = fsa.scores.detach().view(torch.int32)
    return k2.arc_sort(k2.Fsa(arcs))


def paths(fsa: k2.Fsa, limit: int = 10_000) -> list[tuple[list[int], list[int]]]:
    """Every path of a small acyclic FSA: (labels without the final -1, aux words)."""
    arcs = fsa.arcs.values()[:, :3].tolist()
    aux = fsa.aux_labels
    splits, values = aux.shape.row_splits(1).tolist(), aux.values.tolist()
    out_arcs: dict[int, list[int]] = {}
    for i, (s, _, _) in enumerate(arcs):
        out_arcs.setdefault(s, []).append(i)
    found, stack = [], [(0, [], [])]
    while stack:
        s, labels, words = stack.pop()
        for i in out_arcs.get(s, []):
            w = words + [x for x in values[splits[i]:splits[i + 1]] if x > 0]
            if arcs[i][2] == -1:
                found.append((labels, w))
            else:
                stack.append((arcs[i][1], labels + [arcs[i][2]], w))
        assert len(found) < limit
    return found


def phone_fsa(lang: LangDir, sequences: list[tuple[list[str], int]]) -> k2.Fsa:
    """An acyclic phone acceptor with one branch per (phone names, word id) sequence."""
    lines, state = [], 1
    final = 1 + sum(len(p) for p, _ in sequences)
    for phones, word in sequences:
        src = 0
        for k, p in enumerate(phones):
            dst = state if k + 1 < len(phones) else final - 0
            if k + 1 < len(phones):
                state += 1
            lines.append(f"{src} {dst} {lang.phones[p]} {word if k == 0 else 0} 0.5")
            src = dst
    lines.sort(key=lambda line: int(line.split()[0]))
    fsa = k2.Fsa.from_str("\n".join(lines + [f"{final} {final + 1} -1 -1 0", f"{final + 1}"]), acceptor=False)
    fsa = k2.arc_sort(k2.connect(fsa))
    fsa.aux_labels = k2.RaggedTensor([[w] if w > 0 else [] for w in fsa.aux_labels.tolist()], dtype=torch.int32)
    return fsa


def test_context_expansion_matches_brute_force(tree_lang):
    """Each path of C o X carries the units of its phones in their windows, and the same words."""
    cd = tree_lang.context
    seqs = [(["A_B", "B_E"], 1), (["A_B", "B_I", "C_E"], 2), (["C_S"], 3), (["SIL", "C_S", "SIL"], 4)]
    X = phone_fsa(tree_lang, seqs)
    got = sorted((tuple(u), tuple(w)) for u, w in paths(cd.expand_context(X)))
    expected = []
    for phones, word in seqs:
        ids = [0] + [tree_lang.phones[p] for p in phones] + [0]
        units = [cd.unit(tuple(ids[i - 1 : i + 2])) for i in range(1, len(ids) - 1)]
        expected.append((tuple(units), (word,)))
    assert got == sorted(expected)


def test_hmm_expansion_accepts_exactly_the_units_pdf_sequences(tree_lang):
    """H o C o X accepts a unit's entry pdf then any number of self-loop pdfs, per unit, and nothing else."""
    cd = tree_lang.context
    X = phone_fsa(tree_lang, [(["A_B", "B_E"], 1)])
    HCX = acceptor(cd.compose(X))
    (units, _), = paths(cd.expand_context(X))
    rng = random.Random(0)

    def accepts(pdfs: list[int]) -> bool:
        lattice = k2.intersect(HCX, k2.arc_sort(k2.linear_fsa(pdfs)), treat_epsilons_specially=False)
        return k2.connect(lattice).num_arcs > 0

    for _ in range(20):
        seq = []
        for u in units:
            enter, loop = cd.units[u].pdfs
            seq += [enter] + [loop] * rng.randint(0, 3)
        assert accepts(seq)
    enter0, loop0 = cd.units[units[0]].pdfs
    other = next(p for p in range(1, cd.num_pdfs + 1) if p not in cd.units[units[1]].pdfs)
    assert not accepts([enter0, loop0, other])
    assert not accepts([enter0])  # the second phone is missing


def test_hclg_emits_only_leaves_with_statistics(tree_lang):
    """Every (context, pdf class) HCLG can emit maps to a leaf that had training frames."""
    grammar = compile_grammar(tree_lang, "word-loop", WordListConfig(word_list(tree_lang.path.parent)))
    HCLG = compile_hlg(tree_lang, grammar.G)
    cd = tree_lang.context
    emitted = set(HCLG.labels[HCLG.labels > 0].tolist())
    assert emitted <= set(range(1, cd.num_pdfs + 1))
    counts = cd.tree.leaf_counts
    assert all(counts[p - 1] > 0 for p in emitted)
    for context, uid in cd._by_context.items():
        unit = cd.units[uid]
        for c, pdf in enumerate(unit.pdfs):
            assert cd.tree.leaf(context, c) + 1 == pdf and counts[pdf - 1] > 0
    phones = set(HCLG.phones[HCLG.phones > 0].tolist())
    assert phones == {tree_lang.phones[p] for p in tree_lang.hmm_phones}


def word_list(folder):
    path = folder / "words.list"
    path.write_text("AB\nBA\nC\nABC\n", encoding="utf-8")
    return path


def monophone_tree(lang: LangDir) -> Tree:
    """A width-1 tree whose leaf of (phone, class) is that phone's own pdf - 1."""
    table = lang.pdf_table
    roots, nodes = [], []
    for j, phone in enumerate(lang.hmm_phones):
        for c in range(table.topologies[j].num_pdf_classes):
            roots.append(Root([lang.phones[phone]], [c], len(nodes)))
            nodes.append([table.pdf_id(j, c) - 1])
    return Tree(1, 0, dict(lang.phones.sym2id), [], [], roots, nodes, [1.0] * table.num_pdfs)


def test_monophone_tree_graph_equals_hlg(tmp_path, lang):  # noqa: F811
    """Without context, H o C o LG is HLG: equivalent acceptors and the same best words."""
    monophone_tree(lang).save(tmp_path / "mono_tree.yaml")
    mono_cd = write_tree_lang(lang.path, tmp_path / "mono_tree.yaml", tmp_path / "lang_mono_tree")
    grammar = compile_grammar(lang, "word-loop", WordListConfig(word_list(tmp_path)))
    HLG, HCLG = compile_hlg(lang, grammar.G), compile_hlg(mono_cd, grammar.G)
    assert k2.is_rand_equivalent(acceptor(HLG), acceptor(HCLG), log_semiring=True, delta=1e-4, npath=200)
    torch.manual_seed(0)
    scores = torch.randn(1, 30, lang.num_pdfs + 1).log_softmax(-1)
    dense = k2.DenseFsaVec(scores, torch.tensor([[0, 0, 30]], dtype=torch.int32))
    best = [k2.shortest_path(k2.intersect_dense(g, dense, output_beam=20.0), use_double_scores=True)
            for g in (HLG, HCLG)]
    words = [b.aux_labels.values[b.aux_labels.values > 0].tolist() for b in best]
    assert words[0] == words[1]
    assert float(best[0].get_tot_scores(True, False)) == pytest.approx(float(best[1].get_tot_scores(True, False)))


def transcribed_alignments(lang: LangDir, tmp_path, num_utts: int = 12):
    """Monophone alignments of random transcripts (pdf ids per output frame) written as an ali dir."""
    from asr.training.align import write_alignment_ark

    rng, table, lexicon = random.Random(1), lang.pdf_table, dict(lang.lexicon)
    texts, alis = {}, {}
    for i in range(num_utts):
        words = rng.choices(["AB", "BA", "C", "ABC"], k=rng.randint(1, 3))
        pdfs = []
        for phone in ["SIL"] + [p for w in words for p in lexicon[w]] + ["SIL"]:
            j = lang.hmm_phones.index(phone)
            pdfs += [table.pdf_id(j, 0)] + [table.pdf_id(j, table.topologies[j].states[0].loop)] * rng.randint(0, 3)
        texts[f"u{i:02d}"], alis[f"u{i:02d}"] = words, torch.tensor(pdfs)
    write_alignment_ark(alis, tmp_path / "ali")
    (tmp_path / "ali" / "info.yaml").write_text("frame_shift: 0.03\n")
    return texts, alis


def test_convert_ali_gives_paths_of_the_tree_numerator_graphs(tmp_path, lang, tree_lang):  # noqa: F811
    texts, alis = transcribed_alignments(lang, tmp_path)
    n = convert_alignments(tmp_path / "ali", lang.path, tree_lang.path, tmp_path / "ali_tree")
    converted = read_alignments(tmp_path / "ali_tree")
    assert n == len(alis) == len(converted)
    compiler = NumeratorGraphCompiler(tree_lang)
    for utt, pdfs in converted.items():
        assert len(pdfs) == len(alis[utt]) and int(pdfs.max()) <= tree_lang.num_pdfs
        assert torch.equal(pdfs, alignment_leaves(alis[utt], lang, tree_lang.context.tree))
        ids, _ = compiler.words_to_ids(texts[utt])
        graph = acceptor(compiler.compile([ids]))
        lattice = k2.intersect(graph, k2.arc_sort(k2.linear_fsa(pdfs.tolist())), treat_epsilons_specially=False)
        assert k2.connect(lattice).num_arcs > 0, utt


def test_pdf_map_to_tree_leaves(lang, tree_lang):  # noqa: F811
    """Each leaf is stood in for by a monophone pdf of a phone of the leaf's root, and of a class it models."""
    mapping = pdf_map(lang, tree_lang)
    assert mapping.shape == (tree_lang.num_pdfs + 1,)
    tree, table = tree_lang.context.tree, lang.pdf_table
    pdf_phone = lang.pdf_to_phone()
    for context, uid in tree_lang.context._by_context.items():
        for c, pdf in enumerate(tree_lang.context.units[uid].pdfs):
            root = tree.roots[tree.root_index(context[1], c)]
            assert int(pdf_phone[mapping[pdf]]) in root.phones


def test_tree_lang_errors(tmp_path, capsys, lang, tree_lang):  # noqa: F811
    with pytest.raises(Exception, match="no pdf -> phone map"):
        tree_lang.pdf_to_phone()
    rc, _, err = run_cli(capsys, "convert-ali", tmp_path / "nope", tmp_path / "out", "--lang", tree_lang.path,
                         "--tree-lang", tree_lang.path)
    assert_cli_error(rc, err, "convert-ali", "monophone")


def test_train_align_and_decode_on_a_tree(tmp_path, capsys, tiny):
    """yesno end to end on a tree: align, build-tree --lang-out, convert-ali, CE from the monophone model,
    align with the tree model, MMI, compile HCLG and decode."""
    ali, tree_dir, tlang = tmp_path / "ali", tmp_path / "tree", tmp_path / "lang_tree"
    conf = tmp_path / "ce.yaml"
    conf.write_text(tiny.train_conf.read_text().replace("criterion: flat-start", "criterion: ce")
                    .replace("prior_scale: 1.0\nprior_warmup_steps: 0\n", "").replace("epochs: 2", "epochs: 30"),
                    encoding="utf-8")
    mmi = tmp_path / "mmi.yaml"
    mmi.write_text(conf.read_text().replace("criterion: ce", "criterion: mmi\nuse_priors: true\nden_order: 2")
                   .replace("epochs: 30", "epochs: 1"), encoding="utf-8")
    steps = [
        ["align", "--model-dir", tiny.model_dir, tiny.data, ali],
        ["build-tree", "--ali-dir", ali, "--data", tiny.data, "--lang", tiny.lang, tree_dir, "--max-leaves", "10",
         "--lang-out", tlang],
        ["convert-ali", ali, tmp_path / "ali_tree", "--lang", tiny.lang, "--tree-lang", tlang],
        ["compile-graph", tlang, tmp_path / "graph", "--text", tiny.data / "text", "--order", "1"],
        ["train", "--config", conf, "--data", tiny.data, "--lang", tlang, "--out", tmp_path / "ce",
         "--ali-dir", tmp_path / "ali_tree", "--init-model-dir", tiny.model_dir, "--graph-dir", tmp_path / "graph"],
        ["align", "--model-dir", tmp_path / "ce", tiny.data, tmp_path / "ce_ali"],
        ["train", "--config", mmi, "--data", tiny.data, "--lang", tlang, "--out", tmp_path / "mmi",
         "--ali-dir", tmp_path / "ce_ali", "--init-model-dir", tmp_path / "ce", "--graph-dir", tmp_path / "graph"],
        ["decode", "--model-dir", tmp_path / "mmi", "--graph-dir", tmp_path / "graph", tiny.data, tmp_path / "dec"],
    ]
    for argv in steps:
        rc, out, err = run_cli(capsys, *argv)
        assert rc == 0, (argv[0], err[-2000:])
    tree_lang = LangDir.load(tlang)
    assert tree_lang.context is not None and tree_lang.num_pdfs <= 10
    realigned = read_alignments(tmp_path / "ce_ali")
    assert realigned and max(int(a.max()) for a in realigned.values()) <= tree_lang.num_pdfs
    hyp = (tmp_path / "dec" / "text").read_text().split()
    assert set(hyp) - set((tiny.data / "text").read_text().split()) == set()
    assert {"YES", "NO"} & set(hyp), "the tree model recognizes nothing"
    ctm = (tmp_path / "dec" / "ctm").read_text().splitlines()
    assert ctm and all(len(l.split()) == 6 for l in ctm)
    # asr transcribe on a tree model: the same words as the decode (same graph and config).
    utt, wav = (tiny.data / "wav.scp").read_text().splitlines()[0].split(" ", 1)
    decoded = dict((l.split(" ", 1) + [""])[:2] for l in (tmp_path / "dec" / "text").read_text().splitlines())
    rc, out, err = run_cli(capsys, "transcribe", "--model-dir", tmp_path / "mmi", "--graph-dir", tmp_path / "graph", wav)
    assert rc == 0, err
    assert out.strip().split("\t", 1)[1].split() == decoded[utt].split()
