"""Typed configs (issue 16): every shipped YAML validates, typos fail in one line, docs/CONFIG.md is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from asr.config import load_config, load_typed_config, packaged_config, parse_config
from asr.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = packaged_config("")


def validate_file(path: Path) -> object:
    """Checks one YAML against the definition of its kind (chosen by what it holds)."""
    from asr.decoding.search import decode_config
    from asr.features.extract import validate_feature_config
    from asr.lang.lang_dir import LangConfig
    from asr.training.config import AlignConfig
    from asr.training.registry import parse_train_config
    from asr.tree.config import load_tree_config, tree_config

    cfg = load_config(path)
    where = str(path)
    if "criterion" in cfg:
        return parse_train_config(cfg, where)
    if path.name.startswith("decode"):
        return decode_config(cfg, where)
    if path.name in ("fbank.yaml", "mfcc.yaml"):
        return validate_feature_config(cfg, where)
    if path.name.startswith("lang"):
        return parse_config(LangConfig, cfg, where)
    if path.name == "endpoint.yaml":
        from asr.decoding.endpoint import EndpointConfig

        return parse_config(EndpointConfig, cfg, where)
    if path.name == "align.yaml":
        return parse_config(AlignConfig, cfg, where)
    if path.name.startswith("tree"):
        # a recipe's tree config overrides some of the packaged defaults, as asr build-tree --config does
        return load_tree_config(path) if path.name != "tree.yaml" else tree_config(cfg, where)
    if path.name == "ivector.yaml":
        from asr.adapt.config import IvectorConfig

        return parse_config(IvectorConfig, cfg, where)
    raise AssertionError(f"{path}: no config kind known for this file")


def repo_yaml_files() -> list[Path]:
    return (sorted(Path(str(SHIPPED)).glob("*.yaml")) + sorted((ROOT / "conf").glob("*/*.yaml"))
            + sorted((ROOT / "recipes").glob("*/conf/*.yaml")))


@pytest.mark.parametrize("path", repo_yaml_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_and_default_config_validates(path: Path) -> None:
    assert validate_file(path) is not None


def test_committed_config_reference_is_generated_text() -> None:
    from asr.config_doc import render

    committed = (ROOT / "docs" / "CONFIG.md").read_text(encoding="utf-8")
    assert committed == render(), "docs/CONFIG.md is stale: run python -m asr.config_doc > docs/CONFIG.md"


def test_config_reference_lists_every_key_of_every_definition() -> None:
    from asr.config_doc import render
    from asr.models import MODELS
    from asr.training.registry import CRITERIA

    text = render()
    for name, criterion in CRITERIA.items():
        assert f"`criterion: {name}`" in text
        for key in criterion.options.__dataclass_fields__:
            assert f"| `{key}` |" in text
    for name, entry in MODELS.items():
        assert f"`type: {name}`" in text
        for key in entry.config_type.__dataclass_fields__:
            assert f"`model.{key}`" in text


def test_misspelled_sequence_key_is_a_one_line_error_naming_file_and_key(tmp_path: Path) -> None:
    from asr.training.registry import parse_train_config

    cfg = load_config(ROOT / "conf" / "yesno" / "lfmmi.yaml")
    cfg["den_ordr"] = cfg.pop("den_order")
    with pytest.raises(ConfigError) as err:
        parse_train_config(cfg, "conf/x.yaml")
    message = str(err.value)
    assert message == "conf/x.yaml: unknown key 'den_ordr' for criterion 'lfmmi' (did you mean 'den_order'?)"
    assert "\n" not in message


def test_key_of_another_criterion_is_ignored_with_a_warning(caplog) -> None:
    from asr.training.registry import parse_train_config

    cfg = dict(load_config(ROOT / "conf" / "yesno" / "ce.yaml"), prior_scale=0.5)
    parsed = parse_train_config(cfg, "ce.yaml")
    assert not hasattr(parsed.criterion_options, "prior_scale")
    assert "key 'prior_scale' is read only by criterion flat-start" in caplog.text


@pytest.mark.parametrize("section,key,value,expected", [
    ("top", "epochs", "ten", "'epochs' must be int, got 'ten'"),
    ("top", "align_after", "yes", "'align_after' must be bool, got 'yes'"),
    ("spec_augment", "max_freq_widht", 3, "unknown key 'spec_augment.max_freq_widht' (did you mean"),
    ("spec_augment", "max_time_width", -1, "'spec_augment.max_time_width' must be a non-negative integer"),
    ("model", "hiden", 8, "unknown key 'model.hiden' (did you mean 'model.hidden'?)"),
    ("optimizer", "name", "adam", "'optimizer.name' must be 'adamw' | 'sgd', got 'adam'"),
])
def test_bad_training_values_name_file_and_key(tmp_path: Path, section, key, value, expected) -> None:
    from asr.training.config import TrainConfig

    cfg = load_config(ROOT / "conf" / "an4" / "blstm.yaml")
    (cfg if section == "top" else cfg[section])[key] = value
    path = tmp_path / "train.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=rf"^{path}: .*") as err:
        from asr.training.registry import parse_train_config

        parse_train_config(load_config(path), str(path))
    assert expected in str(err.value)
    assert TrainConfig  # the definition the message comes from


def test_recipe_configs_load_to_the_values_the_code_used_before() -> None:
    """Defaults moved into the dataclasses, but the recipes get the values they always got."""
    from asr.training.registry import parse_train_config

    flat = parse_train_config(load_config(ROOT / "conf" / "an4" / "flat_start.yaml"))
    assert (flat.output_beam, flat.criterion_options.prior_decay, flat.criterion_options.prior_warmup_steps) == (
        20.0, 0.9, 150)
    lf = parse_train_config(load_config(ROOT / "conf" / "yesno" / "lfmmi.yaml"))
    assert lf.criterion_options.den_order == 2 and lf.criterion_options.den_search_beam == 20.0
    assert lf.criterion_options.num_phone_lm is True and lf.use_priors is True
    ce = parse_train_config(load_config(ROOT / "conf" / "yesno" / "ce.yaml"))
    assert ce.spec_augment is None and ce.valid_seed == 0 and ce.threads is None


def test_decode_yaml_beams_are_the_search_config_defaults() -> None:
    from asr.decoding.search import SearchConfig, decode_config

    shipped = load_typed_config("decode.yaml", type(decode_config({})))
    assert shipped.search == SearchConfig()
    assert (SearchConfig().search_beam, SearchConfig().output_beam, SearchConfig().max_active_states,
            SearchConfig().max_frames) == (15.0, 7.0, 3000, 10000)
    assert decode_config({}).use_priors is True  # the same default on every decoding path


def test_align_yaml_and_training_share_the_alignment_beam() -> None:
    from asr.training.config import ALIGNMENT_BEAM, AlignConfig, TrainConfig

    assert load_typed_config("align.yaml", AlignConfig) == AlignConfig()
    assert TrainConfig.__dataclass_fields__["output_beam"].default == ALIGNMENT_BEAM == AlignConfig().output_beam


def test_feature_config_type_errors_name_the_file(tmp_path: Path) -> None:
    from asr.features.extract import validate_feature_config

    cfg = load_config("fbank.yaml")
    with pytest.raises(ConfigError, match=r"^fbank.yaml: 'snip_edges' must be bool, got 'yes'$"):
        validate_feature_config(dict(cfg, snip_edges="yes"), "fbank.yaml")
    with pytest.raises(ConfigError, match=r"^fbank.yaml: unknown key 'num_mel_bin' for type 'fbank'$"):
        validate_feature_config(dict(cfg, num_mel_bin=3), "fbank.yaml")


def test_lang_config_typo_fails(tmp_path: Path) -> None:
    from asr.lang.lang_dir import LangConfig, prepare_lang

    cfg = dict(load_config("lang.yaml"), sil_porb=0.3)
    with pytest.raises(ConfigError, match="unknown key 'sil_porb' \\(did you mean 'sil_prob'\\?\\)"):
        parse_config(LangConfig, cfg, "lang.yaml")
    with pytest.raises(ConfigError, match="unknown key 'sil_porb'"):
        prepare_lang(tmp_path / "lexicon.txt", tmp_path / "lang", cfg)


def test_train_help_lists_every_registered_criterion() -> None:
    from asr.training.registry import CRITERIA

    out = subprocess.run([sys.executable, "-m", "asr.cli", "train", "--help"], capture_output=True, text=True,
                         check=True).stdout
    flat = " ".join(out.split())
    for name in CRITERIA.names():
        assert f"'{name}'" in flat


def test_criterion_registry_declares_needs() -> None:
    from asr.training.registry import CRITERIA

    assert CRITERIA.names() == ["flat-start", "ce", "lfmmi", "mmi", "smbr"]
    lf = CRITERIA.get("lfmmi", "t")
    assert (lf.alignments, lf.writes_priors, lf.decode_acoustic_scale, lf.decode_use_priors) == (
        "optional", False, 1.0, False)
    assert CRITERIA.get("ce", "t").alignments == "required" and CRITERIA.get("ce", "t").writes_priors
    with pytest.raises(ConfigError, match="unknown criterion 'xent', expected one of flat-start, ce, lfmmi, mmi, smbr"):
        CRITERIA.get("xent", "t.yaml")


def test_model_registry_builds_every_type() -> None:
    from asr.models import MODELS, build_model

    for name in MODELS.names():
        model = build_model({"type": name, "hidden": 8, "dropout": 0.0}, 5, 4)
        assert model.config["type"] == name and model.num_pdfs == 4
    with pytest.raises(ConfigError, match="unknown model type 'gru'"):
        build_model({"type": "gru"}, 5, 4)


def test_cli_overrides_threads_seed_valid_seed_are_typed_keys() -> None:
    from asr.training.registry import parse_train_config

    cfg = load_config(ROOT / "conf" / "yesno" / "ce.yaml")
    parsed = parse_train_config(dict(cfg, threads=2, seed=7, valid_seed=3))
    assert (parsed.threads, parsed.seed, parsed.valid_seed) == (2, 7, 3)
    with pytest.raises(ConfigError, match="'threads' must be a positive integer, got 0"):
        parse_train_config(dict(cfg, threads=0), "ce.yaml")
