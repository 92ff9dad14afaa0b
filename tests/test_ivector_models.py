"""Acoustic models with an i-vector input (model.ivector_dim > 0)."""

from __future__ import annotations

import pytest
import torch

from asr.models import build_model, model_config_dict

NUM_PDFS = 7
IVECTOR_DIM = 5
LENGTHS = [13, 8, 4]
CONFIGS = {
    "tdnn": {"type": "tdnn", "hidden": 12, "context": [[-1, 0, 1], [-3, 0, 3]]},
    "lstm": {"type": "lstm", "hidden": 12, "layers": 1},
    "blstm": {"type": "blstm", "hidden": 12, "layers": 2},
    "cnn_lstm": {"type": "cnn_lstm", "hidden": 12, "layers": 1, "channels": [3]},
}
CASES = [(name, sub) for name in CONFIGS for sub in (1, 3)]


def batch(feat_dim: int = 10, pad: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded features and per-frame i-vectors; each utterance's i-vector changes every 4 frames."""
    g = torch.Generator().manual_seed(3)
    feats = torch.full((len(LENGTHS), max(LENGTHS), feat_dim), pad)
    ivecs = torch.full((len(LENGTHS), max(LENGTHS), IVECTOR_DIM), pad)
    for i, n in enumerate(LENGTHS):
        feats[i, :n] = torch.randn(n, feat_dim, generator=g)
        rows = torch.randn(-(-n // 4), IVECTOR_DIM, generator=g)
        ivecs[i, :n] = rows[torch.arange(n) // 4]
    return feats, torch.tensor(LENGTHS), ivecs


def make(name: str, sub: int):
    torch.manual_seed(0)
    return build_model({**CONFIGS[name], "subsampling": sub, "ivector_dim": IVECTOR_DIM}, 10, NUM_PDFS)


@pytest.mark.parametrize("name,sub", CASES)
def test_output_depends_on_the_ivector_and_padding_never_leaks(name: str, sub: int) -> None:
    model = make(name, sub).eval()
    feats, lengths, ivecs = batch(pad=1e3)
    with torch.no_grad():
        out, out_lengths = model(feats, lengths, ivecs)
        other, _ = model(feats, lengths, ivecs + 1.0)
        for i, n in enumerate(LENGTHS):
            alone, _ = model(feats[i : i + 1, :n], lengths[i : i + 1], ivecs[i : i + 1, :n])
            torch.testing.assert_close(alone[0], out[i, : out_lengths[i]], atol=1e-5, rtol=0)
    valid = torch.arange(out.shape[1])[None, :] < out_lengths[:, None]
    assert (out - other)[valid].abs().max() > 1e-3  # the i-vector is an input


@pytest.mark.parametrize("name", CONFIGS)
def test_offline_ivector_equals_it_repeated_per_frame(name: str) -> None:
    model = make(name, 3).eval()
    feats, lengths, _ = batch()
    one = torch.randn(len(LENGTHS), IVECTOR_DIM)
    with torch.no_grad():
        per_utt, _ = model(feats, lengths, one)
        per_frame, _ = model(feats, lengths, one.unsqueeze(1).expand(-1, feats.shape[1], -1))
    torch.testing.assert_close(per_utt, per_frame)


def test_config_records_ivector_dim_and_rebuilds() -> None:
    model = make("blstm", 3)
    cfg = model_config_dict(model)
    assert cfg["ivector_dim"] == IVECTOR_DIM and model.ivector_dim == IVECTOR_DIM
    build_model(cfg, 10, NUM_PDFS).load_state_dict(model.state_dict())
    plain = build_model(CONFIGS["blstm"], 10, NUM_PDFS)
    assert "ivector_dim" not in plain.config and plain.ivector_dim == 0  # model.yaml unchanged without i-vectors


def test_missing_or_unexpected_ivectors_are_errors() -> None:
    feats, lengths, ivecs = batch()
    with pytest.raises(ValueError, match="takes i-vectors of dim 5"):
        make("tdnn", 1)(feats, lengths)
    with pytest.raises(ValueError, match="takes no i-vectors"):
        build_model(CONFIGS["tdnn"], 10, NUM_PDFS)(feats, lengths, ivecs)
    with pytest.raises(ValueError, match="shape"):
        make("tdnn", 1)(feats, lengths, ivecs[..., :3])
