#!/bin/bash
# Session 32's probe: is the collapse of the RL-CycleGAN seed-1 final Q's image tower (embedding
# spread 0.0001 at step 4,000 and 0.0000 from 16,000; 94% of tower_conv0's channels dead at
# 23,000; CycleGAN seed 1's at 4,000: 0.026) caused by its G, or by the final Q's own seed?
# The table's final-Q command of each seed-1 row, unchanged but for train_eval.seed (2 and 3,
# the rows' own is 1) and 4,000 train steps, on the row's cached G(sim log) (a symlink to the
# row's translated_sim_log; G's fingerprint is checked on read). One probe at a time, one TF
# intra-op thread, beside the chain (the machine is shared: no timing is read from them). Memory:
# a final Q holds ~7.6 GB (the 83k-transition log and its replay in RAM); two probes beside the
# chain's two joint runs (5.5 + 3.3 GB) filled this 23 GB machine with no swap, and all four
# stalled for 35 min (session 32) until the second pair was killed.
# Each probe's step-4,000 evaluation prints the spread; layer_stats.py then writes the tower's
# dead channels on the 64 held-out paired states in real to ../runs/probe_s32/layer_stats.jsonl.
# Resumes where it stopped (train_qtopt restores its checkpoint; a finished probe is skipped).
#   bash docs/launch/probe_final_q_collapse.sh   # log ../runs/probe_s32/probe.log
#   stop: kill -TERM -$(cat ../runs/probe_s32/probe.pid)
set -euo pipefail
move=1 worktree=code_probe
source "$(dirname "$0")/worktree.sh"
out=$runs/probe_s32
mkdir -p "$out"
probe() {  # probe <row> <final-Q seed>
  local row=$1 seed=$2 root=$out/${1}_fq$2
  mkdir -p "$root"
  ln -sfn "$runs/table1_gap075/$row/final_q/translated_sim_log" "$root/translated_sim_log"
  PYTHONPATH=$code TF_NUM_INTRAOP_THREADS=1 "$repo/.venv/bin/python" "$code/tools/train_qtopt.py" \
    --root_dir="$root" --gin_file "$code/gin/table1_final_q.gin" \
    --gin_bindings "train_eval.seed = $seed" --gin_bindings "train_eval.num_train_steps = 4000" \
    --gin_bindings "Replay.sim_episode_dir = '$runs/table1_gap075/data/sim_mix18'" \
    --gin_bindings "train_eval.generator_checkpoint = '$repo/results/table1_real_gap0.75/$row/generator'" \
    --gin_bindings "Environment.render_size = (64, 80)" \
    --gin_bindings "RealAppearance.real_gap = 0.75" > "$root/train.log" 2>&1
  if [ ! -s "$root/layer_stats.json" ]; then
    PYTHONPATH=$code "$repo/.venv/bin/python" "$code/results/table1/diagnostics/layer_stats.py" \
      "$root" "$runs/table1_gap075/data/paired_full.npz" real > "$root/layer_stats.json.tmp" \
      2> "$root/layer_stats.err" && mv "$root/layer_stats.json.tmp" "$root/layer_stats.json"
  fi
  echo "[probe $(date +%H:%M:%S)] $row final-Q seed $seed: $(grep 'eval step 4000' "$root/train.log" | sed 's/.*grasp success/grasp success/' | tr '\n' ' ')"
}
pairs() {
  probe rl_cyclegan_seed1 2
  probe cyclegan_seed1 2
  probe rl_cyclegan_seed1 3
  probe cyclegan_seed1 3
}
setsid nohup bash -c "$(declare -f probe pairs); out=$out runs=$runs repo=$repo code=$code; set -e; pairs" \
  > "$out/probe.log" 2>&1 &
echo $! > "$out/probe.pid"
echo "started: pid $(cat "$out/probe.pid"), log $out/probe.log"
