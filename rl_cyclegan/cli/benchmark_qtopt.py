"""Times the QT-Opt train step with and without terminal-target skipping, in one process.

  python tools/benchmark_qtopt.py                          # spatial Q, 64x64, batch 32 and 64
  python tools/benchmark_qtopt.py --batches=32 --done_fraction=0.125 --steps=50
  python tools/benchmark_qtopt.py --final_q    # Sim-Only vs final Q with cached G vs G per step
  python tools/benchmark_qtopt.py --normalizations=none,layer,batch,layer_all   # Q norms
"""
import argparse
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan import benchmark  # pylint: disable=g-import-not-at-top
from rl_cyclegan.cli import parse_size  # pylint: disable=g-import-not-at-top


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--gin_file', default='networks_spatial.gin', help='under gin/')
  parser.add_argument('--crop', type=parse_size, default=(64, 64), help='HxW')
  parser.add_argument('--batches', default='32,64', help='comma list of batch sizes')
  parser.add_argument('--done_fraction', type=float, default=0.2,
                      help='terminal share of the batch (5-step episodes: 0.2)')
  parser.add_argument('--steps', type=int, default=20, help='timed steps per row')
  parser.add_argument('--final_q', action='store_true',
                      help='time replay sample + train step of Sim-Only, the final Q with the '
                      'cached G and the final Q with G in every step (first --batches value)')
  parser.add_argument('--normalizations', default=None,
                      help='comma list of Q-network normalizations (none, layer, batch, '
                      "layer_all, batch_all; '_all': the head's convs too): time the step with "
                      'each (first --batches value)')
  args = parser.parse_args(argv)
  try:
    batches = [int(b) for b in args.batches.split(',')]
  except ValueError:
    parser.error(f'--batches must be a comma list of ints, got {args.batches!r}')
  if args.normalizations:
    names = [n.strip() for n in args.normalizations.split(',')]
    bad = [n for n in names if n not in benchmark.NORMALIZATION_VARIANTS]
    if bad:
      parser.error(f'--normalizations: unknown {", ".join(bad)}; valid: '
                   f'{", ".join(benchmark.NORMALIZATION_VARIANTS)}')
    benchmark.run_normalizations(args.gin_file, args.crop, batch=batches[0],
                                 done_fraction=args.done_fraction, steps=args.steps,
                                 variants=names)
    return
  if args.final_q:
    benchmark.run_final_q(args.gin_file, args.crop, batch=batches[0], steps=args.steps)
    return
  try:
    benchmark.run_qtopt(args.gin_file, args.crop, batches, args.done_fraction, args.steps)
  except ValueError as e:
    parser.error(str(e))
