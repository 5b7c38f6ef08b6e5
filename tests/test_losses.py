"""Tests for rl_cyclegan/losses.py: hand-worked values and NumPy references."""
import math

import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan import losses

LOG2 = math.log(2.0)


def _np_sigmoid_ce(logits, labels):
  """Reference sigmoid cross-entropy: max(x, 0) - x z + log(1 + exp(-|x|))."""
  x, z = np.asarray(logits, np.float64), np.asarray(labels, np.float64)
  return np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x)))


def _np_sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def _np_gan_d(real, fake, loss_type):
  if loss_type == 'non_saturating':
    return _np_sigmoid_ce(real, 1.0).mean() + _np_sigmoid_ce(fake, 0.0).mean()
  return ((real - 1.0)**2).mean() + (fake**2).mean()


def _np_gan_g(fake, loss_type):
  if loss_type == 'non_saturating':
    return _np_sigmoid_ce(fake, 1.0).mean()
  return ((fake - 1.0)**2).mean()


# ----------------------------------------------------------------------------- GAN, eq. 1


def test_gan_hand_worked_values():
  zeros = tf.zeros([2, 3, 3, 1])
  # Non-saturating, all logits 0: D = 0.5 everywhere; CE(0, 1) = CE(0, 0) = log 2.
  # D loss = log 2 + log 2; G loss = log 2.
  np.testing.assert_allclose(losses.gan_discriminator_loss(zeros, zeros), 2 * LOG2, rtol=1e-6)
  np.testing.assert_allclose(losses.gan_generator_loss(zeros), LOG2, rtol=1e-6)
  # Least squares: real = [1, 3] -> mean((0, 2)^2) = 2; fake = [0, 2] -> mean((0, 2)^2) = 2.
  # D loss = 2 + 2 = 4. G loss on fake = [0, 2]: mean((-1, 1)^2) = 1.
  real = tf.reshape([1.0, 3.0], [2, 1, 1, 1])
  fake = tf.reshape([0.0, 2.0], [2, 1, 1, 1])
  np.testing.assert_allclose(
      losses.gan_discriminator_loss(real, fake, loss_type='least_squares'), 4.0, rtol=1e-6)
  np.testing.assert_allclose(
      losses.gan_generator_loss(fake, loss_type='least_squares'), 1.0, rtol=1e-6)
  # Non-saturating, a confident correct D: real = 10, fake = -10 -> D loss ~ 2 * 4.54e-5.
  # G loss on fake = -10: -log sigmoid(-10) = 10.0000454.
  big = 10.0 * tf.ones([1, 2, 2, 1])
  np.testing.assert_allclose(losses.gan_discriminator_loss(big, -big), 2 * 4.53989e-5, rtol=1e-4)
  np.testing.assert_allclose(losses.gan_generator_loss(-big), 10.0000454, rtol=1e-6)


@pytest.mark.parametrize('loss_type', ['non_saturating', 'least_squares'])
def test_gan_matches_numpy_reference(loss_type):
  rng = np.random.RandomState(0)
  real = rng.randn(3, 5, 4, 1).astype(np.float32) * 2
  fake = rng.randn(3, 5, 4, 1).astype(np.float32) * 2
  np.testing.assert_allclose(
      losses.gan_discriminator_loss(real, fake, loss_type=loss_type),
      _np_gan_d(real, fake, loss_type), rtol=1e-5)
  np.testing.assert_allclose(
      losses.gan_generator_loss(fake, loss_type=loss_type), _np_gan_g(fake, loss_type),
      rtol=1e-5)


@pytest.mark.parametrize('loss_type', ['non_saturating', 'least_squares'])
def test_gan_multi_scale_is_mean_over_scales(loss_type):
  rng = np.random.RandomState(1)
  # Three scales of different spatial size (a plain mean over all elements would weight the
  # largest scale most; the loss must weight the scales equally).
  sizes = [(8, 8), (4, 4), (2, 2)]
  real = [rng.randn(2, h, w, 1).astype(np.float32) + 1 for h, w in sizes]
  fake = [rng.randn(2, h, w, 1).astype(np.float32) - 1 for h, w in sizes]
  expected_d = np.mean([_np_gan_d(r, f, loss_type) for r, f in zip(real, fake)])
  expected_g = np.mean([_np_gan_g(f, loss_type) for f in fake])
  np.testing.assert_allclose(
      losses.gan_discriminator_loss(real, fake, loss_type=loss_type), expected_d, rtol=1e-5)
  np.testing.assert_allclose(
      losses.gan_generator_loss(fake, loss_type=loss_type), expected_g, rtol=1e-5)
  pooled = _np_gan_g(np.concatenate([f.ravel() for f in fake]), loss_type)
  assert abs(expected_g - pooled) > 1e-3  # The check above can tell the two apart.


def test_gan_errors():
  x = tf.zeros([1, 2, 2, 1])
  with pytest.raises(ValueError, match="non_saturating.*least_squares"):
    losses.gan_discriminator_loss(x, x, loss_type='wasserstein')
  with pytest.raises(ValueError, match='wasserstein'):
    losses.gan_generator_loss(x, loss_type='wasserstein')
  with pytest.raises(ValueError, match='3 discriminator scales.*2'):
    losses.gan_discriminator_loss([x, x, x], [x, x])


def test_gan_bfloat16_logits_give_float32_loss():
  loss = losses.gan_generator_loss(tf.zeros([2, 2, 2, 1], tf.bfloat16))
  assert loss.dtype == tf.float32
  np.testing.assert_allclose(loss, LOG2, rtol=1e-6)


# ----------------------------------------------------------------------------- cycle, eq. 2


def test_cycle_consistency():
  # Hand-worked: x = 0, F(G(x)) = 1 everywhere -> 1; y = 1, G(F(y)) = [[-1, 1]] -> mean(4, 0) = 2.
  x = tf.zeros([1, 1, 2, 1])
  y = tf.ones([1, 1, 2, 1])
  y_cycled = tf.reshape([-1.0, 1.0], [1, 1, 2, 1])
  np.testing.assert_allclose(
      losses.cycle_consistency_loss(x, tf.ones_like(x), y, y_cycled), 3.0, rtol=1e-6)
  # NumPy reference, with sim and real batches of different sizes.
  rng = np.random.RandomState(2)
  x, xc = rng.randn(2, 4, 6, 3), rng.randn(2, 4, 6, 3)
  y, yc = rng.randn(3, 5, 5, 3), rng.randn(3, 5, 5, 3)
  expected = ((xc - x)**2).mean() + ((yc - y)**2).mean()
  args = [tf.constant(a, tf.float32) for a in (x, xc, y, yc)]
  np.testing.assert_allclose(losses.cycle_consistency_loss(*args), expected, rtol=1e-5)
  with pytest.raises(ValueError, match='x and x_cycled'):
    losses.cycle_consistency_loss(args[0], args[2], args[2], args[3])


# ----------------------------------------------------------------------------- RL-scene, eq. 4


def test_rl_scene_consistency_hand_worked():
  # x triple: q_x = [1, 0], q'_x = [0, 0], q''_x = [1, 1]
  #   d(q_x, q'_x) = mean(1, 0) = 0.5; d(q_x, q''_x) = mean(0, 1) = 0.5;
  #   d(q'_x, q''_x) = mean(1, 1) = 1.
  # y triple: q_y = 0.5, q'_y = 0.5, q''_y = 0.25 -> 0 + 0.0625 + 0.0625.
  # Total = 2.125.
  q = lambda *v: tf.constant(v, tf.float32)
  loss = losses.rl_scene_consistency_loss(
      q(1, 0), q(0, 0), q(1, 1), q(0.5, 0.5, 0.5), q(0.5, 0.5, 0.5), q(0.25, 0.25, 0.25))
  np.testing.assert_allclose(loss, 2.125, rtol=1e-6)


def test_rl_scene_consistency_numpy_reference_and_gradient():
  rng = np.random.RandomState(3)
  qs = [rng.rand(4).astype(np.float32) for _ in range(6)]
  x, xp, xpp, y, yp, ypp = qs
  mse = lambda a, b: ((a - b)**2).mean()
  expected = (mse(x, xp) + mse(x, xpp) + mse(xp, xpp) + mse(y, yp) + mse(y, ypp) +
              mse(yp, ypp))
  variables = [tf.Variable(q) for q in qs]
  with tf.GradientTape() as tape:
    loss = losses.rl_scene_consistency_loss(*variables)
  np.testing.assert_allclose(loss, expected, rtol=1e-5)
  # No stop_gradient: every one of the six Q-values gets a gradient (paper Appendix A).
  grads = tape.gradient(loss, variables)
  # d/dq_x = 2/B * ((q_x - q'_x) + (q_x - q''_x)).
  np.testing.assert_allclose(grads[0], 2 / 4 * ((x - xp) + (x - xpp)), rtol=1e-5)
  assert all(g is not None for g in grads)
  with pytest.raises(ValueError, match='q_x and q_x_prime'):
    losses.rl_scene_consistency_loss(x[:, None], x, x, y, y, y)


# ----------------------------------------------------------------------------- TD, eqs. 3 and 5


def test_td_target_masks_done():
  # r + 0.9 (1 - done) V: [0 + 0.9 * 0.5, 1 + 0 (terminal), -0.05 + 0.9 * 1.0] = [0.45, 1, 0.85].
  target = losses.td_target(reward=tf.constant([0.0, 1.0, -0.05]),
                            done=tf.constant([0.0, 1.0, 0.0]),
                            next_value=tf.constant([0.5, 0.8, 1.0]))
  np.testing.assert_allclose(target, [0.45, 1.0, 0.85], rtol=1e-6)
  target = losses.td_target(tf.constant([0.0]), tf.constant([0.0]), tf.constant([1.0]),
                            gamma=0.5)
  np.testing.assert_allclose(target, [0.5], rtol=1e-6)
  with pytest.raises(ValueError, match='reward and next_value'):
    losses.td_target(tf.zeros([3]), tf.zeros([3]), tf.zeros([3, 1]))


def test_td_loss_log_loss_hand_worked_and_clip():
  # Logit 0: CE(0, t) = log 2 for any label t.
  np.testing.assert_allclose(
      losses.td_loss(tf.zeros([3]), tf.constant([0.0, 0.3, 1.0])), LOG2, rtol=1e-6)
  # Target -0.05 (per-step penalty) is clipped to label 0: CE(2, 0) = softplus(2) = 2.126928.
  # Unclipped it would be softplus(2) - 2 * (-0.05) = 2.226928.
  np.testing.assert_allclose(
      losses.td_loss(tf.constant([2.0]), tf.constant([-0.05])), 2.126928, rtol=1e-5)
  # Target 1.3 is clipped to label 1: CE(2, 1) = softplus(-2) = 0.126928.
  np.testing.assert_allclose(
      losses.td_loss(tf.constant([2.0]), tf.constant([1.3])), 0.126928, rtol=1e-5)


def test_td_loss_numpy_reference():
  rng = np.random.RandomState(4)
  logits = rng.randn(6).astype(np.float32) * 3
  target = rng.rand(6).astype(np.float32)
  np.testing.assert_allclose(
      losses.td_loss(logits, target), _np_sigmoid_ce(logits, target).mean(), rtol=1e-5)
  np.testing.assert_allclose(
      losses.td_loss(logits, target, distance='mse'),
      ((_np_sigmoid(logits) - target)**2).mean(), rtol=1e-5)


def test_td_loss_mse_hand_worked():
  # sigmoid(0) = 0.5 against targets [1, 0.5]: mean(0.25, 0) = 0.125.
  np.testing.assert_allclose(
      losses.td_loss(tf.zeros([2]), tf.constant([1.0, 0.5]), distance='mse'), 0.125, rtol=1e-6)


def test_td_loss_weights():
  # Per-example log losses: logit 0 -> log 2; logit 2 vs label 0 -> softplus(2) = 2.126928.
  # Weights [1, 0.1]: (1 * log 2 + 0.1 * 2.126928) / 2 (B = 2, not the sum of weights 1.1).
  loss = losses.td_loss(tf.constant([0.0, 2.0]), tf.constant([0.5, 0.0]),
                        weights=tf.constant([1.0, 0.1]))
  np.testing.assert_allclose(loss, (LOG2 + 0.1 * 2.126928) / 2, rtol=1e-5)
  rng = np.random.RandomState(5)
  logits, target, w = rng.randn(5), rng.rand(5), rng.rand(5) * 2
  for distance, per_example in [('log_loss', _np_sigmoid_ce(logits, target)),
                                ('mse', (_np_sigmoid(logits) - target)**2)]:
    np.testing.assert_allclose(
        losses.td_loss(tf.constant(logits, tf.float32), tf.constant(target, tf.float32),
                       distance=distance, weights=tf.constant(w, tf.float32)),
        (w * per_example).sum() / 5, rtol=1e-5)


def test_td_loss_gradient_does_not_reach_target():
  logit = tf.Variable([0.5, -1.0])
  next_value_source = tf.Variable([0.7, 0.2])
  with tf.GradientTape() as tape:
    target = losses.td_target(tf.constant([0.0, 0.0]), tf.constant([0.0, 0.0]),
                              next_value_source)
    loss = losses.td_loss(logit, target)
  grad_logit, grad_target = tape.gradient(loss, [logit, next_value_source])
  assert grad_target is None
  # d CE / d logit = (sigmoid(logit) - label) / B, label = 0.9 * V.
  expected = (_np_sigmoid([0.5, -1.0]) - 0.9 * np.array([0.7, 0.2])) / 2
  np.testing.assert_allclose(grad_logit, expected, rtol=1e-5)


def test_td_loss_errors():
  with pytest.raises(ValueError, match="log_loss.*mse"):
    losses.td_loss(tf.zeros([2]), tf.zeros([2]), distance='huber')
  # [B] logits against a [B, 1] target would broadcast to [B, B].
  with pytest.raises(ValueError, match='q_logits and target'):
    losses.td_loss(tf.zeros([2]), tf.zeros([2, 1]))
  with pytest.raises(ValueError, match='weights'):
    losses.td_loss(tf.zeros([2]), tf.zeros([2]), weights=tf.zeros([3]))


def test_losses_in_tf_function_with_unknown_batch():

  @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)] * 3)
  def loss_fn(logits, target, weights):
    return losses.td_loss(logits, target, weights=weights)

  # (log 2 + 3 * log 2) / 2 = 2 log 2.
  np.testing.assert_allclose(
      loss_fn(tf.zeros([2]), tf.zeros([2]), tf.constant([1.0, 3.0])), 2 * LOG2, rtol=1e-6)
  np.testing.assert_allclose(
      loss_fn(tf.zeros([4]), tf.zeros([4]), tf.ones([4])), LOG2, rtol=1e-6)


# ----------------------------------------------------------------------------- segmentation


def _np_softmax_ce(logits, labels):
  """Reference: -log softmax(logits)[label] per pixel, stable via the max shift."""
  x = np.asarray(logits, np.float64)
  shifted = x - x.max(axis=-1, keepdims=True)
  log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
  return -np.take_along_axis(log_p, np.asarray(labels)[..., None], axis=-1)[..., 0]


def test_segmentation_loss_hand_worked():
  # All logits 0 over C = 4 classes: p = 1/4 everywhere, loss = log 4 whatever the labels.
  labels = tf.constant([[[0, 1], [2, 3]]], tf.int32)  # [1, 2, 2]
  np.testing.assert_allclose(losses.segmentation_loss(tf.zeros([1, 2, 2, 4]), labels),
                             math.log(4.0), rtol=1e-6)
  # One pixel, logits (log 3, 0) and label 0: p = 3/4, loss = log(4/3).
  logits = tf.constant([[[[math.log(3.0), 0.0]]]])  # [1, 1, 1, 2]
  np.testing.assert_allclose(losses.segmentation_loss(logits, tf.zeros([1, 1, 1], tf.int64)),
                             math.log(4.0 / 3.0), rtol=1e-6)


def test_segmentation_loss_matches_numpy_reference_and_bfloat16():
  rng = np.random.default_rng(0)
  logits = rng.normal(0, 3, (3, 5, 7, 4)).astype(np.float32)  # [B, H, W, C]
  labels = rng.integers(0, 4, (3, 5, 7))  # [B, H, W]
  expected = _np_softmax_ce(logits, labels).mean()
  got = losses.segmentation_loss(tf.constant(logits), tf.constant(labels, tf.int32))
  assert got.dtype == tf.float32 and got.shape == ()
  np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)
  got16 = losses.segmentation_loss(tf.cast(logits, tf.bfloat16), tf.constant(labels, tf.uint8))
  assert got16.dtype == tf.float32
  np.testing.assert_allclose(got16.numpy(), expected, rtol=3e-2)


def test_segmentation_loss_errors():
  with pytest.raises(ValueError, match='integer class ids'):
    losses.segmentation_loss(tf.zeros([1, 2, 2, 4]), tf.zeros([1, 2, 2]))
  with pytest.raises(ValueError, match=r'\[B, H, W, C\]'):
    losses.segmentation_loss(tf.zeros([2, 2, 4]), tf.zeros([2, 2], tf.int32))
  with pytest.raises(ValueError, match='labels'):
    losses.segmentation_loss(tf.zeros([1, 2, 3, 4]), tf.zeros([1, 3, 2], tf.int32))


# ----------------------------------------------------------------------------- objective, eq. 6


def test_rl_cyclegan_loss_weights_each_term_by_table_5():
  # Table 5: lambda_GAN = 1 (both sides), lambda_cycle = lambda_RL = lambda_RL-scene = 10.
  # Terms (1, 2, 0.5, 0.25, 0.1) -> (1, 2, 5, 2.5, 1); eq. 6 is their sum, 11.5.
  terms = losses.rl_cyclegan_loss(gan_generator=1.0, gan_discriminator=2.0, cycle=0.5, rl=0.25,
                                  rl_scene=0.1)
  assert list(terms) == ['gan_generator', 'gan_discriminator', 'cycle', 'rl', 'rl_scene']
  np.testing.assert_allclose([terms[k].numpy() for k in terms], [1.0, 2.0, 5.0, 2.5, 1.0],
                             rtol=1e-6)
  np.testing.assert_allclose(tf.add_n(list(terms.values())), 11.5, rtol=1e-6)
  assert all(t.dtype == tf.float32 for t in terms.values())
  # Other lambdas: (2 * 1, 2 * 2, 0 * 0.5, 1 * 0.25, 3 * 0.1).
  terms = losses.rl_cyclegan_loss(
      1.0, 2.0, 0.5, 0.25, tf.constant(0.1, tf.bfloat16), gan_weight=2.0, cycle_weight=0.0,
      rl_weight=1.0, rl_scene_weight=3.0)
  np.testing.assert_allclose([terms[k].numpy() for k in terms], [2.0, 4.0, 0.0, 0.25, 0.3],
                             rtol=1e-2)  # bfloat16 input: 0.1 is 0.10009765625
  assert terms['rl_scene'].dtype == tf.float32


# ----------------------------------------------------------------------------- check_finite


def test_check_finite():
  np.testing.assert_allclose(losses.check_finite(tf.constant(1.5), 'cycle'), 1.5)
  with pytest.raises(tf.errors.InvalidArgumentError, match='rl_scene'):
    losses.check_finite(tf.constant(np.nan), 'rl_scene')

  @tf.function
  def graph_check(x):
    return losses.check_finite(x, 'td')

  with pytest.raises(tf.errors.InvalidArgumentError, match="'td'"):
    graph_check(tf.constant(np.inf, tf.float32))
