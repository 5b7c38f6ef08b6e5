"""Times the QT-Opt train step with and without terminal-target skipping.

Flags and code: rl_cyclegan/cli/benchmark_qtopt.py, also installed as the console script
rl-cyclegan-benchmark-qtopt. `python tools/benchmark_qtopt.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.benchmark_qtopt import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
