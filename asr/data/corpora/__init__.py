"""Preparation of Kaldi data dirs for the supported corpora.

Each module registers its ``asr prepare-data`` subcommand with
:func:`asr.data.registry.register_preparer`; the registry lists the modules.
"""

from asr.data.corpora.an4 import prepare_an4
from asr.data.corpora.yesno import prepare_yesno

__all__ = ["prepare_an4", "prepare_yesno"]
