"""Tests of the acoustic models in asr.models."""

from __future__ import annotations

import logging

import pytest
import torch

from asr.errors import ConfigError
from asr.models import AcousticModel, build_model, model_config_dict

NUM_PDFS = 10
LENGTHS = [17, 9, 4]  # 4 frames -> 2 at subsampling 3 (ceil)

CONFIGS = {
    "tdnn": {"type": "tdnn", "hidden": 16, "context": [[-2, -1, 0, 1, 2], "-1,0,1", [-3, 0, 3]]},
    "tdnn_asym": {"type": "tdnn", "hidden": 16, "context": [[-2, 0], [0, 1, 2], [0]], "subsampling_layer": 1},
    "lstm": {"type": "lstm", "hidden": 16, "layers": 2},
    "blstm_proj": {"type": "blstm", "hidden": 16, "layers": 2, "proj": 8},
    "cnn_lstm": {"type": "cnn_lstm", "hidden": 16, "layers": 1, "channels": [4, 4]},
    "cnn_blstm": {"type": "cnn_lstm", "hidden": 16, "layers": 1, "channels": [4], "bidirectional": True, "proj": 8},
}
CASES = [(name, sub, feat_dim) for name in CONFIGS for sub, feat_dim in [(1, 13), (3, 40)]]


def make(name: str, sub: int, feat_dim: int) -> AcousticModel:
    torch.manual_seed(0)
    return build_model({**CONFIGS[name], "subsampling": sub}, feat_dim, NUM_PDFS)


def padded_batch(feat_dim: int, pad_value: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    feats = torch.full((len(LENGTHS), max(LENGTHS), feat_dim), pad_value)
    for i, n in enumerate(LENGTHS):
        feats[i, :n] = torch.randn(n, feat_dim, generator=g)
    return feats, torch.tensor(LENGTHS)


@pytest.mark.parametrize("name,sub,feat_dim", CASES)
def test_forward_backward_log_probs(name: str, sub: int, feat_dim: int) -> None:
    model = make(name, sub, feat_dim).train()
    feats, lengths = padded_batch(feat_dim)
    log_probs, out_lengths = model(feats, lengths)
    assert model.subsampling_factor == sub
    assert out_lengths.dtype == torch.int64
    assert torch.equal(out_lengths, model.output_lengths(lengths))
    assert out_lengths.tolist() == [-(-n // sub) for n in LENGTHS]
    assert log_probs.shape == (len(LENGTHS), int(out_lengths.max()), NUM_PDFS)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]), atol=1e-5)
    mask = torch.arange(log_probs.shape[1])[None, :] < out_lengths[:, None]
    log_probs[mask].mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name,sub,feat_dim", CASES)
def test_padding_invariance(name: str, sub: int, feat_dim: int) -> None:
    model = make(name, sub, feat_dim).eval()
    # garbage in the padding must not reach valid frames
    feats, lengths = padded_batch(feat_dim, pad_value=1e3)
    with torch.no_grad():
        batch_out, out_lengths = model(feats, lengths)
        for i, n in enumerate(LENGTHS):
            alone, alone_len = model(feats[i : i + 1, :n], lengths[i : i + 1])
            assert alone_len.item() == out_lengths[i].item()
            torch.testing.assert_close(alone[0], batch_out[i, : out_lengths[i]], atol=1e-5, rtol=0)


@pytest.mark.parametrize("bidirectional,proj", [(True, 0), (True, 5), (False, 0)])
def test_lstm_stack_matches_packed_lstm(bidirectional: bool, proj: int) -> None:
    # LstmStack runs its nn.LSTM layer by layer on the padded batch; it must
    # agree with the packed-sequence nn.LSTM in outputs and gradients.
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from asr.models.lstm import LstmStack

    torch.manual_seed(0)
    stack = LstmStack(6, 8, 3, proj, bidirectional, dropout=0.0).train()
    feats, lengths = padded_batch(6, pad_value=1e3)
    x1 = feats.clone().requires_grad_(True)
    out = stack(x1, lengths)
    packed = pack_padded_sequence(feats, lengths, batch_first=True, enforce_sorted=False)
    x2 = packed.data.clone().requires_grad_(True)
    ref_packed, _ = stack.lstm(packed._replace(data=x2))
    ref, _ = pad_packed_sequence(ref_packed, batch_first=True, total_length=feats.shape[1])
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    weights = torch.randn_like(ref)
    grads = torch.autograd.grad((out * weights).sum(), [x1, *stack.parameters()])
    ref_grads = torch.autograd.grad((ref * weights).sum(), [x2, *stack.parameters()])
    packed_input_grad = pack_padded_sequence(grads[0], lengths, batch_first=True, enforce_sorted=False).data
    torch.testing.assert_close(packed_input_grad, ref_grads[0], atol=1e-5, rtol=1e-4)
    for g, r in zip(grads[1:], ref_grads[1:]):
        torch.testing.assert_close(g, r, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_rebuilds_same_architecture(name: str) -> None:
    model = make(name, 3, 13)
    cfg = model_config_dict(model)
    assert cfg == model.config and cfg is not model.config
    rebuilt = build_model(cfg, 13, NUM_PDFS)
    rebuilt.load_state_dict(model.state_dict())  # strict: same keys and shapes
    assert rebuilt.config == cfg


def test_parameter_count_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="asr.models"):
        model = make("tdnn", 1, 13)
    n = sum(p.numel() for p in model.parameters())
    assert any(r.name == "asr.models" and str(n) in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "cfg",
    [
        {"type": "transformer"},
        {},
        {"type": "lstm", "hiden": 16},
        {"type": "tdnn", "proj": 8},
        {"type": "lstm", "hidden": 16, "proj": 16},
        {"type": "lstm", "dropout": 1.5},
        {"type": "tdnn", "context": [[1, 0]]},
        {"type": "tdnn", "context": [[-1, 0, 2]]},
        {"type": "tdnn", "context": [[0], [0]], "layers": 3},
        {"type": "cnn_lstm", "channels": []},
        {"type": "blstm", "subsampling": 0},
    ],
)
def test_bad_config_raises(cfg: dict) -> None:
    with pytest.raises(ConfigError):
        build_model(cfg, 13, NUM_PDFS)


def test_tdnn_default_contexts_from_layers() -> None:
    model = build_model({"type": "tdnn", "hidden": 8, "layers": 4}, 13, NUM_PDFS)
    assert model.config["context"] == [[-2, -1, 0, 1, 2], [-1, 0, 1], [-1, 0, 1], [-3, 0, 3]]


def test_single_frame_training_batch() -> None:
    # one valid frame after subsampling: batch norm must not fail on it
    model = make("tdnn", 3, 13).train()
    log_probs, out_lengths = model(torch.randn(1, 2, 13), torch.tensor([2]))
    assert out_lengths.tolist() == [1] and log_probs.shape == (1, 1, NUM_PDFS)
