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
confidence of correct and of incorrect words.  ``--output-beams`` decodes
again at other lattice beams (the 1-best is the same; the lattices, and so
the posteriors, are wider).  ``--calibrate-on SET`` also fits, per confidence,
a logistic map ``sigmoid(a * logit(c) + b)`` on another data dir (Kaldi's
``steps/conf`` calibrates on a dev set in the same way) and reports the test
NCE after it; the map is monotone, so it leaves the AUC as it is.

Usage, from the repository root, after an AN4 recipe run::

    OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python -m benchmarks.confidence --workdir /tmp/an4_s3 \
        --model blstm_mmi --lm tg [--output-beams 7,14] [--calibrate-on valid] [--write-results benchmarks/RESULTS.md]
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
                            output_beam: float | None = None) -> tuple[dict, int]:
    """Decodes ``data_dir``; per utterance its words and both confidences, and the lattices' arcs in all."""
    from dataclasses import replace

    import torch

    from asr.config import load_config, resolve_config
    from asr.decoding.confidence import mean_frame_posteriors
    from asr.decoding.decoder import Decoder
    from asr.decoding.search import decode_config, read_paths, rescore_best_paths
    from asr.features.extract import load_features

    cfg = decode_config(load_config(config), str(resolve_config(config)))
    search = cfg.search if output_beam is None else replace(cfg.search, output_beam=output_beam)
    decoder = Decoder.from_model_dir(model_dir, search, graph_dir, cfg.use_priors, "cpu", cfg.prior_scale)
    items = list(load_features(data_dir))
    out: dict[str, dict] = {}
    arcs = 0
    for idx in decoder.batches(items):
        utts, feats = [items[i][0] for i in idx], [items[i][1] for i in idx]
        hyps, lattice = decoder.decode_batch(utts, feats)
        arcs += lattice.num_arcs
        # The old confidence needs the network posteriors and the best paths again.
        lengths = torch.tensor([len(f) for f in feats])
        padded = torch.zeros(len(feats), int(lengths.max()), feats[0].shape[1])
        for i, f in enumerate(feats):
            padded[i, : len(f)] = f
        log_post, _, out_lengths = decoder.acoustic_scores(padded, lengths)
        best = rescore_best_paths(lattice, 1.0, decoder.cfg.word_penalty, decoder.cfg.acoustic_scale)
        for i, (hyp, path) in enumerate(zip(hyps, read_paths(best, out_lengths.tolist()))):
            segments = decoder.aligner.segments(path)
            assert [decoder.words.get(w) for _, _, w in segments] == hyp.words, hyp.utt_id
            out[hyp.utt_id] = {
                "words": hyp.words,
                "lattice": [w.confidence for w in hyp.timed_words],
                "frame": mean_frame_posteriors(path, segments, log_post[i, : path.num_frames]),
            }
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


def calibration(decoded: dict, ref: dict[str, list[str]], held_out: tuple[dict, dict] | None = None) -> dict:
    """Figures of both confidences on one decode, and their NCE after a map fitted on ``held_out`` (decoded, ref)."""
    from asr.scoring.wer import score

    result = score(ref, {u: d["words"] for u, d in decoded.items()})
    conf, correct = flat(decoded, ref, "lattice")
    out = {"words": len(correct), "correct": sum(correct), "wer": result.wer, "ref_words": result.words,
           "errors": result.errors}
    for kind in ("lattice", "frame"):
        conf, correct = flat(decoded, ref, kind)
        out[kind] = figures(conf, correct)
        if held_out is not None:
            ab = fit_calibration(*flat(held_out[0], held_out[1], kind))
            out[kind]["calibration"] = {"a": ab[0], "b": ab[1], "nce": nce(calibrated(conf, ab), correct)}
    return out


NAMES = {"lattice": "lattice word posterior (now in the CTM)", "frame": "mean frame posterior (before)"}


def render_markdown(runs: list[dict], command: str, machine: dict, setup: str, held_out: str | None) -> str:
    """The "word confidence calibration" section of benchmarks/RESULTS.md, a row per beam and confidence."""
    rows = []
    for run in runs:
        fig = run["figures"]
        for kind in ("lattice", "frame"):
            f = fig[kind]
            cal = f.get("calibration")
            rows.append([run["output_beam"], f"{run['arcs']:,}", NAMES[kind], f"{f['nce']:.3f}",
                         f"{cal['nce']:.3f}" if cal else "-", f"{f['auc']:.3f}", f"{f['mean_correct']:.3f}",
                         f"{f['mean_wrong']:.3f}", f["at_one"]])
    fig = runs[0]["figures"]
    cal_text = (f" \"NCE calibrated\": after a logistic map `sigmoid(a * logit(c) + b)` fitted on `{held_out}` "
                "(decoded the same way), which leaves the AUC unchanged." if held_out else "")
    return (
        "\n## Word confidence calibration\n\n"
        f"{setup}: {fig['words']} hypothesis words, {fig['correct']} correct (aligned to an identical reference "
        f"word by `asr.scoring.wer`, as `asr score --details` shows), 1-best %WER {fig['wer']:.2f} "
        f"[ {fig['errors']} / {fig['ref_words']} ] at every beam. NCE with confidences clipped to [1e-4, 1 - 1e-4]; "
        "AUC: probability that a correct word scores above an incorrect one (ties half)." + cal_text +
        " No MBR row: the confidences are arc posteriors summed over the word's arcs (option (a) of issue 17), "
        "not a confusion network.  \n"
        f"Command: `{command}` (commit {machine['git_commit']}{', dirty working tree' if machine['git_dirty'] else ''}).  \n"
        f"Machine: {machine['cpu_model']}, {machine['nproc']} CPUs (nproc), Python {machine['python']}, "
        "one thread, nice 19, shared with other jobs (the figures are not timings).\n\n"
        + markdown_table(["output beam", "lattice arcs", "confidence", "NCE", "NCE calibrated", "AUC",
                          "mean, correct words", "mean, wrong words", "words at >= 0.9995"], rows)
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path("recipes/an4"), help="AN4 recipe work dir (default recipes/an4)")
    p.add_argument("--model", default="blstm_mmi", help="model dir exp/MODEL (default blstm_mmi)")
    p.add_argument("--lm", default="tg", help="graph data/lang_LM (default tg)")
    p.add_argument("--test-set", default="test", help="data dir data/SET (default test)")
    p.add_argument("--calibrate-on", default=None, metavar="SET", help="also fit a calibration map on data/SET")
    p.add_argument("--config", type=Path, default=Path("conf/an4/decode.yaml"), help="decode config")
    p.add_argument("--output-beams", default=None, help="comma list of lattice beams (default: the config's)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/confidence.json"), help="JSON output")
    p.add_argument("--write-results", type=Path, default=None, help="append the section to this markdown file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")
    from asr.data.datadir import read_text

    model_dir, graph_dir = args.workdir / "exp" / args.model, args.workdir / "data" / f"lang_{args.lm}"
    test = args.workdir / "data" / args.test_set
    beams = [float(b) for b in args.output_beams.split(",")] if args.output_beams else [None]
    runs = []
    for beam in beams:
        decoded, arcs = decode_with_confidences(model_dir, graph_dir, test, args.config, beam)
        held_out = None
        if args.calibrate_on:
            dev = args.workdir / "data" / args.calibrate_on
            held_out = (decode_with_confidences(model_dir, graph_dir, dev, args.config, beam)[0], read_text(dev / "text"))
        fig = calibration(decoded, read_text(test / "text"), held_out)
        label = f"{beam:g}" if beam is not None else "config"
        runs.append({"output_beam": label, "arcs": arcs, "figures": fig})
        for kind in ("lattice", "frame"):
            f = fig[kind]
            cal = f" (calibrated {f['calibration']['nce']:.3f})" if "calibration" in f else ""
            print(f"beam {label} {kind:8s} NCE {f['nce']:.3f}{cal}  AUC {f['auc']:.3f}  mean correct "
                  f"{f['mean_correct']:.3f}  mean wrong {f['mean_wrong']:.3f}  ({fig['words']} words, "
                  f"{fig['correct']} correct)", flush=True)
    machine = machine_info()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"confidence": runs, "machine": machine}, indent=2) + "\n", encoding="utf-8")
    if args.write_results:
        command = "OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python -m benchmarks.confidence " + " ".join(
            argv if argv is not None else sys.argv[1:])
        setup = (f"Model `exp/{args.model}` of `{args.workdir}`, graph `data/lang_{args.lm}`, "
                 f"`data/{args.test_set}`, decode config `{args.config}`")
        with open(args.write_results, "a", encoding="utf-8") as f:
            f.write(render_markdown(runs, command.strip(), machine, setup, args.calibrate_on and f"data/{args.calibrate_on}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
