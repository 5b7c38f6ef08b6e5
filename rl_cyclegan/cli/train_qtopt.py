r"""Trains one QT-Opt Q-function (Sim-Only, Randomized-Sim, Real-Only, Sim+Real, final Q).

  python tools/train_qtopt.py --root_dir=/tmp/qtopt_sim \
      --gin_file=gin/qtopt_sim_only.gin [--gin_bindings='train_eval.num_train_steps = 100']

Gin files and bindings are parsed before anything is built, so an unknown configurable or
parameter fails at once, naming the binding. Re-running the same command resumes from the last
checkpoint. See rl_cyclegan/pipelines/train_qtopt.py.
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan import configurables  # noqa: E402,F401  (registers the configurables)
from rl_cyclegan import gin_utils  # noqa: E402
from rl_cyclegan.pipelines import train_qtopt  # noqa: E402


def main(argv=None):
  return gin_utils.run_training_binary(
      __doc__, train_qtopt.train_eval, 'train_eval.num_train_steps = 1000', argv)


if __name__ == '__main__':
  sys.exit(main())
