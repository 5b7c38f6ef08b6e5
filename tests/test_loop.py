"""SimCollection's bookkeeping across kills: unique episode seeds and ids, counted episodes."""

import numpy as np
import tensorflow as tf

from rl_cyclegan.data import episodes as episodes_lib
from rl_cyclegan.train import loop
from rl_cyclegan.replay import buffers as replay_lib
import test_rollout  # noqa: E402  (tests/ is on sys.path under pytest)

RENDER = (16, 20)


def _collection(root):
  return loop.SimCollection(str(root), enabled=True, make_env=None, appearance='sim',
                            num_envs=1, render_size=RENDER, replay_capacity=1000,
                            episodes_per_shard=2, seed=0, log=lambda m: None)


def test_episodes_logged_after_the_checkpoint_are_counted_on_resume(tmp_path):
  log = replay_lib.SimEpisodeLog(tmp_path / 'replay' / 'sim', RENDER, episodes_per_shard=2)
  log.append([episodes_lib.synthetic_episode(3, RENDER, seed=i) for i in range(5)])
  log.flush()  # 5 episodes on disk, 15 transitions
  collection = _collection(tmp_path)
  collection.sim_episodes.assign(2)  # the checkpoint had counted 2 of them
  collection.env_steps.assign(6)
  collection.open(resumed=True)
  assert int(collection.sim_episodes.numpy()) == 5  # new seeds start after the logged ones
  assert int(collection.env_steps.numpy()) == 6 + 3 * 3
  assert collection.replay.num_transitions == 15
  # A fresh start on the same log also continues after every logged episode.
  fresh = _collection(tmp_path)
  fresh.open(resumed=False)
  assert int(fresh.sim_episodes.numpy()) == 5


def test_collected_episode_ids_are_unique_across_calls(tmp_path, monkeypatch):
  collection = _collection(tmp_path)
  collection.open(resumed=False)

  def fake_run_episodes(envs, action_fn, num_episodes, **kwargs):
    out = []
    for j in range(num_episodes):
      e = episodes_lib.synthetic_episode(2, RENDER, seed=kwargs['episode_seeds'](j))
      e.metadata.update(episode_id=f'{j:05d}', success=False)
      kwargs['progress'](e)  # as run_episodes: each episode as it ends
      out.append(e)
    return out

  monkeypatch.setattr(loop.rollout, 'run_episodes', fake_run_episodes)
  collection.collect(None, 2, 'test')
  collection.collect(None, 2, 'test')
  collection.flush()
  ids = [e.metadata['episode_id'] for e in collection.log.load_newest(10_000)]
  assert ids == ['sim-00000000', 'sim-00000001', 'sim-00000002', 'sim-00000003']
  seeds = [e.metadata['seed'] for e in collection.log.load_newest(10_000)]
  assert len(set(seeds)) == 4 and all(isinstance(s, (int, np.integer)) for s in seeds)


def test_new_indices_start_after_the_highest_logged_one_never_in_a_gap(tmp_path):
  """With 2 envs, episode 2 can end (and be logged) before episode 1, which a kill then loses."""
  log = replay_lib.SimEpisodeLog(tmp_path / 'replay' / 'sim', RENDER, episodes_per_shard=8)
  for index in (0, 2):
    e = episodes_lib.synthetic_episode(3, RENDER, seed=index)
    e.metadata['episode_id'] = f'sim-{index:08d}'
    log.append([e])
  log.flush()
  messages = []
  collection = loop.SimCollection(str(tmp_path), enabled=True, make_env=None, appearance='sim',
                                  num_envs=2, render_size=RENDER, replay_capacity=1000,
                                  episodes_per_shard=2, seed=0, log=messages.append)
  collection.open(resumed=True)  # the checkpoint (step 0) had counted none
  assert int(collection.sim_episodes.numpy()) == 3  # index 1 is never reused
  assert int(collection.env_steps.numpy()) == 6
  assert any('2 sim episodes' in m and '1 in progress at the kill were lost' in m
             for m in messages), messages


def test_a_long_replay_fill_logs_its_progress(tmp_path, monkeypatch, capsys):
  """A run resumed on a new machine refills its on-policy replay first: the user sees it."""
  messages = []
  collection = loop.SimCollection(str(tmp_path), enabled=True, make_env=None, appearance='sim',
                                  num_envs=1, render_size=RENDER, replay_capacity=1000,
                                  episodes_per_shard=4, seed=0, log=messages.append)
  collection.open(resumed=False)

  def fake_collect(action_fn, num_episodes, label):
    episode = episodes_lib.synthetic_episode(10, RENDER, seed=int(collection.sim_episodes.numpy()))
    collection.replay.add_episodes([episode])
    collection.sim_episodes.assign_add(1)
    collection.env_steps.assign_add(10)
    return 10, 0, 1, 0.01

  monkeypatch.setattr(collection, 'collect', fake_collect)
  collection.policy = type('P', (), {'set_exploration': lambda self, *a: None})()  # CEMPolicy
  collection._schedule = type('S', (), {'at': lambda self, step: (0.0, 0.0)})()  # pylint: disable=protected-access
  collection._steps_per_train_step = 1.0  # pylint: disable=protected-access
  collection.collect_on_policy(0, 200)
  assert collection.replay.num_transitions == 200
  assert any('until it holds 200 transitions' in m for m in messages), messages
  assert 'on-policy replay fill: 200/200 transitions' in capsys.readouterr().err


class _RenderedEnv(test_rollout.DivergingEnv):
  """test_rollout's DivergingEnv with images of the replay's size."""

  def _obs(self):
    obs = super()._obs()
    obs['image'] = np.full(RENDER + (3,), obs['image'][0, 0, 0], np.uint8)
    return obs


def test_a_diverged_collection_env_is_replaced_and_training_goes_on(tmp_path):
  """One diverged episode does not stop a multi-hour run: its env is rebuilt, the episode
  runs again with its seed, and the log and replay get the usual episodes."""
  made, messages = [], []

  def make_env(appearance, split, seed):
    made.append((appearance, split, seed))  # the 1st env diverges at step 1 of its 2nd episode
    return _RenderedEnv(on_reset=2 if len(made) == 1 else 0)

  collection = loop.SimCollection(str(tmp_path), enabled=True, make_env=make_env,
                                  appearance='real', num_envs=1, render_size=RENDER,
                                  replay_capacity=1000, episodes_per_shard=2, seed=0,
                                  log=messages.append)
  collection.open(resumed=False)
  collection.start_envs()
  steps, _, n, _ = collection.collect(test_rollout.RecordingActionFn(), 3, 'test')
  collection.flush()
  assert n == 3 and len(made) == 2 and made[0] == made[1]  # rebuilt like the one it replaces
  assert collection.envs[0].on_reset == 0  # the live env is the new one
  assert any('a new environment runs it again' in m for m in messages), messages
  logged = collection.log.load_newest(100)
  assert [e.metadata['episode_id'] for e in logged] == [f'sim-{i:08d}' for i in range(3)]
  assert sum(e.actions.shape[0] for e in logged) == steps == collection.replay.num_transitions
  assert int(collection.env_steps.numpy()) == steps


class _FakeCollection:
  env_steps = tf.Variable(0, dtype=tf.int64)
  collect_rate = 4.0

  def success_text(self):
    return ''


def test_the_eta_follows_the_recent_rate_not_a_pause_or_a_catch_up():
  lines = []
  logger = loop.ProgressLogger(10_000, 1_000, loop.TrainTimer(), _FakeCollection(), lines.append,
                              now=0.0)
  t, step = 0.0, 1_000
  for dt in [20] * 2 + [100] * 6 + [3_600] + [100] * 2:  # catch-up; 2 steps/s; a 1 h pause
    t, step = t + dt, step + 200
    logger.log(step, f'step {step}', now=t)
  # 6,800 steps to go at the median recent rate, 2 steps/s: 56 min 40 s (the average since
  # the start, 2,200 steps in 4,440 s, would say 3 h 48 min).
  assert lines[-1].endswith('ETA 56m40s'), lines[-1]
  assert '0.06 steps/s' in lines[8]  # the paused interval's own rate is still shown
