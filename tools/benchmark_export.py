"""Latency of the exported grasp policy vs one batched Q forward pass.

Flags and code: rl_cyclegan/cli/benchmark_export.py, also installed as the console script
rl-cyclegan-benchmark-export. `python tools/benchmark_export.py --help` lists the flags.
"""
import sys

from rl_cyclegan import cli

cli.check_checkout(__file__)
from rl_cyclegan.cli.benchmark_export import main  # noqa: E402

if __name__ == '__main__':
  sys.exit(main())
