r"""Trains RL-CycleGAN jointly via QT-Opt (paper Section 4, Fig. 6): G, F, D_X, D_Y, Q_sim, Q_real.

  python tools/train_rl_cyclegan.py --root_dir=/tmp/rl_cyclegan \
      --gin_file=gin/rl_cyclegan.gin \
      --gin_bindings="train_rl_cyclegan.real_episode_dir = '/data/real_episodes'"

Ablations (paper Table 1): gin/rl_cyclegan_ablation_gan.gin, gin/rl_cyclegan_ablation_cyclegan.gin.
Gin files and bindings are parsed before anything is built, so an unknown configurable or
parameter fails at once, naming the binding. Re-running the same command resumes from the last
checkpoint. Then train the final Q with the frozen G (tools/train_qtopt.py, gin/final_q.gin).
See rl_cyclegan/train/train_rl_cyclegan.py.
"""
import argparse
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import gin  # noqa: E402

from rl_cyclegan import configurables  # noqa: E402,F401  (registers the configurables)
from rl_cyclegan.train import train_rl_cyclegan  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--root_dir', required=True, help='run directory (resumed if it exists)')
  parser.add_argument('--gin_file', action='append', default=[], help='repeatable')
  parser.add_argument('--gin_bindings', action='append', default=[],
                      help="repeatable, e.g. 'train_rl_cyclegan.num_train_steps = 1000'")
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
  train_rl_cyclegan.train_eval(args.root_dir)
  return 0


if __name__ == '__main__':
  sys.exit(main())
