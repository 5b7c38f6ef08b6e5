r"""Paper Table 1 in the pseudo-real world, every row as resumable stages (``make table1``).

  python tools/table1.py [--rows=all] [--work_dir=../runs/table1] [--dry_run]
  python tools/table1.py --rows=rl_cyclegan_seed0,cyclegan_seed0   # the headline rows first
  python tools/table1.py --summarize_only      # publish finished stages, write
                                               # results/table1/summary.json, docs/table1.{md,png}
  python tools/table1.py --real_gap=0.75 --work_dir=../runs/table1_gap075 \
      --results_dir=results/table1_real_gap0.75   # the table in another pseudo-real world
  python tools/table1.py --rows=rl_cyclegan_seed0,cyclegan_seed0 --joint_only
                                       # both joint runs and their reports before any final Q
  python tools/table1.py --rows=rl_cyclegan_seed0,cyclegan_seed0 --data_only
                                       # only the logs those rows still read (e.g. collected
                                       # beside another runner's training, at low priority)
  python tools/table1.py --q_normalization=layer --work_dir=../runs/table1_qlayer \
      --results_dir=results/table1_qlayer --data_dir=../runs/table1/data
                                       # every Q-function with layer norm (a variant), on the
                                       # logs of the plain table

Prints the plan (each stage with its estimated time; finished stages are skipped), then runs
the stages: data, joint training, generator report, translation, final Q, evaluation. A killed
stage resumes from its checkpoint when the same command runs again. Rows: sim_only,
randomized_sim, gan, cyclegan (seeds 0 and 1), graspgan, rl_cyclegan (seeds 0 and 1),
real_oracle; the levers and the second final Qs (cyclegan_fq, rl_cyclegan_fq, real_oracle_fq)
by name; 'cyclegan' means both seeds, 'cyclegan_seed0' one. See
rl_cyclegan/pipelines/table1.py and docs/table1.md.
"""
import argparse
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan.cli import REPO  # noqa: E402
from rl_cyclegan.pipelines import table1  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--rows', default='all', help='comma-separated rows, or all')
  parser.add_argument('--work_dir', default=os.path.join(os.path.dirname(REPO), 'runs',
                                                         'table1'),
                      help='run directories (outside the repo)')
  parser.add_argument('--scale', default='full', choices=sorted(table1.SCALES),
                      help="'tiny': seconds-long stages (tests)")
  parser.add_argument('--results_dir', default=None, help='default: results/table1')
  parser.add_argument('--docs_dir', default=None, help='default: docs')
  parser.add_argument('--real_gap', type=float, default=None,
                      help="another pseudo-real world (envs/appearance.py); default: the "
                      "project's, 1.0. Needs its own --work_dir and --results_dir")
  parser.add_argument('--q_normalization', default=None, choices=table1.Q_NORMALIZATIONS,
                      help='a Q-network variant: GraspingQNetwork.normalization for every '
                      'Q-function of the table (Sim-Only is trained again with it). Needs its '
                      'own --work_dir and --results_dir')
  parser.add_argument('--data_dir', default=None,
                      help='the logs and paired set (default: <work_dir>/data); another table '
                      "of the same world can lend its own, e.g. ../runs/table1/data")
  parser.add_argument('--dry_run', action='store_true', help='print the plan only')
  parser.add_argument('--joint_only', action='store_true',
                      help="only the generator rows' joint part: joint run, generator report, "
                      'its Q_real in real, oracle-Q report; look at them before the final Qs')
  parser.add_argument('--data_only', action='store_true',
                      help="only the data stages (logs, paired set) the rows' unfinished "
                      'stages read; a runner of those rows waits for a log being collected '
                      'instead of collecting it twice')
  parser.add_argument('--summarize_only', action='store_true',
                      help="copy the rows' finished files to results/ and write the summary")
  args = parser.parse_args(argv)
  try:
    table = table1.Table1(args.work_dir, REPO, table1.SCALES[args.scale],
                          results_dir=args.results_dir, docs_dir=args.docs_dir,
                          real_gap=args.real_gap, q_normalization=args.q_normalization,
                          data_dir=args.data_dir)
    rows = table1.expand_rows([r for r in args.rows.split(',') if r])
    stages = table.stages(rows, joint_only=args.joint_only)
    if args.data_only:
      stages = [st for st in stages if st.name.startswith('data/')]
    if not args.dry_run:
      table.check_world()
  except ValueError as e:
    parser.error(str(e))
  if args.dry_run:
    print(table.plan(stages))
    return 0
  if not args.summarize_only:
    from rl_cyclegan.train import loop  # pylint: disable=g-import-not-at-top
    try:
      with loop.sigterm_as_exception():  # SIGTERM stops the running stage's binary too
        table.run(stages)
    except table1.StageError as e:
      print(f'table1: {e}', file=sys.stderr)
      return 1
    except (KeyboardInterrupt, loop.Terminate):
      print('table1: interrupted; the running stage was stopped (training binaries save a '
            'checkpoint first); run the same command again to resume', file=sys.stderr)
      return 130
    finally:
      for row in rows:
        table1.publish_row(table, row)
      table1.summarize(table)
  else:  # e.g. after runners that were killed: publish what finished, then summarize
    for row in rows:
      table1.publish_row(table, row)
    table1.summarize(table)
  print(f'summary: {os.path.join(table.results_dir, "summary.json")}; '
        f"{os.path.join(table.docs_dir, table.doc_name + '.md')}")
  return 0
