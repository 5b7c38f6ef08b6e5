"""Losses of RL-CycleGAN (Rao et al., CVPR 2020, Sections 3-4, eqs. 1-6) as pure tensor functions.

Each function takes tensors and returns a float32 scalar: the mean over the batch (and pixels)
held by the caller. Inputs may be bfloat16/float16 (mixed precision); they are cast to float32
first. Under ``tf.distribute`` each replica gets the mean over its *local* batch; a learner that
sums gradients across replicas should scale the loss by ``1 / num_replicas_in_sync``.

Where each equation lives: eq. 1 ``gan_discriminator_loss`` / ``gan_generator_loss``; eq. 2
``cycle_consistency_loss``; eq. 4 ``rl_scene_consistency_loss``; eqs. 3 and 5 ``td_target`` and
``td_loss`` (with V(s') from ``qtopt.target_value``; the learners call them through
``learners.core.td_loss``); eq. 6 ``rl_cyclegan_loss``, whose default weights are Table 5's
(lambda_GAN = 1, lambda_cycle = 10, lambda_RL = 10, lambda_RL-scene = 10). Which networks each
loss updates (Table 5's last column) belongs to the learner (``learners.rl_cyclegan.TABLE5``).
``segmentation_loss`` is GraspGAN's auxiliary mask loss (the Table 1 "GraspGAN" row), not a
loss of RL-CycleGAN itself.

Notation (paper Section 3.1): G = Sim2Real, F = Real2Sim, D_Y judges real vs G(x),
D_X judges sim vs F(y). "Logits" are the raw discriminator outputs (pre-sigmoid).
"""

from typing import Dict, Sequence, Union

import tensorflow as tf

NON_SATURATING = 'non_saturating'
LEAST_SQUARES = 'least_squares'
GAN_LOSS_TYPES = (NON_SATURATING, LEAST_SQUARES)

LOG_LOSS = 'log_loss'
MSE = 'mse'
TD_DISTANCES = (LOG_LOSS, MSE)

# QT-Opt (Kalashnikov et al., 2018) discount factor.
QTOPT_GAMMA = 0.9

Logits = Union[tf.Tensor, Sequence[tf.Tensor]]


def _f32(x):
  return tf.cast(x, tf.float32)


def _check_same_shape(a, b, name_a, name_b):
  """Raises ValueError when the static shapes of ``a`` and ``b`` are incompatible.

  Guards against silent broadcasting (e.g. [B] against [B, 1] gives [B, B]).
  """
  if not a.shape.is_compatible_with(b.shape):
    raise ValueError(f'{name_a} and {name_b} must have the same shape, got '
                     f'{a.shape.as_list() if a.shape.rank is not None else a.shape} and '
                     f'{b.shape.as_list() if b.shape.rank is not None else b.shape}')


def _check_gan_loss_type(loss_type):
  if loss_type not in GAN_LOSS_TYPES:
    raise ValueError(f'Unknown GAN loss_type {loss_type!r}; expected one of {GAN_LOSS_TYPES}')


def _as_scales(logits, name):
  """A tensor or a list of per-scale tensors -> a list of float32 tensors (at least one)."""
  if isinstance(logits, (list, tuple)):
    if not logits:
      raise ValueError(f'{name}: empty list of discriminator scales')
    return [_f32(l) for l in logits]
  return [_f32(logits)]


def _sigmoid_ce(logits, label):
  """Mean sigmoid cross-entropy of ``logits`` against the constant ``label`` (0 or 1)."""
  labels = tf.fill(tf.shape(logits), tf.constant(label, tf.float32))
  return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def gan_discriminator_loss(real_logits: Logits, fake_logits: Logits,
                           loss_type: str = NON_SATURATING) -> tf.Tensor:
  """Discriminator side of the adversarial loss, paper eq. 1 (minimized by D).

  Eq. 1: L_GAN(G, D_Y, X, Y) = E_y[log D_Y(y)] + E_x[log(1 - D_Y(G(x)))], which D_Y maximizes.

  * ``'non_saturating'`` (default): the negative of eq. 1 with D = sigmoid(logit), i.e.
      mean(CE(real_logits, 1)) + mean(CE(fake_logits, 0))
      = -mean(log sigmoid(D(y))) - mean(log(1 - sigmoid(D(G(x))))).
  * ``'least_squares'`` (LSGAN, Mao et al. 2017, used by the CycleGAN reference code) on the
    raw outputs: mean((D(y) - 1)^2) + mean(D(G(x))^2). (The CycleGAN reference code halves this
    sum; that is only a scale, fold it into the loss weight if wanted.)

  Multi-scale discriminators (paper Appendix A: three scales) pass lists; the loss is the mean
  over scales of each scale's loss.

  Args:
    real_logits: D(y) on real samples, [B, h, w, 1], or a list of such tensors, one per scale.
    fake_logits: D(G(x)) on generated samples, same structure as ``real_logits`` (each scale's
      batch and spatial size may differ from the real one's).
    loss_type: one of ``GAN_LOSS_TYPES``.

  Returns:
    float32 scalar.

  Raises:
    ValueError: unknown ``loss_type`` or a different number of real and fake scales.
  """
  _check_gan_loss_type(loss_type)
  real = _as_scales(real_logits, 'real_logits')
  fake = _as_scales(fake_logits, 'fake_logits')
  if len(real) != len(fake):
    raise ValueError(f'real_logits has {len(real)} discriminator scales but fake_logits has '
                     f'{len(fake)}')
  per_scale = []
  for r, f in zip(real, fake):
    if loss_type == NON_SATURATING:
      per_scale.append(_sigmoid_ce(r, 1.0) + _sigmoid_ce(f, 0.0))
    else:
      per_scale.append(tf.reduce_mean(tf.square(r - 1.0)) + tf.reduce_mean(tf.square(f)))
  return tf.add_n(per_scale) / float(len(per_scale))


def gan_generator_loss(fake_logits: Logits, loss_type: str = NON_SATURATING) -> tf.Tensor:
  """Generator side of the adversarial loss, paper eq. 1 (minimized by G).

  * ``'non_saturating'`` (default): instead of minimizing log(1 - D(G(x))) of eq. 1, G minimizes
    -log D(G(x)) (Goodfellow et al. 2014), i.e. mean(CE(fake_logits, 1)) with D = sigmoid(logit).
  * ``'least_squares'`` (LSGAN): mean((D(G(x)) - 1)^2) on the raw outputs.

  Args:
    fake_logits: D(G(x)), [B, h, w, 1], or a list of such tensors, one per discriminator scale;
      the loss is then the mean over scales of each scale's loss.
    loss_type: one of ``GAN_LOSS_TYPES``.

  Returns:
    float32 scalar.

  Raises:
    ValueError: unknown ``loss_type``.
  """
  _check_gan_loss_type(loss_type)
  fake = _as_scales(fake_logits, 'fake_logits')
  if loss_type == NON_SATURATING:
    per_scale = [_sigmoid_ce(f, 1.0) for f in fake]
  else:
    per_scale = [tf.reduce_mean(tf.square(f - 1.0)) for f in fake]
  return tf.add_n(per_scale) / float(len(per_scale))


def cycle_consistency_loss(x: tf.Tensor, x_cycled: tf.Tensor, y: tf.Tensor,
                           y_cycled: tf.Tensor) -> tf.Tensor:
  """Cycle consistency, paper eq. 2, with d = mean squared error.

  L_cyc(G, F) = mean((F(G(x)) - x)^2) + mean((G(F(y)) - y)^2),
  each mean over batch, pixels and channels.

  Args:
    x: simulated images, [B, H, W, 3].
    x_cycled: F(G(x)), same shape as ``x``.
    y: real images, [B', H', W', 3].
    y_cycled: G(F(y)), same shape as ``y``.

  Returns:
    float32 scalar.
  """
  x, x_cycled, y, y_cycled = _f32(x), _f32(x_cycled), _f32(y), _f32(y_cycled)
  _check_same_shape(x, x_cycled, 'x', 'x_cycled')
  _check_same_shape(y, y_cycled, 'y', 'y_cycled')
  return (tf.reduce_mean(tf.square(x_cycled - x)) +
          tf.reduce_mean(tf.square(y_cycled - y)))


def rl_scene_consistency_loss(q_x: tf.Tensor, q_x_prime: tf.Tensor, q_x_double: tf.Tensor,
                              q_y: tf.Tensor, q_y_prime: tf.Tensor,
                              q_y_double: tf.Tensor) -> tf.Tensor:
  """RL-scene consistency, paper eq. 4, with d = mean squared error.

  With (x, a) ~ D_sim and (y, a) ~ D_real (paper Section 4):
    q_x = Q_sim(x, a),        q'_x = Q_real(G(x), a),   q''_x = Q_sim(F(G(x)), a),
    q_y = Q_real(y, a),       q'_y = Q_sim(F(y), a),    q''_y = Q_real(G(F(y)), a),
  L_RL-scene = d(q_x, q'_x) + d(q_x, q''_x) + d(q'_x, q''_x)
             + d(q_y, q'_y) + d(q_y, q''_y) + d(q'_y, q''_y),   d(a, b) = mean((a - b)^2).

  No stop_gradient: the paper (Appendix A) computes the full backward pass and the learner
  applies this loss's gradient to G and F only.

  Args:
    q_x, q_x_prime, q_x_double: Q-values as probabilities in [0, 1] (sigmoid of the logits),
      each [B].
    q_y, q_y_prime, q_y_double: the same for the real triple, each [B'].

  Returns:
    float32 scalar, the sum of the six means.
  """
  qs = [_f32(q) for q in (q_x, q_x_prime, q_x_double, q_y, q_y_prime, q_y_double)]
  names = ['q_x', 'q_x_prime', 'q_x_double', 'q_y', 'q_y_prime', 'q_y_double']
  terms = []
  for offset in (0, 3):
    for i, j in ((0, 1), (0, 2), (1, 2)):
      a, b = qs[offset + i], qs[offset + j]
      _check_same_shape(a, b, names[offset + i], names[offset + j])
      terms.append(tf.reduce_mean(tf.square(a - b)))
  return tf.add_n(terms)


def segmentation_loss(mask_logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
  """Auxiliary segmentation (mask) loss of the generator, after GraspGAN.

  Not one of RL-CycleGAN's losses: GraspGAN (Bousmalis et al., 2018, "Using simulation and
  domain adaptation to improve efficiency of deep robotic grasping") has its generator G also
  predict the semantic segmentation of the simulated input, which the simulator gives for free
  (Rao et al., Section 2: robot arm, objects and bin); Section 6.1 credits this "grasping
  specific masking loss" with avoiding object deletion or addition. Here, with
  p = softmax(mask_logits) over the C classes,

    L_seg = -mean_{b, i, j} log p[b, i, j, labels[b, i, j]],

  the mean softmax cross-entropy over the batch and pixels.

  Args:
    mask_logits: [B, H, W, C] class logits per pixel (any float dtype).
    labels: [B, H, W] integer class ids in [0, C).

  Returns:
    float32 scalar.

  Raises:
    ValueError: labels not integer, or shapes that do not match [B, H, W, C] / [B, H, W].
  """
  mask_logits = _f32(mask_logits)
  labels = tf.convert_to_tensor(labels)
  if not labels.dtype.is_integer:
    raise ValueError(f'labels must be integer class ids, got dtype {labels.dtype.name}')
  if mask_logits.shape.rank not in (None, 4) or labels.shape.rank not in (None, 3):
    raise ValueError(f'mask_logits must be [B, H, W, C] and labels [B, H, W], got shapes '
                     f'{mask_logits.shape} and {labels.shape}')
  _check_same_shape(mask_logits[..., 0], labels, 'mask_logits[..., 0]', 'labels')
  per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=tf.cast(labels, tf.int32), logits=mask_logits)  # [B, H, W]
  return tf.reduce_mean(per_pixel)


def td_target(reward: tf.Tensor, done: tf.Tensor, next_value: tf.Tensor,
              gamma: float = QTOPT_GAMMA) -> tf.Tensor:
  """Bellman target of the TD loss, paper eqs. 3 and 5: r + gamma * V(s').

  target = reward + gamma * (1 - done) * next_value; ``done`` = 1 marks a terminal s' (no
  bootstrap). ``next_value`` is V(s') in [0, 1] from ``qtopt.target_value`` (clipped double-Q).

  Args:
    reward: [B].
    done: [B], 1.0 where s' is terminal, else 0.0.
    next_value: V(s'), [B].
    gamma: discount factor; QT-Opt (Kalashnikov et al., 2018) uses 0.9.

  Returns:
    float32 [B]. Not clipped; ``td_loss`` treats it as a constant.
  """
  reward, done, next_value = _f32(reward), _f32(done), _f32(next_value)
  _check_same_shape(reward, done, 'reward', 'done')
  _check_same_shape(reward, next_value, 'reward', 'next_value')
  return reward + gamma * (1.0 - done) * next_value


def td_loss(q_logits: tf.Tensor, target: tf.Tensor, distance: str = LOG_LOSS,
            weights: tf.Tensor = None) -> tf.Tensor:
  """TD loss, paper eqs. 3 and 5: d(Q(s, a), r + gamma * V(s')), Q(s, a) = sigmoid(q_logits).

  The target is a constant (``tf.stop_gradient``): no gradient reaches V(s').

  * ``'log_loss'`` (default, QT-Opt): l_i = CE(q_logits_i, clip(target_i, 0, 1)), the sigmoid
    cross-entropy against a soft label. The clip to [0, 1] keeps the label a probability: a
    per-step reward penalty (e.g. QT-Opt's -0.05) makes targets negative, and the
    cross-entropy with a label outside [0, 1] is unbounded below.
  * ``'mse'``: l_i = (sigmoid(q_logits_i) - target_i)^2 on the unclipped target.

  Loss = sum_i(w_i * l_i) / B, where B is the number of examples (not the sum of the weights);
  without ``weights`` this is the plain mean. E.g. the paper's (Appendix A)
  L_RL = L_Sim2Real + lambda_RL-real * L_Real is obtained with w = 1 on sim rows and
  w = lambda_RL-real on real rows of one batch.

  Args:
    q_logits: Q(s, a) logits, [B].
    target: TD target, [B] (from ``td_target``).
    distance: one of ``TD_DISTANCES``.
    weights: optional per-example weights, [B].

  Returns:
    float32 scalar.

  Raises:
    ValueError: unknown ``distance`` or mismatched shapes.
  """
  if distance not in TD_DISTANCES:
    raise ValueError(f'Unknown TD distance {distance!r}; expected one of {TD_DISTANCES}')
  q_logits = _f32(q_logits)
  target = tf.stop_gradient(_f32(target))
  _check_same_shape(q_logits, target, 'q_logits', 'target')
  if distance == LOG_LOSS:
    per_example = tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.clip_by_value(target, 0.0, 1.0), logits=q_logits)  # [B]
  else:
    per_example = tf.square(tf.sigmoid(q_logits) - target)  # [B]
  if weights is None:
    return tf.reduce_mean(per_example)
  weights = tf.stop_gradient(_f32(weights))
  _check_same_shape(per_example, weights, 'q_logits', 'weights')
  num = tf.cast(tf.size(per_example), tf.float32)
  return tf.reduce_sum(weights * per_example) / num


def rl_cyclegan_loss(gan_generator: tf.Tensor, gan_discriminator: tf.Tensor, cycle: tf.Tensor,
                     rl: tf.Tensor, rl_scene: tf.Tensor, gan_weight: float = 1.0,
                     cycle_weight: float = 10.0, rl_weight: float = 10.0,
                     rl_scene_weight: float = 10.0) -> Dict[str, tf.Tensor]:
  """The full RL-CycleGAN objective, paper eq. 6, as its weighted terms.

    L_RL-CycleGAN(G, F, D_X, D_Y, Q) = lambda_GAN L_GAN(G, D_Y) + lambda_GAN L_GAN(F, D_X)
                                     + lambda_cycle L_cyc(G, F)
                                     + lambda_RL-scene L_RL-scene(G, F) + lambda_RL L_RL(Q),

  with Table 5's weights as defaults. The minimax L_GAN of both directions (eq. 1) enters as
  its two sides, each weighted by lambda_GAN: the generator side (minimized by G and F) and the
  discriminator side (minimized by D_X and D_Y). The terms come back apart, not summed,
  because each term's gradient updates only the networks of its Table 5 row (Appendix A;
  ``learners.rl_cyclegan.TABLE5``); eq. 6 is the sum of the values.

  Args:
    gan_generator: ``gan_generator_loss`` of D_Y(G(x)) plus that of D_X(F(y)), scalar.
    gan_discriminator: ``gan_discriminator_loss`` of D_Y plus that of D_X, scalar.
    cycle: L_cyc, eq. 2 (``cycle_consistency_loss``), scalar.
    rl: L_RL, eq. 5, of Q_sim plus Q_real (``learners.core.td_loss``), scalar.
    rl_scene: L_RL-scene, eq. 4 (``rl_scene_consistency_loss``), scalar.
    gan_weight, cycle_weight, rl_weight, rl_scene_weight: the lambdas (Table 5: 1, 10, 10, 10).

  Returns:
    {'gan_generator', 'gan_discriminator', 'cycle', 'rl', 'rl_scene'} -> lambda * loss, float32
    scalars, in this order.
  """
  return {'gan_generator': gan_weight * _f32(gan_generator),
          'gan_discriminator': gan_weight * _f32(gan_discriminator),
          'cycle': cycle_weight * _f32(cycle),
          'rl': rl_weight * _f32(rl),
          'rl_scene': rl_scene_weight * _f32(rl_scene)}


def check_finite(loss: tf.Tensor, name: str) -> tf.Tensor:
  """Returns ``loss`` unchanged; raises InvalidArgumentError naming ``name`` if NaN or Inf."""
  return tf.debugging.check_numerics(
      loss, f'Loss {name!r} is not finite (NaN or Inf)')
