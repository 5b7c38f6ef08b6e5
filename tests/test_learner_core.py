"""Tests of rl_cyclegan/learners/core.py, what the QT-Opt and RL-CycleGAN learners share."""

import ast
import pathlib
import types

import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan import specs
from rl_cyclegan.learners import core

LEARNERS_DIR = pathlib.Path(core.__file__).parent


def _transitions(reward, done):
  n = len(reward)
  obs = {'image': tf.zeros([n, 8, 8, 3]), 'gripper_state': tf.zeros([n, 2])}
  return specs.Transition(obs, tf.zeros([n, 8]), tf.constant(reward, tf.float32), obs,
                          tf.constant(done, tf.float32))


def test_td_loss_hand_worked():
  """Eq. 5 over a sim part and a real part, with lambda_RL-real on the real rows.

  gamma 0.9, V(s') = [0.5, 0.8, 0.4]:
    sim  r = [1, 0], done = [1, 0] -> y = [1, 0.9 * 0.8] = [1, 0.72]
    real r = [0],    done = [0]    -> y = [0.9 * 0.4] = [0.36]
  mse on Q = sigmoid(0) = 0.5: l = [0.25, 0.0484, 0.0196];
  L = (0.25 + 0.0484 + 0.1 * 0.0196) / 3 = 0.10012.
  """
  critic = types.SimpleNamespace(gamma=0.9, td_distance='mse', mix_returns=lambda t, r: t)
  sources = [(_transitions([1.0, 0.0], [1.0, 0.0]), 1.0), (_transitions([0.0], [0.0]), 0.1)]
  loss, target = core.td_loss(critic, tf.zeros([3]), sources, tf.constant([0.5, 0.8, 0.4]))
  np.testing.assert_allclose(target, [1.0, 0.72, 0.36], rtol=1e-6)
  np.testing.assert_allclose(loss, 0.10012, rtol=1e-5)
  # The critic's distance applies: log loss of logit 0 is log 2 whatever the label.
  critic.td_distance = 'log_loss'
  loss, _ = core.td_loss(critic, tf.zeros([3]), sources, tf.constant([0.5, 0.8, 0.4]))
  np.testing.assert_allclose(loss, (2 + 0.1) / 3 * np.log(2.0), rtol=1e-6)


def test_td_loss_passes_returns_to_the_critic():
  """Monte Carlo returns enter through critic.mix_returns, here (1 - w) y + w G, w = 0.5."""
  critic = types.SimpleNamespace(gamma=0.9, td_distance='mse',
                                 mix_returns=lambda t, r: 0.5 * t + 0.5 * r)
  sources = [(_transitions([1.0, 0.0], [1.0, 1.0]), 1.0)]  # terminal: y = r
  _, target = core.td_loss(critic, tf.zeros([2]), sources, tf.zeros([2]),
                           returns=tf.constant([0.0, 1.0]))
  np.testing.assert_allclose(target, [0.5, 0.5], rtol=1e-6)


def test_check_batch_names_the_field():
  spec = specs.model_observation_spec((8, 8))
  good = _transitions([1.0], [1.0])
  core.check_batch(good, spec, 'sim_batch')
  with pytest.raises(ValueError, match=r'sim_batch\.reward'):
    core.check_batch(good._replace(reward=tf.zeros([1, 2])), spec, 'sim_batch')
  with pytest.raises(ValueError, match='expected a specs.Transition'):
    core.check_batch((1, 2), spec, 'sim_batch')


def test_dtype_policy_is_restored():
  with core.dtype_policy('mixed_bfloat16'):
    assert tf.keras.mixed_precision.global_policy().name == 'mixed_bfloat16'
  assert tf.keras.mixed_precision.global_policy().name == 'float32'
  with core.dtype_policy(None):
    assert tf.keras.mixed_precision.global_policy().name == 'float32'


def test_distribute_splits_per_replica(mirrored_strategy):
  batch = {'a': tf.range(4)}
  assert core.distribute(tf.distribute.get_strategy(), batch) is batch  # one replica
  assert core.distribute(mirrored_strategy, None) is None
  split = core.distribute(mirrored_strategy, batch)
  np.testing.assert_array_equal(core.local_value(split['a']), [0, 1])
  assert [v.numpy().tolist() for v in split['a'].values] == [[0, 1], [2, 3]]
  scales = mirrored_strategy.run(core.replica_scale)
  assert [s.numpy() for s in scales.values] == [0.5, 0.5]


def test_apply_gradients_skips_variables_without_a_gradient():
  used, unused = tf.Variable(1.0), tf.Variable(1.0)
  opt_used, opt_unused = tf.keras.optimizers.SGD(0.5), tf.keras.optimizers.SGD(0.5)
  with tf.GradientTape() as tape:
    loss = 3.0 * used
  core.apply_gradients(tape, loss, [([used], opt_used), ([unused], opt_unused)])
  assert used.numpy() == -0.5 and unused.numpy() == 1.0  # 1 - 0.5 * 3
  assert opt_used.iterations.numpy() == 1 and opt_unused.iterations.numpy() == 0


def _imports(path):
  """(module, names) of every import statement of a file."""
  out = []
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom):
      out.append((node.module, [a.name for a in node.names]))
    elif isinstance(node, ast.Import):
      out.extend((a.name, []) for a in node.names)
  return out


@pytest.mark.parametrize('learner', ['qtopt', 'rl_cyclegan'])
def test_a_learner_imports_no_other_learner_and_no_private_name(learner):
  allowed = {'core', 'critic'}
  for module, names in _imports(LEARNERS_DIR / f'{learner}.py'):
    assert not any(n.startswith('_') for n in names), (module, names)
    if module == 'rl_cyclegan.learners':
      assert set(names) <= allowed, names
    else:
      assert not (module or '').startswith('rl_cyclegan.learners.'), module
