"""Translates every image of an episode directory with a frozen Sim2Real G.

Flags and code: rl_cyclegan/cli/translate_episodes.py, also installed as the console script
rl-cyclegan-translate-episodes. `python tools/translate_episodes.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.translate_episodes import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
