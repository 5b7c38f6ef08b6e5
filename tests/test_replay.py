"""Tests of the QT-Opt replay buffers, the mixed sampler and the durable sim episode log."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from rl_cyclegan.data import episodes as episodes_lib
from rl_cyclegan.replay import buffers as replay_lib

RENDER = (32, 40)
CROP = (32, 32)


def episode(seed, num_steps=4, size=RENDER):
  return episodes_lib.synthetic_episode(num_steps, size, seed=seed)


def rows(transitions):
  """Set of (gripper height of s, first action value) identifying each transition."""
  return {(round(float(g), 4), round(float(a), 5))
          for g, a in zip(transitions.observation['gripper_state'][:, 1], transitions.action[:, 0])}


def test_spec_mismatch_names_both_specs():
  replay = replay_lib.TransitionReplay(RENDER, capacity=16, name='sim')
  with pytest.raises(replay_lib.ReplaySpecError) as e:
    replay.add_episodes([episode(0, size=(64, 80))])
  message = str(e.value)
  assert 'uint8[64, 80, 3]' in message and 'uint8[32, 40, 3]' in message  # data, replay
  assert 'observation.image' in message and message.startswith('sim:')
  assert replay.num_transitions == 0


def test_episode_returns_are_discounted_returns_to_go():
  ep = episode(3, num_steps=4)._replace(rewards=np.array([0.0, -0.1, 0.0, 1.0], np.float32))
  np.testing.assert_allclose(replay_lib.episode_returns(ep, 0.5),
                             [-0.05 + 0.125, -0.1 + 0.25, 0.5, 1.0], rtol=1e-6)


def test_replay_stores_and_samples_returns():
  plain = replay_lib.TransitionReplay(RENDER, capacity=16, name='plain')
  replay = replay_lib.TransitionReplay(RENDER, capacity=16, name='sim', return_discount=0.9)
  episodes = [episode(4, num_steps=3), episode(5, num_steps=2)]
  replay.add_episodes(episodes)
  plain.add_episodes(episodes)
  expected = np.concatenate([replay_lib.episode_returns(e, 0.9) for e in episodes])
  np.testing.assert_allclose(replay.gather_returns(), expected, rtol=1e-6)
  assert rows(replay.gather_all()) == rows(plain.gather_all())
  # Sampled returns belong to their transitions: match them up by the identifying row.
  by_row = {}
  all_t = replay.gather_all()
  for g, a, ret in zip(all_t.observation['gripper_state'][:, 1], all_t.action[:, 0], expected):
    by_row[(round(float(g), 4), round(float(a), 5))] = ret
  batch, returns = replay.sample(8, CROP, training=False, with_returns=True)
  for g, a, ret in zip(batch.observation['gripper_state'][:, 1].numpy(),
                       batch.action[:, 0].numpy(), returns.numpy()):
    assert by_row[(round(float(g), 4), round(float(a), 5))] == pytest.approx(ret)
  mix = replay_lib.ReplayMix(replay, replay, 0.5)
  _, mixed = mix.sample(6, CROP, with_returns=True)
  assert mixed.shape == (6,)
  with pytest.raises(ValueError, match='return_discount'):
    plain.sample(2, CROP, with_returns=True)
  with pytest.raises(replay_lib.ReplaySpecError, match=r'pass returns of shape \(3,\)'):
    replay.add_transitions(replay_lib.episode_to_transitions(episode(6, num_steps=3)))


def test_sample_crops_and_converts():
  replay = replay_lib.TransitionReplay(RENDER, capacity=16)
  ep = episode(1, num_steps=1)
  replay.add_episodes([ep])
  batch = replay.sample(3, CROP, training=False)  # only one transition: all rows equal it
  image = batch.observation['image'].numpy()
  assert image.shape == (3, 32, 32, 3) and image.dtype == np.float32
  left = (40 - 32) // 2  # center crop (paper Appendix A: evaluation)
  expected = ep.images[0][:, left:left + 32].astype(np.float32) / 127.5 - 1.0
  np.testing.assert_allclose(image[0], expected, atol=1e-6)
  train = replay.sample(8, CROP, training=True).next_observation['image'].numpy()
  assert train.shape == (8, 32, 32, 3) and -1.0 <= train.min() and train.max() <= 1.0


def test_fifo_at_capacity_and_empty_buffer_error():
  replay = replay_lib.TransitionReplay(RENDER, capacity=6, name='real')
  with pytest.raises(ValueError, match='real replay buffer is empty'):
    replay.sample(2, CROP)
  old, new = episode(2, num_steps=4), episode(3, num_steps=4)
  replay.add_episodes([old, new])
  assert replay.num_transitions == 6
  old_t = replay_lib.episode_to_transitions(old)
  last_two_old = old_t._replace(observation={k: v[2:] for k, v in old_t.observation.items()},
                                action=old_t.action[2:])
  expected = rows(replay_lib.episode_to_transitions(new)) | rows(last_two_old)
  assert rows(replay.gather_all()) == expected  # the 2 oldest transitions were overwritten


def test_mixed_sampler_ratio():
  sim = replay_lib.TransitionReplay(RENDER, capacity=64, name='sim')
  real = replay_lib.TransitionReplay(RENDER, capacity=64, name='real')
  sim.add_episodes([episode(4, num_steps=8)])
  real.add_episodes([episode(5, num_steps=8)])
  sim_rows = rows(sim.gather_all())
  real_rows = rows(real.gather_all())
  sampler = replay_lib.MixedSampler(sim, real, batch_size=8, sim_fraction=0.25, crop_size=CROP)
  s, r = sampler.sample()
  assert (s.reward.shape[0], r.reward.shape[0]) == (2, 6)
  assert rows(s._replace(observation={'gripper_state': s.observation['gripper_state'].numpy()},
                         action=s.action.numpy())) <= sim_rows
  assert rows(r._replace(observation={'gripper_state': r.observation['gripper_state'].numpy()},
                         action=r.action.numpy())) <= real_rows
  s, r = replay_lib.MixedSampler(sim, real, 8, 0.5, CROP).sample()  # paper: equal parts
  assert s.reward.shape[0] == r.reward.shape[0] == 4
  s, r = replay_lib.MixedSampler(sim, None, 8, 1.0, CROP).sample()  # Sim-Only
  assert r is None and s.reward.shape[0] == 8
  s, r = replay_lib.MixedSampler(None, real, 8, 0.0, CROP).sample()  # Real-Only
  assert s is None and r.reward.shape[0] == 8
  with pytest.raises(ValueError, match='no real replay buffer'):
    replay_lib.MixedSampler(sim, None, 8, 0.5, CROP)


def _np_rows(t):
  return rows(t._replace(observation={'gripper_state': t.observation['gripper_state'].numpy()},
                         action=t.action.numpy()))


def test_replay_mix_draws_each_part_from_its_own_buffer():
  log = replay_lib.TransitionReplay(RENDER, capacity=64, name='sim_log')
  on_policy = replay_lib.TransitionReplay(RENDER, capacity=64, name='sim')
  log.add_episodes([episode(6, num_steps=8)])
  on_policy.add_episodes([episode(7, num_steps=2)])  # far fewer rows than the log
  mix = replay_lib.ReplayMix(log, on_policy, 0.5)
  assert mix.num_transitions == 10 and mix.split(16) == (8, 8) and mix.split(5) == (2, 3)
  batch = mix.sample(16, CROP)
  assert batch.observation['image'].shape == (16, 32, 32, 3)
  # Row order: the log's share first. A uniform draw over both buffers would give the two
  # on-policy rows only ~1/5 of the batch; here they get half.
  assert _np_rows(batch._replace(
      observation={'gripper_state': batch.observation['gripper_state'][:8]},
      action=batch.action[:8])) <= rows(log.gather_all())
  assert _np_rows(batch._replace(
      observation={'gripper_state': batch.observation['gripper_state'][8:]},
      action=batch.action[8:])) <= rows(on_policy.gather_all())
  sim, real = replay_lib.MixedSampler(mix, None, 8, 1.0, CROP).sample()  # as the sim source
  assert real is None and sim.reward.shape == (8,)
  with pytest.raises(ValueError, match='sim_log share must be in'):
    replay_lib.ReplayMix(log, on_policy, 1.5)


def test_sim_log_refills_the_same_data(tmp_path):
  """Episodes appended to the log and reloaded give the buffer the same transitions."""
  log = replay_lib.SimEpisodeLog(tmp_path / 'sim', RENDER, episodes_per_shard=2)
  live = replay_lib.TransitionReplay(RENDER, capacity=100)
  eps = [episode(10 + i, num_steps=3) for i in range(5)]
  for e in eps:
    log.append([e])
    live.add_episodes([e])
  assert len(log.shard_paths()) == 2  # 4 episodes written, 1 pending
  log.flush()
  assert [os.path.basename(p) for p in log.shard_paths()] == [
      'sim-000000.tfrecord', 'sim-000001.tfrecord', 'sim-000002.tfrecord']
  assert not [n for n in os.listdir(tmp_path / 'sim') if episodes_lib.TMP_MARKER in n]
  # A new log (a resumed run) continues the numbering and reloads everything.
  log2 = replay_lib.SimEpisodeLog(tmp_path / 'sim', RENDER)
  refilled = replay_lib.TransitionReplay(RENDER, capacity=100)
  replay_lib.refill(refilled, log2.load_newest(100))
  a, b = live.gather_all(), refilled.gather_all()
  for x, y in zip(replay_lib._leaves(a), replay_lib._leaves(b)):  # pylint: disable=protected-access
    np.testing.assert_array_equal(x, y)
  # Capacity: only the newest whole episodes that fit (3 steps each), oldest first.
  newest = log2.load_newest(7)
  assert [e.metadata['episode_id'] for e in newest] == ['synthetic-13', 'synthetic-14']
  log2.append([episode(20)])
  assert log2.flush().endswith('sim-000003.tfrecord')


def test_real_episode_dir_is_validated_naming_the_file(tmp_path):
  good = tmp_path / 'episodes-00000-of-00002.tfrecord'
  with episodes_lib.EpisodeWriter(good) as w:
    w.write(episode(30))
  assert len(replay_lib.load_real_episodes(tmp_path, RENDER)) == 1
  bad = tmp_path / 'episodes-00001-of-00002.tfrecord'
  bad.write_bytes(b'not a tfrecord at all')
  with pytest.raises(episodes_lib.EpisodeFormatError, match='episodes-00001-of-00002'):
    replay_lib.load_real_episodes(tmp_path, RENDER)
  with pytest.raises(episodes_lib.EpisodeFormatError, match='64x80'):
    replay_lib.load_real_episodes(good, (64, 80))


def test_a_killed_writer_loses_at_most_the_episode_in_progress(tmp_path):
  """Each appended episode is on disk at once; a SIGKILLed run's open shard is recovered."""
  directory = tmp_path / 'sim'
  script = f'''
import os, signal, sys
from rl_cyclegan.replay import buffers
from rl_cyclegan.data import episodes
log = buffers.SimEpisodeLog({str(directory)!r}, {RENDER!r}, episodes_per_shard=4)
log.append([episodes.synthetic_episode(3, {RENDER!r}, seed=i) for i in range(6)])
path = log._writer.tmp_path
with open(path, 'ab') as f:  # an episode half-written when the kill came
  f.write(b'\\x10\\x00\\x00\\x00')
os.kill(os.getpid(), signal.SIGKILL)
'''
  proc = subprocess.run([sys.executable, '-c', script], cwd=os.getcwd(), capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == -signal.SIGKILL, proc.stderr
  names = sorted(os.listdir(directory))
  assert names[0] == 'sim-000000.tfrecord' and names[1].startswith(
      'sim-000001.tfrecord' + episodes_lib.TMP_MARKER)  # 4 closed, 2 in the open shard
  messages = []
  log = replay_lib.SimEpisodeLog(directory, RENDER, log=messages.append)
  assert log.recovered == [(names[1], 2, True)] and 'truncated' in messages[0]
  assert [os.path.basename(p) for p in log.shard_paths()] == [
      'sim-000000.tfrecord', 'sim-000001.tfrecord']
  assert log.count_episodes() == 6  # all 6 appended episodes survived the kill
  assert not [n for n in os.listdir(directory) if episodes_lib.TMP_MARKER in n]
  log.append([episode(30)])
  assert log.flush().endswith('sim-000002.tfrecord')  # numbering continues after them
  report = episodes_lib.validate_directory(directory, expected_image_size=RENDER)
  assert report.ok and report.num_episodes == 7, str(report)


def test_a_live_writers_open_shard_is_left_alone(tmp_path):
  log = replay_lib.SimEpisodeLog(tmp_path / 'sim', RENDER, episodes_per_shard=4)
  log.append([episode(1)])
  other = replay_lib.SimEpisodeLog(tmp_path / 'sim', RENDER)  # this process: alive
  assert other.recovered == [] and os.path.exists(log._writer.tmp_path)  # pylint: disable=protected-access
  assert log.flush().endswith('sim-000000.tfrecord')
