#!/usr/bin/env bash
# yesno end to end on the CPU: data -> features -> lang -> graph -> flat start
# (with alignment) -> cross-entropy training -> decoding -> WER.
# With --lfmmi true, also flat-start (end-to-end) LF-MMI from scratch on the
# same lang and graph (stages 7-8, exp/lfmmi).
# Usage: recipes/yesno/run.sh [--corpus DIR] [--workdir DIR] [--stage N] [--stop-stage N] [--nj N] [--lfmmi true]
# Outputs go to data/, fbank/ and exp/ under the work dir (default: this folder).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

corpus="$root/../shared/corpora/yesno"
stage=0
stop_stage=100
nj=1
lfmmi=false
workdir="$here"
usage="Usage: $0 [--corpus DIR] [--workdir DIR] [--stage N] [--stop-stage N] [--nj N] [--lfmmi true]"
. "$root/tools/recipe_setup.sh"
conf="$root/conf/yesno"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log 0 "data dirs from $corpus"
  $asr prepare-data yesno "$corpus" data
fi
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log 1 "features"
  $asr compute-feats data/train data/test fbank --config "$conf/fbank.yaml" --nj $nj --cmvn per-utterance
fi
if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log 2 "lang dir"
  # a bare config name is a default shipped in asr/conf
  $asr prepare-lang "$root/lexicon/yesno/lexicon.txt" data/lang --config lang.yaml
fi
if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log 3 "unigram LM from the training text, G and HLG"
  $asr compile-graph data/lang data/lang_ug --text data/train/text --order 1
fi
if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log 4 "flat start (maximum likelihood, no alignments) and alignment of the training data"
  $asr train --config "$conf/flat_start.yaml" --data data/train --lang data/lang --out exp/flat
fi
if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log 5 "cross-entropy training on the flat-start alignments"
  $asr train --config "$conf/ce.yaml" --data data/train --lang data/lang --out exp/tdnn \
    --ali-dir exp/flat/ali --graph-dir data/lang_ug
fi
if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log 6 "decoding and scoring the test set"
  rm -rf exp/tdnn/decode_test_ug
  $asr decode --model-dir exp/tdnn data/test exp/tdnn/decode_test_ug --nj $nj >&2
  grep "%WER" exp/tdnn/decode_test_ug/wer
fi
if [ "$lfmmi" = true ] && [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  log 7 "flat-start LF-MMI (no alignments) on data/lang"
  $asr train --config "$conf/lfmmi.yaml" --data data/train --lang data/lang --out exp/lfmmi --graph-dir data/lang_ug
fi
if [ "$lfmmi" = true ] && [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log 8 "decoding the test set with the LF-MMI model (acoustic scale 1)"
  rm -rf exp/lfmmi/decode_test_ug
  $asr decode --model-dir exp/lfmmi data/test exp/lfmmi/decode_test_ug --config "$conf/decode_lfmmi.yaml" --nj $nj >&2
  grep "%WER" exp/lfmmi/decode_test_ug/wer
fi
