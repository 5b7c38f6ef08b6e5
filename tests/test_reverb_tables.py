"""The Reverb replay (replay/reverb_tables.py): insert, sample, weights, checkpoint and restore."""

import os

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.experimental.distributed import reverb_variable_container

from rl_cyclegan.data import episodes as episodes_lib
from rl_cyclegan.replay import buffers as replay_lib
from rl_cyclegan.replay import reverb_tables

RENDER = (32, 40)


def _variables():
  return [tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3)), tf.Variable(1.5)]


def _server(path, variables, **kwargs):
  return reverb_tables.ReplayServer(path, RENDER, capacity=kwargs.pop('capacity', 100),
                                    min_size=2, variables=variables, **kwargs)


def test_episodes_go_in_whole_sample_like_the_in_process_buffer_and_survive_a_restart(tmp_path):
  variables = _variables()
  server = _server(tmp_path / 'reverb', variables)
  try:
    replay = reverb_tables.ReverbReplay(server.address, RENDER, capacity=100)
    episodes = [episodes_lib.synthetic_episode(4, RENDER, seed=i) for i in range(3)]
    replay.add_episodes(episodes)
    assert replay.num_transitions == 12 and replay.num_inserted == 12
    batch = replay.sample(5, crop_size=(32, 32), training=True)
    local = replay_lib.TransitionReplay(RENDER, 100)
    local.add_episodes(episodes)
    expected = local.sample(5, crop_size=(32, 32), training=True)
    # Same structure, shapes and dtypes as the in-process buffer's batches.
    tf.nest.map_structure(lambda a, b: (a.shape, a.dtype) == (b.shape, b.dtype) or pytest.fail(
        f'{a.shape} {a.dtype} != {b.shape} {b.dtype}'), batch, expected)
    assert float(tf.reduce_max(tf.abs(batch.observation['image']))) <= 1.0
    # Every sampled action is one of the stored ones.
    stored = {tuple(np.round(a, 5)) for e in episodes for a in e.actions}
    assert all(tuple(np.round(a, 5)) in stored for a in batch.action.numpy())
    server.checkpoint()
  finally:
    server.stop()
  again = _server(tmp_path / 'reverb', _variables())
  try:
    assert again.restored
    replay = reverb_tables.ReverbReplay(again.address, RENDER, capacity=100)
    assert replay.num_transitions == 12 and replay.num_inserted == 12
  finally:
    again.stop()


def test_fifo_at_capacity_and_a_wrong_render_size_is_refused(tmp_path):
  server = _server(tmp_path / 'reverb', _variables(), capacity=6)
  try:
    inserter = reverb_tables.EpisodeInserter(server.address, RENDER)
    for i in range(3):
      inserter.insert(episodes_lib.synthetic_episode(4, RENDER, seed=i))
    client = reverb_tables.wait_for_server(server.address)
    assert reverb_tables.table_info(client).current_size == 6
    assert reverb_tables.inserted(client) == 12
    with pytest.raises(replay_lib.ReplaySpecError, match='render_size'):
      inserter.insert(episodes_lib.synthetic_episode(4, (24, 40), seed=0))
  finally:
    server.stop()


def test_weights_go_through_tf_agents_variable_container(tmp_path):
  learner_vars = _variables()
  server = _server(tmp_path / 'reverb', learner_vars)
  try:
    container = reverb_variable_container.ReverbVariableContainer(
        server.address, table_names=[reverb_tables.VARIABLE_TABLE])
    step = tf.Variable(7, dtype=tf.int64)
    limit = tf.Variable(40, dtype=tf.int64)
    learner_vars[1].assign(-2.0)
    container.push({reverb_tables.Q_KEY: learner_vars, reverb_tables.TRAIN_STEP_KEY: step,
                    reverb_tables.LIMIT_KEY: limit}, reverb_tables.VARIABLE_TABLE)
    actor_vars = [tf.Variable(tf.zeros([2, 3])), tf.Variable(0.0)]
    actor_step, actor_limit = tf.Variable(0, dtype=tf.int64), tf.Variable(0, dtype=tf.int64)
    container.update({reverb_tables.Q_KEY: actor_vars, reverb_tables.TRAIN_STEP_KEY: actor_step,
                      reverb_tables.LIMIT_KEY: actor_limit}, reverb_tables.VARIABLE_TABLE)
    np.testing.assert_array_equal(actor_vars[0].numpy(), learner_vars[0].numpy())
    assert float(actor_vars[1].numpy()) == -2.0
    assert int(actor_step.numpy()) == 7 and int(actor_limit.numpy()) == 40
  finally:
    server.stop()


def test_the_reverb_benchmark_prints_its_figures_and_cleans_up(tmp_path, monkeypatch):
  from rl_cyclegan.train import benchmark_actors  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(benchmark_actors.tempfile, 'tempdir', str(tmp_path))
  lines = []
  out = benchmark_actors.reverb_rates(RENDER, (32, 32), num_transitions=16, batch_size=4,
                                      num_batches=2, print_fn=lines.append)
  assert set(out) == {'reverb_insert', 'reverb_sample', 'reverb_checkpoint_s', 'local_insert',
                      'local_sample'}
  assert all(v > 0 for v in out.values())
  assert any('other processes used' in line for line in lines)  # hardware.MachineShare
  assert not os.listdir(tmp_path)  # the Reverb checkpoint was removed
