"""Tests of the generic importers (table, folder, lhotse) and the preparer registry."""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import build_parser, main
from asr.data.corpora import prepare_an4
from asr.data.datadir import DataDir
from asr.data.importers.common import OptionalDependencyError
from asr.data.importers.folder import LabelRules, compile_pattern, import_folder
from asr.data.importers.lhotse_manifests import export_lhotse, import_lhotse
from asr.data.importers.table import TableColumns, import_table
from asr.data.registry import preparers, register_preparer
from asr.errors import DataDirError

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO.parent / "shared" / "corpora"
RATE = 8000
DATA_FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "utt2dur", "segments")


def _wav(path: Path, seconds: float, seed: int = 0) -> Path:
    """Writes a short 16-bit noise wav (content is irrelevant, only the header is read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = np.random.default_rng(seed).uniform(-0.1, 0.1, int(seconds * RATE)).astype(np.float32)
    sf.write(path, samples, RATE, subtype="PCM_16")
    return path


def _files(d: Path) -> dict[str, bytes]:
    return {name: (d / name).read_bytes() for name in DATA_FILES if (d / name).is_file()}


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


# --- registry --------------------------------------------------------------------------


def test_registry_drives_the_cli() -> None:
    names = list(preparers())
    assert names[:2] == ["yesno", "an4"]
    assert {"table", "folder", "lhotse", "to-lhotse", "split"} <= set(names)
    parser = build_parser()
    sub = next(a for a in parser._subparsers._actions if isinstance(a, argparse._SubParsersAction))
    prepare = sub.choices["prepare-data"]
    corpora = next(a for a in prepare._subparsers._actions if isinstance(a, argparse._SubParsersAction))
    assert list(corpora.choices) == names + ["validate"]
    args = parser.parse_args(["prepare-data", "table", "t.csv", "out", "--speaker-column", "who"])
    assert args.speaker_column == "who" and args.preparer_run is preparers()["table"].run


def test_registering_a_name_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        register_preparer("table", help="x", add_arguments=lambda p: None)(lambda args: {})


# --- table -----------------------------------------------------------------------------


def test_table_with_speakers_and_relative_paths(tmp_path: Path) -> None:
    _wav(tmp_path / "corpus" / "audio" / "b1.wav", 0.5)
    _wav(tmp_path / "corpus" / "audio" / "a1.wav", 0.25)
    _wav(tmp_path / "corpus" / "audio" / "a2.wav", 0.75)
    table = tmp_path / "corpus" / "list.tsv"
    table.write_text("path\ttext\tspeaker\naudio/b1.wav\tturn  on\tbob\n"
                     "audio/a2.wav\tgo\tann\n\naudio/a1.wav\t stop \tann\n")
    dd = import_table(table, tmp_path / "data")
    assert dd.utterances == ["ann-a1", "ann-a2", "bob-b1"]
    assert dd.text == {"ann-a1": "stop", "ann-a2": "go", "bob-b1": "turn on"}
    assert dd.spk2utt == {"ann": ["ann-a1", "ann-a2"], "bob": ["bob-b1"]}
    assert dd.wav_scp["bob-b1"] == str((tmp_path / "corpus" / "audio" / "b1.wav").resolve())
    assert dd.utt2dur == {"ann-a1": 0.25, "ann-a2": 0.75, "bob-b1": 0.5}
    assert dd.segments is None and not (tmp_path / "data" / "segments").exists()
    assert _lines(tmp_path / "data" / "utt2spk") == ["ann-a1 ann", "ann-a2 ann", "bob-b1 bob"]


def test_table_without_speakers_gives_one_speaker_per_utterance(tmp_path: Path) -> None:
    _wav(tmp_path / "x.wav", 0.5)
    _wav(tmp_path / "y.wav", 0.5)
    table = tmp_path / "t.csv"
    table.write_text('path,text\nx.wav,"hello, world"\ny.wav,bye\n')
    dd = import_table(table, tmp_path / "data")
    assert dd.utt2spk == {"x": "x", "y": "y"}
    assert dd.text["x"] == "hello, world"


def test_table_segments(tmp_path: Path) -> None:
    _wav(tmp_path / "talk.wav", 2.0)
    table = tmp_path / "t.tsv"
    table.write_text("path\ttext\tspeaker\tstart\tend\ntalk.wav\tone\tsp\t0\t0.5\n"
                     "talk.wav\ttwo\tsp\t0.5\t1.25\ntalk.wav\tthree\tsp\t1.25\t\n")
    dd = import_table(table, tmp_path / "data")
    assert _lines(tmp_path / "data" / "segments") == [
        "sp-talk-0000000-0000050 talk 0.000 0.500",
        "sp-talk-0000050-0000125 talk 0.500 1.250",
        "sp-talk-0000125-0000200 talk 1.250 -1",
    ]
    assert dd.wav_scp == {"talk": str(tmp_path.resolve() / "talk.wav")}
    assert dd.utt2dur == {"sp-talk-0000000-0000050": 0.5, "sp-talk-0000050-0000125": 0.75,
                          "sp-talk-0000125-0000200": 0.75}


def test_table_cli_custom_columns_and_delimiter(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _wav(tmp_path / "w" / "1.wav", 0.5)
    table = tmp_path / "meta.txt"
    table.write_text("id;file;sentence;who\nu1;w/1.wav;YES NO;s7\n")
    rc = main(["prepare-data", "table", str(table), str(tmp_path / "d"), "--delimiter", ";",
               "--audio-column", "file", "--text-column", "sentence", "--speaker-column", "who",
               "--utt-column", "id"])
    assert rc == 0 and f"data: {tmp_path / 'd'}" in capsys.readouterr().out
    assert _lines(tmp_path / "d" / "text") == ["s7-u1 YES NO"]
    assert _lines(tmp_path / "d" / "spk2utt") == ["s7 s7-u1"]


@pytest.mark.parametrize(
    "content, message",
    [
        (None, r"t\.tsv: no such table"),
        ("", r"t\.tsv: empty table \(no header row\)"),
        ("path\ttext\n", r"t\.tsv: empty table \(a header but no rows\)"),
        ("file\ttext\na.wav\tx\n", r"t\.tsv:1: no column 'path' for the audio \(columns: file, text\)"),
        ("path\ttext\na.wav\tx\na.wav\n", r"t\.tsv:3: expected 2 fields \(path, text\), got 1"),
        ("path\ttext\na.wav\tx\nnope.wav\ty\n", r"t\.tsv:3: .*nope\.wav: no such audio file"),
        ("path\ttext\na.wav\tx\na.wav\ty\n", r"t\.tsv:3: duplicate utterance id 'a' \(first from .*t\.tsv:2\)"),
        ("path\ttext\na.wav\t\n", r"t\.tsv:2: empty transcript for 'a'"),
        ("path\ttext\tspeaker\na.wav\tx\tbob smith\n", r"t\.tsv:2: speaker id 'bob smith' contains whitespace"),
        ("path\ttext\tend\na.wav\tx\tlate\n", r"t\.tsv:2: end 'late' is not a number"),
        ("path\ttext\tend\na.wav\tx\t9\n", r"t\.tsv:2: end 9.0 is after the end of the audio"),
        ("path\ttext\tpath\na.wav\tx\ty\n", r"t\.tsv:1: column 'path' appears twice"),
    ],
)
def test_table_errors_write_nothing(tmp_path: Path, content: str | None, message: str) -> None:
    _wav(tmp_path / "a.wav", 0.5)
    if content is not None:
        (tmp_path / "t.tsv").write_text(content)
    with pytest.raises(DataDirError, match=message):
        import_table(tmp_path / "t.tsv", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert {p.name for p in tmp_path.iterdir()} == {"a.wav"} | ({"t.tsv"} if content is not None else set())


def test_table_explicit_unknown_column_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _wav(tmp_path / "a.wav", 0.5)
    (tmp_path / "t.csv").write_text("path,text\na.wav,x\n")
    assert main(["prepare-data", "table", str(tmp_path / "t.csv"), str(tmp_path / "o"),
                 "--speaker-column", "spk"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no column 'spk' for the speaker (columns: path, text)" in err


def test_table_invalid_dir_leaves_the_old_one(tmp_path: Path) -> None:
    """Speakers that do not sort with their utterances fail validation before out_dir is touched."""
    _wav(tmp_path / "a.wav", 0.5)
    _wav(tmp_path / "b.wav", 0.5)
    (tmp_path / "t.csv").write_text("utt,speaker,path,text\na-b-x,a-b,a.wav,x\na-c,a,b.wav,y\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "wav.scp").write_text("old /old.wav\n")
    with pytest.raises(DataDirError, match=r"out/utt2spk:2: speaker 'a' .* sorts before speaker 'a-b'"):
        import_table(tmp_path / "t.csv", out, TableColumns())
    assert [p.name for p in out.iterdir()] == ["wav.scp"] and (out / "wav.scp").read_text() == "old /old.wav\n"
    assert not list(tmp_path.glob(".out.*"))


def _load_an4_to_table():
    path = REPO / "recipes" / "an4" / "local" / "an4_to_table.py"
    spec = importlib.util.spec_from_file_location("an4_to_table", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an4_reimport_through_table_is_byte_identical(tmp_path: Path) -> None:
    corpus = CORPORA / "an4"
    if not corpus.is_dir():
        pytest.skip(f"{corpus} is absent")
    reference = prepare_an4(corpus, tmp_path / "ref")
    tables = _load_an4_to_table().write_an4_tables(corpus, tmp_path / "tables")
    for split in ("train", "test"):
        assert main(["prepare-data", "table", str(tables[split]), str(tmp_path / "imp" / split)]) == 0
        expected, got = _files(reference[split]), _files(tmp_path / "imp" / split)
        assert set(got) == {"wav.scp", "text", "utt2spk", "spk2utt", "utt2dur"} == set(expected)
        for name in expected:
            assert got[name] == expected[name], f"{split}/{name} differs"
    assert len(_lines(tmp_path / "imp" / "train" / "text")) == 948


# --- folder ----------------------------------------------------------------------------


def test_compile_pattern_label_takes_the_rest() -> None:
    m = compile_pattern("{label}_{speaker}_{index}.wav").fullmatch("turn_on_spk1_3.wav")
    assert m is not None and m.group("label") == "turn_on" and m.group("speaker") == "spk1"
    assert compile_pattern("{speaker}/{label}.wav").fullmatch("s1/yes.wav").group("speaker") == "s1"
    with pytest.raises(DataDirError, match=r"needs a \{label\} field"):
        compile_pattern("{speaker}_{index}.wav")
    with pytest.raises(DataDirError, match=r"\{speaker\} appears more than once"):
        compile_pattern("{speaker}_{label}_{speaker}.wav")


def test_folder_import(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "clips"
    _wav(root / "turn_on_spk1_1.wav", 0.5)
    _wav(root / "nested" / "twenty-one_spk2_1.wav", 0.25)
    _wav(root / "noise.wav", 0.5)
    (root / "notes.txt").write_text("not audio, not looked at\n")
    with caplog.at_level(logging.WARNING):
        dd = import_folder(root, tmp_path / "data", rules=LabelRules(case="upper"))
    assert dd.text == {"spk1-turn_on_spk1_1": "TURN ON", "spk2-nested-twenty-one_spk2_1": "TWENTY-ONE"}
    assert dd.spk2utt == {"spk1": ["spk1-turn_on_spk1_1"], "spk2": ["spk2-nested-twenty-one_spk2_1"]}
    assert dd.wav_scp["spk1-turn_on_spk1_1"] == str(root.resolve() / "turn_on_spk1_1.wav")
    assert "1 files do not match" in caplog.text and "noise.wav" in caplog.text
    split = import_folder(root, tmp_path / "d2", rules=LabelRules(word_separators="_-"))
    assert split.text["spk2-nested-twenty-one_spk2_1"] == "twenty one"


def test_folder_yesno_with_label_map(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    waves = CORPORA / "yesno"
    if not waves.is_dir():
        pytest.skip(f"{waves} is absent")
    for name in ("0_0_0_1_0_1_1_0.wav", "1_1_1_0_0_1_0_1.wav"):
        shutil.copy(waves / name, tmp_path / name)
    (tmp_path / "map.txt").write_text("# yesno labels\n0 NO\n1 YES\n")
    assert main(["prepare-data", "folder", str(tmp_path), str(tmp_path / "data"),
                 "--pattern", "{label}.wav", "--label-map", str(tmp_path / "map.txt")]) == 0
    assert _lines(tmp_path / "data" / "text") == ["0_0_0_1_0_1_1_0 NO NO NO YES NO YES YES NO",
                                                  "1_1_1_0_0_1_0_1 YES YES YES NO NO YES NO YES"]
    assert _lines(tmp_path / "data" / "utt2spk") == ["0_0_0_1_0_1_1_0 0_0_0_1_0_1_1_0",
                                                     "1_1_1_0_0_1_0_1 1_1_1_0_0_1_0_1"]


def test_folder_errors(tmp_path: Path) -> None:
    _wav(tmp_path / "clips" / "hello.wav", 0.5)
    with pytest.raises(DataDirError, match=r"no file matches the pattern .* \(1 files looked at\)"):
        import_folder(tmp_path / "clips", tmp_path / "out")
    with pytest.raises(DataDirError, match=r"hello\.wav: word 'hello' of label 'hello' is not in the label map"):
        import_folder(tmp_path / "clips", tmp_path / "out", "{label}.wav", LabelRules(label_map={"bye": "BYE"}))
    with pytest.raises(DataDirError, match="nope: no such folder"):
        import_folder(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "clips" / "broken_s1_1.wav").write_bytes(b"not a wav file")
    with pytest.raises(DataDirError, match=r"broken_s1_1\.wav: not a readable audio file"):
        import_folder(tmp_path / "clips", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- lhotse ----------------------------------------------------------------------------


def _small_table_dir(tmp_path: Path, segmented: bool) -> Path:
    _wav(tmp_path / "audio" / "r1.wav", 1.5, seed=1)
    _wav(tmp_path / "audio" / "r2.wav", 0.75, seed=2)
    if segmented:
        rows = "path,text,speaker,start,end\naudio/r1.wav,one,s1,0,0.5\naudio/r1.wav,two,s1,0.5,1.5\n" \
               "audio/r2.wav,three,s2,0.125,0.75\n"
    else:
        rows = "path,text,speaker\naudio/r1.wav,one two,s1\naudio/r2.wav,three,s2\n"
    (tmp_path / "t.csv").write_text(rows)
    return import_table(tmp_path / "t.csv", tmp_path / "orig").path


@pytest.mark.parametrize("segmented", [False, True])
def test_lhotse_round_trip(tmp_path: Path, segmented: bool, capsys: pytest.CaptureFixture) -> None:
    orig = _small_table_dir(tmp_path, segmented)
    assert main(["prepare-data", "to-lhotse", str(orig), str(tmp_path / "m" / "small")]) == 0
    recordings = tmp_path / "m" / "small_recordings.jsonl.gz"
    supervisions = tmp_path / "m" / "small_supervisions.jsonl.gz"
    assert f"recordings: {recordings}" in capsys.readouterr().out
    sups = [json.loads(line) for line in gzip.open(supervisions, "rt")]
    assert [s["speaker"] for s in sups] == (["s1", "s1", "s2"] if segmented else ["s1", "s2"])
    assert main(["prepare-data", "lhotse", str(recordings), str(supervisions), str(tmp_path / "back")]) == 0
    assert _files(tmp_path / "back") == _files(orig)
    assert ("segments" in _files(orig)) == segmented


def test_lhotse_import_of_lhotse_made_manifests(tmp_path: Path) -> None:
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

    rec = Recording.from_file(_wav(tmp_path / "long.wav", 2.0), recording_id="long")
    RecordingSet.from_recordings([rec]).to_file(tmp_path / "rec.jsonl.gz")
    SupervisionSet.from_segments([
        SupervisionSegment("long-a", "long", start=0.25, duration=0.5, text="first words"),
        SupervisionSegment("b", "long", start=1.0, duration=0.75, text="second", speaker="kim"),
    ]).to_file(tmp_path / "sup.json")
    dd = import_lhotse(tmp_path / "rec.jsonl.gz", tmp_path / "sup.json", tmp_path / "data")
    assert dd.utt2spk == {"kim-b": "kim", "long-a": "long-a"}
    assert _lines(tmp_path / "data" / "segments") == ["kim-b long 1.000 1.750", "long-a long 0.250 0.750"]
    assert dd.wav_scp == {"long": str(tmp_path.resolve() / "long.wav")}


def test_lhotse_errors(tmp_path: Path) -> None:
    from lhotse import Recording, RecordingSet, SupervisionSegment, SupervisionSet

    rec = Recording.from_file(_wav(tmp_path / "a.wav", 1.0), recording_id="a")
    RecordingSet.from_recordings([rec]).to_file(tmp_path / "rec.jsonl.gz")
    SupervisionSet.from_segments([SupervisionSegment("u", "a", 0, 1.0)]).to_file(tmp_path / "notext.jsonl.gz")
    SupervisionSet.from_segments([SupervisionSegment("u", "zz", 0, 1.0, text="x")]).to_file(tmp_path / "bad.jsonl.gz")
    with pytest.raises(DataDirError, match=r"supervision 'u': empty transcript"):
        import_lhotse(tmp_path / "rec.jsonl.gz", tmp_path / "notext.jsonl.gz", tmp_path / "out")
    with pytest.raises(DataDirError, match=r"supervision 'u' names unknown recording 'zz'"):
        import_lhotse(tmp_path / "rec.jsonl.gz", tmp_path / "bad.jsonl.gz", tmp_path / "out")
    with pytest.raises(DataDirError, match=r"nope\.jsonl\.gz: no such RecordingSet manifest"):
        import_lhotse(tmp_path / "nope.jsonl.gz", tmp_path / "bad.jsonl.gz", tmp_path / "out")
    (tmp_path / "garbage.jsonl").write_text("{not json\n")
    with pytest.raises(DataDirError, match=r"garbage\.jsonl: not a lhotse RecordingSet"):
        import_lhotse(tmp_path / "garbage.jsonl", tmp_path / "bad.jsonl.gz", tmp_path / "out")
    (tmp_path / "a.wav").unlink()
    SupervisionSet.from_segments([SupervisionSegment("u", "a", 0, 1.0, text="x")]).to_file(tmp_path / "ok.jsonl.gz")
    with pytest.raises(DataDirError, match=r"recording 'a': .*a\.wav: no such audio file"):
        import_lhotse(tmp_path / "rec.jsonl.gz", tmp_path / "ok.jsonl.gz", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_lhotse_missing_package_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "lhotse", None)  # makes `import lhotse` raise ImportError
    (tmp_path / "r.jsonl.gz").write_bytes(b"")
    with pytest.raises(OptionalDependencyError, match=r"pip install 'asr\[lhotse\]'"):
        import_lhotse(tmp_path / "r.jsonl.gz", tmp_path / "s.jsonl.gz", tmp_path / "out")
    orig = _small_table_dir(tmp_path, segmented=False)
    with pytest.raises(OptionalDependencyError, match=r"pip install 'asr\[lhotse\]'"):
        export_lhotse(orig, tmp_path / "m")
    assert DataDir.load(orig).utterances == ["s1-r1", "s2-r2"]
