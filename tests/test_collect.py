"""Collector: sharding, worker processes, resume after deletion/interruption, summaries."""
import collections
import dataclasses
import io
import json
import os
import queue as queue_lib
import threading

import numpy as np
import pytest

from rl_cyclegan import specs
from rl_cyclegan.actors import collect
from rl_cyclegan.data import episodes
from rl_cyclegan.envs import grasping

TINY = (32, 40)
NAMES = {'appearance': ('sim', 'real'), 'policy': ('scripted', 'random'),
         'action_mode': ('auto_descend', 'full'), 'object_split': ('train', 'test')}

FakeTimeStep = collections.namedtuple('FakeTimeStep', ['observation', 'reward', 'discount',
                                                       'last'])
FakeTimeStep.is_last = lambda self: self.last


class FakeEnv:
  """Deterministic stand-in for GraspingEnv: episode length and pixels follow the seed."""

  def __init__(self, config, seed, fail_on_seed=None):
    self._size = tuple(config.render_size)
    self._fail_on_seed = fail_on_seed
    self.seed(seed)
    self.episode_success = False

  def seed(self, seed):
    self._rng = np.random.default_rng(seed)
    self._seed = seed

  def _observe(self):
    image = self._rng.integers(0, 256, [*self._size, 3], dtype=np.uint8)
    return {'image': image, 'gripper_state': np.array([0.0, self._t / 10], np.float32)}

  def reset(self):
    if self._seed == self._fail_on_seed:
      raise RuntimeError('simulated crash')
    self._t = 0
    self._length = int(self._rng.integers(2, 5))
    return FakeTimeStep(self._observe(), 0.0, 1.0, False)

  def step(self, action):
    assert action.shape == (specs.ACTION_DIM,)
    self._t += 1
    last = self._t >= self._length
    if last:
      self.episode_success = bool(self._rng.random() < 0.5)
    reward = float(self.episode_success) if last else 0.0
    return FakeTimeStep(self._observe(), reward, 0.0 if last else 1.0, last)


class FakePolicy:

  def __init__(self, seed):
    self._rng = np.random.default_rng(seed)

  def reset(self):
    pass

  def action(self, time_step):
    del time_step
    return np.concatenate([self._rng.uniform(-1, 1, 5), [0, 0, 0]]).astype(np.float32)


def fake_env_factory(config, seed):
  return FakeEnv(config, seed)


def fake_policy_factory(name, env, seed, noise_scale=None):
  del name, env, noise_scale
  return FakePolicy(seed)


class CrashingEnvFactory:
  """Crashes in the episode whose seed is given (picklable)."""

  def __init__(self, seed):
    self.seed = seed

  def __call__(self, config, seed):
    return FakeEnv(config, seed, fail_on_seed=self.seed)

  def __eq__(self, other):
    return isinstance(other, CrashingEnvFactory) and other.seed == self.seed

  def __hash__(self):
    return hash(self.seed)


class DivergingEnvFactory:
  """The physics diverges at the first step of the episode with seed ``seed``: the first
  ``times`` times it gets there, counted in files under ``marker_dir`` (across processes)."""

  def __init__(self, seed, marker_dir, times):
    self.seed, self.marker_dir, self.times = seed, str(marker_dir), times

  def __call__(self, config, seed):
    env = FakeEnv(config, seed)
    step = env.step

    def diverging_step(action):
      if env._seed == self.seed:
        done = len(os.listdir(self.marker_dir))
        if done < self.times:
          open(os.path.join(self.marker_dir, str(done)), 'w').close()
          raise grasping.PhysicsDivergedError(
              f'fingertip position is [nan, nan, nan] (seed {self.seed})')
      return step(action)

    env.step = diverging_step
    return env


def _config(**kwargs):
  defaults = dict(appearance='real', policy='scripted', num_episodes=5, episodes_per_shard=2,
                  render_size=TINY, seed=3)
  defaults.update(kwargs)
  return collect.CollectConfig(**defaults)


def _fake_collect(output_dir, config, num_workers=0, env_factory=fake_env_factory):
  stream = io.StringIO()
  summary = collect.collect(str(output_dir), config, num_workers=num_workers,
                            env_factory=env_factory, policy_factory=fake_policy_factory,
                            names=NAMES, stream=stream, progress_interval=0.0)
  return summary, stream.getvalue()


def _shards(directory):
  return sorted(n for n in os.listdir(directory) if n.endswith('.tfrecord'))


def test_shard_names_seeds_and_sizes():
  config = _config(num_episodes=5, episodes_per_shard=2)
  assert config.num_shards == 3
  assert [config.shard_size(i) for i in range(3)] == [2, 2, 1]
  assert os.path.basename(config.shard_path('/d', 2)) == 'episodes-00002-of-00003.tfrecord'
  assert collect.derive_seed(3, 0) == collect.derive_seed(3, 0)
  assert len({collect.derive_seed(3, i) for i in range(100)}) == 100
  assert 0 <= collect.derive_seed(3, 1) < 2**31


def test_fake_collection_resume_is_deterministic(tmp_path):
  config = _config()
  summary, log = _fake_collect(tmp_path, config)
  names = _shards(tmp_path)
  assert names == [f'episodes-0000{i}-of-00003.tfrecord' for i in range(3)]
  assert summary['episodes'] == 5 and summary['shards_written'] == 3
  assert 'episodes/s' in log and 'ETA' in log
  original = {n: open(tmp_path / n, 'rb').read() for n in names}
  report = episodes.validate_directory(tmp_path, expected_image_size=TINY)
  assert report.ok and report.num_episodes == 5, str(report)
  assert report.num_transitions == summary['transitions']
  eps = list(episodes.read_episodes(tmp_path / names[1]))
  assert [e.metadata['episode_id'] for e in eps] == ['00001-0000', '00001-0001']
  assert eps[0].metadata['seed'] == collect.derive_seed(collect.derive_seed(3, 1), 0)
  assert eps[0].metadata['policy'] == 'scripted' and eps[0].metadata['appearance'] == 'real'
  assert all(e.dones[-1] == 1.0 and e.dones[:-1].sum() == 0 for e in eps)
  # Delete shards 0 and 2; the re-run collects them in another order and gets the same bytes.
  os.remove(tmp_path / names[0])
  os.remove(tmp_path / names[2])
  kept_mtime = os.stat(tmp_path / names[1]).st_mtime_ns
  summary, log = _fake_collect(tmp_path, config)
  assert summary['shards_skipped'] == 1 and summary['shards_written'] == 2
  assert summary['episodes'] == 5 and summary['episodes_collected'] == 3
  assert os.stat(tmp_path / names[1]).st_mtime_ns == kept_mtime
  for n in names:
    assert open(tmp_path / n, 'rb').read() == original[n], n
  # Nothing to do on a third run.
  summary, _ = _fake_collect(tmp_path, config)
  assert summary['shards_written'] == 0 and summary['episodes'] == 5


def test_interrupted_collection_keeps_complete_shards(tmp_path):
  config = _config(num_episodes=6, episodes_per_shard=2)
  crash_seed = collect.derive_seed(collect.derive_seed(3, 1), 1)  # shard 1, episode 1
  with pytest.raises(RuntimeError, match=r'episodes-00001-of-00003.tfrecord failed.*simulated'):
    _fake_collect(tmp_path, config, env_factory=CrashingEnvFactory(crash_seed))
  assert 'episodes-00001-of-00003.tfrecord' not in _shards(tmp_path)
  assert not [n for n in os.listdir(tmp_path) if episodes.TMP_MARKER in n]
  assert 'episodes-00000-of-00003.tfrecord' in _shards(tmp_path)
  summary, _ = _fake_collect(tmp_path, config)
  assert len(_shards(tmp_path)) == 3 and summary['episodes'] == 6
  assert summary['shards_written'] == 3 - summary['shards_skipped']


def test_stale_temp_files_removed_and_config_mismatch_refused(tmp_path):
  stale = tmp_path / 'episodes-00000-of-00003.tfrecord.tmp-999999999'
  stale.write_bytes(b'partial')
  _fake_collect(tmp_path, _config())
  assert not stale.exists()
  with pytest.raises(ValueError, match=r"another config \(render_size: \[32, 40\] -> \[16, 20\]"):
    _fake_collect(tmp_path, _config(render_size=(16, 20)))


def test_unknown_names_list_valid_values(tmp_path):
  with pytest.raises(ValueError, match=r"unknown appearance 'reel'; valid values: sim, real"):
    collect.check_config(_config(appearance='reel'), NAMES)
  with pytest.raises(ValueError, match=r"unknown policy 'qtopt'; valid values: scripted, random"):
    collect.check_config(_config(policy='qtopt'), NAMES)
  with pytest.raises(ValueError, match=r"unknown action_mode 'fast'"):
    _fake_collect(tmp_path, _config(action_mode='fast'))
  assert not os.listdir(tmp_path)


def test_grasping_env_two_workers_then_refill_one_shard(tmp_path):
  """The real GraspingEnv with 2 spawn workers: 2 shards x 2 episodes at 32x40."""
  config = _config(num_episodes=4, episodes_per_shard=2, render_size=TINY, seed=11)
  stream = io.StringIO()
  summary = collect.collect(str(tmp_path), config, num_workers=2, stream=stream,
                            progress_interval=0.0)
  names = _shards(tmp_path)
  assert names == ['episodes-00000-of-00002.tfrecord', 'episodes-00001-of-00002.tfrecord']
  assert not [n for n in os.listdir(tmp_path) if episodes.TMP_MARKER in n]
  report = episodes.validate_directory(tmp_path, expected_image_size=TINY)
  assert report.ok and report.num_episodes == 4, str(report)
  with open(tmp_path / collect.SUMMARY_FILE) as f:
    on_disk = json.load(f)
  assert on_disk['episodes'] == 4 and on_disk['transitions'] == report.num_transitions
  assert on_disk['success_rate'] == pytest.approx(report.success_rate)
  assert summary['num_workers'] == 2 and on_disk['seconds'] > 0
  first = list(episodes.read_episodes(tmp_path / names[1], decode_images=False))
  # Delete shard 1; the re-run (in-process) refills only it.
  kept = tmp_path / names[0]
  kept_stat, kept_bytes = os.stat(kept).st_mtime_ns, kept.read_bytes()
  os.remove(tmp_path / names[1])
  summary = collect.collect(str(tmp_path), config, num_workers=0, stream=io.StringIO())
  assert summary['shards_skipped'] == 1 and summary['shards_written'] == 1
  assert os.stat(kept).st_mtime_ns == kept_stat and kept.read_bytes() == kept_bytes
  assert _shards(tmp_path) == names
  assert not [n for n in os.listdir(tmp_path) if episodes.TMP_MARKER in n]
  refilled = list(episodes.read_episodes(tmp_path / names[1], decode_images=False))
  assert [e.metadata['seed'] for e in refilled] == [e.metadata['seed'] for e in first]
  assert episodes.validate_directory(tmp_path, expected_image_size=TINY).ok


def test_noise_scale_recorded_and_checked(tmp_path):
  config = _config(noise_scale=(0, 1))
  assert config.to_json()['noise_scale'] == [0.0, 1.0]
  assert 'noise_scale' not in _config().to_json()  # configs of older logs still match
  with pytest.raises(ValueError, match='noise_scale'):
    collect.check_config(_config(policy='random', noise_scale=(0, 1)))
  with pytest.raises(ValueError, match='noise_scale'):
    collect.check_config(_config(noise_scale=(1, 0)))


def test_noise_scale_command_line():
  from rl_cyclegan import cli  # pylint: disable=g-import-not-at-top
  import argparse  # pylint: disable=g-import-not-at-top
  assert cli.parse_range('0,1') == (0.0, 1.0)
  for bad in ('0', '0,1,2', 'a,b'):
    with pytest.raises(argparse.ArgumentTypeError, match='low,high'):
      cli.parse_range(bad)
  with pytest.raises(ValueError, match='noise_scale'):
    collect.check_config(_config(noise_scale=('x', 1)))


def test_appearance_kwargs_render_the_same_episodes_in_another_world(tmp_path):
  """--appearance_kwargs (e.g. real_gap) changes the images only: the episodes' actions and
  outcomes are those of the default world's log with the same seed; the config records it."""
  base = _config(appearance='real', num_episodes=2, episodes_per_shard=2, render_size=TINY,
                 seed=7, noise_scale=(0.0, 1.0))
  half = dataclasses.replace(base, appearance_kwargs={'real_gap': 0.5})
  assert half.to_json()['appearance_kwargs'] == {'real_gap': 0.5}
  assert 'appearance_kwargs' not in base.to_json()  # configs of older logs still match
  logs = {}
  for name, config in (('default', base), ('half', half)):
    collect.collect(str(tmp_path / name), config, num_workers=0, stream=io.StringIO())
    logs[name] = list(episodes.read_episodes(tmp_path / name / _shards(tmp_path / name)[0]))
  for a, b in zip(logs['default'], logs['half']):
    np.testing.assert_array_equal(a.actions, b.actions)
    assert a.metadata['success'] == b.metadata['success']
    assert np.abs(a.images.astype(int) - b.images.astype(int)).mean() > 2.0  # another look
  with pytest.raises(ValueError, match='another config'):  # a log is one world
    collect.collect(str(tmp_path / 'default'), half, num_workers=0, stream=io.StringIO())
  with pytest.raises(ValueError, match=r"appearance_kwargs \{'real_gap': 2\.0\}.*'real'.*\[0, 1\]"):
    collect.check_config(dataclasses.replace(base, appearance_kwargs={'real_gap': 2.0}))
  with pytest.raises(ValueError, match=r"appearance_kwargs.*'sim'"):
    collect.check_config(dataclasses.replace(base, appearance='sim',
                                             appearance_kwargs={'real_gap': 0.5}))


def test_json_object_command_line():
  from rl_cyclegan import cli  # pylint: disable=g-import-not-at-top
  import argparse  # pylint: disable=g-import-not-at-top
  assert cli.parse_json_object('{"real_gap": 0.5}') == {'real_gap': 0.5}
  for bad in ('real_gap=0.5', '[0.5]'):
    with pytest.raises(argparse.ArgumentTypeError, match='expected a JSON object'):
      cli.parse_json_object(bad)


def test_a_collected_episode_replays_from_its_seed_through_the_one_episode_runner(tmp_path):
  """Collection runs episodes through actors.rollout (the runner training and evaluation use):
  an episode's metadata seed replays it exactly with the same policy."""
  from rl_cyclegan.actors import policies  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.actors import rollout  # pylint: disable=g-import-not-at-top
  config = _config(appearance='sim', num_episodes=2, episodes_per_shard=2, seed=5,
                   noise_scale=(0.0, 1.0))
  collect.collect(str(tmp_path), config, num_workers=0, stream=io.StringIO())
  logged = list(episodes.read_episodes(tmp_path / _shards(tmp_path)[0]))
  assert [e.metadata['episode_id'] for e in logged] == ['00000-0000', '00000-0001']
  assert all('grasp_distance' in e.metadata or e.metadata['success'] for e in logged)
  env = collect.make_env(config, seed=0)
  action_fn = policies.ScriptedActionFn(
      lambda env, seed: collect.make_policy('scripted', env, seed, noise_scale=(0.0, 1.0)))
  for episode in logged:
    (replayed,) = rollout.run_episodes([env], action_fn, 1,
                                       episode_seeds=[episode.metadata['seed']])
    for key in ('images', 'gripper_states', 'actions', 'rewards', 'dones'):
      np.testing.assert_array_equal(getattr(replayed, key), getattr(episode, key), err_msg=key)
    assert replayed.metadata['success'] == episode.metadata['success']


def test_a_shard_is_the_same_whichever_shards_its_worker_collected_before(tmp_path):
  """Each shard gets a new environment: shard 1 collected after shard 0 in one process equals
  shard 1 collected alone (pybullet keeps state across resets; see collect._shard_env)."""
  config = _config(num_episodes=4, episodes_per_shard=2, render_size=TINY, seed=11,
                   noise_scale=(0.0, 1.0))
  both, alone = tmp_path / 'both', tmp_path / 'alone'
  alone.mkdir()
  collect.collect(str(both), config, num_workers=0, stream=io.StringIO())
  collect.write_shard(config, str(alone), 1)
  collect.write_shard(config, str(alone), 1)  # again, after itself: the same
  name = config.shard_path('', 1)
  want = list(episodes.read_episodes(str(both / name)))
  got = list(episodes.read_episodes(str(alone / name)))
  assert len(want) == len(got) == 2
  for a, b in zip(want, got):
    assert a.metadata['seed'] == b.metadata['seed']
    for field in ('actions', 'rewards', 'gripper_states', 'images'):
      np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


@pytest.mark.parametrize('num_workers', [0, 2])
def test_a_shard_whose_physics_diverged_is_collected_again_the_same(tmp_path, num_workers):
  config = _config(num_episodes=6, episodes_per_shard=2)
  _fake_collect(tmp_path / 'clean', config)
  markers = tmp_path / 'markers'
  markers.mkdir()
  diverging = collect.derive_seed(collect.derive_seed(3, 1), 1)  # shard 1, its second episode
  summary, log = _fake_collect(tmp_path / 'retried', config, num_workers=num_workers,
                               env_factory=DivergingEnvFactory(diverging, markers, times=2))
  assert len(os.listdir(markers)) == 2  # two failed attempts, the third one wrote the shard
  assert summary['episodes'] == 6 and summary['shards_written'] == 3
  for name in _shards(tmp_path / 'clean'):
    assert (tmp_path / 'retried' / name).read_bytes() == (tmp_path / 'clean' / name).read_bytes()
  # The failed attempts' episodes are taken back: the last progress line counts 6 of 6.
  assert '6/6' in log.splitlines()[-2] and '7/6' not in log and '8/6' not in log, log


class _Counts:
  def __init__(self):
    self.n = 0

  def update(self, count):
    self.n += count


def test_progress_waits_for_counts_still_in_flight_when_the_shards_are_done():
  # A worker's last counts can reach the parent's queue after its shard's result (they pass
  # through the queue's feeder thread): the last progress line read 5/6 once (session 19).
  q, counts = queue_lib.Queue(), _Counts()
  q.put(2)
  assert collect._drain_progress(q, counts) == 2 and counts.n == 2  # what is there now
  late = threading.Timer(0.3, lambda: [q.put(n) for n in (-1, 1, 1)])  # a take-back, then two
  late.start()
  assert collect._drain_progress(q, counts, until=1, timeout=10.0) == 1
  late.join()
  assert counts.n == 3
  # Counts that never come: it gives up after the timeout, keeping what it has.
  assert collect._drain_progress(q, counts, until=1, timeout=0.1) == 0 and counts.n == 3


def test_a_shard_that_keeps_diverging_fails_naming_it_and_the_attempts(tmp_path):
  config = _config(num_episodes=6, episodes_per_shard=2)
  diverging = collect.derive_seed(collect.derive_seed(3, 1), 1)
  markers = tmp_path / 'markers'
  markers.mkdir()
  with pytest.raises(RuntimeError, match=r'episodes-00001-of-00003.tfrecord failed \(attempt 3 '
                                         r'of 3\): PhysicsDivergedError: fingertip position'):
    _fake_collect(tmp_path / 'out', config,
                  env_factory=DivergingEnvFactory(diverging, markers, times=99))
  assert len(os.listdir(markers)) == collect.SHARD_ATTEMPTS
  assert 'episodes-00001-of-00003.tfrecord' not in _shards(tmp_path / 'out')
  assert not [n for n in os.listdir(tmp_path / 'out') if episodes.TMP_MARKER in n]
