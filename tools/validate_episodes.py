"""Checks every record of every episode file in a directory.

Flags and code: rl_cyclegan/cli/validate_episodes.py, also installed as the console script
rl-cyclegan-validate-episodes. `python tools/validate_episodes.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.validate_episodes import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
