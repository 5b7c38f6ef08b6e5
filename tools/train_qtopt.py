r"""Trains one QT-Opt Q-function (Sim-Only, Randomized-Sim, Real-Only, Sim+Real, final Q).

  python tools/train_qtopt.py --root_dir=/tmp/qtopt_sim \
      --gin_file=gin/qtopt_sim_only.gin [--gin_bindings='train_eval.num_train_steps = 100']

Gin files and bindings are parsed before anything is built, so an unknown configurable or
parameter fails at once, naming the binding. Re-running the same command resumes from the last
checkpoint. See rl_cyclegan/train/train_qtopt.py.
"""
import argparse
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import gin  # noqa: E402

from rl_cyclegan import configurables  # noqa: E402,F401  (registers the configurables)
from rl_cyclegan import policies  # noqa: E402,F401  (CEMPolicy)
from rl_cyclegan.learners import qtopt  # noqa: E402,F401  (QTOptLearner)
from rl_cyclegan.train import train_qtopt  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--root_dir', required=True, help='run directory (resumed if it exists)')
  parser.add_argument('--gin_file', action='append', default=[], help='repeatable')
  parser.add_argument('--gin_bindings', action='append', default=[],
                      help="repeatable, e.g. 'train_eval.num_train_steps = 1000'")
  args = parser.parse_args(argv)
  gin.add_config_file_search_path(os.path.join(REPO, 'gin'))
  for path in args.gin_file:
    if not os.path.isfile(path):
      parser.error(f'--gin_file {path!r} does not exist')
    gin.add_config_file_search_path(os.path.dirname(os.path.abspath(path)))
  try:
    gin.parse_config_files_and_bindings(args.gin_file, args.gin_bindings)
  except (ValueError, TypeError, SyntaxError, IOError) as e:
    print(f'gin config error: {e}', file=sys.stderr)
    return 2
  train_qtopt.train_eval(args.root_dir)
  return 0


if __name__ == '__main__':
  sys.exit(main())
