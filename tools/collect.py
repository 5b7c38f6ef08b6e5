"""Collects off-policy grasping episodes into sharded TFRecords (resumable).

Flags and code: rl_cyclegan/cli/collect.py, also installed as the console script
rl-cyclegan-collect. `python tools/collect.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.collect import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
