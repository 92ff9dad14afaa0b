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
