"""Times the joint RL-CycleGAN train step: small (64x64) and paper (472x472) configs, f32/bf16.

  python tools/benchmark.py                       # both configs, both precisions
  python tools/benchmark.py --configs=small --precisions=bf16 --steps=20
  python tools/benchmark.py --configs=paper --batch=2 --steps=1   # 8+8 needs ~40 GB in f32

The first lines name the CPU and whether it has native bf16 arithmetic (AVX512_BF16 / AMX-BF16,
aarch64 BF16). bf16 rows run in bf16 on any CPU (forced), so a CPU without native bf16 shows
its slowdown; training with mixed_precision=True would use f32 there.
"""
import argparse
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan import benchmark  # pylint: disable=g-import-not-at-top


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--configs', default='small,paper', help='comma list of small, paper')
  parser.add_argument('--precisions', default='f32,bf16', help='comma list of f32, bf16')
  parser.add_argument('--steps', type=int, default=None,
                      help='timed steps per run (default: 10 small, 2 paper)')
  parser.add_argument('--batch', type=int, default=None,
                      help='images per domain per step (default 8, i.e. 8 real + 8 sim)')
  args = parser.parse_args(argv)
  benchmark.run(args.configs.split(','), args.precisions.split(','), args.steps, args.batch)
