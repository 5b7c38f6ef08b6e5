"""Builds the fixed held-out set of paired sim/real renders (evaluation only).

Flags and code: rl_cyclegan/cli/make_paired_set.py, also installed as the console script
rl-cyclegan-make-paired-set. `python tools/make_paired_set.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.make_paired_set import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
