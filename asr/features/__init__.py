"""Kaldi-compatible features (fbank, MFCC), CMVN and ark/scp matrix I/O."""

from asr.features.ark import read_matrix, write_matrices
from asr.features.cmvn import apply_cmvn, cmvn_stats
from asr.features.extract import (
    compute_features,
    compute_utterance_features,
    feature_dim,
    load_feature_config,
    load_features,
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
    "write_matrices",
]
