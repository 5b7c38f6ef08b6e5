"""Times the joint RL-CycleGAN train step (small and paper configs, f32/bf16).

Flags and code: rl_cyclegan/cli/benchmark.py, also installed as the console script
rl-cyclegan-benchmark. `python tools/benchmark.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.benchmark import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
