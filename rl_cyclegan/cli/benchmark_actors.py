r"""Prints collection env steps/s in-process vs 1 and 2 Reverb actor processes, and Reverb
insert / sample rates of transitions at 64x80 and 512x640. Figures only; on a shared machine
they are lower bounds.

  python tools/benchmark_actors.py --seconds=20 --actors=1,2 \
      --gin_bindings='Environment.num_envs = 1'

A training recipe in-process against N actor processes, the same wall time each (issue 21:
the Sim-Only recipe over 10 minutes; the rows run one after the other):

  python tools/benchmark_actors.py --actors= --sizes= --recipe_minutes=10 \
      --recipe_gin_file=gin/qtopt_sim_only.gin --recipe_actors=0,2 \
      --recipe_bindings="Replay.sim_episode_dir = '../runs/table1/data/sim_mix18'" \
      --recipe_bindings="Environment.render_size = (64, 80)"

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
  parser.add_argument('--recipe_minutes', type=float, default=0.0,
                      help='> 0: run the recipe for this long per configuration')
  parser.add_argument('--recipe_gin_file', action='append', default=[],
                      help='the recipe (tools/train_qtopt.py gin files); repeatable')
  parser.add_argument('--recipe_bindings', action='append', default=[], help='repeatable')
  parser.add_argument('--recipe_actors', default='0,2',
                      help='actor process counts of the recipe runs (0: in-process)')
  parser.add_argument('--recipe_dir', default=None, help='their run directories (default: tmp)')
  args = parser.parse_args(argv)
  if args.recipe_minutes > 0 and not args.recipe_gin_file:
    parser.error('--recipe_minutes needs --recipe_gin_file (e.g. gin/qtopt_sim_only.gin)')
  gin_utils.parse_gin(args.gin_file, args.gin_bindings)
  counts = [int(n) for n in args.actors.split(',') if n]
  if counts:
    benchmark_actors.collection_rates(runner.Settings(), counts, args.seconds)
  for item in filter(None, args.sizes.split(',')):
    render, crop = item.split(':')
    benchmark_actors.reverb_rates(tuple(int(v) for v in render.split('x')),
                                  tuple(int(v) for v in crop.split('x')), args.transitions)
  if args.recipe_minutes > 0:
    benchmark_actors.recipe_rates(
        args.recipe_gin_file, args.recipe_bindings, 60.0 * args.recipe_minutes,
        [int(n) for n in args.recipe_actors.split(',') if n], args.recipe_dir)
  return 0
