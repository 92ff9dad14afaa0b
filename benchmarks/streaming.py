"""Streaming benchmark (issue 17): WER, RTF and latency of ``Recognizer.stream()``, and bounded memory.

On a test set, each utterance is fed in ``--chunk``-second pieces through a
new stream, timed as if the audio arrived in real time: chunk ``i`` arrives at
``(i + 1) * chunk`` seconds of audio and is processed once it has arrived and
the previous chunk is done.  Reported:

- %WER of the final segments, and of the same model decoded offline
  (``Recognizer.transcribe``, the same graph and decode config), and of another
  offline model's decode dir (``--offline-decode``, e.g. the BLSTM's);
- RTF: processing seconds / audio seconds, one thread (``--threads``);
- final-result latency after the endpoint fires: processing time of the chunk
  in which a rule cut the segment (or of ``finish()``);
- with ``--word-ctm`` (``asr align``'s word.ctm of the set): latency of the
  last final result after the end of speech (the last word's end), and of the
  first non-empty partial after the start of speech (the first word's start);
- ``--long-hours H``: a stream of H hours (the set's utterances again and
  again, 1 s of silence between them) with the process's resident memory
  sampled every simulated minute, and the most frames one search held.

Usage, from the repository root, after ``recipes/an4/run.sh --systems 'ce mmi tree stream'``::

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.streaming --workdir recipes/an4 \\
        --model-dir exp/tdnn_stream --data data/test_stream --graph-dir data/lang_tg \\
        --word-ctm exp/tdnn_stream/ali_test/word.ctm --offline-decode exp/blstm/decode_test_tg \\
        --long-hours 1 --out exp/tdnn_stream/stream_test_tg

``--out`` gets ``text`` (the streaming hypotheses), ``wer`` and ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine_info

log = logging.getLogger("benchmarks.streaming")


def read_table(path: Path) -> dict[str, str]:
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, rest = line.partition(" ")
        if key:
            rows[key] = rest.strip()
    return rows


def speech_times(word_ctm: Path) -> dict[str, tuple[float, float]]:
    """``{utt: (first word start, last word end)}`` from a word CTM (silence tokens have no line)."""
    times: dict[str, tuple[float, float]] = {}
    for line in word_ctm.read_text(encoding="utf-8").splitlines():
        utt, _, start, dur, *_ = line.split()
        s, e = float(start), float(start) + float(dur)
        old = times.get(utt)
        times[utt] = (s, e) if old is None else (min(old[0], s), max(old[1], e))
    return times


def stream_utterance(rec, wave: np.ndarray, rate: int, chunk: float) -> dict:
    """Feeds one utterance in real time (simulated); returns its words, times and latencies."""
    stream = rec.stream()
    step = max(1, int(round(chunk * rate)))
    clock = 0.0  # simulated wall clock: audio arrival, or the end of the previous chunk's processing
    busy = 0.0
    first_partial = None
    finals, endpoint_latency, final_time = [], [], None
    for i in range(0, len(wave), step):
        arrival = min(i + step, len(wave)) / rate
        t0 = time.perf_counter()
        segs = stream.accept(wave[i:i + step], rate)
        partial = stream.partial().text
        spent = time.perf_counter() - t0
        busy += spent
        clock = max(clock, arrival) + spent
        if partial and first_partial is None:
            first_partial = clock
        if segs:
            finals += segs
            endpoint_latency.append(spent)
            final_time = clock
    t0 = time.perf_counter()
    segs = stream.finish()
    spent = time.perf_counter() - t0
    busy += spent
    clock = max(clock, len(wave) / rate) + spent
    if segs:
        finals += segs
        endpoint_latency.append(spent)
        final_time = clock
    return {"words": [w.word for s in finals for w in s.words], "busy": busy, "first_partial": first_partial,
            "final_time": final_time, "endpoint_latency": endpoint_latency, "segments": len(finals),
            "max_frames_held": stream.stats.max_frames_held, "endpoints": dict(stream.stats.endpoints)}


def rss_mb() -> float:
    """Resident memory of this process in MB (/proc/self/statm)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def long_stream(rec, waves: list[np.ndarray], rate: int, chunk: float, hours: float) -> dict:
    """One stream of ``hours`` hours: the utterances again and again with 1 s of silence between them."""
    rng = np.random.default_rng(0)
    stream = rec.stream()
    step = max(1, int(round(chunk * rate)))
    fed, minute, samples_rss, words, busy = 0, 0, [], 0, 0.0
    total = int(hours * 3600 * rate)
    k = 0
    while fed < total:
        silence = (rng.normal(size=rate) * 1e-4).astype(np.float32)  # 1 s of near silence
        piece = np.concatenate([waves[k % len(waves)], silence])
        k += 1
        for i in range(0, len(piece), step):
            t0 = time.perf_counter()
            segs = stream.accept(piece[i:i + step], rate)
            busy += time.perf_counter() - t0
            words += sum(len(s.words) for s in segs)
        fed += len(piece)
        if fed >= (minute + 1) * 60 * rate:
            minute = fed // (60 * rate)
            samples_rss.append((round(fed / rate / 60, 2), round(rss_mb(), 1)))
    words += sum(len(s.words) for s in stream.finish())
    rss = [r for _, r in samples_rss]
    first_10 = max(r for m, r in samples_rss if m <= 10) if samples_rss else None
    return {"hours": fed / rate / 3600, "utterances": k, "words": words, "segments": stream.stats.segments,
            "max_frames_held": stream.stats.max_frames_held, "max_segment_frames": stream.max_frames,
            "rss_mb_first_10_min": first_10, "rss_mb_max": max(rss) if rss else None,
            "rss_mb_last": rss[-1] if rss else None, "rss_samples": samples_rss, "rtf": busy / (fed / rate),
            "endpoints": dict(stream.stats.endpoints)}


def wer_of(refs: dict[str, list[str]], hyps: dict[str, list[str]]):
    from asr.scoring.wer import format_wer, score

    result = score(refs, hyps)
    return result.wer, format_wer(result)


def run(args: argparse.Namespace) -> dict:
    import torch

    import asr
    from asr.data.audio import load_audio
    from asr.data.datadir import DataDir

    torch.set_num_threads(args.threads)
    work = Path(args.workdir)
    data = work / args.data
    rec = asr.Recognizer.from_dir(work / args.model_dir, work / args.graph_dir if args.graph_dir else None,
                                  args.config)
    rate = rec.sample_rate
    dd = DataDir.load(data)
    refs = {u: t.split() for u, t in read_table(data / "text").items()}
    utts = dd.utterances[: args.limit] if args.limit else dd.utterances
    times = speech_times(work / args.word_ctm) if args.word_ctm else {}
    per, offline, audio = {}, {}, 0.0
    waves = []
    for utt in utts:
        path, start, end = dd.audio_source(utt)
        wave = load_audio(path, rate, start, end).numpy()
        waves.append(wave)
        audio += len(wave) / rate
        per[utt] = stream_utterance(rec, wave, rate, args.chunk)
        offline[utt] = rec.transcribe(wave, rate).text.split()
    hyps = {u: r["words"] for u, r in per.items()}
    refs = {u: refs[u] for u in utts}
    wer_stream, line_stream = wer_of(refs, hyps)
    wer_offline, line_offline = wer_of(refs, offline)
    ep_lat = [x for r in per.values() for x in r["endpoint_latency"]]
    out = {
        "command": " ".join(sys.argv), "machine": machine_info(), "threads": args.threads, "chunk": args.chunk,
        "utterances": len(utts), "audio_seconds": audio,
        "wer_stream": wer_stream, "wer_stream_line": line_stream,
        "wer_offline_same_model": wer_offline, "wer_offline_line": line_offline,
        "relative_to_offline": (wer_stream - wer_offline) / wer_offline if wer_offline else None,
        "rtf": sum(r["busy"] for r in per.values()) / audio,
        "endpoint_latency_median": float(np.median(ep_lat)) if ep_lat else None,
        "endpoint_latency_max": max(ep_lat) if ep_lat else None,
        "max_frames_held": max(r["max_frames_held"] for r in per.values()),
    }
    if args.offline_decode:
        out["wer_offline_decode_dir"] = (work / args.offline_decode / "wer").read_text(encoding="utf-8").splitlines()[0]
    if times:
        final_lat = [per[u]["final_time"] - times[u][1] for u in utts if u in times and per[u]["final_time"]]
        first_lat = [per[u]["first_partial"] - times[u][0] for u in utts if u in times and per[u]["first_partial"]]
        out["final_latency_after_speech_median"] = float(np.median(final_lat)) if final_lat else None
        out["first_partial_latency_median"] = float(np.median(first_lat)) if first_lat else None
    if args.long_hours > 0:
        out["long"] = long_stream(rec, waves, rate, args.chunk, args.long_hours)
    if args.out:
        from asr.fileio import atomic_write_text

        d = work / args.out
        d.mkdir(parents=True, exist_ok=True)
        atomic_write_text(d / "text", "".join(f"{u} {' '.join(hyps[u])}\n" for u in utts))
        atomic_write_text(d / "wer", line_stream + "\n")
        atomic_write_text(d / "results.json", json.dumps(out, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", default="recipes/an4", help="recipe work dir (paths below are relative to it)")
    p.add_argument("--model-dir", default="exp/tdnn_stream")
    p.add_argument("--data", default="data/test_stream", help="data dir with wav.scp and text")
    p.add_argument("--graph-dir", default="data/lang_tg")
    p.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "conf" / "an4" / "decode.yaml"))
    p.add_argument("--chunk", type=float, default=0.16, help="seconds per chunk (default 0.16)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--word-ctm", help="asr align's word.ctm of the data, for the latencies against speech")
    p.add_argument("--offline-decode",
                   help="a decode dir of another model to report beside (e.g. exp/blstm/decode_test_tg)")
    p.add_argument("--long-hours", type=float, default=0.0, help="hours of the bounded-memory stream (0: skip)")
    p.add_argument("--limit", type=int, help="only the first N utterances")
    p.add_argument("--out", help="output dir (text, wer, results.json), relative to --workdir")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = run(args)
    shown = {k: v for k, v in out.items() if k not in ("machine",)}
    if "long" in shown:
        shown["long"] = {k: v for k, v in shown["long"].items() if k != "rss_samples"}
    print(json.dumps(shown, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
