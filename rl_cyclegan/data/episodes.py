"""Episode files: the TFRecord schema, writer, reader and validator.

Real-robot logs and simulated collections are stored the same way, so that anyone with a robot
can write episodes that the training input pipeline (``rl_cyclegan/data/dataset.py``) reads.

Schema (version 1): one ``tf.train.SequenceExample`` per episode, serialized as one record of a
TFRecord file (uncompressed). T = number of steps (actions); images are observations s_0 .. s_T.

Context (``context.feature``), one value each:

  key                    type    meaning
  schema_version         int64   1 (``SCHEMA_VERSION``); readers refuse newer versions
  num_steps              int64   T >= 1
  image/height           int64   H of every image (render size, e.g. 64 or the paper's 512)
  image/width            int64   W of every image (e.g. 80 or the paper's 640)
  image/format           bytes   b'png' (default, lossless) or b'jpeg'
  metadata/appearance    bytes   e.g. b'real', b'sim', b'randomized'
  metadata/seed          int64   seed of the episode's environment (-1 if unknown, e.g. a robot)
  metadata/policy        bytes   e.g. b'scripted', b'random', b'qtopt'
  metadata/success       int64   1 if the grasp succeeded, else 0
  metadata/action_mode   bytes   e.g. b'auto_descend', b'full'
  metadata/object_split  bytes   b'train' or b'test' (procedural object split)
  metadata/episode_id    bytes   unique id, e.g. b'00003-0001' (shard-episode)
  metadata/<other>       any     optional extra metadata (str -> bytes, int/bool -> int64,
                                 float -> float); returned as str / int / float

Feature lists (``feature_lists.feature_list``), one entry per step:

  key            entries   each entry                      spec (rl_cyclegan/specs.py)
  image          T + 1     bytes: one PNG/JPEG, HxWx3 RGB  env_observation_spec()['image']
  gripper_state  T + 1     float_list of 2                 [closed flag, height in metres]
  action         T         float_list of 8 (ACTION_DIM)    specs.action_spec()
  reward         T         float_list of 1                 reward for (s_t, a_t)
  done           T         float_list of 1                 1.0 iff s_{t+1} is terminal

Missing metadata on writing is filled in: strings with '', seed with -1, success with
``any(rewards > 0)``. See docs/episode_format.md for a worked example for real-robot users.

Shards are written through ``EpisodeWriter``: records go to ``path + '.tmp-<pid>'``, which is
renamed to ``path`` only on a clean close, so a file with the final name is always complete.
"""

import dataclasses
import glob
import os
import re
import struct
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from rl_cyclegan import fileio
from rl_cyclegan import specs

SCHEMA_VERSION = 1
IMAGE_FORMATS = ('png', 'jpeg')
DEFAULT_IMAGE_FORMAT = 'png'
DEFAULT_JPEG_QUALITY = 95

# Metadata keys every episode carries, with the value written when the caller gives none.
METADATA_DEFAULTS = {
    'appearance': '',
    'seed': -1,
    'policy': '',
    'success': None,  # None -> any(rewards > 0)
    'action_mode': '',
    'object_split': '',
    'episode_id': '',
}
_INT_METADATA = ('seed', 'success')
_CONTEXT_INT = ('schema_version', 'num_steps', 'image/height', 'image/width')
_CONTEXT_BYTES = ('image/format',)
# Feature list key -> (Episode field, floats per entry, entries = T + offset).
_FLOAT_LISTS = {
    'gripper_state': ('gripper_states', specs.GRIPPER_STATE_DIM, 1),
    'action': ('actions', specs.ACTION_DIM, 0),
    'reward': ('rewards', 1, 0),
    'done': ('dones', 1, 0),
}
TMP_MARKER = fileio.TMP_MARKER  # partial files: <name>.tmp-<pid>


class EpisodeFormatError(ValueError):
  """An episode file or record does not follow the schema. Names the file and the record."""

  def __init__(self, message, path=None, record=None):
    self.path = path
    self.record = record
    self.reason = message
    where = []
    if path is not None:
      where.append(f'episode file {path}')
    if record is not None:
      where.append(f'record {record} (0-based)')
    super().__init__((', '.join(where) + ': ' if where else '') + message)


# ------------------------------------------------------------------------------------ writing


def _bytes_feature(values):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _int_feature(values):
  return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _float_feature(values):
  return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _metadata_feature(key, value):
  if isinstance(value, str):
    return _bytes_feature([value.encode('utf-8')])
  if isinstance(value, bytes):
    return _bytes_feature([value])
  if isinstance(value, (bool, np.bool_, int, np.integer)):
    return _int_feature([int(value)])
  if isinstance(value, (float, np.floating)):
    return _float_feature([float(value)])
  raise TypeError(f'metadata[{key!r}] must be str, bytes, int, bool or float, '
                  f'got {type(value).__name__}: {value!r}')


def encode_image(image, image_format=DEFAULT_IMAGE_FORMAT, jpeg_quality=DEFAULT_JPEG_QUALITY):
  """uint8 [H, W, 3] -> PNG (lossless) or JPEG bytes."""
  if image_format == 'png':
    return tf.io.encode_png(image).numpy()
  if image_format == 'jpeg':
    return tf.io.encode_jpeg(image, quality=jpeg_quality).numpy()
  raise ValueError(f'image_format must be one of {IMAGE_FORMATS}, got {image_format!r}')


def _check_episode_arrays(episode):
  """Raises EpisodeFormatError unless the arrays of ``episode`` match specs.Episode."""
  images = np.asarray(episode.images)
  if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != specs.IMAGE_CHANNELS:
    raise EpisodeFormatError(f'images must be uint8 [T+1, H, W, {specs.IMAGE_CHANNELS}], '
                             f'got {images.dtype} {list(images.shape)}')
  num_steps = images.shape[0] - 1
  if num_steps < 1:
    raise EpisodeFormatError(f'an episode needs at least 2 images (1 step), got {images.shape[0]}')
  expected = {
      'gripper_states': (num_steps + 1, specs.GRIPPER_STATE_DIM),
      'actions': (num_steps, specs.ACTION_DIM),
      'rewards': (num_steps,),
      'dones': (num_steps,),
  }
  for field, shape in expected.items():
    value = np.asarray(getattr(episode, field))
    if value.shape != shape:
      raise EpisodeFormatError(f'{field} must have shape {list(shape)} for {num_steps + 1} images '
                               f'(T={num_steps}), got {list(value.shape)}')
    if not np.all(np.isfinite(value)):
      raise EpisodeFormatError(f'{field} has non-finite values at index '
                               f'{np.argwhere(~np.isfinite(value))[0].tolist()}')
  return num_steps


def episode_to_example(episode, image_format=DEFAULT_IMAGE_FORMAT,
                       jpeg_quality=DEFAULT_JPEG_QUALITY) -> bytes:
  """specs.Episode -> serialized tf.train.SequenceExample (see the module docstring)."""
  num_steps = _check_episode_arrays(episode)
  images = np.asarray(episode.images)
  metadata = dict(episode.metadata or {})
  for key, default in METADATA_DEFAULTS.items():
    if metadata.get(key) is None:
      metadata[key] = (bool(np.any(np.asarray(episode.rewards) > 0)) if key == 'success'
                       else default)
  context = {
      'schema_version': _int_feature([SCHEMA_VERSION]),
      'num_steps': _int_feature([num_steps]),
      'image/height': _int_feature([images.shape[1]]),
      'image/width': _int_feature([images.shape[2]]),
      'image/format': _bytes_feature([image_format.encode()]),
  }
  for key, value in metadata.items():
    context['metadata/' + key] = _metadata_feature(key, value)

  def float_list(values):
    return tf.train.FeatureList(feature=[
        _float_feature(np.reshape(v, [-1]).astype(np.float32).tolist()) for v in values])

  feature_lists = {
      'image': tf.train.FeatureList(feature=[
          _bytes_feature([encode_image(im, image_format, jpeg_quality)]) for im in images]),
      'gripper_state': float_list(np.asarray(episode.gripper_states)),
      'action': float_list(np.asarray(episode.actions)),
      'reward': float_list(np.asarray(episode.rewards)),
      'done': float_list(np.asarray(episode.dones)),
  }
  return tf.train.SequenceExample(
      context=tf.train.Features(feature=context),
      feature_lists=tf.train.FeatureLists(feature_list=feature_lists)).SerializeToString()


class EpisodeWriter:
  """Writes episodes to one TFRecord shard; the shard appears under ``path`` only when complete.

  Records go to ``path + '.tmp-<pid>'``; a clean ``close()`` (or leaving the ``with`` block
  normally) renames it to ``path`` atomically. On an exception inside the ``with`` block the
  temporary file is removed and ``path`` is left untouched.

    with EpisodeWriter('/data/episodes-00000-of-00001.tfrecord') as writer:
      writer.write(episode)  # a specs.Episode
  """

  def __init__(self, path, image_format=DEFAULT_IMAGE_FORMAT, jpeg_quality=DEFAULT_JPEG_QUALITY):
    if image_format not in IMAGE_FORMATS:
      raise ValueError(f'image_format must be one of {IMAGE_FORMATS}, got {image_format!r}')
    self.path = os.fspath(path)
    self.tmp_path = f'{self.path}{TMP_MARKER}{os.getpid()}'
    self._image_format = image_format
    self._jpeg_quality = jpeg_quality
    self._writer = tf.io.TFRecordWriter(self.tmp_path)
    self.num_episodes = 0
    self.num_transitions = 0

  def write(self, episode):
    self.write_serialized(episode_to_example(episode, self._image_format, self._jpeg_quality))
    self.num_transitions += int(np.asarray(episode.actions).shape[0])

  def write_serialized(self, serialized: bytes):
    if self._writer is None:
      raise ValueError(f'EpisodeWriter({self.path}) is closed')
    self._writer.write(serialized)
    self.num_episodes += 1

  def flush(self):
    """Hands the records written so far to the OS: they survive a kill of this process (the
    file keeps its temporary name; a reader of it sees every complete record)."""
    if self._writer is not None:
      self._writer.flush()

  def close(self):
    """Flushes and atomically renames the temporary file to ``path``."""
    if self._writer is None:
      return
    self._writer.close()
    self._writer = None
    os.replace(self.tmp_path, self.path)

  def abort(self):
    """Discards everything written; ``path`` is not created or changed."""
    if self._writer is not None:
      self._writer.close()
      self._writer = None
    if os.path.exists(self.tmp_path):
      os.remove(self.tmp_path)

  def __enter__(self):
    return self

  def __exit__(self, exc_type, exc, tb):
    if exc_type is None:
      self.close()
    else:
      self.abort()
    return False


# ------------------------------------------------------------------------------------ reading


def _context_value(context, key, kind):
  if key not in context:
    raise EpisodeFormatError(f'schema mismatch: context feature {key!r} is missing '
                             f'(schema version {SCHEMA_VERSION}, see rl_cyclegan/data/episodes.py)')
  feature = context[key]
  which = feature.WhichOneof('kind')
  if which != kind:
    raise EpisodeFormatError(f'schema mismatch: context feature {key!r} must be {kind}, '
                             f'got {which}')
  values = getattr(feature, kind).value
  if len(values) != 1:
    raise EpisodeFormatError(f'schema mismatch: context feature {key!r} must have 1 value, '
                             f'got {len(values)}')
  return values[0]


def _decode_metadata(context):
  metadata = {}
  for key, feature in context.items():
    if not key.startswith('metadata/'):
      continue
    name = key[len('metadata/'):]
    kind = feature.WhichOneof('kind')
    values = list(getattr(feature, kind).value) if kind else []
    if len(values) != 1:
      raise EpisodeFormatError(f'schema mismatch: context feature {key!r} must have 1 value, '
                               f'got {len(values)}')
    value = values[0]
    metadata[name] = value.decode('utf-8') if kind == 'bytes_list' else value
  for name in METADATA_DEFAULTS:
    expected = 'int64_list' if name in _INT_METADATA else 'bytes_list'
    _context_value(context, 'metadata/' + name, expected)
  metadata['success'] = bool(metadata['success'])
  return metadata


def _parse_proto(serialized):
  """Bytes -> (SequenceExample, header dict). Checks the context; no image decoding."""
  try:
    proto = tf.train.SequenceExample.FromString(serialized)
  except Exception as e:  # pylint: disable=broad-except (protobuf DecodeError)
    raise EpisodeFormatError(f'not a tf.train.SequenceExample ({type(e).__name__}: {e})') from None
  context = proto.context.feature
  header = {key: _context_value(context, key, 'int64_list') for key in _CONTEXT_INT}
  header['image/format'] = _context_value(context, 'image/format', 'bytes_list').decode()
  if header['schema_version'] > SCHEMA_VERSION or header['schema_version'] < 1:
    raise EpisodeFormatError(f'schema version {header["schema_version"]}; this reader '
                             f'understands version {SCHEMA_VERSION}')
  if header['image/format'] not in IMAGE_FORMATS:
    raise EpisodeFormatError(f'image/format is {header["image/format"]!r}, '
                             f'expected one of {IMAGE_FORMATS}')
  if header['num_steps'] < 1:
    raise EpisodeFormatError(f'num_steps is {header["num_steps"]}, expected >= 1')
  if header['image/height'] < 1 or header['image/width'] < 1:
    raise EpisodeFormatError(f'image/height x image/width is {header["image/height"]}x'
                             f'{header["image/width"]}, expected positive sizes')
  header['metadata'] = _decode_metadata(context)
  return proto, header


def _float_lists(proto, num_steps):
  lists = proto.feature_lists.feature_list
  arrays = {}
  for key, (field, width, offset) in _FLOAT_LISTS.items():
    if key not in lists:
      raise EpisodeFormatError(f'schema mismatch: feature list {key!r} is missing')
    entries = lists[key].feature
    if len(entries) != num_steps + offset:
      raise EpisodeFormatError(
          f'length mismatch: feature list {key!r} has {len(entries)} entries, expected '
          f'{num_steps + offset} (num_steps={num_steps}{" + 1" if offset else ""})')
    rows = []
    for t, entry in enumerate(entries):
      if entry.WhichOneof('kind') != 'float_list':
        raise EpisodeFormatError(f'schema mismatch: {key!r}[{t}] must be a float_list, '
                                 f'got {entry.WhichOneof("kind")}')
      values = entry.float_list.value
      if len(values) != width:
        raise EpisodeFormatError(f'{key!r}[{t}] has {len(values)} values, expected {width}'
                                 + (f' (specs.ACTION_DIM: {specs.ACTION_NAMES})'
                                    if key == 'action' else ''))
      rows.append(values)
    array = np.asarray(rows, np.float32).reshape([len(rows), width])
    if width == 1:
      array = array[:, 0]
    bad = ~np.isfinite(array)
    if bad.any():
      index = np.argwhere(bad)[0].tolist()
      raise EpisodeFormatError(f'non-finite value {array[tuple(index)]} in {key!r} at {index}')
    arrays[field] = array
  dones = arrays['dones']
  if not np.all((dones == 0.0) | (dones == 1.0)):
    raise EpisodeFormatError(f"'done' values must be 0.0 or 1.0, got {sorted(set(dones.tolist()))}")
  if np.any(dones[:-1] == 1.0):
    raise EpisodeFormatError(f"'done' is 1.0 at step {int(np.argmax(dones))} before the last step "
                             f'{num_steps - 1}: steps after a terminal state')
  return arrays


def _image_strings(proto, num_steps):
  lists = proto.feature_lists.feature_list
  if 'image' not in lists:
    raise EpisodeFormatError("schema mismatch: feature list 'image' is missing")
  entries = lists['image'].feature
  if len(entries) != num_steps + 1:
    raise EpisodeFormatError(f"length mismatch: feature list 'image' has {len(entries)} entries, "
                             f'expected num_steps + 1 = {num_steps + 1} (one more than actions)')
  strings = []
  for t, entry in enumerate(entries):
    if entry.WhichOneof('kind') != 'bytes_list' or len(entry.bytes_list.value) != 1:
      raise EpisodeFormatError(f"schema mismatch: 'image'[{t}] must be a bytes_list of 1 value")
    strings.append(entry.bytes_list.value[0])
  return strings


def _decode_images(strings, header, expected_image_size=None):
  expected = (header['image/height'], header['image/width'])
  images = []
  for t, string in enumerate(strings):
    try:
      image = tf.io.decode_image(string, channels=3, dtype=tf.uint8,
                                 expand_animations=False).numpy()
    except tf.errors.OpError as e:
      raise EpisodeFormatError(f"'image'[{t}] is not a decodable {header['image/format']}: "
                               f'{e.message}') from None
    if image.shape[:2] != expected:
      raise EpisodeFormatError(f"wrong image size: 'image'[{t}] is {image.shape[0]}x"
                               f'{image.shape[1]}, the header says {expected[0]}x{expected[1]}')
    images.append(image)
  check_image_size(expected, expected_image_size)
  return np.stack(images)


def check_image_size(size, expected_image_size):
  """Raises EpisodeFormatError if ``size`` != ``expected_image_size`` (when given)."""
  if expected_image_size is not None and tuple(size) != tuple(expected_image_size):
    raise EpisodeFormatError(
        f'wrong image size: images are {size[0]}x{size[1]}, expected '
        f'{expected_image_size[0]}x{expected_image_size[1]} (render size)')


def parse_episode(serialized: bytes, expected_image_size=None, decode_images=True):
  """Serialized SequenceExample -> specs.Episode (NumPy arrays), checking the whole schema.

  Args:
    serialized: one record as written by ``episode_to_example``.
    expected_image_size: optional (H, W); raises if the images have another size.
    decode_images: if False, ``images`` is the list of T + 1 encoded strings (cheap checks).

  Raises:
    EpisodeFormatError saying what was wrong and what was expected.
  """
  return parse_episode_and_header(serialized, expected_image_size, decode_images)[0]


def parse_episode_and_header(serialized: bytes, expected_image_size=None, decode_images=True):
  """Like ``parse_episode``; returns (episode, header dict) (see ``read_header``)."""
  proto, header = _parse_proto(serialized)
  num_steps = header['num_steps']
  arrays = _float_lists(proto, num_steps)
  strings = _image_strings(proto, num_steps)
  if decode_images:
    images = _decode_images(strings, header, expected_image_size)
  else:
    check_image_size((header['image/height'], header['image/width']), expected_image_size)
    images = strings
  return specs.Episode(images=images, metadata=header['metadata'], **arrays), header


def read_records(path) -> Iterator[Tuple[int, bytes]]:
  """Yields (record index, serialized bytes); a corrupt/truncated file raises naming the record."""
  path = os.fspath(path)
  if not os.path.exists(path):
    raise EpisodeFormatError('file does not exist', path=path)
  index = 0
  iterator = _record_iterator(path)
  while True:
    try:
      record = next(iterator)
    except StopIteration:
      return
    except tf.errors.OpError as e:
      raise EpisodeFormatError(
          f'corrupt or truncated TFRecord after {index} good records ({e.message.strip()}); '
          f'expected a complete TFRecord written by EpisodeWriter', path=path, record=index) from None
    yield index, record
    index += 1


def _record_iterator(path):
  """Iterator over the raw records of an uncompressed TFRecord file (CRCs checked)."""
  try:  # TF's C++ reader behind the deprecated tf_record_iterator: ~10x faster than eager tf.data.
    from tensorflow.python.lib.io import _pywrap_record_io  # pylint: disable=g-import-not-at-top
    return iter(_pywrap_record_io.RecordIterator(path, ''))
  except (ImportError, AttributeError):
    return (record.numpy() for record in tf.data.TFRecordDataset(path))


# TFRecord framing: uint64 length, uint32 masked CRC of the length, data, uint32 masked CRC.
_RECORD_HEADER_BYTES = 12
_RECORD_FOOTER_BYTES = 4


def count_records(path) -> int:
  """Walks the TFRecord framing of ``path`` and returns its number of records.

  Reads the 12-byte record headers only (one seek per record, no record data), so it is cheap
  enough to run on every shard before a tf.data pipeline starts reading. A file that ends inside
  a record (a killed writer, a partial copy) or whose length field is garbage raises
  EpisodeFormatError naming the file and the record. A bit flip inside a record's data is found
  by the CRC checks of the readers (``read_records``, ``validate_directory``, TFRecordDataset).
  """
  path = os.fspath(path)
  size = os.path.getsize(path)
  offset = index = 0
  with open(path, 'rb') as f:
    while offset < size:
      if size - offset < _RECORD_HEADER_BYTES:
        raise EpisodeFormatError(
            f'truncated TFRecord: {size - offset} bytes after {index} complete records, fewer '
            f'than a record header ({_RECORD_HEADER_BYTES}); expected a complete TFRecord written '
            f'by EpisodeWriter', path=path, record=index)
      f.seek(offset)
      length, = struct.unpack('<Q', f.read(8))
      end = offset + _RECORD_HEADER_BYTES + length + _RECORD_FOOTER_BYTES
      if end > size:
        raise EpisodeFormatError(
            f'corrupt or truncated TFRecord: the record at byte {offset} declares {length} bytes '
            f'of data, but the file ends {end - size} bytes before the record does; expected a '
            f'complete TFRecord written by EpisodeWriter', path=path, record=index)
      offset = end
      index += 1
  return index


def parse_episode_tensors(serialized, path, record, expected_image_size=None):
  """TF-op twin of ``parse_episode_and_header(decode_images=False)``, for tf.data's threads.

  Makes the schema checks of the NumPy reader that training depends on (context values, schema
  version, image format, sizes, T + 1 images for T steps, entry widths, finite values, done
  flags) as TF assertions. Their messages start like an EpisodeFormatError's, 'episode file
  <path>, record <record> (0-based): ...', and the parse op names the same file and record when
  a feature has the wrong type. (Messages name keys without quotes: TF's assertion messages
  escape quote characters.) No Python runs, so it is safe in parallel tf.data maps (a Python
  generator there, ``tf.data.Dataset.from_generator`` inside a parallel interleave, crashed
  the process when iterators were dropped mid-stream: docs/results.md, session 28).

  Args:
    serialized: string scalar, one record.
    path: string scalar, the file (for messages).
    record: int64 scalar, the record's 0-based index in the file (for messages).
    expected_image_size: optional (H, W): the header's size must match.
  Returns:
    dict of tensors: 'where' (the message prefix), 'size' int32 [2] (header H, W), 'images'
    string [T + 1] (encoded), 'gripper_states' [T + 1, 2], 'actions' [T, 8], 'rewards' [T],
    'dones' [T] (float32).
  """
  where = tf.strings.join(['episode file ', path, ', record ', tf.strings.as_string(record),
                           ' (0-based)'])
  context_features = {key: tf.io.RaggedFeature(tf.int64) for key in _CONTEXT_INT}
  context_features.update({key: tf.io.RaggedFeature(tf.string) for key in _CONTEXT_BYTES})
  context_features.update({
      'metadata/' + name: tf.io.RaggedFeature(tf.int64 if name in _INT_METADATA else tf.string)
      for name in METADATA_DEFAULTS})
  list_features = {key: tf.io.RaggedFeature(tf.float32) for key in _FLOAT_LISTS}
  list_features['image'] = tf.io.RaggedFeature(tf.string)
  context, lists = tf.io.parse_single_sequence_example(
      serialized, context_features, list_features, example_name=where)

  def check(condition, *message):
    return tf.debugging.Assert(condition, [tf.strings.join([where, ': ', *message])])

  def text(value):
    return tf.strings.as_string(value)

  checks = [check(tf.equal(tf.size(values), 1), f'schema mismatch: context feature {key} must '
                  f'have 1 value, got ', text(tf.size(values)))
            for key, values in sorted(context.items())]
  with tf.control_dependencies(checks):
    header = {key: tf.identity(values[0]) for key, values in context.items()}
  version, num_steps = header['schema_version'], header['num_steps']
  size = tf.cast(tf.stack([header['image/height'], header['image/width']]), tf.int32)
  size_text = tf.strings.join([text(size[0]), 'x', text(size[1])])
  checks = [
      check((version >= 1) & (version <= SCHEMA_VERSION), 'schema version ', text(version),
            f'; this reader understands version {SCHEMA_VERSION}'),
      check(tf.reduce_any(tf.equal(header['image/format'], IMAGE_FORMATS)), 'image/format is ',
            header['image/format'], f', expected one of {", ".join(IMAGE_FORMATS)}'),
      check(num_steps >= 1, 'num_steps is ', text(num_steps), ', expected >= 1'),
      check(tf.reduce_all(size >= 1), 'image/height x image/width is ', size_text,
            ', expected positive sizes'),
  ]
  if expected_image_size is not None:
    checks.append(check(tf.reduce_all(tf.equal(size, expected_image_size)),
                        'wrong image size: images are ', size_text, ', expected '
                        f'{expected_image_size[0]}x{expected_image_size[1]} (render size)'))
  widths = {key: (width, offset) for key, (_, width, offset) in _FLOAT_LISTS.items()}
  widths['image'] = (1, 1)
  with tf.control_dependencies(checks):
    num_steps = tf.cast(tf.identity(num_steps), tf.int32)
  checks = []
  for key, (width, offset) in widths.items():
    entries = lists[key].nrows()
    checks.append(check(tf.equal(entries, num_steps + offset), f'length mismatch: feature list {key} has ', text(entries), ' entries, expected ',
                        text(num_steps + offset), f' (num_steps{" + 1" if offset else ""}; 0 '
                        'entries: the list is missing)'))
    checks.append(check(tf.reduce_all(tf.equal(lists[key].row_lengths(), width)),
                        f'every {key} entry must have {width} value(s), got lengths ',
                        tf.strings.reduce_join(text(lists[key].row_lengths()), separator=',')))
    if key != 'image':
      checks.append(check(tf.reduce_all(tf.math.is_finite(lists[key].flat_values)),
                          f'non-finite value in {key}'))
  with tf.control_dependencies(checks):
    arrays = {field: tf.reshape(lists[key].flat_values, [-1, width] if width > 1 else [-1])
              for key, (field, width, _) in _FLOAT_LISTS.items()}
    images = tf.identity(lists['image'].flat_values)
  dones = arrays['dones']
  checks = [
      check(tf.reduce_all(tf.equal(dones, 0.0) | tf.equal(dones, 1.0)),
            'done values must be 0.0 or 1.0'),
      check(tf.reduce_all(tf.not_equal(dones[:-1], 1.0)),
            'done is 1.0 before the last step: steps after a terminal state'),
  ]
  with tf.control_dependencies(checks):
    arrays = {field: tf.identity(value) for field, value in arrays.items()}
  return dict(where=where, size=size, images=images, **arrays)


def read_episodes(path, expected_image_size=None, decode_images=True) -> Iterator:
  """Yields the specs.Episode of every record of one file; errors name the file and record."""
  for index, serialized in read_records(path):
    try:
      yield parse_episode(serialized, expected_image_size, decode_images)
    except EpisodeFormatError as e:
      raise EpisodeFormatError(e.reason, path=os.fspath(path), record=index) from None


def read_header(serialized: bytes, path=None, record=None) -> Dict:
  """Context of one record (schema_version, num_steps, image size/format, metadata)."""
  try:
    return _parse_proto(serialized)[1]
  except EpisodeFormatError as e:
    raise EpisodeFormatError(e.reason, path=path, record=record) from None


# ---------------------------------------------------------------------------------- validator

SHARD_RE = re.compile(r'^(?P<prefix>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord$')


def shard_name(index, num_shards, prefix='episodes'):
  """Deterministic shard file name: episodes-00003-of-00010.tfrecord."""
  return f'{prefix}-{index:05d}-of-{num_shards:05d}.tfrecord'


@dataclasses.dataclass
class Problem:
  path: str
  record: Optional[int]
  reason: str

  def __str__(self):
    where = self.path if self.record is None else f'{self.path} record {self.record}'
    return f'{where}: {self.reason}'


@dataclasses.dataclass
class ValidationReport:
  """What ``validate_directory`` found. ``ok`` is False when any file or record is bad."""
  directory: str
  files: List[str] = dataclasses.field(default_factory=list)
  num_episodes: int = 0
  num_transitions: int = 0
  num_successes: int = 0
  image_sizes: Dict[Tuple[int, int], int] = dataclasses.field(default_factory=dict)
  errors: List[Problem] = dataclasses.field(default_factory=list)
  warnings: List[Problem] = dataclasses.field(default_factory=list)

  @property
  def ok(self):
    return not self.errors

  @property
  def bad_files(self):
    return sorted({p.path for p in self.errors})

  @property
  def success_rate(self):
    return self.num_successes / self.num_episodes if self.num_episodes else float('nan')

  def __str__(self):
    sizes = ', '.join(f'{h}x{w} ({n} episodes)' for (h, w), n in sorted(self.image_sizes.items()))
    lines = [
        f'Episode directory: {self.directory}',
        f'  files:        {len(self.files)} ({len(self.bad_files)} bad)',
        f'  episodes:     {self.num_episodes} (good records only)',
        f'  transitions:  {self.num_transitions}',
        f'  success rate: {self.success_rate:.3f} ({self.num_successes}/{self.num_episodes})',
        f'  image sizes:  {sizes or "-"}',
    ]
    for title, problems in (('ERRORS', self.errors), ('warnings', self.warnings)):
      if problems:
        lines.append(f'{title} ({len(problems)}):')
        lines.extend(f'  {p}' for p in problems)
    lines.append('OK' if self.ok else f'FAILED: {len(self.errors)} bad records/files')
    return '\n'.join(lines)


def list_episode_files(directory, pattern='*.tfrecord*'):
  """Complete episode files in ``directory`` (sorted; temporary ``.tmp-<pid>`` files excluded)."""
  paths = sorted(glob.glob(os.path.join(os.fspath(directory), pattern)))
  return [p for p in paths if TMP_MARKER not in os.path.basename(p) and os.path.isfile(p)]


def validate_directory(directory, expected_image_size: Optional[Sequence[int]] = None,
                       pattern='*.tfrecord*', max_errors_per_file=10) -> ValidationReport:
  """Checks every record of every episode file in ``directory``; never raises on bad data.

  Checks: TFRecord framing and CRCs (corrupt/truncated files), the schema (every context feature
  and feature list present with the right type), schema version, action width 8, gripper state
  width 2, T + 1 images for T actions/rewards/dones, images decodable and of the header's size
  (and ``expected_image_size`` if given, else the same size in every record), finite values,
  done flags 0/1 and only at the last step. Missing shards of an ``-of-N`` set and leftover
  temporary files are warnings.
  """
  directory = os.fspath(directory)
  report = ValidationReport(directory=directory)
  if not os.path.isdir(directory):
    report.errors.append(Problem(directory, None, 'not a directory'))
    return report
  report.files = list_episode_files(directory, pattern)
  if not report.files:
    report.errors.append(Problem(directory, None, f'no episode files matching {pattern!r}'))
  for name in sorted(os.listdir(directory)):
    if TMP_MARKER in name:
      report.warnings.append(Problem(os.path.join(directory, name), None,
                                     'temporary file of an interrupted or running write; '
                                     'not read (delete it, or re-run the collector)'))
  _check_shard_sets(report)
  reference_size = tuple(expected_image_size) if expected_image_size is not None else None
  reference_from = '--image_size'
  for path in report.files:
    num_errors = 0
    num_records = 0
    try:
      for index, serialized in read_records(path):
        num_records += 1
        try:
          episode = parse_episode(serialized, reference_size)
        except EpisodeFormatError as e:
          report.errors.append(Problem(path, index, e.reason
                                       + (f' (first seen in {reference_from})'
                                          if 'wrong image size' in e.reason else '')))
          num_errors += 1
          if num_errors >= max_errors_per_file:
            report.errors.append(Problem(path, None, f'stopped after {num_errors} bad records'))
            break
          continue
        size = tuple(episode.images.shape[1:3])
        if reference_size is None:
          reference_size, reference_from = size, f'{path} record {index}'
        report.image_sizes[size] = report.image_sizes.get(size, 0) + 1
        report.num_episodes += 1
        report.num_transitions += len(episode.actions)
        report.num_successes += int(episode.metadata['success'])
    except EpisodeFormatError as e:
      report.errors.append(Problem(path, e.record, e.reason))
      continue
    if not num_records:
      report.errors.append(Problem(path, None, EMPTY_FILE))  # training rejects it too
  return report


EMPTY_FILE = 'file has no records'  # an error for the validator and the training reader alike


def missing_shards(paths) -> List[str]:
  """One line per ``-of-N`` shard set among ``paths`` with shards missing, naming them (the
  validator's warning and the training reader's; an interrupted or partly copied collection)."""
  sets = {}
  for path in paths:
    match = SHARD_RE.match(os.path.basename(path))
    if match:
      key = (os.path.dirname(path), match['prefix'], int(match['count']))
      sets.setdefault(key, set()).add(int(match['index']))
  out = []
  for (directory, prefix, count), present in sorted(sets.items()):
    missing = sorted(set(range(count)) - present)
    if missing:
      names = ', '.join(shard_name(i, count, prefix) for i in missing[:5])
      out.append(f'{len(missing)} of {count} shards missing in {directory} ({names}'
                 f'{", ..." if len(missing) > 5 else ""}); an incomplete collection? re-run it '
                 'to fill in')
  return out


def _check_shard_sets(report):
  for line in missing_shards(report.files):
    report.warnings.append(Problem(report.directory, None, line))


# ------------------------------------------------------------------------- synthetic episodes


def synthetic_episode(num_steps=8, image_size=specs.DEFAULT_RENDER_SIZE, seed=0, success=None,
                      episode_id=None):
  """A schema-valid specs.Episode with smooth images (compresses like renders do).

  Step t's gripper_state[1] is t / 100 and image t has a bright row band at row t (mod H), so
  tests can tell the steps apart. For tests, benchmarks, and as an example for robot users.
  """
  rng = np.random.default_rng(seed)
  h, w = image_size
  rows = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
  cols = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
  base = 255 * (0.5 * rows + 0.3 * cols + 0.2 * rng.random([1, 1, 3], np.float32))
  images = np.repeat(base[None], num_steps + 1, axis=0)
  images += rng.normal(0, 4, images.shape).astype(np.float32)  # sensor noise
  for t in range(num_steps + 1):
    images[t, t % h] = 255.0
  images = np.clip(images, 0, 255).astype(np.uint8)
  gripper_states = np.stack([np.zeros(num_steps + 1, np.float32),
                             np.arange(num_steps + 1, dtype=np.float32) / 100.0], axis=1)
  modes = np.zeros(num_steps, np.int32)
  modes[-1] = 1  # close at the end
  continuous = rng.uniform(-1, 1, [num_steps, specs.CONTINUOUS_ACTION_DIM]).astype(np.float32)
  theta = (np.pi / 2) * continuous[:, 3:4]
  flags = np.eye(specs.NUM_ACTION_MODES, dtype=np.float32)[modes][:, 1:]
  actions = np.concatenate([continuous[:, :3], np.sin(theta), np.cos(theta), flags], axis=1)
  if success is None:
    success = bool(rng.random() < 0.3)
  rewards = np.zeros(num_steps, np.float32)
  rewards[-1] = float(success)
  dones = np.zeros(num_steps, np.float32)
  dones[-1] = 1.0
  metadata = {'appearance': 'real', 'seed': int(seed), 'policy': 'synthetic',
              'success': bool(success), 'action_mode': 'auto_descend', 'object_split': 'train',
              'episode_id': episode_id if episode_id is not None else f'synthetic-{seed}'}
  return specs.Episode(images=images, gripper_states=gripper_states, actions=actions.astype(
      np.float32), rewards=rewards, dones=dones, metadata=metadata)
