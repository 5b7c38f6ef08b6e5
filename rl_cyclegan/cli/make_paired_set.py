r"""Builds the fixed held-out set of paired sim/real renders (EVALUATION ONLY) as one .npz.

  python tools/make_paired_set.py --output=/tmp/paired_set.npz --num_states=64 \
      --render_size=64x80 --crop_size=64x64 --seed=0 [--object_split=test \
      --action_mode=auto_descend --steps_per_state=3 --policy=scripted \
      --gin_bindings="RealAppearance.real_gap = 0.75"]

--gin_bindings set the environment's configurables, e.g. the pseudo-real world the 'real'
renders come from (envs/appearance.py); default: the project's world.

Prints the identity-baseline scene metrics (sim vs true real). See
rl_cyclegan/evaluation/paired_set.py and rl_cyclegan/evaluation/scene_metrics.py.
"""
import argparse
import json
import logging
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan import gin_utils  # noqa: E402
from rl_cyclegan.envs import grasping  # noqa: E402,F401  (registers the env's configurables)
from rl_cyclegan.evaluation import paired_set  # noqa: E402
from rl_cyclegan.evaluation import scene_metrics  # noqa: E402
from rl_cyclegan.cli import parse_size  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--output', required=True, help='path of the .npz to write')
  parser.add_argument('--num_states', type=int, default=64)
  parser.add_argument('--render_size', type=parse_size, default=(64, 80), help='HxW')
  parser.add_argument('--crop_size', type=parse_size, default=(64, 64), help='HxW')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--object_split', default='test', help="'test' (held out) or 'train'")
  parser.add_argument('--action_mode', default='auto_descend', help="'auto_descend' or 'full'")
  parser.add_argument('--steps_per_state', type=int, default=3)
  parser.add_argument('--policy', default='scripted', help="'scripted' or 'random'")
  parser.add_argument('--gin_bindings', action='append', default=[],
                      help="e.g. 'RealAppearance.real_gap = 0.75'")
  args = parser.parse_args(argv)
  try:
    gin_utils.parse_gin([], args.gin_bindings)
  except ValueError as e:
    parser.error(str(e))
  logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
  data = paired_set.make_paired_set(
      args.num_states, render_size=args.render_size, crop_size=args.crop_size, seed=args.seed,
      object_split=args.object_split, action_mode=args.action_mode,
      steps_per_state=args.steps_per_state, policy=args.policy)
  paired_set.save_paired_set(args.output, data)
  metrics = scene_metrics.evaluate_generator(None, data)
  print(json.dumps({'output': args.output, 'num_states': args.num_states,
                    'identity_baseline': {k: round(v, 4) for k, v in metrics.items()}}, indent=1))
