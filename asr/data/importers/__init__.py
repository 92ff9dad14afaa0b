"""Generic importers into Kaldi data dirs: CSV/TSV tables, folders of labelled
audio files and lhotse manifests (plus the export to lhotse).

Each module registers its ``asr prepare-data`` subcommand (see
:mod:`asr.data.registry`); docs/IMPORT.md describes the formats.
"""
