"""tf.data input pipeline: episode files -> batches of specs.Transition for training/evaluation.

Pipeline (``transition_dataset``), TF ops only (no Python in tf.data's threads):

  shard files (shuffled per epoch when training, repeated; framing checked once up front)
  -> parallel interleave over shards: TFRecordDataset records with their file and index
  -> shuffle serialized episodes (training)
  -> parallel map: parse and check the schema (``episodes.parse_episode_tensors``), decode the
     T + 1 PNG/JPEG images of an episode once, check their size
  -> unbatch into T transitions (s_t, a_t, r_t, s_{t+1}, done_t)
  -> parallel map: crop s and s' independently (random when training, center for evaluation)
  -> shuffle transitions (training; uint8 crops, so the buffer stays small)
  -> batch -> parallel map: uint8 -> float32 [-1, 1] -> prefetch

Bad input names the file and the record: a truncated shard fails when the dataset is built
(``episodes.count_records`` walks the record headers), and schema, value and image-size errors
are TF errors whose message starts 'episode file <path>, record <k> (0-based): '. One case
cannot name the file: a bit flip inside a record's data fails TFRecordDataset's CRC check with
TF's own DataLossError ('corrupted record at <byte offset>'); ``tools/validate_episodes.py DIR``
then names the file and the record.

The records used to be read by a Python generator per shard (``tf.data.Dataset.from_generator``
inside the parallel interleave). That crashed the process with a segmentation fault when
iterators were dropped mid-stream, as tests and evaluation loops do (docs/results.md, session
28), so reading and parsing are TF ops now.
"""

import glob
import os
import sys
from typing import List, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from rl_cyclegan import specs
from rl_cyclegan.data import episodes as episodes_lib
from rl_cyclegan.data import preprocessing

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_SHUFFLE_BUFFER = 1024  # transitions (uint8 crops): 64x64 ~25 MB, 472x472 ~1.4 GB
DEFAULT_EPISODE_SHUFFLE_BUFFER = 64  # encoded episodes
DEFAULT_CYCLE_LENGTH = 8  # shards read at once


def list_files(file_pattern: Union[str, Sequence[str]]) -> List[str]:
  """Sorted complete episode files for a glob, a list of globs, or a directory.

  Temporary files of unfinished writes (``*.tmp-<pid>``) are never returned.
  Raises ValueError naming the pattern when nothing matches.
  """
  patterns = [file_pattern] if isinstance(file_pattern, (str, os.PathLike)) else file_pattern
  paths = set()
  for pattern in patterns:
    pattern = os.fspath(pattern)
    if os.path.isdir(pattern):
      pattern = os.path.join(pattern, '*.tfrecord*')
    paths.update(p for p in glob.glob(pattern)
                 if episodes_lib.TMP_MARKER not in os.path.basename(p) and os.path.isfile(p))
  if not paths:
    raise ValueError(f'no episode files match {file_pattern!r} (expected TFRecord shards written '
                     f'by EpisodeWriter, e.g. DIR/episodes-00000-of-00010.tfrecord)')
  return sorted(paths)


def check_episode_files(file_pattern, expected_render_size: Optional[Sequence[int]] = None):
  """Fails fast before training: reads and fully checks the first record of every shard.

  Raises:
    EpisodeFormatError naming the file (and record 0) on a corrupt file, a schema mismatch or
    (if ``expected_render_size`` is given) images of another size.
  Returns:
    The list of files.
  """
  paths = list_files(file_pattern)
  for path in paths:
    for _, serialized in episodes_lib.read_records(path):
      try:
        episodes_lib.parse_episode(serialized, expected_render_size)
      except episodes_lib.EpisodeFormatError as e:
        raise episodes_lib.EpisodeFormatError(e.reason, path=path, record=0) from None
      break
    else:
      raise episodes_lib.EpisodeFormatError(episodes_lib.EMPTY_FILE, path=path)
  for line in episodes_lib.missing_shards(paths):  # the validator's warning, here too
    print(f'warning: {file_pattern}: {line}', file=sys.stderr, flush=True)
  return paths


def _decode_episode(episode, expected_render_size, crop_size):
  """Decodes the T + 1 images of a parsed episode once; returns T transitions (leading dim T)."""

  def size(hw):
    return tf.strings.join([tf.strings.as_string(hw[0]), 'x', tf.strings.as_string(hw[1])])

  def check(condition, *message):
    return tf.debugging.Assert(condition, [tf.strings.join([episode['where'], ': ', *message])])

  def decode(args):
    encoded, step = args
    image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
    actual = tf.shape(image)[:2]
    checks = [
        check(tf.reduce_all(tf.equal(actual, episode['size'])), 'wrong image size: image[',
              tf.strings.as_string(step), '] is ', size(actual), ', the header says ',
              size(episode['size'])),
        check(tf.reduce_all(actual >= tf.constant(crop_size, tf.int32)), 'images are ',
              size(actual), ', smaller than the crop size ', size(crop_size)),
    ]
    with tf.control_dependencies(checks):
      return tf.identity(image)  # [H, W, 3]

  images = tf.map_fn(  # [T + 1, H, W, 3]
      decode, (episode['images'], tf.range(tf.shape(episode['images'])[0])),
      fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
  if expected_render_size is not None:
    images = tf.ensure_shape(images, [None, *expected_render_size, 3])
  return {
      'image': images[:-1],  # [T, H, W, 3] s_t
      'gripper_state': episode['gripper_states'][:-1],  # [T, 2]
      'action': episode['actions'],  # [T, 8]
      'reward': episode['rewards'],  # [T]
      'next_image': images[1:],  # [T, H, W, 3] s_{t+1}
      'next_gripper_state': episode['gripper_states'][1:],  # [T, 2]
      'done': episode['dones'],  # [T]
  }


def _read_shard(path):
  """(path, record index, serialized record) of every record of one shard, in TF ops."""
  return tf.data.TFRecordDataset(path).enumerate().map(lambda index, record: (path, index, record))


def _episode_dataset(paths, training, repeat, seed, cycle_length, num_parallel_calls,
                     episode_shuffle_buffer):
  """Serialized episode records as (path, record index, record), shards interleaved."""
  files = tf.data.Dataset.from_tensor_slices(paths)
  if training:
    files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
  if repeat:
    files = files.repeat()
  episodes = files.interleave(
      _read_shard, cycle_length=min(cycle_length, len(paths)), block_length=1,
      num_parallel_calls=num_parallel_calls, deterministic=seed is not None or not training)
  if training and episode_shuffle_buffer > 1:
    episodes = episodes.shuffle(episode_shuffle_buffer, seed=seed)
  return episodes


def transition_dataset(file_pattern,
                       crop_size: Sequence[int] = specs.DEFAULT_CROP_SIZE,
                       batch_size: int = 8,
                       training: bool = True,
                       shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
                       repeat: bool = True,
                       num_parallel_calls=AUTOTUNE,
                       expected_render_size: Optional[Sequence[int]] = None,
                       seed: Optional[int] = None,
                       episode_shuffle_buffer: int = DEFAULT_EPISODE_SHUFFLE_BUFFER,
                       cycle_length: int = DEFAULT_CYCLE_LENGTH,
                       drop_remainder: Optional[bool] = None) -> tf.data.Dataset:
  """Batches of specs.Transition read from episode files.

  Args:
    file_pattern: glob, list of globs, or a directory of TFRecord shards (episodes.py schema).
    crop_size: (h, w) of the model images (paper 472x472; CPU default 64x64).
    batch_size: transitions per batch (paper: 8 real + 8 simulated per step).
    training: random crops and shuffling; False -> center crops in file order.
    shuffle_buffer: transitions in the shuffle buffer (training only). Holds uint8 crops of s
      and s': 2 * h * w * 3 bytes each.
    repeat: repeat forever (files reshuffled every epoch when training).
    num_parallel_calls: parallelism of reading, decoding and cropping.
    expected_render_size: optional (H, W); images of another size fail with the file named.
    seed: makes file order, shuffling and crops reproducible.
    episode_shuffle_buffer: encoded episodes shuffled before decoding (training only).
    cycle_length: shards read concurrently.
    drop_remainder: defaults to ``repeat`` (static batch size when repeating).

  Returns:
    A dataset of specs.Transition(observation, action, reward, next_observation, done) with
    observations {'image': float32 [B, h, w, 3] in [-1, 1], 'gripper_state': float32 [B, 2]}
    (specs.model_observation_spec(crop_size)), action float32 [B, 8], reward and done
    float32 [B].
  """
  crop_h, crop_w = specs._check_size(crop_size, 'crop_size')  # pylint: disable=protected-access
  if expected_render_size is not None:
    expected_render_size = specs._check_size(  # pylint: disable=protected-access
        expected_render_size, 'expected_render_size')
    if crop_h > expected_render_size[0] or crop_w > expected_render_size[1]:
      raise ValueError(f'crop size {crop_h}x{crop_w} is larger than the render size '
                       f'{expected_render_size[0]}x{expected_render_size[1]}')
  paths = list_files(file_pattern)
  if drop_remainder is None:
    drop_remainder = repeat
  for path in paths:  # a truncated shard fails here, naming the file and record
    episodes_lib.count_records(path)
  records = _episode_dataset(paths, training, repeat, seed, cycle_length, num_parallel_calls,
                             episode_shuffle_buffer)

  def parse_and_decode(path, index, record):
    episode = episodes_lib.parse_episode_tensors(record, path, index, expected_render_size)
    return _decode_episode(episode, expected_render_size, (crop_h, crop_w))

  transitions = records.map(parse_and_decode, num_parallel_calls=num_parallel_calls).unbatch()

  def crop_transition(index, t):
    if training and seed is not None:
      seeds = tf.random.experimental.stateless_split(tf.stack([tf.cast(seed, tf.int64), index]), 2)
      image_seed, next_seed = seeds[0], seeds[1]
    else:
      image_seed = next_seed = None
    t = dict(t)
    t['image'] = preprocessing.crop(t['image'], (crop_h, crop_w), training, image_seed)
    t['next_image'] = preprocessing.crop(t['next_image'], (crop_h, crop_w), training, next_seed)
    return t

  transitions = transitions.enumerate().map(crop_transition, num_parallel_calls=num_parallel_calls)
  if training and shuffle_buffer > 1:
    transitions = transitions.shuffle(shuffle_buffer, seed=seed)
  batches = transitions.batch(batch_size, drop_remainder=drop_remainder)

  def to_transition(t):
    return specs.Transition(
        observation={'image': preprocessing.to_model_image(t['image']),  # [B, h, w, 3]
                     'gripper_state': t['gripper_state']},  # [B, 2]
        action=t['action'],  # [B, 8]
        reward=t['reward'],  # [B]
        next_observation={'image': preprocessing.to_model_image(t['next_image']),
                          'gripper_state': t['next_gripper_state']},
        done=t['done'])  # [B]

  return batches.map(to_transition, num_parallel_calls=num_parallel_calls).prefetch(AUTOTUNE)


def load_transitions_numpy(file_pattern, expected_render_size=None, max_episodes=None):
  """All transitions of the files as NumPy arrays, for filling an in-memory replay buffer.

  Returns:
    specs.Transition with observations as stored (specs.env_observation_spec: uint8 images at
    the render size [N, H, W, 3], gripper_state [N, 2]), action [N, 8], reward [N], done [N].
    Crop and convert (preprocessing.crop / to_model_image) when sampling.
  """
  parts = []
  count = 0
  for path in list_files(file_pattern):
    for episode in episodes_lib.read_episodes(path, expected_render_size):
      if max_episodes is not None and count >= max_episodes:
        break
      parts.append(episode)
      count += 1
  if not parts:
    raise ValueError(f'no episodes in {file_pattern!r}')

  def cat(fn):
    return np.concatenate([fn(e) for e in parts])

  try:
    return specs.Transition(
        observation={'image': cat(lambda e: e.images[:-1]),
                     'gripper_state': cat(lambda e: e.gripper_states[:-1])},
        action=cat(lambda e: e.actions),
        reward=cat(lambda e: e.rewards),
        next_observation={'image': cat(lambda e: e.images[1:]),
                          'gripper_state': cat(lambda e: e.gripper_states[1:])},
        done=cat(lambda e: e.dones))
  except ValueError as e:
    sizes = sorted({e.images.shape[1:3] for e in parts})
    raise ValueError(f'episodes in {file_pattern!r} have different image sizes {sizes}; '
                     f'pass expected_render_size to find the odd files') from e
