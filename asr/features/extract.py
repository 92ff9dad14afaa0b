"""Kaldi-compatible feature extraction (torchaudio.compliance.kaldi) for data dirs.

:func:`compute_utterance_features` is the one way features are computed, used
by both batch extraction here and by transcription, so the two cannot drift.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import functools
import inspect
import json
import logging
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np
import torch
from tqdm import tqdm

from asr.config import check_range, load_config, option, parse_config, save_config
from asr.data.audio import load_audio
from asr.data.batching import split_jobs
from asr.data.datadir import FEATURE_FILES, DataDir, write_int_table
from asr.errors import AudioError, ConfigError, DataDirError
from asr.features.ark import read_matrix, write_matrices
from asr.features.cmvn import apply_cmvn, cmvn_stats
from asr.features.online_cmvn import SlidingCmvnConfig, sliding_cmvn_for, sliding_record
from asr.fileio import PathLike, atomic_write_text, write_table

log = logging.getLogger("asr.features.extract")


CMVN_TYPES = ("per-speaker", "per-utterance", "sliding", "none")
#: Keys that say how features are normalised; they do not change the features themselves.
NORMALISATION_KEYS = ("norm_vars", "cmvn", "sliding_cmvn", "cmvn_prior")
#: Config keys that are ours and not passed to torchaudio.
OWN_KEYS = {"type", "sample_rate", *NORMALISATION_KEYS}  # the fields of FeatureConfig
#: Kaldi works on int16-range samples; soundfile gives [-1, 1].
INT16_SCALE = 32768.0


def _kaldi_function(kind: str) -> Callable[..., torch.Tensor]:
    import torchaudio.compliance.kaldi as kaldi

    if kind not in ("fbank", "mfcc"):
        raise ConfigError(f"feature config: type must be 'fbank' or 'mfcc', got '{kind}'")
    return getattr(kaldi, kind)


@dataclass
class FeatureConfig:
    """Our own keys of a feature config (asr/conf/fbank.yaml, mfcc.yaml).

    Every other key is a keyword argument of ``torchaudio.compliance.kaldi.<type>``,
    checked against its signature and the type of its default
    (:func:`torchaudio_options`; docs/CONFIG.md lists them).
    """

    type: Literal["fbank", "mfcc"] = option(doc="feature kind (torchaudio.compliance.kaldi.fbank or .mfcc)")
    sample_rate: int = option(doc="Hz; audio at another rate is resampled (with a warning)")
    norm_vars: bool = option(False, "CMVN also normalises variances (Kaldi's apply-cmvn default: means only)")
    cmvn: Literal["per-speaker", "per-utterance", "sliding", "none"] | None = option(
        None, "CMVN kind, recorded in a data dir's conf/feats.yaml by asr compute-feats (--cmvn)")
    sliding_cmvn: SlidingCmvnConfig | None = option(
        None, "window options of --cmvn sliding (asr/features/online_cmvn.py; null: the defaults)")
    cmvn_prior: list[list[float]] | None = option(
        None, "prior of sliding CMVN: the training data's global CMVN stats (Kaldi's 2 rows), recorded by "
        "asr compute-feats --cmvn sliding")

    def check(self, where: str, prefix: str = "") -> None:
        check_range(where, "sample_rate", self.sample_rate > 0, "a positive integer", self.sample_rate)


def torchaudio_options(kind: str) -> dict[str, inspect.Parameter]:
    """The keyword arguments of ``torchaudio.compliance.kaldi.<kind>`` a config may set."""
    params = inspect.signature(_kaldi_function(kind)).parameters
    return {k: p for k, p in params.items() if k not in ("waveform", "sample_frequency")}


def _check_torchaudio_value(where: str, key: str, value: Any, default: Any) -> None:
    """A torchaudio option must have its default's type (a number for a float)."""
    kind = type(default)
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind in (bool, int):
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
    elif kind is str:
        ok = isinstance(value, str)
    else:
        ok = True
    if not ok:
        raise ConfigError(f"{where}: '{key}' must be {kind.__name__}, got {value!r}")


def validate_feature_config(config: dict[str, Any], where: str = "feature config") -> dict[str, Any]:
    """Checks a feature config and returns the keyword arguments for torchaudio.

    Raises:
      ConfigError: naming ``where`` and a missing or unknown key, or a bad value.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: expected a mapping")
    for key in ("type", "sample_rate"):
        if key not in config:
            raise ConfigError(f"{where}: missing key '{key}'")
    _kaldi_function(config["type"])
    options = torchaudio_options(config["type"])
    own = {k: v for k, v in config.items() if k in OWN_KEYS}
    kwargs = {}
    for key, value in config.items():
        if key in OWN_KEYS:
            continue
        if key not in options:
            raise ConfigError(f"{where}: unknown key '{key}' for type '{config['type']}'")
        _check_torchaudio_value(where, key, value, options[key].default)
        kwargs[key] = value
    parsed = parse_config(FeatureConfig, own, where)
    kwargs["sample_frequency"] = float(parsed.sample_rate)
    return kwargs


def compute_utterance_features(waveform: torch.Tensor, config: dict[str, Any]) -> torch.Tensor:
    """Computes Kaldi-compatible fbank or MFCC features of one waveform.

    Args:
      waveform: 1-D float samples in [-1, 1] at ``config["sample_rate"]``.
      config: Feature config (see ``asr/conf/fbank.yaml``); all keys but
        ``type``, ``sample_rate``, ``norm_vars`` and ``cmvn`` go to
        ``torchaudio.compliance.kaldi.<type>``.

    Returns:
      (T, D) float32 features; T is 0 for audio shorter than one frame.

    Raises:
      ConfigError: for a bad config.
    """
    try:
        # normalisation keys change nothing here (and sliding_cmvn, cmvn_prior are unhashable)
        kwargs = _validated_kwargs(tuple(sorted((k, v) for k, v in config.items() if k not in NORMALISATION_KEYS)))
    except TypeError:  # an unhashable (so invalid) value: let the checker name it
        kwargs = validate_feature_config(config)
    fn = _kaldi_function(config["type"])
    wave = waveform.reshape(1, -1).to(torch.float32) * INT16_SCALE
    window = int(kwargs["sample_frequency"] * float(kwargs.get("frame_length", 25.0)) / 1000.0)
    if wave.shape[1] < window:  # torchaudio asserts on input shorter than one window
        return torch.zeros(0, feature_dim(config), dtype=torch.float32)
    feats = fn(wave, **kwargs)
    if feats.ndim != 2:  # torchaudio returns an empty 1-D tensor for too-short input
        feats = feats.reshape(0, feature_dim(config))
    return feats.to(torch.float32).contiguous()


@functools.lru_cache(maxsize=16)
def _validated_kwargs(items: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """:func:`validate_feature_config` once per distinct config, not per utterance.

    Checking a config inspects torchaudio's signature, which took as long as
    the features of a short utterance. Callers must not modify the result.
    """
    return validate_feature_config(dict(items))


def feature_dim(config: dict[str, Any]) -> int:
    """Returns the feature dimension a config gives."""
    one_second = torch.zeros(int(config["sample_rate"]))
    return int(compute_utterance_features(one_second, config).shape[1])


def load_feature_config(data_dir: PathLike) -> dict[str, Any]:
    """Returns the feature config stored in ``data_dir/conf/feats.yaml`` (with its ``cmvn`` type).

    Raises:
      ConfigError: if the data dir has no stored config.
    """
    path = Path(data_dir) / "conf" / "feats.yaml"
    if not path.is_file():
        raise ConfigError(f"{path}: no such file (run asr compute-feats on {data_dir})")
    return load_config(path)


def cmvn_kind(config: dict[str, Any], dd: DataDir) -> str:
    """A data dir's CMVN type: its feature config's ``cmvn``; older dirs: per-speaker with a cmvn.scp, else none."""
    return config.get("cmvn", "per-speaker" if dd.cmvn_scp is not None else "none")


def load_features(data_dir: PathLike, norm_vars: bool | None = None) -> Iterator[tuple[str, torch.Tensor]]:
    """Yields ``(utt, feats)`` with CMVN applied, in ``feats.scp`` order.

    Uses ``feats.scp``, ``cmvn.scp`` (keys are speakers or utterances, as
    recorded in ``conf/feats.yaml``) and ``utt2spk``.  Without ``cmvn.scp``
    (CMVN type ``none``) the raw features are yielded.

    Args:
      data_dir: A data dir after :func:`asr.features.compute_features`.
      norm_vars: Override the config's ``norm_vars``.

    Raises:
      DataDirError: if files are missing or inconsistent.
    """
    dd = DataDir.load(data_dir, require_text=False)
    if dd.feats_scp is None:
        raise DataDirError(f"{dd.path / 'feats.scp'}: no such file (run asr compute-feats)")
    cfg = load_feature_config(dd.path)
    kind = cmvn_kind(cfg, dd)
    if norm_vars is None:
        norm_vars = bool(cfg.get("norm_vars", False))
    if kind == "sliding":  # no stats files: each utterance over its own sliding window, with the prior
        normalise = sliding_cmvn_for({**cfg, "norm_vars": norm_vars}, str(dd.path / "conf" / "feats.yaml"))
        for utt in dd.utterances:
            feats = read_matrix(dd.feats_scp[utt], f"{dd.path / 'feats.scp'} '{utt}'")
            yield utt, normalise(torch.from_numpy(feats))
        return
    if kind != "none" and dd.cmvn_scp is None:
        raise DataDirError(f"{dd.path / 'cmvn.scp'}: no such file but CMVN type is '{kind}'")
    cache: dict[str, np.ndarray] = {}
    for utt in dd.utterances:
        feats = torch.from_numpy(read_matrix(dd.feats_scp[utt], f"{dd.path / 'feats.scp'} '{utt}'"))
        if kind == "none":
            yield utt, feats
            continue
        key = utt if kind == "per-utterance" else dd.utt2spk[utt]
        if key not in cache:
            # Per-speaker stats are shared by all of a speaker's utterances.
            cache = {key: read_matrix(dd.cmvn_scp[key], f"{dd.path / 'cmvn.scp'} '{key}'")}
        yield utt, apply_cmvn(feats, cache[key], norm_vars)


def _job_key(config: dict[str, Any], sources: list[tuple[str, str, float, float | None]]) -> str:
    """A digest of what a job computes, so a rerun reuses only matching outputs."""
    blob = json.dumps([sorted(config.items()), sources], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _job_paths(feat_dir: Path, stem: str, job: int) -> tuple[Path, Path, Path]:
    base = feat_dir / f"{stem}.{job}"
    return Path(f"{base}.ark"), Path(f"{base}.scp"), Path(f"{base}.done.json")


def _job_is_done(done: Path, ark: Path, scp: Path, key: str) -> dict[str, int] | None:
    """Returns the job's frame counts if its outputs exist and match ``key``."""
    if not (done.is_file() and ark.is_file() and scp.is_file()):
        return None
    try:
        info = json.loads(done.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("key") != key:
        return None
    return info.get("num_frames")


def _run_job(
    sources: list[tuple[str, str, float, float | None]],
    config: dict[str, Any],
    ark: str,
    scp: str,
    done: str,
    key: str,
    progress: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Extracts features of one job's utterances into ``ark``/``scp``; returns frame counts.

    Runs with one intra-op thread both in workers (2 cores are shared) and
    in-process, so results never depend on the thread count.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    num_frames: dict[str, int] = {}

    def mats():
        for utt, path, start, end in sources:
            wave = load_audio(path, config["sample_rate"], start, end)
            feats = compute_utterance_features(wave, config)
            if feats.shape[0] == 0:
                raise AudioError(f"{path}: utterance '{utt}' is too short for one feature frame")
            num_frames[utt] = int(feats.shape[0])
            if progress is not None:
                progress()
            yield utt, feats.numpy()

    try:
        # Old outputs of this job are stale: drop them so a failure leaves none.
        for stale in (done, scp, ark):
            Path(stale).unlink(missing_ok=True)
        write_matrices(Path(ark), Path(scp), mats())
        atomic_write_text(done, json.dumps({"key": key, "num_frames": num_frames}))
    finally:
        torch.set_num_threads(threads)
    return num_frames


def _worker_init() -> None:
    torch.set_num_threads(1)


def _remove_outputs(data_dir: Path) -> None:
    for name in FEATURE_FILES:
        with contextlib.suppress(FileNotFoundError):
            (data_dir / name).unlink()


@dataclass
class _Job:
    """One extraction job: its utterances' audio ``(utt, path, start, end)`` and its outputs."""

    number: int
    sources: list[tuple[str, str, float, float | None]]
    ark: Path
    scp: Path
    done: Path
    key: str


def compute_features(
    data_dir: PathLike,
    feat_dir: PathLike,
    config: dict[str, Any],
    nj: int = 1,
    cmvn: str = "per-speaker",
    cmvn_prior: np.ndarray | None = None,
) -> Path:
    """Extracts features of a data dir, Kaldi ``make_fbank.sh`` + ``compute_cmvn_stats.sh`` style.

    Utterances (sorted) are split into ``nj`` contiguous jobs, each writing
    ``feat_dir/raw_<type>_<name>.<job>.{ark,scp}`` atomically plus a
    ``.done.json`` marker last; a rerun skips jobs whose outputs are complete
    and were made from the same config and audio list, so an interrupted run
    only redoes unfinished jobs.  Then ``data_dir/feats.scp``,
    ``utt2num_frames``, CMVN stats (``feat_dir/cmvn_<name>.ark`` +
    ``data_dir/cmvn.scp``, keys are speakers or utterances) and
    ``data_dir/conf/feats.yaml`` (the config plus ``cmvn``) are written.
    With dither 0 the features do not depend on ``nj``.

    Args:
      data_dir: A valid Kaldi data dir.
      feat_dir: Where the arks go (absolute paths are stored in the scps).
      config: Feature config, e.g. ``asr.config.load_config("fbank.yaml")``.
      nj: Number of parallel jobs (processes).
      cmvn: ``per-speaker``, ``per-utterance``, ``sliding`` or ``none``. ``sliding``
        writes no stats: ``conf/feats.yaml`` records the window options and the prior.
      cmvn_prior: The prior of ``sliding`` (the training data's global stats,
        see :func:`asr.features.online_cmvn.sliding_record`); None: these features' own.

    Returns:
      Path of ``data_dir/feats.scp``.

    Raises:
      AudioError: naming the file of an unreadable or too short recording;
        the data dir's feature files are then absent and the failed job
        leaves no ark (finished jobs are kept for the rerun).
      DataDirError, ConfigError: for a bad data dir or config.
    """
    if cmvn not in CMVN_TYPES:
        raise ConfigError(f"cmvn must be one of {', '.join(CMVN_TYPES)}, got '{cmvn}'")
    validate_feature_config(config)
    sliding = config.get("sliding_cmvn")
    config = {k: v for k, v in config.items() if k not in ("cmvn", "sliding_cmvn", "cmvn_prior")}
    dd = DataDir.load(data_dir, require_text=False)
    feat_dir = Path(feat_dir).resolve()
    feat_dir.mkdir(parents=True, exist_ok=True)
    # Stale outputs would point at arks about to be replaced.
    _remove_outputs(dd.path)

    jobs = _plan_jobs(dd, feat_dir, config, nj)
    num_frames, todo = _reuse_finished_jobs(jobs)
    num_frames.update(_run_jobs(todo, config, f"{config['type']} {dd.name}"))
    index = _read_job_scps(jobs)
    cmvn_index = _write_cmvn_stats(dd, feat_dir, index, cmvn) if cmvn not in ("none", "sliding") else None
    record = {"cmvn": cmvn}
    if cmvn == "sliding":
        record.update(sliding_record(sliding, index, cmvn_prior, str(dd.path)))

    # The data dir's files last: feats.scp appears only when everything exists.
    save_config({**config, **record}, dd.path / "conf" / "feats.yaml")
    write_int_table(dd.path / "utt2num_frames", num_frames.items())
    if cmvn_index is not None:
        write_table(dd.path / "cmvn.scp", cmvn_index.items())
    write_table(dd.path / "feats.scp", index.items())
    log.info("%s: features of %d utterances in %s", dd.path, len(dd.utterances), feat_dir)
    return dd.path / "feats.scp"


def _plan_jobs(dd: DataDir, feat_dir: Path, config: dict[str, Any], nj: int) -> list[_Job]:
    """The data dir's (sorted) utterances in ``nj`` contiguous jobs, each with its output paths and key."""
    stem = f"raw_{config['type']}_{dd.name}"
    jobs = []
    for j, chunk in enumerate(split_jobs(dd.utterances, int(nj)), 1):
        sources = [(u, *dd.audio_source(u)) for u in chunk]
        jobs.append(_Job(j, sources, *_job_paths(feat_dir, stem, j), _job_key(config, sources)))
    return jobs


def _reuse_finished_jobs(jobs: list[_Job]) -> tuple[dict[str, int], list[_Job]]:
    """Frame counts of the jobs a previous run finished with the same key, and the jobs left to run."""
    num_frames: dict[str, int] = {}
    todo = []
    for job in jobs:
        counts = _job_is_done(job.done, job.ark, job.scp, job.key)
        if counts is not None and set(counts) == {s[0] for s in job.sources}:
            log.info("%s: job %d already done, skipping", job.scp, job.number)
            num_frames.update(counts)
        else:
            todo.append(job)
    return num_frames, todo


def _run_jobs(todo: list[_Job], config: dict[str, Any], desc: str) -> dict[str, int]:
    """Runs the jobs (in this process when there is one, else one process each); returns frame counts."""
    num_frames: dict[str, int] = {}
    with tqdm(total=sum(len(job.sources) for job in todo), desc=desc, unit="utt", disable=not todo) as bar:
        if len(todo) == 1:
            job = todo[0]
            num_frames.update(_run_job(job.sources, config, str(job.ark), str(job.scp), str(job.done), job.key,
                                       progress=lambda: bar.update(1)))
        elif todo:
            # spawn: forking a process that already ran OpenMP threads can hang.
            with cf.ProcessPoolExecutor(len(todo), mp_context=mp.get_context("spawn"),
                                        initializer=_worker_init) as pool:
                futures = {
                    pool.submit(_run_job, job.sources, config, str(job.ark), str(job.scp), str(job.done),
                                job.key): len(job.sources)
                    for job in todo
                }
                try:
                    for fut in cf.as_completed(futures):
                        num_frames.update(fut.result())
                        bar.update(futures[fut])
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    return num_frames


def _read_job_scps(jobs: list[_Job]) -> dict[str, str]:
    """``{utt: "ark_path:offset"}`` of all jobs, from their scp files."""
    index: dict[str, str] = {}
    for job in jobs:
        for line in job.scp.read_text(encoding="utf-8").splitlines():
            utt, _, spec = line.partition(" ")
            index[utt] = spec
    return index


def _write_cmvn_stats(dd: DataDir, feat_dir: Path, index: dict[str, str], cmvn: str) -> dict[str, str]:
    """Writes ``feat_dir/cmvn_<name>.{ark,scp}`` (keys: speakers or utterances); returns its index.

    Stats accumulate in sorted utterance order, so they do not depend on nj.
    """
    stats: dict[str, np.ndarray] = {}
    for utt in dd.utterances:
        s = cmvn_stats(read_matrix(index[utt], f"{feat_dir} '{utt}'"))
        key = utt if cmvn == "per-utterance" else dd.utt2spk[utt]
        stats[key] = stats[key] + s if key in stats else s
    keys = sorted(stats, key=lambda k: k.encode("utf-8"))
    return write_matrices(feat_dir / f"cmvn_{dd.name}.ark", feat_dir / f"cmvn_{dd.name}.scp",
                          ((k, stats[k]) for k in keys))
