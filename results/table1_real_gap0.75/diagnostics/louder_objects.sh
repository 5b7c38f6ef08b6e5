#!/bin/bash
# Ad hoc (session 42; docs/results.md, predictions 10, 10b, 10c): each final Q of ROWS in `real`
# with its objects drawn GAIN times as far from their surround (tools/evaluate.py
# --object_contrast_gain), on the eval seeds 0-2, 100 episodes each; a finished one is kept.
#   ROWS="rl_cyclegan_fq_seed1 rl_cyclegan_real_critic" GAIN=1.4 bash <this script>
cd "$(dirname "$0")/../../.."
for seed in 0 1 2; do for row in ${ROWS:-rl_cyclegan_seed0 cyclegan_seed0}; do
  out=results/table1_real_gap0.75/$row/eval/louder_objects_gain${GAIN:-1.5}_seed$seed.json
  [ -f $out ] && continue
  TF_NUM_INTRAOP_THREADS=1 .venv/bin/python tools/evaluate.py --checkpoint_dir=results/table1_real_gap0.75/$row/final_q \
    --generator_key=G_sim2real --appearance=real --gin_bindings='RealAppearance.real_gap = 0.75' \
    --num_episodes=100 --seed=$seed --translated_regions=none --object_contrast_gain=${GAIN:-1.5} \
    --progress_interval=600 --output_json=$out 2>/dev/null | grep "grasp success" | sed "s/^/$row seed $seed: /"
done; done
