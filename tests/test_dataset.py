"""Crops and the tf.data transition pipeline."""

import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan import specs
from rl_cyclegan.data import dataset
from rl_cyclegan.data import episodes
from rl_cyclegan.data import preprocessing

RENDER = (16, 20)
CROP = (12, 12)


# ------------------------------------------------------------------------------------ crops


def _ramp(h, w, batch=None):
  """uint8-free int32 image whose pixel (r, c) holds r * 1000 + c (channel k adds k * 10**6)."""
  image = (np.arange(h)[:, None, None] * 1000 + np.arange(w)[None, :, None]
           + np.arange(3)[None, None, :] * 10**6).astype(np.int32)
  return image if batch is None else np.stack([image] * batch)


@pytest.mark.parametrize('render,crop', [((64, 80), (64, 64)), ((16, 20), (12, 12)),
                                         ((15, 21), (4, 8)), ((8, 8), (8, 8))])
def test_center_crop_is_exact_center(render, crop):
  image = _ramp(*render)
  out = preprocessing.center_crop(image, crop).numpy()
  top, left = (render[0] - crop[0]) // 2, (render[1] - crop[1]) // 2
  np.testing.assert_array_equal(out, image[top:top + crop[0], left:left + crop[1]])
  # Worked example, 64x80 -> 64x64: columns 8..71 (8 dropped on each side).
  if render == (64, 80):
    assert out[0, 0, 0] == 8 and out[-1, -1, 0] == 63 * 1000 + 71


def test_random_crop_is_a_window_of_the_image():
  image = _ramp(16, 20)
  offsets = set()
  for seed in range(20):
    out = preprocessing.random_crop(image, (12, 12), seed=seed).numpy()
    top, left = divmod(int(out[0, 0, 0]), 1000)
    np.testing.assert_array_equal(out, image[top:top + 12, left:left + 12])
    offsets.add((top, left))
  assert len(offsets) > 5  # offsets vary with the seed
  a = preprocessing.random_crop(image, (12, 12), seed=3).numpy()
  np.testing.assert_array_equal(a, preprocessing.random_crop(image, (12, 12), seed=3).numpy())


def test_paper_crop_sizes_batch_1():
  image = tf.zeros([1, 512, 640, 3], tf.uint8)
  assert preprocessing.random_crop(image, (472, 472)).shape == (1, 472, 472, 3)
  assert preprocessing.center_crop(image, (472, 472)).shape == (1, 472, 472, 3)
  image = tf.zeros([64, 80, 3], tf.uint8)
  assert preprocessing.random_crop(image, (64, 64)).shape == (64, 64, 3)
  assert preprocessing.center_crop(image, (64, 64)).shape == (64, 64, 3)


def test_batched_random_crop_is_per_example():
  image = _ramp(16, 20, batch=6)
  out = preprocessing.random_crop(image, (4, 4), seed=0).numpy()
  assert out.shape == (6, 4, 4, 3)
  assert len({int(o[0, 0, 0]) for o in out}) > 1


def test_spread_crops_offsets_and_order():
  image = tf.reshape(tf.range(2 * 4 * 10, dtype=tf.int32), [2, 4, 10, 1])
  out = preprocessing.spread_crops(image, (2, 6), 3).numpy()  # offsets (0,0), (1,2), (2,4)
  assert out.shape == (6, 2, 6, 1)
  for k, (top, left) in enumerate([(0, 0), (1, 2), (2, 4)]):
    for b in range(2):
      np.testing.assert_array_equal(out[k * 2 + b], image[b, top:top + 2, left:left + 6].numpy())
  np.testing.assert_array_equal(preprocessing.spread_crops(image, (2, 6), 1),
                                preprocessing.center_crop(image, (2, 6)))
  with pytest.raises(ValueError, match='num_crops'):
    preprocessing.spread_crops(image, (2, 6), 0)
  with pytest.raises(ValueError, match='larger than the image'):
    preprocessing.spread_crops(image, (5, 6), 2)


def test_crop_larger_than_image_raises_naming_both_sizes():
  with pytest.raises(ValueError, match='crop size 472x472 is larger than the image size 64x80'):
    preprocessing.random_crop(tf.zeros([64, 80, 3]), (472, 472))
  with pytest.raises(ValueError, match='crop size 65x64 is larger than the image size 64x80'):
    preprocessing.center_crop(tf.zeros([2, 64, 80, 3]), (65, 64))


def test_to_model_image_range():
  out = preprocessing.to_model_image(tf.constant([0, 255, 128], tf.uint8)).numpy()
  np.testing.assert_allclose(out, [-1.0, 1.0, 128 / 127.5 - 1], atol=1e-6)


# --------------------------------------------------------------------------------- pipeline


@pytest.fixture(scope='module')
def episode_dir(tmp_path_factory):
  """3 shards x 3 episodes of 4..6 steps at 16x20."""
  directory = tmp_path_factory.mktemp('episodes')
  source = []
  for shard in range(3):
    with episodes.EpisodeWriter(str(directory / episodes.shard_name(shard, 3))) as writer:
      for j in range(3):
        ep = episodes.synthetic_episode(4 + j, RENDER, seed=10 * shard + j,
                                        episode_id=f'{shard}-{j}')
        writer.write(ep)
        source.append(ep)
  return str(directory), source


def test_training_batches_match_model_spec(episode_dir):
  directory, _ = episode_dir
  ds = dataset.transition_dataset(directory, crop_size=CROP, batch_size=4, training=True,
                                  expected_render_size=RENDER, shuffle_buffer=16, seed=1)
  spec = specs.transition_spec(specs.model_observation_spec(CROP))
  for batch in ds.take(5):
    for name in ('observation', 'next_observation'):
      for key in ('image', 'gripper_state'):
        specs.check_tensor(getattr(batch, name)[key], getattr(spec, name)[key], f'{name}/{key}')
      image = getattr(batch, name)['image'].numpy()
      assert image.min() >= -1.0 and image.max() <= 1.0 and image.max() > 0.5
    specs.check_tensor(batch.action, spec.action, 'action')
    specs.check_tensor(batch.reward, spec.reward, 'reward')
    specs.check_tensor(batch.done, spec.done, 'done')
    assert batch.reward.shape == (4,) and batch.done.shape == (4,)
  assert ds.element_spec.observation['image'].shape.as_list() == [4, 12, 12, 3]


def _expected_transitions(source, crop):
  """Per-source-episode transitions, center-cropped, in file order."""
  out = []
  for ep in source:
    images = preprocessing.center_crop(ep.images, crop).numpy()
    for t in range(len(ep.actions)):
      out.append(dict(image=images[t], next_image=images[t + 1], gripper=ep.gripper_states[t],
                      next_gripper=ep.gripper_states[t + 1], action=ep.actions[t],
                      reward=ep.rewards[t], done=ep.dones[t]))
  return out


@pytest.mark.parametrize('crop', [RENDER, CROP])  # crops disabled, and the center crop
def test_eval_alignment_next_state_is_next_source_state(episode_dir, crop):
  directory, source = episode_dir
  ds = dataset.transition_dataset(directory, crop_size=crop, batch_size=5, training=False,
                                  repeat=False)
  got = list(ds.unbatch().as_numpy_iterator())
  expected = _expected_transitions(source, crop)
  assert len(got) == len(expected) == sum(len(e.actions) for e in source) == 45
  # Episodes are interleaved across shards; match each transition by its (unique) action.
  by_action = {e['action'].tobytes(): e for e in expected}
  assert len(by_action) == 45
  for i, g in enumerate(got):
    e = by_action.pop(g.action.tobytes())
    np.testing.assert_array_equal(specs.to_uint8_image(g.observation['image']).numpy(),
                                  e['image'])
    np.testing.assert_array_equal(specs.to_uint8_image(g.next_observation['image']).numpy(),
                                  e['next_image'])
    np.testing.assert_array_equal(g.observation['gripper_state'], e['gripper'])
    np.testing.assert_array_equal(g.next_observation['gripper_state'], e['next_gripper'])
    assert g.reward == e['reward'] and g.done == e['done']
    # Within an episode transitions stay in order: s' of t is s of t + 1.
    if not g.done:
      np.testing.assert_array_equal(g.next_observation['image'], got[i + 1].observation['image'])
      np.testing.assert_array_equal(g.next_observation['gripper_state'],
                                    got[i + 1].observation['gripper_state'])
  assert not by_action
  # done is on the last transition of each episode only.
  assert sum(g.done for g in got) == len(source)


def test_training_crops_are_windows_of_source_states(episode_dir):
  directory, source = episode_dir
  ds = dataset.transition_dataset(directory, crop_size=CROP, batch_size=8, training=True,
                                  seed=0, shuffle_buffer=8)
  batch = next(iter(ds))
  images = specs.to_uint8_image(batch.next_observation['image']).numpy()
  heights = batch.next_observation['gripper_state'].numpy()[:, 1]
  for image, height in zip(images, heights):
    # gripper height t / 100 tells the step t; the crop must be a window of some episode's s_t.
    candidates = [ep.images[t] for ep in source for t in range(len(ep.images))
                  if np.isclose(ep.gripper_states[t, 1], height)]
    found = any((c[r:r + 12, k:k + 12] == image).all()
                for c in candidates for r in range(5) for k in range(9))
    assert found


def test_seeded_training_is_reproducible(episode_dir):
  directory, _ = episode_dir
  make = lambda: dataset.transition_dataset(directory, crop_size=CROP, batch_size=4, seed=7,
                                            shuffle_buffer=8, num_parallel_calls=2)
  a = [b.observation['image'].numpy() for b in make().take(3)]
  b = [b.observation['image'].numpy() for b in make().take(3)]
  np.testing.assert_array_equal(np.stack(a), np.stack(b))


def test_load_transitions_numpy(episode_dir):
  directory, source = episode_dir
  t = dataset.load_transitions_numpy(directory, expected_render_size=RENDER)
  assert t.observation['image'].shape == (45, *RENDER, 3)
  assert t.observation['image'].dtype == np.uint8
  np.testing.assert_array_equal(t.next_observation['image'][0], source[0].images[1])
  assert t.action.shape == (45, 8) and t.done.sum() == 9


# ------------------------------------------------------------------------------- bad inputs


def test_no_files_raises_naming_pattern(tmp_path):
  with pytest.raises(ValueError, match='no episode files match .*nothing'):
    dataset.transition_dataset(str(tmp_path / 'nothing*'))


def test_check_episode_files_names_bad_shard(episode_dir, tmp_path):
  directory, _ = episode_dir
  assert len(dataset.check_episode_files(directory, RENDER)) == 3
  with pytest.raises(episodes.EpisodeFormatError,
                     match=r'episodes-00000-of-00003.tfrecord, record 0 .*images are 16x20, '
                           r'expected 64x80'):
    dataset.check_episode_files(directory, (64, 80))
  proto = tf.train.SequenceExample.FromString(
      episodes.episode_to_example(episodes.synthetic_episode(3, RENDER)))
  del proto.feature_lists.feature_list['action']
  with tf.io.TFRecordWriter(str(tmp_path / 'odd.tfrecord')) as writer:
    writer.write(proto.SerializeToString())
  with pytest.raises(episodes.EpisodeFormatError,
                     match=r"odd.tfrecord, record 0 .*feature list 'action' is missing"):
    dataset.check_episode_files(str(tmp_path / '*.tfrecord'), RENDER)


def test_wrong_render_size_in_pipeline_names_file(episode_dir):
  directory, _ = episode_dir
  ds = dataset.transition_dataset(directory, crop_size=(8, 8), batch_size=2, training=False,
                                  expected_render_size=(16, 24))
  with pytest.raises(tf.errors.OpError,
                     match=r'episodes-00000-of-00003.tfrecord, record 0 .*wrong image size: images '
                           r'are 16x20, expected 16x24'):
    next(iter(ds))


def _write_shard(path, num_episodes=3):
  with episodes.EpisodeWriter(path) as writer:
    for s in range(num_episodes):
      writer.write(episodes.synthetic_episode(4, RENDER, seed=s))
  return path


def test_truncated_shard_fails_when_the_dataset_is_built_naming_file_and_record(tmp_path):
  path = _write_shard(str(tmp_path / 'episodes-00000-of-00001.tfrecord'))
  assert episodes.count_records(path) == 3
  data = open(path, 'rb').read()
  open(path, 'wb').write(data[:len(data) - 40])  # truncate the last record
  with pytest.raises(episodes.EpisodeFormatError,
                     match=r'episodes-00000-of-00001.tfrecord, record 2 .*truncated'):
    dataset.transition_dataset(path, crop_size=CROP, batch_size=4, repeat=False)
  open(path, 'wb').write(data + data[:5])  # a few bytes of a next record's header
  with pytest.raises(episodes.EpisodeFormatError, match=r'record 3 .*truncated TFRecord: 5 bytes'):
    episodes.count_records(path)


def test_bit_flip_in_record_data_fails_the_crc_and_the_validator_names_it(tmp_path):
  path = _write_shard(str(tmp_path / 'episodes-00000-of-00001.tfrecord'))
  data = bytearray(open(path, 'rb').read())
  data[len(data) - 100] ^= 0xFF  # inside record 2's data: framing intact, CRC wrong
  open(path, 'wb').write(bytes(data))
  ds = dataset.transition_dataset(path, crop_size=CROP, batch_size=4, training=False,
                                  repeat=False)
  with pytest.raises(tf.errors.DataLossError, match='corrupted record'):
    list(ds)
  report = episodes.validate_directory(str(tmp_path))
  assert [(os.path.basename(p.path), p.record) for p in report.errors] == [
      ('episodes-00000-of-00001.tfrecord', 2)]


def _mutate(proto, kind):
  """Breaks one schema rule of a serialized-episode proto (T = 3 steps)."""
  lists, context = proto.feature_lists.feature_list, proto.context.feature
  if kind == 'missing action':
    del lists['action']
  elif kind == 'action width':
    lists['action'].feature[1].float_list.value.append(0.5)
  elif kind == 'nan reward':
    lists['reward'].feature[0].float_list.value[0] = float('nan')
  elif kind == 'early done':
    lists['done'].feature[0].float_list.value[0] = 1.0
  elif kind == 'done value':
    lists['done'].feature[2].float_list.value[0] = 0.5
  elif kind == 'num_steps':
    context['num_steps'].int64_list.value[0] = 4
  elif kind == 'schema version':
    context['schema_version'].int64_list.value[0] = episodes.SCHEMA_VERSION + 1
  elif kind == 'image format':
    context['image/format'].bytes_list.value[0] = b'gif'
  elif kind == 'missing metadata':
    del context['metadata/seed']
  elif kind == 'action type':
    lists['action'].feature[0].ClearField('float_list')
    lists['action'].feature[0].bytes_list.value.append(b'x')
  elif kind == 'extra image':
    lists['image'].feature.add().CopyFrom(lists['image'].feature[0])
  return proto


SCHEMA_ERRORS = {  # mutation -> what the tf.data error must say after the file and record
    'missing action': r'feature list action has 0 entries, expected 3',
    'action width': r'every action entry must have 8 value\(s\), got lengths 8,9,8',
    'nan reward': r'non-finite value in reward',
    'early done': r'done is 1.0 before the last step',
    'done value': r'done values must be 0.0 or 1.0',
    'num_steps': r'feature list gripper_state has 4 entries, expected 5',
    'schema version': r'schema version 2; this reader understands version 1',
    'image format': r'image/format is gif, expected one of png, jpeg',
    'missing metadata': r'context feature metadata/seed must have 1 value, got 0',
    'action type': r'Feature list: action, Index: 0.  Data types don',
    'extra image': r'feature list image has 5 entries, expected 4',
}


@pytest.mark.parametrize('kind', sorted(SCHEMA_ERRORS))
def test_schema_errors_in_pipeline_name_file_and_record_like_the_numpy_reader(tmp_path, kind):
  good = episodes.episode_to_example(episodes.synthetic_episode(3, RENDER, seed=0))
  bad = _mutate(tf.train.SequenceExample.FromString(good), kind).SerializeToString()
  path = str(tmp_path / 'odd.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(good)
    writer.write(bad)
  ds = dataset.transition_dataset(path, crop_size=(8, 8), batch_size=2, training=False,
                                  repeat=False)
  with pytest.raises(tf.errors.OpError,
                     match=r'episode file .*odd.tfrecord, record 1 \(0-based\).*' + SCHEMA_ERRORS[kind]):
    list(ds)
  with pytest.raises(episodes.EpisodeFormatError, match=r'odd.tfrecord, record 1 '):
    list(episodes.read_episodes(path))  # the NumPy reader rejects the same record


def test_pipeline_runs_no_python():
  """No py_func or generator op anywhere in the pipeline's graph (see the module docstring)."""
  directory = os.path.dirname(_write_shard(os.path.join(
      tempfile.mkdtemp(), episodes.shard_name(0, 1))))
  ds = dataset.transition_dataset(directory, crop_size=CROP, batch_size=2, seed=0)
  graph = tf.compat.v1.GraphDef.FromString(ds._as_serialized_graph().numpy())  # pylint: disable=protected-access
  ops = {node.op for node in graph.node}
  ops.update(node.op for function in graph.library.function for node in function.node_def)
  assert 'TFRecordDataset' in ops or 'TFRecordDatasetV2' in ops
  assert not {op for op in ops if 'PyFunc' in op or 'Generator' in op}, sorted(ops)


def test_image_not_matching_header_in_pipeline_names_file_record_and_step(tmp_path):
  ep = episodes.synthetic_episode(3, RENDER, seed=0)
  proto = tf.train.SequenceExample.FromString(episodes.episode_to_example(ep))
  proto.feature_lists.feature_list['image'].feature[2].bytes_list.value[0] = (
      episodes.encode_image(np.zeros([16, 8, 3], np.uint8)))
  path = str(tmp_path / 'mixed.tfrecord')
  with tf.io.TFRecordWriter(path) as writer:
    writer.write(episodes.episode_to_example(ep))
    writer.write(proto.SerializeToString())
  ds = dataset.transition_dataset(path, crop_size=(8, 8), batch_size=2, training=False,
                                  repeat=False)
  with pytest.raises(tf.errors.OpError,
                     match=r'mixed.tfrecord, record 1 .*image\[2\] is 16x8, the header says 16x20'):
    list(ds)
