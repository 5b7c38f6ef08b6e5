"""Evaluates grasp success on unseen (test) objects with a 95% Wilson interval.

Flags and code: rl_cyclegan/cli/evaluate.py, also installed as the console script
rl-cyclegan-evaluate. `python tools/evaluate.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.evaluate import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
