"""Cost of online i-vector extraction, per second of audio (issue 14's budget: <= 0.001 RTF on one thread).

Times what decoding adds for a model with i-vectors: for each utterance of
a data dir, the online i-vectors (one per period) from its raw features, as
``asr decode`` and ``asr transcribe`` compute them (per utterance, no
speaker history).  Feature extraction is not counted: the network's features
are computed anyway.

With ``--model-dir`` it also times one-thread decoding of the same audio
(``Recognizer.transcribe`` on each waveform: features, network, search),
alternating with the extraction in the same process, so that the share of
extraction in decoding is measured under the same conditions even on a
shared machine.

    python -m benchmarks.ivector_cost --extractor-dir EXP/ivector --data DATA/test \\
        [--model-dir EXP/blstm_mmi --graph-dir DATA/lang_tg --decode-config conf/an4/decode.yaml] [--repeats 3] \\
        [--dim 50] [--period 20]

Times are the process's CPU time (on one thread it leaves out the time spent
waiting for a core, the steadier figure on a shared machine) and wall time;
each figure is the median (min-max) over the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Callable

import torch


def timed(fn: Callable[[], None]) -> tuple[float, float]:
    """(CPU, wall) seconds of one call."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - t0


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.5f} ({min(values):.5f}-{max(values):.5f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--extractor-dir", required=True)
    p.add_argument("--data", required=True, help="data dir with features and audio (e.g. AN4's data/test)")
    p.add_argument("--model-dir", help="also time one-thread decoding with this model dir")
    p.add_argument("--graph-dir", help="its graph (default: the model dir's)")
    p.add_argument("--decode-config", default="decode.yaml")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dim", type=int, help="time an untrained extractor of this i-vector dimension on the same UBM "
                   "instead (the cost does not depend on T's values)")
    p.add_argument("--period", type=int, help="time at this period instead of the extractor's")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    from asr.adapt.model import IvectorModel
    from asr.adapt.online import online_ivectors
    from asr.adapt.train import raw_features
    from asr.features.extract import load_feature_config

    model = variant(IvectorModel.load(args.extractor_dir), args.dim, args.period)
    feats = [f for f in raw_features(args.data).values() if len(f)]
    shift = float(load_feature_config(args.data).get("frame_shift", 10.0)) / 1000.0
    audio = sum(len(f) for f in feats) * shift

    def extract() -> None:
        for f in feats:
            online_ivectors(model, f)

    decode = None
    if args.model_dir:
        decode, audio_decoded = decoding(args)
    extract()  # warm-up: caches, allocator
    if decode:
        decode()
    ext_runs, dec_runs = [], []
    for _ in range(args.repeats):
        ext_runs.append(timed(extract))
        if decode:
            dec_runs.append(timed(decode))
    print(f"online i-vector extraction: {len(feats)} utterances, {audio:.1f} s of audio (frames x shift), "
          f"{model.ubm.num_gauss} Gaussians, dim {model.ivector_dim}, period {model.period}, 1 thread")
    for name, col in (("CPU", 0), ("wall", 1)):
        ext = [r[col] / audio for r in ext_runs]
        line = f"{name} time: extraction RTF {summary(ext)}"
        if decode:
            dec = [r[col] / audio_decoded for r in dec_runs]
            share = [e / d for e, d in zip(ext, dec)]
            line += f"; decoding RTF {summary(dec)}; extraction / decoding {summary(share)}"
        print(line)
    return 0


def variant(model, dim: int | None, period: int | None):
    """The extractor with another i-vector dimension (a random T, :func:`asr.adapt.ivector.init_extractor`) or period."""
    import dataclasses

    from asr.adapt.ivector import init_extractor
    from asr.adapt.model import IvectorModel

    cfg = model.config
    if period:
        cfg = dataclasses.replace(cfg, online=dataclasses.replace(cfg.online, period=period))
    extractor = model.extractor
    if dim and dim != model.ivector_dim:
        cfg = dataclasses.replace(cfg, extractor=dataclasses.replace(cfg.extractor, ivector_dim=dim))
        extractor = init_extractor(model.ubm, cfg.extractor)
    return IvectorModel(cfg, model.transform, model.ubm, extractor, model.info, model.path)


def decoding(args: argparse.Namespace) -> tuple[Callable[[], None], float]:
    """A function transcribing every waveform of the data dir once, and the seconds of audio."""
    from asr.data.audio import load_audio
    from asr.data.datadir import DataDir
    from asr.recognizer import Recognizer

    rec = Recognizer.from_dir(args.model_dir, args.graph_dir, args.decode_config)
    dd = DataDir.load(args.data)
    waves = []
    for utt in dd.utterances:
        path, start, end = dd.audio_source(utt)
        waves.append(load_audio(path, rec.sample_rate, start, end))

    def run() -> None:
        for w in waves:
            rec.transcribe(w, rec.sample_rate)

    return run, sum(len(w) for w in waves) / rec.sample_rate


if __name__ == "__main__":
    sys.exit(main())
