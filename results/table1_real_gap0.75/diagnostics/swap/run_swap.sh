#!/bin/bash
# The swap test: each seed-0 generator row's final Q in sim through the other row's frozen G.
cd /work/main
R=results/table1_real_gap0.75
for pair in "rl_cyclegan_seed0 cyclegan_seed0" "cyclegan_seed0 rl_cyclegan_seed0"; do
 set -- $pair
 for k in 0 1 2; do
  out=/work/runs/s29/mcnemar/swap_$1_under_$2_sim_seed$k.json
  [ -f $out ] || TF_NUM_INTRAOP_THREADS=1 .venv/bin/python tools/evaluate.py --checkpoint_dir=$R/$1/final_q --appearance=sim --generator_key=G_sim2real --generator_checkpoint=$R/$2/generator --num_episodes=100 --seed=$k --render_size=64x80 --output_json=$out --progress_interval=120 --gin_bindings "RealAppearance.real_gap = 0.75"
 done
done
