"""``asr train-ivector``: PCA, UBM and i-vector extractor from a data dir's raw features."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from torch import Tensor
from tqdm import tqdm

from asr.adapt.config import IvectorConfig
from asr.adapt.ivector import UtteranceStats, sparse_stats, train_extractor
from asr.adapt.model import IvectorModel
from asr.adapt.ubm import FeatureTransform, splice_frames, train_ubm
from asr.data.datadir import DataDir
from asr.errors import DataDirError
from asr.features.ark import read_matrix
from asr.fileio import PathLike, read_lines

log = logging.getLogger("asr.adapt.train")


def raw_features(data_dir: PathLike, utts: list[str] | None = None) -> dict[str, Tensor]:
    """The features of ``feats.scp`` without CMVN (all utterances, or ``utts``), in scp order.

    Raises:
      DataDirError: without feats.scp, or for an utterance it lacks.
    """
    dd = DataDir.load(data_dir, require_text=False)
    if dd.feats_scp is None:
        raise DataDirError(f"{dd.path / 'feats.scp'}: no such file (run asr compute-feats)")
    wanted = dd.utterances if utts is None else utts
    missing = [u for u in wanted if u not in dd.feats_scp]
    if missing:
        raise DataDirError(f"{dd.path / 'feats.scp'}: no features for {len(missing)} utterances, e.g. '{missing[0]}'")
    return {u: torch.from_numpy(read_matrix(dd.feats_scp[u], f"{dd.path / 'feats.scp'} '{u}'")) for u in wanted}


def strided_frames(feats: list[Tensor], max_frames: int) -> tuple[int, int]:
    """``(stride, total)``: every stride-th frame keeps at most ``max_frames`` of ``total`` (0: all)."""
    total = sum(len(f) for f in feats)
    stride = 1 if max_frames <= 0 else max(1, -(-total // max_frames))
    return stride, total


def pca_and_ubm_frames(feats: list[Tensor], cfg: IvectorConfig) -> tuple[FeatureTransform, Tensor]:
    """The PCA of the spliced training frames and the (N, P) float32 frames the UBM trains on.

    Both use every ``stride``-th frame of the concatenated utterances
    (frames are spliced within their own utterance first).
    """
    stride, total = strided_frames(feats, cfg.ubm.max_frames)
    offsets, start = [], 0
    for f in feats:
        # frames whose global index is a multiple of stride
        offsets.append((-start) % stride)
        start += len(f)
    picked = [splice_frames(f, cfg.features.splice)[o::stride] for f, o in zip(feats, offsets)]
    transform = FeatureTransform.estimate(picked, cfg.features.splice, cfg.features.pca_dim)
    frames = torch.cat([((p.to(torch.float64) - transform.mean) @ transform.projection.T).float() for p in picked])
    log.info("PCA and UBM on %d of %d frames (every %d-th)", len(frames), total, stride)
    return transform, frames


def extractor_stats(model: IvectorModel, feats: list[Tensor], subsample: int) -> UtteranceStats:
    """Per-utterance zeroth/first-order statistics (every ``subsample``-th frame) and the total second order."""
    c, p = model.ubm.num_gauss, model.transform.dim
    count = torch.zeros(len(feats), c)
    first = torch.zeros(len(feats), c, p)
    second = torch.zeros(c, p, dtype=torch.float64)
    for i, f in enumerate(tqdm(feats, desc="extractor statistics", leave=False)):
        x, idx, post = model.posteriors(f)
        x, idx, post = x[::subsample].double(), idx[::subsample], post[::subsample].double()
        n, X = sparse_stats(idx, post, x, c)
        count[i], first[i] = n.float(), X.float()
        second.index_add_(0, idx.reshape(-1), (post.unsqueeze(2) * (x * x).unsqueeze(1)).reshape(-1, p))
    return UtteranceStats(count, first, second)


def read_exclude_list(path: PathLike | None) -> set[str]:
    """Utterance ids to leave out, one per line (e.g. a training run's valid_utts.txt)."""
    return set() if path is None else {line.split()[0] for line in read_lines(path) if line.strip()}


def train_ivector_model(data_dir: PathLike, out_dir: PathLike, cfg: IvectorConfig,
                        exclude: PathLike | None = None) -> IvectorModel:
    """Trains the PCA, the UBM and the extractor on a data dir's raw features; writes ``out_dir``.

    Args:
      data_dir: Training data dir with features.
      out_dir: The extractor dir to write (ivector.yaml, ubm.pt, extractor.pt).
      cfg: The config.
      exclude: A list of utterances to leave out (held-out speakers).

    Raises:
      DataDirError: with too few frames for the UBM.
    """
    t0, cpu0 = time.perf_counter(), time.process_time()
    skip = read_exclude_list(exclude)
    feats_by_utt = {u: f for u, f in raw_features(data_dir).items() if u not in skip and len(f) > 0}
    feats = list(feats_by_utt.values())
    if sum(len(f) for f in feats) < cfg.ubm.num_gauss * 10:
        raise DataDirError(f"{data_dir}: {sum(len(f) for f in feats)} frames are too few for a UBM of "
                           f"{cfg.ubm.num_gauss} Gaussians (ubm.num_gauss)")
    transform, frames = pca_and_ubm_frames(feats, cfg)
    t_ubm = time.perf_counter()
    ubm, ubm_history = train_ubm(frames, cfg.ubm)
    del frames
    t_ext = time.perf_counter()
    model = IvectorModel(cfg, transform, ubm, None)  # type: ignore[arg-type]  # posteriors need no extractor
    stats = extractor_stats(model, feats, cfg.extractor.subsample)
    model.extractor, ext_history = train_extractor(ubm, stats, cfg.extractor)
    t_end = time.perf_counter()
    model.info = {
        "feat_dim": transform.input_dim,
        "data_dir": str(Path(data_dir).resolve()),
        "training": {
            "utterances": len(feats), "excluded": len(skip), "frames": sum(len(f) for f in feats),
            "ubm_log_likelihood": [round(ll, 5) for _, ll in ubm_history],
            "extractor_objective": [round(o, 5) for o in ext_history],
            "seconds": {"pca": round(t_ubm - t0, 1), "ubm": round(t_ext - t_ubm, 1),
                        "extractor": round(t_end - t_ext, 1)},
            # CPU time says more than wall time on a shared machine
            "cpu_seconds": round(time.process_time() - cpu0, 1), "threads": torch.get_num_threads(),
        },
    }
    model.save(out_dir)
    model.path = Path(out_dir)
    log.info("wrote i-vector extractor %s (%d Gaussians, dim %d; %.1f s: PCA %.1f, UBM %.1f, extractor %.1f)",
             out_dir, ubm.num_gauss, model.ivector_dim, t_end - t0, t_ubm - t0, t_ext - t_ubm, t_end - t_ext)
    return model

