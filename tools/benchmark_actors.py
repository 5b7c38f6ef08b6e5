"""Collection env steps/s in-process vs Reverb actor processes; Reverb insert / sample rates.

Flags and code: rl_cyclegan/cli/benchmark_actors.py, also installed as the console script
rl-cyclegan-benchmark-actors. `python tools/benchmark_actors.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.benchmark_actors import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
