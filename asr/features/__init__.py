"""Kaldi-compatible features (fbank, MFCC) and CMVN."""

from asr.features.cmvn import apply_cmvn, cmvn_stats, load_features, read_matrix
from asr.features.extract import (
    compute_features,
    compute_utterance_features,
    feature_dim,
    load_feature_config,
    validate_feature_config,
)

__all__ = [
    "apply_cmvn",
    "cmvn_stats",
    "compute_features",
    "compute_utterance_features",
    "feature_dim",
    "load_feature_config",
    "load_features",
    "read_matrix",
    "validate_feature_config",
]
