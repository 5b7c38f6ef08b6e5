"""How well a joint run's frozen G keeps the scene, on held-out paired renders.

Flags and code: rl_cyclegan/cli/generator_report.py, also installed as the console script
rl-cyclegan-generator-report. `python tools/generator_report.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.generator_report import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
