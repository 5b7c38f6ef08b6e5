"""Tests for rl_cyclegan/actors/rollout.py: lockstep batched episodes."""
import numpy as np
import pytest
from tf_agents.trajectories import time_step as ts

from rl_cyclegan.actors import policies
from rl_cyclegan import specs
from rl_cyclegan.envs import grasping
from rl_cyclegan.actors import rollout

RENDER = (32, 40)


class CountingEnv:
  """A pure-Python env whose episodes last ``lengths[k]`` steps (k-th reset), success if even.

  The image holds the episode's seed (or its reset count) so tests can tell episodes apart.
  """

  def __init__(self, lengths, never_ends=False):
    self.lengths = list(lengths)
    self.resets = 0
    self.seeds = []
    self._seed = None
    self.never_ends = never_ends
    self.appearance, self.action_mode = 'sim', 'auto_descend'
    self.episode_success = False

  def seed(self, seed):
    self._seed = seed
    self.seeds.append(seed)

  def _obs(self):
    value = self._seed if self._seed is not None else self.resets
    return {'image': np.full((4, 5, 3), value % 256, np.uint8),
            'gripper_state': np.array([0.0, self.t], np.float32)}

  def reset(self):
    self.length = self.lengths[self.resets % len(self.lengths)]
    self.resets += 1
    self.t = 0
    return ts.restart(self._obs())

  def step(self, action):
    assert action.shape == (specs.ACTION_DIM,)
    self.t += 1
    if self.t >= self.length and not self.never_ends:
      self.episode_success = self.length % 2 == 0
      return ts.termination(self._obs(), np.float32(self.episode_success))
    return ts.transition(self._obs(), np.float32(0.0))


class RecordingActionFn:
  name = 'recording'

  def __init__(self):
    self.calls = []  # env_ids per call
    self.begun = []

  def begin_episode(self, env_id, env, seed):
    self.begun.append((env_id, seed))

  def __call__(self, observations, env_ids, time_steps):
    assert observations['image'].shape[0] == len(env_ids) == len(time_steps)
    self.calls.append(list(env_ids))
    return np.tile(np.array([0, 0, 0, 0, 1, 0, 0, 0], np.float32), (len(env_ids), 1))


def test_lockstep_one_call_per_step_for_all_active_envs():
  # Env 0: episodes of 2 steps; env 1: of 3 steps. 4 episodes.
  envs = [CountingEnv([2]), CountingEnv([3])]
  fn = RecordingActionFn()
  seen = []
  episodes = rollout.run_episodes(envs, fn, 4, progress=seen.append,
                                  episode_seeds=[10, 11, 12, 13])
  # Steps: t1 [0,1], t2 [0,1] (env 0 ends ep 0, starts ep 2), t3 [0,1] (env 1 ends ep 1, starts
  # ep 3), t4 [0,1] (env 0 ends ep 2; all 4 started, env 0 idles), t5 [1], t6 [1] (ends ep 3).
  assert fn.calls == [[0, 1]] * 4 + [[1]] * 2
  assert [e.metadata['episode_id'] for e in episodes] == ['00000', '00001', '00002', '00003']
  assert [e.metadata['env_index'] for e in episodes] == [0, 1, 0, 1]
  assert [e.metadata['seed'] for e in episodes] == [10, 11, 12, 13]
  assert envs[0].seeds == [10, 12] and envs[1].seeds == [11, 13]
  assert fn.begun == [(0, 10), (1, 11), (0, 12), (1, 13)]
  assert [len(e.actions) for e in episodes] == [2, 3, 2, 3]
  assert [e.metadata['success'] for e in episodes] == [True, False, True, False]
  assert seen == episodes
  for e in episodes:
    assert e.metadata['policy'] == 'recording' and e.metadata['appearance'] == 'sim'
    assert e.images.shape[0] == e.gripper_states.shape[0] == len(e.actions) + 1
    np.testing.assert_array_equal(e.images[:, 0, 0, 0], e.metadata['seed'])  # own scene
    np.testing.assert_array_equal(e.dones, [0.0] * (len(e.actions) - 1) + [1.0])


def test_max_steps_truncates_and_none_guards():
  envs = [CountingEnv([5], never_ends=True)]
  episodes = rollout.run_episodes(envs, RecordingActionFn(), 2, max_steps=3)
  assert [len(e.actions) for e in episodes] == [3, 3]
  assert all(e.metadata['truncated'] and not e.metadata['success'] for e in episodes)
  np.testing.assert_array_equal(episodes[0].dones, 0.0)
  with pytest.raises(RuntimeError, match='did not end'):
    rollout.run_episodes(envs, RecordingActionFn(), 1)


def test_bad_action_shape_is_named():
  def bad(observations, env_ids, time_steps):
    return np.zeros((len(env_ids), 7), np.float32)
  with pytest.raises(ValueError, match=r'expected \[2, 8\]'):
    rollout.run_episodes([CountingEnv([2]), CountingEnv([2])], bad, 2)


def test_fewer_episodes_than_envs_and_zero():
  envs = [CountingEnv([2]) for _ in range(3)]
  assert len(rollout.run_episodes(envs, RecordingActionFn(), 2)) == 2
  assert envs[2].resets == 0
  assert rollout.run_episodes(envs, RecordingActionFn(), 0) == []


def _grasping_envs(n):
  return [grasping.GraspingEnv(render_size=RENDER, object_split='test', seed=i,
                               num_objects=3) for i in range(n)]


def test_grasping_envs_random_policy_well_formed_episodes():
  envs = _grasping_envs(2)
  try:
    episodes = rollout.run_episodes(envs, policies.scripted_action_fn('random'), 3,
                                    episode_seeds=lambda j: 100 + j,
                                    metadata={'object_split': 'test'})
  finally:
    for env in envs:
      env.close()
  assert len(episodes) == 3
  assert sorted(e.metadata['episode_id'] for e in episodes) == ['00000', '00001', '00002']
  for e in episodes:
    t = len(e.actions)
    assert 1 <= t <= 8
    assert e.images.shape == (t + 1, *RENDER, 3) and e.images.dtype == np.uint8
    assert e.gripper_states.shape == (t + 1, 2) and e.gripper_states.dtype == np.float32
    assert e.actions.shape == (t, 8) and e.rewards.shape == e.dones.shape == (t,)
    assert e.dones[-1] == 1.0 and np.all(e.dones[:-1] == 0.0)
    assert e.metadata['success'] == bool(e.rewards[-1] > 0)
    assert e.metadata['policy'] == 'random' and e.metadata['object_split'] == 'test'
    assert e.metadata['appearance'] == 'sim' and e.metadata['action_mode'] == 'auto_descend'


def test_seeded_episodes_do_not_depend_on_num_envs():
  # Same episode seeds, scripted policy reseeded per episode: episode j is the same whether it
  # runs with 1 env or in lockstep with 2 (the paired-comparison property evaluate relies on).
  results = []
  for n in (1, 2):
    envs = _grasping_envs(n)
    try:
      episodes = rollout.run_episodes(envs, policies.scripted_action_fn('scripted'), 2,
                                      episode_seeds=[7, 8])
    finally:
      for env in envs:
        env.close()
    results.append(sorted(episodes, key=lambda e: e.metadata['episode_id']))
  for a, b in zip(*results):
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert a.metadata['success'] == b.metadata['success']


class SeededLengthEnv(CountingEnv):
  """A CountingEnv whose episode length follows the episode's seed (2 + seed % 2), as a real
  env's episode follows its scene: any environment runs episode j the same."""

  def __init__(self):
    super().__init__([1])
    self.closed = False

  def reset(self):
    time_step = super().reset()
    self.length = 2 + self._seed % 2
    return time_step

  def close(self):
    self.closed = True


class DivergingEnv(SeededLengthEnv):
  """'Diverges' at step ``at_step`` of its ``on_reset``-th reset (1-based; at_step 0: in that
  reset itself)."""

  def __init__(self, on_reset, at_step=1):
    super().__init__()
    self.on_reset, self.at_step = on_reset, at_step

  def reset(self):
    time_step = super().reset()
    if self.resets == self.on_reset and self.at_step == 0:
      raise grasping.PhysicsDivergedError(f'nan at reset {self.resets}')
    return time_step

  def step(self, action):
    if self.resets == self.on_reset and self.t + 1 == self.at_step:
      raise grasping.PhysicsDivergedError(f'nan at step {self.at_step} of reset {self.resets}')
    return super().step(action)


def _summary(episodes):
  return [(e.metadata['episode_id'], e.metadata['seed'], e.metadata['success'],
           e.images[:, 0, 0, 0].tolist(), e.actions.shape[0]) for e in episodes]


@pytest.mark.parametrize('at_step', [0, 1, 2])
def test_a_diverged_env_is_replaced_and_its_episode_runs_again_the_same(at_step):
  seeds = [10, 11, 12, 13, 14]
  clean = rollout.run_episodes([SeededLengthEnv(), SeededLengthEnv()], RecordingActionFn(),
                               5, episode_seeds=seeds)
  # Env 0 diverges in its 2nd episode (episode 2): at its reset, or at its 1st or 2nd step.
  envs = [DivergingEnv(on_reset=2, at_step=at_step), SeededLengthEnv()]
  first = envs[0]
  made, messages = [], []

  def make_env(i):
    made.append(i)
    return SeededLengthEnv()

  episodes = rollout.run_episodes(envs, RecordingActionFn(), 5, episode_seeds=seeds,
                                  replace_env=rollout.replacing(envs, make_env),
                                  log=messages.append)
  assert made == [0] and first.closed and envs[0] is not first  # the caller's list is updated
  assert len(messages) == 1 and 'episode 2 (seed 12) on env 0' in messages[0], messages
  # The same episodes (ids, seeds, images, lengths); only the completion order may differ.
  key = lambda e: e.metadata['episode_id']
  assert _summary(sorted(episodes, key=key)) == _summary(sorted(clean, key=key))


def test_without_replace_env_or_after_max_replacements_divergence_is_raised():
  with pytest.raises(grasping.PhysicsDivergedError, match='nan at step 1'):
    rollout.run_episodes([DivergingEnv(on_reset=1)], RecordingActionFn(), 2, episode_seeds=[0, 1])
  envs = [DivergingEnv(on_reset=1)]
  made = []

  def always_diverging(i):
    made.append(i)
    return DivergingEnv(on_reset=1)

  with pytest.raises(grasping.PhysicsDivergedError, match='nan at step 1'):
    rollout.run_episodes(envs, RecordingActionFn(), 2, episode_seeds=[0, 1],
                         replace_env=rollout.replacing(envs, always_diverging),
                         log=lambda m: None)
  assert len(made) == rollout.MAX_ENV_REPLACEMENTS
