"""Tests for rl_cyclegan/cem.py: CEM over the hybrid action and random exploration actions."""
import math

import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan import cem
from rl_cyclegan import specs

PEAK = np.array([0.3, -0.4, 0.5, -0.2], np.float32)  # (dx, dy, dz, u), inside [-1, 1]
TERMINATE = 3


def _continuous(actions):
  """Actions [..., 8] -> (dx, dy, dz, u) [..., 4] in TF (u recovered from sin, cos)."""
  u = tf.atan2(actions[..., 3:4], actions[..., 4:5]) / (math.pi / 2)
  return tf.concat([actions[..., :3], u], axis=-1)


def _quadratic_score(bonus_mode=2, bonus=1.0, peak=PEAK):
  """score = -||c - peak||^2 + bonus * [mode == bonus_mode]; maximum = bonus at (peak, mode)."""

  def score_fn(actions):  # [B, N, 8] -> [B, N]
    flag = actions[..., 4 + bonus_mode] if bonus_mode > 0 else 1.0 - tf.reduce_sum(
        actions[..., 5:], axis=-1)
    return -tf.reduce_sum(tf.square(_continuous(actions) - peak), axis=-1) + bonus * flag

  return score_fn


def _assert_valid(actions):
  actions = np.asarray(actions)
  assert actions.shape[-1] == specs.ACTION_DIM
  assert np.all(np.abs(actions[..., :5]) <= 1.0 + 1e-6)
  np.testing.assert_allclose(actions[..., 3]**2 + actions[..., 4]**2, 1.0, atol=1e-5)
  flags = actions[..., 5:]
  assert np.all((flags == 0.0) | (flags == 1.0))
  assert np.all(flags.sum(axis=-1) <= 1.0)


def test_finds_peak_and_bonus_mode():
  actions, scores = cem.cem_maximize(
      _quadratic_score(), batch_size=16, num_samples=256, num_iterations=5, num_elites=20,
      seed=0)
  continuous, mode = specs.decode_action(actions.numpy())
  np.testing.assert_allclose(continuous, np.tile(PEAK, [16, 1]), atol=0.05)
  np.testing.assert_array_equal(mode, 2)  # 'open' carries the bonus
  np.testing.assert_allclose(scores, 1.0, atol=0.01)


def test_qtopt_defaults_get_close():
  # 64 samples x 2 rounds in 4-D: about 0.2 per coordinate from the peak on average.
  actions, scores = cem.cem_maximize(_quadratic_score(), batch_size=64, seed=1)
  continuous, mode = specs.decode_action(actions.numpy())
  np.testing.assert_array_equal(mode, 2)
  assert np.abs(continuous - PEAK).max(axis=1).mean() < 0.3
  assert scores.numpy().mean() > 0.85


def test_best_scores_are_score_fn_at_best_actions():
  score_fn = _quadratic_score()
  actions, scores = cem.cem_maximize(score_fn, batch_size=8, seed=2)
  assert actions.shape == (8, specs.ACTION_DIM) and scores.shape == (8,)
  np.testing.assert_allclose(scores, score_fn(actions[:, None])[:, 0], rtol=1e-5, atol=1e-6)


def test_returns_best_sample_over_all_iterations():
  # Eagerly, score_fn is called once per round. Round 1's scores are shifted by -100, so the
  # overall best must be the best sample of round 0, not round 1's best or a refit mean.
  calls = []
  base = _quadratic_score()

  def score_fn(actions):
    scores = base(actions) - 100.0 * len(calls)
    calls.append((actions.numpy(), scores.numpy()))
    return scores

  actions, scores = cem.cem_maximize(score_fn, batch_size=4, num_iterations=2, seed=3)
  assert len(calls) == 2
  first_actions, first_scores = calls[0]
  best = first_scores.argmax(axis=1)
  np.testing.assert_allclose(scores, first_scores.max(axis=1), rtol=1e-6)
  np.testing.assert_allclose(actions, first_actions[np.arange(4), best], rtol=1e-6)


def test_outputs_valid_at_the_bounds():
  # Linear score pushes every continuous param to its upper bound: outputs must stay clipped.
  def score_fn(actions):
    return 10.0 * tf.reduce_sum(_continuous(actions), axis=-1)

  actions, _ = cem.cem_maximize(score_fn, batch_size=8, num_iterations=4, seed=4)
  _assert_valid(actions)
  assert np.any(actions.numpy()[:, :3] == 1.0)  # Clipped samples were selected.
  assert actions.numpy()[:, :3].mean() > 0.8


@pytest.mark.parametrize('allowed_modes', [[1, 0, 0, 0], [True, False, False, False],
                                           np.array([1.0, 0.0, 0.0, 0.0], np.float32)])
def test_move_only(allowed_modes):
  # The bonus is on 'terminate', which is not allowed.
  actions, _ = cem.cem_maximize(_quadratic_score(bonus_mode=TERMINATE, bonus=5.0),
                                batch_size=16, allowed_modes=allowed_modes, seed=5)
  _assert_valid(actions)
  np.testing.assert_array_equal(actions.numpy()[:, 5:], 0.0)


def test_allowed_subset_and_preference_within_it():
  # close/open allowed; the bonus (on 'terminate') is outside: modes must stay in {1, 2}.
  _, mode = specs.decode_action(cem.cem_maximize(
      _quadratic_score(bonus_mode=TERMINATE, bonus=5.0), batch_size=32,
      allowed_modes=[0, 1, 1, 0], seed=6)[0].numpy())
  assert set(mode.tolist()) <= {1, 2}
  # With the bonus on 'close' inside the allowed set, CEM picks it.
  _, mode = specs.decode_action(cem.cem_maximize(
      _quadratic_score(bonus_mode=1, bonus=5.0), batch_size=32,
      allowed_modes=[0, 1, 1, 0], seed=6)[0].numpy())
  np.testing.assert_array_equal(mode, 1)


def test_argument_errors():
  score_fn = _quadratic_score()
  with pytest.raises(ValueError, match='allows none'):
    cem.cem_maximize(score_fn, 2, allowed_modes=[0, 0, 0, 0])
  with pytest.raises(ValueError, match='length 4'):
    cem.cem_maximize(score_fn, 2, allowed_modes=[1, 0, 0])
  with pytest.raises(ValueError, match='num_elites'):
    cem.cem_maximize(score_fn, 2, num_samples=4, num_elites=5)
  with pytest.raises(ValueError, match=r'scores \[B, N\]'):
    cem.cem_maximize(lambda a: a[..., :1], 2)
  with pytest.raises(ValueError, match='seed'):
    cem.cem_maximize(score_fn, 2, seed=[1, 2, 3])


def test_tf_function_with_unknown_batch():

  @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
  def maximize(peaks):  # [B, 4]: a different peak per batch element.
    def score_fn(actions):  # [B, N, 8] -> [B, N]
      return -tf.reduce_sum(tf.square(_continuous(actions) - peaks[:, None]), axis=-1)
    return cem.cem_maximize(score_fn, tf.shape(peaks)[0], num_samples=128,
                            num_iterations=5, num_elites=16, seed=7)

  rng = np.random.RandomState(0)
  for batch in (3, 5):
    peaks = rng.uniform(-0.6, 0.6, [batch, 4]).astype(np.float32)
    actions, scores = maximize(peaks)
    assert actions.shape == (batch, specs.ACTION_DIM) and scores.shape == (batch,)
    _assert_valid(actions)
    np.testing.assert_allclose(specs.decode_action(actions.numpy())[0], peaks, atol=0.15)
  assert maximize.experimental_get_tracing_count() == 1


def test_seeded_determinism():
  score_fn = _quadratic_score()
  a1, s1 = cem.cem_maximize(score_fn, 4, seed=11)
  a2, s2 = cem.cem_maximize(score_fn, 4, seed=11)
  np.testing.assert_array_equal(a1, a2)
  np.testing.assert_array_equal(s1, s2)
  # A [2] tensor seed and a traced call give the same result as an eager call.
  graph = tf.function(lambda seed: cem.cem_maximize(score_fn, 4, seed=seed))
  a3, _ = graph(tf.constant([5, 6], tf.int64))
  a4, _ = cem.cem_maximize(score_fn, 4, seed=tf.constant([5, 6], tf.int64))
  np.testing.assert_array_equal(a3, a4)
  # Different or absent seeds give different samples.
  a5, _ = cem.cem_maximize(score_fn, 4, seed=12)
  assert not np.array_equal(a1, a5)
  assert not np.array_equal(cem.cem_maximize(score_fn, 4)[0], cem.cem_maximize(score_fn, 4)[0])


def test_random_actions():
  actions = cem.random_actions(4000, seed=0).numpy()
  _assert_valid(actions)
  continuous, mode = specs.decode_action(actions)
  assert continuous.min() < -0.95 and continuous.max() > 0.95
  np.testing.assert_allclose(continuous.mean(axis=0), 0.0, atol=0.05)
  np.testing.assert_allclose(np.bincount(mode, minlength=4) / 4000.0, 0.25, atol=0.03)
  np.testing.assert_array_equal(actions, cem.random_actions(4000, seed=0))
  assert not np.array_equal(actions, cem.random_actions(4000, seed=1))

  _, mode = specs.decode_action(cem.random_actions(1000, allowed_modes=[1, 0, 0, 1], seed=2))
  assert set(mode.tolist()) == {0, 3}
  _, mode = specs.decode_action(cem.random_actions(50, allowed_modes=[1, 0, 0, 0]))
  np.testing.assert_array_equal(mode, 0)

  sample = tf.function(
      lambda x: cem.random_actions(tf.shape(x)[0], seed=3),
      input_signature=[tf.TensorSpec([None], tf.float32)])
  assert sample(tf.zeros([7])).shape == (7, specs.ACTION_DIM)
