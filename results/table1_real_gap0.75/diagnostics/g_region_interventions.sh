#!/bin/bash
# Ad hoc (sessions 42-43; docs/results.md, predictions 10-10c and 13-15): each final Q of ROWS in
# `real` with one intervention on the real render's objects and robot, on the eval seeds 0-2,
# 100 episodes each; a finished one is kept. The control is the row's composite_none_seed<k>.json;
# composite_worlds.py --summarize pairs the colour and ring worlds with it.
#   KIND=louder       the objects drawn GAIN (default 1.5) times as far from their surround
#                     (tools/evaluate.py --object_contrast_gain); louder_objects_gain<GAIN>_seed<k>.json
#   KIND=colour       the objects (per body) and robot in the final Q's own G's colours, their
#                     shapes, shading and outlines real (--colour_from_g=objects,robot)
#   KIND=ring         only the 2-pixel ring G draws around the real objects and robot, their insides
#                     real (--translated_regions=objects,robot --region_dilation=2 --translated_ring_only)
#   KIND=ring_colour  both: G's ring around the real shapes, their insides in G's colours
#   KIND=louder GAIN=1.4 ROWS="rl_cyclegan_fq_seed1 rl_cyclegan_real_critic" bash <this script>
cd "$(dirname "$0")/../../.."
case ${KIND:?KIND=louder, colour, ring or ring_colour} in
  louder) flags="--translated_regions=none --object_contrast_gain=${GAIN:=1.5}"
          name=louder_objects_gain$GAIN;;
  colour) flags="--translated_regions=none --colour_from_g=objects,robot";;
  ring) flags="--translated_regions=objects,robot --region_dilation=2 --translated_ring_only";;
  ring_colour) flags="--translated_regions=objects,robot --region_dilation=2 --translated_ring_only --colour_from_g=objects,robot";;
  *) echo "unknown KIND=$KIND: expected louder, colour, ring or ring_colour" >&2; exit 2;;
esac
for seed in 0 1 2; do for row in ${ROWS:-rl_cyclegan_long rl_cyclegan_real_critic rl_cyclegan_fq_seed1 rl_cyclegan_rlscene1_seed0 cyclegan_seed0}; do
  out=results/table1_real_gap0.75/$row/eval/${name:-composite_${KIND}_objects_robot}_seed$seed.json
  [ -f $out ] && continue
  TF_NUM_INTRAOP_THREADS=1 .venv/bin/python tools/evaluate.py --checkpoint_dir=results/table1_real_gap0.75/$row/final_q \
    --generator_key=G_sim2real --appearance=real --gin_bindings='RealAppearance.real_gap = 0.75' \
    --num_episodes=100 --seed=$seed $flags \
    --progress_interval=600 --output_json=$out 2>/dev/null | grep "grasp success" | sed "s/^/$row seed $seed: /"
done; done
