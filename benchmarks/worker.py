"""Benchmark jobs that run in a process of their own (so each peak RSS is its own).

Usage: ``python -m benchmarks.worker JOB 'JSON PARAMS'``; prints one line
``BENCH-RESULT {json}``.  Jobs: ``train``, ``length``.
"""

from __future__ import annotations

import json
import logging
import math
import resource
import sys
import tempfile
import time


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _training_setup(p: dict, cfg: dict):
    """The lang dir, the training utterances (validation speakers held out) and the criterion of ``p``."""
    from asr.lang.lang_dir import LangDir
    from asr.training.criteria import CrossEntropyCriterion
    from asr.training.data import load_utterances, split_validation

    lang = LangDir.load(p["lang_dir"])
    alignments = None
    if p.get("ali_dir"):
        from asr.training.align import read_alignments

        alignments = read_alignments(p["ali_dir"])
    utts = load_utterances(p["data_dir"], alignments)
    train_utts, _ = split_validation(utts, float(cfg.get("valid_fraction", 0.1)), int(cfg.get("seed", 0)))
    if cfg["criterion"] == "ce":
        criterion = CrossEntropyCriterion(float(cfg.get("label_smoothing", 0.0)))
    elif cfg["criterion"] == "smbr":
        from asr.training.smbr import make_smbr_criterion

        criterion = make_smbr_criterion(cfg, lang, train_utts)
    else:
        from asr.training.lfmmi import make_sequence_criterion

        criterion = make_sequence_criterion(cfg["criterion"], cfg, lang, train_utts, None, None)
    return lang, train_utts, criterion


def _timed_steps(trainer, warmup: int, batches: int) -> tuple[int, float]:
    """Runs ``warmup + batches`` training steps like ``Trainer.train_epoch``'s (epochs wrap around);
    returns (input frames, seconds) of the last ``batches``.  Batches without frames are not counted."""
    import torch

    gen = torch.Generator().manual_seed(0)
    epoch, queue = 1, []
    timed_frames, timed_secs, steps = 0, 0.0, 0
    while steps < warmup + batches:
        if not queue:
            queue = list(trainer._epoch_batches(epoch))
            epoch += 1
        idx = queue.pop(0)
        t0 = time.perf_counter()
        batch = trainer._batch(trainer.train_utts, idx, True, gen)
        out = trainer._forward(batch, trainer.model)
        if out.frames == 0:
            continue
        trainer.optimizer.zero_grad(set_to_none=True)
        (out.loss / out.frames).backward()
        torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), trainer.grad_clip)
        trainer.optimizer.step()
        trainer.scheduler.step()
        elapsed = time.perf_counter() - t0
        if steps >= warmup:
            timed_frames += batch.num_frames
            timed_secs += elapsed
        steps += 1
    return timed_frames, timed_secs


def job_train(p: dict) -> dict:
    """Times ``p['batches']`` training steps after ``p['warmup']`` warm-up steps.

    Params: config (dict, a training config: ce, lfmmi, mmi or smbr; sequence
    criteria without priors), data_dir, lang_dir, ali_dir (None for LF-MMI
    from transcripts), threads (None = torch default).
    """
    import torch

    # Imported before the first RSS reading, so that rss_after_start_mb includes the code.
    import asr.lang.lang_dir  # noqa: F401
    import asr.training.criteria  # noqa: F401
    import asr.training.data  # noqa: F401
    from asr.training.trainer import Trainer

    if p.get("threads"):
        torch.set_num_threads(int(p["threads"]))
    cfg = dict(p["config"])
    cfg.pop("speed_perturb", None)
    rss_start = peak_rss_mb()
    lang, train_utts, criterion = _training_setup(p, cfg)
    rss_data = peak_rss_mb()
    with tempfile.TemporaryDirectory(prefix="asr-bench-train-") as tmp:
        trainer = Trainer(cfg, criterion, train_utts, [], lang, tmp)
        trainer.model.train()
        params = sum(x.numel() for x in trainer.model.parameters())
        timed_frames, timed_secs = _timed_steps(trainer, int(p["warmup"]), int(p["batches"]))
    return {
        "frames_per_second": timed_frames / timed_secs if timed_secs > 0 else math.nan,
        "timed_frames": timed_frames,
        "timed_seconds": timed_secs,
        "batches": int(p["batches"]),
        "warmup": int(p["warmup"]),
        "parameters": params,
        "threads": torch.get_num_threads(),
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_start_mb": rss_start,
        "rss_after_data_mb": rss_data,
    }


def job_length(p: dict) -> dict:
    """Transcribes ``p['seconds']`` of concatenated test audio with Recognizer.transcribe.

    Params: model_dir, graph_dir (or None), decode_config, audio (list of paths), seconds, threads.
    """
    import torch

    from asr.data.audio import load_audio
    from asr.recognizer import Recognizer

    if p.get("threads"):
        torch.set_num_threads(int(p["threads"]))
    t0 = time.perf_counter()
    rec = Recognizer.from_dir(p["model_dir"], p.get("graph_dir"), p.get("decode_config", "decode.yaml"))
    load_secs = time.perf_counter() - t0
    sr = rec.sample_rate
    need = int(round(float(p["seconds"]) * sr))
    parts, have, i = [], 0, 0
    paths = p["audio"]
    while have < need:
        w = load_audio(paths[i % len(paths)], sr)
        parts.append(w)
        have += len(w)
        i += 1
    wave = torch.cat(parts)[:need]
    rss_loaded = peak_rss_mb()
    t0 = time.perf_counter()
    result = rec.transcribe(wave.numpy(), sr)
    secs = time.perf_counter() - t0
    return {
        "seconds_audio": need / sr,
        "decode_seconds": secs,
        "rtf": secs / (need / sr),
        "load_seconds": load_secs,
        "words": len(result.words),
        "threads": torch.get_num_threads(),
        "rss_before_decode_mb": rss_loaded,
        "peak_rss_mb": peak_rss_mb(),
    }


JOBS = {"train": job_train, "length": job_length}


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    job, params = argv[0], json.loads(argv[1])
    result = JOBS[job](params)
    print("BENCH-RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
