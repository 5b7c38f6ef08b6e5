"""Exports SavedModels for robot controllers from a training run.

Flags and code: rl_cyclegan/cli/export.py, also installed as the console script
rl-cyclegan-export. `python tools/export.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.export import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
