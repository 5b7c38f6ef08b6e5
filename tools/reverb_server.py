"""The Reverb server of distributed QT-Opt collection, as its own process.

Flags and code: rl_cyclegan/cli/reverb_server.py, also installed as the console script
rl-cyclegan-reverb-server. `python tools/reverb_server.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.reverb_server import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
