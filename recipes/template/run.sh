#!/usr/bin/env bash
# Template recipe for your own corpus (docs/OWN_CORPUS.md): Kaldi data dirs in,
# a %WER line out.  data -> features -> lexicon + lang -> graph -> configs
# scaled to the corpus -> flat start (with alignment) -> cross-entropy passes
# with realignment -> MMI fine-tuning -> decoding -> scoring.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
start_dir="$PWD"

train=""              # training data dir (e.g. from asr prepare-data table)
test=""               # test data dir
lexicon=""            # a lexicon file (WORD PH1 PH2 ...), or:
words=""              # a word list, pronounced by asr prepare-lexicon (CMUdict + G2P); neither: the training text's words
lexicon_opts=""       # more prepare-lexicon options, e.g. '--phone-map map.txt'
sample_rate=auto      # Hz; auto: that of the first training recording
cmvn=per-speaker      # per-speaker | per-utterance (docs/OWN_CORPUS.md says which)
lm=bigram             # unigram|bigram|trigram (from the training text), FILE.arpa, FILE.jsgf, one-of:FILE, word-loop:FILE
passes=2              # CE passes; each after the first starts from the previous model and its realignment
mmi=true              # MMI fine-tuning of the last CE pass (stage 8)
override=""           # YAML whose keys win over the scaled configs (sections all, flat_start, ce, ce_pass2, mmi)
stage=0
stop_stage=100
nj=2
workdir="$here"
corpus="$here"        # unused: the template takes data dirs (tools/recipe_setup.sh resolves a corpus dir)
usage="Usage: $0 --train DATA_DIR --test DATA_DIR [--lexicon FILE | --words FILE] [--lexicon-opts '...']
          [--sample-rate auto|HZ] [--cmvn per-speaker|per-utterance] [--lm bigram|trigram|unigram|FILE.arpa|FILE.jsgf|one-of:FILE|word-loop:FILE]
          [--passes N] [--mmi true|false] [--override FILE] [--workdir DIR] [--stage N] [--stop-stage N] [--nj N]
  Stages: 0 data dirs + feature config, 1 features, 2 lexicon + lang, 3 graph,
          4 training configs scaled to the corpus (exp/conf/), 5 flat start,
          6 CE pass 1, 7 realignment + CE passes 2..N, 8 MMI, 9 decoding + scoring.
  The last line of stdout is the %WER of the last system (MMI, else the last CE pass)."
. "$root/tools/recipe_setup.sh"
conf="$here/conf"

# Paths given on the command line are relative to where the script was started.
abspath() { case "$1" in ""|/*) echo "$1" ;; *) echo "$start_dir/$1" ;; esac; }
train="$(abspath "$train")"; test="$(abspath "$test")"; lexicon="$(abspath "$lexicon")"
words="$(abspath "$words")"; override="$(abspath "$override")"
case "$lm" in *.arpa|*.jsgf) lm="$(abspath "$lm")" ;; one-of:*|word-loop:*) lm="${lm%%:*}:$(abspath "${lm#*:}")" ;; esac
[ -n "$train" ] && [ -n "$test" ] || { echo "$0: --train and --test are required" >&2; echo "$usage" >&2; exit 2; }
case "$cmvn" in per-speaker|per-utterance) ;; *) echo "$0: --cmvn must be per-speaker or per-utterance" >&2; exit 2 ;; esac

# graph_args LM: the compile-graph options of --lm; graph_name LM: its graph dir's suffix
graph_args() {
  case "$1" in
    unigram) echo "--text data/train/text --order 1" ;;
    bigram) echo "--text data/train/text --order 2" ;;
    trigram) echo "--text data/train/text --order 3" ;;
    *.arpa) echo "--arpa $1" ;;
    *.jsgf) echo "--grammar jsgf --jsgf $1" ;;
    one-of:*|word-loop:*) echo "--grammar ${1%%:*} --words ${1#*:}" ;;
    *) echo "$0: unknown --lm '$1'" >&2; exit 2 ;;
  esac
}
graph_name() { case "$1" in unigram) echo ug ;; bigram) echo bg ;; trigram) echo tg ;; *) echo lm ;; esac; }
graph=data/lang_$(graph_name "$lm")
pass_dir() { if [ "$1" -eq "$passes" ]; then echo exp/tdnn_ce; else echo exp/tdnn_ce_pass$1; fi; }

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log 0 "data dirs from $train and $test, feature config"
  $py "$here/local/copy_data_dir.py" "$train" data/train
  $py "$here/local/copy_data_dir.py" "$test" data/test
  [ "$sample_rate" = auto ] && sample_rate=$($py "$here/local/sample_rate.py" data/train)
  $py "$here/local/feats_config.py" "$sample_rate" conf/fbank.yaml
fi
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log 1 "features ($cmvn CMVN)"
  $asr compute-feats data/train data/test fbank --config conf/fbank.yaml --nj $nj --cmvn $cmvn
fi
if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log 2 "lexicon and lang dir (3-state HMMs, asr/conf/lang.yaml)"
  mkdir -p data/local
  if [ -n "$lexicon" ]; then
    cp "$lexicon" data/local/lexicon.txt
  elif [ -n "$words" ]; then
    $asr prepare-lexicon --words "$words" data/local/lexicon.txt $lexicon_opts
  else
    $asr prepare-lexicon --text data/train/text data/local/lexicon.txt $lexicon_opts
  fi
  $asr prepare-lang data/local/lexicon.txt data/lang --config lang.yaml
fi
if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log 3 "G and HLG ($lm)"
  $asr compile-graph data/lang $graph $(graph_args "$lm")
fi
if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log 4 "training configs scaled to the training data (exp/conf/)"
  for name in flat_start ce ce_pass2 mmi; do
    $py "$here/local/scale_config.py" --data data/train --base "$conf/$name.yaml" --kind $name \
      --feats-config conf/fbank.yaml ${override:+--override "$override"} exp/conf/$name.yaml
  done
fi
if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log 5 "flat start (maximum likelihood, no alignments) and alignment of the training data"
  $asr train --config exp/conf/flat_start.yaml --data data/train --lang data/lang --out exp/flat
fi
if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log 6 "cross-entropy pass 1 on the flat-start alignments"
  $asr train --config exp/conf/ce.yaml --data data/train --lang data/lang --out "$(pass_dir 1)" \
    --ali-dir exp/flat/ali --graph-dir $graph
fi
if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  for p in $(seq 2 $passes); do
    prev="$(pass_dir $((p - 1)))"
    log 7 "realignment with $prev, then cross-entropy pass $p"
    $asr align --model-dir "$prev" data/train "$prev/ali"
    $asr train --config exp/conf/ce_pass2.yaml --data data/train --lang data/lang --out "$(pass_dir $p)" \
      --ali-dir "$prev/ali" --init-model-dir "$prev" --graph-dir $graph
  done
fi
if [ "$mmi" = true ] && [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log 8 "MMI fine-tuning of exp/tdnn_ce on its own alignments (denominator: H o phone bigram)"
  $asr align --model-dir exp/tdnn_ce data/train exp/tdnn_ce/ali
  $asr train --config exp/conf/mmi.yaml --data data/train --lang data/lang --out exp/tdnn_mmi \
    --ali-dir exp/tdnn_ce/ali --init-model-dir exp/tdnn_ce --graph-dir $graph
fi
if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  log 9 "decoding and scoring the test set"
  systems=exp/tdnn_ce; [ "$mmi" = true ] && systems="$systems exp/tdnn_mmi"
  for m in $systems; do
    d=$m/decode_test_$(graph_name "$lm")
    rm -rf $d
    $asr decode --model-dir $m --graph-dir $graph data/test $d --nj $nj >&2
    $asr score --details --utt2spk data/test/utt2spk data/test/text $d/text > $d/wer_details
    echo "$m: $(grep %WER $d/wer)" >&2
  done
  grep "%WER" $d/wer
fi
