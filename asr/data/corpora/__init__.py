"""Preparation of Kaldi data dirs for the supported corpora."""

from asr.data.corpora.an4 import prepare_an4
from asr.data.corpora.yesno import prepare_yesno

#: Corpus name -> preparation function ``(corpus_dir, out_dir) -> {split: data_dir}``.
PREPARERS = {"yesno": prepare_yesno, "an4": prepare_an4}

__all__ = ["PREPARERS", "prepare_an4", "prepare_yesno"]
