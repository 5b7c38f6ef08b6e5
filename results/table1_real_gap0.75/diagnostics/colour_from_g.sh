#!/bin/bash
# Ad hoc (session 43; docs/results.md, prediction 13): each final Q of ROWS in `real` with the
# real render's objects (per body) and robot in its own G's colours, their shapes, shading and
# outlines real (tools/evaluate.py --colour_from_g=objects,robot; sim2real.match_segment_colours),
# on the eval seeds 0-2, 100 episodes each; a finished one is kept. The control is the row's
# composite_none_seed<k>.json; composite_worlds.py --summarize pairs them.
#   ROWS="rl_cyclegan_long cyclegan_seed0" bash <this script>
cd "$(dirname "$0")/../../.."
for seed in 0 1 2; do for row in ${ROWS:-rl_cyclegan_long rl_cyclegan_real_critic rl_cyclegan_fq_seed1 rl_cyclegan_rlscene1_seed0 cyclegan_seed0}; do
  out=results/table1_real_gap0.75/$row/eval/composite_colour_objects_robot_seed$seed.json
  [ -f $out ] && continue
  TF_NUM_INTRAOP_THREADS=1 .venv/bin/python tools/evaluate.py --checkpoint_dir=results/table1_real_gap0.75/$row/final_q \
    --generator_key=G_sim2real --appearance=real --gin_bindings='RealAppearance.real_gap = 0.75' \
    --num_episodes=100 --seed=$seed --translated_regions=none --colour_from_g=objects,robot \
    --progress_interval=600 --output_json=$out 2>/dev/null | grep "grasp success" | sed "s/^/$row seed $seed: /"
done; done
