"""The kill test: tiny training runs SIGKILLed at seeded random moments, then audited.

Flags and code: rl_cyclegan/cli/chaos.py, also installed as the console script
rl-cyclegan-chaos. `python tools/chaos.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.chaos import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
