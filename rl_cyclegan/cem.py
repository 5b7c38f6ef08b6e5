"""In-graph cross-entropy method (CEM) over the hybrid grasping action (QT-Opt).

QT-Opt (Kalashnikov et al., 2018, Section 4.2) maximizes Q(s, a) over actions with CEM:
64 samples, 2 iterations, the 6 best (elites) refit the sampling distribution. Here the action
is hybrid (see ``specs``): 4 continuous parameters (dx, dy, dz, u), sampled from a diagonal
Gaussian and clipped to [-1, 1], and a mode {move, close, open, terminate}, sampled from a
categorical. ``specs.encode_action`` maps (continuous, mode) to the 8-D action.

Randomness uses stateless ops driven by a [2] seed, so a given seed gives the same actions
eagerly, inside ``tf.function`` and inside ``tf.distribute`` ``strategy.run``. With
``seed=None`` a fresh seed is drawn in-graph on each call (``tf.random.uniform``). Under a
multi-replica strategy, pass a per-replica seed (e.g. fold in the replica id) if replicas
must not share samples.

Shapes: B = batch, N = num_samples, K = num_elites, C = CONTINUOUS_ACTION_DIM = 4,
M = NUM_ACTION_MODES = 4, A = ACTION_DIM = 8.
"""

from typing import Callable, Tuple

import numpy as np
import tensorflow as tf

from rl_cyclegan import specs

# QT-Opt's CEM (Kalashnikov et al., 2018, Section 4.2).
QTOPT_NUM_SAMPLES = 64
QTOPT_NUM_ITERATIONS = 2
QTOPT_NUM_ELITES = 6
# Initial std of the continuous Gaussian (mean 0). Not stated by QT-Opt; 0.5 puts +-2 std on
# the action bounds [-1, 1] so the first round covers the box (clipping piles little mass on
# the bounds).
DEFAULT_INITIAL_STD = 0.5
# Lower bound on the refit std: sqrt of tf_agents QtOptCemPolicy's minimal_var = 1e-4, which
# keeps the Gaussian from collapsing on the elites of one round.
DEFAULT_MIN_STD = 0.01
# Lower bound on the refit probability of each *allowed* mode (then renormalized), so that a
# mode absent from one round's elites can still be sampled in the next. Our choice; QT-Opt
# does not describe its discrete-action CEM.
DEFAULT_MIN_MODE_PROB = 0.05

_INT32_MAX = np.iinfo(np.int32).max


def _make_seed(seed) -> tf.Tensor:
  """None, a Python/NumPy int, a scalar int tensor or a [2] int tensor -> an int64 [2] seed."""
  if seed is None:
    return tf.cast(tf.random.uniform([2], 0, _INT32_MAX, dtype=tf.int32), tf.int64)
  seed = tf.convert_to_tensor(seed)
  if not seed.dtype.is_integer:
    raise ValueError(f'seed must be an integer or an integer [2] tensor, got dtype {seed.dtype}')
  seed = tf.cast(seed, tf.int64)
  if seed.shape.rank == 0:
    return tf.stack([seed, tf.constant(0, tf.int64)])
  if seed.shape.as_list() != [2]:
    raise ValueError(f'seed must be a scalar or have shape [2], got shape {seed.shape}')
  return seed


def _allowed_mask(allowed_modes) -> tf.Tensor:
  """None or a length-4 bool/0-1 vector -> bool [M]. Raises if statically none is allowed."""
  if allowed_modes is None:
    return tf.ones([specs.NUM_ACTION_MODES], tf.bool)
  mask = tf.convert_to_tensor(allowed_modes)
  if mask.shape.rank != 1 or mask.shape[0] != specs.NUM_ACTION_MODES:
    raise ValueError(f'allowed_modes must be a vector of length {specs.NUM_ACTION_MODES} '
                     f'over {specs.MODE_NAMES}, got shape {mask.shape}')
  if mask.dtype != tf.bool:
    mask = tf.not_equal(mask, tf.zeros_like(mask))
  static = tf.get_static_value(mask)
  if static is not None and not np.any(static):
    raise ValueError(f'allowed_modes allows none of the modes {specs.MODE_NAMES}: '
                     f'{allowed_modes!r}')
  return mask


def _mode_logits(probs, mask):
  """Probabilities [..., M] -> logits with disallowed modes at a large negative value."""
  return tf.where(mask, tf.math.log(tf.maximum(probs, 1e-30)), tf.constant(-1e9, tf.float32))


def random_actions(batch_size, allowed_modes=None, seed=None) -> tf.Tensor:
  """Uniformly random actions, for epsilon-greedy exploration.

  continuous ~ U[-1, 1]^4 (dx, dy, dz, u); mode ~ uniform over the allowed modes.

  Args:
    batch_size: B, a Python int or a scalar int tensor.
    allowed_modes: optional bool/0-1 vector [M] over (move, close, open, terminate);
      None allows all.
    seed: optional int or int [2] tensor (see module docstring).

  Returns:
    float32 actions [B, A].
  """
  mask = _allowed_mask(allowed_modes)
  seed = _make_seed(seed)
  seeds = tf.random.experimental.stateless_split(seed, num=2)
  batch_size = tf.cast(batch_size, tf.int32)
  continuous = tf.random.stateless_uniform(
      tf.stack([batch_size, specs.CONTINUOUS_ACTION_DIM]), seeds[0], minval=-1.0,
      maxval=1.0)  # [B, C]
  logits = tf.tile(_mode_logits(tf.ones([1, specs.NUM_ACTION_MODES]), mask),
                   tf.stack([batch_size, 1]))  # [B, M]
  mode = tf.random.stateless_categorical(logits, 1, seeds[1], dtype=tf.int32)[:, 0]  # [B]
  return specs.encode_action(continuous, mode)


def cem_maximize(score_fn: Callable[[tf.Tensor], tf.Tensor],
                 batch_size,
                 num_samples: int = QTOPT_NUM_SAMPLES,
                 num_iterations: int = QTOPT_NUM_ITERATIONS,
                 num_elites: int = QTOPT_NUM_ELITES,
                 initial_std: float = DEFAULT_INITIAL_STD,
                 min_std: float = DEFAULT_MIN_STD,
                 allowed_modes=None,
                 seed=None,
                 min_mode_prob: float = DEFAULT_MIN_MODE_PROB) -> Tuple[tf.Tensor, tf.Tensor]:
  """Maximizes ``score_fn`` over the hybrid action with CEM (QT-Opt, Section 4.2).

  Per batch element, starting from mean 0, std ``initial_std`` and a uniform categorical over
  the allowed modes, each of ``num_iterations`` rounds:
    1. samples N continuous vectors c ~ clip(Normal(mean, std), -1, 1) [B, N, C] and N modes
       m ~ Categorical(p) [B, N], and encodes them as actions [B, N, A];
    2. scores them with ``score_fn``;
    3. keeps the K highest-scoring samples (elites) and refits
         mean = mean_k c_k,  std = max(std_k c_k, min_std)  (per dimension, population std),
         p_m = max(freq_k(m), min_mode_prob) on allowed modes, 0 otherwise, renormalized.
  The result is the highest-scoring *sampled* action over all rounds (not the final mean).
  The rounds are unrolled in the graph (``num_iterations`` is a Python int), so ``score_fn``
  is traced ``num_iterations`` times.

  Args:
    score_fn: actions [B, N, A] -> float scores [B, N] to maximize (e.g. Q logits).
    batch_size: B, a Python int or a scalar int tensor (e.g. ``tf.shape(image)[0]``).
    num_samples: N, samples per round (QT-Opt: 64).
    num_iterations: rounds (QT-Opt: 2).
    num_elites: K, elites per round (QT-Opt: 6).
    initial_std: std of the first round's Gaussian (mean 0); see ``DEFAULT_INITIAL_STD``.
    min_std: floor of the refit std; see ``DEFAULT_MIN_STD``.
    allowed_modes: optional bool/0-1 vector [M] over (move, close, open, terminate), e.g.
      [1, 0, 0, 0] for move-only; None allows all.
    seed: optional int or int [2] tensor (see module docstring).
    min_mode_prob: floor of each allowed mode's refit probability; see
      ``DEFAULT_MIN_MODE_PROB``.

  Returns:
    best_actions: float32 [B, A].
    best_scores: float32 [B], ``score_fn``'s value at ``best_actions``.

  Raises:
    ValueError: bad sizes, ``allowed_modes`` or ``seed``, or ``score_fn`` output of the wrong
      static shape.
  """
  num_samples, num_iterations, num_elites = int(num_samples), int(num_iterations), int(num_elites)
  if num_samples < 1 or num_iterations < 1 or not 1 <= num_elites <= num_samples:
    raise ValueError(f'CEM needs num_samples >= 1, num_iterations >= 1 and '
                     f'1 <= num_elites <= num_samples; got num_samples={num_samples}, '
                     f'num_iterations={num_iterations}, num_elites={num_elites}')
  mask = _allowed_mask(allowed_modes)  # [M]
  seeds = tf.random.experimental.stateless_split(_make_seed(seed), num=2 * num_iterations)
  batch_size = tf.cast(batch_size, tf.int32)
  c_dim, m_dim = specs.CONTINUOUS_ACTION_DIM, specs.NUM_ACTION_MODES
  fmask = tf.cast(mask, tf.float32)  # [M]

  mean = tf.zeros(tf.stack([batch_size, c_dim]))  # [B, C]
  std = tf.fill(tf.stack([batch_size, c_dim]), tf.constant(initial_std, tf.float32))  # [B, C]
  probs = tf.tile((fmask / tf.reduce_sum(fmask))[None], tf.stack([batch_size, 1]))  # [B, M]
  best_actions = best_scores = None
  for i in range(num_iterations):
    noise = tf.random.stateless_normal(
        tf.stack([batch_size, num_samples, c_dim]), seeds[2 * i])  # [B, N, C]
    continuous = tf.clip_by_value(mean[:, None] + std[:, None] * noise, -1.0, 1.0)  # [B, N, C]
    modes = tf.random.stateless_categorical(
        _mode_logits(probs, mask), num_samples, seeds[2 * i + 1], dtype=tf.int32)  # [B, N]
    actions = specs.encode_action(continuous, modes)  # [B, N, A]

    scores = tf.cast(score_fn(actions), tf.float32)  # [B, N]
    if scores.shape.rank is not None and scores.shape.rank != 2:
      raise ValueError(f'score_fn must map actions [B, N, {specs.ACTION_DIM}] to scores '
                       f'[B, N]; got scores of shape {scores.shape}')

    # Best sample of this round, kept if it beats the previous rounds'.
    round_best = tf.argmax(scores, axis=1, output_type=tf.int32)  # [B]
    round_actions = tf.gather(actions, round_best, batch_dims=1)  # [B, A]
    round_scores = tf.gather(scores, round_best, batch_dims=1)  # [B]
    if best_actions is None:
      best_actions, best_scores = round_actions, round_scores
    else:
      better = round_scores > best_scores  # [B]
      best_actions = tf.where(better[:, None], round_actions, best_actions)
      best_scores = tf.where(better, round_scores, best_scores)

    if i + 1 == num_iterations:
      break
    # Refit to the elites.
    _, elite_idx = tf.math.top_k(scores, k=num_elites)  # [B, K]
    elites = tf.gather(continuous, elite_idx, batch_dims=1)  # [B, K, C]
    mean = tf.reduce_mean(elites, axis=1)  # [B, C]
    std = tf.maximum(tf.math.reduce_std(elites, axis=1), min_std)  # [B, C]
    elite_modes = tf.gather(modes, elite_idx, batch_dims=1)  # [B, K]
    freq = tf.reduce_mean(tf.one_hot(elite_modes, m_dim), axis=1)  # [B, M]
    probs = tf.maximum(freq, min_mode_prob) * fmask  # [B, M]
    probs = probs / tf.reduce_sum(probs, axis=1, keepdims=True)
  return best_actions, best_scores
