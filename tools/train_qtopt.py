"""Trains one QT-Opt Q-function (Sim-Only, Randomized-Sim, Real-Only, final Q).

Flags and code: rl_cyclegan/cli/train_qtopt.py, also installed as the console script
rl-cyclegan-train-qtopt. `python tools/train_qtopt.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.train_qtopt import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
