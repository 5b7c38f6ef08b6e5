#!/bin/bash
# The swap test (docs/results.md, "Session 29"): each seed-0 generator row's final Q in sim
# through the other row's frozen G, 100 test-object episodes at eval seeds 0, 1, 2 (~1-2 min
# each on 2 cores). Run from anywhere; outputs go to $1 (default ../runs/table1_swap beside
# the repo). Each output that exists is kept (re-running resumes).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../../../.." && pwd)
out=${1:-$repo/../runs/table1_swap}
mkdir -p "$out"
cd "$repo"
R=results/table1_real_gap0.75
for pair in "rl_cyclegan_seed0 cyclegan_seed0" "cyclegan_seed0 rl_cyclegan_seed0"; do
  set -- $pair
  for k in 0 1 2; do
    json=$out/swap_$1_under_$2_sim_seed$k.json
    [ -f "$json" ] || TF_NUM_INTRAOP_THREADS=1 .venv/bin/python tools/evaluate.py \
      --checkpoint_dir=$R/$1/final_q --appearance=sim --generator_key=G_sim2real \
      --generator_checkpoint=$R/$2/generator --num_episodes=100 --seed=$k \
      --render_size=64x80 --output_json="$json" --progress_interval=120 \
      --gin_bindings "RealAppearance.real_gap = 0.75"
  done
done
