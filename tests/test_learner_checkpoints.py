"""Checkpoints written in the old layout restore into both learners and resume.

tests/testdata/learner_checkpoints/ holds checkpoints that the learners wrote with
``tf.train.Checkpoint(**learner.checkpoint_items()).save(...)`` before they shared
learners/core.py (commit ac41c19), with the tiny networks of their tests at 32x32, after three
train steps: the layout that runs in progress (and committed results) restore from. A change to
a checkpoint key or to the attribute structure of a network or optimizer fails here.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

import test_qtopt_learner  # noqa: E402  (tests/ is on sys.path under pytest)
import test_rl_cyclegan_learner  # noqa: E402

pytestmark = pytest.mark.usefixtures('eager_train_steps')  # the step after the restore

TESTDATA = os.path.join(os.path.dirname(__file__), 'testdata', 'learner_checkpoints')


def restore_old_layout(learner, prefix, tmp_path):
  """Restores ``prefix`` into ``learner`` and checks a save has its keys, shapes and values."""
  checkpoint = tf.train.Checkpoint(**learner.checkpoint_items())
  status = checkpoint.restore(prefix)
  status.assert_consumed()  # every stored value has a home, and every variable a value
  status.assert_existing_objects_matched()
  path = checkpoint.save(str(tmp_path / 'ckpt'))
  old = dict(tf.train.list_variables(prefix))
  assert dict(tf.train.list_variables(path)) == old  # same keys and shapes
  for key in old:
    if not key.startswith(('_CHECKPOINTABLE_OBJECT_GRAPH', 'save_counter')):
      np.testing.assert_array_equal(tf.train.load_variable(path, key),
                                    tf.train.load_variable(prefix, key), key)
  assert learner.train_step_counter.numpy() == 3


def test_rl_cyclegan_checkpoint_in_the_old_layout_restores_and_resumes(tmp_path):
  tests = test_rl_cyclegan_learner
  learner = tests.make_learner()
  restore_old_layout(learner, os.path.join(TESTDATA, 'rl_cyclegan', 'ckpt-1'), tmp_path)
  for name in ('G_sim2real', 'F_real2sim', 'D_Y_real', 'D_X_sim'):
    assert learner.optimizers[name].iterations.numpy() == 3
  info = learner.train_step(tests.make_batch(1), tests.make_batch(2))
  assert np.isfinite(info.total.numpy()) and learner.train_step_counter.numpy() == 4


def test_qtopt_checkpoint_in_the_old_layout_restores_and_resumes(tmp_path):
  tests = test_qtopt_learner
  learner = tests.make_learner(real_loss_weight=0.3)
  restore_old_layout(learner, os.path.join(TESTDATA, 'qtopt', 'ckpt-1'), tmp_path)
  assert learner.critic.optimizer.iterations.numpy() == 3
  info = learner.train_step(tests.make_batch(1), tests.make_batch(2))
  assert np.isfinite(info.loss.numpy()) and learner.train_step_counter.numpy() == 4
