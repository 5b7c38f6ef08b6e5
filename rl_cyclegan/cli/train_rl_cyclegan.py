r"""Trains RL-CycleGAN jointly via QT-Opt (paper Section 4, Fig. 6): G, F, D_X, D_Y, Q_sim, Q_real.

  python tools/train_rl_cyclegan.py --root_dir=/tmp/rl_cyclegan \
      --gin_file=gin/rl_cyclegan.gin \
      --gin_bindings="Replay.real_episode_dir = '/data/real_episodes'"

Ablations (paper Table 1): gin/rl_cyclegan_ablation_gan.gin, gin/rl_cyclegan_ablation_cyclegan.gin.
Gin files and bindings are parsed before anything is built, so an unknown configurable or
parameter fails at once, naming the binding. Re-running the same command resumes from the last
checkpoint. Then train the final Q with the frozen G (tools/train_qtopt.py, gin/final_q.gin).

Across learner workers (MultiWorkerMirroredStrategy): the same command on every worker with
--gin_bindings="train_rl_cyclegan.strategy = 'multi_worker'" and TF_CONFIG naming the workers
and this one (task 0 is the chief, whose --root_dir is the run; worker k keeps its own under
<root_dir>/workers/worker-k). Start and stop all workers together.
See rl_cyclegan/pipelines/train_rl_cyclegan.py.
"""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan import configurables  # noqa: E402,F401  (registers the configurables)
from rl_cyclegan import gin_utils  # noqa: E402
from rl_cyclegan.pipelines import train_rl_cyclegan  # noqa: E402


def main(argv=None):
  return gin_utils.run_training_binary(
      __doc__, train_rl_cyclegan.train_eval, 'train_rl_cyclegan.num_train_steps = 1000', argv,
      process_root_dir=train_rl_cyclegan.worker_root_dir)
