"""Tests for rl_cyclegan/qtopt.py: the clipped double-Q target value with fake Q networks."""
import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan import cem
from rl_cyclegan import qtopt

BATCH = 6


class FakeQNetwork:
  """Implements the two Q-network methods target_value uses, in closed form.

  embedding = mean of the image per example, [B, 1, 1, 1].
  logit(s, a) = scale * (embedding + gripper_weight * gripper_state[0]
                         - ||a[:3] - peak||^2 + terminate_bonus * a[7]).
  """

  def __init__(self, peak, gripper_weight, terminate_bonus=0.0, scale=1.0):
    self.peak = np.asarray(peak, np.float32)
    self.gripper_weight = gripper_weight
    self.terminate_bonus = terminate_bonus
    self.scale = tf.Variable(scale)
    self.embed_calls = 0

  def embed_image(self, image, training=False):
    assert not training
    self.embed_calls += 1
    return tf.reduce_mean(image, axis=[1, 2, 3], keepdims=True)  # [B, 1, 1, 1]

  def logits_from_embedding(self, embedding, gripper_state, actions, training=False):
    assert not training
    base = embedding[:, 0, 0, :] + self.gripper_weight * gripper_state[:, :1]  # [B, 1]
    distance = tf.reduce_sum(tf.square(actions[..., :3] - self.peak), axis=-1)  # [B, N]
    return self.scale * (base - distance + self.terminate_bonus * actions[..., 7])

  def numpy_logits(self, image, gripper_state, actions):
    """NumPy reference: image [B, H, W, 3], gripper_state [B, 2], actions [B, 8] -> [B]."""
    base = image.mean(axis=(1, 2, 3)) + self.gripper_weight * gripper_state[:, 0]
    distance = ((actions[:, :3] - self.peak)**2).sum(axis=-1)
    return float(self.scale.numpy()) * (base - distance + self.terminate_bonus * actions[:, 7])


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _observation(seed=0, batch=BATCH):
  rng = np.random.RandomState(seed)
  gripper = np.stack([np.arange(batch) % 2, rng.uniform(0, 0.3, batch)], -1)
  return {'image': rng.uniform(-1, 1, [batch, 4, 5, 3]).astype(np.float32),
          'gripper_state': gripper.astype(np.float32)}


def _networks(terminate_bonus=0.0):
  # Different peaks (so the argmax of network 2 differs from that of network 1) and opposite
  # gripper terms (so the min is network 1 on some rows and network 2 on others).
  net1 = FakeQNetwork([0.2, -0.3, 0.1], gripper_weight=-2.0, terminate_bonus=terminate_bonus)
  net2 = FakeQNetwork([-0.5, 0.6, -0.4], gripper_weight=2.0)
  return net1, net2


def _expected(net1, net2, obs, seed, allowed_modes=None, **cem_kwargs):
  """min of the two networks' NumPy Q at CEM's argmax of network 1 (same seed)."""
  embedding = net1.embed_image(tf.constant(obs['image']))
  net1.embed_calls -= 1

  def score_fn(actions):
    return net1.logits_from_embedding(embedding, tf.constant(obs['gripper_state']), actions)

  best, _ = cem.cem_maximize(score_fn, len(obs['image']), allowed_modes=allowed_modes,
                             seed=seed, **cem_kwargs)
  best = best.numpy()
  q1 = _sigmoid(net1.numpy_logits(obs['image'], obs['gripper_state'], best))
  q2 = _sigmoid(net2.numpy_logits(obs['image'], obs['gripper_state'], best))
  return np.minimum(q1, q2), q1, q2, best


def test_min_of_both_networks_at_argmax_of_first():
  net1, net2 = _networks()
  obs = _observation()
  value = qtopt.target_value(net1, net2, obs, seed=0)
  expected, q1, q2, _ = _expected(net1, net2, obs, seed=0)
  assert value.shape == (BATCH,)
  # The fakes make the min come from each network on some rows.
  assert np.any(q1 < q2) and np.any(q2 < q1)
  np.testing.assert_allclose(value, expected, rtol=1e-5)
  assert np.all((value.numpy() >= 0.0) & (value.numpy() <= 1.0))
  # Each image is embedded once per network, however many CEM rounds score actions.
  assert net1.embed_calls == 1 and net2.embed_calls == 1


def test_argmax_comes_from_network_1_not_2():
  net1, net2 = _networks()
  obs = _observation(seed=1)
  value = qtopt.target_value(net1, net2, obs, seed=0)
  swapped = qtopt.target_value(net2, net1, obs, seed=0)
  # Swapping the roles moves a* to network 2's peak; the values must change.
  assert not np.allclose(value, swapped, rtol=0.1)
  np.testing.assert_allclose(swapped, _expected(net2, net1, obs, seed=0)[0], rtol=1e-5)


def test_allowed_modes_passed_to_cem():
  # Network 1 gives 'terminate' a large bonus; with move-only CEM can't use it.
  net1, net2 = _networks(terminate_bonus=3.0)
  obs = _observation(seed=2)
  expected, _, _, best = _expected(net1, net2, obs, seed=3, allowed_modes=[1, 0, 0, 0])
  np.testing.assert_array_equal(best[:, 5:], 0.0)
  value = qtopt.target_value(net1, net2, obs, allowed_modes=[1, 0, 0, 0], seed=3)
  np.testing.assert_allclose(value, expected, rtol=1e-5)
  expected_all, _, _, best_all = _expected(net1, net2, obs, seed=3)
  assert np.all(best_all[:, 7] == 1.0)
  np.testing.assert_allclose(qtopt.target_value(net1, net2, obs, seed=3), expected_all,
                             rtol=1e-5)


def test_no_gradient_flows():
  net1, net2 = _networks()
  with tf.GradientTape() as tape:
    value = qtopt.target_value(net1, net2, _observation(), seed=0)
    loss = tf.reduce_sum(value)
  assert tape.gradient(loss, [net1.scale, net2.scale]) == [None, None]


def test_tf_function_in_strategy_with_unknown_batch():
  net1, net2 = _networks()
  strategy = tf.distribute.OneDeviceStrategy('/cpu:0')
  spec = {'image': tf.TensorSpec([None, 4, 5, 3], tf.float32),
          'gripper_state': tf.TensorSpec([None, 2], tf.float32)}

  @tf.function(input_signature=[spec])
  def step(obs):
    return strategy.run(
        lambda o: qtopt.target_value(net1, net2, o, num_samples=32, seed=4), args=(obs,))

  for batch in (3, 5):
    obs = _observation(seed=batch, batch=batch)
    value = step(obs)
    assert value.shape == (batch,)
    np.testing.assert_allclose(
        value, _expected(net1, net2, obs, seed=4, num_samples=32)[0], rtol=1e-5)


def test_unseeded_values_stay_in_range():
  net1, net2 = _networks()
  value = qtopt.target_value(net1, net2, _observation())
  assert np.all((value.numpy() >= 0.0) & (value.numpy() <= 1.0))
  with pytest.raises(ValueError, match='num_elites'):
    qtopt.target_value(net1, net2, _observation(), num_samples=4, num_elites=5)


def test_done_rows_are_skipped_and_get_zero():
  net1, net2 = _networks()
  obs = _observation(seed=2)
  done = np.array([0, 1, 0, 0, 1, 0], np.float32)
  value = qtopt.target_value(net1, net2, obs, seed=5, done=done)
  assert value.shape == (BATCH,)
  np.testing.assert_array_equal(value.numpy()[done == 1], 0.0)
  live = {k: v[done == 0] for k, v in obs.items()}
  # The live rows are exactly target_value of the live sub-batch (same seed, same CEM draws).
  np.testing.assert_allclose(value.numpy()[done == 0],
                             qtopt.target_value(net1, net2, live, seed=5), rtol=1e-6)
  assert np.all(value.numpy()[done == 0] > 0.0)
  # And close to the full-batch value there (CEM draws differ with the batch size).
  np.testing.assert_allclose(value.numpy()[done == 0],
                             qtopt.target_value(net1, net2, obs, seed=5).numpy()[done == 0],
                             atol=0.05)


def test_all_terminal_batch_in_a_graph():
  net1, net2 = _networks()
  fn = tf.function(lambda o, d: qtopt.target_value(net1, net2, o, seed=1, done=d))
  obs = _observation(seed=3)
  np.testing.assert_array_equal(fn(obs, np.ones(BATCH, np.float32)), np.zeros(BATCH))
  value = fn(obs, np.zeros(BATCH, np.float32))  # same trace, no row skipped
  np.testing.assert_allclose(value, qtopt.target_value(net1, net2, obs, seed=1), rtol=1e-6)
