#!/usr/bin/env python3
"""Writes the template's feature config for a sample rate: ``asr/conf/fbank.yaml``
with ``sample_rate`` set and, at 8 kHz and below, 23 mel bins instead of 40
(Kaldi's telephone-band setting: 40 bins under 4 kHz are too narrow)."""

from __future__ import annotations

import sys

from asr.config import load_config, save_config

#: Sample rates up to this one (Hz) are narrow-band.
NARROWBAND_MAX_RATE = 8000
NARROWBAND_MEL_BINS = 23


def feats_config(sample_rate: int) -> dict:
    """The shipped fbank config at ``sample_rate``."""
    cfg = load_config("fbank.yaml")
    cfg["sample_rate"] = sample_rate
    if sample_rate <= NARROWBAND_MAX_RATE:
        cfg["num_mel_bins"] = NARROWBAND_MEL_BINS
    return cfg


if __name__ == "__main__":
    if len(sys.argv) != 3 or not sys.argv[1].isdigit():
        sys.exit(f"usage: {sys.argv[0]} SAMPLE_RATE_HZ OUT.yaml")
    save_config(feats_config(int(sys.argv[1])), sys.argv[2])
