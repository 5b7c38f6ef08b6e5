"""GraspingEnv throughput.

Flags and code: rl_cyclegan/cli/benchmark_env.py, also installed as the console script
rl-cyclegan-benchmark-env. `python tools/benchmark_env.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.benchmark_env import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
