"""Lattice-free sMBR (asr/training/smbr.py): expected accuracy and gradient against path enumeration."""

from __future__ import annotations

import math
from types import SimpleNamespace

import k2
import pytest
import torch
from helpers_tiny import one_hot_log_probs, train_config
from reliability_fixtures import run_cli

from asr.errors import ConfigError
from asr.training.lfmmi import _arc_list, build_denominator_graph, phones_from_transcripts
from asr.training.smbr import SmbrCriterion, accuracy_classes

BIG_BEAM = {"output_beam": 1e4, "den_output_beam": 1e4}


@pytest.fixture
def chain_lang(tiny_chain_lang):
    # Two one-phone words plus silence, chain topology: pdfs SIL_0=1, PA_0=2, PA_1=3, PB_0=4, PB_1=5.
    return tiny_chain_lang


def tiny_den(lang, leaky: float = 0.0) -> k2.Fsa:
    seqs = phones_from_transcripts(lang, [["A", "B"], ["B"], ["A", "A"]])
    return build_denominator_graph(lang, seqs, order=2, leaky_hmm_coefficient=leaky)


def enumerate_paths(fsa: k2.Fsa, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every path of ``frames`` labelled arcs then a final arc: (graph scores (P,) float64, pdf labels (P, T))."""
    arcs = _arc_list(fsa)
    final = max(max(a[0], a[1]) for a in arcs)
    out: dict[int, list] = {}
    for a in arcs:
        out.setdefault(a[0], []).append(a)
    paths: list[tuple[float, list[int]]] = []

    def walk(state: int, score: float, labels: list[int]) -> None:
        for _, dst, label, w in out.get(state, []):
            if len(labels) == frames:
                if label == -1 and dst == final:
                    paths.append((score + w, labels))
            elif label > 0:
                walk(dst, score + w, labels + [label])

    walk(0, 0.0, [])
    assert paths
    return torch.tensor([p[0] for p in paths], dtype=torch.float64), torch.tensor([p[1] for p in paths])


def brute_force(den: k2.Fsa, scores: torch.Tensor, ref: torch.Tensor, classes: torch.Tensor,
                scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``E[A] = sum_p exp(score_p) * A_p / Z`` by enumeration, and the classic derivative.

    ``scores``: (T, S) float64 acoustic scores (column ``i`` is pdf ``i + 1``), scaled by ``scale``
    in the path scores.  Returns ``(E[A], grad)`` with ``grad[t, s] = scale * sum_p P_p [pdf_p(t) = s + 1]
    (A_p - E[A])``, the gradient of Povey's sMBR (gamma times accuracy above average).
    """
    graph, labels = enumerate_paths(den, scores.shape[0])
    frame = scale * scores.gather(1, (labels - 1).T).sum(0)  # (P,)
    post = torch.softmax(graph + frame, 0)
    acc = (classes[labels] == classes[ref][None, :]).double().sum(1)  # A_p
    exp_acc = (post * acc).sum()
    grad = torch.zeros_like(scores, dtype=torch.float64)
    weight = (post * (acc - exp_acc)).detach()
    for t in range(scores.shape[0]):
        grad[t].index_add_(0, labels[:, t] - 1, scale * weight)
    return exp_acc, grad


REFS = [torch.tensor([1, 2, 3, 4, 1]), torch.tensor([1, 4, 5, 1])]


@pytest.mark.parametrize("accuracy,scale,leaky,priors", [("phone", 1.0, 0.0, False), ("pdf", 0.7, 0.1, True)])
def test_expected_accuracy_and_gradient_match_brute_force(chain_lang, accuracy, scale, leaky, priors):
    den = tiny_den(chain_lang, leaky)
    torch.manual_seed(0)
    log_priors = torch.randn(chain_lang.num_pdfs).log_softmax(-1) if priors else None
    crit = SmbrCriterion(chain_lang, den, dict(BIG_BEAM, accuracy=accuracy, acoustic_scale=scale), log_priors)
    lengths = torch.tensor([len(r) for r in REFS])
    x = torch.randn(2, 5, chain_lang.num_pdfs).log_softmax(-1).requires_grad_(True)
    out = crit.loss(x, lengths, REFS)
    out.loss.backward()
    assert out.frames == 9 and out.stats["unalignable"] == 0
    classes = accuracy_classes(chain_lang, accuracy)
    total = 0.0
    for i, ref in enumerate(REFS):
        T = len(ref)
        x64 = x.detach()[i, :T].double().requires_grad_(True)
        scores = x64 - log_priors.double() if priors else x64
        exp_acc, classic = brute_force(den, scores, ref, classes, scale)
        (autograd,) = torch.autograd.grad(exp_acc, x64)
        total += float(exp_acc.detach())
        # The loss is -E[A]: its gradient is minus the brute-force gradient, padded frames get none.
        assert torch.allclose(-x.grad[i, :T].double(), autograd, atol=1e-5)
        assert torch.allclose(autograd, classic, atol=1e-8)
        assert float(x.grad[i, T:].abs().sum()) == 0.0
    assert -float(out.loss.detach()) == pytest.approx(total, abs=1e-4)
    assert out.stats["expected_acc"] == pytest.approx(total, abs=1e-4)


def test_phone_accuracy_counts_both_pdfs_of_the_phone(chain_lang):
    phone = accuracy_classes(chain_lang, "phone")
    assert int(phone[2]) == int(phone[3]) != int(phone[4]) == int(phone[5])  # PA_0, PA_1 | PB_0, PB_1
    assert accuracy_classes(chain_lang, "auto").tolist() == phone.tolist()
    assert accuracy_classes(chain_lang, "pdf").tolist() == list(range(chain_lang.num_pdfs + 1))
    # A lang with a tree: leaves name no phone, so auto is pdf identity and phone is refused.
    def no_phones():
        raise ValueError("tree leaves are not phone-specific")

    tree = SimpleNamespace(context=object(), num_pdfs=7, pdf_to_phone=no_phones)
    assert accuracy_classes(tree, "auto").tolist() == list(range(8))
    with pytest.raises(ValueError, match="not phone-specific"):
        accuracy_classes(tree, "phone")


def test_expected_accuracy_follows_the_scores(chain_lang):
    """Scores peaked on the reference give E[A] ~ T; peaked on another path, ~ its matching frames."""
    crit = SmbrCriterion(chain_lang, tiny_den(chain_lang), dict(BIG_BEAM, accuracy="pdf"))
    ref = torch.tensor([1, 2, 3, 3, 1])
    right = crit.loss(one_hot_log_probs(ref.tolist(), chain_lang.num_pdfs, low=-30.0), torch.tensor([5]), [ref])
    assert -float(right.loss) == pytest.approx(5.0, abs=1e-3)
    wrong = [1, 4, 5, 5, 1]  # same silences, PB instead of PA
    out = crit.loss(one_hot_log_probs(wrong, chain_lang.num_pdfs, low=-30.0), torch.tensor([5]), [ref])
    assert -float(out.loss) == pytest.approx(2.0, abs=1e-3)
    # A gradient step on the scores raises the expected accuracy.
    x = torch.randn(1, 5, chain_lang.num_pdfs).log_softmax(-1).requires_grad_(True)
    before = crit.loss(x, torch.tensor([5]), [ref])
    before.loss.backward()
    after = crit.loss((x - 0.5 * x.grad).detach(), torch.tensor([5]), [ref])
    assert after.stats["expected_acc"] > before.stats["expected_acc"] + 1e-3


def test_regularisers_and_masked_utterances(chain_lang):
    den = tiny_den(chain_lang)
    x = torch.randn(2, 5, chain_lang.num_pdfs).log_softmax(-1).requires_grad_(True)
    lengths = torch.tensor([5, 4])
    base = SmbrCriterion(chain_lang, den, dict(BIG_BEAM)).loss(x, lengths, REFS)
    reg = SmbrCriterion(chain_lang, den, dict(BIG_BEAM, ce_weight=0.5, l2_weight=0.1)).loss(x, lengths, REFS)
    log_lik = sum(float(x.detach()[i, torch.arange(len(r)), r - 1].sum()) for i, r in enumerate(REFS))
    l2 = float((x.detach()[0] ** 2).sum() + (x.detach()[1, :4] ** 2).sum())
    assert float(reg.loss.detach()) == pytest.approx(float(base.loss.detach()) - 0.5 * log_lik + 0.05 * l2, abs=1e-4)
    # An utterance without a fitting alignment is masked: counted, no frames, no gradient.
    out = SmbrCriterion(chain_lang, den, dict(BIG_BEAM, ce_weight=0.1)).loss(x, lengths, [REFS[0], None])
    assert out.stats["unalignable"] == 1 and out.frames == 5
    out.loss.backward()
    assert torch.isfinite(x.grad).all() and float(x.grad[1].abs().sum()) == 0.0
    assert float(x.grad[0].abs().sum()) > 0


def test_smbr_is_registered_and_its_options_checked(tmp_path):
    from asr.config import load_config
    from asr.training.registry import CRITERIA, criteria_help, parse_train_config

    spec = CRITERIA.get("smbr", "t")
    assert (spec.alignments, spec.writes_priors, spec.decode_use_priors, spec.decode_acoustic_scale) == (
        "required", True, True, None)
    assert "'smbr'" in criteria_help()
    base = load_config(train_config(tmp_path / "smbr.yaml", criterion="smbr"))
    del base["prior_scale"]  # a flat-start key
    cfg = parse_train_config(dict(base, accuracy="pdf", ce_weight=0.1))
    assert cfg.criterion_options.accuracy == "pdf" and cfg.criterion_options.ce_weight == 0.1
    assert cfg.criterion_options.acoustic_scale == 1.0 and cfg.criterion_options.den_order == 3
    with pytest.raises(ConfigError, match="smbr.yaml: 'acoustic_scale' must be a number > 0"):
        parse_train_config(dict(base, acoustic_scale=0.0), "smbr.yaml")
    with pytest.raises(ConfigError, match="smbr.yaml.*accuracy"):
        parse_train_config(dict(base, accuracy="word"), "smbr.yaml")


def test_yesno_smbr_fine_tunes_and_decodes(tmp_path, capsys, tiny):
    """One sMBR epoch from the tiny yesno model on its own alignments, then a decode (asr CLI end to end)."""
    from asr.config import load_config

    conf = tmp_path / "smbr.yaml"
    conf.write_text(tiny.train_conf.read_text().replace("criterion: flat-start", "criterion: smbr\nuse_priors: true"
                                                        "\nden_order: 2\nce_weight: 0.1")
                    .replace("prior_scale: 1.0\nprior_warmup_steps: 0\n", "").replace("epochs: 2", "epochs: 1"),
                    encoding="utf-8")
    steps = [
        ["align", "--model-dir", tiny.model_dir, tiny.data, tmp_path / "ali"],
        ["train", "--config", conf, "--data", tiny.data, "--lang", tiny.lang, "--out", tmp_path / "smbr",
         "--ali-dir", tmp_path / "ali", "--init-model-dir", tiny.model_dir],
        ["decode", "--model-dir", tmp_path / "smbr", "--graph-dir", tiny.graph, tiny.data, tmp_path / "dec"],
    ]
    for argv in steps:
        rc, _, err = run_cli(capsys, *argv)
        assert rc == 0, (argv[0], err[-2000:])
    info = load_config(tmp_path / "smbr" / "model.yaml")
    assert info["criterion"] == "smbr" and info["use_priors"] is True
    assert (tmp_path / "smbr" / "priors.pt").is_file()
    log = (tmp_path / "smbr" / "train.log").read_text()
    line = next(ln for ln in log.splitlines() if "epoch 1:" in ln)
    acc = float(line.split("expected_acc ")[1].split(",")[0])
    assert 0.0 < acc <= 1.0 and math.isfinite(acc), line
    assert (tmp_path / "dec" / "wer").is_file()
