"""Config lookup: a user's file wins, a bare name falls back to the defaults shipped in the package."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from asr.cli import build_parser
from asr.config import load_config, packaged_config, resolve_config
from asr.errors import ConfigError

PACKAGE_CONF = Path(__file__).resolve().parents[1] / "asr" / "conf"


def _config_defaults() -> dict[str, str]:
    """Subcommand -> default of its ``--config`` option, for those that have one."""
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    defaults = {}
    for name, p in sub.choices.items():
        for action in p._actions:
            if "--config" in action.option_strings and action.default is not None:
                defaults[name] = action.default
    return defaults


def test_every_command_default_config_is_shipped_in_the_package(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # nothing in the working directory to find
    defaults = _config_defaults()
    assert {"compute-feats": "fbank.yaml", "prepare-lang": "lang.yaml", "align": "align.yaml"}.items() <= defaults.items()
    # decode, transcribe and serve default to the model dir's decode.yaml, else the packaged one
    from asr.model_dir import DECODE_CONFIG_NAME, default_decode_config

    assert default_decode_config(tmp_path) == DECODE_CONFIG_NAME
    assert packaged_config(DECODE_CONFIG_NAME).is_file()
    for name in defaults.values():
        assert packaged_config(name).is_file(), name
        assert load_config(name), name


def test_shipped_configs_are_package_data_next_to_the_code() -> None:
    shipped = sorted(p.name for p in PACKAGE_CONF.glob("*.yaml"))
    for name in ("fbank.yaml", "mfcc.yaml", "lang.yaml", "lang_chain.yaml", "lang_chain_cd.yaml",
                 "lang_chain_pos.yaml", "decode.yaml", "align.yaml"):
        assert name in shipped
        assert Path(str(packaged_config(name))).resolve() == (PACKAGE_CONF / name).resolve()
    assert load_config("lang_chain_pos.yaml")["position_dependent"] is True


def test_a_file_in_the_working_directory_wins(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fbank.yaml").write_text("type: fbank\nsample_rate: 8000\n", encoding="utf-8")
    assert resolve_config("fbank.yaml") == Path("fbank.yaml")
    assert load_config("fbank.yaml")["sample_rate"] == 8000
    # and an explicit path anywhere wins too
    own = tmp_path / "sub" / "decode.yaml"
    own.parent.mkdir()
    own.write_text("search: {acoustic_scale: 1.0}\n", encoding="utf-8")
    assert load_config(own) == {"search": {"acoustic_scale": 1.0}}


def test_only_bare_names_fall_back_to_the_package(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    # a lang dir without its lang.yaml must not silently read the default lang config
    with pytest.raises(ConfigError, match=r"^data/lang/lang.yaml: no such config file$"):
        load_config("data/lang/lang.yaml")
    with pytest.raises(ConfigError, match=r"^nope.yaml: no such config file \(nor one of the defaults in .*conf\)$"):
        load_config("nope.yaml")
