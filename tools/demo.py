"""The main job (make demo): collect, train RL-CycleGAN and the final Q, evaluate, export.

Flags and code: rl_cyclegan/cli/demo.py, also installed as the console script
rl-cyclegan-demo. `python tools/demo.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.demo import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
