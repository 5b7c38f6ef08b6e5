"""Tests of rl_cyclegan/evaluation/rl_scene_pull.py: L_RL-scene at the run's G, F and at the
identity, on paired states."""

import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan.evaluation import rl_scene_pull as pull_lib


class _FakeQ:
  """logits = scale * mean pixel + dx of the action + 2 * gripper height."""

  def __init__(self, scale):
    self.scale = scale

  def __call__(self, inputs, training=False):
    assert not training
    observation, action = inputs
    image = observation['image']
    logits = (self.scale * tf.reduce_mean(image, axis=[1, 2, 3]) + action[:, 0] +
              2.0 * observation['gripper_state'][:, 1])
    return logits, None


def _states(n=3, seed=0):
  rng = np.random.default_rng(seed)
  sim = rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)
  real = rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)
  return sim, real, rng.uniform(0.1, 0.3, size=n)


def _expected(q_sim, q_real, g, f, sim, real, height, k, seed):
  """Eq. 4 by hand, in numpy, at the same actions as rl_scene_pull draws."""
  rng = np.random.default_rng(seed)
  dx = rng.uniform(-1.0, 1.0, size=(len(sim) * k, 4))[:, 0]

  def q(scale, images):
    mean = np.repeat(images.reshape(len(images), -1).mean(axis=1), k)
    return 1.0 / (1.0 + np.exp(-(scale * mean + dx + 2.0 * np.repeat(height, k))))

  x, y = sim / 127.5 - 1.0, real / 127.5 - 1.0
  qs = [q(q_sim, x), q(q_real, g(x)), q(q_sim, f(g(x))),
        q(q_real, y), q(q_sim, f(y)), q(q_real, g(f(y)))]
  d = lambda a, b: np.mean((a - b) ** 2)
  return sum(d(qs[o + i], qs[o + j]) for o in (0, 3) for i, j in ((0, 1), (0, 2), (1, 2)))


def test_one_critic_for_both_makes_the_identity_cost_nothing():
  sim, real, height = _states()
  q = _FakeQ(3.0)
  out = pull_lib.rl_scene_pull(q, q, lambda i: -i, lambda i: 0.5 * i, sim, real, height,
                               actions_per_state=4)
  assert out['identity'] == 0.0 and out['critic_disagreement'] == 0.0
  assert out['own'] > 1e-4
  assert out['own'] == pytest.approx(out['own_sim'] + out['own_real'])


def test_the_loss_is_eq4_at_the_same_actions_for_g_f_and_the_identity():
  sim, real, height = _states(n=5, seed=1)
  g = lambda i: 0.8 * i + 0.1  # pylint: disable=unnecessary-lambda-assignment
  f = lambda i: 0.9 * i - 0.05  # pylint: disable=unnecessary-lambda-assignment
  out = pull_lib.rl_scene_pull(_FakeQ(3.0), _FakeQ(-1.0), g, f, sim, real, height,
                               actions_per_state=6, seed=7)
  np.testing.assert_allclose(
      out['own'], _expected(3.0, -1.0, g, f, sim, real, height, 6, 7), rtol=1e-4)
  np.testing.assert_allclose(
      out['identity'],
      _expected(3.0, -1.0, lambda i: i, lambda i: i, sim, real, height, 6, 7), rtol=1e-4)
  assert out['identity'] > 0 and out['critic_disagreement'] > 0


def test_states_of_different_counts_are_refused():
  sim, real, height = _states(n=3)
  with pytest.raises(ValueError, match='3 sim states, 2 real states'):
    pull_lib.rl_scene_pull(_FakeQ(1.0), _FakeQ(1.0), lambda i: i, lambda i: i, sim, real[:2],
                           height)
