"""Trains RL-CycleGAN jointly via QT-Opt (paper Section 4, Fig. 6).

Flags and code: rl_cyclegan/cli/train_rl_cyclegan.py, also installed as the console script
rl-cyclegan-train-rl-cyclegan. `python tools/train_rl_cyclegan.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.train_rl_cyclegan import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
