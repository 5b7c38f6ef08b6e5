r"""Prints collection env steps/s in-process vs 1 and 2 Reverb actor processes, and Reverb
insert / sample rates of transitions at 64x80 and 512x640. Figures only; on a shared machine
they are lower bounds.

  python tools/benchmark_actors.py --seconds=20 --actors=1,2 \
      --gin_bindings='Environment.num_envs = 1'

See rl_cyclegan/train/benchmark_actors.py.
"""
import argparse
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan import configurables  # noqa: E402,F401  (registers the configurables)
from rl_cyclegan import gin_utils  # noqa: E402
from rl_cyclegan.train import benchmark_actors  # noqa: E402
from rl_cyclegan.train import runner  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--seconds', type=float, default=20.0, help='measured per configuration')
  parser.add_argument('--actors', default='1,2', help='actor process counts ("" for none)')
  parser.add_argument('--sizes', default='64x80:64x64,512x640:472x472',
                      help='render:crop sizes of the Reverb rates ("" for none)')
  parser.add_argument('--transitions', type=int, default=256, help='inserted per size')
  parser.add_argument('--gin_file', action='append', default=[], help='repeatable')
  parser.add_argument('--gin_bindings', action='append', default=[], help='repeatable')
  args = parser.parse_args(argv)
  gin_utils.parse_gin(args.gin_file, args.gin_bindings)
  counts = [int(n) for n in args.actors.split(',') if n]
  if counts:
    benchmark_actors.collection_rates(runner.Settings(), counts, args.seconds)
  for item in filter(None, args.sizes.split(',')):
    render, crop = item.split(':')
    benchmark_actors.reverb_rates(tuple(int(v) for v in render.split('x')),
                                  tuple(int(v) for v in crop.split('x')), args.transitions)
  return 0
