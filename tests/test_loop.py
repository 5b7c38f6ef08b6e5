"""SimCollection's bookkeeping across kills: unique episode seeds and ids, counted episodes."""

import numpy as np

from rl_cyclegan.data import episodes as episodes_lib
from rl_cyclegan.train import loop
from rl_cyclegan.replay import buffers as replay_lib

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
