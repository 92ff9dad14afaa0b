"""Speed perturbation of training data: features recomputed, alignments stretched."""

from __future__ import annotations

import torch

from asr.cli import main
from asr.training.align import read_alignments
from asr.training.data import add_speed_perturbed, load_utterances


def runs(ali: torch.Tensor) -> list[int]:
    """The sequence of states with repeats collapsed."""
    return torch.unique_consecutive(ali).tolist()


def test_speed_perturbed_copies_follow_lengths(tiny, tmp_path):
    assert main(["align", "--model-dir", str(tiny.model_dir), str(tiny.data), str(tmp_path / "ali")]) == 0
    alignments = read_alignments(tmp_path / "ali")
    utts = load_utterances(tiny.data, alignments)
    out = add_speed_perturbed(utts, tiny.data, [0.9, 1.0, 1.1])
    by_id = {u.utt_id: u for u in out}
    assert len(out) > len(utts)
    for u in utts:
        for factor in (0.9, 1.1):
            copy = by_id.get(f"sp{factor}-{u.utt_id}")
            if copy is None:
                continue  # allowed only when the alignment cannot be stretched
            # Slower speech (0.9) has more frames, faster (1.1) fewer.
            expected = len(u.feats) / factor
            assert abs(len(copy.feats) - expected) <= 0.02 * expected + 2
            assert copy.words == u.words
            assert len(copy.alignment) == round(len(u.alignment) * len(copy.feats) / len(u.feats))
            assert runs(copy.alignment) == runs(u.alignment)
    assert sum(u.utt_id.startswith("sp0.9-") for u in out) == len(utts)


def test_copies_are_normalised_like_their_data_dir(tiny, tmp_path):
    # Per-speaker data: the copies of one speaker at one factor share one set of stats (Kaldi's
    # sp0.9-<speaker>), so their pooled mean is 0 but single copies' means are not; per-utterance
    # data: every copy has mean 0 on its own.
    import shutil

    import numpy as np

    from asr.data.datadir import DataDir
    from reliability_fixtures import FBANK

    means = {}
    for kind in ("per-speaker", "per-utterance"):
        data = tmp_path / kind
        shutil.copytree(tiny.data, data)
        assert main(["compute-feats", str(data), str(tmp_path / f"fbank_{kind}"), "--config", str(FBANK),
                     "--cmvn", kind]) == 0
        utts = load_utterances(data, None)
        copies = [u for u in add_speed_perturbed(utts, data, [0.9]) if u.utt_id.startswith("sp0.9-")]
        assert len(copies) == len(utts)
        spk = DataDir.load(data).utt2spk
        pooled: dict[str, list[torch.Tensor]] = {}
        for c in copies:
            pooled.setdefault(spk[c.utt_id.removeprefix("sp0.9-")], []).append(c.feats)
        speaker_means = [float(torch.cat(f).double().mean(0).abs().max()) for f in pooled.values()]
        copy_means = [float(c.feats.double().mean(0).abs().max()) for c in copies]
        means[kind] = (max(speaker_means), max(copy_means))
        assert len(pooled) >= 1 and max(len(f) for f in pooled.values()) >= 2  # a speaker with several copies
    assert means["per-speaker"][0] < 1e-4 < means["per-speaker"][1]
    assert means["per-utterance"][1] < 1e-4
    assert np.isfinite(list(means.values())).all()
