"""asr: hybrid DNN/LSTM+HMM speech recognition on PyTorch and k2."""

__version__ = "0.1.0"

__all__ = ["__version__", "Recognizer"]


def __getattr__(name: str):
    # Imported lazily so `import asr` (and `asr --help`) stays fast.
    if name == "Recognizer":
        from asr.recognizer import Recognizer

        return Recognizer
    raise AttributeError(name)
