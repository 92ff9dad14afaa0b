"""Typed config of the i-vector extractor (asr/conf/ivector.yaml; ``asr train-ivector --config``).

One file configures the whole chain, Kaldi's ``train_diag_ubm.sh`` +
``train_ivector_extractor.sh`` + ``extract_ivectors_online.sh``: the feature
transform the UBM sees, the UBM, the extractor and online extraction.  It is
copied into the extractor dir as ``ivector.yaml``, so extraction always runs
with the settings the extractor was trained with.

This module imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from asr.config import check_range, option


@dataclass
class IvectorFeatureConfig:
    """The ``features`` section: splice + PCA of the raw features (no CMVN), as Kaldi's get_pca_transform.sh."""

    splice: int = option(3, "frames of context spliced on each side before the PCA (Kaldi: 3)")
    pca_dim: int = option(40, "dimension kept by the PCA of the spliced frames (0: all, a decorrelating rotation)")

    def check(self, where: str, prefix: str = "") -> None:
        check_range(where, f"{prefix}splice", self.splice >= 0, "a non-negative integer", self.splice)
        check_range(where, f"{prefix}pca_dim", self.pca_dim >= 0, "a non-negative integer", self.pca_dim)


@dataclass
class UbmConfig:
    """The ``ubm`` section: a diagonal-covariance GMM trained with EM (Kaldi's train_diag_ubm.sh)."""

    num_gauss: int = option(512, "Gaussians of the UBM")
    split_iters: int = option(2, "EM iterations after each doubling of the Gaussians (from one Gaussian)")
    num_iters: int = option(4, "EM iterations at the full size")
    max_frames: int = option(500000, "frames used to train the PCA and the UBM, evenly strided over the data (0: all)")
    variance_floor: float = option(0.01, "floor on each variance, as a fraction of the data's variance in that dimension")
    min_weight: float = option(1.0e-5, "floor on the mixture weights")
    chunk_frames: int = option(20000, "frames per chunk of the E-step (bounds memory)")

    def check(self, where: str, prefix: str = "") -> None:
        for key in ("num_gauss", "chunk_frames"):
            check_range(where, f"{prefix}{key}", getattr(self, key) >= 1, "a positive integer", getattr(self, key))
        for key in ("split_iters", "num_iters", "max_frames"):
            check_range(where, f"{prefix}{key}", getattr(self, key) >= 0, "a non-negative integer", getattr(self, key))
        check_range(where, f"{prefix}variance_floor", 0.0 < self.variance_floor < 1.0, "a number in (0, 1)",
                    self.variance_floor)
        check_range(where, f"{prefix}min_weight", 0.0 <= self.min_weight < 1.0 / self.num_gauss,
                    f"a number in [0, 1/num_gauss = {1.0 / self.num_gauss:g})", self.min_weight)


@dataclass
class ExtractorConfig:
    """The ``extractor`` section: the total variability model (Kaldi's train_ivector_extractor.sh)."""

    ivector_dim: int = option(100, "i-vector dimension (columns of the total variability matrix T)")
    num_iters: int = option(10, "EM iterations")
    posterior_scale: float = option(0.1, "scale of the UBM posteriors in the statistics (Kaldi: 0.1)")
    num_gselect: int = option(5, "Gaussians kept per frame (top-N of the UBM)")
    min_post: float = option(0.025, "posteriors below this are pruned (the rest renormalised)")
    subsample: int = option(2, "train on every n-th frame (Kaldi: 2)")
    prior_offset: float = option(100.0, "initial offset of the prior mean on the first i-vector dimension (Kaldi)")
    update_sigma: bool = option(True, "re-estimate the (diagonal) covariances")
    update_prior: bool = option(True, "re-estimate the prior (the offset) each iteration, as Kaldi")
    variance_floor: float = option(0.1, "floor on each covariance, as a fraction of the count-weighted mean covariance")
    min_count: float = option(10.0, "Gaussians with less (scaled) count keep their T and Sigma in an update")
    seed: int = option(0, "seed of T's random initial columns")

    def check(self, where: str, prefix: str = "") -> None:
        for key in ("ivector_dim", "num_gselect", "subsample"):
            check_range(where, f"{prefix}{key}", getattr(self, key) >= 1, "a positive integer", getattr(self, key))
        check_range(where, f"{prefix}num_iters", self.num_iters >= 0, "a non-negative integer", self.num_iters)
        check_range(where, f"{prefix}posterior_scale", self.posterior_scale > 0, "a positive number",
                    self.posterior_scale)
        check_range(where, f"{prefix}min_post", 0.0 <= self.min_post < 1.0, "a number in [0, 1)", self.min_post)
        check_range(where, f"{prefix}prior_offset", self.prior_offset > 0, "a positive number", self.prior_offset)
        check_range(where, f"{prefix}variance_floor", 0.0 < self.variance_floor < 1.0, "a number in (0, 1)",
                    self.variance_floor)
        check_range(where, f"{prefix}min_count", self.min_count >= 0, "a non-negative number", self.min_count)


@dataclass
class OnlineConfig:
    """The ``online`` section: online extraction (Kaldi's online2 i-vectors)."""

    period: int = option(10, "frames between i-vector updates: row k is estimated from frames 0..k*period")
    utts_per_spk_max: int = option(
        2, "training data: pseudo-speakers of at most this many utterances (modify_speaker_info.sh; 0: real speakers)")
    max_remembered_frames: int = option(
        1000, "adaptation history carried into a speaker's next utterance, in frames (older stats scaled down; 0: all)")

    def check(self, where: str, prefix: str = "") -> None:
        check_range(where, f"{prefix}period", self.period >= 1, "a positive integer", self.period)
        for key in ("utts_per_spk_max", "max_remembered_frames"):
            check_range(where, f"{prefix}{key}", getattr(self, key) >= 0, "a non-negative integer", getattr(self, key))


@dataclass
class IvectorConfig:
    """``asr train-ivector --config`` (asr/conf/ivector.yaml): UBM, extractor and online extraction."""

    features: IvectorFeatureConfig = option(factory=IvectorFeatureConfig, doc="feature transform section")
    ubm: UbmConfig = option(factory=UbmConfig, doc="UBM section")
    extractor: ExtractorConfig = option(factory=ExtractorConfig, doc="extractor section")
    online: OnlineConfig = option(factory=OnlineConfig, doc="online extraction section")
