"""Tests for rl_cyclegan/actors/policies.py: CEMPolicy, exploration, export, action-function adapters."""
import math

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.policies import policy_saver
from tf_agents.policies import py_tf_eager_policy
from tf_agents.trajectories import time_step as ts

from rl_cyclegan.actors import policies
from rl_cyclegan import specs
from rl_cyclegan.networks import q_network as q_network_lib

RENDER = (32, 40)
CROP = (32, 32)
TARGET = np.array([0.3, -0.5, 0.2, 0.4], np.float32)  # dx, dy, dz, u at the Q maximum


class FakeQ(tf.Module):
  """Q with a known maximum: logit = -|c - target|^2 + 1[terminate] + gain * mean(image) * dx.

  c = (dx, dy, dz, u) decoded from the action. The embedding is the image mean [B, 1, 1, 1],
  so ``gain`` makes the best dx depend on the image: best dx = target_dx + gain * mean / 2.
  """

  def __init__(self, gain=0.0):
    super().__init__()
    self.gain = gain

  def embed_image(self, image, training=False):
    return tf.reduce_mean(image, axis=[1, 2, 3], keepdims=True)  # [B, 1, 1, 1]

  def logits_from_embedding(self, embedding, gripper_state, actions, training=False):
    continuous, mode = policies.decode_action_tf(actions)  # [B, N, 4], [B, N]
    distance = tf.reduce_sum(tf.square(continuous - TARGET), axis=-1)  # [B, N]
    bonus = tf.cast(tf.equal(mode, 3), tf.float32)  # terminate
    image_term = self.gain * embedding[:, :, 0, 0] * continuous[..., 0]  # [B, N]
    return -distance + bonus + image_term


def _observations(batch=3, value=None, seed=0):
  rng = np.random.default_rng(seed)
  image = (rng.integers(0, 256, (batch, *RENDER, 3)) if value is None
           else np.full((batch, *RENDER, 3), value))
  return {'image': image.astype(np.uint8),
          'gripper_state': rng.uniform(0, 0.3, (batch, 2)).astype(np.float32)}


def _time_step(observations):
  return ts.restart({k: tf.constant(v) for k, v in observations.items()},
                    batch_size=len(observations['image']))


def _check_valid(actions, allowed_modes=None):
  actions = np.asarray(actions)
  assert actions.shape[-1] == specs.ACTION_DIM and actions.dtype == np.float32
  np.testing.assert_allclose(actions[..., 3] ** 2 + actions[..., 4] ** 2, 1.0, atol=1e-5)
  assert np.all(np.abs(actions[..., :3]) <= 1.0)
  flags = actions[..., 5:]
  assert np.all((flags == 0) | (flags == 1)) and np.all(flags.sum(-1) <= 1)
  _, modes = specs.decode_action(actions)
  if allowed_modes is not None:
    assert np.all(np.asarray(allowed_modes)[modes]), (modes, allowed_modes)
  return modes


def test_linear_schedule():
  assert policies.linear_schedule(0, 0.5, 0.1, 100) == 0.5
  assert policies.linear_schedule(50, 0.5, 0.1, 100) == pytest.approx(0.3)
  assert policies.linear_schedule(100, 0.5, 0.1, 100) == pytest.approx(0.1)
  assert policies.linear_schedule(10 ** 6, 0.5, 0.1, 100) == pytest.approx(0.1)
  assert policies.linear_schedule(-5, 0.5, 0.1, 100) == 0.5
  assert policies.linear_schedule(3, 0.5, 0.1, 0) == 0.1
  assert isinstance(policies.linear_schedule(np.int64(3), 1, 0, 10), float)


def test_decode_action_tf_matches_numpy():
  actions = np.asarray(policies.cem.random_actions(64, seed=3))
  continuous, mode = policies.decode_action_tf(actions)
  np_continuous, np_mode = specs.decode_action(actions)
  np.testing.assert_allclose(continuous, np_continuous, atol=1e-5)
  np.testing.assert_array_equal(mode, np_mode)


def test_real_network_valid_actions_and_allowed_modes():
  net = q_network_lib.GraspingQNetwork(crop_size=CROP, **q_network_lib.small_config())
  policy = policies.CEMPolicy(net, RENDER, CROP, allowed_modes=policies.AUTO_DESCEND_MODES,
                              num_samples=16, seed=0)
  obs = _observations(batch=5)
  actions = policy.action(_time_step(obs)).action.numpy()
  assert actions.shape == (5, specs.ACTION_DIM)
  _check_valid(actions, policies.AUTO_DESCEND_MODES)
  policy.set_exploration(1.0, 0.0)
  _check_valid(policy.action(_time_step(obs)).action, policies.AUTO_DESCEND_MODES)


def test_cem_finds_known_maximum():
  policy = policies.CEMPolicy(FakeQ(), RENDER, CROP, num_samples=256, num_iterations=4,
                              num_elites=16, seed=0)
  actions = policies.greedy_action_fn(policy)(_observations(batch=4))  # [4, 8]
  continuous, modes = specs.decode_action(actions)
  np.testing.assert_allclose(continuous, np.tile(TARGET, (4, 1)), atol=0.1)
  np.testing.assert_array_equal(modes, 3)  # terminate has the +1 bonus


def test_allowed_modes_respected_by_cem():
  # Terminate is best under FakeQ; forbidding it must leave only the allowed mode.
  policy = policies.CEMPolicy(FakeQ(), RENDER, CROP, allowed_modes=(False, True, False, False),
                              seed=0)
  modes = _check_valid(policy.action(_time_step(_observations())).action,
                       (False, True, False, False))
  np.testing.assert_array_equal(modes, 1)


def test_epsilon_one_is_random_and_zero_is_deterministic_given_seed():
  obs = _observations(batch=256)
  greedy = policies.CEMPolicy(FakeQ(), RENDER, CROP, num_samples=64, seed=7)
  twin = policies.CEMPolicy(FakeQ(), RENDER, CROP, num_samples=64, seed=7)
  other = policies.CEMPolicy(FakeQ(), RENDER, CROP, num_samples=64, seed=8)
  a = greedy.action(_time_step(obs)).action.numpy()
  np.testing.assert_array_equal(a, twin.action(_time_step(obs)).action.numpy())
  assert not np.array_equal(a, other.action(_time_step(obs)).action.numpy())
  # Greedy actions cluster at the maximum; epsilon = 1 gives uniform ones.
  assert np.mean(np.abs(specs.decode_action(a)[0] - TARGET)) < 0.2
  greedy.set_exploration(1.0, 0.0)
  random = greedy.action(_time_step(obs)).action.numpy()
  modes = _check_valid(random)
  continuous, _ = specs.decode_action(random)
  # U[-1, 1]: mean 0, std 1/sqrt(3) = 0.577 (256 samples: standard error ~0.036).
  np.testing.assert_allclose(continuous.mean(0), 0.0, atol=0.15)
  np.testing.assert_allclose(continuous.std(0), 1 / math.sqrt(3), atol=0.08)
  assert set(modes.tolist()) == {0, 1, 2, 3}


def test_noise_keeps_mode_and_perturbs_continuous():
  # Twin policies (same seed) run the same CEM; only the noise differs.
  obs = _observations(batch=128)
  greedy = policies.CEMPolicy(FakeQ(), RENDER, CROP, seed=1)
  noisy_policy = policies.CEMPolicy(FakeQ(), RENDER, CROP, seed=1, noise_std=0.3)
  a = greedy.action(_time_step(obs)).action.numpy()
  noisy = noisy_policy.action(_time_step(obs)).action.numpy()
  _check_valid(noisy)
  np.testing.assert_array_equal(noisy[:, 5:], a[:, 5:])  # modes kept (terminate)
  diff = specs.decode_action(noisy)[0] - specs.decode_action(a)[0]  # [128, 4]
  # N(0, 0.3) noise, slightly shrunk by clipping to [-1, 1] near TARGET's dy = -0.5.
  np.testing.assert_allclose(diff.std(0), 0.3, atol=0.06)
  noisy_policy.set_exploration(0.0, 0.0)
  np.testing.assert_allclose(noisy_policy.action(_time_step(obs)).action,
                             greedy.action(_time_step(obs)).action, atol=1e-6)
  with pytest.raises(ValueError, match='epsilon'):
    noisy_policy.set_exploration(1.5, 0.0)


def test_set_exploration_does_not_retrace():
  policy = policies.CEMPolicy(FakeQ(), RENDER, CROP, num_samples=8, seed=1)
  action_fn = policies.policy_action_fn(policy)
  action_fn(_observations(batch=2))
  policy.set_exploration(0.5, 0.2)
  action_fn(_observations(batch=3))  # another batch size too
  assert action_fn._action.experimental_get_tracing_count() == 1  # pylint: disable=protected-access


def test_image_transform_is_applied():
  # FakeQ(gain=1): best dx = 0.3 + mean(image) / 2. White images (mean 1) -> dx = 0.8;
  # a transform that zeroes the image -> dx = 0.3.
  obs = _observations(batch=4, value=255)
  kwargs = dict(num_samples=256, num_iterations=4, num_elites=16, seed=0)
  plain = policies.CEMPolicy(FakeQ(gain=1.0), RENDER, CROP, **kwargs)
  zeroed = policies.CEMPolicy(FakeQ(gain=1.0), RENDER, CROP, image_transform=tf.zeros_like,
                              **kwargs)
  dx_plain = specs.decode_action(policies.greedy_action_fn(plain)(obs))[0][:, 0]
  dx_zeroed = specs.decode_action(policies.greedy_action_fn(zeroed)(obs))[0][:, 0]
  np.testing.assert_allclose(dx_plain, 0.8, atol=0.1)
  np.testing.assert_allclose(dx_zeroed, 0.3, atol=0.1)


def test_center_crop_before_q():
  # Q sees only the center crop: a bright border outside the 32x32 crop must not matter.
  obs = _observations(batch=2, value=0)
  border = {k: v.copy() for k, v in obs.items()}
  border['image'][:, :, :4] = 255
  border['image'][:, :, -4:] = 255
  kwargs = dict(num_samples=32, seed=3)
  a = policies.greedy_action_fn(policies.CEMPolicy(FakeQ(gain=1.0), RENDER, CROP, **kwargs))
  b = policies.greedy_action_fn(policies.CEMPolicy(FakeQ(gain=1.0), RENDER, CROP, **kwargs))
  np.testing.assert_array_equal(a(obs), b(border))


def test_embedding_spread_tells_a_q_that_sees_from_an_image_blind_one():
  net = q_network_lib.GraspingQNetwork(crop_size=CROP, **q_network_lib.small_config())
  policy = policies.CEMPolicy(net, RENDER, CROP, seed=0)
  frames = _observations(batch=8)['image']
  seeing = policy.embedding_spread(frames)
  assert seeing > 1e-4
  assert policy.embedding_spread(frames, batch_size=3) == pytest.approx(seeing, rel=1e-4)
  assert policy.embedding_spread(np.repeat(frames[:1], 4, 0)) == pytest.approx(0.0, abs=1e-7)
  border = frames.copy()  # only the center crop counts, as for the Q
  border[:, :, :4] = 255 - border[:, :, :4]
  assert policy.embedding_spread(border) == pytest.approx(seeing, rel=1e-5)
  stem = net._tower[0]  # pylint: disable=protected-access
  stem.kernel.assign(tf.zeros_like(stem.kernel))  # every image gives the same features
  assert policy.embedding_spread(frames) == pytest.approx(0.0, abs=1e-7)
  with pytest.raises(ValueError, match='at least 2 frames, got 1'):
    policy.embedding_spread(frames[:1])


def test_action_change_tells_a_q_that_reads_the_scene_from_an_image_blind_one():
  # A fixed init: over init seeds 0-11 a fresh network's action change ranged 0.07-0.53, and one
  # unseeded CI run drew 0.037 (session 33).
  tf.keras.utils.set_random_seed(0)
  net = q_network_lib.GraspingQNetwork(crop_size=CROP, **q_network_lib.small_config())
  policy = policies.CEMPolicy(net, RENDER, CROP, num_samples=16, seed=0)
  observations = _observations(batch=6)
  frames, gripper = observations['image'], observations['gripper_state']
  rng_state = policy._rng.state.numpy().copy()  # pylint: disable=protected-access
  seeing = policy.action_change(frames, gripper)
  assert seeing > 0.2  # this fresh network's greedy move follows the image (0.51 here)
  assert policy.action_change(frames, gripper) == seeing  # deterministic
  np.testing.assert_array_equal(policy._rng.state.numpy(), rng_state)  # no random stream used
  assert policy.action_change(np.repeat(frames[:1], 6, 0), gripper) == 0.0  # one scene
  stem = net._tower[0]  # pylint: disable=protected-access
  stem.kernel.assign(tf.zeros_like(stem.kernel))  # every image gives the same features
  assert policy.action_change(frames, gripper) == 0.0
  with pytest.raises(ValueError, match='at least 2 frames and one gripper state per frame'):
    policy.action_change(frames, gripper[:5])


class LeftColumnQ(FakeQ):
  """FakeQ(gain=1) whose embedding is the mean of each crop's left column."""

  def __init__(self):
    super().__init__(gain=1.0)

  def embed_image(self, image, training=False):
    return tf.reduce_mean(image[:, :, :1], axis=[1, 2, 3], keepdims=True)  # [B, 1, 1, 1]


def test_test_time_crops_average_logits_over_spread_offsets():
  # Column c holds 3 c^2 (mod 256): crop k of 3 starts at column 0, 4, 8 of 40 (values 0,
  # 48, 192; mean 80), the center crop at column 4 (48).
  values = (3 * np.arange(RENDER[1]) ** 2 % 256).astype(np.uint8)
  columns = np.broadcast_to(values[None, None, :, None], (2, RENDER[0], RENDER[1], 3))
  obs = {'image': np.ascontiguousarray(columns),
         'gripper_state': np.zeros((2, 2), np.float32)}
  policy = policies.CEMPolicy(LeftColumnQ(), RENDER, CROP, num_test_crops=3, num_samples=256,
                              num_iterations=4, num_elites=16, seed=0)
  dx = specs.decode_action(policies.greedy_action_fn(policy)(obs))[0][:, 0]
  left = specs.to_float_image(np.array([0, 48, 192], np.uint8)).numpy()
  # Mean logit over the crops: best dx = 0.3 + mean(left columns) / 2.
  np.testing.assert_allclose(dx, 0.3 + left.mean() / 2, atol=0.05)
  single = policies.CEMPolicy(LeftColumnQ(), RENDER, CROP, num_test_crops=1, num_samples=256,
                              num_iterations=4, num_elites=16, seed=0)
  dx_center = specs.decode_action(policies.greedy_action_fn(single)(obs))[0][:, 0]
  center = specs.to_float_image(np.array([48], np.uint8)).numpy()[0]
  np.testing.assert_allclose(dx_center, 0.3 + center / 2, atol=0.05)
  with pytest.raises(ValueError, match='num_test_crops'):
    policies.CEMPolicy(FakeQ(), RENDER, CROP, num_test_crops=0)


def test_policy_saver_roundtrip_and_py_tf_eager(tmp_path):
  net = q_network_lib.GraspingQNetwork(crop_size=CROP, **q_network_lib.small_config())
  policy = policies.CEMPolicy(net, RENDER, CROP, num_samples=16, seed=5)
  policy.set_exploration(0.25, 0.1)
  obs = _observations(batch=3)
  policy_saver.PolicySaver(policy, batch_size=None).save(str(tmp_path))
  loaded = tf.saved_model.load(str(tmp_path))
  # The random generator's state is saved, so the next call of both matches exactly.
  expected = policy.action(_time_step(obs)).action.numpy()
  got = loaded.action(_time_step(obs), ()).action.numpy()
  np.testing.assert_allclose(got, expected, atol=1e-5)
  # Exploration variables are found by name and settable in the loaded model.
  assert policies.set_saved_model_exploration(loaded, 0.0, 0.0)
  greedy = policies.policy_action_fn(loaded)(obs)
  _check_valid(greedy)
  # PyTFEagerPolicy on unbatched env time steps.
  py_policy = py_tf_eager_policy.PyTFEagerPolicy(policy, use_tf_function=True)
  single = ts.restart({k: v[0] for k, v in obs.items()})
  action = py_policy.action(single).action
  assert action.shape == (specs.ACTION_DIM,)
  _check_valid(action[None])


def test_rejects_bad_arguments():
  with pytest.raises(TypeError, match='embed_image'):
    policies.CEMPolicy(object(), RENDER, CROP)
  with pytest.raises(ValueError, match='crop_size'):
    policies.CEMPolicy(FakeQ(), (32, 40), (48, 48))
  with pytest.raises(ValueError, match='allowed_modes'):
    policies.CEMPolicy(FakeQ(), RENDER, CROP, allowed_modes=(False,) * 4)
  with pytest.raises(TypeError, match='CEMPolicy'):
    policies.greedy_action_fn(object())


class _ConstantPolicy:
  """A per-env Python policy: its action encodes the env index and the step count."""

  def __init__(self, env, seed):
    self.env, self.seed, self.steps, self.resets = env, seed, 0, 0

  def reset(self):
    self.resets += 1

  def action(self, time_step):
    self.steps += 1
    del time_step
    return np.array([self.env / 10, self.steps / 10, 0, 0, 1, 0, 0, 0], np.float32)


def test_scripted_action_fn_routes_per_env():
  fn = policies.ScriptedActionFn(_ConstantPolicy, name='const')
  fn.begin_episode(0, 0, seed=None)
  fn.begin_episode(2, 2, seed=None)
  obs = _observations(batch=2)
  steps = [ts.restart({k: v[i] for k, v in obs.items()}) for i in range(2)]
  actions = fn(obs, [0, 2], steps)
  np.testing.assert_allclose(actions[:, :2], [[0.0, 0.1], [0.2, 0.1]])
  fn.begin_episode(0, 0, seed=None)  # no seed: the env keeps its policy object
  assert fn(obs, [0, 2], steps)[0, 1] == pytest.approx(0.2)
  fn.begin_episode(0, 0, seed=3)  # a seed: a fresh policy for the episode
  assert fn(obs, [0, 2], steps)[0, 1] == pytest.approx(0.1)
  with pytest.raises(ValueError, match='begin_episode'):
    fn(obs, [1], steps[:1])
  with pytest.raises(ValueError, match='scripted policy'):
    policies.scripted_action_fn('nope')


def test_oracle_is_the_noise_free_scripted_policy():
  from rl_cyclegan.envs import scripted
  fn = policies.scripted_action_fn('oracle')
  policy = fn._make_policy(None, 3)  # pylint: disable=protected-access
  assert isinstance(policy, scripted.ScriptedGraspPolicy)
  assert (policy._noise_std, policy._aim_std, policy._early_close_prob) == (0.0, 0.0, 0.0)  # pylint: disable=protected-access
  noisy = policies.scripted_action_fn('scripted')._make_policy(None, 3)  # pylint: disable=protected-access
  assert noisy._noise_std > 0  # pylint: disable=protected-access
