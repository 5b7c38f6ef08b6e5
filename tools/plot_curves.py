"""Plots grasp success against train step from training runs' evaluations.

Flags and code: rl_cyclegan/cli/plot_curves.py, also installed as the console script
rl-cyclegan-plot-curves. `python tools/plot_curves.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.plot_curves import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
