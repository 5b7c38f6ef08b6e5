"""Episode file format: round trip, atomic writes, named errors, and the validator."""
import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan import specs
from rl_cyclegan.data import episodes

SIZE = (16, 20)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _episode(seed=0, num_steps=4, size=SIZE, **kwargs):
  return episodes.synthetic_episode(num_steps, size, seed=seed, **kwargs)


def _write(path, eps):
  with episodes.EpisodeWriter(str(path)) as writer:
    for ep in eps:
      writer.write(ep)
  return str(path)


def _with(episode, **changes):
  return episode._replace(**changes)


def _proto(episode):
  return tf.train.SequenceExample.FromString(episodes.episode_to_example(episode))


def _write_protos(path, protos):
  with tf.io.TFRecordWriter(str(path)) as writer:
    for proto in protos:
      writer.write(proto if isinstance(proto, bytes) else proto.SerializeToString())
  return str(path)


# ------------------------------------------------------------------------------ round trip


def test_round_trip_png_is_bit_exact():
  ep = _episode(seed=3, num_steps=5, success=True)
  back = episodes.parse_episode(episodes.episode_to_example(ep))
  assert back.images.dtype == np.uint8 and back.images.shape == (6, *SIZE, 3)
  np.testing.assert_array_equal(back.images, ep.images)
  for field in ('gripper_states', 'actions', 'rewards', 'dones'):
    np.testing.assert_array_equal(getattr(back, field), getattr(ep, field))
    assert getattr(back, field).dtype == np.float32
  assert back.metadata == ep.metadata
  assert back.metadata['success'] is True


def test_round_trip_jpeg_is_close_and_extra_metadata_kept():
  ep = _episode(seed=1)
  ep.metadata.update(num_objects=5, robot='kuka-7', exposure=0.25)
  back = episodes.parse_episode(episodes.episode_to_example(ep, image_format='jpeg'))
  assert back.images.shape == ep.images.shape
  assert np.abs(back.images.astype(int) - ep.images).mean() < 4  # lossy but close
  assert back.metadata['num_objects'] == 5 and back.metadata['robot'] == 'kuka-7'
  assert back.metadata['exposure'] == pytest.approx(0.25)


def test_missing_metadata_gets_defaults():
  ep = _with(_episode(success=True), metadata={})
  back = episodes.parse_episode(episodes.episode_to_example(ep))
  assert back.metadata['seed'] == -1 and back.metadata['policy'] == ''
  assert back.metadata['success'] is True  # any(rewards > 0)


def test_writer_rejects_bad_episode_naming_the_field():
  ep = _episode()
  with pytest.raises(episodes.EpisodeFormatError, match=r'actions must have shape \[4, 8\]'):
    episodes.episode_to_example(_with(ep, actions=ep.actions[:, :7]))
  with pytest.raises(episodes.EpisodeFormatError, match='images must be uint8'):
    episodes.episode_to_example(_with(ep, images=ep.images.astype(np.float32)))


def test_writer_and_read_episodes(tmp_path):
  eps = [_episode(seed=s) for s in range(3)]
  path = _write(tmp_path / 'a.tfrecord', eps)
  read = list(episodes.read_episodes(path))
  assert len(read) == 3
  for a, b in zip(eps, read):
    np.testing.assert_array_equal(a.images, b.images)
    assert a.metadata['episode_id'] == b.metadata['episode_id']


# --------------------------------------------------------------------------------- atomicity


def test_writer_temp_file_until_clean_close(tmp_path):
  path = str(tmp_path / 'shard.tfrecord')
  writer = episodes.EpisodeWriter(path)
  writer.write(_episode())
  assert not os.path.exists(path)
  assert os.path.exists(writer.tmp_path) and writer.tmp_path == f'{path}.tmp-{os.getpid()}'
  writer.close()
  assert os.path.exists(path) and not os.path.exists(writer.tmp_path)
  assert writer.num_episodes == 1 and writer.num_transitions == 4


def test_exception_inside_writer_leaves_no_file(tmp_path):
  path = str(tmp_path / 'shard.tfrecord')
  with pytest.raises(RuntimeError, match='boom'):
    with episodes.EpisodeWriter(path) as writer:
      writer.write(_episode())
      raise RuntimeError('boom')
  assert os.listdir(tmp_path) == []


def test_exception_keeps_previous_complete_file(tmp_path):
  path = _write(tmp_path / 'shard.tfrecord', [_episode(seed=0)])
  before = open(path, 'rb').read()
  with pytest.raises(RuntimeError):
    with episodes.EpisodeWriter(path) as writer:
      writer.write(_episode(seed=1))
      raise RuntimeError('interrupted')
  assert open(path, 'rb').read() == before
  assert os.listdir(tmp_path) == ['shard.tfrecord']


# ------------------------------------------------------------------------------ named errors


def _corrupt_copy(path, out, flip_at=None, keep=None):
  data = bytearray(open(path, 'rb').read())
  if flip_at is not None:
    data[flip_at] ^= 0xFF
  if keep is not None:
    data = data[:keep]
  open(out, 'wb').write(bytes(data))
  return str(out)


def _record_offsets(path):
  """Byte offset of each record's data (TFRecord: u64 length, u32 crc, data, u32 crc)."""
  data = open(path, 'rb').read()
  offsets, pos = [], 0
  while pos < len(data):
    length = int.from_bytes(data[pos:pos + 8], 'little')
    offsets.append((pos + 12, length))
    pos += 16 + length
  return offsets


def test_corrupt_file_error_names_file_and_record(tmp_path):
  good = _write(tmp_path / 'good.tfrecord', [_episode(seed=s) for s in range(3)])
  start, length = _record_offsets(good)[1]
  bad = _corrupt_copy(good, tmp_path / 'bad.tfrecord', flip_at=start + length // 2)
  with pytest.raises(episodes.EpisodeFormatError) as info:
    list(episodes.read_episodes(bad))
  assert info.value.path == bad and info.value.record == 1
  assert 'bad.tfrecord' in str(info.value) and 'record 1' in str(info.value)
  assert 'corrupt' in str(info.value)


def test_truncated_file_error_names_file_and_record(tmp_path):
  good = _write(tmp_path / 'good.tfrecord', [_episode(seed=s) for s in range(3)])
  start, length = _record_offsets(good)[2]
  bad = _corrupt_copy(good, tmp_path / 'cut.tfrecord', keep=start + length // 2)
  read = []
  with pytest.raises(episodes.EpisodeFormatError, match=r'cut.tfrecord, record 2 .*truncated'):
    for ep in episodes.read_episodes(bad):
      read.append(ep)
  assert len(read) == 2  # the complete records before the damage are still readable


def test_schema_error_names_the_feature():
  proto = _proto(_episode())
  del proto.feature_lists.feature_list['reward']
  with pytest.raises(episodes.EpisodeFormatError, match="feature list 'reward' is missing"):
    episodes.parse_episode(proto.SerializeToString())
  proto = _proto(_episode())
  del proto.context.feature['metadata/policy']
  with pytest.raises(episodes.EpisodeFormatError, match="'metadata/policy' is missing"):
    episodes.parse_episode(proto.SerializeToString())
  proto = _proto(_episode())
  proto.context.feature['schema_version'].int64_list.value[0] = 7
  with pytest.raises(episodes.EpisodeFormatError, match='schema version 7'):
    episodes.parse_episode(proto.SerializeToString())
  with pytest.raises(episodes.EpisodeFormatError, match='not a tf.train.SequenceExample'):
    episodes.parse_episode(b'\xff\x00garbage')


def test_expected_image_size():
  serialized = episodes.episode_to_example(_episode())
  episodes.parse_episode(serialized, expected_image_size=SIZE)
  with pytest.raises(episodes.EpisodeFormatError, match=r'images are 16x20, expected 64x80'):
    episodes.parse_episode(serialized, expected_image_size=(64, 80))


# --------------------------------------------------------------------------------- validator


def _bad_protos():
  """name -> (serialized record, substring the validator must report)."""
  ep = _episode(seed=9)
  cases = {}
  proto = _proto(ep)
  proto.feature_lists.feature_list['image'].feature[2].bytes_list.value[0] = \
      episodes.encode_image(np.zeros([8, 8, 3], np.uint8))
  cases['image_size'] = (proto, "'image'[2] is 8x8, the header says 16x20")
  proto = _proto(ep)
  del proto.context.feature['image/height']
  cases['missing_feature'] = (proto, "context feature 'image/height' is missing")
  proto = _proto(ep)
  del proto.feature_lists.feature_list['action'].feature[1].float_list.value[-1]
  cases['action_width'] = (proto, "'action'[1] has 7 values, expected 8")
  proto = _proto(ep)
  del proto.feature_lists.feature_list['image'].feature[-1]
  cases['length'] = (proto, "'image' has 4 entries, expected num_steps + 1 = 5")
  proto = _proto(ep)
  del proto.feature_lists.feature_list['done'].feature[-1]
  cases['length_done'] = (proto, "'done' has 3 entries, expected 4")
  proto = _proto(ep)
  proto.feature_lists.feature_list['gripper_state'].feature[3].float_list.value[1] = np.nan
  cases['nan'] = (proto, "non-finite value nan in 'gripper_state' at [3, 1]")
  proto = _proto(ep)
  proto.feature_lists.feature_list['reward'].feature[0].float_list.value[0] = np.inf
  cases['inf'] = (proto, "non-finite value inf in 'reward'")
  proto = _proto(ep)
  proto.feature_lists.feature_list['image'].feature[0].bytes_list.value[0] = b'not a png'
  cases['undecodable'] = (proto, "'image'[0] is not a decodable png")
  return cases


def test_validator_reports_counts_on_good_directory(tmp_path):
  _write(tmp_path / episodes.shard_name(0, 2), [_episode(seed=s, success=s == 0)
                                                for s in range(3)])
  _write(tmp_path / episodes.shard_name(1, 2), [_episode(seed=5, success=True)])
  report = episodes.validate_directory(tmp_path, expected_image_size=SIZE)
  assert report.ok, str(report)
  assert report.num_episodes == 4 and report.num_transitions == 16
  assert report.success_rate == pytest.approx(0.5)
  assert 'success rate: 0.500 (2/4)' in str(report)


def test_validator_catches_each_bad_case(tmp_path):
  cases = _bad_protos()
  good = _proto(_episode(seed=1))
  # One file per case: a good record, then the bad one at index 1.
  for name, (proto, _) in cases.items():
    _write_protos(tmp_path / f'{name}.tfrecord', [good, proto])
  # Corrupt and truncated files.
  clean = _write(tmp_path / 'clean.tfrecord', [_episode(seed=s) for s in range(3)])
  start, length = _record_offsets(clean)[1]
  _corrupt_copy(clean, tmp_path / 'corrupt.tfrecord', flip_at=start + 5)
  start, length = _record_offsets(clean)[2]
  _corrupt_copy(clean, tmp_path / 'truncated.tfrecord', keep=start + length - 3)
  report = episodes.validate_directory(tmp_path)
  assert not report.ok
  errors = {os.path.basename(p.path): p for p in report.errors}
  for name, (_, reason) in cases.items():
    problem = errors[f'{name}.tfrecord']
    assert problem.record == 1 and reason in problem.reason, (name, str(problem))
  assert errors['corrupt.tfrecord'].record == 1 and 'corrupt' in errors['corrupt.tfrecord'].reason
  assert errors['truncated.tfrecord'].record == 2
  assert 'truncated' in errors['truncated.tfrecord'].reason
  assert 'clean.tfrecord' not in errors
  assert len(report.errors) == len(cases) + 2
  # Good records counted: 1 per case file, 3 clean, 1 corrupt, 2 truncated.
  assert report.num_episodes == len(cases) + 3 + 1 + 2
  assert 'FAILED' in str(report)


def test_validator_wrong_expected_size_and_mixed_sizes(tmp_path):
  _write(tmp_path / 'a.tfrecord', [_episode(seed=0)])
  _write(tmp_path / 'b.tfrecord', [_episode(seed=1, size=(32, 40))])
  report = episodes.validate_directory(tmp_path, expected_image_size=SIZE)
  assert [os.path.basename(p) for p in report.bad_files] == ['b.tfrecord']
  assert 'images are 32x40, expected 16x20' in report.errors[0].reason
  report = episodes.validate_directory(tmp_path)  # sizes must agree with the first file
  assert [os.path.basename(p) for p in report.bad_files] == ['b.tfrecord']
  assert 'a.tfrecord record 0' in report.errors[0].reason


def test_validator_warns_on_temp_files_and_missing_shards(tmp_path):
  _write(tmp_path / episodes.shard_name(0, 3), [_episode()])
  open(tmp_path / (episodes.shard_name(1, 3) + '.tmp-12345'), 'wb').write(b'partial')
  report = episodes.validate_directory(tmp_path)
  assert report.ok and report.num_episodes == 1
  warnings = '\n'.join(str(w) for w in report.warnings)
  assert 'temporary file' in warnings and '2 of 3 shards missing' in warnings


def _load_tool(name):
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, 'tools', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_validate_tool_exit_codes(tmp_path, capsys):
  good_dir, bad_dir = tmp_path / 'good', tmp_path / 'bad'
  good_dir.mkdir()
  bad_dir.mkdir()
  _write(good_dir / 'a.tfrecord', [_episode()])
  _write_protos(bad_dir / 'a.tfrecord', [_bad_protos()['action_width'][0]])
  tool = _load_tool('validate_episodes')
  assert tool.main([f'--episode_dir={good_dir}', '--image_size=16x20']) == 0
  assert 'episodes:     1' in capsys.readouterr().out
  assert tool.main([f'--episode_dir={good_dir}', '--image_size=64x80']) == 1
  assert 'expected 64x80' in capsys.readouterr().out
  assert tool.main([f'--episode_dir={bad_dir}']) == 1
  out = capsys.readouterr().out
  assert 'a.tfrecord record 0' in out and 'expected 8' in out
  with pytest.raises(SystemExit):
    tool.main([f'--episode_dir={good_dir}', '--image_size=64by80'])


def test_spec_dims_match_schema():
  ep = _episode()
  assert ep.actions.shape[1] == specs.ACTION_DIM
  assert ep.gripper_states.shape[1] == specs.GRIPPER_STATE_DIM


def test_validator_and_training_reader_agree_on_empty_files_and_missing_shards(tmp_path,
                                                                                 capsys):
  from rl_cyclegan.data import dataset  # pylint: disable=g-import-not-at-top
  good = tmp_path / 'good'
  good.mkdir()
  with episodes.EpisodeWriter(str(good / episodes.shard_name(0, 3))) as w:
    w.write(episodes.synthetic_episode(3, (16, 20)))
  # Shards 1 and 2 of 3 missing: a warning from both, naming them; the run may go on.
  report = episodes.validate_directory(str(good))
  assert report.ok and '2 of 3 shards missing' in str(report)
  assert dataset.check_episode_files(str(good)) == [str(good / episodes.shard_name(0, 3))]
  err = capsys.readouterr().err
  assert '2 of 3 shards missing' in err and episodes.shard_name(1, 3) in err
  # An empty shard: an error for both.
  empty = tmp_path / 'empty'
  empty.mkdir()
  with episodes.EpisodeWriter(str(empty / episodes.shard_name(0, 1))):
    pass
  report = episodes.validate_directory(str(empty))
  assert not report.ok and episodes.EMPTY_FILE in str(report)
  with pytest.raises(episodes.EpisodeFormatError, match=episodes.EMPTY_FILE):
    dataset.check_episode_files(str(empty))
