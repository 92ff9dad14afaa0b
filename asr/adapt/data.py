"""i-vectors of data dirs: extraction into Kaldi tables, reading them back, model dirs that need them.

An i-vector dir (``asr extract-ivectors``, Kaldi's ``extract_ivectors_online.sh``)::

    ivector_online.scp   utt -> ivector_online.ark:offset, a (ceil(T/period), D) float32 matrix
    ivector_online.ark
    ivector_period       the period, as Kaldi writes it
    spk2utt              the (pseudo-)speakers whose utterances were extracted in sequence
    ivector_info.yaml    extractor dir, period, dim, mode (online/offline), utts_per_spk_max

A model trained on i-vectors keeps a copy of its extractor in
``<model dir>/ivector/`` and an ``ivector`` section in ``model.yaml``
(:func:`copy_extractor`), so decoding and ``asr transcribe`` need nothing else.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from asr.adapt.model import FILES, IvectorModel
from asr.adapt.online import IvectorState, offline_ivector, online_ivectors, pseudo_speakers
from asr.adapt.train import raw_features
from asr.config import load_config, save_config
from asr.data.datadir import DataDir
from asr.errors import AsrError, ConfigError, DataDirError, ModelDirError
from asr.features.ark import read_matrix, write_matrices
from asr.fileio import PathLike, atomic_write_text, read_table

log = logging.getLogger("asr.adapt.data")

SCP = "ivector_online.scp"
INFO = "ivector_info.yaml"
#: Sub-folder of a model dir holding its extractor.
MODEL_SUBDIR = "ivector"


def extract_data_dir(model: IvectorModel, data_dir: PathLike, out_dir: PathLike,
                     utts_per_spk_max: int | None = None, offline: bool = False) -> Path:
    """Extracts the i-vectors of every utterance of a data dir into ``out_dir``.

    Args:
      model: The extractor.
      data_dir: A data dir with features (read raw, without CMVN).
      out_dir: The i-vector dir to write.
      utts_per_spk_max: Pseudo-speakers of at most this many utterances
        (default: the extractor's ``online.utts_per_spk_max``; 1: each
        utterance alone; 0: the real speakers).
      offline: One i-vector per pseudo-speaker from all its frames (a
        one-row matrix per utterance) instead of online rows.

    Returns:
      The scp file.
    """
    dd = DataDir.load(data_dir, require_text=False)
    limit = model.config.online.utts_per_spk_max if utts_per_spk_max is None else utts_per_spk_max
    groups = pseudo_speakers(dd.spk2utt, limit)
    feats = raw_features(dd.path)
    rows: dict[str, Tensor] = {}
    empty = torch.zeros(1, model.ivector_dim)  # an utterance without frames gets the prior mean
    for utts in tqdm(groups.values(), desc="i-vectors", leave=False):
        if offline:
            vec = offline_ivector(model, [feats[u] for u in utts if len(feats[u])]).unsqueeze(0)
            rows.update({u: vec for u in utts})
            continue
        state: IvectorState | None = None
        for u in utts:
            if len(feats[u]) == 0:
                rows[u] = empty
                continue
            rows[u], state = online_ivectors(model, feats[u], state)
    out = Path(out_dir)
    keys = sorted(rows, key=str.encode)
    write_matrices((out / "ivector_online.ark").resolve(), out / SCP, ((k, rows[k].numpy()) for k in keys))
    atomic_write_text(out / "ivector_period", f"{model.period}\n")
    atomic_write_text(out / "spk2utt", "".join(f"{s} {' '.join(u)}\n" for s, u in groups.items()))
    save_config({"extractor": str(Path(model.path).resolve()) if model.path else None, "period": model.period,
                 "dim": model.ivector_dim, "mode": "offline" if offline else "online",
                 "utts_per_spk_max": limit, "data_dir": str(dd.path.resolve()), "utterances": len(keys)},
                out / INFO)
    log.info("%s: %s i-vectors of %d utterances (%d %sspeakers) into %s", dd.path, "offline" if offline else "online",
             len(keys), len(groups), "pseudo-" if limit > 0 else "", out)
    return out / SCP


@dataclass
class IvectorDir:
    """A read i-vector dir.

    Attributes:
      path: The folder.
      info: ``ivector_info.yaml``.
      rows: utt -> (K, D) float32 i-vectors.
      spk2utt: The (pseudo-)speakers it was extracted over.
    """

    path: Path
    info: dict[str, Any]
    rows: dict[str, Tensor]
    spk2utt: dict[str, list[str]]

    @property
    def period(self) -> int:
        return int(self.info["period"])

    @property
    def dim(self) -> int:
        return int(self.info["dim"])

    @classmethod
    def load(cls, path: PathLike) -> "IvectorDir":
        """Reads an i-vector dir (plain files only: scp entries that are pipes are refused).

        Raises:
          DataDirError: for a missing file or a bad entry, naming it.
        """
        path = Path(path)
        for name in (SCP, INFO):
            if not (path / name).is_file():
                raise DataDirError(f"{path / name}: no such file (run asr extract-ivectors)")
        info = load_config(path / INFO)
        for key in ("period", "dim"):
            if not isinstance(info.get(key), int):
                raise DataDirError(f"{path / INFO}: missing integer '{key}'")
        rows = {u: torch.from_numpy(read_matrix(v, f"{path / SCP} '{u}'")) for u, v in read_table(path / SCP).items()}
        for u, r in rows.items():
            if r.shape[1] != info["dim"]:
                raise DataDirError(f"{path / SCP} '{u}': i-vectors of dim {r.shape[1]}, {INFO} says {info['dim']}")
        spk2utt = {}
        if (path / "spk2utt").is_file():
            spk2utt = {s: v.split() for s, v in read_table(path / "spk2utt").items()}
        return cls(path, info, rows, spk2utt)

    def for_utterance(self, utt: str, num_frames: int) -> Tensor:
        """The (K, D) rows of ``utt``; online rows must number ``ceil(num_frames / period)``.

        Raises:
          DataDirError: when ``utt`` is missing or its rows do not fit its frames.
        """
        if utt not in self.rows:
            raise DataDirError(f"{self.path / SCP}: no i-vectors for '{utt}' (extract them for this data dir)")
        rows = self.rows[utt]
        expected = max(1, -(-num_frames // self.period))
        if self.info.get("mode") != "offline" and rows.shape[0] != expected:
            raise DataDirError(f"{self.path / SCP} '{utt}': {rows.shape[0]} i-vectors for {num_frames} frames at "
                               f"period {self.period} (expected {expected}; features recomputed since?)")
        return rows


def utterance_ivectors(model: IvectorModel, data_dir: PathLike, utts: list[str],
                       ivector_dir: PathLike | None = None) -> dict[str, Tensor]:
    """(K, D) i-vectors of ``utts`` of a data dir: read from ``ivector_dir``, or online per utterance.

    Online per utterance (no speaker history) is what ``asr transcribe``
    does; pass an i-vector dir for anything else (per-speaker online, offline).

    Raises:
      DataDirError: when the i-vector dir lacks an utterance or does not match ``model``.
    """
    feats = raw_features(data_dir, utts)
    if ivector_dir is None:
        return {u: online_ivectors(model, f)[0] if len(f) else torch.zeros(1, model.ivector_dim)
                for u, f in feats.items()}
    ivd = IvectorDir.load(ivector_dir)
    check_compatible(ivd, model.ivector_dim, model.period)
    return {u: ivd.for_utterance(u, len(f)) for u, f in feats.items()}


def attach_model_ivectors(utts: list, model: IvectorModel, data_dir: PathLike,
                          ivector_dir: PathLike | None = None) -> None:
    """Sets ``u.ivectors`` and ``u.ivector_period`` of utterances for a model's extractor (see :func:`utterance_ivectors`)."""
    rows = utterance_ivectors(model, data_dir, [u.utt_id for u in utts], ivector_dir)
    for u in utts:
        u.ivectors, u.ivector_period = rows[u.utt_id], model.period


def check_compatible(ivd: IvectorDir, dim: int, period: int) -> None:
    """Raises DataDirError when an i-vector dir's dim or period differs from what a model needs."""
    if ivd.dim != dim or ivd.period != period:
        raise DataDirError(f"{ivd.path / INFO}: i-vectors of dim {ivd.dim}, period {ivd.period}; the model needs "
                           f"dim {dim}, period {period}")


def copy_extractor(model_dir: PathLike, ivd: IvectorDir) -> dict[str, Any]:
    """Copies the extractor of ``ivd`` into ``<model_dir>/ivector`` and returns model.yaml's ``ivector`` section.

    Raises:
      ModelDirError: when the extractor the i-vector dir names is gone.
    """
    source = ivd.info.get("extractor")
    if not source or not Path(source).is_dir():
        raise ModelDirError(f"{ivd.path / INFO}: its extractor dir '{source}' does not exist")
    dest = Path(model_dir) / MODEL_SUBDIR
    dest.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(Path(source) / name, dest / name)
    return {"dir": MODEL_SUBDIR, "source": str(Path(source).resolve()), "dim": ivd.dim, "period": ivd.period,
            "train_ivectors": str(ivd.path.resolve()), "utts_per_spk_max": ivd.info.get("utts_per_spk_max")}


def load_model_extractor(model_dir: Path, info: dict[str, Any], ivector_dim: int) -> IvectorModel:
    """The extractor a model dir records (``model.yaml``'s ``ivector`` section).

    Raises:
      ModelDirError: when the section or the extractor is missing, or its dim differs from the network's.
    """
    section = info.get("ivector")
    if not isinstance(section, dict) or not isinstance(section.get("dir"), str):
        raise ModelDirError(f"{model_dir / 'model.yaml'}: the network takes i-vectors (ivector_dim {ivector_dim}) "
                            "but there is no 'ivector' section naming its extractor")
    try:
        model = IvectorModel.load(model_dir / section["dir"])
    except AsrError as e:
        raise ModelDirError(str(e)) from None
    if model.ivector_dim != ivector_dim:
        raise ModelDirError(f"{model_dir / section['dir']}: i-vectors of dim {model.ivector_dim}, the network takes "
                            f"{ivector_dim}")
    if int(section.get("period", model.period)) != model.period:
        raise ModelDirError(f"{model_dir / 'model.yaml'}: ivector.period {section.get('period')} differs from its "
                            f"extractor's {model.period}")
    return model


class PerturbedIvectors:
    """Online i-vectors of speed-perturbed copies ``<prefix>-<utt>``, over their originals' pseudo-speakers.

    A copy at one speed is a speaker of its own (Kaldi gives ``sp0.9-<spk>``
    its own i-vectors), so each (prefix, pseudo-speaker) keeps its own state;
    copies must come in the originals' order, as add_speed_perturbed makes them.
    """

    def __init__(self, model: IvectorModel, spk2utt: dict[str, list[str]]):
        self.model = model
        self.group = {u: s for s, utts in spk2utt.items() for u in utts}
        self.states: dict[tuple[str, str], IvectorState] = {}

    def __call__(self, copy_id: str, utt_id: str, raw_feats: Tensor) -> Tensor:
        """(K, D) online i-vectors of a copy's (T, F) raw features."""
        if len(raw_feats) == 0:
            return torch.zeros(1, self.model.ivector_dim)
        key = (copy_id[: len(copy_id) - len(utt_id)], self.group.get(utt_id, utt_id))
        rows, self.states[key] = online_ivectors(self.model, raw_feats, self.states.get(key))
        return rows


def attach_training_ivectors(utts: list, ivector_dir: PathLike | None, model_ivector_dim: int,
                             where: str) -> IvectorDir | None:
    """Gives each training utterance its i-vector rows (``asr train --ivector-dir``).

    Sets ``u.ivectors`` ((K, D) rows) and ``u.ivector_period`` of every
    :class:`asr.training.data.Utterance`.  Returns the i-vector dir, or None
    for a network without i-vectors.

    Raises:
      ConfigError: when the network's ``model.ivector_dim`` and ``--ivector-dir`` disagree (one line naming ``where``).
      DataDirError: when an utterance has no i-vectors or rows that do not fit its frames.
    """
    if not model_ivector_dim and ivector_dir is None:
        return None
    if not model_ivector_dim:
        raise ConfigError(f"{where}: --ivector-dir {ivector_dir} given, but 'model.ivector_dim' is 0 (set it to the "
                          "i-vector dimension)")
    if ivector_dir is None:
        raise ConfigError(f"{where}: 'model.ivector_dim' is {model_ivector_dim}: pass the training i-vectors with "
                          "--ivector-dir (asr extract-ivectors)")
    ivd = IvectorDir.load(ivector_dir)
    if model_ivector_dim != ivd.dim:
        raise ConfigError(f"{where}: 'model.ivector_dim' is {model_ivector_dim} but {ivd.path / INFO} holds "
                          f"i-vectors of dim {ivd.dim}")
    for u in utts:
        u.ivectors = ivd.for_utterance(u.utt_id, len(u.feats))
        u.ivector_period = ivd.period
    log.info("i-vectors of %d training utterances from %s (%s, period %d)", len(utts), ivd.path,
             ivd.info.get("mode", "online"), ivd.period)
    return ivd


def model_with_ivectors(model: dict[str, Any], ivector_dir: PathLike, where: str) -> dict[str, Any]:
    """The ``model`` section of a training config for the i-vectors of ``ivector_dir`` (``asr train --ivector-dir``).

    ``model.ivector_dim`` left at 0 (or out) takes the i-vectors' dimension,
    so one config serves a system with and without i-vectors; the value is
    recorded in model.yaml.

    Raises:
      ConfigError: when ``model.ivector_dim`` is set to another dimension (one line naming ``where``).
      DataDirError: for a bad i-vector dir.
    """
    dim = IvectorDir.load(ivector_dir).dim
    given = int(model.get("ivector_dim", 0) or 0) if isinstance(model, dict) else 0
    if given and given != dim:
        raise ConfigError(f"{where}: 'model.ivector_dim' is {given} but {Path(ivector_dir) / INFO} holds "
                          f"i-vectors of dim {dim}")
    if not given:
        log.info("model.ivector_dim %d, from the i-vectors of %s", dim, ivector_dir)
    return {**model, "ivector_dim": dim} if isinstance(model, dict) else model


def perturbed_ivectors(ivd: IvectorDir) -> PerturbedIvectors:
    """Online i-vectors for speed-perturbed copies, with the extractor ``ivd`` was extracted with."""
    source = ivd.info.get("extractor")
    if not source:
        raise DataDirError(f"{ivd.path / INFO}: names no extractor, needed for the speed-perturbed copies")
    try:
        model = IvectorModel.load(source)
    except AsrError as e:
        raise DataDirError(f"{ivd.path / INFO}: its extractor: {e}") from None
    return PerturbedIvectors(model, ivd.spk2utt)


def record_extractor(model_dir: PathLike, ivd: IvectorDir) -> None:
    """Copies the extractor into a written model dir and adds the ``ivector`` section to its model.yaml."""
    path = Path(model_dir) / "model.yaml"
    info = load_config(path)
    info["ivector"] = copy_extractor(model_dir, ivd)
    save_config(info, path)
