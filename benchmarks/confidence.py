"""Calibration of word confidences: lattice word posteriors against the old mean frame posterior.

Decodes a test set with a model dir and graph (as ``asr decode`` does, in one
process), aligns each hypothesis with its reference (``asr.scoring.wer``, the
alignment ``asr score --details`` prints) and scores two confidences of every
hypothesis word against whether it is correct (aligned to an identical
reference word):

- ``lattice``: the lattice word posterior the CTM now carries (:mod:`asr.decoding.confidence`);
- ``frame``: the old one, the mean network posterior of the best path's pdfs
  over the word's frames (:func:`asr.decoding.confidence.mean_frame_posteriors`).

Figures: normalised cross entropy (NCE, NIST's; confidences clipped to
``[1e-4, 1 - 1e-4]``), ROC AUC (the probability that a correct word gets a
higher confidence than an incorrect one, ties counted half) and the mean
confidence of correct and of incorrect words.

The lattice posteriors are computed at each ``--scales`` value (the decode
config's ``confidence_scale``: the decode scores times it before the
forward-backward, which flattens sharp lattices), and so is an n-best MBR
hypothesis (:func:`asr.decoding.nbest.mbr_choice`). The scale is chosen on
the held-out set ``--tune-on`` (highest raw NCE) and the test set is reported
once at it, beside scale 1 and the old confidence. A logistic map
``sigmoid(a * logit(c) + b)`` fitted on the held-out set (Kaldi's
``steps/conf`` calibrates on a dev set in the same way) gives the test NCE
after calibration; the map is monotone, so it leaves the AUC as it is.

Usage, from the repository root, after an AN4 recipe run::

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.confidence --workdir WORK --model blstm_mmi_tree200 \
        --graph lang_tree200_tg --tune-graph lang_tree200_tg_tune [--write-results benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from benchmarks.common import machine_info, markdown_table

log = logging.getLogger("benchmarks.confidence")

#: Confidences are clipped to [EPS, 1 - EPS] for NCE: a wrong word at confidence 1 would cost infinitely many bits.
EPS = 1e-4


def nce(confidences: list[float], correct: list[bool]) -> float:
    """Normalised cross entropy: ``(H(C) + sum_correct log2 c + sum_wrong log2 (1 - c)) / H(C)``.

    ``H(C)`` is the entropy of correctness at the test set's mean accuracy, so
    0 is a constant confidence equal to that accuracy and 1 a perfect one.
    """
    n, k = len(correct), sum(correct)
    if k in (0, n):
        return float("nan")
    p = k / n
    h = -(k * math.log2(p) + (n - k) * math.log2(1 - p))
    ll = sum(math.log2(min(max(c, EPS), 1 - EPS)) if ok else math.log2(1 - min(max(c, EPS), 1 - EPS))
             for c, ok in zip(confidences, correct))
    return (h + ll) / h


def roc_auc(confidences: list[float], correct: list[bool]) -> float:
    """Area under the ROC curve of confidence as a detector of correct words (Mann-Whitney U, ties half)."""
    order = sorted(range(len(confidences)), key=lambda i: confidences[i])
    ranks = [0.0] * len(order)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and confidences[order[j + 1]] == confidences[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1  # average rank of a tie group
        i = j + 1
    pos = sum(correct)
    neg = len(correct) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    return (sum(r for r, ok in zip(ranks, correct) if ok) - pos * (pos + 1) / 2) / (pos * neg)


def hypothesis_correctness(ref: dict[str, list[str]], hyp: dict[str, list[str]]) -> dict[str, list[bool]]:
    """Per utterance, for each hypothesis word: is it aligned to an identical reference word?"""
    from asr.scoring.wer import score

    result = score(ref, hyp)
    out = {}
    for utt, u in result.utts.items():
        out[utt] = [r == h for r, h in u.alignment if h is not None]
        assert len(out[utt]) == len(hyp.get(utt, [])), utt
    return out


def decode_with_confidences(model_dir: Path, graph_dir: Path, data_dir: Path, config: Path,
                            output_beam: float | None, scales: list[float], nbest: int) -> tuple[dict, int]:
    """Decodes ``data_dir`` once; per utterance its words, the old confidence and, per confidence scale,
    the lattice word posteriors and the n-best MBR words. Also the lattices' arcs in all."""
    from dataclasses import replace

    import torch

    from asr.config import load_config, resolve_config
    from asr.decoding.confidence import mean_frame_posteriors, word_confidences
    from asr.decoding.decoder import Decoder
    from asr.decoding.nbest import mbr_choice, nbest_lists
    from asr.decoding.search import decode_config, decode_scores, read_paths, rescore_best_paths
    from asr.features.extract import load_features

    cfg = decode_config(load_config(config), str(resolve_config(config)))
    search = cfg.search if output_beam is None else replace(cfg.search, output_beam=output_beam)
    decoder = Decoder.from_model_dir(model_dir, search, graph_dir, cfg.use_priors, "cpu", cfg.prior_scale)
    ac, wp = decoder.cfg.acoustic_scale, decoder.cfg.word_penalty
    items = list(load_features(data_dir))
    out: dict[str, dict] = {}
    arcs = 0
    for idx in decoder.batches(items):
        utts, feats = [items[i][0] for i in idx], [items[i][1] for i in idx]
        hyps, lattice = decoder.decode_batch(utts, feats)
        arcs += lattice.num_arcs
        lengths = torch.tensor([len(f) for f in feats])
        padded = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
        for i, f in enumerate(feats):
            padded[i, : len(f)] = f
        log_post, _, out_lengths = decoder.acoustic_scores(padded, lengths)
        paths = read_paths(rescore_best_paths(lattice, 1.0, wp, ac), out_lengths.tolist())
        segments = [decoder.aligner.segments(path) for path in paths]
        scores = decode_scores(lattice, 1.0, wp, ac)
        per_scale = {sc: word_confidences(lattice, sc * scores, paths, segments, decoder.lexicon, log_post, utts)
                     for sc in scales}
        lists = nbest_lists(lattice, nbest, 1.0, wp, ac)
        for i, (hyp, path) in enumerate(zip(hyps, paths)):
            assert [decoder.words.get(w) for _, _, w in segments[i]] == hyp.words, hyp.utt_id
            entry = {"words": hyp.words,
                     "frame": mean_frame_posteriors(path, segments[i], log_post[i, : path.num_frames])}
            for sc in scales:
                entry[f"lattice@{sc:g}"] = per_scale[sc][i]
                pick = mbr_choice(lists[i], sc)
                entry[f"mbr@{sc:g}"] = [decoder.words.get(w) for w in lists[i][pick].word_ids] if pick >= 0 else []
            out[hyp.utt_id] = entry
    return out, arcs


def _logit(c: float) -> float:
    c = min(max(c, EPS), 1 - EPS)
    return math.log(c / (1 - c))


def _log_likelihood(xs: list[float], ys: list[float], a: float, b: float) -> float:
    """Bernoulli log-likelihood of ``ys`` under ``sigmoid(a * x + b)`` (stable for large arguments)."""
    total = 0.0
    for x, y in zip(xs, ys):
        z = a * x + b
        log_p = -math.log1p(math.exp(-z)) if z > 0 else z - math.log1p(math.exp(z))  # log sigmoid(z)
        total += log_p + (1 - y) * (-z)  # log(1 - sigmoid(z)) = log sigmoid(z) - z
    return total


def fit_calibration(confidences: list[float], correct: list[bool], steps: int = 100) -> tuple[float, float]:
    """``(a, b)`` of the logistic map ``sigmoid(a * logit(c) + b)`` that maximises the likelihood of ``correct``.

    Newton's method on the two parameters, each step halved until the likelihood rises.
    """
    xs, ys = [_logit(c) for c in confidences], [1.0 if ok else 0.0 for ok in correct]
    a, b = 1.0, 0.0
    current = _log_likelihood(xs, ys, a, b)
    for _ in range(steps):
        ga = gb = haa = hab = hbb = 0.0
        for x, y in zip(xs, ys):
            p = _sigmoid(a * x + b)
            w = p * (1 - p)
            ga, gb = ga + (y - p) * x, gb + (y - p)
            haa, hab, hbb = haa + w * x * x, hab + w * x, hbb + w
        det = haa * hbb - hab * hab
        if det <= 1e-12:
            break
        da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        step = 1.0
        while step > 1e-6 and _log_likelihood(xs, ys, a + step * da, b + step * db) < current:
            step /= 2
        if step <= 1e-6:
            break
        a, b = a + step * da, b + step * db
        previous, current = current, _log_likelihood(xs, ys, a, b)
        if current - previous < 1e-12:
            break
    return a, b


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def calibrated(confidences: list[float], ab: tuple[float, float]) -> list[float]:
    """The confidences through the map ``sigmoid(a * logit(c) + b)``."""
    a, b = ab
    return [_sigmoid(a * _logit(c) + b) for c in confidences]


def flat(decoded: dict, ref: dict[str, list[str]], kind: str) -> tuple[list[float], list[bool]]:
    """All hypothesis words' confidences of one kind and their correctness, utterances in C order."""
    correct_per_utt = hypothesis_correctness(ref, {u: d["words"] for u, d in decoded.items()})
    utts = sorted(decoded, key=str.encode)
    return [c for u in utts for c in decoded[u][kind]], [ok for u in utts for ok in correct_per_utt[u]]


def figures(conf: list[float], correct: list[bool]) -> dict:
    """NCE, AUC, mean confidences of correct and wrong words, words at (nearly) 1."""
    k = sum(correct)
    return {
        "nce": nce(conf, correct),
        "auc": roc_auc(conf, correct),
        "mean_correct": sum(c for c, ok in zip(conf, correct) if ok) / max(1, k),
        "mean_wrong": sum(c for c, ok in zip(conf, correct) if not ok) / max(1, len(correct) - k),
        "at_one": sum(c >= 0.9995 for c in conf),
    }


def set_figures(decoded: dict, ref: dict[str, list[str]], scales: list[float],
                held_out: tuple[dict, dict] | None = None) -> dict:
    """Per confidence (``frame`` and ``lattice@S``): NCE, AUC, ...; per scale the MBR WER; the 1-best WER.

    With ``held_out`` (decoded, ref), each confidence's NCE after a logistic map fitted there.
    """
    from asr.scoring.wer import score

    result = score(ref, {u: d["words"] for u, d in decoded.items()})
    correct = flat(decoded, ref, "frame")[1]
    out = {"words": len(correct), "correct": sum(correct), "wer": result.wer, "ref_words": result.words,
           "errors": result.errors, "confidences": {}, "mbr": {}}
    for kind in ["frame"] + [f"lattice@{sc:g}" for sc in scales]:
        conf, correct = flat(decoded, ref, kind)
        fig = figures(conf, correct)
        if held_out is not None:
            ab = fit_calibration(*flat(held_out[0], held_out[1], kind))
            fig["calibration"] = {"a": ab[0], "b": ab[1], "nce": nce(calibrated(conf, ab), correct)}
        out["confidences"][kind] = fig
    for sc in scales:
        mbr = score(ref, {u: d[f"mbr@{sc:g}"] for u, d in decoded.items()})
        out["mbr"][f"{sc:g}"] = {"wer": mbr.wer, "errors": mbr.errors}
    return out


def choose_scale(tuning: dict, scales: list[float]) -> float:
    """The confidence scale whose raw lattice posteriors have the highest NCE on the tuning set."""
    return max(scales, key=lambda sc: tuning["confidences"][f"lattice@{sc:g}"]["nce"])


def _conf_row(label: str, fig: dict) -> list:
    cal = fig.get("calibration")
    return [label, f"{fig['nce']:.3f}", f"{cal['nce']:.3f}" if cal else "-", f"{fig['auc']:.3f}",
            f"{fig['mean_correct']:.3f}", f"{fig['mean_wrong']:.3f}", fig["at_one"]]


CONF_COLUMNS = ["confidence", "NCE", "NCE calibrated", "AUC", "mean, correct words", "mean, wrong words",
                "words at >= 0.9995"]


def render_markdown(run: dict, command: str, machine: dict, setup: str, tuning_set: str) -> str:
    """The "word confidence calibration" section of benchmarks/RESULTS.md."""
    tune, test, chosen = run["tuning"], run["test"], run["chosen_scale"]
    tune_rows = [[f"{sc:g}", *_conf_row("", tune["confidences"][f"lattice@{sc:g}"])[1:],
                  f"{tune['mbr'][f'{sc:g}']['wer']:.2f}"] for sc in run["scales"]]
    key = f"lattice@{chosen:g}"
    test_rows = [_conf_row(f"lattice word posterior, confidence_scale {chosen:g} (chosen; now in the CTM)",
                           test["confidences"][key]),
                 _conf_row("lattice word posterior, confidence_scale 1 (before)", test["confidences"]["lattice@1"]),
                 _conf_row("mean frame posterior (round 1)", test["confidences"]["frame"])]
    return (
        "\n## Word confidence calibration\n\n"
        f"{setup}. 1-best (Viterbi) %WER on test {test['wer']:.2f} [ {test['errors']} / {test['ref_words']} ]; "
        f"{test['words']} hypothesis words, {test['correct']} correct (aligned to an identical reference word by "
        "`asr.scoring.wer`, as `asr score --details` shows). NCE with confidences clipped to [1e-4, 1 - 1e-4]; "
        "AUC: probability that a correct word scores above an incorrect one (ties half). \"NCE calibrated\": after "
        f"a logistic map `sigmoid(a * logit(c) + b)` fitted on `{tuning_set}` (decoded the same way), which leaves "
        "the AUC unchanged. MBR: the hypothesis of the exact "
        f"{run['nbest']}-best list with the least expected word errors against the list's posteriors at the same "
        "scale (`asr.decoding.nbest.mbr_choice`).  \n"
        f"Command: `{command}` (commit {machine['git_commit']}{', dirty working tree' if machine['git_dirty'] else ''}).  \n"
        f"Machine: {machine['cpu_model']}, {machine['nproc']} CPUs (nproc), Python {machine['python']}, one thread "
        "(the figures are not timings).\n\n"
        f"**Choosing `confidence_scale` on `{tuning_set}`** (held-out training speakers; highest raw NCE; "
        f"1-best %WER there {tune['wer']:.2f}):\n\n"
        + markdown_table(["confidence_scale", *CONF_COLUMNS[1:], "MBR %WER"], tune_rows)
        + f"\n\n**Test, once, at the chosen scale {chosen:g}**; MBR %WER {test['mbr'][f'{chosen:g}']['wer']:.2f} "
        f"[ {test['mbr'][f'{chosen:g}']['errors']} / {test['ref_words']} ] against the Viterbi 1-best's "
        f"{test['wer']:.2f}:\n\n"
        + markdown_table(CONF_COLUMNS, test_rows) + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path("recipes/an4"), help="AN4 recipe work dir (default recipes/an4)")
    p.add_argument("--model", default="blstm_mmi", help="model dir exp/MODEL (default blstm_mmi)")
    p.add_argument("--graph", default="lang_tg", help="graph dir data/GRAPH for the test set (default lang_tg)")
    p.add_argument("--tune-graph", default=None, help="graph dir data/GRAPH for the tuning set (default: --graph)")
    p.add_argument("--test-set", default="test", help="data dir data/SET (default test)")
    p.add_argument("--tune-on", default="valid", metavar="SET", help="held-out data dir data/SET that chooses "
                   "the confidence scale and fits the calibration map (default valid)")
    p.add_argument("--config", type=Path, default=Path("conf/an4/decode.yaml"), help="decode config")
    p.add_argument("--scales", default="1,0.7,0.5,0.3,0.2,0.1", help="confidence scales to try (must include 1)")
    p.add_argument("--nbest", type=int, default=10, help="n-best size for MBR (default 10)")
    p.add_argument("--output-beam", type=float, default=None, help="lattice beam (default: the config's)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/confidence.json"), help="JSON output")
    p.add_argument("--write-results", type=Path, default=None, help="append the section to this markdown file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
    from asr.data.datadir import read_text

    scales = sorted({float(x) for x in args.scales.split(",")} | {1.0}, reverse=True)
    model_dir = args.workdir / "exp" / args.model
    sets = {"tuning": (args.tune_on, args.tune_graph or args.graph), "test": (args.test_set, args.graph)}
    decoded = {}
    for role, (name, graph) in sets.items():
        data = args.workdir / "data" / name
        decoded[role] = (decode_with_confidences(model_dir, args.workdir / "data" / graph, data, args.config,
                                                 args.output_beam, scales, args.nbest)[0], read_text(data / "text"))
    run = {"scales": scales, "nbest": args.nbest,
           "tuning": set_figures(*decoded["tuning"], scales),
           "test": set_figures(*decoded["test"], scales, held_out=decoded["tuning"])}
    run["chosen_scale"] = choose_scale(run["tuning"], scales)
    for role in ("tuning", "test"):
        for kind, f in run[role]["confidences"].items():
            print(f"{role:6s} {kind:12s} NCE {f['nce']:.3f}  AUC {f['auc']:.3f}", flush=True)
        print(f"{role:6s} 1-best %WER {run[role]['wer']:.2f}; MBR " +
              ", ".join(f"{k}: {v['wer']:.2f}" for k, v in run[role]["mbr"].items()), flush=True)
    print(f"chosen confidence_scale {run['chosen_scale']:g}")
    machine = machine_info()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"confidence": run, "machine": machine}, indent=2) + "\n", encoding="utf-8")
    if args.write_results:
        command = "OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.confidence " + " ".join(
            argv if argv is not None else sys.argv[1:])
        setup = (f"Model `exp/{args.model}` of `{args.workdir}`, graph `data/{args.graph}` (tuning set: "
                 f"`data/{sets['tuning'][1]}`), test set `data/{args.test_set}`, decode config `{args.config}`")
        with open(args.write_results, "a", encoding="utf-8") as f:
            f.write(render_markdown(run, command.strip(), machine, setup, f"data/{args.tune_on}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
