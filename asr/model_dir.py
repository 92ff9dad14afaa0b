"""Model directories: everything needed to align or decode with a trained model.

Layout::

    model.yaml   model config, feature config, frame rate, criterion
    model.pt     weights (state_dict of plain tensors)
    priors.pt    log state priors (when trained on alignments)
    lang/        copy of the lang dir (words.txt, phones.txt, H.pt, L.pt, ...)
    graph/       HLG.pt of the decoding graph (optional, copied in by training)
    ivector/     the i-vector extractor, for a network with i-vector inputs (asr.adapt)

Loading never runs code: YAML through ``safe_load``, tensors through
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from asr.config import load_config, save_config
from asr.errors import AsrError, ConfigError, ModelDirError
from asr.fileio import atomic_torch_save, safe_torch_load
from asr.lang.lang_dir import LangDir
from asr.models import AcousticModel, build_model

if TYPE_CHECKING:
    from asr.adapt.model import IvectorModel

#: The acoustic scale a training criterion's outputs are meant to be decoded at, by
#: criterion name (model.yaml's ``criterion``).  A criterion not listed makes a
#: hybrid model whose scale is tuned (decode configs default to 0.1).  This is
#: the one place the scale is declared: asr.training.registry's ``Criterion``
#: reads it, and the decoder reads it without importing training.
DECODE_ACOUSTIC_SCALES: dict[str, float] = {
    # LF-MMI outputs are trained against graph scores at scale 1.
    "lfmmi": 1.0,
}

LANG_FILES = ("phones.txt", "words.txt", "lexicon.txt", "lexicon_disambig.txt", "lang.yaml", "pdfs.txt",
              "L.pt", "L_disambig.pt", "H.pt", "tree.yaml")


#: A model dir's own decode settings, when its recipe gave it some; else the packaged decode.yaml is the default.
DECODE_CONFIG_NAME = "decode.yaml"


def default_decode_config(model_dir: str | Path, config: str | Path | None = None) -> str | Path:
    """The decode config to use: ``config`` if given, else the model dir's ``decode.yaml``, else the packaged one.

    A recipe copies the decode config it tuned into each model dir (the AN4
    recipe's models run at 30 ms frames and acoustic scale 1, not the
    packaged 0.1), so that ``asr transcribe``, ``asr serve`` and
    ``Recognizer.from_dir`` decode them as the recipe did.
    """
    if config is not None:
        return config
    own = Path(model_dir) / DECODE_CONFIG_NAME
    return own if own.is_file() else DECODE_CONFIG_NAME


def copy_lang(lang_dir: Path, dest: Path) -> None:
    """Copies a lang dir's files (not its graphs of other LMs) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in LANG_FILES:
        if (lang_dir / name).is_file():
            shutil.copyfile(lang_dir / name, dest / name)
    if (lang_dir / "phones").is_dir():
        shutil.copytree(lang_dir / "phones", dest / "phones", dirs_exist_ok=True)


def copy_graph(graph_dir: Path, dest: Path) -> None:
    """Copies ``HLG.pt`` (and ``G.pt`` when present) of a graph dir into ``dest``."""
    if not (graph_dir / "HLG.pt").is_file():
        raise ModelDirError(f"{graph_dir / 'HLG.pt'}: no such file (run asr compile-graph)")
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("HLG.pt", "G.pt", "lm.arpa"):
        if (graph_dir / name).is_file():
            shutil.copyfile(graph_dir / name, dest / name)


@dataclass
class ModelDir:
    """A loaded model directory."""

    path: Path
    model: AcousticModel
    info: dict
    log_priors: torch.Tensor | None
    lang: LangDir
    #: The i-vector extractor (``ivector/``) of a network with i-vector inputs, else None.
    ivector: "IvectorModel | None" = None

    @property
    def feature_config(self) -> dict:
        return self.info["features"]

    @property
    def declared_acoustic_scale(self) -> float | None:
        """The acoustic scale the model's criterion is meant to be decoded at (None: tune it)."""
        return DECODE_ACOUSTIC_SCALES.get(self.info.get("criterion"))

    @property
    def frame_shift(self) -> float:
        """Seconds per network output frame."""
        return float(self.info["features"]["frame_shift"]) / 1000.0 * self.model.subsampling_factor

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "ModelDir":
        """Loads a model dir.

        Raises:
          ModelDirError: for a missing file, a checkpoint that does not match
            the model config, or a lang dir whose pdf count differs from the
            model's output.
        """
        path = Path(path)
        if not path.is_dir():
            raise ModelDirError(f"{path}: no such model directory")
        for name in ("model.yaml", "model.pt", "lang"):
            if not (path / name).exists():
                raise ModelDirError(f"{path / name}: missing from model dir")
        try:
            info = load_config(path / "model.yaml")
            model = build_model(info["model"], int(info["feat_dim"]), int(info["num_pdfs"]))
        except (KeyError, ConfigError) as e:
            raise ModelDirError(f"{path / 'model.yaml'}: invalid model config ({e})") from None
        state = _load_state(path / "model.pt")
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            first = str(e).splitlines()[0]
            raise ModelDirError(f"{path / 'model.pt'}: does not match the model config in model.yaml ({first[:160]})") from None
        model.to(device).eval()
        try:
            lang = LangDir.load(path / "lang")
        except AsrError as e:
            raise ModelDirError(f"{path / 'lang'}: {e}") from None
        if lang.num_pdfs != model.num_pdfs:
            raise ModelDirError(
                f"{path / 'lang'}: lang dir has {lang.num_pdfs} pdfs but the model outputs {model.num_pdfs}"
            )
        log_priors = None
        if (path / "priors.pt").is_file():
            try:
                log_priors = _as_tensor(safe_torch_load(path / "priors.pt"), path / "priors.pt")
            except AsrError as e:
                raise ModelDirError(str(e)) from None
            if log_priors.numel() != model.num_pdfs:
                raise ModelDirError(f"{path / 'priors.pt'}: {log_priors.numel()} priors for {model.num_pdfs} pdfs")
        ivector = None
        if model.ivector_dim:
            from asr.adapt.data import load_model_extractor

            ivector = load_model_extractor(path, info, model.ivector_dim)
        return cls(path, model, info, log_priors, lang, ivector)


def _as_tensor(obj, path: Path) -> torch.Tensor:
    if isinstance(obj, dict) and "log_priors" in obj:
        obj = obj["log_priors"]
    if not isinstance(obj, torch.Tensor):
        raise ModelDirError(f"{path}: expected a tensor")
    return obj.float()


def _load_state(path: Path) -> dict:
    try:
        obj = safe_torch_load(path)
    except AsrError as e:
        raise ModelDirError(str(e)) from None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise ModelDirError(f"{path}: expected a state_dict")
    return obj


def save_model_dir(
    path: Path,
    model: AcousticModel,
    info: dict,
    state_dict: dict | None = None,
    log_priors: torch.Tensor | None = None,
) -> None:
    """Writes model.yaml, model.pt and priors.pt (each atomically)."""
    path.mkdir(parents=True, exist_ok=True)
    save_config(info, path / "model.yaml")
    state = state_dict if state_dict is not None else model.state_dict()
    atomic_torch_save({k: v.detach().cpu() for k, v in state.items()}, path / "model.pt")
    if log_priors is not None:
        atomic_torch_save(log_priors.detach().cpu().float(), path / "priors.pt")
