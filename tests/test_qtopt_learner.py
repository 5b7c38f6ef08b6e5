"""Tests of the single-Q QT-Opt learner (rl_cyclegan/learners/qtopt.py)."""

import functools
import logging

import gin
import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan import hardware
from rl_cyclegan import specs
from rl_cyclegan.learners import qtopt as qtopt_lib
from rl_cyclegan.networks import q_network as q_network_lib

# Eager train steps (tests/conftest.py), except in the tests marked traced: a QT-Opt step's
# trace (CEM over the target networks included) is most of a one-step test's time.
pytestmark = pytest.mark.usefixtures('eager_train_steps')
SIZE = (32, 32)
TINY_Q = functools.partial(
    q_network_lib.GraspingQNetwork, stem_filters=8, tower_filters=(8,),
    state_action_fc_units=(16,), merged_filters=(8,), final_filters=(8,), fc_units=(8,))


def make_batch(seed, batch=4, size=SIZE, reward=None, done=None):
  """A random transition batch of model observations per specs."""
  rng = np.random.default_rng(seed)

  def obs():
    return {'image': tf.constant(rng.uniform(-1, 1, (batch, *size, 3)), tf.float32),
            'gripper_state': tf.constant(rng.uniform(0, 1, (batch, 2)), tf.float32)}

  r = rng.integers(0, 2, batch) if reward is None else np.broadcast_to(reward, [batch])
  d = r if done is None else np.broadcast_to(done, [batch])
  return specs.Transition(
      observation=obs(),
      action=specs.encode_action(rng.uniform(-1, 1, (batch, 4)), rng.integers(0, 4, batch)),
      reward=tf.constant(r, tf.float32), next_observation=obs(), done=tf.constant(d, tf.float32))


def make_learner(**kwargs):
  tf.random.set_seed(0)
  return qtopt_lib.QTOptLearner(**dict(dict(crop_size=SIZE, q_network_fn=TINY_Q), **kwargs))


def _sigmoid_ce(logits, labels):
  """NumPy reference of tf.nn.sigmoid_cross_entropy_with_logits."""
  return np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))


def _set_constant_logit(network, bias):
  """Zero the logit layer's kernel: the network outputs ``bias`` for every (s, a)."""
  layer = network._fc[-1]  # pylint: disable=protected-access  (the 1-unit 'logit' Dense)
  layer.kernel.assign(tf.zeros_like(layer.kernel))
  layer.bias.assign(tf.fill(layer.bias.shape, float(bias)))


@pytest.mark.traced
def test_loss_decreases_on_a_fixed_batch():
  learner = make_learner(learning_rate=3e-3)
  sim = make_batch(1, reward=[1, 0, 1, 0], done=1.0)  # terminal: a stationary target
  first = learner.train_step(sim)  # ~log(2) = 0.69 at initialization
  for _ in range(40):
    last = learner.train_step(sim)
  assert last.loss.numpy() < 0.5 * first.loss.numpy()  # measured: 0.01-0.05 x over 5 inits
  assert learner.train_step_counter.numpy() == 41
  assert np.isnan(last.td_real.numpy())  # no real batch


def test_real_loss_weight_matches_hand_computation():
  """loss = (sum_sim l_i + lambda * sum_real l_i) / (B_s + B_r), l_i = CE(logit_i, r_i)."""
  lam = 0.3
  learner = make_learner(real_loss_weight=lam)
  sim = make_batch(1, batch=4, reward=[1, 0, 1, 1], done=1.0)  # done = 1: target = reward
  real = make_batch(2, batch=2, reward=[0, 1], done=1.0)
  logits = [learner.q_network((b.observation, b.action))[0].numpy() for b in (sim, real)]
  l_sim = _sigmoid_ce(logits[0], sim.reward.numpy())  # [4]
  l_real = _sigmoid_ce(logits[1], real.reward.numpy())  # [2]
  info = learner.train_step(sim, real)
  expected = (l_sim.sum() + lam * l_real.sum()) / 6.0
  np.testing.assert_allclose(info.loss.numpy(), expected, rtol=1e-5)
  np.testing.assert_allclose(info.td_sim.numpy(), l_sim.mean(), rtol=1e-5)
  np.testing.assert_allclose(info.td_real.numpy(), l_real.mean(), rtol=1e-5)
  q = 1 / (1 + np.exp(-np.concatenate(logits)))
  np.testing.assert_allclose(info.mean_q.numpy(), q.mean(), rtol=1e-5)
  np.testing.assert_allclose(info.q_std.numpy(), q.std(), rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(info.target_q.numpy(), 4 / 6, rtol=1e-6)  # mean reward


def test_real_only_batch_is_weighted_by_lambda():
  learner = make_learner(real_loss_weight=2.0)
  real = make_batch(3, batch=4, reward=1.0, done=1.0)
  logits = learner.q_network((real.observation, real.action))[0].numpy()
  info = learner.train_step(None, real)
  np.testing.assert_allclose(info.loss.numpy(), 2.0 * _sigmoid_ce(logits, 1.0).mean(), rtol=1e-5)
  assert np.isnan(info.td_sim.numpy())


def test_targets_come_from_the_lagged_networks():
  """V(s') = min over the two target networks (not the online one); targets lag."""
  learner = make_learner()
  critic = learner.critic
  _set_constant_logit(critic.network, -3.0)  # online: sigmoid(-3) = 0.047
  _set_constant_logit(critic.target_1, 2.0)  # sigmoid(2) = 0.881
  _set_constant_logit(critic.target_2, 1.0)  # sigmoid(1) = 0.731: the min
  sim = make_batch(4, reward=0.0, done=0.0)
  info = learner.train_step(sim)
  gamma = critic.gamma
  np.testing.assert_allclose(info.target_q.numpy(), gamma / (1 + np.exp(-1.0)), rtol=1e-5)

  # Target 1 is a Polyak average; target 2 is copied from target 1 every target_2_period.
  critic.target_update_tau = 0.5
  critic.target_2_period = 3  # the next step is step 2 (no copy), then step 3 (copy)
  learner._train_step_fn = tf.function(learner._distributed_train_step)  # retrace: new tau
  online0 = [v.numpy().copy() for v in critic.network.trainable_variables]
  t1_0 = [v.numpy().copy() for v in critic.target_1.trainable_variables]
  t2_0 = [v.numpy().copy() for v in critic.target_2.trainable_variables]
  learner.train_step(sim)
  for a, o1, t1 in zip(t1_0, critic.network.trainable_variables,
                       critic.target_1.trainable_variables):
    np.testing.assert_allclose(t1.numpy(), 0.5 * a + 0.5 * o1.numpy(), rtol=1e-5, atol=1e-6)
  assert any(not np.array_equal(a, b.numpy())
             for a, b in zip(online0, critic.network.trainable_variables))
  for a, b in zip(t2_0, critic.target_2.trainable_variables):
    np.testing.assert_array_equal(a, b.numpy())  # step 2: not refreshed
  learner.train_step(sim)
  for a, b in zip(critic.target_1.trainable_variables, critic.target_2.trainable_variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())  # step 3: copied


def test_mc_return_weight_mixes_returns_into_the_target():
  """target = (1 - w) (r + gamma V(s')) + w G, with V(s') from the lagged networks."""
  import gin  # pylint: disable=g-import-not-at-top
  gin.clear_config()
  gin.bind_parameter('QTOptCritic.mc_return_weight', 0.25)
  try:
    learner = make_learner()
  finally:
    gin.clear_config()
  assert learner.needs_returns
  _set_constant_logit(learner.critic.target_1, 1.0)
  _set_constant_logit(learner.critic.target_2, 1.0)  # V(s') = sigmoid(1) on live rows
  sim = make_batch(4, reward=[0.0, 1.0, 0.0, 0.0], done=[0.0, 1.0, 0.0, 0.0])
  real = make_batch(5, batch=2, reward=0.0, done=0.0)
  sim_returns = tf.constant([0.81, 1.0, 0.0, 0.9])
  real_returns = tf.constant([0.0, 0.729])
  td = np.full(6, 0.9 / (1 + np.exp(-1.0)))  # gamma * V(s') on live rows
  td[1] = 1.0  # terminal: the reward
  expected = 0.75 * td + 0.25 * np.concatenate([sim_returns.numpy(), real_returns.numpy()])
  info = learner.train_step(sim, real, sim_returns=sim_returns, real_returns=real_returns)
  np.testing.assert_allclose(info.target_q.numpy(), expected.mean(), rtol=1e-5)
  with pytest.raises(ValueError, match="sim_batch's Monte Carlo returns"):
    learner.train_step(sim)
  # Without the weight the returns are ignored: the plain TD target.
  plain = make_learner()
  _set_constant_logit(plain.critic.target_1, 1.0)
  _set_constant_logit(plain.critic.target_2, 1.0)
  info = plain.train_step(sim, real, sim_returns=sim_returns, real_returns=real_returns)
  np.testing.assert_allclose(info.target_q.numpy(), td.mean(), rtol=1e-5)


def test_image_transform_applies_to_sim_images_only():
  """With a transform that blanks images, Q on sim rows ignores the sim images."""
  learner = make_learner(learning_rate=0.0, image_transform=tf.zeros_like)
  sim, real = make_batch(5, reward=1.0, done=1.0), make_batch(6, reward=1.0, done=1.0)
  other_images = make_batch(7, reward=1.0, done=1.0).observation['image']
  sim2 = sim._replace(observation=dict(sim.observation, image=other_images))
  real2 = real._replace(observation=dict(real.observation, image=other_images))
  base = learner.train_step(sim, real)
  np.testing.assert_allclose(learner.train_step(sim2, real).td_sim.numpy(),
                             base.td_sim.numpy(), rtol=1e-6)
  assert not np.isclose(learner.train_step(sim, real2).td_real.numpy(), base.td_real.numpy(),
                        rtol=1e-6)


def test_checkpoint_items_restore_everything():
  learner = make_learner()
  learner.train_step(make_batch(1))
  items = learner.checkpoint_items()
  assert set(items) == {'q_network', 'q_target_1', 'q_target_2', 'q_optimizer', 'train_step'}
  assert items['q_network'] is learner.q_network


def test_learning_rate_schedule_follows_the_step_and_survives_resume(tmp_path):
  """Step decay per train step; a resumed learner uses its config, not the stored rate."""
  learner = make_learner(learning_rate=1e-3, learning_rate_boundaries=(2, 4),
                         learning_rate_decay=0.1)
  rates = []
  for _ in range(5):
    before = learner.q_network.trainable_variables[0].numpy()
    learner.train_step(make_batch(1))
    rates.append(float(learner.critic.optimizer.learning_rate.numpy()))
    assert not np.array_equal(before, learner.q_network.trainable_variables[0].numpy())
  np.testing.assert_allclose(rates, [1e-3, 1e-3, 1e-4, 1e-4, 1e-5], rtol=1e-6)
  path = tf.train.Checkpoint(**learner.checkpoint_items()).save(str(tmp_path / 'ckpt'))

  # Resume with a constant 5e-4: the checkpoint holds Adam's last rate (1e-5) and step 5.
  resumed = make_learner(learning_rate=5e-4)
  tf.train.Checkpoint(**resumed.checkpoint_items()).restore(path).assert_consumed()
  assert resumed.train_step_counter.numpy() == 5
  np.testing.assert_allclose(resumed.critic.optimizer.learning_rate.numpy(), 1e-5, rtol=1e-6)
  resumed.train_step(make_batch(1))
  np.testing.assert_allclose(resumed.critic.optimizer.learning_rate.numpy(), 5e-4, rtol=1e-6)

  with pytest.raises(ValueError, match=r'strictly increasing.*\[4, 2\]'):
    make_learner(learning_rate_boundaries=(4, 2))
  with pytest.raises(ValueError, match=r'decay must be in \(0, 1\], got 2'):
    make_learner(learning_rate_boundaries=(4,), learning_rate_decay=2)


def test_bad_inputs_name_the_spec():
  learner = make_learner()
  with pytest.raises(ValueError, match=r'sim_batch\.observation\[.image.\].*\[32, 32, 3\]'):
    learner.train_step(make_batch(1, size=(24, 32)))
  with pytest.raises(ValueError, match=r'real_batch\.action.*\[8\]'):
    good = make_batch(1)
    learner.train_step(good, good._replace(action=tf.zeros([4, 7])))
  with pytest.raises(ValueError, match='neither'):
    learner.train_step(None, None)
  with pytest.raises(tf.errors.InvalidArgumentError, match='td_loss'):
    bad = make_batch(1, done=1.0)
    learner.train_step(bad._replace(reward=tf.constant([np.nan] * 4, tf.float32)))


def _layer_compute_dtypes(network):
  return {m.compute_dtype for m in network.submodules if isinstance(m, tf.keras.layers.Layer)}


def test_mixed_precision_falls_back_to_float32_without_native_bf16(monkeypatch, caplog):
  """True on a CPU without bf16 (issue 21's EPYC, bf16 6x slower) builds in float32 and
  warns; 'force' builds in bfloat16 there without reading the CPU; True on a bf16 CPU: bf16."""
  epyc = hardware.CpuInfo('AMD EPYC 7B13', 'x86', ())
  monkeypatch.setattr(hardware, 'cpu_info', lambda: epyc)
  with caplog.at_level(logging.WARNING):
    learner = make_learner(mixed_precision=True)
  assert learner.compute_dtype == 'float32'
  assert _layer_compute_dtypes(learner.q_network) == {'float32'}
  [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
  assert 'AMD EPYC 7B13' in warning and 'avx512_bf16' in warning
  assert "QTOptLearner.mixed_precision = 'force'" in warning

  def no_cpu_read():
    raise AssertionError('False and force must not depend on the CPU')

  monkeypatch.setattr(hardware, 'cpu_info', no_cpu_read)
  gin.parse_config("QTOptLearner.mixed_precision = 'force'")  # the gin binding works
  learner = make_learner()
  assert learner.compute_dtype == 'bfloat16'
  assert 'bfloat16' in _layer_compute_dtypes(learner.q_network)
  assert all(v.dtype == tf.float32 for v in learner.q_network.trainable_variables)
  gin.clear_config()
  assert make_learner(mixed_precision=False).compute_dtype == 'float32'

  monkeypatch.setattr(hardware, 'cpu_info',
                      lambda: hardware.CpuInfo('Intel Xeon', 'x86', ('avx512_bf16',)))
  monkeypatch.setattr(hardware, 'measure_bf16_speedup', lambda: 1.4)
  assert make_learner(mixed_precision=True).compute_dtype == 'bfloat16'
  # Native flags but bf16 measured slower (AVX512_BF16 without AMX): float32.
  monkeypatch.setattr(hardware, 'measure_bf16_speedup', lambda: 0.7)
  assert make_learner(mixed_precision=True).compute_dtype == 'float32'
  assert tf.keras.mixed_precision.global_policy().name == 'float32'  # restored after builds


@pytest.mark.parametrize('value', ['bf16', 1, None])
def test_bad_mixed_precision_names_the_binding(value):
  with pytest.raises(ValueError, match=r"QTOptLearner\.mixed_precision = .*expected False.*"
                                       r"True.*'force'"):
    make_learner(mixed_precision=value)


@pytest.mark.traced
def test_bfloat16_and_mirrored_strategy(mirrored_strategy):
  learner = make_learner(mixed_precision='force')  # bf16 on any CPU
  assert learner.compute_dtype == 'bfloat16'
  assert tf.keras.mixed_precision.global_policy().name == 'float32'  # restored after build
  info = learner.train_step(make_batch(1), make_batch(2))
  assert all(v.dtype == tf.float32 for v in learner.q_network.trainable_variables)
  assert info.loss.dtype == tf.float32 and np.isfinite(info.loss.numpy())

  strategy = mirrored_strategy
  learner = make_learner(strategy=strategy)
  before = [v.numpy().copy() for v in learner.q_network.trainable_variables]
  info = learner.train_step(learner.distribute(make_batch(1, batch=8)),
                            learner.distribute(make_batch(2, batch=4)))
  assert np.isfinite(info.loss.numpy())
  assert learner.train_step_counter.numpy() == 1
  assert any(not np.array_equal(a, b.numpy())
             for a, b in zip(before, learner.q_network.trainable_variables))


def _moving_means(network):
  return np.concatenate([v.numpy().ravel() for v in network.variables
                         if 'moving_mean' in v.name])


def test_batch_norm_statistics_reach_the_target_networks():
  """QT-Opt's batch norm (GraspingQNetwork.normalization='batch'): a train step updates the
  online network's moving statistics, and the Polyak update carries them into target 1, whose
  inference calls (the CEM target) read them."""
  gin.parse_config(['QTOptCritic.target_update_tau = 0.5'])
  learner = make_learner(q_network_fn=functools.partial(TINY_Q, normalization='batch'))
  online, target_1 = learner.critic.network, learner.critic.target_1
  assert np.all(_moving_means(online) == 0.0) and np.all(_moving_means(target_1) == 0.0)
  info = learner.train_step(make_batch(1), make_batch(2))
  assert np.isfinite(info.loss.numpy())
  assert np.any(_moving_means(online) != 0.0)
  np.testing.assert_allclose(_moving_means(target_1), 0.5 * _moving_means(online), rtol=1e-5,
                             atol=1e-7)


@pytest.mark.traced
def test_normalized_q_network_trains_in_bfloat16_under_mirrored_strategy(mirrored_strategy):
  """Layer norm in bf16, and batch norm synchronized across the two replicas."""
  learner = make_learner(q_network_fn=functools.partial(TINY_Q, normalization='layer'),
                         mixed_precision='force')
  info = learner.train_step(make_batch(1), make_batch(2))
  assert info.loss.dtype == tf.float32 and np.isfinite(info.loss.numpy())
  learner = make_learner(q_network_fn=functools.partial(TINY_Q, normalization='batch'),
                         strategy=mirrored_strategy)
  info = learner.train_step(learner.distribute(make_batch(1, batch=8)),
                            learner.distribute(make_batch(2, batch=4)))
  assert np.isfinite(info.loss.numpy())
  assert np.any(_moving_means(learner.q_network) != 0.0)
