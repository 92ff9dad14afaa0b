"""Exception types that `asr` raises for problems the user can fix.

Every error carries a one-line message that names the culprit (file, line,
key).  The CLI prints ``error: <message>`` and exits with status 1 for these;
anything else is a bug in `asr` and keeps its traceback.
"""


class AsrError(Exception):
    """Base class of all user-facing errors."""


class AudioError(AsrError):
    """An audio file is missing, empty, corrupt or in an unsupported format."""


class DataDirError(AsrError):
    """A Kaldi data directory is malformed (unsorted, duplicate keys, ...)."""


class LexiconError(AsrError):
    """A lexicon, phone set or lang directory is malformed."""


class LanguageModelError(AsrError):
    """An ARPA language model is malformed."""


class ModelDirError(AsrError):
    """A model directory is incomplete, inconsistent or unsafe to load."""


class ConfigError(AsrError):
    """A YAML configuration is missing a key or has a bad value."""
