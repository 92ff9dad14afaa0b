#!/usr/bin/env python3
"""Writes a data dir holding only the listed utterances (Kaldi's subset_data_dir.sh --utt-list).

Used by the AN4 recipe to build data/valid from the speakers that training
held out (exp/<model>/valid_utts.txt), so LM weights can be tuned on them.

Usage: subset_data_dir.py SRC_DIR UTT_LIST DEST_DIR
"""

import argparse
import sys
from pathlib import Path

from asr.data.datadir import DataDir
from asr.data.split import subset_data_dir
from asr.errors import AsrError


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("utt_list")
    p.add_argument("dest")
    args = p.parse_args()
    try:
        src = DataDir.load(args.src)
        keep = [u for u in Path(args.utt_list).read_text().split() if u]
        sel = subset_data_dir(src, keep, args.dest).utt2spk
    except AsrError as e:
        print(f"subset_data_dir.py: error: {e}", file=sys.stderr)
        return 1
    print(f"{args.dest}: {len(sel)} utterances")
    return 0


if __name__ == "__main__":
    sys.exit(main())
