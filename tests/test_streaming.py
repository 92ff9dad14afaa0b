"""Streaming recognition (issue 17) and transcription CMVN choices (issue 14).

A tiny causal model (unidirectional LSTM at 3x subsampling on sliding-CMVN
features) is trained on the yesno recipe's flat-start alignments, once per
module, in a few seconds; the yesno recipe itself comes from decode_fixtures.
"""

from __future__ import annotations

import logging
import math
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from decode_fixtures import ASR, HARD_UTT, REPO, read_table, yesno, yesno_run  # noqa: F401

import asr
from asr.cli import main
from asr.decoding.endpoint import EndpointConfig, EndpointRule, endpoint_rule, trailing_silence
from asr.decoding.stream_model import StreamingNetwork, lookahead_frames
from asr.errors import AudioError, ConfigError, ModelDirError
from asr.models import build_model

STREAM_MODEL = """criterion: ce
model: {type: lstm, hidden: 32, layers: 1, subsampling: 3, dropout: 0.0}
optimizer: {name: adamw, lr: 0.01, weight_decay: 0.0}
scheduler: {name: cosine, warmup_steps: 0, final_lr_ratio: 0.1}
epochs: 4
max_frames: 4000
grad_clip: 5.0
valid_fraction: 0.0
seed: 0
device: cpu
"""


@pytest.fixture(scope="module")
def stream_model(yesno, tmp_path_factory):
    """``(model dir, data root)``: the LSTM trained on yesno's sliding-CMVN features."""
    root = tmp_path_factory.mktemp("stream")
    for name in ("train", "test"):
        shutil.copytree(yesno.data / name, root / name)
        for f in ("feats.scp", "cmvn.scp", "utt2num_frames"):
            (root / name / f).unlink(missing_ok=True)
    fbank = str(REPO / "conf" / "yesno" / "fbank.yaml")
    assert main(["compute-feats", str(root / "train"), str(root / "fbank"), "--config", fbank,
                 "--cmvn", "sliding"]) == 0
    assert main(["compute-feats", str(root / "test"), str(root / "fbank"), "--config", fbank, "--cmvn", "sliding",
                 "--cmvn-prior", str(root / "train")]) == 0
    (root / "stream.yaml").write_text(STREAM_MODEL, encoding="utf-8")
    torch.manual_seed(0)
    assert main(["train", "--config", str(root / "stream.yaml"), "--data", str(root / "train"),
                 "--lang", str(yesno.data / "lang"), "--out", str(root / "lstm"),
                 "--ali-dir", str(yesno.workdir / "exp/flat/ali"), "--graph-dir", str(yesno.graph_dir),
                 "--threads", "1"]) == 0
    return root / "lstm", root


@pytest.fixture(scope="module")
def recognizer(stream_model):
    return asr.Recognizer.from_dir(stream_model[0])


@pytest.fixture(scope="module")
def test_wavs(yesno):
    wav = read_table(yesno.test_dir / "wav.scp")
    return [wav[u] for u in sorted(wav) if u != HARD_UTT]


def feed(stream, wave: np.ndarray, rate: int, chunk: float = 0.16):
    """All final segments of a waveform fed in ``chunk``-second pieces, and the partials seen on the way."""
    segs, partials, step = [], [], int(chunk * rate)
    for i in range(0, len(wave), step):
        segs += stream.accept(wave[i:i + step], rate)
        partials.append(stream.partial().text)
    return segs + stream.finish(), partials


# --- the network, chunk by chunk -----------------------------------------------------------------

@pytest.mark.parametrize("config", [
    {"type": "lstm", "hidden": 16, "layers": 2, "subsampling": 3, "dropout": 0.0},
    {"type": "lstm", "hidden": 16, "layers": 1, "proj": 8, "subsampling": 1},
    {"type": "tdnn", "hidden": 16, "subsampling": 3, "subsampling_layer": 1,
     "context": [[-2, -1, 0, 1, 2], [-1, 0, 1], [-3, 0, 3], [0]]},
    {"type": "tdnn", "hidden": 16, "subsampling": 2, "subsampling_layer": 0, "context": [[-1, 0], [-2, 0, 2]]},
], ids=["lstm_s3", "lstm_proj", "tdnn_s3", "tdnn_s2"])
def test_streaming_network_equals_the_offline_forward(config):
    torch.manual_seed(0)
    model = build_model(config, 5, 7).eval()
    for bn in [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]:
        bn.running_mean.normal_()  # non-trivial statistics, so that the norms matter
        bn.running_var.uniform_(0.5, 2.0)
    feats = torch.randn(1, 101, 5)
    with torch.no_grad():
        offline, lengths = model(feats, torch.tensor([101]))
    net = StreamingNetwork(model)
    outs, pos, rng = [], 0, np.random.default_rng(0)
    while pos < 101:
        k = int(rng.integers(1, 9))
        outs.append(net.accept(feats[0, pos:pos + k]))
        pos += k
    outs.append(net.finish())
    got = torch.cat(outs)
    assert got.shape == (int(lengths[0]), 7)
    torch.testing.assert_close(got, offline[0], atol=1e-5, rtol=1e-5)


def test_whole_utterance_models_are_refused():
    blstm = build_model({"type": "blstm", "hidden": 8, "layers": 1}, 5, 7).eval()
    with pytest.raises(ModelDirError, match="BLSTM needs the whole utterance"):
        StreamingNetwork(blstm, "exp/blstm")
    tdnn = build_model({"type": "tdnn", "hidden": 8, "context": [[-2, 0, 2], [-3, 0, 3]], "subsampling": 3,
                        "subsampling_layer": 0}, 5, 7)
    assert lookahead_frames(tdnn) == 2 + 3 * 3  # the second layer counts frames at the reduced rate


# --- endpoint rules --------------------------------------------------------------------------------

def test_endpoint_rules_fire_at_the_right_times_with_subsampling():
    cfg = EndpointConfig()
    shift = 0.03  # 10 ms features, subsampling factor 3
    # speech for 1 s, then silence: rule2 (0.5 s, good final state) fires after 17 output frames of silence
    speech = 34
    fired = [n for n in range(0, 100) if endpoint_rule(cfg, speech + n, n, shift, 1.0) is not None]
    assert fired[0] == math.ceil(0.5 / shift - 1e-9) == 17
    assert endpoint_rule(cfg, speech + 17, 17, shift, 1.0) == "rule2"
    # counting output frames as 10 ms (kaldi#1184) would have waited 50 frames (1.5 s)
    assert endpoint_rule(cfg, speech + 17, 17, 0.01, 1.0) is None
    # a poor final state: rule3 at 1.0 s (34 frames) with cost <= 8, else rule4 at 2.0 s (67 frames)
    assert [endpoint_rule(cfg, speech + n, n, shift, 5.0) for n in (33, 34)] == [None, "rule3"]
    assert [endpoint_rule(cfg, speech + n, n, shift, math.inf) for n in (66, 67)] == [None, "rule4"]
    # nothing decoded: only rule1, after 5 s of silence (167 frames)
    assert [endpoint_rule(cfg, n, n, shift, 0.0) for n in (166, 167)] == [None, "rule1"]
    # rule5: 20 s of speech (667 frames) ends the segment whatever the rest
    assert [endpoint_rule(cfg, n, 0, shift, math.inf) for n in (666, 667)] == [None, "rule5"]


def test_trailing_silence_and_endpoint_config_checks():
    sil = {1}
    assert trailing_silence([(0, 1), (5, 2), (12, 1), (20, 1)], 30, sil) == 18
    assert trailing_silence([(0, 1), (5, 2)], 30, sil) == 0
    assert trailing_silence([(0, 1)], 30, sil) == 30
    assert trailing_silence([], 9, sil) == 9
    from asr.config import load_typed_config, parse_config

    assert load_typed_config("endpoint.yaml", EndpointConfig) == EndpointConfig()  # the YAML repeats the defaults
    with pytest.raises(ConfigError, match="missing key 'rule2.max_relative_cost'"):
        parse_config(EndpointConfig, {"rule2": {"must_contain_nonsilence": True, "min_trailing_silence": 0.3,
                                                "min_utterance_length": 0.0}}, "ep.yaml")
    with pytest.raises(ConfigError, match="'rule5' must be a maximum segment length"):
        parse_config(EndpointConfig, {"rule5": {"must_contain_nonsilence": False, "min_trailing_silence": 0.0,
                                                "max_relative_cost": None, "min_utterance_length": 0.0}}, "ep.yaml")
    assert isinstance(EndpointConfig().rule2, EndpointRule)


# --- the stream on yesno ---------------------------------------------------------------------------

def test_streaming_gives_the_offline_words(recognizer, test_wavs):
    assert recognizer.cmvn.mode == "sliding"  # the model's own CMVN is the offline default
    for path in test_wavs[:3]:
        wave, rate = sf.read(path, dtype="float32")
        offline = recognizer.transcribe(path)
        assert offline.text  # the tiny model recognizes something
        segs, partials = feed(recognizer.stream(), wave, rate)
        assert " ".join(s.text for s in segs) == offline.text
        words = [w for s in segs for w in s.words]
        assert [w.word for w in words] == offline.text.split()
        # absolute times, in order, within their segments, near the offline ones
        for s in segs:
            assert s.final and s.endpoint is not None
            assert all(s.start - 1e-6 <= w.start and w.start + w.duration <= s.end + 1e-6 for w in s.words)
        assert [w.start for w in words] == sorted(w.start for w in words)
        np.testing.assert_allclose([w.start for w in words], [w.start for w in offline.words], atol=0.1)
        # partials grow while the audio arrives, ending with what becomes final
        assert partials[0].split() == [] or len(partials[0].split()) < len(offline.text.split())
        assert any(p and p != offline.text for p in partials)


def test_search_restarts_at_endpoints_keep_memory_bounded(recognizer, test_wavs, tmp_path):
    """30 s of speech with no pauses long enough for rule2-4: rule5 (here 3 s) must cut it."""
    waves = [sf.read(p, dtype="float32")[0] for p in test_wavs[:5]]
    rate = 8000
    ep = tmp_path / "ep.yaml"
    text = (REPO / "asr" / "conf" / "endpoint.yaml").read_text(encoding="utf-8")
    ep.write_text(text.replace("min_utterance_length: 20.0", "min_utterance_length: 3.0"), encoding="utf-8")
    stream = recognizer.stream(endpoint=ep)
    segs, _ = feed(stream, np.concatenate(waves), rate, chunk=0.2)
    max_frames = int(3.0 / stream.frame_shift)
    assert stream.stats.max_frames_held <= max_frames
    assert stream.stats.segments >= 30 * 0.8 / 3  # the stream was cut again and again
    assert stream.stats.endpoints.get("rule5", 0) >= 1
    # the segments follow each other (segments without words are not returned) and cover the stream
    seconds = sum(len(w) for w in waves) / rate
    assert segs[0].start == 0.0
    assert all(b.start >= a.end - 1e-6 for a, b in zip(segs, segs[1:]))
    assert segs[-1].end <= seconds + 0.05
    assert abs(stream.stats.output_frames * stream.frame_shift - seconds) < 0.05
    assert len(" ".join(s.text for s in segs).split()) >= 5 * 6  # most of the 40 words survive the cuts


def test_a_per_utterance_model_streams_with_one_warning(yesno, test_wavs, caplog):
    """yesno's TDNN has exactly 0.2 s of right context (20 frames), the most a streaming model may have."""
    from asr.decoding import streaming

    rec = asr.Recognizer.from_dir(yesno.model_dir)
    streaming._WARNED.discard(str(rec.decoder.md.path))  # other tests may have streamed this model already
    with caplog.at_level(logging.WARNING, logger="asr"):
        streams = [rec.stream(), rec.stream()]
    assert streams[0].lookahead == pytest.approx(0.2)
    warned = [r for r in caplog.records if "streaming normalises with a sliding window" in r.getMessage()]
    assert len(warned) == 1 and "per-utterance" in warned[0].getMessage()
    wave, rate = sf.read(test_wavs[0], dtype="float32")
    segs, _ = feed(streams[0], wave, rate)
    assert set(" ".join(s.text for s in segs).split()) <= {"YES", "NO"}


def test_bad_chunks_give_one_line_errors(recognizer, test_wavs):
    wave, rate = sf.read(test_wavs[0], dtype="float32")
    stream = recognizer.stream()
    cases = [
        ((wave[:800] * 32768).astype(np.int16), rate, "expected float samples in [-1, 1], got int16"),
        (wave[:800], 16000, "chunk at 16000 Hz, but the model takes 8000 Hz"),
        (np.stack([wave[:800], wave[:800]]), rate, "expected 1-D mono samples, got shape (2, 800)"),
        (np.full(10, np.nan, dtype=np.float32), rate, "NaN or Inf"),
        (list(wave[:10]), rate, "expected a numpy array or tensor"),
        (wave[:800], 8000.0, "sample_rate must be an integer"),
    ]
    for samples, r, message in cases:
        with pytest.raises(AudioError) as e:
            stream.accept(samples, r)
        assert message in str(e.value) and "\n" not in str(e.value)
    assert stream.accept(wave[:800], rate) == []  # the stream still works after refused chunks
    stream.finish()
    with pytest.raises(AudioError, match="after finish"):
        stream.accept(wave[:800], rate)


def test_cli_streams_a_wav_and_raw_stdin(stream_model, recognizer, test_wavs, capsys):
    path = test_wavs[1]
    wave, rate = sf.read(path, dtype="int16")
    expected = recognizer.transcribe(path).text
    proc = subprocess.run([str(ASR), "transcribe", "--model-dir", str(stream_model[0]), "--stream", "--chunk", "0.1",
                           "--raw-rate", str(rate), path, "-"], input=wave.astype("<i2").tobytes(),
                          capture_output=True, timeout=900, cwd=REPO)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    lines = [line.split("\t") for line in proc.stdout.decode().splitlines()]
    for name in (path, "-"):
        mine = [parts[1:] for parts in lines if parts[0] == name]
        finals = [m for m in mine if m[0] == "final"]
        assert " ".join(m[3] for m in finals) == expected, name
        assert float(finals[0][1]) == 0.0 and float(finals[-1][2]) <= len(wave) / rate + 0.05
        assert any(m[0] == "partial" for m in mine)
    assert main(["transcribe", "--model-dir", str(stream_model[0]), "--stream", "--raw-rate", "16000", "-"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert errors == ["asr transcribe: error: stdin: raw PCM at 16000 Hz, but the model takes 8000 Hz "
                      "(resample it first, e.g. sox -r)"]


# --- CMVN choices ----------------------------------------------------------------------------------

def test_sliding_features_record_the_training_prior(stream_model):
    from asr.config import load_config
    from asr.features.ark import read_matrix
    from asr.features.cmvn import cmvn_stats
    from asr.features.extract import load_features
    from asr.features.online_cmvn import SlidingCmvnConfig, sliding_cmvn

    model_dir, root = stream_model
    train_cfg = load_config(root / "train" / "conf" / "feats.yaml")
    test_cfg = load_config(root / "test" / "conf" / "feats.yaml")
    feats = {u: read_matrix(s) for u, s in read_table(root / "train" / "feats.scp").items()}
    total = sum(cmvn_stats(f) for f in feats.values())
    np.testing.assert_allclose(np.array(train_cfg["cmvn_prior"]), total, rtol=1e-12)
    assert test_cfg["cmvn_prior"] == train_cfg["cmvn_prior"]  # --cmvn-prior data/train
    assert load_config(model_dir / "model.yaml")["features"]["cmvn_prior"] == train_cfg["cmvn_prior"]
    assert not (root / "train" / "cmvn.scp").exists()
    utt, loaded = next(iter(load_features(root / "train")))
    expected = sliding_cmvn(torch.from_numpy(feats[utt]), SlidingCmvnConfig(), prior=total)
    assert torch.equal(loaded, expected)


def test_transcription_cmvn_choices(yesno, test_wavs, caplog, tmp_path):
    from asr.features.session_cmvn import load_cmvn_stats

    with caplog.at_level(logging.WARNING, logger="asr"):
        rec = asr.Recognizer.from_dir(yesno.model_dir)
    assert rec.cmvn.mode == "per-utterance"  # the model's own, no warning
    assert not [r for r in caplog.records if "CMVN" in r.getMessage()]
    per_utt = [rec.features(p) for p in test_wavs[:2]]

    with caplog.at_level(logging.WARNING, logger="asr"):
        spk = asr.Recognizer.from_dir(yesno.model_dir, cmvn="per-speaker")
    assert sum("trained with per-utterance CMVN but transcription normalises per-speaker" in r.getMessage()
               for r in caplog.records) == 1
    first = spk.features(test_wavs[0])
    assert torch.allclose(first, per_utt[0], atol=1e-5)  # a session of one file: its own statistics
    second = spk.features(test_wavs[1])
    raw = [asr.Recognizer.from_dir(yesno.model_dir, cmvn="none").features(p) for p in test_wavs[:2]]
    assert spk.cmvn.session_frames == len(raw[0]) + len(raw[1])
    both = torch.cat(raw).mean(dim=0)
    torch.testing.assert_close(second, raw[1] - both, atol=1e-4, rtol=1e-5)  # the session's mean
    spk.new_speaker()
    assert spk.cmvn.session_frames == 0
    assert torch.allclose(spk.features(test_wavs[1]), per_utt[1], atol=1e-5)

    # statistics supplied by the caller: the recipe's per-utterance cmvn.scp entry of that file
    utt = next(u for u, p in read_table(yesno.test_dir / "wav.scp").items() if p == test_wavs[1])
    spk.new_speaker(yesno.test_dir / "cmvn.scp", key=utt)
    for _ in range(2):  # fixed: the same every time, no session
        assert torch.allclose(spk.features(test_wavs[1]), per_utt[1], atol=1e-4)
    assert spk.cmvn.session_frames == 0
    stats = load_cmvn_stats(yesno.test_dir / "cmvn.scp", utt)
    text = tmp_path / "stats.txt"
    rows = [" ".join(repr(float(v)) for v in row) for row in stats]
    text.write_text(f" [\n {rows[0]}\n {rows[1]} ]\n")
    np.testing.assert_allclose(load_cmvn_stats(text), stats)  # a Kaldi text matrix (matrix-sum --binary=false)
    with pytest.raises(ConfigError, match="no entry for 'nobody'"):
        load_cmvn_stats(yesno.test_dir / "cmvn.scp", "nobody")
    with pytest.raises(ConfigError, match=r"must be a \(2, 24\) matrix"):
        load_cmvn_stats(np.zeros((2, 5)), dim=23)
    with pytest.raises(ConfigError, match="cannot go with cmvn 'per-utterance'"):
        asr.Recognizer.from_dir(yesno.model_dir, cmvn="per-utterance", cmvn_stats=stats)


def test_transcribe_stream_reads_files_block_by_block_as_load_audio_would(tmp_path):
    import soundfile as sf

    from asr.commands.transcribe_stream import file_chunks
    from asr.data.audio import load_audio

    rng = np.random.default_rng(0)
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, rng.integers(-20000, 20000, size=(8000 * 3 + 123, 2)).astype(np.int16), 8000, subtype="PCM_16")
    chunks = list(file_chunks(str(stereo), 8000, 0.16))
    assert {len(c) for c in chunks[:-1]} == {1280} and 0 < len(chunks[-1]) <= 1280
    np.testing.assert_array_equal(np.concatenate(chunks), load_audio(stereo, 8000).numpy())
    # another rate: read whole and resampled, as offline transcription does
    resampled = np.concatenate(list(file_chunks(str(stereo), 16000, 0.16)))
    np.testing.assert_array_equal(resampled, load_audio(stereo, 16000).numpy())
