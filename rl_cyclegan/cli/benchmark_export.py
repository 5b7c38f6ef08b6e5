r"""Latency of the exported grasp policy vs one batched Q forward pass (rl_cyclegan/export).

  # Random-weight small networks, exported to a temporary directory first:
  python tools/benchmark_export.py --gin_file=gin/networks_small.gin \
      --render_size=64x80 --crop_size=64x64
  # Existing exports (tools/export.py --what=q_function,policy):
  python tools/benchmark_export.py --export_dir=/tmp/export

Prints the median per-call latency of policy grasp (batch 1, after warmup), of Q on a batch of
CEM-sample size (64) and of Q on 1 frame x 64 candidates, and the ratios.
"""
import argparse
import json
import os
import sys
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan.export import benchmark  # noqa: E402
from rl_cyclegan.cli import REPO, parse_size  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--export_dir', default=None,
                      help='holds policy/ and q_function/; default: export random networks')
  parser.add_argument('--gin_file', action='append', default=None,
                      help='network config for random networks (default gin/networks_small.gin)')
  parser.add_argument('--gin_bindings', action='append', default=[])
  parser.add_argument('--render_size', type=parse_size, default=(64, 80))
  parser.add_argument('--crop_size', type=parse_size, default=(64, 64))
  parser.add_argument('--num_calls', type=int, default=50, help='timed calls (median)')
  parser.add_argument('--warmup', type=int, default=5)
  parser.add_argument('--num_samples', type=int, default=None,
                      help="Q batch size (default: the policy's CEM samples, 64)")
  parser.add_argument('--output_json', default=None)
  args = parser.parse_args(argv)

  with tempfile.TemporaryDirectory(prefix='benchmark_export_') as tmp:
    export_dir = args.export_dir
    if export_dir is None:
      gin_files = args.gin_file or [os.path.join(REPO, 'gin', 'networks_small.gin')]
      print(f'exporting random-weight networks ({", ".join(gin_files)}) to {tmp}',
            file=sys.stderr)
      benchmark.export_random_networks(tmp, gin_files, args.gin_bindings, args.render_size,
                                       args.crop_size)
      export_dir = tmp
    try:
      results = benchmark.benchmark_exports(export_dir, num_calls=args.num_calls,
                                            warmup=args.warmup, num_samples=args.num_samples)
    except FileNotFoundError as e:
      parser.error(str(e))
  print(benchmark.format_results(results))
  if args.output_json:
    with open(args.output_json, 'w') as f:
      json.dump(results, f, indent=2, sort_keys=True)
      f.write('\n')
  return 0
