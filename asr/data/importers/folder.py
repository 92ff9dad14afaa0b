"""``asr prepare-data folder``: a folder of audio files whose names carry the label.

A pattern such as ``{label}_{speaker}_{index}.wav`` is matched against each
file's name (or, if the pattern has a ``/``, its path below the folder).
Fields: ``{label}`` (the transcript), ``{speaker}`` (optional) and any other
``{name}``, which is ignored.  In the label, ``_`` separates words (by
default), ``-`` stays inside words (``twenty-one``), and an optional label
map rewrites each word (e.g. ``1 YES``).  See docs/IMPORT.md.
"""

from __future__ import annotations

import argparse
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from asr.data.audio import audio_duration
from asr.data.datadir import DataDir
from asr.data.importers.common import DataDirTables, check_id, speaker_prefixed, write_tables
from asr.data.registry import register_preparer
from asr.errors import AsrError, DataDirError
from asr.fileio import PathLike, read_lines

log = logging.getLogger("asr.data.importers.folder")

DEFAULT_PATTERN = "{label}_{speaker}_{index}.wav"
_FIELD = re.compile(r"\{([A-Za-z_]\w*)\}")
_CASES = ("keep", "upper", "lower")


@dataclass(frozen=True)
class LabelRules:
    """How a file's label becomes a transcript.

    Attributes:
      word_separators: Characters that separate words in the label.
      case: ``keep``, ``upper`` or ``lower`` (applied after the label map).
      label_map: Word in the label -> words of the transcript; every word must be in it if given.
    """

    word_separators: str = "_"
    case: str = "keep"
    label_map: dict[str, str] | None = None


def compile_pattern(pattern: str) -> re.Pattern:
    """Turns ``{label}_{speaker}_{index}.wav`` into a regular expression.

    ``{label}`` takes as much as it can, every other field as little as it
    can (so it cannot contain the literal text that follows it), and no field
    crosses a ``/``.

    Raises:
      DataDirError: if the pattern lacks ``{label}`` or repeats ``{label}``/``{speaker}``.
    """
    fields = _FIELD.findall(pattern)
    for name in ("label", "speaker"):
        if fields.count(name) > 1:
            raise DataDirError(f"pattern '{pattern}': {{{name}}} appears more than once")
    if "label" not in fields:
        raise DataDirError(f"pattern '{pattern}': needs a {{label}} field")
    parts, pos = [], 0
    for m in _FIELD.finditer(pattern):
        parts.append(re.escape(pattern[pos:m.start()]))
        name = m.group(1)
        if name == "label":
            parts.append("(?P<label>[^/]+)")
        elif name == "speaker":
            parts.append("(?P<speaker>[^/]+?)")
        else:
            parts.append("[^/]+?")
        pos = m.end()
    parts.append(re.escape(pattern[pos:]))
    return re.compile("".join(parts))


def read_label_map(path: PathLike) -> dict[str, str]:
    """Reads ``WORD TRANSCRIPT...`` lines (blank lines and ``#`` comments skipped).

    Raises:
      DataDirError: naming ``FILE:LINE`` of a line without a transcript or a repeated word.
    """
    out: dict[str, str] = {}
    for i, line in enumerate(read_lines(path, DataDirError), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) < 2:
            raise DataDirError(f"{path}:{i}: expected 'WORD TRANSCRIPT...', got '{line.strip()}'")
        if parts[0] in out:
            raise DataDirError(f"{path}:{i}: '{parts[0]}' is mapped twice")
        out[parts[0]] = " ".join(parts[1:])
    if not out:
        raise DataDirError(f"{path}: empty label map")
    return out


def label_to_text(label: str, rules: LabelRules, where: str) -> str:
    """Splits a label into words, maps them and applies the case rule.

    Raises:
      DataDirError: if the label has no words or a word is missing from the label map.
    """
    words = re.split(f"[{re.escape(rules.word_separators)}]+", label) if rules.word_separators else [label]
    words = [w for w in words if w]
    if not words:
        raise DataDirError(f"{where}: label '{label}' has no words")
    if rules.label_map is not None:
        missing = [w for w in words if w not in rules.label_map]
        if missing:
            raise DataDirError(f"{where}: word '{missing[0]}' of label '{label}' is not in the label map")
        words = [rules.label_map[w] for w in words]
    text = " ".join(words)
    return text.upper() if rules.case == "upper" else text.lower() if rules.case == "lower" else text


def _candidates(folder: Path, pattern: str) -> list[Path]:
    """Files below ``folder`` with the pattern's suffix (all files if it ends in a field)."""
    suffix = Path(pattern).suffix if not pattern.endswith("}") else ""
    files = [p for p in folder.rglob(f"*{suffix}") if p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix().encode())


def _utterance_id(relative: Path, speaker: str | None, where: str) -> tuple[str, str]:
    """``(utt, speaker)``: the path below the folder without suffix, ``/`` -> ``-``, speaker-prefixed."""
    utt = check_id(relative.with_suffix("").as_posix().replace("/", "-"), "utterance id", where)
    if not speaker:  # unknown speaker: each utterance its own, as Kaldi recommends
        return utt, utt
    return speaker_prefixed(utt, speaker), speaker


def import_folder(
    folder: PathLike, out_dir: PathLike, pattern: str = DEFAULT_PATTERN, rules: LabelRules = LabelRules()
) -> DataDir:
    """Writes the data dir ``out_dir`` from the audio files below ``folder`` (searched recursively).

    Files that do not match the pattern are skipped with one warning that
    counts them.

    Raises:
      DataDirError: if the folder is missing, no file matches, a label is
        bad, or an audio file is unreadable (naming the file).  Nothing is
        written then.
    """
    root = Path(folder).resolve()
    if not root.is_dir():
        raise DataDirError(f"{root}: no such folder")
    regex = compile_pattern(pattern)
    tables, skipped = DataDirTables(), []
    for path in _candidates(root, pattern):
        relative = path.relative_to(root)
        m = regex.fullmatch(relative.as_posix() if "/" in pattern else path.name)
        if m is None:
            skipped.append(relative)
            continue
        where = str(path)
        utt, speaker = _utterance_id(relative, m.groupdict().get("speaker"), where)
        try:
            duration = audio_duration(path)
        except AsrError as e:
            raise DataDirError(str(e)) from None
        tables.add_utterance(where, utt, speaker, label_to_text(m.group("label"), rules, where), duration)
        tables.add_audio(where, utt, str(path))
    if not tables.utt2spk:
        raise DataDirError(f"{root}: no file matches the pattern '{pattern}' ({len(skipped)} files looked at)")
    if skipped:
        log.warning("%s: %d files do not match '%s' and are skipped, e.g. %s",
                    root, len(skipped), pattern, skipped[0])
    return write_tables(out_dir, tables, str(root))


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", metavar="FOLDER", help="folder of audio files (searched recursively)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="the data dir to write")
    p.add_argument("--pattern", default=DEFAULT_PATTERN,
                   help="file name pattern with {label}, optional {speaker} and ignored {fields}; "
                   f"with a '/' it matches the path below FOLDER (default: {DEFAULT_PATTERN})")
    p.add_argument("--word-separators", default="_",
                   help="characters separating words in the label, e.g. '_-' (default: _)")
    p.add_argument("--case", choices=_CASES, default="keep", help="case of the transcript (default: keep)")
    p.add_argument("--label-map", metavar="FILE", default=None,
                   help="lines 'WORD TRANSCRIPT...' rewriting each word of a label (all must be listed)")


@register_preparer("folder", help="import a folder of audio files whose names carry the label",
                   add_arguments=_add_arguments, description=__doc__)
def _run(args: argparse.Namespace) -> dict[str, Path]:
    label_map = read_label_map(args.label_map) if args.label_map else None
    rules = LabelRules(word_separators=args.word_separators, case=args.case, label_map=label_map)
    return {"data": import_folder(args.folder, args.out_dir, args.pattern, rules).path}
