"""Times the joint RL-CycleGAN train step: small (64x64) and paper (472x472) configs, f32/bf16.

  python tools/benchmark.py                       # both configs, both precisions
  python tools/benchmark.py --configs=small --precisions=bf16 --steps=20
  python tools/benchmark.py --configs=paper --batch=2 --steps=1   # no recompute: 8+8 needs ~40 GB
  python tools/benchmark.py --memory --crops=64,128,256 --batch=1  # peak RSS, recompute_grad
  python tools/benchmark.py --profile --configs=small --precisions=f32,bf16  # per-op time
  python tools/benchmark.py --memory --crops=472 --batch=8 --precisions=f32 --recompute=on

The first lines name the CPU and whether it has native bf16 arithmetic (AVX512_BF16 / AMX-BF16,
aarch64 BF16). bf16 rows run in bf16 on any CPU (forced), so a CPU without native bf16 shows
its slowdown; training with mixed_precision=True would use f32 there.
"""
import argparse
import json
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan import benchmark  # pylint: disable=g-import-not-at-top


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--configs', default='small,paper',
                      help="comma list of small, spatial (the Table 1 joint runs' networks), "
                      'paper')
  parser.add_argument('--precisions', default='f32,bf16', help='comma list of f32, bf16')
  parser.add_argument('--steps', type=int, default=None,
                      help='timed steps per run (default: 10 small, 2 paper)')
  parser.add_argument('--batch', type=int, default=None,
                      help='images per domain per step (default 8, i.e. 8 real + 8 sim)')
  parser.add_argument('--memory', action='store_true',
                      help='peak RSS and step time of the paper networks\' joint step per crop '
                      'and recompute_grad setting, each in a fresh process')
  parser.add_argument('--crops', default='64,128,256', help='--memory: comma list of crops')
  parser.add_argument('--recompute', default='off,on',
                      help='--memory: comma list of off, on (gradient checkpointing)')
  parser.add_argument('--profile', action='store_true',
                      help='per-kernel time of the joint step (TF profiler) and each conv '
                      'family\'s GFLOP/s against the matmul peak')
  parser.add_argument('--memory_child', default=None, help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.memory_child:  # one --memory row, in the process that run_memory started
    print(json.dumps(benchmark.memory_step(**json.loads(args.memory_child))), flush=True)
    return 0
  if args.profile:
    benchmark.run_profile(args.configs.split(','), args.precisions.split(','),
                          args.steps or 5, args.batch)
    return 0
  if args.memory:
    recompute = {'off': False, 'on': True}
    modes = args.recompute.split(',')
    if not set(modes) <= set(recompute):
      parser.error(f'--recompute takes off and/or on, got {args.recompute!r}')
    precisions = args.precisions.split(',')
    if len(precisions) != 1:
      parser.error('--memory measures one precision: pass --precisions=f32 or bf16')
    benchmark.run_memory([int(c) for c in args.crops.split(',')], args.batch or 1,
                         [recompute[m] for m in modes], precisions[0], args.steps or 2)
    return 0
  benchmark.run(args.configs.split(','), args.precisions.split(','), args.steps, args.batch)


if __name__ == '__main__':
  import sys  # pylint: disable=g-import-not-at-top
  sys.exit(main())
