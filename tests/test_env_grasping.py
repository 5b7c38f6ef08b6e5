"""GraspingEnv: tf_agents validation, specs contract, seeding, action modes, privileged state."""

import numpy as np
import pytest
from tf_agents.environments import utils as env_utils
from tf_agents.specs import tensor_spec

from rl_cyclegan import specs
from rl_cyclegan.envs import grasping
from rl_cyclegan.envs import scripted

SIZE = (32, 40)


def _run(env, seed, episodes):
  """Scripted episodes from ``seed``: (images [T, H, W, 3], rewards, successes)."""
  env.seed(seed)
  policy = scripted.ScriptedGraspPolicy(env, seed=seed)
  images, rewards, successes = [], [], []
  for _ in range(episodes):
    time_step = env.reset()
    policy.reset()
    images.append(time_step.observation['image'])
    while not time_step.is_last():
      time_step = env.step(policy.action(time_step))
      images.append(time_step.observation['image'])
      rewards.append(float(time_step.reward))
    successes.append(env.episode_success)
  return np.stack(images), rewards, successes


@pytest.mark.parametrize('action_mode', ['auto_descend', 'full'])
def test_validate_py_environment(action_mode):
  env = grasping.GraspingEnv(render_size=SIZE, action_mode=action_mode, seed=0, max_steps=4)
  env_utils.validate_py_environment(env, episodes=2)


def test_specs_match_contract():
  env = grasping.GraspingEnv(render_size=SIZE, seed=0)
  assert env.observation_spec() == tensor_spec.to_array_spec(specs.env_observation_spec(SIZE))
  assert env.action_spec() == tensor_spec.to_array_spec(specs.bounded_action_spec())
  time_step = env.reset()
  assert time_step.observation['image'].shape == SIZE + (3,)
  assert time_step.observation['image'].dtype == np.uint8
  state = time_step.observation['gripper_state']
  assert state.dtype == np.float32 and state.shape == (2,)
  assert state[0] == 0.0  # open at reset
  assert 0.2 < state[1] < 0.35  # about start_height above the tray floor


def test_same_seed_same_episodes_and_reseed_replays():
  a = grasping.GraspingEnv(appearance='real', render_size=SIZE, seed=3)
  b = grasping.GraspingEnv(appearance='real', render_size=SIZE, seed=3)
  images_a, rewards_a, _ = _run(a, 11, 2)
  _run(b, 12, 1)  # use b for something else first
  images_b, rewards_b, _ = _run(b, 11, 2)  # then reseed: must replay a exactly
  assert images_a.shape == images_b.shape
  np.testing.assert_array_equal(images_a, images_b)
  assert rewards_a == rewards_b
  images_c, _, _ = _run(a, 12, 1)
  assert not np.array_equal(images_a[0], images_c[0])


def test_objects_rest_in_tray_after_reset():
  env = grasping.GraspingEnv(render_size=SIZE, seed=4, num_objects=5)
  env.reset()
  positions = env.object_positions()
  assert positions.shape == (5, 3)
  heights = positions[:, 2] - env.floor_height
  assert np.all(heights > -0.03) and np.all(heights < 0.12), heights
  assert env.gripper_position().shape == (3,)
  assert -np.pi / 2 <= env.gripper_angle() <= np.pi / 2


def test_auto_descend_ends_at_max_steps_and_full_mode_terminate():
  env = grasping.GraspingEnv(render_size=SIZE, seed=1, max_steps=5, step_penalty=0.01)
  time_step = env.reset()
  move = np.array([0, 0, 0, 0, 1, 0, 0, 0], np.float32)
  heights = [time_step.observation['gripper_state'][1]]
  for t in range(5):
    time_step = env.step(move)
    heights.append(time_step.observation['gripper_state'][1])
    assert time_step.is_last() == (t == 4)
  assert heights[3] < heights[0] - 0.1  # descended by itself
  assert time_step.observation['gripper_state'][0] == 1.0  # closed for the grasp
  assert float(time_step.reward) == pytest.approx(float(env.episode_success) - 0.01)

  env = grasping.GraspingEnv(render_size=SIZE, seed=1, action_mode='full', max_steps=10)
  env.reset()
  time_step = env.step(np.array([0, 0, -1, 0, 1, 0, 0, 0], np.float32))
  assert not time_step.is_last()
  time_step = env.step(np.array([0, 0, 0, 0, 1, 1, 0, 0], np.float32))  # close
  assert time_step.observation['gripper_state'][0] == 1.0
  time_step = env.step(np.array([0, 0, 0, 0, 1, 0, 0, 1], np.float32))  # terminate
  assert time_step.is_last()
  assert float(time_step.reward) == float(env.episode_success)


def test_grasp_distance_is_measured_at_the_grasp():
  env = grasping.GraspingEnv(render_size=SIZE, seed=2, max_steps=3, num_objects=3)
  env.reset()
  assert env.grasp_distance is None
  tip = env.gripper_position()[:2]
  expected = np.min(np.linalg.norm(env.object_positions()[:, :2] - tip, axis=1))
  for _ in range(3):
    assert env.grasp_distance is None
    time_step = env.step(np.array([0, 0, 0, 0, 1, 0, 0, 0], np.float32))  # straight down
  assert time_step.is_last()
  # The tip came straight down onto the resting scene: its distance to the nearest object.
  assert env.grasp_distance == pytest.approx(expected, abs=0.01)
  env.reset()
  assert env.grasp_distance is None


def test_two_instances_in_one_process_are_independent():
  a = grasping.GraspingEnv(render_size=SIZE, seed=7)
  b = grasping.GraspingEnv(render_size=SIZE, seed=7)
  a.reset()
  a.step(np.array([1, 1, 0, 0, 1, 0, 0, 0], np.float32))
  b.reset()
  c = grasping.GraspingEnv(render_size=SIZE, seed=7)
  np.testing.assert_array_equal(b.render(), c.reset().observation['image'])


def test_bad_arguments_and_missing_assets(monkeypatch, tmp_path):
  with pytest.raises(ValueError, match='action_mode'):
    grasping.GraspingEnv(action_mode='teleport')
  with pytest.raises(ValueError, match='object_split'):
    grasping.GraspingEnv(object_split='val')
  assert len(grasping.object_urdfs('train')) == 900
  assert len(grasping.object_urdfs('test')) == 100
  assert all(p.endswith('0.urdf') for p in grasping.object_urdfs('test'))
  monkeypatch.setattr(grasping.pybullet_data, 'getDataPath', lambda: str(tmp_path))
  with pytest.raises(FileNotFoundError, match='random_urdfs'):
    grasping.GraspingEnv()


def test_a_diverged_simulation_raises_naming_the_seed_episode_and_step(monkeypatch):
  env = grasping.GraspingEnv(render_size=SIZE, seed=5)
  env.reset()
  env.step(np.zeros(specs.ACTION_DIM, np.float32))
  monkeypatch.setattr(env, '_tip_position', lambda: np.array([0.5, np.nan, np.nan]))
  with pytest.raises(grasping.PhysicsDivergedError,
                     match=r'GraspingEnv\(seed=5\): the fingertip position is \[0\.5, nan, nan\] '
                           r'at step 2 of episode 1'):
    env.step(np.zeros(specs.ACTION_DIM, np.float32))


def test_a_diverged_object_raises_though_the_fingertip_is_finite(monkeypatch):
  """An object's NaN pose is caught at the observation, at reset too: the scripted policy aims
  at the objects, so it would otherwise write a NaN action into a log."""
  env = grasping.GraspingEnv(render_size=SIZE, seed=5, num_objects=2)
  env.reset()
  finite = env.object_positions
  monkeypatch.setattr(env, 'object_positions',
                      lambda: np.array([[0.5, 0.0, 0.1], [np.nan, 0.0, 0.1]]))
  with pytest.raises(grasping.PhysicsDivergedError,
                     match=r'GraspingEnv\(seed=5\): object 1 \(urdf \d+\) is at \[nan, 0\.0, '
                           r'0\.1\] at step 0 of episode 2'):
    env.reset()
  monkeypatch.setattr(env, 'object_positions', finite)
  env.reset()  # a finite scene observes as before
  env.step(np.zeros(specs.ACTION_DIM, np.float32))


def test_making_an_env_prints_nothing_to_stdout(capfd):
  """pybullet's connect prints 'argv[0]=' to fd 1 (a line per env in every log); the env
  keeps it out, and the process's own output before and after still arrives."""
  print('before', flush=True)
  env = grasping.GraspingEnv(render_size=SIZE)
  print('after', flush=True)
  env.close()
  out = capfd.readouterr().out
  assert out.splitlines() == ['before', 'after'], out
