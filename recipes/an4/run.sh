#!/usr/bin/env bash
# CMU AN4 end to end on the CPU: data -> features -> lang (chain topology,
# word-position-dependent phones) -> LMs and graphs -> flat start (with
# alignment) -> cross-entropy training in passes with realignment, on
# speed-perturbed copies of the data -> MMI fine-tuning; LF-MMI from scratch
# (no alignments) beside it -> decoding with the trigram, bigram and unigram
# LMs, LM weight tuned on held-out training speakers -> WER; alignment of the
# test set.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

corpus="$root/../shared/corpora/an4"
stage=0
stop_stage=100
nj=2
model=blstm       # conf/an4/<model>.yaml for the CE passes
passes=3          # CE passes; each after the first starts from the previous model and its realignment
systems="ce mmi tree"  # systems to train and decode besides CE: mmi and tree (stage 7), smbr (stage 7, opt-in), lfmmi (stage 8, opt-in), ivector (CE passes and MMI with i-vectors, opt-in), stream (streaming TDNN, stage 8 + 11, opt-in)
tree_width=2      # tree context: 2 = left biphone, 3 = triphone (chosen on held-out speakers: RESULTS.md)
tree_leaves=200   # the tree's --max-leaves (chosen on held-out speakers)
threads=1         # torch threads per job (OMP_NUM_THREADS): results are bit-identical at one count
seeds=0           # training seeds of stages 5-8, comma-separated (e.g. 0,1,2): one set of models per seed
cmvn=per-speaker  # per-speaker (systems then end in _spkcmvn; chosen on held-out speakers, RESULTS.md) or per-utterance; held-out and test speakers use their own statistics
workdir="$here"
usage="Usage: $0 [--corpus DIR] [--workdir DIR] [--model NAME] [--passes N] [--systems 'ce mmi tree smbr lfmmi ivector stream'] [--tree-width 3|2] [--tree-leaves N] [--seeds S1,S2,..] [--threads N] [--cmvn per-utterance|per-speaker] [--stage N] [--stop-stage N] [--nj N]
  Stages: 0 data, 1 features, 2 lang, 3 LMs+graphs, 4 flat start, 5 CE pass 1,
          6 realignment + CE passes 2..N, 7 MMI fine-tuning of the CE model, and
          (system tree) a decision tree from the CE model's alignments, a CE pass
          on its tied pdfs, realignment and MMI, (system smbr, opt-in) sMBR
          fine-tuning of the CE model,
          8 flat-start LF-MMI (from scratch), 9 decoding (+ LM-weight sweep,
          validation-tuned weight) and results.tsv, 10 test-set alignment,
          11 (system stream) streaming decode of the test set (benchmarks/streaming.py).
  --systems picks the systems beside CE (default 'ce mmi tree'; flat-start LF-MMI and
  ivector, the CE passes and MMI with i-vectors after stage 8's training, are opt-in). --seeds trains stages 5-8 once per seed; seed 0's models are exp/<name>,
  seed S's exp/<name>_seedS. The held-out speakers are the same for every seed;
  up to --nj seeds train at once (logs in exp/log/train_seedS.log)."
. "$root/tools/recipe_setup.sh"
# One thread per job: the BLSTM trains about as fast on one thread as on two,
# a 2-thread job slows down 10x or more when anything else shares the cores,
# and the thread count is part of the arithmetic (see RESULTS.md).
export OMP_NUM_THREADS="$threads"
conf="$root/conf/an4"
# The trigram, bigram and unigram graphs of a lang dir: LANG_tg, LANG_bg, LANG_ug.
compile_graphs() {
  $asr compile-graph $1 ${1}_tg --text data/train/text --order 3
  $asr compile-graph $1 ${1}_bg --text data/train/text --order 2
  $asr compile-graph $1 ${1}_ug --arpa "$corpus/etc/an4.ug.lm"
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log 0 "data dirs from $corpus"
  $asr prepare-data an4 "$corpus" data
fi
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log 1 "features"
  # a bare config name (fbank.yaml, lang_chain_pos.yaml) is a default shipped in asr/conf
  $asr compute-feats data/train data/test fbank --config fbank.yaml --nj $nj --cmvn $cmvn
fi
if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log 2 "lang dir (chain topology: one state per phone; word-position-dependent phones)"
  $asr prepare-lang "$root/lexicon/an4/lexicon.txt" data/lang --config lang_chain_pos.yaml
fi
if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log 3 "LMs and graphs: trigram and bigram from the training text, AN4's unigram"
  compile_graphs data/lang
fi
if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log 4 "flat start (maximum likelihood, no alignments) and alignment of the training data"
  $asr train --config "$conf/flat_start.yaml" --data data/train --lang data/lang --out exp/flat
fi
seed_list="${seeds//,/ }"
sfx() { if [ "$1" -eq 0 ]; then echo ""; else echo "_seed$1"; fi; }
pass_dir() { if [ "$1" -eq "$passes" ]; then echo exp/$model$(sfx $2); else echo exp/${model}_pass$1$(sfx $2); fi; }
has() { case " $systems " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
in_stages() { [ $stage -le $1 ] && [ $stop_stage -ge $1 ]; }
# Stages 5-8 for one seed; seeds are independent, so up to $nj of them train at once.
train_seed() {
  local s=$1 p prev ce
  if in_stages 5; then
    log 5 "cross-entropy pass 1 ($model, seed $s) on the flat-start alignments"
    $asr train --config "$conf/$model.yaml" --data data/train --lang data/lang --out "$(pass_dir 1 $s)" \
      --ali-dir exp/flat/ali --graph-dir data/lang_tg --seed $s
  fi
  if in_stages 6; then
    for p in $(seq 2 $passes); do
      prev="$(pass_dir $((p - 1)) $s)"
      log 6 "realignment with $prev, then cross-entropy pass $p (seed $s)"
      $asr align --model-dir "$prev" data/train "$prev/ali"
      $asr train --config "$conf/${model}_pass2.yaml" --data data/train --lang data/lang --out "$(pass_dir $p $s)" \
        --ali-dir "$prev/ali" --init-model-dir "$prev" --graph-dir data/lang_tg --seed $s
    done
  fi
  if has mmi && in_stages 7; then
    ce=exp/$model$(sfx $s)
    log 7 "MMI fine-tuning of $ce on its own alignments (denominator: H o phone bigram)"
    $asr align --model-dir $ce data/train $ce/ali
    $asr train --config "$conf/mmi.yaml" --data data/train --lang data/lang --out exp/${model}_mmi$(sfx $s) \
      --ali-dir $ce/ali --init-model-dir $ce --graph-dir data/lang_tg --seed $s
  fi
  if has smbr && in_stages 7; then
    ce=exp/$model$(sfx $s)
    log 7 "sMBR fine-tuning of $ce on its own alignments (expected frame accuracy over H o phone bigram)"
    [ -f $ce/ali/ali.scp ] || $asr align --model-dir $ce data/train $ce/ali
    $asr train --config "$conf/smbr.yaml" --data data/train --lang data/lang --out exp/${model}_smbr$(sfx $s) \
      --ali-dir $ce/ali --init-model-dir $ce --graph-dir data/lang_tg --seed $s
  fi
  if has tree && in_stages 7; then
    ce=exp/$model$(sfx $s)
    local v=tree$tree_leaves$(sfx $s) tree_conf=()
    [ "$tree_width" -eq 2 ] && tree_conf=(--config "$conf/tree_biphone.yaml")
    log 7 "decision tree (width $tree_width, at most $tree_leaves leaves, seed $s) from $ce/ali; CE pass on its pdfs, realignment, MMI"
    [ -f $ce/ali/ali.scp ] || $asr align --model-dir $ce data/train $ce/ali
    $asr build-tree --ali-dir $ce/ali --data data/train --lang data/lang exp/$v --max-leaves $tree_leaves \
      "${tree_conf[@]}" --lang-out data/lang_$v
    $asr convert-ali $ce/ali exp/$v/ali --lang data/lang --tree-lang data/lang_$v
    compile_graphs data/lang_$v
    $asr train --config "$conf/${model}_pass2.yaml" --data data/train --lang data/lang_$v --out exp/${model}_ce_$v \
      --ali-dir exp/$v/ali --init-model-dir $ce --graph-dir data/lang_${v}_tg --seed $s
    $asr align --model-dir exp/${model}_ce_$v data/train exp/${model}_ce_$v/ali
    $asr train --config "$conf/mmi.yaml" --data data/train --lang data/lang_$v --out exp/${model}_mmi_$v \
      --ali-dir exp/${model}_ce_$v/ali --init-model-dir exp/${model}_ce_$v --graph-dir data/lang_${v}_tg --seed $s
  fi
  if has lfmmi && in_stages 8; then
    log 8 "flat-start LF-MMI (seed $s): no alignments, no CE model (denominator: H o phone trigram from the transcripts)"
    $asr train --config "$conf/lfmmi.yaml" --data data/train --lang data/lang --out exp/lfmmi$(sfx $s) \
      --graph-dir data/lang_tg --seed $s
  fi
}
if [ $stage -le 8 ] && [ $stop_stage -ge 5 ]; then
  mkdir -p exp/log
  pids=() logs=()
  for s in $seed_list; do
    while [ "$(jobs -rp | wc -l)" -ge "$nj" ]; do sleep 5; done
    log 5-8 "seed $s: training, log in exp/log/train_seed$s.log"
    ( set -e; train_seed $s ) > exp/log/train_seed$s.log 2>&1 &
    pids+=($!) logs+=(exp/log/train_seed$s.log)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { echo "$0: training failed, see ${logs[$i]}:" >&2; tail -20 "${logs[$i]}" >&2; exit 1; }
  done
fi
# System ivector (opt-in, docs/IVECTORS.md): the CE passes and MMI again, each network also taking an
# online i-vector (training: pseudo-speakers of at most 2 utterances; decoding: cumulative over the
# utterance, computed by asr decode as by asr transcribe). Models exp/<name>_ivector.
iv_pass_dir() { if [ "$1" -eq "$passes" ]; then echo exp/${model}_ivector$(sfx $2); else echo exp/${model}_pass$1_ivector$(sfx $2); fi; }
train_ivector_seed() {
  local s=$1 p prev ce iv=exp/ivector/ivectors_train
  $asr train --config "$conf/$model.yaml" --data data/train --lang data/lang --out "$(iv_pass_dir 1 $s)" \
    --ali-dir exp/flat/ali --graph-dir data/lang_tg --seed $s --ivector-dir $iv
  for p in $(seq 2 $passes); do
    prev="$(iv_pass_dir $((p - 1)) $s)"
    $asr align --model-dir "$prev" data/train "$prev/ali" --ivector-dir $iv
    $asr train --config "$conf/${model}_pass2.yaml" --data data/train --lang data/lang --out "$(iv_pass_dir $p $s)" \
      --ali-dir "$prev/ali" --init-model-dir "$prev" --graph-dir data/lang_tg --seed $s --ivector-dir $iv
  done
  if has mmi; then
    ce="$(iv_pass_dir $passes $s)"
    $asr align --model-dir $ce data/train $ce/ali --ivector-dir $iv
    $asr train --config "$conf/mmi.yaml" --data data/train --lang data/lang --out exp/${model}_mmi_ivector$(sfx $s) \
      --ali-dir $ce/ali --init-model-dir $ce --graph-dir data/lang_tg --seed $s --ivector-dir $iv
  fi
}
if has ivector && [ $stage -le 8 ] && [ $stop_stage -ge 7 ]; then
  first_seed="${seed_list%% *}"
  log 7 "i-vector extractor (UBM + T) on the training speakers, held-out ones left out; training i-vectors"
  $asr train-ivector data/train exp/ivector --exclude-utts exp/$model$(sfx $first_seed)/valid_utts.txt \
    --config "$conf/ivector.yaml"
  $asr extract-ivectors --extractor-dir exp/ivector data/train exp/ivector/ivectors_train
  pids=() logs=()
  for s in $seed_list; do
    while [ "$(jobs -rp | wc -l)" -ge "$nj" ]; do sleep 5; done
    log 7 "seed $s: systems with i-vectors, log in exp/log/train_ivector_seed$s.log"
    ( set -e; train_ivector_seed $s ) > exp/log/train_ivector_seed$s.log 2>&1 &
    pids+=($!) logs+=(exp/log/train_ivector_seed$s.log)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { echo "$0: training failed, see ${logs[$i]}:" >&2; tail -20 "${logs[$i]}" >&2; exit 1; }
  done
fi
# System stream (opt-in, issue 17): a TDNN with 150 ms of right context (conf/an4/stream.yaml) trained on the CE model's
# alignments, on sliding-window CMVN features, the normalisation streaming recognition uses
# (data/<set>_stream; the prior: data/train's global stats), decoded offline in stage 9 and streaming in stage 11. Models exp/tdnn_stream.
if has stream && [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log 8 "streaming model: sliding-CMVN features, then a TDNN with 150 ms of look-ahead on the CE model's alignments"
  for set in train test; do rm -rf data/${set}_stream; cp -r data/$set data/${set}_stream; done
  $asr compute-feats data/train_stream fbank --config fbank.yaml --nj $nj --cmvn sliding
  $asr compute-feats data/test_stream fbank --config fbank.yaml --nj $nj --cmvn sliding --cmvn-prior data/train_stream
  for s in $seed_list; do
    ce=exp/$model$(sfx $s)
    [ -f $ce/ali/ali.scp ] || $asr align --model-dir $ce data/train $ce/ali
    $asr train --config "$conf/stream.yaml" --data data/train_stream --lang data/lang --out exp/tdnn_stream$(sfx $s) \
      --ali-dir $ce/ali --graph-dir data/lang_tg --seed $s
  done
fi
decode_conf() { case "$1" in lfmmi*) echo "$conf/decode_lfmmi.yaml" ;; *) echo "$conf/decode.yaml" ;; esac; }
# results.tsv system names: <model>_<criterion>_<units>[_<adapt>]
adapt=""; [ "$cmvn" = per-speaker ] && adapt=_spkcmvn
# One SYSTEM:SEED:MODEL_DIR per line (write_results.py's arguments).
systems() {
  local s v
  for s in $seed_list; do
    v=tree$tree_leaves$(sfx $s)
    echo "${model}_ce_mono$adapt:$s:exp/$model$(sfx $s)"
    if has mmi; then echo "${model}_mmi_mono$adapt:$s:exp/${model}_mmi$(sfx $s)"; fi
    if has smbr; then echo "${model}_smbr_mono$adapt:$s:exp/${model}_smbr$(sfx $s)"; fi
    if has tree; then
      echo "${model}_ce_tree$tree_leaves$adapt:$s:exp/${model}_ce_$v"
      echo "${model}_mmi_tree$tree_leaves$adapt:$s:exp/${model}_mmi_$v"
    fi
    if has lfmmi; then echo "tdnn_lfmmi_mono$adapt:$s:exp/lfmmi$(sfx $s)"; fi
    if has ivector; then
      echo "${model}_ce_mono_ivector$adapt:$s:exp/${model}_ivector$(sfx $s)"
      if has mmi; then echo "${model}_mmi_mono_ivector$adapt:$s:exp/${model}_mmi_ivector$(sfx $s)"; fi
    fi
    if has stream; then echo "tdnn_ce_mono_stream:$s:exp/tdnn_stream$(sfx $s)"; fi
  done
}
# The data dirs a model dir decodes: data/<set>, or data/<set>_stream for the streaming model.
data_of() { case "$1" in *_stream*) echo _stream ;; *) echo "" ;; esac; }
# The lang dir a model dir's graphs are built from: data/lang, or its tree's lang.
lang_of() { case "$1" in *_tree*) echo "data/lang_tree${1##*_tree}" ;; *) echo data/lang ;; esac; }
if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  log 9 "decoding: held-out training speakers (to tune the LM weight) and the test set"
  first_seed="${seed_list%% *}"
  rm -rf data/valid
  $py "$here/local/subset_data_dir.py" data/train exp/$model$(sfx $first_seed)/valid_utts.txt data/valid
  $asr compute-feats data/valid fbank --config fbank.yaml --nj 1 --cmvn $cmvn
  if has stream; then
    rm -rf data/valid_stream
    $py "$here/local/subset_data_dir.py" data/train_stream exp/$model$(sfx $first_seed)/valid_utts.txt data/valid_stream
    $asr compute-feats data/valid_stream fbank --config fbank.yaml --nj 1 --cmvn sliding --cmvn-prior data/train_stream
  fi
  # The held-out speakers' sentences are in the training text: tune on graphs
  # whose LMs never saw them, as the test set's never saw its own.
  mkdir -p data/local
  awk 'NR == FNR { held[$1]; next } !($1 in held)' exp/$model$(sfx $first_seed)/valid_utts.txt data/train/text \
    > data/local/text_minus_valid
  tune_graph() { if [ "$2" = ug ]; then echo ${1}_ug; else echo ${1}_${2}_tune; fi; }
  declare -A tuned=()
  for spec in $(systems); do
    m="${spec#*:*:}" l="$(lang_of "$m")"
    # the model dir keeps its decode settings: asr transcribe, asr serve and Recognizer.from_dir use them
    cp "$(decode_conf "$(basename $m)")" $m/decode.yaml
    if [ -z "${tuned[$l]:-}" ]; then
      tuned[$l]=1
      $asr compile-graph $l ${l}_tg_tune --text data/local/text_minus_valid --order 3
      $asr compile-graph $l ${l}_bg_tune --text data/local/text_minus_valid --order 2
    fi
    for lm in tg bg ug; do
      for set in valid test; do
        graph=${l}_$lm; [ $set = valid ] && graph=$(tune_graph $l $lm)
        rm -rf $m/decode_${set}_$lm
        $asr decode --model-dir $m --graph-dir $graph data/$set$(data_of $m) $m/decode_${set}_$lm \
          --config "$(decode_conf "$(basename $m)")" --nj $nj --sweep >&2
      done
    done
  done
fi
if [ $stage -le 10 ] && [ $stop_stage -ge 10 ]; then
  log 10 "forced alignment of the test set with the trained model"
  $asr align --model-dir exp/$model data/test exp/$model/ali_test
fi
if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  # One row per system, LM and seed: test WER at the decode config, at the
  # weight tuned on the held-out speakers, and at the best weight on test.
  $py "$here/local/write_results.py" results.tsv $(systems)
  column -t results.tsv
fi
if has stream && [ $stage -le 11 ] && [ $stop_stage -ge 11 ]; then
  log 11 "streaming decode of the test set in 0.16 s chunks (trigram graph): WER, RTF, latencies"
  $asr align --model-dir exp/tdnn_stream data/test_stream exp/tdnn_stream/ali_test
  PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" $py -m benchmarks.streaming --workdir . --model-dir exp/tdnn_stream \
    --data data/test_stream --graph-dir data/lang_tg --word-ctm exp/tdnn_stream/ali_test/word.ctm \
    --offline-decode exp/$model/decode_test_tg --out exp/tdnn_stream/stream_test_tg
fi
