"""Picks a run's best Q-network snapshot by grasp success on validation episodes.

Flags and code: rl_cyclegan/cli/select_checkpoint.py, also installed as the console script
rl-cyclegan-select-checkpoint. `python tools/select_checkpoint.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.select_checkpoint import main, select  # noqa: E402,F401  (tests call select)

if __name__ == '__main__':
  sys.exit(main())
