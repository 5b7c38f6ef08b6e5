"""Transitions/s of the episode input pipeline.

Flags and code: rl_cyclegan/cli/benchmark_data.py, also installed as the console script
rl-cyclegan-benchmark-data. `python tools/benchmark_data.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.benchmark_data import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
