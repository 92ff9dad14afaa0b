"""``asr decode``: decode a data dir in parallel jobs, score, sweep and rescore.

Output (Kaldi's ``exp/<model>/decode_<set>_<lm>/`` layout)::

    jobs/hyp.J.txt, jobs/ctm.J, jobs/lat.J.pt   per job (J = 1..nj), each atomic
    text           hypotheses (Kaldi text)
    ctm            word CTM with confidences
    wer            %WER / %SER at the decoding settings (when the data has text)
    scoring/       one WER file per LM weight and penalty (--sweep), best_wer
    nbest/         --nbest N: text (UTT-n hypotheses), ac_cost, lm_cost (asr.decoding.nbest)

A job whose three outputs exist is not redone, so a killed decode rerun
redoes only the unfinished jobs.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing as mp
import time
from pathlib import Path

import k2
import torch
from tqdm import tqdm

from asr.data.batching import split_jobs
from asr.data.datadir import DataDir
from asr.decoding.ctm import ctm_line
from asr.decoding.decoder import Decoder
from asr.decoding.rescore import prepare_rescoring_g, rescore_with_lm
from asr.decoding.search import decode_config, read_paths, rescore_best_paths
from asr.features.extract import load_features
from asr.fileio import atomic_open, atomic_torch_save, atomic_write_text, safe_torch_load
from asr.lang.fsa_io import fsa_from_tensors, fsa_to_tensors, load_fsa

log = logging.getLogger("asr.decoding.decode_dir")


def job_paths(out_dir: Path, job: int) -> tuple[Path, Path, Path]:
    d = out_dir / "jobs"
    return d / f"hyp.{job}.txt", d / f"ctm.{job}", d / f"lat.{job}.pt"


def run_job(
    job: int, utts: list[str], model_dir: str, graph_dir: str | None, data_dir: str, out_dir: str, cfg: dict,
    threads: int, ivector_dir: str | None = None,
) -> tuple[int, int, float, float]:
    """Decodes one job's utterances; returns (job, utterances, audio frames, seconds of search).

    A model with i-vectors gets them from ``ivector_dir``, or online per
    utterance from the raw features (as ``asr transcribe``); that extraction
    counts in the seconds.
    """
    torch.set_num_threads(threads)
    out = Path(out_dir)
    dcfg = decode_config(cfg)
    decoder = Decoder.from_model_dir(model_dir, dcfg.search, graph_dir, dcfg.use_priors, "cpu", dcfg.prior_scale)
    wanted = set(utts)
    items = [(u, f) for u, f in load_features(data_dir) if u in wanted]
    hyps, lattices, lat_utts = {}, [], []
    t0 = time.perf_counter()
    ivectors = None
    if decoder.md.ivector is not None:
        from asr.adapt.data import utterance_ivectors

        ivectors = utterance_ivectors(decoder.md.ivector, data_dir, [u for u, _ in items], ivector_dir)
    for idx in decoder.batches(items):
        ids = [items[i][0] for i in idx]
        h, lat = decoder.decode_batch(ids, [items[i][1] for i in idx], [ivectors[u] for u in ids] if ivectors else None)
        for hyp in h:
            hyps[hyp.utt_id] = hyp
        lattices.append(lat)
        lat_utts += [items[i][0] for i in idx]
    elapsed = time.perf_counter() - t0
    hyp_path, ctm_path, lat_path = job_paths(out, job)
    lat_all = k2.create_fsa_vec([lat[i] for lat in lattices for i in range(lat.shape[0])]) if lattices else None
    saved = {"utt_ids": lat_utts, "acoustic_scale": decoder.cfg.acoustic_scale}
    if lat_all is not None:
        saved["lattice"] = fsa_to_tensors(lat_all)
    atomic_torch_save(saved, lat_path)
    with atomic_open(ctm_path) as f:
        for u in sorted(hyps, key=str.encode):
            f.writelines(ctm_line(u, w) for w in hyps[u].timed_words)
    atomic_write_text(hyp_path, "".join(f"{u} {' '.join(hyps[u].words)}".rstrip() + "\n" for u in sorted(hyps, key=str.encode)))
    return job, len(items), sum(len(f) for _, f in items), elapsed


def decode_data_dir(
    model_dir: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    cfg: dict,
    graph_dir: str | Path | None = None,
    nj: int = 1,
    threads_per_job: int = 1,
    ivector_dir: str | Path | None = None,
) -> Path:
    """Decodes every utterance of a data dir (with features) into ``out_dir``.

    ``ivector_dir``: the data's i-vectors (asr extract-ivectors), for a model
    with i-vectors; by default they are computed online per utterance.

    Returns:
      The hypothesis ``text`` file.
    """
    dd = DataDir.load(data_dir, require_text=False)
    out = Path(out_dir)
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    jobs = split_jobs(dd.utterances, nj)
    todo = [j for j in range(1, len(jobs) + 1) if not all(p.is_file() for p in job_paths(out, j))]
    if len(todo) < len(jobs):
        log.info("%d of %d decoding jobs already done in %s", len(jobs) - len(todo), len(jobs), out)
    args = [(j, jobs[j - 1], str(model_dir), str(graph_dir) if graph_dir else None, str(dd.path), str(out), cfg,
             threads_per_job, str(ivector_dir) if ivector_dir else None) for j in todo]
    t0 = time.perf_counter()
    if len(args) <= 1:
        results = [run_job(*a) for a in tqdm(args, desc="decode jobs", leave=False)]
    else:
        with cf.ProcessPoolExecutor(len(args), mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(run_job, *a) for a in args]
            results = [f.result() for f in tqdm(cf.as_completed(futures), total=len(futures), desc="decode jobs", leave=False)]
    for job, n, frames, secs in sorted(results):
        log.info("job %d: %d utterances decoded (search + network %.2f s)", job, n, secs)
    log.info("decoded %s in %.1f s with %d job(s)", dd.path, time.perf_counter() - t0, len(jobs))
    merge_outputs(out, len(jobs))
    return out / "text"


def merge_outputs(out: Path, nj: int) -> None:
    """Concatenates the jobs' hypotheses and CTMs into ``text`` and ``ctm``."""
    hyp_lines, ctm_lines = [], []
    for j in range(1, nj + 1):
        hyp, ctm, _ = job_paths(out, j)
        hyp_lines += hyp.read_text(encoding="utf-8").splitlines(keepends=True)
        ctm_lines += ctm.read_text(encoding="utf-8").splitlines(keepends=True)
    atomic_write_text(out / "text", "".join(sorted(hyp_lines, key=lambda l: l.split(" ", 1)[0].rstrip("\n").encode())))
    atomic_write_text(out / "ctm", "".join(ctm_lines))


def load_lattices(out: Path, nj: int) -> list[tuple[list[str], k2.Fsa, float]]:
    """The saved lattices of each job: (utt ids, FsaVec, decode acoustic scale)."""
    result = []
    for j in range(1, nj + 1):
        d = safe_torch_load(job_paths(out, j)[2])
        if "lattice" in d:
            result.append((d["utt_ids"], fsa_from_tensors(d["lattice"], str(job_paths(out, j)[2])), float(d["acoustic_scale"])))
    return result


def best_words(lattice: k2.Fsa, lm_weight: float, penalty: float, acoustic_scale: float, words) -> list[list[str]]:
    best = rescore_best_paths(lattice, lm_weight, penalty, acoustic_scale)
    num_frames = [0] * best.shape[0]
    return [[words.get(w) for w in p.word_ids] for p in read_paths(best, num_frames)]


def sweep(
    out: Path, nj: int, ref_text: Path, words, lm_weights: list[float], penalties: list[float],
    G_rescore: k2.Fsa | None = None, tag: str = "",
) -> tuple[str, float]:
    """Kaldi ``score.sh``-style sweep over saved lattices (no new decoding).

    Acoustic scale is ``1/LMWT``; each (LMWT, penalty) gets
    ``scoring/wer_<LMWT>_<penalty>``; ``scoring/best_wer`` names the best.
    With ``G_rescore`` the lattices are first rescored with that LM.

    Returns:
      The best %WER line and its WER.
    """
    from asr.data.datadir import read_text
    from asr.scoring.wer import format_wer, score

    ref = read_text(ref_text)
    lattices = load_lattices(out, nj)
    if G_rescore is not None:
        lattices = [(u, rescore_with_lm(lat, G_rescore), s) for u, lat, s in lattices]
    scoring = out / f"scoring{tag}"
    best_line, best_wer = "", float("inf")
    for lmwt in lm_weights:
        for wip in penalties:
            hyp = {}
            for utts, lat, _ in lattices:
                for u, w in zip(utts, best_words(lat, 1.0, wip, 1.0 / lmwt, words)):
                    hyp[u] = w
            result = score(ref, hyp)
            lines = format_wer(result)
            atomic_write_text(scoring / f"wer_{lmwt:g}_{wip:g}", lines + "\n")
            if result.wer < best_wer:
                best_wer, best_line = result.wer, f"{lines.splitlines()[0]} {scoring / f'wer_{lmwt:g}_{wip:g}'}"
    atomic_write_text(scoring / "best_wer", best_line + "\n")
    return best_line, best_wer


def rescore_text(out: Path, nj: int, words, G_path: Path, acoustic_scale: float, dest: Path) -> None:
    """Writes the 1-best text after rescoring the lattices with another LM's G."""
    G = prepare_rescoring_g(load_fsa(G_path), words)
    lines = []
    for utts, lat, _ in load_lattices(out, nj):
        for u, w in zip(utts, best_words(rescore_with_lm(lat, G), 1.0, 0.0, acoustic_scale, words)):
            lines.append(f"{u} {' '.join(w)}".rstrip() + "\n")
    atomic_write_text(dest, "".join(sorted(lines, key=lambda l: l.split(" ", 1)[0].rstrip("\n").encode())))


def write_nbest(out: Path, nj: int, words, n: int, word_penalty: float, dest: Path | None = None) -> Path:
    """Writes the saved lattices' exact n-best lists (:mod:`asr.decoding.nbest`) as Kaldi does.

    ``dest`` (default ``out/nbest``) gets ``text`` (``UTT-1 words ...``, the
    hypotheses of each utterance best first, utterances in C order), and
    ``ac_cost`` and ``lm_cost`` (``UTT-n cost``: the best alignment's
    unscaled acoustic cost and graph cost, as Kaldi's ``nbest-to-linear``
    writes them).  Hypotheses are ranked by the decode's score, the lattices'
    acoustic scale with LM weight 1 and ``word_penalty``: ``-(acoustic_scale *
    ac_cost + lm_cost + word_penalty * words)``.

    Returns:
      The n-best dir.
    """
    from asr.decoding.nbest import nbest_lists

    dest = dest or out / "nbest"
    lists: dict[str, list] = {}
    for utts, lat, acoustic_scale in load_lattices(out, nj):
        for u, entries in zip(utts, nbest_lists(lat, n, 1.0, word_penalty, acoustic_scale)):
            lists[u] = entries
    text, ac, lm = [], [], []
    for u in sorted(lists, key=str.encode):
        for k, e in enumerate(lists[u], 1):
            key = f"{u}-{k}"
            text.append(f"{key} {' '.join(words.get(w) for w in e.word_ids)}".rstrip() + "\n")
            ac.append(f"{key} {e.ac_cost:.4f}\n")
            lm.append(f"{key} {e.lm_cost:.4f}\n")
    atomic_write_text(dest / "text", "".join(text))
    atomic_write_text(dest / "ac_cost", "".join(ac))
    atomic_write_text(dest / "lm_cost", "".join(lm))
    return dest
