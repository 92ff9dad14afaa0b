"""The benchmark suite: ``python -m benchmarks``, run from the repository root.

Every section returns ``{"status": "ok"|"skipped"|"error", "tables": [...],
"data": {...}}``; figures measured several times are ``{"median", "min",
"max", "n", "values"}``.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks.common import (
    ROOT, fmt_stat, loglog_slope, machine_info, markdown_table, run_worker, stat, text_table,
)

log = logging.getLogger("benchmarks")

SECTIONS = ("decode", "throughput", "train", "graph", "length", "features", "peer")
TRAIN_MODELS = ("tdnn", "lstm", "blstm", "cnn_lstm")
#: Smallest resident-memory growth (MiB) the length section fits a slope to.
MEMORY_FLOOR_MB = 16


# -- context -------------------------------------------------------------------


class Context:
    """Paths and settings shared by the sections."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.quick = bool(args.quick)
        default_workdir = ROOT / ("recipes/yesno" if self.quick else "recipes/an4")
        self.workdir = Path(args.workdir or default_workdir).resolve()
        self.model = args.model or ("tdnn" if self.quick else "blstm")
        self.model_dir = self.workdir / "exp" / self.model
        self.test_dir = self.workdir / "data" / "test"
        self.train_dir = self.workdir / "data" / "train"
        self.lang_dir = self.workdir / "data" / "lang"
        self.repeats = max(1, int(args.repeats))
        self.nproc = os.cpu_count() or 1
        self.corpus = Path(args.corpus).resolve() if args.corpus else (ROOT.parent / "shared" / "corpora" / "an4")
        self._test = None

    def check(self) -> None:
        for p in (self.model_dir / "model.pt", self.test_dir / "wav.scp", self.lang_dir / "words.txt"):
            if not p.exists():
                hint = "recipes/yesno/run.sh" if self.quick else "recipes/an4/run.sh"
                raise SystemExit(f"benchmarks: {p} is missing: run {hint} first (or pass --workdir/--model)")

    def test_set(self):
        """(DataDir, utterance ids, total audio seconds from utt2dur)."""
        if self._test is None:
            from asr.data.datadir import DataDir

            dd = DataDir.load(self.test_dir)
            utts = dd.utterances
            if dd.utt2dur is None:
                raise RuntimeError(f"{self.test_dir}: no utt2dur")
            self._test = (dd, utts, sum(float(dd.utt2dur[u]) for u in utts))
        return self._test

    def decode_config_path(self) -> Path:
        """The recipe's decoding config (``conf/an4/decode.yaml``; the packaged default with --quick),
        or ``--decode-config``."""
        from asr.config import resolve_config

        if self.args.decode_config:
            return Path(self.args.decode_config)
        return Path(str(resolve_config("decode.yaml"))) if self.quick else ROOT / "conf" / "an4" / "decode.yaml"

    def decode_config(self) -> dict:
        from asr.config import load_config

        return load_config(self.decode_config_path())

    def arpa_for_peer(self) -> Path | None:
        for name in ("lang_tg", "lang_bg", "lang_ug"):
            p = self.workdir / "data" / name / "lm.arpa"
            if p.is_file():
                return p
        return None


def _threads_settings(ctx: Context) -> list[int]:
    return sorted({1, ctx.nproc})


def _load_waves(ctx: Context, sample_rate: int) -> dict:
    from asr.data.audio import load_audio

    dd, utts, _ = ctx.test_set()
    out = {}
    for u in utts:
        path, start, end = dd.audio_source(u)
        out[u] = load_audio(path, sample_rate, start, end)
    return out


# -- 1. decode -------------------------------------------------------------------


#: The timed parts of one decode run (seconds), in the order of the table.
DECODE_PARTS = ("model_load", "graph_load", "features", "forward", "search", "total", "rtf")


def _decode_utterances(decoder, waves: dict, utts: list[str], fcfg: dict, scfg) -> tuple[dict, dict]:
    """Decodes the test set one utterance at a time: (hypotheses, seconds of features/forward/search)."""
    import torch

    from asr.decoding.search import read_paths, rescore_best_paths, search
    from asr.features.cmvn import apply_cmvn, cmvn_stats
    from asr.features.extract import compute_utterance_features

    norm_vars = bool(fcfg.get("norm_vars", False))
    t_feat = t_fwd = t_search = 0.0
    hyp = {}
    for u in utts:
        a = time.perf_counter()
        feats = compute_utterance_features(waves[u], fcfg)
        feats = apply_cmvn(feats, cmvn_stats(feats), norm_vars)
        b = time.perf_counter()
        _, am, out_lengths = decoder.acoustic_scores(feats.unsqueeze(0), torch.tensor([len(feats)]))
        c = time.perf_counter()
        lattice = search(decoder.HLG, am, out_lengths, scfg)
        best = rescore_best_paths(lattice, 1.0, scfg.word_penalty, scfg.acoustic_scale)
        path = read_paths(best, out_lengths.tolist())[0]
        d = time.perf_counter()
        t_feat += b - a
        t_fwd += c - b
        t_search += d - c
        hyp[u] = [decoder.words.get(w) for w in path.word_ids]
    return hyp, {"features": t_feat, "forward": t_fwd, "search": t_search}


def _decode_once(ctx: Context, cfg: dict, scfg, hlg_path: Path, ref: dict, runs: dict[str, list[float]]):
    """One timed decode of the test set: appends each part's seconds to ``runs``; the score against ``ref``."""
    from asr.decoding.decoder import Decoder
    from asr.lang.fsa_io import load_fsa
    from asr.model_dir import ModelDir
    from asr.scoring.wer import score

    _, utts, audio_secs = ctx.test_set()
    t0 = time.perf_counter()
    md = ModelDir.load(ctx.model_dir)
    t1 = time.perf_counter()
    decoder = Decoder(md, load_fsa(hlg_path), scfg, bool(cfg.get("use_priors", True)),
                      float(cfg.get("prior_scale", 1.0)))
    t2 = time.perf_counter()
    runs["model_load"].append(t1 - t0)
    runs["graph_load"].append(t2 - t1)
    fcfg = md.feature_config
    waves = _load_waves(ctx, int(fcfg["sample_rate"]))  # file reading is not timed
    hyp, parts = _decode_utterances(decoder, waves, utts, fcfg, scfg)
    total = parts["features"] + parts["forward"] + parts["search"]
    for k, v in (*parts.items(), ("total", total), ("rtf", total / audio_secs)):
        runs[k].append(v)
    return score(ref, hyp)


def section_decode(ctx: Context) -> dict:
    """Decoding time per part (model/graph load, features, forward, search) and RTF, at 1 and all threads."""
    import torch

    from asr.data.datadir import read_text
    from asr.decoding.search import SearchConfig
    from asr.scoring.wer import format_wer

    dd, utts, audio_secs = ctx.test_set()
    cfg = ctx.decode_config()
    scfg = SearchConfig.from_dict(cfg["search"])
    hlg_path = ctx.model_dir / "graph" / "HLG.pt"
    ref = read_text(ctx.test_dir / "text")
    results, rows = {}, []
    saved = torch.get_num_threads()
    try:
        for threads in _threads_settings(ctx):
            torch.set_num_threads(threads)
            runs = {k: [] for k in DECODE_PARTS}
            wer_line, wer = None, None
            for _ in range(ctx.repeats):
                res = _decode_once(ctx, cfg, scfg, hlg_path, ref, runs)
                wer_line, wer = format_wer(res).splitlines()[0], res.wer
            s = {k: stat(v) for k, v in runs.items()}
            results[f"threads_{threads}"] = {"threads": threads, **s, "wer": wer, "wer_line": wer_line}
            rows.append([threads, fmt_stat(s["rtf"]), fmt_stat(s["features"]), fmt_stat(s["forward"]),
                         fmt_stat(s["search"]), fmt_stat(s["model_load"]), fmt_stat(s["graph_load"]),
                         f"{wer:.2f}" if wer is not None else "-"])
    finally:
        torch.set_num_threads(saved)
    data = {"model_dir": str(ctx.model_dir), "graph": str(hlg_path), "utterances": len(utts),
            "audio_seconds": audio_secs, "batch": "one utterance at a time", **results}
    title = (f"decode: {len(utts)} utterances, {audio_secs:.1f} s of audio, model {ctx.model} "
             f"(seconds; RTF = (features + forward + search) / audio)")
    cols = ["threads", "RTF", "features s", "forward s", "search s", "model load s", "graph load s", "%WER"]
    return {"status": "ok", "tables": [{"title": title, "columns": cols, "rows": rows}], "data": data}


# -- 2. throughput ------------------------------------------------------------------


def section_throughput(ctx: Context) -> dict:
    dd, utts, audio_secs = ctx.test_set()
    if not (ctx.test_dir / "feats.scp").is_file():
        return {"status": "skipped", "reason": f"{ctx.test_dir} has no feats.scp", "tables": [], "data": {}}
    nj = 2
    walls = []
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd0 = [sys.executable, "-m", "asr", "decode", "--model-dir", str(ctx.model_dir), str(ctx.test_dir),
            "--config", str(ctx.decode_config_path())]
    for _ in range(ctx.repeats):
        with tempfile.TemporaryDirectory(prefix="asr-bench-decode-") as tmp:
            cmd = cmd0 + [str(Path(tmp) / "decode"), "--nj", str(nj)]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            walls.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                raise RuntimeError(f"{shlex.join(cmd)} failed:\n{proc.stderr[-2000:]}")
            wer_line = next((l for l in proc.stdout.splitlines() if l.startswith("%WER")), None)
    wall = stat(walls)
    ups = stat([len(utts) / w for w in walls])
    rtf = stat([w / audio_secs for w in walls])
    data = {"command": shlex.join(cmd0 + ["OUT", "--nj", str(nj)]), "nj": nj, "utterances": len(utts),
            "audio_seconds": audio_secs, "wall_seconds": wall, "utterances_per_second": ups, "rtf": rtf,
            "wer_line": wer_line}
    rows = [[nj, fmt_stat(wall), fmt_stat(ups), fmt_stat(rtf), wer_line or "-"]]
    title = ("throughput: asr decode --nj 2 (subprocess wall time: start-up, model/graph load, batched search, "
             "scoring; features precomputed)")
    return {"status": "ok", "tables": [{"title": title, "columns": ["nj", "wall s", "utt/s", "wall/audio", "WER"],
                                        "rows": rows}], "data": data}


# -- 3. train -----------------------------------------------------------------------


def _train_alignments(ctx: Context) -> Path:
    """The flat-start alignments in ``data/lang``: ``exp/flat/ali_cd`` where the
    recipe aligned into a context-dependent lang, else ``exp/flat/ali``."""
    flat = ctx.workdir / "exp" / "flat"
    return flat / "ali_cd" if (flat / "ali_cd" / "ali.ark").is_file() else flat / "ali"


def _train_configs(ctx: Context) -> list[tuple[str, dict, str | None, str]]:
    """(name, config, ali_dir, source) for each model type and LF-MMI."""
    from asr.config import load_config

    ali = _train_alignments(ctx)
    conf = ROOT / "conf" / ("yesno" if ctx.quick else "an4")
    if ctx.quick:
        base = load_config(conf / "ce.yaml")
        sizes = {
            "tdnn": dict(base["model"]),
            "lstm": {"type": "lstm", "hidden": 32, "layers": 2, "dropout": 0.0},
            "blstm": {"type": "blstm", "hidden": 32, "layers": 2, "dropout": 0.0},
            "cnn_lstm": {"type": "cnn_lstm", "hidden": 32, "layers": 2, "dropout": 0.0, "channels": [8, 8]},
        }
    else:
        base = load_config(conf / "blstm.yaml")
        flat = load_config(conf / "flat_start.yaml")
        sizes = {
            # no conf/an4/tdnn.yaml: the flat-start TDNN's architecture
            "tdnn": dict(flat["model"]),
            "lstm": {**base["model"], "type": "lstm"},
            "blstm": dict(base["model"]),
            "cnn_lstm": {**base["model"], "type": "cnn_lstm"},
        }
    out = []
    for name in TRAIN_MODELS:
        own = conf / f"{name}.yaml"
        if own.is_file() and load_config(own).get("criterion") == "ce":
            cfg, src = load_config(own), str(own.relative_to(ROOT))
        else:
            cfg = {**base, "model": sizes[name]}
            m = sizes[name]
            src = (f"{(conf / ('ce.yaml' if ctx.quick else 'blstm.yaml')).relative_to(ROOT)}, model {m['type']} "
                   f"hidden {m.get('hidden')} layers {m.get('layers', len(m.get('context', [])) or None)}")
        out.append((f"{name} ce", cfg, str(ali), src))
    lf = conf / "lfmmi.yaml"
    if lf.is_file():
        out.append(("tdnn lfmmi", load_config(lf), None, str(lf.relative_to(ROOT))))
    return out


def section_train(ctx: Context) -> dict:
    warmup, batches = (1, 3) if ctx.quick else (2, 20)
    if ctx.args.train_batches:
        batches = int(ctx.args.train_batches)
    rows, data = [], {"warmup_batches": warmup, "timed_batches": batches, "runs": {}}
    ali = _train_alignments(ctx)
    if not (ali / "ali.ark").is_file():
        return {"status": "skipped", "reason": f"{ali}/ali.ark missing (flat-start alignments)", "tables": [],
                "data": {}}
    for name, cfg, ali_dir, src in _train_configs(ctx):
        res = []
        try:
            for _ in range(ctx.repeats):
                res.append(run_worker("train", {
                    "config": cfg, "data_dir": str(ctx.train_dir), "lang_dir": str(ctx.lang_dir), "ali_dir": ali_dir,
                    "warmup": warmup, "batches": batches, "threads": None,
                }))
        except Exception as e:  # one model failing must not hide the others
            data["runs"][name] = {"error": str(e), "config_source": src}
            rows.append([name, "error", "-", "-", "-", src])
            continue
        fps = stat([r["frames_per_second"] for r in res])
        rss = stat([r["peak_rss_mb"] for r in res])
        data["runs"][name] = {"frames_per_second": fps, "peak_rss_mb": rss, "parameters": res[0]["parameters"],
                              "threads": res[0]["threads"], "config_source": src, "model": cfg["model"],
                              "max_frames": cfg.get("max_frames"), "raw": res}
        rows.append([name, fmt_stat(fps), fmt_stat(rss), f"{res[0]['parameters']:,}", res[0]["threads"], src])
    title = (f"train: input frames (10 ms) per second over {batches} batches after {warmup} warm-up, "
             "one process per run (torch default threads); peak RSS of that process")
    cols = ["model/criterion", "frames/s", "peak RSS MiB", "params", "threads", "config"]
    return {"status": "ok", "tables": [{"title": title, "columns": cols, "rows": rows}], "data": data}


# -- 4. graph -----------------------------------------------------------------------


def _compile(lang_dir: Path, out: Path, **kw) -> dict:
    import yaml

    from asr.lang.graph import build_graph_dir

    t0 = time.perf_counter()
    build_graph_dir(lang_dir, out, **kw)
    wall = time.perf_counter() - t0
    info = yaml.safe_load((out / "graph.yaml").read_text())
    return {"wall": wall, "hlg_compose": float(info["compile_seconds"]), "G": info["G"], "HLG": info["HLG"]}


def _synthetic_lexicon(phones: list[str], silence: set[str], optional_silence: str, vocab: int,
                       rng: random.Random) -> tuple[list[str], list[str]]:
    """``vocab`` random words of 4-8 phones: (the words, the lexicon lines, silence entries included)."""
    words = [f"W{i:06d}" for i in range(vocab)]
    lex_lines = [f"<SIL> {optional_silence}"]
    k = 0
    for w in words:
        n = rng.randint(4, 8)
        pron = []
        for _ in range(n):
            if k < len(phones):  # the first words cover every phone, so the pdf set is the model's
                pron.append(phones[k])
                k += 1
            else:
                pron.append(rng.choice(phones))
        lex_lines.append(f"{w} {' '.join(pron)}")
    for p in sorted(silence):  # keep the silence phones in the phone set
        if p != optional_silence:
            lex_lines.append(f"<{p}> {p}")
    return words, lex_lines


def _write_synthetic_bigram(words: list[str], rng: random.Random, arpa: Path) -> None:
    """An ARPA bigram over ``words``: near-uniform unigrams; each history has 5 random successors
    holding half its mass, and a back-off weight that makes it sum to 1."""
    import math

    vocab = len(words)
    weights = [1.0 + rng.random() for _ in words] + [float(vocab) / 20 + 1.0]  # the last one is </s>
    tot = sum(weights)
    uni = {w: x / tot for w, x in zip(words + ["</s>"], weights)}
    lines_bi = []
    backoff = {}
    for h in ["<s>"] + words:
        cands = words if h == "<s>" else words + ["</s>"]
        succ = rng.sample(cands, min(5, len(cands)))
        raw = [rng.random() + 0.1 for _ in succ]
        mass = 0.5
        probs = [mass * r / sum(raw) for r in raw]
        for s, p in zip(succ, probs):
            lines_bi.append(f"{math.log10(p):.6f}\t{h} {s}")
        backoff[h] = math.log10((1.0 - mass) / (1.0 - sum(uni[s] for s in succ)))
    with open(arpa, "w") as f:
        f.write(f"\\data\\\nngram 1={vocab + 2}\nngram 2={len(lines_bi)}\n\n\\1-grams:\n")
        f.write(f"-99\t<s>\t{backoff['<s>']:.6f}\n")
        f.write(f"{math.log10(uni['</s>']):.6f}\t</s>\n")
        for w in words:
            f.write(f"{math.log10(uni[w]):.6f}\t{w}\t{backoff[w]:.6f}\n")
        f.write("\n\\2-grams:\n")
        f.write("\n".join(lines_bi) + "\n\n\\end\\\n")


def _synthetic_lang(ctx: Context, vocab: int, tmp: Path, rng: random.Random) -> tuple[Path, Path]:
    """A lang dir of ``vocab`` random words over the model's phone set and a bigram ARPA (5 successors/word)."""
    from asr.config import load_config
    from asr.lang.lang_dir import LangDir, plain_phone_config, prepare_lang

    model_lang = LangDir.load(ctx.model_dir / "lang")
    lang_cfg = load_config(ctx.model_dir / "lang" / "lang.yaml")
    # The model's units are used as plain phones: the random words need no
    # expansion to have the model's pdfs.
    lang_cfg = plain_phone_config(lang_cfg)
    silence = set(lang_cfg["silence_phones"])
    phones = sorted({p for _, pron in model_lang.lexicon for p in pron if p not in silence})
    words, lex_lines = _synthetic_lexicon(phones, silence, lang_cfg["optional_silence"], vocab, rng)
    lexicon = tmp / "lexicon.txt"
    lexicon.write_text("\n".join(lex_lines) + "\n")
    lang_dir = tmp / "lang"
    prepare_lang(lexicon, lang_dir, lang_cfg)
    arpa = tmp / "lm.arpa"
    _write_synthetic_bigram(words, rng, arpa)
    return lang_dir, arpa


def _test_outputs(ctx: Context):
    """The model's acoustic scores on the test set: list of (am (1, T, S), lengths)."""
    import torch

    from asr.decoding.decoder import Decoder
    from asr.decoding.search import SearchConfig
    from asr.features.extract import load_features

    cfg = ctx.decode_config()
    dec = Decoder.from_model_dir(ctx.model_dir, SearchConfig.from_dict(cfg["search"]), None,
                                 bool(cfg.get("use_priors", True)), "cpu", float(cfg.get("prior_scale", 1.0)))
    outs = []
    for _, feats in load_features(ctx.test_dir):
        _, am, n = dec.acoustic_scores(feats.unsqueeze(0), torch.tensor([len(feats)]))
        outs.append((am, n))
    return dec, outs


def _search_time(HLG, outs, scfg) -> float:
    from asr.decoding.search import prepare_hlg, rescore_best_paths, search

    H = prepare_hlg(HLG)
    t0 = time.perf_counter()
    for am, n in outs:
        lat = search(H, am, n, scfg)
        rescore_best_paths(lat, 1.0, scfg.word_penalty, scfg.acoustic_scale)
    return time.perf_counter() - t0


def _recipe_lms(ctx: Context) -> list[tuple[str, dict]]:
    """(name, build_graph_dir arguments) of the LMs the recipe compiles: unigram, bigram, trigram."""
    lms = []
    ug = ctx.corpus / "etc" / "an4.ug.lm"
    if not ctx.quick and ug.is_file():
        lms.append(("unigram (an4.ug.lm)", {"arpa": ug}))
    elif not ctx.quick:
        log.warning("%s not found (--corpus): unigram from the training text instead", ug)
        lms.append(("unigram (text)", {"text_files": [ctx.train_dir / "text"], "order": 1}))
    else:
        lms.append(("unigram (text)", {"text_files": [ctx.train_dir / "text"], "order": 1}))
    lms.append(("bigram (text)", {"text_files": [ctx.train_dir / "text"], "order": 2}))
    lms.append(("trigram (text)", {"text_files": [ctx.train_dir / "text"], "order": 3}))
    return lms


def _graph_recipe_lms(ctx: Context) -> tuple[dict, dict]:
    """Part a) of the graph section: compile time and sizes of the recipe's LMs (table, data)."""
    data, rows = {}, []
    with tempfile.TemporaryDirectory(prefix="asr-bench-graph-") as tmp:
        for i, (name, kw) in enumerate(_recipe_lms(ctx)):
            runs = [_compile(ctx.lang_dir, Path(tmp) / f"lm{i}_{r}", **kw) for r in range(ctx.repeats)]
            wall, comp = stat([r["wall"] for r in runs]), stat([r["hlg_compose"] for r in runs])
            data[name] = {"wall_seconds": wall, "hlg_compose_seconds": comp, "G": runs[0]["G"],
                          "HLG": runs[0]["HLG"]}
            rows.append([name, fmt_stat(wall), fmt_stat(comp), f"{runs[0]['G']['arcs']:,}",
                         f"{runs[0]['HLG']['states']:,}", f"{runs[0]['HLG']['arcs']:,}"])
    table = {"title": f"graph: compile the recipe's LMs over {ctx.lang_dir} (seconds; wall = LM + G + HLG)",
             "columns": ["LM", "wall s", "HLG compose s", "G arcs", "HLG states", "HLG arcs"], "rows": rows}
    return table, data


def _single_thread(fn, *args):
    """``fn(*args)`` with one torch thread (like the decode section's single-process row)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(saved)


def _sweep_one_size(ctx: Context, v: int, d: Path, rng: random.Random, outs, scfg, model_pdfs: str) -> dict:
    """Compiles a synthetic ``v``-word lang and bigram; times the search when its pdfs are the model's."""
    from asr.lang.fsa_io import load_fsa

    lang_dir, arpa = _synthetic_lang(ctx, v, d, rng)
    runs = [_compile(lang_dir, d / f"graph{r}", arpa=arpa) for r in range(ctx.repeats)]
    same_pdfs = (lang_dir / "pdfs.txt").read_text() == model_pdfs
    search = None
    if same_pdfs:
        HLG = load_fsa(d / "graph0" / "HLG.pt")
        search = _single_thread(lambda: stat([_search_time(HLG, outs, scfg) for _ in range(ctx.repeats)]))
    return {"wall_seconds": stat([r["wall"] for r in runs]),
            "hlg_compose_seconds": stat([r["hlg_compose"] for r in runs]),
            "G": runs[0]["G"], "HLG": runs[0]["HLG"], "search_seconds": search,
            "same_pdfs_as_model": same_pdfs}


def _growth_law(sizes: list[int], syn: dict) -> dict:
    """Log-log slopes of compile time, HLG size and search time against the vocabulary size."""
    keys = [str(v) for v in sizes]
    return {
        "compile_time": loglog_slope(sizes, [syn[k]["wall_seconds"]["median"] for k in keys]),
        "hlg_states": loglog_slope(sizes, [syn[k]["HLG"]["states"] for k in keys]),
        "hlg_arcs": loglog_slope(sizes, [syn[k]["HLG"]["arcs"] for k in keys]),
        "search_time": loglog_slope(sizes, [syn[k]["search_seconds"]["median"] for k in keys])
        if all(syn[k]["search_seconds"] for k in keys) else None,
    }


def _graph_vocab_sweep(ctx: Context) -> tuple[list[dict], dict]:
    """Part b) of the graph section: synthetic vocabularies of growing size (tables, data)."""
    from asr.decoding.search import SearchConfig

    sizes = [int(v) for v in ctx.args.vocab_sizes.split(",")] if ctx.args.vocab_sizes else (
        [100, 300] if ctx.quick else [1000, 10000, 50000])
    cfg = ctx.decode_config()
    scfg = SearchConfig.from_dict(cfg["search"])
    dec, outs = _single_thread(_test_outputs, ctx)
    model_pdfs = (ctx.model_dir / "lang" / "pdfs.txt").read_text()
    syn, rows = {}, []
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="asr-bench-synth-") as tmp:
        for v in sizes:
            d = Path(tmp) / f"v{v}"
            d.mkdir()
            entry = syn[str(v)] = _sweep_one_size(ctx, v, d, rng, outs, scfg, model_pdfs)
            rows.append([f"{v:,}", fmt_stat(entry["wall_seconds"]), fmt_stat(entry["hlg_compose_seconds"]),
                         f"{entry['G']['arcs']:,}", f"{entry['HLG']['states']:,}", f"{entry['HLG']['arcs']:,}",
                         fmt_stat(entry["search_seconds"]) if entry["search_seconds"] else "n/a (pdfs differ)"])
    law = _growth_law(sizes, syn)
    tables = [{
        "title": ("graph: synthetic vocabulary sweep (random 4-8 phone words over the model's phones, bigram with "
                  f"5 successors per word); search = k2 search + best path over the {len(outs)} test utterances' "
                  "network outputs"),
        "columns": ["words", "compile wall s", "HLG compose s", "G arcs", "HLG states", "HLG arcs", "search s"],
        "rows": rows,
    }, {
        "title": "graph: growth law (log-log slope against vocabulary size; 1.0 = linear)",
        "columns": ["quantity", "exponent"],
        "rows": [[k, f"{v:.2f}" if v is not None else "-"] for k, v in law.items()],
    }]
    return tables, {"synthetic": syn, "growth_exponents": law}


def section_graph(ctx: Context) -> dict:
    """Graph compilation: a) the recipe's LMs, b) a synthetic vocabulary sweep with its growth law."""
    lm_table, lm_data = _graph_recipe_lms(ctx)
    sweep_tables, sweep_data = _graph_vocab_sweep(ctx)
    data = {"lm": lm_data, "synthetic": sweep_data["synthetic"], "growth_exponents": sweep_data["growth_exponents"]}
    return {"status": "ok", "tables": [lm_table, *sweep_tables], "data": data}


# -- 5. length ----------------------------------------------------------------------


def section_length(ctx: Context) -> dict:
    lengths = [1.0, 10.0, 60.0, 600.0]
    cap = ctx.args.max_length if ctx.args.max_length is not None else (60.0 if ctx.quick else None)
    if cap is not None:
        lengths = [x for x in lengths if x <= cap]
    dd, utts, _ = ctx.test_set()
    audio = [dd.audio_source(u)[0] for u in utts]
    rows, data = [], {"threads": 1, "runs": {}}
    for sec in lengths:
        res = [run_worker("length", {"model_dir": str(ctx.model_dir), "graph_dir": None,
                                     "decode_config": str(ctx.decode_config_path()), "audio": audio,
                                     "seconds": sec, "threads": 1}) for _ in range(ctx.repeats)]
        t = stat([r["decode_seconds"] for r in res])
        rtf = stat([r["rtf"] for r in res])
        rss = stat([r["peak_rss_mb"] for r in res])
        base = stat([r["rss_before_decode_mb"] for r in res])
        data["runs"][f"{sec:g}"] = {"seconds": sec, "decode_seconds": t, "time_per_audio_second": rtf,
                                    "peak_rss_mb": rss, "rss_before_decode_mb": base}
        rows.append([f"{sec:g}", fmt_stat(t), fmt_stat(rtf), fmt_stat(base), fmt_stat(rss)])
    xs = lengths
    med = {x: data["runs"][f"{x:g}"] for x in xs}
    slope_t = loglog_slope(xs, [med[x]["decode_seconds"]["median"] for x in xs])
    # Over the two longest inputs, where the fixed per-call cost no longer counts.
    tail_t = loglog_slope(xs[-2:], [med[x]["decode_seconds"]["median"] for x in xs[-2:]]) if len(xs) > 1 else None
    # ru_maxrss only moves once decoding needs more than the process already
    # touched while loading the model and graph, so short inputs show no
    # growth at all; fit the memory exponent only where growth is measurable.
    growth = {x: med[x]["peak_rss_mb"]["median"] - med[x]["rss_before_decode_mb"]["median"] for x in xs}
    measurable = [x for x in xs if growth[x] >= MEMORY_FLOOR_MB]
    slope_m = loglog_slope(measurable, [growth[x] for x in measurable]) if len(measurable) > 1 else None
    data["time_exponent"] = slope_t
    data["time_exponent_longest_two"] = tail_t
    data["memory_growth_mb"] = {f"{x:g}": growth[x] for x in xs}
    data["memory_growth_exponent"] = slope_m
    data["linear_time"] = tail_t is not None and abs(tail_t - 1.0) <= 0.15
    verdict = "-" if tail_t is None else ("linear" if data["linear_time"] else
                                          ("sub-linear" if tail_t < 1 else "super-linear"))
    for row, x in zip(rows, xs):
        row.append(f"{growth[x]:,.0f}")
    rows.append(["slope", f"{slope_t:.2f} all; {tail_t:.2f} ({verdict}) over the two longest"
                 if slope_t is not None and tail_t is not None else "-", "", "", "",
                 f"{slope_m:.2f}" if slope_m is not None else
                 f"n/a: growth >= {MEMORY_FLOOR_MB} MiB at {len(measurable)} length(s) only"])
    title = ("length: Recognizer.transcribe on concatenated test audio, one process per run, 1 thread "
             "(time = features + forward + search)")
    return {"status": "ok", "tables": [{"title": title, "columns": ["audio s", "decode s", "decode s / audio s",
                                                                     "RSS before MiB", "peak RSS MiB",
                                                                     "peak - before MiB"],
                                        "rows": rows}], "data": data}


# -- 6. features --------------------------------------------------------------------


def section_features(ctx: Context) -> dict:
    import torch

    from asr.model_dir import ModelDir

    fcfg = ModelDir.load(ctx.model_dir).feature_config
    from asr.features.extract import compute_utterance_features

    dd, utts, audio_secs = ctx.test_set()
    waves = _load_waves(ctx, int(fcfg["sample_rate"]))
    samples = sum(len(w) for w in waves.values())
    secs = samples / int(fcfg["sample_rate"])
    rows, data = [], {"audio_seconds": secs, "utterances": len(utts), "feature_config": fcfg}
    saved = torch.get_num_threads()
    try:
        for threads in _threads_settings(ctx):
            torch.set_num_threads(threads)
            walls = []
            for _ in range(ctx.repeats):
                t0 = time.perf_counter()
                for u in utts:
                    compute_utterance_features(waves[u], fcfg)
                walls.append(time.perf_counter() - t0)
            speed = stat([secs / w for w in walls])
            data[f"threads_{threads}"] = {"wall_seconds": stat(walls), "audio_seconds_per_second": speed}
            rows.append([threads, fmt_stat(stat(walls)), fmt_stat(speed)])
    finally:
        torch.set_num_threads(saved)
    title = (f"features: compute_utterance_features ({fcfg['type']}) over {len(utts)} test utterances, "
             f"{secs:.1f} s of audio (file reading not timed)")
    return {"status": "ok", "tables": [{"title": title, "columns": ["threads", "wall s", "audio s per wall s"],
                                        "rows": rows}], "data": data}


# -- 7. peer ------------------------------------------------------------------------

PEER_INSTALL = "pip install pocketsphinx   (or: pip install -e '.[bench]')"


def _peer_dictionary(ctx: Context, cmudict: Path) -> tuple[list[tuple[str, list[str]]], set[str], list[str]]:
    """CMUdict restricted to the training vocabulary: (entries, words found, training words missing)."""
    train_vocab = sorted({w for line in (ctx.train_dir / "text").read_text().splitlines() for w in line.split()[1:]}
                         - {"<s>", "</s>"})
    wanted = {w.lower(): w for w in train_vocab}
    entries = []
    for line in cmudict.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if not parts:
            continue
        base = parts[0].split("(")[0]
        if base in wanted:
            entries.append((wanted[base] + parts[0][len(base):], parts[1:]))
    in_dict = {w.split("(")[0] for w, _ in entries}
    missing = [w for w in train_vocab if w not in in_dict]
    return entries, in_dict, missing


def _peer_pcm(ctx: Context) -> dict[str, bytes]:
    """The test utterances as 16 kHz 16-bit PCM bytes (the en-us model is 16 kHz)."""
    import torch

    from asr.data.audio import load_audio

    dd, utts, _ = ctx.test_set()
    logging.getLogger("asr.data.audio").setLevel(logging.ERROR)  # "resampling" per file (yesno is 8 kHz)
    pcm = {}
    for u in utts:
        path, start, end = dd.audio_source(u)
        w = load_audio(path, 16000, start, end)
        pcm[u] = (w.clamp(-1.0, 32767 / 32768) * 32768).round().to(dtype=torch.int16).numpy().tobytes()
    return pcm


def _peer_decode(dec, pcm: dict[str, bytes]) -> dict[str, list[str]]:
    """PocketSphinx's words per utterance, whole utterances, fillers and tags dropped."""
    hyp = {}
    for u, raw in pcm.items():
        dec.start_utt()
        dec.process_raw(raw, full_utt=True)
        dec.end_utt()
        h = dec.hyp()
        hyp[u] = [w for w in (h.hypstr.split() if h is not None else [])
                  if not (w.startswith("<") or w.startswith("["))]
    return hyp


def _peer_run(ctx: Context, hmm: Path, arpa: Path, entries, in_dict: set[str]) -> dict:
    """Loads PocketSphinx with the restricted dictionary and pruned LM and decodes the test set ``repeats`` times."""
    import pocketsphinx

    from asr.data.datadir import read_text
    from asr.lang import lm as lmlib
    from asr.scoring.wer import format_wer, score

    with tempfile.TemporaryDirectory(prefix="asr-bench-peer-") as tmp:
        dic = Path(tmp) / "an4.dict"
        dic.write_text("".join(f"{w} {' '.join(p)}\n" for w, p in entries))
        model = lmlib.read_arpa(arpa)
        model, dropped_lm = lmlib.prune_to_vocab(model, sorted(in_dict))
        lm_path = Path(tmp) / "lm.arpa"
        lmlib.write_arpa(model, lm_path)
        t0 = time.perf_counter()
        dec = pocketsphinx.Decoder(hmm=str(hmm), lm=str(lm_path), dict=str(dic), loglevel="FATAL")
        load = time.perf_counter() - t0
        pcm = _peer_pcm(ctx)
        ref = read_text(ctx.test_dir / "text")
        walls, wer, wer_line = [], None, None
        for _ in range(ctx.repeats):
            t0 = time.perf_counter()
            hyp = _peer_decode(dec, pcm)
            walls.append(time.perf_counter() - t0)
            res = score(ref, hyp)
            wer, wer_line = res.wer, format_wer(res).splitlines()[0]
    return {"dropped_lm": dropped_lm, "load": load, "walls": walls, "wer": wer, "wer_line": wer_line}


def _package_version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001
        return None


def _peer_rows(ctx: Context, data: dict, ours: dict | None) -> list[list]:
    """The peer table: PocketSphinx, our decode section's 1-thread row and their ratios (``data`` gains them)."""
    rows = [["pocketsphinx en-us", fmt_stat(data["rtf"]), f"{data['wer']:.2f}"]]
    our = None
    if ours and ours.get("status") == "ok":
        our = ours["data"].get("threads_1")
    if our:
        rows.insert(0, [f"asr {ctx.model} (1 thread)", fmt_stat(our["rtf"]), f"{our['wer']:.2f}"])
        data["ratio_rtf_peer_over_ours"] = data["rtf"]["median"] / our["rtf"]["median"]
        data["ratio_wer_peer_over_ours"] = (data["wer"] / our["wer"]) if our["wer"] else None
        rows.append(["ratio peer / ours", f"{data['ratio_rtf_peer_over_ours']:.2f}",
                     f"{data['ratio_wer_peer_over_ours']:.2f}" if data["ratio_wer_peer_over_ours"] else "-"])
    return rows


def section_peer(ctx: Context, ours: dict | None) -> dict:
    """PocketSphinx's en-us model on the test set (RTF, WER) next to ours (the decode section's 1-thread row)."""
    try:
        import pocketsphinx
    except ImportError:
        msg = f"pocketsphinx is not installed: {PEER_INSTALL}"
        print(f"peer: skipped: {msg}", file=sys.stderr)
        return {"status": "skipped", "reason": msg, "tables": [], "data": {}}

    model_path = Path(pocketsphinx.get_model_path()) / "en-us"
    hmm = model_path / "en-us"
    cmudict = model_path / "cmudict-en-us.dict"
    arpa = ctx.arpa_for_peer()
    if arpa is None:
        return {"status": "skipped", "reason": f"no data/lang_*/lm.arpa in {ctx.workdir}", "tables": [], "data": {}}
    entries, in_dict, missing = _peer_dictionary(ctx, cmudict)
    run = _peer_run(ctx, hmm, arpa, entries, in_dict)
    _, _, audio_secs = ctx.test_set()
    rtf = stat([w / audio_secs for w in run["walls"]])
    data = {"pocketsphinx": _package_version("pocketsphinx"), "hmm": str(hmm), "lm": str(arpa),
            "dict_words": len(in_dict), "vocab_not_in_cmudict": missing, "lm_words_dropped": run["dropped_lm"],
            "load_seconds": run["load"], "rtf": rtf, "wall_seconds": stat(run["walls"]), "wer": run["wer"],
            "wer_line": run["wer_line"], "threads": 1}
    rows = _peer_rows(ctx, data, ours)
    title = (f"peer: PocketSphinx {data['pocketsphinx'] or ''} with its en-us model, cmudict restricted to the "
             f"training vocabulary ({len(in_dict)} words, {len(missing)} missing), LM {arpa.relative_to(ctx.workdir)}"
             "; whole utterances, default settings")
    return {"status": "ok", "tables": [{"title": title, "columns": ["system", "RTF", "%WER"], "rows": rows}],
            "data": data}


# -- driver -------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workdir", help="AN4 recipe work dir that already ran (default recipes/an4; "
                                     "recipes/yesno with --quick)")
    p.add_argument("--model", help="model dir name under exp/ (default blstm; tdnn with --quick)")
    p.add_argument("--repeats", type=int, default=3, help="runs per figure: median, min and max are reported")
    p.add_argument("--decode-config", help="decoding YAML (default conf/an4/decode.yaml; asr/conf/decode.yaml with --quick)")
    p.add_argument("--only", help=f"comma-separated sections ({','.join(SECTIONS)})")
    p.add_argument("--quick", action="store_true", help="yesno-scale smoke run (recipes/yesno, exp/tdnn)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "results.json"), help="JSON output")
    p.add_argument("--write-results", metavar="MD", help="also write the tables as markdown (benchmarks/RESULTS.md)")
    p.add_argument("--max-length", type=float, help="longest input of the length section in seconds "
                                                    "(default: 600; 60 with --quick)")
    p.add_argument("--corpus", help="AN4 corpus dir, for etc/an4.ug.lm (default ../shared/corpora/an4)")
    p.add_argument("--vocab-sizes", help="synthetic vocabulary sizes of the graph section (default 1000,10000,50000)")
    p.add_argument("--train-batches", type=int, help="timed batches per training run (default 20; 3 with --quick)")


def render_markdown(result: dict) -> str:
    m = result["machine"]
    out = ["# Benchmark results", "",
           f"Command: `{result['command']}`  ",
           f"Commit: `{m['git_commit']}`{' (dirty working tree)' if m['git_dirty'] else ''}  ",
           f"Date: {result['date']}  ",
           f"Machine: {m['cpu_model']}, {m['nproc']} CPUs (nproc), Python {m['python']}, torch {m['torch']}, "
           f"k2 {m['k2']}  ",
           f"Work dir: `{result['workdir']}`, model `{result['model']}`, repeats {result['repeats']} "
           "(figures: median (min–max))", ""]
    for name, sec in result["sections"].items():
        out.append(f"## {name}")
        out.append("")
        if sec["status"] != "ok":
            out += [f"**{sec['status']}**: {sec.get('reason', '')}", ""]
            continue
        for t in sec["tables"]:
            out += [t["title"], "", markdown_table(t["columns"], t["rows"]), ""]
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s [%(name)s] %(message)s", stream=sys.stderr)
    ctx = Context(args)
    ctx.check()
    wanted = list(SECTIONS)
    if args.only:
        wanted = [s.strip() for s in args.only.split(",") if s.strip()]
        bad = [s for s in wanted if s not in SECTIONS]
        if bad:
            raise SystemExit(f"benchmarks: unknown section(s) {bad}; choose from {', '.join(SECTIONS)}")
    command = "python -m benchmarks " + shlex.join(sys.argv[1:])
    result = {
        "command": command, "date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "machine": machine_info(),
        "workdir": str(ctx.workdir), "model": ctx.model, "repeats": ctx.repeats, "quick": ctx.quick, "sections": {},
    }
    m = result["machine"]
    print(f"machine: {m['cpu_model']}, nproc {m['nproc']}, torch {m['torch']}, k2 {m['k2']}, "
          f"commit {m['git_commit']}{' (dirty)' if m['git_dirty'] else ''}")
    print(f"work dir {ctx.workdir}, model {ctx.model}, repeats {ctx.repeats}\n")
    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    for name in [s for s in SECTIONS if s in wanted]:
        t0 = time.perf_counter()
        try:
            if name == "peer":
                sec = section_peer(ctx, result["sections"].get("decode"))
            else:
                sec = globals()[f"section_{name}"](ctx)
        except Exception as e:  # noqa: BLE001 - report and go on with the next section
            traceback.print_exc()
            sec = {"status": "error", "reason": f"{type(e).__name__}: {e}", "tables": [], "data": {}}
        sec["seconds"] = time.perf_counter() - t0
        result["sections"][name] = sec
        if sec["status"] == "ok":
            for t in sec["tables"]:
                print(text_table(t["title"], t["columns"], t["rows"]) + "\n")
        else:
            print(f"{name}: {sec['status'].upper()}: {sec.get('reason', '')}\n")
        out_path.write_text(json.dumps(result, indent=1, default=str) + "\n")  # partial results survive a crash
    print(f"wrote {out_path}")
    if args.write_results:
        md = Path(args.write_results)
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(render_markdown(result) + "\n")
        print(f"wrote {md}")
    return 1 if any(s["status"] == "error" for s in result["sections"].values()) else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description="The asr benchmark suite (benchmarks/README.md).")
    add_arguments(p)
    return run(p.parse_args(argv))
