r"""The kill test (issue 20): tiny training runs SIGKILLed at seeded random moments, then audited.

  python tools/chaos.py                                  # 10 kills of train_qtopt, 5 of
                                                         # train_rl_cyclegan (~15-25 min)
  python tools/chaos.py --pipelines=train_qtopt --kills=3 --steps=40

Each pipeline runs once without a kill (the reference), then in a fresh directory under
--work_dir it is SIGKILLed --kills times (once in the start-up, then at random train steps;
seeded by --seed), re-run each time, and finally run to the end. The table counts evaluations missing against
the reference, durable episodes lost, episodes in progress at a kill (at most the number of
envs per kill), duplicate episode ids and seeds, and corrupt files. Exit status 1 if any count
breaks its rule. See rl_cyclegan/pipelines/chaos.py.
"""
import argparse
import os
import sys
import tempfile

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan import fileio  # noqa: E402
from rl_cyclegan.cli import REPO  # noqa: E402
from rl_cyclegan.pipelines import chaos  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--pipelines', default='train_qtopt,train_rl_cyclegan',
                      help='comma-separated: train_qtopt, train_rl_cyclegan')
  parser.add_argument('--kills', default=None, type=int,
                      help='kills per pipeline (default: 10 train_qtopt, 5 train_rl_cyclegan)')
  parser.add_argument('--steps', default=60, type=int, help='train steps of each tiny run')
  parser.add_argument('--eval_interval', default=20, type=int)
  parser.add_argument('--seed', default=0, type=int, help='seeds the kill moments')
  parser.add_argument('--work_dir', default=None, help='default: a new temporary directory')
  parser.add_argument('--output_json', default=None, help='also write the rows here')
  args = parser.parse_args(argv)
  available = chaos.pipelines(args.steps, args.eval_interval)
  names = [n for n in args.pipelines.split(',') if n]
  unknown = [n for n in names if n not in available]
  if unknown:
    parser.error(f'unknown pipeline(s) {unknown}; valid: {", ".join(available)}')
  default_kills = {'train_qtopt': 10, 'train_rl_cyclegan': 5}
  work_dir = args.work_dir or tempfile.mkdtemp(prefix='chaos-')
  print(f'chaos: work_dir {work_dir}', flush=True)
  rows = []
  for i, name in enumerate(names):
    kills = args.kills if args.kills is not None else default_kills[name]
    rows.append(chaos.kill_test(REPO, work_dir, available[name], kills, args.seed + i,
                                log=lambda m: print(m, flush=True)))
  print(chaos.format_table(rows))
  broken = {r['pipeline']: chaos.violations(r) for r in rows if chaos.violations(r)}
  for name, problems in broken.items():
    print(f'{name}: ' + '; '.join(problems), file=sys.stderr)
  if args.output_json:
    fileio.write_json_atomic(args.output_json, rows)
  return 1 if broken else 0
