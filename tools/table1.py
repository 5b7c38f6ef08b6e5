"""Paper Table 1 in the pseudo-real world, every row as resumable stages (make table1).

Flags and code: rl_cyclegan/cli/table1.py, also installed as the console script
rl-cyclegan-table1. `python tools/table1.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.table1 import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
