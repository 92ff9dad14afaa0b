#!/usr/bin/env bash
# CMU AN4 end to end on the CPU: data -> features -> lang (chain topology)
# -> LMs and graphs -> flat start (with alignment) -> cross-entropy training
# -> decoding with the trigram and unigram LMs -> WER; alignment of the test set.
# Usage: recipes/an4/run.sh [--corpus DIR] [--workdir DIR] [--model NAME] [--stage N] [--stop-stage N] [--nj N]
#   --model picks conf/an4/<NAME>.yaml for the cross-entropy stage (default blstm).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

corpus="$root/../shared/corpora/an4"
stage=0
stop_stage=100
nj=2
model=blstm
workdir="$here"
usage="Usage: $0 [--corpus DIR] [--workdir DIR] [--model NAME] [--stage N] [--stop-stage N] [--nj N]"
. "$root/tools/parse_stages.sh"

"$root/tools/setup_env.sh"
asr="$root/.venv/bin/asr"
conf="$root/conf/an4"
corpus="$(cd "$corpus" 2>/dev/null && pwd)" || { echo "$0: corpus dir not found" >&2; exit 1; }
mkdir -p "$workdir" && cd "$workdir"
log() { echo "$(date +%T) stage $1: $2" >&2; }

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log 0 "data dirs from $corpus"
  $asr prepare-data an4 "$corpus" data
fi
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log 1 "features"
  $asr compute-feats data/train data/test fbank --config "$root/conf/fbank.yaml" --nj $nj --cmvn per-utterance
fi
if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log 2 "lang dir (chain topology: one state per phone)"
  $asr prepare-lang "$root/lexicon/an4/lexicon.txt" data/lang --config "$root/conf/lang_chain.yaml"
fi
if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log 3 "LMs and graphs: trigram and bigram from the training text, AN4's unigram"
  $asr compile-graph data/lang data/lang_tg --text data/train/text --order 3
  $asr compile-graph data/lang data/lang_bg --text data/train/text --order 2
  $asr compile-graph data/lang data/lang_ug --arpa "$corpus/etc/an4.ug.lm"
fi
if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log 4 "flat start (maximum likelihood, no alignments) and alignment of the training data"
  $asr train --config "$conf/flat_start.yaml" --data data/train --lang data/lang --out exp/flat
fi
if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log 5 "cross-entropy training ($model) on the flat-start alignments"
  $asr train --config "$conf/$model.yaml" --data data/train --lang data/lang --out exp/$model \
    --ali-dir exp/flat/ali --graph-dir data/lang_tg
fi
if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log 6 "decoding the test set with the trigram and the unigram LM"
  for lm in tg ug; do
    rm -rf exp/$model/decode_test_$lm
    $asr decode --model-dir exp/$model --graph-dir data/lang_$lm data/test exp/$model/decode_test_$lm \
      --nj $nj --sweep >&2
  done
fi
if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  log 7 "forced alignment of the test set with the trained model"
  $asr align --model-dir exp/$model data/test exp/$model/ali_test
fi
if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  for lm in ug tg; do
    echo "$model $lm: $(cat exp/$model/decode_test_$lm/wer | head -1)   best over LM weights: $(cut -d' ' -f1-13 exp/$model/decode_test_$lm/scoring/best_wer)"
  done
fi
