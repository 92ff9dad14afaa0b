"""Length-sorted batches, shared by training and decoding."""

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
