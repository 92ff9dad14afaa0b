"""Lattice word posteriors (asr.decoding.confidence) and exact n-best lists (asr.decoding.nbest).

Hand-made lattices follow the decoder's: one arc per frame, ``phones`` (the
phone an arc enters, 0 inside a phone, -1 on final arcs), word ``aux_labels``
that may sit frames after the word's first phone, ``am_scores`` and
``lm_scores``.
"""

from __future__ import annotations

import itertools
import math

import k2
import pytest
import torch

from asr.decoding.confidence import (LexiconIndex, WordMatcher, _utterance_arrays, align_lattice_words,
                                     prune_for_posteriors, word_posteriors)
from asr.decoding.nbest import NbestEntry, expected_errors, mbr_choice, nbest_lists
from asr.decoding.search import decode_scores, read_paths, rescore_best_paths

SIL, N, OW, Y, EH = 1, 2, 4, 3, 5  # phone ids
NO, YES, KNOW = 3, 4, 5  # word ids
LEXICON = LexiconIndex.build({NO: [(N, OW)], YES: [(Y, EH)], KNOW: [(N, OW)]}, {SIL})

# (src, dst, pdf, phone entered, words, am, lm); pdf -1 marks the final arc.
Arc = tuple[int, int, int, int, tuple[int, ...], float, float]


def make_lattice(arcs: list[Arc]) -> k2.Fsa:
    """An FsaVec of one lattice with the decoder's attributes (arcs given sorted by source state)."""
    table = torch.tensor([[s, d, pdf, 0] for s, d, pdf, *_ in arcs], dtype=torch.int32)
    am = torch.tensor([a[5] for a in arcs], dtype=torch.float32)
    lm = torch.tensor([a[6] for a in arcs], dtype=torch.float32)
    table[:, 3] = (am + lm).view(torch.int32)
    fsa = k2.Fsa(table, aux_labels=k2.RaggedTensor([list(a[4]) for a in arcs], dtype=torch.int32))
    fsa.phones = torch.tensor([a[3] for a in arcs], dtype=torch.int32)
    fsa.am_scores = am
    fsa.lm_scores = lm
    return k2.create_fsa_vec([fsa])


def paths_of(src: list[int], dst: list[int], final_state: int) -> list[list[int]]:
    """All paths (lists of arc indices) from state 0 to ``final_state`` of a small acyclic FSA."""
    out: list[list[int]] = []
    leaving: dict[int, list[int]] = {}
    for a, s in enumerate(src):
        leaving.setdefault(s, []).append(a)

    def walk(state: int, prefix: list[int]) -> None:
        if state == final_state:
            out.append(prefix)
        for a in leaving.get(state, []):
            walk(dst[a], prefix + [a])

    walk(0, [])
    return out


def aligned_of(lattice: k2.Fsa, scores: torch.Tensor, lexicon: LexiconIndex = LEXICON):
    (arrays,) = _utterance_arrays(lattice, scores)
    return arrays, align_lattice_words(arrays, WordMatcher(lexicon))


# Frames 0-5: SIL or NO first, alternative word boundaries that merge again, then NO alone or NO YES.
BRANCHING = [
    (0, 1, 1, SIL, (), -0.5, -0.2),
    (0, 2, 2, N, (NO,), -1.0, -0.7),
    (1, 3, 1, 0, (), -0.4, 0.0),
    (1, 4, 2, N, (NO,), -0.9, -0.6),
    (2, 4, 2, 0, (), -0.3, 0.0),
    (3, 5, 2, N, (NO,), -1.2, -0.6),
    (4, 6, 3, OW, (), -0.8, 0.0),
    (5, 7, 3, OW, (), -0.6, 0.0),
    (6, 7, 3, 0, (), -0.2, 0.0),
    (6, 8, 4, Y, (YES,), -1.5, -1.1),
    (7, 9, 1, SIL, (), -0.7, -0.1),
    (7, 10, 3, 0, (), -0.5, 0.0),
    (8, 11, 5, EH, (), -0.4, 0.0),
    (9, 12, 1, 0, (), -0.3, 0.0),
    (10, 12, 1, SIL, (), -0.9, -0.1),
    (11, 13, 5, 0, (), -0.2, 0.0),
    (12, 14, -1, -1, (), 0.0, 0.0),
    (13, 14, -1, -1, (), 0.0, -0.3),
]


def test_every_lattice_path_is_one_aligned_path_and_path_posteriors_sum_to_1():
    lattice = make_lattice(BRANCHING)
    scores = decode_scores(lattice, 1.0, 0.3, 0.5)
    arrays, aligned = aligned_of(lattice, scores)
    original = paths_of(arrays.src, arrays.dst, arrays.num_states - 1)
    assert len(original) == 8
    fsa = aligned.fsa
    arcs = fsa.arcs.values()
    paths = paths_of(arcs[:, 0].tolist(), arcs[:, 1].tolist(), fsa.shape[0] - 1)
    # Each aligned path is an original path (through arc_map), each original path exactly once.
    as_original = sorted(aligned.arc_map[p].tolist() for p in paths)
    assert as_original == sorted(original)
    log_total = torch.logsumexp(torch.tensor([float(scores[p].double().sum()) for p in original], dtype=torch.float64), 0)
    probs = [math.exp(float(fsa.scores[p].double().sum()) - float(log_total)) for p in paths]
    assert sum(probs) == pytest.approx(1.0, abs=1e-9)
    # Arc posteriors: at every frame they sum to 1.
    post = k2.create_fsa_vec([fsa]).get_arc_post(use_double_scores=True, log_semiring=True).exp()
    for t in range(6):
        assert float(post[aligned.frame == t].sum()) == pytest.approx(1.0, abs=1e-6), t


def test_word_spans_come_from_phones_not_from_where_labels_sit():
    # One path: N OW Y EH with both word labels on the last frame's arc.
    lattice = make_lattice([
        (0, 1, 2, N, (), -1.0, 0.0),
        (1, 2, 3, OW, (), -1.0, 0.0),
        (2, 3, 4, Y, (), -1.0, 0.0),
        (3, 4, 5, EH, (NO, YES), -1.0, -2.0),
        (4, 5, -1, -1, (), 0.0, 0.0),
    ])
    _, aligned = aligned_of(lattice, decode_scores(lattice, 1.0, 0.0, 1.0))
    starts = {int(t): int(w) for t, w in zip(aligned.frame, aligned.start_word) if w}
    spans = [int(w) for w in aligned.span_word[aligned.frame < 4]]
    assert starts == {0: NO, 2: YES}
    assert spans == [NO, NO, YES, YES]


def test_single_path_lattice_gives_posterior_1_and_homophones_are_told_apart_by_their_label():
    # KNOW and NO share a pronunciation; the label (two frames late) says which.
    lattice = make_lattice([
        (0, 1, 1, SIL, (), -0.3, 0.0),
        (1, 2, 2, N, (), -1.0, 0.0),
        (2, 3, 3, OW, (), -1.0, 0.0),
        (3, 4, 4, Y, (KNOW,), -2.0, -1.0),
        (4, 5, 5, EH, (YES,), -1.0, -0.5),
        (5, 6, -1, -1, (), 0.0, 0.0),
    ])
    scores = decode_scores(lattice, 1.0, 0.0, 1.0)
    _, aligned = aligned_of(lattice, scores)
    assert aligned.fsa.num_arcs == 6  # the NO guess died when the KNOW label came
    assert int((aligned.start_word == KNOW).sum()) == 1 and int((aligned.start_word == NO).sum()) == 0
    (conf,) = word_posteriors(lattice, scores, [[(1, 2, KNOW), (3, 2, YES)]], LEXICON)
    assert conf == pytest.approx([1.0, 1.0], abs=1e-6)


# Two paths.  A: SIL, NO (label one frame late), YES (label on the word's last frame).
# B: NO over frames 0-4 (label on its first arc), then SIL.
TWO_PATHS = [
    (0, 1, 1, SIL, (), -0.5, 0.0),
    (0, 6, 2, N, (NO,), -1.5, -1.2),
    (1, 2, 2, N, (), -0.7, 0.0),
    (2, 3, 3, OW, (NO,), -0.6, -1.0),
    (3, 4, 4, Y, (), -0.9, 0.0),
    (4, 5, 5, EH, (), -0.4, 0.0),
    (5, 11, 5, 0, (YES,), -0.3, -1.5),
    (6, 7, 2, 0, (), -0.8, 0.0),
    (7, 8, 3, OW, (), -0.9, 0.0),
    (8, 9, 3, 0, (), -0.5, 0.0),
    (9, 10, 1, SIL, (), -0.2, -0.3),
    (10, 11, 1, 0, (), -0.4, 0.0),
    (11, 12, -1, -1, (), 0.0, 0.0),
]


def test_two_path_lattice_posteriors_match_a_hand_computation():
    lattice = make_lattice(TWO_PATHS)
    ac, wp = 0.5, 0.3
    # By hand: s = ac * am + lm - wp * words per path.
    s_a = ac * (-0.5 - 0.7 - 0.6 - 0.9 - 0.4 - 0.3) + (-1.0 - 1.5) - wp * 2
    s_b = ac * (-1.5 - 0.8 - 0.9 - 0.5 - 0.2 - 0.4) + (-1.2 - 0.3) - wp * 1
    p_a = 1.0 / (1.0 + math.exp(s_b - s_a))
    best = read_paths(rescore_best_paths(lattice, 1.0, wp, ac), [6])[0]
    assert best.word_ids == ([NO, YES] if s_a > s_b else [NO])
    scores = decode_scores(lattice, 1.0, wp, ac)
    # A's NO spans frames 1-2 and B's NO (frames 0-4) runs through it: 1.  Only A has YES (frames 3-5): P(A).
    # B's NO (frames 0-4) overlaps A's NO (starts at frame 1): 1.  A YES on a span B has no YES on: P(A).
    (conf_a,) = word_posteriors(lattice, scores, [[(1, 2, NO), (3, 3, YES)]], LEXICON)
    (conf_b,) = word_posteriors(lattice, scores, [[(0, 5, NO)]], LEXICON)
    (conf_no_late,) = word_posteriors(lattice, scores, [[(5, 1, NO)]], LEXICON)
    assert conf_a == pytest.approx([1.0, p_a], abs=1e-6)
    assert conf_b == pytest.approx([1.0], abs=1e-6)
    assert conf_no_late == pytest.approx([0.0], abs=1e-6)  # no path has NO at frame 5
    assert 0.05 < p_a < 0.95  # a real split, not a degenerate lattice



def test_pruning_drops_only_paths_below_the_threshold_and_keeps_the_attributes():
    lattice = make_lattice(TWO_PATHS)
    scores = decode_scores(lattice, 1.0, 0.3, 0.5)
    post = lattice.clone()
    post.scores = scores
    arc_post = post.get_arc_post(True, True).exp()
    p_min = float(arc_post.min())  # the less likely path's arcs
    kept, kept_scores = prune_for_posteriors(lattice, scores, threshold=p_min / 2)
    assert kept.num_arcs == lattice.num_arcs
    dropped, dropped_scores = prune_for_posteriors(lattice, scores, threshold=p_min * 1.5)
    assert 0 < dropped.num_arcs < lattice.num_arcs
    assert dropped.phones.shape[0] == dropped.num_arcs and dropped_scores.shape[0] == dropped.num_arcs
    # What is left is the one path through the likelier arcs: its words get posterior 1.
    best = read_paths(rescore_best_paths(lattice, 1.0, 0.3, 0.5), [6])[0]
    segments = [(1, 2, NO), (3, 3, YES)] if best.word_ids == [NO, YES] else [(0, 5, NO)]
    (conf,) = word_posteriors(dropped, dropped_scores, [segments], LEXICON)
    assert conf == pytest.approx([1.0] * len(segments), abs=1e-6)


@pytest.mark.parametrize("scale", [0.25, 0.5, 2.0])
def test_confidence_scale_tempers_the_path_posteriors(scale):
    # The decode config's confidence_scale multiplies the scores before the forward-backward:
    # P(A) becomes sigmoid(scale * (s_A - s_B)), flatter below 1 and sharper above.
    lattice = make_lattice(TWO_PATHS)
    ac, wp = 0.5, 0.3
    scores = decode_scores(lattice, 1.0, wp, ac)
    s_a = ac * (-0.5 - 0.7 - 0.6 - 0.9 - 0.4 - 0.3) + (-1.0 - 1.5) - wp * 2
    s_b = ac * (-1.5 - 0.8 - 0.9 - 0.5 - 0.2 - 0.4) + (-1.2 - 0.3) - wp * 1
    (conf,) = word_posteriors(lattice, scale * scores, [[(1, 2, NO), (3, 3, YES)]], LEXICON)
    assert conf == pytest.approx([1.0, 1.0 / (1.0 + math.exp(scale * (s_b - s_a)))], abs=1e-6)


# --- n-best -------------------------------------------------------------------------------------


def random_lattice(seed: int, frames: int = 5, width: int = 3) -> k2.Fsa:
    """A trellis of ``width`` states per frame, fully connected, with random words (0-2 per arc) and scores."""
    g = torch.Generator().manual_seed(seed)
    arcs: list[Arc] = []
    state = lambda t, k: 0 if t == 0 else 1 + (t - 1) * width + k  # noqa: E731
    final = 1 + (frames - 1) * width
    for t in range(frames):
        sources = [0] if t == 0 else range(width)
        for k in sources:
            for k2_ in range(width) if t < frames - 1 else [0]:
                dst = state(t + 1, k2_) if t < frames - 1 else final
                n = int(torch.randint(0, 3, (1,), generator=g))
                words = tuple(int(w) for w in torch.randint(3, 6, (n,), generator=g))
                am, lm = torch.randn(2, generator=g).tolist()
                arcs.append((state(t, k), dst, 1 + k2_, 0, words, am, lm))
    arcs.append((final, final + 1, -1, -1, (), 0.0, 0.0))
    return make_lattice(sorted(arcs, key=lambda a: a[0]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nbest_is_exact_distinct_in_cost_order_and_starts_with_the_1best(seed):
    lattice = random_lattice(seed)
    ac, wp = 0.7, 0.4
    scores = decode_scores(lattice, 1.0, wp, ac)
    (arrays,) = _utterance_arrays(lattice, scores)
    # Brute force: every path, the best one per word sequence.
    best_per_words: dict[tuple[int, ...], tuple[float, float, float]] = {}
    for p in paths_of(arrays.src, arrays.dst, arrays.num_states - 1):
        words = tuple(itertools.chain.from_iterable(arrays.words[a] for a in p))
        s = float(scores[p].double().sum())
        if words not in best_per_words or s > best_per_words[words][0]:
            best_per_words[words] = (s, -float(lattice.am_scores[p].sum()), -float(lattice.lm_scores[p].sum()))
    expected = sorted(best_per_words.items(), key=lambda kv: -kv[1][0])[:6]
    assert len(best_per_words) > 6  # the list is cut, so its order matters
    (nbest,) = nbest_lists(lattice, 6, 1.0, wp, ac)
    assert [tuple(e.word_ids) for e in nbest] == [w for w, _ in expected]
    for e, (_, (s, ac_cost, lm_cost)) in zip(nbest, expected):
        assert e.score == pytest.approx(s, abs=1e-4)
        assert e.ac_cost == pytest.approx(ac_cost, abs=1e-4) and e.lm_cost == pytest.approx(lm_cost, abs=1e-4)
    one_best = read_paths(rescore_best_paths(lattice, 1.0, wp, ac), [arrays.num_states])[0]
    assert nbest[0].word_ids == one_best.word_ids


def test_nbest_of_a_lattice_with_fewer_sequences_returns_them_all():
    (nbest,) = nbest_lists(make_lattice(TWO_PATHS), 5, 1.0, 0.3, 0.5)
    assert sorted(tuple(e.word_ids) for e in nbest) == [(NO,), (NO, YES)]
    assert nbest[0].score >= nbest[1].score


def test_nbest_mbr_picks_the_least_expected_errors_by_hand():
    # Posteriors 0.4 / 0.3 / 0.3: E = 0.3*1 + 0.3*2 = 0.9, 0.4*1 + 0.3*1 = 0.7, 0.4*2 + 0.3*1 = 1.1.
    entries = [NbestEntry([1, 2], math.log(0.4), 0.0, 0.0), NbestEntry([1, 3], math.log(0.3), 0.0, 0.0),
               NbestEntry([1, 3, 4], math.log(0.3), 0.0, 0.0)]
    assert expected_errors(entries) == pytest.approx([0.9, 0.7, 1.1])
    assert mbr_choice(entries) == 1  # not the Viterbi best (index 0)
    assert mbr_choice(entries, scale=20.0) == 0  # a sharp distribution: the best is its own MBR choice
    assert mbr_choice(entries[:1]) == 0 and mbr_choice([]) == -1


# --- the yesno recipe's decode dir (decode_fixtures) ---------------------------------------------


def lattice_1best(yesno):
    """Per utterance of the recipe's decode: (1-best words, segments, lattice posteriors), recomputed from its lattices."""
    from asr.decoding.ctm import WordAligner
    from asr.decoding.decode_dir import load_lattices
    from asr.decoding.search import SearchConfig
    from asr.lang.lang_dir import LangDir

    aligner = WordAligner(LangDir.load(yesno.model_dir / "lang"))
    lexicon = LexiconIndex.build(aligner.prons, aligner.silence)
    word_penalty = SearchConfig().word_penalty  # the recipe decodes with asr/conf/decode.yaml
    out = {}
    for utts, lat, acoustic_scale in load_lattices(yesno.decode_dir, 1):
        paths = read_paths(rescore_best_paths(lat, 1.0, word_penalty, acoustic_scale), [0] * len(utts))
        for p in paths:
            p.num_frames = len(p.frame_pdfs)  # a complete path has one arc per frame
        segments = [aligner.segments(p) for p in paths]
        posts = word_posteriors(lat, decode_scores(lat, 1.0, word_penalty, acoustic_scale), segments, lexicon)
        for u, p, segs, post in zip(utts, paths, segments, posts):
            out[u] = ([aligner.lang.words.get(w) for w in p.word_ids], segs, post)
    return out


def test_ctm_confidences_are_lattice_word_posteriors_and_text_is_the_lattice_1best(yesno):
    from decode_fixtures import read_ctm, read_table

    ctm = read_ctm(yesno.decode_dir / "ctm")
    text = read_table(yesno.decode_dir / "text")
    recomputed = lattice_1best(yesno)
    assert {u: " ".join(w) for u, (w, _, _) in recomputed.items()} == text
    by_utt: dict[str, list[float]] = {}
    for utt, _, _, _, _, conf in ctm:
        assert 0.0 <= conf <= 1.0
        by_utt.setdefault(utt, []).append(conf)
    for utt, (words, _, post) in recomputed.items():
        assert post is not None and len(post) == len(words) == len(by_utt.get(utt, []))
        assert by_utt.get(utt, []) == pytest.approx(post, abs=5e-4), utt  # the CTM writes 3 decimals
    # The yesno model is sure of its words, but the lattices are not all one path.
    all_conf = [c for cs in by_utt.values() for c in cs]
    assert sum(all_conf) / len(all_conf) > 0.8


def test_decode_nbest_writes_kaldi_lists_whose_first_entry_is_the_text(yesno, tmp_path):
    from decode_fixtures import copy_decode_dir, read_table

    from asr.cli import main

    out = copy_decode_dir(yesno.decode_dir, tmp_path / "decode")
    assert main(["decode", "--model-dir", str(yesno.model_dir), str(yesno.test_dir), str(out), "--nbest", "3"]) == 0
    text = read_table(yesno.decode_dir / "text")
    nbest, ac, lm = (read_table(out / "nbest" / name) for name in ("text", "ac_cost", "lm_cost"))
    assert list(nbest) == list(ac) == list(lm)
    per_utt: dict[str, list[str]] = {}
    for key in nbest:
        utt, _, rank = key.rpartition("-")
        per_utt.setdefault(utt, []).append(key)
        assert int(rank) == len(per_utt[utt]) <= 3
    assert sorted(per_utt) == sorted(text)
    acoustic_scale = 0.1  # asr/conf/decode.yaml, penalty 0
    for utt, keys in per_utt.items():
        assert nbest[keys[0]] == text[utt]
        assert len({nbest[k] for k in keys}) == len(keys)
        costs = [acoustic_scale * float(ac[k]) + float(lm[k]) for k in keys]
        assert costs == sorted(costs)
    assert any(len(keys) > 1 for keys in per_utt.values())
    assert (out / "text").read_bytes() == (yesno.decode_dir / "text").read_bytes()


# --- the calibration benchmark's figures (benchmarks/confidence.py) ------------------------------


def test_nce_auc_and_calibration_map_on_known_cases(monkeypatch):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not installed
    from benchmarks.confidence import calibrated, fit_calibration, nce, roc_auc

    correct = [True, True, True, False]
    assert nce([0.75] * 4, correct) == pytest.approx(0.0, abs=1e-12)  # the prior: no information
    assert nce([1.0, 1.0, 1.0, 0.0], correct) > 0.99  # right and sure (clipped at 1e-4)
    assert nce([0.0, 0.0, 0.0, 1.0], correct) < 0  # sure and wrong
    assert roc_auc([0.9, 0.8, 0.7, 0.1], correct) == 1.0
    assert roc_auc([0.1, 0.2, 0.3, 0.9], correct) == 0.0
    assert roc_auc([0.5, 0.5, 0.9, 0.5], correct) == pytest.approx((0.5 + 0.5 + 1.0) / 3)  # ties count half
    # An overconfident score: the fitted map pulls it towards the observed accuracy, and NCE rises.
    conf = [0.999] * 9 + [0.6] * 3
    ok = [True] * 8 + [False] + [True, False, False]
    ab = fit_calibration(conf, ok)
    mapped = calibrated(conf, ab)
    assert mapped[0] == pytest.approx(8 / 9, abs=1e-3) and mapped[-1] == pytest.approx(1 / 3, abs=1e-3)
    assert nce(mapped, ok) > nce(conf, ok)
