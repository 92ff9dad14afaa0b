"""An i-vector extractor dir: feature transform + UBM + extractor + config.

Layout (``asr train-ivector`` writes it, e.g. ``exp/ivector/``)::

    ivector.yaml   the IvectorConfig it was trained with, feature dims, training record
    ubm.pt         feature transform (splice, PCA mean and rows) and the diagonal UBM
    extractor.pt   T (C, F, D), Sigma (C, F), prior offset

All ``.pt`` files are plain tensors (``asr.fileio.atomic_torch_save``), read
back with ``safe_torch_load``: loading never runs code.  A missing file or
key, or shapes that do not fit together, is a one-line ``ModelDirError``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from asr.adapt.config import IvectorConfig
from asr.adapt.ivector import IvectorExtractor
from asr.adapt.ubm import DiagGmm, FeatureTransform
from asr.config import config_to_dict, load_config, parse_config, save_config
from asr.errors import AsrError, ConfigError, ModelDirError
from asr.fileio import atomic_torch_save, safe_torch_load

log = logging.getLogger("asr.adapt.model")

FILES = ("ivector.yaml", "ubm.pt", "extractor.pt")


@dataclass
class IvectorModel:
    """Everything online extraction needs.

    Attributes:
      config: The typed config (its ``online`` section drives extraction).
      transform: Raw features -> UBM features.
      ubm: Diagonal GMM over the UBM features.
      extractor: Total variability model.
      info: The extra keys of ``ivector.yaml`` (feature dims, training record).
      path: Where it was loaded from (None when built in memory).
    """

    config: IvectorConfig
    transform: FeatureTransform
    ubm: DiagGmm
    extractor: IvectorExtractor
    info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def ivector_dim(self) -> int:
        return self.extractor.ivector_dim

    @property
    def period(self) -> int:
        return self.config.online.period

    @property
    def input_dim(self) -> int:
        """Raw feature dimension expected."""
        return self.transform.input_dim

    def posteriors(self, feats: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """UBM features and scaled top-N posteriors of (T, F) raw features.

        Returns:
          ``(x, idx, post)``: (T, P) float32 UBM features, (T, N) Gaussian
          indices and (T, N) float32 posteriors times ``posterior_scale``
          (pruned ones are 0).
        """
        if feats.ndim != 2 or feats.shape[1] != self.input_dim:
            raise ValueError(f"i-vector extractor expects (T, {self.input_dim}) features, got {tuple(feats.shape)}")
        x = self.transform(feats)
        cfg = self.config.extractor
        idx, post = self.ubm.top_posteriors(x, cfg.num_gselect, cfg.min_post)
        return x, idx, post * cfg.posterior_scale

    def save(self, out_dir: str | Path) -> None:
        """Writes ivector.yaml, ubm.pt and extractor.pt into ``out_dir`` (each atomically)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_torch_save({"transform": self.transform.state_dict(), "ubm": self.ubm.state_dict()}, out / "ubm.pt")
        atomic_torch_save(self.extractor.state_dict(), out / "extractor.pt")
        save_config({**config_to_dict(self.config), **self.info}, out / "ivector.yaml")

    @classmethod
    def load(cls, path: str | Path) -> "IvectorModel":
        """Loads an extractor dir.

        Raises:
          ModelDirError: one line naming the file, for a missing file or key,
            a file that is not plain tensors, or shapes that disagree.
        """
        path = Path(path)
        if not path.is_dir():
            raise ModelDirError(f"{path}: no such i-vector extractor dir (run asr train-ivector)")
        for name in FILES:
            if not (path / name).is_file():
                raise ModelDirError(f"{path / name}: missing from the i-vector extractor dir")
        raw = load_config(path / "ivector.yaml")
        own = {k: raw[k] for k in ("features", "ubm", "extractor", "online") if k in raw}
        try:
            config = parse_config(IvectorConfig, own, str(path / "ivector.yaml"))
        except ConfigError as e:
            raise ModelDirError(str(e)) from None
        info = {k: v for k, v in raw.items() if k not in own}
        front = _load_tensors(path / "ubm.pt", {"transform": dict, "ubm": dict})
        transform = FeatureTransform(
            int(_tensor(front["transform"], "splice", path / "ubm.pt")),
            _tensor(front["transform"], "mean", path / "ubm.pt").to(torch.float64),
            _tensor(front["transform"], "projection", path / "ubm.pt").to(torch.float64),
        )
        ubm = DiagGmm(*(_tensor(front["ubm"], k, path / "ubm.pt").to(torch.float64)
                        for k in ("weights", "means", "variances")))
        ext_state = _load_tensors(path / "extractor.pt", {"T": Tensor, "sigma": Tensor, "prior_offset": Tensor})
        extractor = IvectorExtractor(ext_state["T"].to(torch.float64), ext_state["sigma"].to(torch.float64),
                                     float(ext_state["prior_offset"]))
        model = cls(config, transform, ubm, extractor, info, path)
        model.check_shapes()
        return model

    def check_shapes(self) -> None:
        """Raises ModelDirError when the transform, UBM and extractor do not fit together."""
        where = self.path or Path("i-vector model")
        c, p = self.ubm.num_gauss, self.transform.dim
        spliced = self.transform.mean.numel()
        checks = [
            (self.transform.projection.shape[1] == spliced, f"ubm.pt: PCA rows of width {self.transform.projection.shape[1]} "
             f"for spliced frames of {spliced}"),
            (spliced % (2 * self.transform.splice + 1) == 0, f"ubm.pt: spliced dim {spliced} is no multiple of "
             f"{2 * self.transform.splice + 1}"),
            (self.ubm.means.shape == (c, p) and self.ubm.variances.shape == (c, p),
             f"ubm.pt: UBM means/variances are not ({c}, {p})"),
            (tuple(self.extractor.T.shape[:2]) == (c, p) and self.extractor.sigma.shape == (c, p),
             f"extractor.pt: T {tuple(self.extractor.T.shape)} / sigma {tuple(self.extractor.sigma.shape)} do not "
             f"fit a UBM of {c} Gaussians over {p} dims"),
            (self.extractor.ivector_dim == self.config.extractor.ivector_dim,
             f"extractor.pt: i-vector dim {self.extractor.ivector_dim}, ivector.yaml says "
             f"{self.config.extractor.ivector_dim}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ModelDirError(f"{where}/{message}")


def _load_tensors(path: Path, keys: dict[str, type]) -> dict[str, Any]:
    """A dict file saved by ``atomic_torch_save``, with ``keys`` of the given types."""
    try:
        obj = safe_torch_load(path)
    except AsrError as e:
        raise ModelDirError(str(e)) from None
    if not isinstance(obj, dict):
        raise ModelDirError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    for key, kind in keys.items():
        if not isinstance(obj.get(key), kind):
            raise ModelDirError(f"{path}: missing or bad entry '{key}'")
    return obj


def _tensor(section: dict, key: str, path: Path) -> Tensor:
    value = section.get(key)
    if not isinstance(value, Tensor):
        raise ModelDirError(f"{path}: missing tensor '{key}'")
    return value
