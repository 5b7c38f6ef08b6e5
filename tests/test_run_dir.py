"""The run-directory contract: run_spec.json, reading older runs, checked restores, fallbacks."""

import json
import os
import shutil

import gin
import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan import checkpoints
from rl_cyclegan import run_dir
from rl_cyclegan import specs
from rl_cyclegan.networks import generator as generator_lib
from rl_cyclegan.networks import layers
from rl_cyclegan.networks import q_network as q_network_lib
from rl_cyclegan.evaluation import policy_eval

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL_Q = dict(stem_filters=4, tower_filters=(4,), state_action_fc_units=(8,),
               merged_filters=(4,), final_filters=(), fc_units=(8,))


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _spec(**overrides):
  q = q_network_lib.GraspingQNetwork(crop_size=(32, 32), **SMALL_Q)
  g = generator_lib.UNetGenerator(filters=(4, 8), name='G_sim2real')
  values = dict(kind='qtopt', render_size=(32, 40), crop_size=(32, 32), action_mode='auto_descend',
                allowed_modes=specs.MOVE_ONLY_MODES, num_objects=2, appearance='sim',
                networks=run_dir.network_specs({'q_network': q, 'G_sim2real': g}),
                policy_q_key='q_network', generator_key='G_sim2real', generator_input='frames',
                checkpoint_keys=('G_sim2real', 'q_network', 'train_step'))
  values.update(overrides)
  return run_dir.RunSpec(**values)


def test_constructor_config_rebuilds_the_network_without_gin_and_is_not_checkpointed(tmp_path):
  gin.bind_parameter('GraspingQNetwork.stem_filters', 6)  # gin-supplied values are recorded
  q = q_network_lib.GraspingQNetwork(crop_size=(32, 32))
  config = layers.constructor_config(q)
  assert config['stem_filters'] == 6 and config['crop_size'] == [32, 32]
  gin.clear_config()
  rebuilt = run_dir.NetworkSpec('GraspingQNetwork', config).build((32, 32))
  q.create_variables()
  assert [v.shape for v in rebuilt.variables] == [v.shape for v in q.variables]
  path = tf.train.Checkpoint(q_network=q).write(str(tmp_path / 'ckpt'))
  names = [n for n, _ in tf.train.list_variables(path)]
  assert not any('constructor_config' in n for n in names)


def test_run_spec_round_trips_and_bad_fields_are_named(tmp_path):
  spec = _spec()
  run_dir.write_run_spec(str(tmp_path), spec)
  back = run_dir.read_run_spec(str(tmp_path))
  assert back.source == str(tmp_path / run_dir.RUN_SPEC)
  assert back.to_json() == spec.to_json()
  assert back.render_size == (32, 40) and back.allowed_modes == specs.MOVE_ONLY_MODES
  path = tmp_path / run_dir.RUN_SPEC
  for field, value, message in (('render_size', [32], 'render_size'),
                                ('kind', 'dqn', 'kind'),
                                ('generator_input', 'pixels', 'generator_input'),
                                ('policy_q_key', 'Q_real', "'Q_real' is not among")):
    data = spec.to_json()
    data[field] = value
    path.write_text(json.dumps(data))
    with pytest.raises(run_dir.RunSpecError, match=message) as info:
      run_dir.read_run_spec(str(tmp_path))
    assert str(path) in str(info.value)
  data = spec.to_json()
  del data['crop_size']
  path.write_text(json.dumps(data))
  with pytest.raises(run_dir.RunSpecError, match="'crop_size' is missing"):
    run_dir.read_run_spec(str(tmp_path))


def test_older_qtopt_run_is_read_from_its_operative_config():
  spec = run_dir.read_run_spec(os.path.join(REPO, 'results', 'sim_only_ratio2'))
  assert spec.kind == 'qtopt' and spec.policy_q_key == 'q_network'
  assert spec.render_size == (64, 80) and spec.crop_size == (64, 64)
  assert spec.allowed_modes == specs.MOVE_ONLY_MODES and spec.generator_key is None
  assert 'inferred' in spec.source and 'q_network' in spec.checkpoint_keys


def _old_rl_cyclegan_run(root):
  """A run as train_rl_cyclegan wrote it before run_spec.json: non-default sizes bound under
  train_rl_cyclegan.*, Q_real in the checkpoint."""
  os.makedirs(os.path.join(root, 'train', 'ckpt'))
  q = q_network_lib.GraspingQNetwork(crop_size=(32, 32), **SMALL_Q)
  q.create_variables()
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(Q_real=q, Q_sim=q),
                                       os.path.join(root, 'train', 'ckpt'), max_to_keep=3)
  manager.save(checkpoint_number=1)
  lines = [f'GraspingQNetwork.{k} = {tuple(v) if isinstance(v, tuple) else v!r}'
           for k, v in SMALL_Q.items()]
  lines += ["train_rl_cyclegan.render_size = (32, 40)", "train_rl_cyclegan.crop_size = (32, 32)",
            "train_rl_cyclegan.action_mode = 'auto_descend'",
            "train_rl_cyclegan.auto_descend_terminate = True",
            "train_rl_cyclegan.real_episode_dir = '/tmp/real'",
            "RLCycleGANLearner.generator_fn = @UNetGenerator",
            "GraspingQNetwork.crop_size = (32, 32)"]
  with open(os.path.join(root, 'operative_config.gin'), 'w') as f:
    f.write('\n'.join(lines) + '\n')
  return q


def test_older_rl_cyclegan_run_takes_its_own_sizes_and_a_disagreeing_flag_is_an_error(tmp_path):
  root = str(tmp_path / 'joint')
  q = _old_rl_cyclegan_run(root)
  spec = run_dir.read_run_spec(root)
  assert spec.kind == 'rl_cyclegan' and spec.policy_q_key == 'Q_real'
  assert spec.render_size == (32, 40)  # not the 64x80 default
  assert spec.allowed_modes == specs.AUTO_DESCEND_MODES
  loaded = policy_eval.load_run_policy(root)
  assert tuple(loaded.policy.render_size) == (32, 40)
  assert loaded.policy.allowed_modes == specs.AUTO_DESCEND_MODES
  np.testing.assert_array_equal(loaded.policy.q_network.variables[0].numpy(),
                                q.variables[0].numpy())
  gin.clear_config()
  with pytest.raises(ValueError, match=r'render_size=\(64, 80\) disagrees with the run'):
    policy_eval.load_run_policy(root, render_size=(64, 80))


def _truncate(prefix):
  data = [p for p in os.listdir(os.path.dirname(prefix))
          if p.startswith(os.path.basename(prefix) + '.data')]
  path = os.path.join(os.path.dirname(prefix), data[0])
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)
  return path


def test_latest_checkpoint_skips_a_truncated_newest_one_naming_it(tmp_path):
  q = q_network_lib.GraspingQNetwork(crop_size=(32, 32), **SMALL_Q)
  q.create_variables()
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(q_network=q), str(tmp_path),
                                       max_to_keep=3)
  first = manager.save(checkpoint_number=400)
  newest = manager.save(checkpoint_number=500)
  assert run_dir.latest_checkpoint(str(tmp_path)) == newest
  _truncate(newest)
  messages = []
  assert run_dir.latest_checkpoint(str(tmp_path), log=messages.append) == first
  assert newest in messages[0]
  _truncate(first)
  with pytest.raises(ValueError, match='no readable checkpoint') as info:
    run_dir.latest_checkpoint(str(tmp_path))
  assert first in str(info.value) and newest in str(info.value)
  assert run_dir.latest_checkpoint(str(tmp_path / 'empty')) is None


def test_snapshots_are_kept_and_listed_by_their_manager_and_older_ones_are_adopted(tmp_path):
  from rl_cyclegan.train import loop  # pylint: disable=g-import-not-at-top
  q = q_network_lib.GraspingQNetwork(crop_size=(32, 32), **SMALL_Q)
  q.create_variables()
  root = str(tmp_path / 'run')
  directory = os.path.join(root, run_dir.SNAPSHOT_SUBDIR)
  assert run_dir.list_snapshots(root) == []
  # A run written before the manager: q-<step> files and no state file. An interrupted write
  # (no index file) is not listed.
  old = tf.train.Checkpoint(q_network=q)
  old.write(os.path.join(directory, 'q-100'))
  old.write(os.path.join(directory, 'q-300'))
  os.remove(os.path.join(directory, 'q-300.index'))
  assert run_dir.list_snapshots(root) == [(100, os.path.join(directory, 'q-100'))]
  # Resumed with the manager: the older snapshot is adopted and none is ever deleted.
  for step in (200, 400, 600, 800, 1000, 1200):
    assert loop.write_snapshot(root, step, q) == os.path.join(directory, f'q-{step}')
  listed = run_dir.list_snapshots(root)
  assert [s for s, _ in listed] == [100, 200, 400, 600, 800, 1000, 1200]
  with open(os.path.join(directory, 'checkpoint')) as f:  # relative: a copied run still lists
    assert str(tmp_path) not in f.read()
  # A snapshot restores into a fresh network through the policy's key.
  fresh = q_network_lib.GraspingQNetwork(crop_size=(32, 32), **SMALL_Q)
  fresh.create_variables()
  tf.train.Checkpoint(q_network=fresh).restore(listed[1][1]).assert_existing_objects_matched()
  np.testing.assert_array_equal(fresh.trainable_variables[0].numpy(),
                                q.trainable_variables[0].numpy())
  # A state file that lists something else is named.
  with open(os.path.join(directory, 'checkpoint'), 'a') as f:
    f.write('all_model_checkpoint_paths: "ckpt-7"\n')
  with pytest.raises(ValueError, match="ckpt-7', not a snapshot named q-<step>"):
    run_dir.list_snapshots(root)


def test_restore_network_from_a_run_or_a_checkpoint_and_a_mismatch_names_the_file(tmp_path):
  spec = _spec()
  root = str(tmp_path / 'run')
  run_dir.write_run_spec(root, spec)
  g = spec.networks['G_sim2real'].build(spec.crop_size)
  for v in g.variables:
    v.assign(tf.random.normal(v.shape))
  prefix = tf.train.CheckpointManager(tf.train.Checkpoint(G_sim2real=g),
                                      run_dir.checkpoint_dir(root), 1).save()
  from_run = run_dir.restore_network(root, 'G_sim2real')  # built per the spec, no gin
  np.testing.assert_array_equal(from_run.variables[0].numpy(), g.variables[0].numpy())
  # A bare checkpoint: built from gin.
  gin.bind_parameter('UNetGenerator.filters', (4, 8))
  bare = run_dir.restore_network(run_dir.checkpoint_dir(root), 'G_sim2real', (32, 32))
  np.testing.assert_array_equal(bare.variables[-1].numpy(), g.variables[-1].numpy())
  gin.bind_parameter('UNetGenerator.filters', (4, 8, 16))  # one level more than stored
  with pytest.raises(ValueError, match='does not match') as info:
    run_dir.restore_network(prefix, 'G_sim2real', (32, 32))
  assert prefix in str(info.value)
  with pytest.raises(FileNotFoundError, match='no checkpoint'):
    checkpoints.restore({'G_sim2real': g}, str(tmp_path / 'nothing'), 'G')


def test_a_run_without_spec_or_config_names_what_was_tried(tmp_path):
  with pytest.raises(FileNotFoundError, match='run_spec.json') as info:
    run_dir.read_run_spec(str(tmp_path))
  assert 'operative_config.gin' in str(info.value)
  shutil.rmtree(tmp_path)
  with pytest.raises(FileNotFoundError, match='does not exist'):
    run_dir.read_run_spec(str(tmp_path))


def _training_checkpoints(root, spec, steps):
  """A QT-Opt-like train/ckpt: the networks of ``spec``, a target, Adam's moments, counters."""
  nets = {k: n.build(spec.crop_size) for k, n in spec.networks.items()}
  target = spec.networks['q_network'].build(spec.crop_size)
  for v in [v for n in nets.values() for v in n.variables] + target.variables:
    v.assign(tf.random.normal(v.shape))
  optimizer = tf.keras.optimizers.Adam()
  optimizer.build(nets['q_network'].trainable_variables)
  train_step, env_steps = tf.Variable(0, dtype=tf.int64), tf.Variable(7, dtype=tf.int64)
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(
      **nets, q_target_1=target, q_optimizer=optimizer, train_step=train_step,
      env_steps=env_steps), run_dir.checkpoint_dir(root), max_to_keep=5)
  for step in steps:
    train_step.assign(step)
    manager.save(checkpoint_number=step)
  return nets


def _top_keys(prefix):
  return {n.split('/')[0] for n, _ in tf.train.list_variables(prefix)} - {
      '_CHECKPOINTABLE_OBJECT_GRAPH'}


def test_a_published_checkpoint_keeps_the_policy_q_and_g_only_and_is_never_partial(
    tmp_path, monkeypatch):
  spec = _spec()
  root, dst = str(tmp_path / 'run'), str(tmp_path / 'published')
  run_dir.write_run_spec(root, spec)
  nets = _training_checkpoints(root, spec, steps=(100, 200))
  assert _top_keys(run_dir.latest_checkpoint(run_dir.checkpoint_dir(root))) == {
      'G_sim2real', 'q_network', 'q_target_1', 'q_optimizer', 'train_step', 'env_steps',
      'save_counter'}

  # An interrupted write (here: the renaming) leaves no index: no checkpoint, not a partial one.
  real_replace = os.replace

  def fail(*args):
    raise OSError('disk full')

  monkeypatch.setattr(os, 'replace', fail)
  with pytest.raises(OSError, match='disk full'):
    run_dir.write_policy_checkpoint(root, dst)
  assert run_dir.latest_checkpoint(run_dir.checkpoint_dir(dst)) is None
  monkeypatch.setattr(os, 'replace', real_replace)

  prefix = run_dir.write_policy_checkpoint(root, dst)
  assert prefix == os.path.join(run_dir.checkpoint_dir(dst), 'ckpt-200')
  assert run_dir.latest_checkpoint(run_dir.checkpoint_dir(dst)) == prefix
  assert _top_keys(prefix) == {'G_sim2real', 'q_network', 'train_step', 'save_counter'}
  assert sorted(f for f in os.listdir(run_dir.checkpoint_dir(dst)) if not f.startswith('.')) == [
      'checkpoint', 'ckpt-200.data-00000-of-00001', 'ckpt-200.index']
  assert int(tf.train.load_checkpoint(prefix).get_tensor(
      'train_step/.ATTRIBUTES/VARIABLE_VALUE')) == 200
  published = run_dir.read_run_spec(dst)
  assert published.checkpoint_keys == ('G_sim2real', 'q_network', 'save_counter', 'train_step')
  assert published.networks.keys() == spec.networks.keys()
  # Evaluation restores both networks exactly (check_matches: both ways), with their values.
  restored = run_dir.restore_networks(published, ['q_network', 'G_sim2real'], prefix)
  for key, net in nets.items():
    for a, b in zip(restored[key].variables, net.variables):
      np.testing.assert_array_equal(a.numpy(), b.numpy())

  # Again on the same checkpoint: nothing is rewritten. A newer one replaces it.
  mtime = os.path.getmtime(prefix + '.index')
  assert run_dir.write_policy_checkpoint(root, dst) == prefix
  assert os.path.getmtime(prefix + '.index') == mtime
  _training_checkpoints(root, spec, steps=(300,))
  newer = run_dir.write_policy_checkpoint(root, dst)
  assert newer.endswith('ckpt-300') and not os.path.exists(prefix + '.index')
  with pytest.raises(ValueError, match='is the run itself'):
    run_dir.write_policy_checkpoint(root, root)
  run_dir.write_run_spec(str(tmp_path / 'untrained'), spec)
  assert run_dir.write_policy_checkpoint(str(tmp_path / 'untrained'), dst) is None


def test_a_published_final_q_can_keep_its_frozen_g_beside_it_once(tmp_path):
  """The G a final Q was trained on is committed once (the row's generator/): the published
  final Q's checkpoint then holds the Q alone and its run spec names where G is, relative to
  it, so the copy reads the same wherever the results are checked out."""
  spec = _spec()
  root = str(tmp_path / 'work' / 'final_q')
  run_dir.write_run_spec(root, spec)
  nets = _training_checkpoints(root, spec, steps=(100,))
  results = tmp_path / 'results'
  generator = str(results / 'row' / 'generator')
  tf.train.Checkpoint(G_sim2real=nets['G_sim2real']).save(os.path.join(generator, 'g'))

  other = spec.networks['G_sim2real'].build(spec.crop_size)  # another G: refused, named
  elsewhere = tf.train.Checkpoint(G_sim2real=other).save(str(tmp_path / 'other_g' / 'g'))
  with pytest.raises(ValueError, match=r"'G_sim2real' at .*other_g.* is not the one in"):
    run_dir.write_policy_checkpoint(root, str(results / 'row' / 'final_q'),
                                    {'G_sim2real': elsewhere})

  prefix = run_dir.write_policy_checkpoint(root, str(results / 'row' / 'final_q'),
                                           {'G_sim2real': generator})
  assert _top_keys(prefix) == {'q_network', 'train_step', 'save_counter'}
  published = run_dir.read_run_spec(str(results / 'row' / 'final_q'))
  assert published.network_sources == {'G_sim2real': os.path.join('..', 'generator')}
  assert published.checkpoint_keys == ('q_network', 'save_counter', 'train_step')

  # Moved elsewhere (a clone at another path), both networks restore with their values.
  moved = tmp_path / 'clone' / 'results'
  os.makedirs(moved.parent)
  os.rename(results, moved)
  published = run_dir.read_run_spec(str(moved / 'row' / 'final_q'))
  prefix = run_dir.latest_checkpoint(run_dir.checkpoint_dir(str(moved / 'row' / 'final_q')))
  restored = run_dir.restore_networks(published, ['q_network', 'G_sim2real'], prefix)
  for key, net in nets.items():
    for a, b in zip(restored[key].variables, net.variables):
      np.testing.assert_array_equal(a.numpy(), b.numpy())
  # Another G given explicitly (the swap test) is still read from where it is given.
  swapped = run_dir.restore_networks(published, ['G_sim2real'], elsewhere)['G_sim2real']
  np.testing.assert_array_equal(swapped.variables[0].numpy(), other.variables[0].numpy())

  # Without the G beside it, the error names where it was looked for.
  shutil.rmtree(moved / 'row' / 'generator')
  with pytest.raises(FileNotFoundError, match=r"keeps network 'G_sim2real' beside the run, at "
                                              r"'.*clone/results/row/generator'"):
    run_dir.restore_networks(published, ['q_network', 'G_sim2real'], prefix)


def test_a_run_spec_naming_a_network_source_badly_is_refused(tmp_path):
  data = json.loads(json.dumps(_spec().to_json()))  # as read from run_spec.json
  del data['network_sources']  # as older runs wrote it
  assert run_dir.RunSpec.from_json(data, 'x/run_spec.json').network_sources == {}
  for bad in ({'G_sim2real': '/abs/generator'}, {'D_Y': '../generator'},
              {'G_sim2real': 3}):
    data['network_sources'] = bad
    with pytest.raises(run_dir.RunSpecError, match=r'network_sources\['):
      run_dir.RunSpec.from_json(data, 'x/run_spec.json')
