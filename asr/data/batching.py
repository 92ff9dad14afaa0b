"""How work is divided: length-sorted batches (training, decoding) and contiguous jobs (features, decoding)."""

from __future__ import annotations

import random


def length_batches(lengths: list[int], keys: list[str], max_frames: int, shuffle: bool = False, seed: int = 0) -> list[list[int]]:
    """Groups item indices of similar length into batches of at most ``max_frames`` padded frames.

    Items are sorted by decreasing length (ties by key), as k2 wants.  With
    ``shuffle`` the order of batches (not their content) is shuffled by
    ``seed``, so an epoch is reproducible from its seed alone.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], keys[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and longest * (len(current) + 1) > max_frames:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    if shuffle:
        random.Random(seed).shuffle(batches)
    return batches


def split_jobs(utts: list[str], nj: int) -> list[list[str]]:
    """Contiguous, near-equal splits into ``min(nj, len(utts))`` jobs (at least one), as Kaldi's split_scp.pl.

    The first ``len(utts) % nj`` jobs get one item more than the others.
    """
    nj = max(1, min(nj, len(utts)))
    size, extra = divmod(len(utts), nj)
    out, start = [], 0
    for j in range(nj):
        end = start + size + (1 if j < extra else 0)
        out.append(utts[start:end])
        start = end
    return out
