"""A QT-Opt actor process: envs and CEM policy, episodes into the learner's Reverb table.

Flags and code: rl_cyclegan/cli/qtopt_actor.py, also installed as the console script
rl-cyclegan-qtopt-actor. `python tools/qtopt_actor.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.qtopt_actor import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
