#!/usr/bin/env bash
# Context-dependency sweep for issue #12, outside run.sh: for each context width
# and leaf count, grow a tree from the final CE model's alignments, convert them,
# train one CE pass on the tree's pdfs (from the monophone CE model's output rows),
# realign, fine-tune with MMI, and decode the held-out speakers (LM weight sweep on
# graphs whose LMs never saw them) and the test set.  Run it in a work dir where
# run.sh has finished stages 0-9 for seed 0.  It prints the held-out WERs; choose
# on those only, never on test.
#   recipes/an4/local/tree_sweep.sh --workdir /tmp/an4 --widths "3 2" --leaves "200 500 1000"
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="$(cd "$here/../.." && pwd)"
corpus="$root/../shared/corpora/an4"
workdir="$here"
widths="3 2"
leaves="200 500 1000"
model=blstm
threads=1
stage=0
valid=data/valid                       # held-out speakers (run.sh stage 9 makes it)
tune_text=data/local/text_minus_valid  # training text without them, for the tuning graphs
usage="Usage: $0 [--workdir DIR] [--widths '3 2'] [--leaves '200 500 1000'] [--model blstm] [--threads N] [--valid DIR] [--tune-text FILE] [--stage N]
  stages per variant: 0 tree + lang + convert-ali + graphs, 1 CE pass, 2 realign + MMI, 3 decode"
. "$root/tools/recipe_setup.sh"
export OMP_NUM_THREADS="$threads"
conf="$root/conf/an4"
for w in $widths; do
  tree_conf=""; [ "$w" -eq 2 ] && tree_conf="--config $conf/tree_biphone.yaml"
  [ "$w" -ne 2 ] && [ "$w" -ne 3 ] && { echo "$0: width $w: only 2 (left biphone) and 3 (triphone)" >&2; exit 2; }
  for n in $leaves; do
    v=w${w}_l$n lang=data/lang_$v ce=exp/${model}_ce_$v mmi=exp/${model}_mmi_$v
    if [ $stage -le 0 ]; then
      log "$v" "tree (width $w, at most $n leaves) from exp/$model/ali, tree lang, converted alignments, graphs"
      $asr build-tree --ali-dir exp/$model/ali --data data/train --lang data/lang exp/tree_$v \
        --max-leaves $n $tree_conf --lang-out $lang
      $asr convert-ali exp/$model/ali exp/tree_$v/ali --lang data/lang --tree-lang $lang
      $asr compile-graph $lang ${lang}_tg --text data/train/text --order 3
      $asr compile-graph $lang ${lang}_tg_tune --text $tune_text --order 3
    fi
    if [ $stage -le 1 ]; then
      log "$v" "CE pass on the tree's pdfs, from exp/$model"
      $asr train --config "$conf/${model}_pass2.yaml" --data data/train --lang $lang --out $ce \
        --ali-dir exp/tree_$v/ali --init-model-dir exp/$model --graph-dir ${lang}_tg
    fi
    if [ $stage -le 2 ]; then
      log "$v" "realignment and MMI"
      $asr align --model-dir $ce data/train $ce/ali
      $asr train --config "$conf/mmi.yaml" --data data/train --lang $lang --out $mmi \
        --ali-dir $ce/ali --init-model-dir $ce --graph-dir ${lang}_tg
    fi
    if [ $stage -le 3 ]; then
      for m in $ce $mmi; do
        for set in valid test; do
          graph=${lang}_tg data=data/$set; [ $set = valid ] && graph=${lang}_tg_tune data=$valid
          rm -rf $m/decode_${set}_tg
          $asr decode --model-dir $m --graph-dir $graph $data $m/decode_${set}_tg \
            --config "$conf/decode.yaml" --nj 1 --sweep >&2
        done
        echo "$v $(basename $m) held-out: $(cat $m/decode_valid_tg/scoring/best_wer)"
      done
    fi
  done
done
