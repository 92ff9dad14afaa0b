"""Warnings about set-ups that train silently badly (issue 15), each checked on its own and through asr train."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from asr.config import load_config
from asr.training.alignment import Alignment
from asr.training.registry import parse_train_config
from asr.training.data import Utterance, split_validation
from asr.training.sanity import DURATIONS_FILE, check_phone_durations, check_schedule, check_validation_split
from helpers_tiny import make_data_dir, train_config

ROOT = Path(__file__).resolve().parent.parent


def yesno_flat_start(**changes) -> object:
    cfg = load_config(ROOT / "conf" / "yesno" / "flat_start.yaml")
    cfg.update(changes)
    return parse_train_config(cfg, "flat_start.yaml")


def test_warmup_longer_than_the_run_is_warned(caplog) -> None:
    cfg = yesno_flat_start(scheduler={"name": "cosine", "warmup_steps": 200})
    caplog.set_level(logging.WARNING, "asr")
    (message,) = [m for m in check_schedule(cfg, 120) if "warmup_steps" in m]
    assert "warmup_steps 200 >= the 120 optimizer steps" in message and message in caplog.text


def test_prior_ramp_that_never_finishes_is_warned() -> None:
    # conf/yesno/flat_start.yaml ramps the prior over 50 steps: fine over 20 epochs of steps, not over 40 steps.
    cfg = yesno_flat_start()
    assert check_schedule(cfg, 100) == []
    (message,) = check_schedule(cfg, 40)
    assert "prior_warmup_steps 50 >= the 40 training steps" in message and "ends at 0.80 of it" in message


def utts_of(speakers: dict[str, int]) -> list[Utterance]:
    return [Utterance(f"{s}-{i}", s, torch.zeros(1, 1), []) for s, n in speakers.items() for i in range(n)]


def test_holding_out_a_large_share_is_warned_with_the_numbers() -> None:
    utts = utts_of({"a": 5, "b": 5, "c": 5})  # at least one whole speaker: a third of the data
    train, valid = split_validation(utts, 0.1, 0)
    message = check_validation_split(len(train), valid, 1, 3)
    assert message is not None and "holds out 5 of 15 utterances (33%), 1 of 3 speakers" in message
    many = utts_of({f"s{i}": 3 for i in range(20)})
    train, valid = split_validation(many, 0.1, 0)
    assert check_validation_split(len(train), valid, 2, 20) is None


def test_a_single_speaker_leaves_nothing_to_validate_on() -> None:
    utts = utts_of({"only": 6})
    train, valid = split_validation(utts, 0.1, 0)
    message = check_validation_split(len(train), valid, 0, 1)
    assert valid == [] and message is not None and "only 1 speaker: nothing is held out" in message


def alignment(lang, phones: list[tuple[str, int]]) -> Alignment:
    """An alignment with the given (phone, frames) segments (pdfs are placeholders)."""
    starts, t = [], 0
    for phone, frames in phones:
        starts.append((t, lang.phones[phone]))
        t += frames
    return Alignment(torch.ones(t, dtype=torch.int64), starts, [], 0.0)


def test_phones_stuck_at_their_minimum_duration_are_warned_and_summarised(tmp_path: Path, caplog, tiny_lang) -> None:
    lang = tiny_lang  # 3-state phones, 1-state silence
    alis = {
        "u1": alignment(lang, [("SIL", 4), ("PA", 3), ("SIL", 2), ("PB", 9)]),
        "u2": alignment(lang, [("SIL", 5), ("PA", 3), ("PB", 3), ("SIL", 1)]),
        "u3": alignment(lang, [("PA", 6), ("PB", 8)]),
    }
    (message,) = check_phone_durations(alis, lang, tmp_path)
    assert "PA (67% of 3)" in message and "PB" not in message and message in caplog.text
    rows = {line.split()[0]: line.split() for line in (tmp_path / DURATIONS_FILE).read_text().splitlines()[1:]}
    assert rows["PA"] == ["PA", "3", "4.00", "3", "3", "0.667"]
    assert rows["SIL"] == ["SIL", "4", "3.00", "1", "1", "0.250"]
    assert check_phone_durations({"u3": alis["u3"]}, lang, tmp_path) == []


def test_training_logs_the_warnings_and_writes_the_duration_summary(tmp_path: Path, tiny_lang) -> None:
    from asr.training.run import train

    lang = tiny_lang
    data = make_data_dir(tmp_path / "data", num_speakers=2, utts_per_speaker=2)
    cfg = train_config(tmp_path / "flat.yaml", epochs=1, valid_fraction=0.1, prior_scale=1.0,
                       prior_warmup_steps=1000, scheduler={"name": "constant", "warmup_steps": 1000},
                       align_after=True)
    train(cfg, data, lang.path, tmp_path / "exp")
    log = (tmp_path / "exp" / "train.log").read_text()
    assert "warmup_steps 1000 >= the" in log and "prior_warmup_steps 1000 >= the" in log
    assert "validation holds out 2 of 4 utterances (50%), 1 of 2 speakers" in log
    assert (tmp_path / "exp" / "ali" / DURATIONS_FILE).read_text().startswith("# phone count")
