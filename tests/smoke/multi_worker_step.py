"""One joint RL-CycleGAN train step under a strategy, from saved initial weights (used by
tests/smoke/test_multi_worker.py, in the test process and as each worker's __main__).

  TF_CONFIG=... python tests/smoke/multi_worker_step.py <init checkpoint prefix> <output npz>
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

# The tiny learner and batches of tests/test_rl_cyclegan_learner.py.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GLOBAL_BATCH = 8  # per domain; 2 replicas of 4


def networks(learner):
  """Every network of the learner (critics' targets included), by a stable name."""
  out = {n.name: n for n in learner.gan_networks}
  for c in learner.critics:
    out.update({c.name: c.network, f'{c.name}_target_1': c.target_1,
                f'{c.name}_target_2': c.target_2})
  return out


def step(strategy, init_prefix=None, save_init=None):
  """Builds the tiny learner under ``strategy``, restores ``init_prefix`` (or saves its initial
  weights to ``save_init``), runs one step on the fixed global batch.

  Returns ({loss name: value}, {network/variable: array after the step}).
  """
  from rl_cyclegan.learners import core  # pylint: disable=g-import-not-at-top
  import test_rl_cyclegan_learner as t  # pylint: disable=g-import-not-at-top
  learner = t.make_learner(strategy=strategy)
  nets = networks(learner)
  if init_prefix:
    tf.train.Checkpoint(**nets).read(init_prefix).assert_existing_objects_matched()
  if save_init:
    tf.train.Checkpoint(**nets).write(save_init)
  sim, real = t.make_batch(1, batch=GLOBAL_BATCH), t.make_batch(2, batch=GLOBAL_BATCH)
  info = learner.train_step(core.distribute(strategy, sim), core.distribute(strategy, real))
  losses = {k: float(v.numpy()) for k, v in info._asdict().items()
            if isinstance(v, tf.Tensor) and v.shape.rank == 0}
  weights = {f'{name}/{v.name}': v.numpy() for name, net in nets.items()
             for v in net.trainable_variables}
  return losses, weights


def main(init_prefix, out_path):
  from rl_cyclegan.train import loop  # pylint: disable=g-import-not-at-top
  strategy = loop.make_strategy('multi_worker')
  losses, weights = step(strategy, init_prefix)
  if strategy.cluster_resolver.task_id == 0:  # the chief writes
    np.savez(out_path, **{f'loss:{k}': v for k, v in losses.items()}, **weights)


if __name__ == '__main__':
  main(*sys.argv[1:3])
