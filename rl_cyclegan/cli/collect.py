r"""Collects off-policy grasping episodes into sharded TFRecords (resumable).

  python tools/collect.py --appearance=real --policy=scripted --num_episodes=100 \
      --output_dir=/tmp/real_episodes [--episodes_per_shard=10 --num_workers=2 \
      --render_size=64x80 --action_mode=auto_descend --object_split=train --seed=0 --max_steps=5 \
      --appearance_kwargs='{"real_gap": 0.5}']

Re-running the same command skips complete shards and fills in missing ones. See
rl_cyclegan/actors/collect.py and docs/episode_format.md.
"""
import argparse
import json
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan import specs  # noqa: E402
from rl_cyclegan.actors import collect  # noqa: E402
from rl_cyclegan.cli import parse_json_object, parse_range, parse_size  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--output_dir', required=True)
  parser.add_argument('--appearance', default='real', help="'sim', 'real' or 'randomized'")
  parser.add_argument('--policy', default='scripted', help="'scripted' or 'random'")
  parser.add_argument('--num_episodes', type=int, required=True)
  parser.add_argument('--episodes_per_shard', type=int, default=10)
  parser.add_argument('--num_workers', type=int, default=2, help='0: collect in this process')
  parser.add_argument('--render_size', type=parse_size, default=specs.DEFAULT_RENDER_SIZE,
                      help='HxW (paper: 512x640)')
  parser.add_argument('--action_mode', default='auto_descend', help="'auto_descend' or 'full'")
  parser.add_argument('--object_split', default='train', help="'train' or 'test'")
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--max_steps', type=int, default=None, help="default: the env's")
  parser.add_argument('--num_objects', type=int, default=None, help="default: the env's")
  parser.add_argument('--image_format', default='png', help="'png' (lossless) or 'jpeg'")
  parser.add_argument('--noise_scale', type=parse_range, default=None,
                      help="'low,high': per-episode factor on the scripted policy's noise "
                      "(e.g. '0,1': from noise-free to the default noise); default: fixed noise")
  parser.add_argument('--appearance_kwargs', type=parse_json_object, default=None,
                      help='JSON object of appearance arguments, e.g. \'{"real_gap": 0.5}\' '
                      '(envs/appearance.py); default: the appearance\'s own')
  parser.add_argument('--progress_interval', type=float, default=5.0, help='seconds')
  args = parser.parse_args(argv)
  config = collect.CollectConfig(
      appearance=args.appearance, policy=args.policy, num_episodes=args.num_episodes,
      episodes_per_shard=args.episodes_per_shard, render_size=args.render_size,
      action_mode=args.action_mode, object_split=args.object_split, seed=args.seed,
      max_steps=args.max_steps, num_objects=args.num_objects, image_format=args.image_format,
      noise_scale=args.noise_scale, appearance_kwargs=args.appearance_kwargs)
  try:
    collect.check_config(config)
  except ValueError as e:
    parser.error(str(e))
  summary = collect.collect(args.output_dir, config, num_workers=args.num_workers,
                            progress_interval=args.progress_interval)
  print(json.dumps({k: v for k, v in summary.items() if k != 'config'}, indent=2, sort_keys=True))
  return 0
