"""Generates docs/CONFIG.md from the typed config definitions.

    python -m asr.config_doc > docs/CONFIG.md

Every key of every config file comes from a dataclass field (its type, its
default and the one-line doc given with :func:`asr.config.option`), the
model types and criteria from their registries, and the feature keys passed
to torchaudio from torchaudio's own signatures.  tests/test_typed_config.py
checks that the committed file equals this output.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from asr.config import DOC, config_fields, type_name

HEADER = """# Config reference

Generated from the typed config definitions by `python -m asr.config_doc > docs/CONFIG.md`;
do not edit by hand (a test checks that this file is current).

Every YAML file is checked against its definition: an unknown or misspelled key,
or a value of the wrong type, stops the command with one line naming the file and
the key.  A key left out takes the default shown here; `required` keys have none.
"""

#: What the torchaudio feature options mean (the rest: see torchaudio.compliance.kaldi).
TORCHAUDIO_DOCS = {
    "blackman_coeff": "constant of the generalized Blackman window",
    "cepstral_lifter": "mfcc: liftering coefficient (0: none)",
    "channel": "channel of multichannel audio (-1: the first; asr downmixes before)",
    "dither": "dithering constant (0 keeps features reproducible; Kaldi's default is 1)",
    "energy_floor": "floor on the energy (Kaldi's default 0)",
    "frame_length": "window length in ms",
    "frame_shift": "frame shift in ms",
    "high_freq": "high cutoff of the mel bins in Hz (<= 0: offset from the Nyquist frequency)",
    "htk_compat": "HTK-compatible output layout",
    "low_freq": "low cutoff of the mel bins in Hz",
    "min_duration": "audio shorter than this (seconds) gives no frames",
    "num_ceps": "mfcc: cepstra kept",
    "num_mel_bins": "mel filterbank channels",
    "preemphasis_coefficient": "pre-emphasis coefficient",
    "raw_energy": "energy before pre-emphasis and windowing",
    "remove_dc_offset": "subtract each frame's mean",
    "round_to_power_of_two": "FFT size rounded up to a power of two",
    "snip_edges": "only frames that fit entirely in the audio (Kaldi's default)",
    "subtract_mean": "subtract the mean over the utterance (asr does CMVN instead)",
    "use_energy": "add (fbank) or use as C0 (mfcc) the log energy",
    "use_log_fbank": "fbank: log of the mel energies",
    "use_power": "fbank: power rather than magnitude spectrum",
    "vtln_high": "VTLN upper cutoff in Hz (negative: offset from the Nyquist frequency)",
    "vtln_low": "VTLN lower cutoff in Hz",
    "vtln_warp": "VTLN warp factor (1: none)",
    "window_type": "window: povey, hamming, hanning, rectangular or blackman",
}


def format_default(f: dataclasses.Field, annotation: Any) -> str:
    """The default of a field as YAML would write it, or ``required``."""
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    elif f.default is dataclasses.MISSING:
        return "required"
    else:
        value = f.default
    if dataclasses.is_dataclass(value):
        return "(section below)"
    return f"`{yaml_value(value)}`"


def yaml_value(value: Any) -> str:
    """A short YAML flow rendering: null, true, 0.1, [0.9, 1.1], phone."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    return str(value)


def summary_line(cls: type) -> str:
    """The first docstring line of a config class, in markdown quoting."""
    return (cls.__doc__ or "").splitlines()[0].replace("``", "`")


def field_table(cls: type, prefix: str = "") -> list[str]:
    """A markdown table of a config dataclass's keys."""
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for f, annotation in config_fields(cls):
        if not f.init:
            continue
        kind = type_name(annotation).replace("|", "\\|")
        meaning = f.metadata.get(DOC, "").replace("|", "\\|")
        rows.append(f"| `{prefix}{f.name}` | {kind} | {format_default(f, annotation)} | {meaning} |")
    return rows


def nested_sections(cls: type) -> list[type]:
    """The dataclasses of the sections nested in ``cls`` (``optimizer``, ``search``, ...)."""
    out = []
    for _, annotation in config_fields(cls):
        for arg in (annotation, *typing.get_args(annotation)):
            if dataclasses.is_dataclass(arg) and arg not in out:
                out.append(arg)
    return out


def section(title: str, intro: str, cls: type, prefix: str = "") -> list[str]:
    """A heading, a line of text and the tables of ``cls`` and of its nested sections."""
    lines = [f"## {title}", "", intro, "", *field_table(cls, prefix), ""]
    for f, annotation in config_fields(cls):
        for nested in nested_sections_of(annotation):
            lines += [f"### `{f.name}`: {summary_line(nested)}", "", *field_table(nested, f"{f.name}."), ""]
    return lines


def nested_sections_of(annotation: Any) -> list[type]:
    return [a for a in (annotation, *typing.get_args(annotation)) if dataclasses.is_dataclass(a)]


def features_section() -> list[str]:
    from asr.features.extract import FeatureConfig, torchaudio_options

    lines = section("Features (`asr compute-feats --config`, asr/conf/fbank.yaml, mfcc.yaml)",
                    "Our own keys; every other key is an argument of `torchaudio.compliance.kaldi.<type>`, listed "
                    "below with torchaudio's default and checked against its type.", FeatureConfig)
    for kind in ("fbank", "mfcc"):
        lines += [f"### `type: {kind}`: torchaudio options", "", "| key | type | default | meaning |",
                  "| --- | --- | --- | --- |"]
        for name, param in torchaudio_options(kind).items():
            d = param.default
            lines.append(f"| `{name}` | {type(d).__name__} | `{yaml_value(d)}` | {TORCHAUDIO_DOCS.get(name, '')} |")
        lines.append("")
    return lines


def models_section() -> list[str]:
    from asr.models import MODELS, ModelConfig

    lines = ["## Model (`model:` section of a training config)", "",
             "Types from the model registry (`asr/models/__init__.py`). Keys of every type:", "",
             *field_table(ModelConfig, "model."), ""]
    common = {f.name for f in dataclasses.fields(ModelConfig)}
    for name, entry in MODELS.items():
        own = [r for r in field_table(entry.config_type, "model.")[2:] if r.split("`")[1][len("model."):] not in common]
        lines += [f"### `type: {name}`: {entry.summary}", "", "| key | type | default | meaning |",
                  "| --- | --- | --- | --- |", *own, ""]
    return lines


def criteria_section() -> list[str]:
    from asr.training.registry import CRITERIA

    lines = ["## Training criteria", "",
             "From the criterion registry (`asr/training/registry.py`): what each needs, and its own keys "
             "(top-level keys of the training config, beside the common ones above). A key of another criterion "
             "is ignored with a warning; a key of none is an error.", "",
             "| criterion | alignments | priors in the model dir | decode at acoustic scale | summary |",
             "| --- | --- | --- | --- | --- |"]
    for name, c in CRITERIA.items():
        scale = "tuned (hybrid; default 0.1)" if c.decode_acoustic_scale is None else f"{c.decode_acoustic_scale:g}"
        priors = "yes (with `use_priors`)" if c.writes_priors else "no"
        lines.append(f"| `{name}` | {c.alignments} | {priors} | {scale} | {c.summary} |")
    lines.append("")
    for name, c in CRITERIA.items():
        lines += [f"### `criterion: {name}`", "", summary_line(c.options), "", *field_table(c.options), ""]
    return lines


def tree_section() -> list[str]:
    from asr.config import load_config
    from asr.tree.config import DEFAULT_CONFIG, TreeConfig

    defaults = load_config(DEFAULT_CONFIG)
    lines = ["## Decision tree (`asr build-tree --config`, asr/conf/tree.yaml)", "",
             "Defaults from the packaged asr/conf/tree.yaml, whose comments explain each key.", "",
             "| key | type | default |", "| --- | --- | --- |"]
    for f, annotation in config_fields(TreeConfig):
        kind = type_name(annotation).replace("|", "\\|")
        lines.append(f"| `{f.name}` | {kind} | `{yaml_value(defaults.get(f.name))}` |")
    return lines + [""]


def render() -> str:
    """The text of docs/CONFIG.md."""
    from asr.decoding.endpoint import EndpointConfig
    from asr.decoding.search import DecodeConfig
    from asr.lang.lang_dir import LangConfig
    from asr.training.config import AlignConfig, TrainConfig

    lines = [HEADER]
    lines += features_section()
    lines += section("Lang (`asr prepare-lang --config`, asr/conf/lang*.yaml)",
                     "Phone sets, optional silence, the HMM topologies and the unit expansions.", LangConfig)
    lines += section("Training (`asr train --config`, conf/<corpus>/*.yaml)",
                     "Keys every criterion reads. `asr train --seed`, `--threads`, `--epochs` and `--device` "
                     "override `seed`, `threads`, `epochs` and `device`.", TrainConfig)
    lines += criteria_section()
    lines += models_section()
    lines += section("Decoding (`asr decode` / `asr transcribe --config`, asr/conf/decode.yaml)",
                     "Search beams, priors and the LM-weight sweep.", DecodeConfig)
    lines += section("Endpointing (`asr transcribe --stream`, `Recognizer.stream`, asr/conf/endpoint.yaml)",
                     "Kaldi's online2 endpoint rules (asr/decoding/endpoint.py); every rule lists all four keys.",
                     EndpointConfig)
    lines += section("Alignment (`asr align --config`, asr/conf/align.yaml)",
                     "Forced alignment; a training config's `align_after` uses its own `max_frames` and "
                     "`output_beam`.", AlignConfig)
    from asr.adapt.config import IvectorConfig

    lines += section("i-vectors (`asr train-ivector --config`, asr/conf/ivector.yaml)",
                     "Feature transform, UBM, extractor and online extraction (docs/IVECTORS.md); the extractor "
                     "dir keeps the config it was trained with.", IvectorConfig)
    lines += tree_section()
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    print(render(), end="")
