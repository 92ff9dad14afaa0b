"""Grapheme-to-phoneme conversion: a joint-sequence (graphone) n-gram trained on CMUdict.

- :mod:`asr.g2p.align`: EM many-to-many alignment of spellings to phones.
- :mod:`asr.g2p.model`: training, the model file (plain tensors), loading.
- :mod:`asr.g2p.decode`: beam search for the n best pronunciations.
- :mod:`asr.g2p.cmu`: CMUdict, the seeded split and WER/PER.
- :mod:`asr.g2p.lexicon`: ``asr prepare-lexicon``'s lexicon builder.
- :mod:`asr.g2p.train`: rebuilds the shipped model (``python -m asr.g2p.train``).

``docs/LEXICON.md`` gives the measured accuracy.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

#: The shipped model, trained on all of CMUdict (stress removed).
DEFAULT_MODEL_NAME = "cmudict_g2p.pt"


def default_model_path() -> Path:
    """Path of the model shipped in the package (``asr/g2p/data/``)."""
    return Path(str(resources.files("asr.g2p") / "data" / DEFAULT_MODEL_NAME))


def load_decoder(path: str | Path):
    """A :class:`~asr.g2p.decode.G2PDecoder` for a model file (loaded without running code)."""
    from asr.g2p.decode import G2PDecoder
    from asr.g2p.model import load_model

    return G2PDecoder(load_model(path))


@lru_cache(maxsize=1)
def default_decoder():
    """The decoder of the shipped model, loaded once per process."""
    return load_decoder(default_model_path())
