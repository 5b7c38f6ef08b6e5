r"""Prints transitions/s of the episode input pipeline at 64x64 (from 64x80) and 472x472 (from
512x640) against an assumed train-step consumption rate. See rl_cyclegan/data/benchmark.py.

  python tools/benchmark_data.py [--seconds=5] [--batch_size=8] [--cpu_only]
"""
import argparse
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan.data import benchmark  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--seconds', type=float, default=5.0, help='measuring time per case')
  parser.add_argument('--batch_size', type=int, default=8)
  parser.add_argument('--cpu_only', action='store_true', help='skip the 512x640 case')
  args = parser.parse_args(argv)
  cases = (benchmark.CPU_CASE,) if args.cpu_only else (benchmark.CPU_CASE, benchmark.PAPER_CASE)
  benchmark.run(args.seconds, args.batch_size, cases)
  return 0
