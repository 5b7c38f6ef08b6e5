"""A frozen Sim2Real generator G applied once per image (the final-Q phase, paper Section 4).

Once G is frozen it is a deterministic function of the image, so the final Q never needs G in
its train step: the scripted sim log is translated once into a cached copy, and every
on-policy frame is translated once when the simulator renders it (``envs.sim2real``). The
replay then stores G's output, and the final Q's train step costs what Sim-Only's costs.

G sees the whole rendered frame, then training crops it (random crops; the center crop in
evaluation). That is not G on the crop: instance norm and the U-Net's borders see the whole
frame. ``frame_vs_crop_difference`` measures how much that changes the pixels the Q-network
sees; docs/table1.md reports it and the choice.

  FrameTranslator        uint8 frames [B, H, W, 3] -> uint8 G(frames) (rounded), with the
                         generator's fingerprint (a digest of its variables)
  translate_episode_dir  the cached translated copy of an episode directory: shards written
                         atomically, a manifest naming G's fingerprint and the source, resumable;
                         a cache made by another G or from another source is deleted and redone
  check_translated_dir   refuses a cache that is incomplete or was made by another G
"""

import hashlib
import json
import os
import time
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from rl_cyclegan import fileio
from rl_cyclegan import specs
from rl_cyclegan.data import dataset as dataset_lib
from rl_cyclegan.data import episodes as episodes_lib

MANIFEST_FILE = 'translation.json'  # written first: which G, which source
SUMMARY_FILE = 'summary.json'  # written last: the cache is complete
# One uint8 level: storing G's output as uint8 rounds it by at most half a level, i.e. 1/255 on
# the model's [-1, 1] scale.
UINT8_TOLERANCE = 1.0 / 255.0


def generator_fingerprint(generator: tf.Module) -> str:
  """sha256 over the variables' names (below the network's own scope), shapes and values.

  The network's name is left out, and variables are sorted by the rest of the name (the
  creation order depends on how the network was built): the same weights restored into a
  generator of another name ('G_sim2real' in training, 'unet_generator' in tools/evaluate.py)
  have the same fingerprint.
  """
  digest = hashlib.sha256()
  named = sorted((v.name.split('/', 1)[-1], v) for v in generator.variables)
  for name, v in named:
    value = np.ascontiguousarray(v.numpy())
    digest.update(f'{name}:{value.dtype}:{value.shape};'.encode())
    digest.update(value.tobytes())
  return digest.hexdigest()


class FrameTranslator:
  """G on whole uint8 frames, output rounded to uint8: the one place frames are translated.

  Used by the sim-to-real environment (on-policy collection, evaluation in 'sim'), by the
  translated sim log, and by ``policies.CEMPolicy(frame_transform=...)`` (tools/evaluate.py),
  so every path sees the same pixels.
  """

  def __init__(self, generator: Callable, fingerprint: Optional[str] = None):
    self.generator = generator
    self.fingerprint = fingerprint or generator_fingerprint(generator)
    self._numpy_fn = tf.function(self.__call__, reduce_retracing=True)

  def __call__(self, frames):
    """uint8 [B, H, W, 3] -> uint8 [B, H, W, 3] (graph-compatible)."""
    images = specs.to_float_image(frames)  # [B, H, W, 3] in [-1, 1]
    if isinstance(self.generator, tf.keras.layers.Layer):
      out = self.generator(images, training=False)
    else:
      out = self.generator(images)
    return specs.to_uint8_image(tf.cast(out, tf.float32))  # [B, H, W, 3] uint8

  def translate(self, frames: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """NumPy uint8 [N, H, W, 3] -> uint8 [N, H, W, 3], in batches."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
      raise ValueError(f'FrameTranslator.translate expects uint8 [N, H, W, 3] frames, got '
                       f'{frames.dtype} {frames.shape}')
    parts = [self._numpy_fn(tf.constant(frames[i:i + batch_size])).numpy()
             for i in range(0, len(frames), batch_size)]
    return np.concatenate(parts) if parts else frames.copy()


def translate_episode(translator: FrameTranslator, episode: specs.Episode) -> specs.Episode:
  """The same episode with every image replaced by G(image)."""
  return episode._replace(images=translator.translate(np.asarray(episode.images)))


def _read_json(path):
  if not os.path.isfile(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f'translation cache file {path!r} is unreadable ({e}); delete it to have '
                     'the cache rebuilt') from e


def check_translated_dir(output_dir: str, fingerprint: str) -> str:
  """Returns the glob of a complete cache made by the generator with ``fingerprint``.

  Raises ValueError naming the file when the cache is incomplete (no summary.json) or was made
  by another generator or another version of it: a stale cache is never read.
  """
  manifest = _read_json(os.path.join(output_dir, MANIFEST_FILE))
  summary = _read_json(os.path.join(output_dir, SUMMARY_FILE))
  if manifest is None or summary is None:
    raise ValueError(f'translated episode directory {output_dir!r} is not complete (no '
                     f'{MANIFEST_FILE} or {SUMMARY_FILE}); run translate_episode_dir on it')
  if manifest.get('generator_fingerprint') != fingerprint:
    raise ValueError(f'translated episode directory {output_dir!r} was made by generator '
                     f'{manifest.get("generator_fingerprint", "?")[:12]} '
                     f'({manifest.get("generator", "?")}), not by this one ({fingerprint[:12]}): '
                     'a stale cache; translate again')
  return os.path.join(output_dir, '*.tfrecord')


def translate_episode_dir(translator: FrameTranslator, source: str, output_dir: str,
                          render_size: Sequence[int], generator_name: str = '',
                          log: Callable[[str], None] = print,
                          progress_interval: float = 30.0) -> str:
  """Writes G(every image) of the episodes in ``source`` to ``output_dir``; returns its glob.

  ``source``: a directory or glob of episode shards (validated first, naming a bad file).
  Each source shard becomes a shard of the same name, written atomically, so a killed run
  resumes with the shards it has. ``translation.json`` (written first) names the generator's
  fingerprint and the source shards; when it names another generator or source, the old
  cache is deleted first. ``summary.json`` (written last) marks the cache complete.
  """
  paths = dataset_lib.check_episode_files(source, expected_render_size=tuple(render_size))
  manifest = {'generator_fingerprint': translator.fingerprint, 'generator': generator_name,
              'source': source, 'source_shards': [os.path.basename(p) for p in paths],
              'render_size': list(render_size), 'image_format': 'png',
              'mode': 'frame (G on the whole rendered frame, rounded to uint8)'}
  manifest_path = os.path.join(output_dir, MANIFEST_FILE)
  old = _read_json(manifest_path)
  if old is not None and old != manifest:
    stale = [n for n in os.listdir(output_dir)
             if n.endswith('.tfrecord') or n in (MANIFEST_FILE, SUMMARY_FILE)]
    log(f'translation cache {output_dir!r} was made by generator '
        f'{old.get("generator_fingerprint", "?")[:12]} from {old.get("source")!r}: deleting '
        f'its {len(stale)} files and translating again with {translator.fingerprint[:12]}')
    for name in stale:
      os.remove(os.path.join(output_dir, name))
    old = None
  if old is not None and os.path.isfile(os.path.join(output_dir, SUMMARY_FILE)):
    return check_translated_dir(output_dir, translator.fingerprint)
  os.makedirs(output_dir, exist_ok=True)
  fileio.write_json_atomic(manifest_path, manifest)
  for name in os.listdir(output_dir):  # temporaries of a killed writer
    if episodes_lib.TMP_MARKER in name:
      os.remove(os.path.join(output_dir, name))

  todo = [p for p in paths if not os.path.exists(os.path.join(output_dir, os.path.basename(p)))]
  log(f'translating {len(todo)} of {len(paths)} shards of {source!r} with G '
      f'{translator.fingerprint[:12]} -> {output_dir}')
  start = last = time.time()
  episodes = frames = 0
  for k, path in enumerate(todo):
    out_path = os.path.join(output_dir, os.path.basename(path))
    with episodes_lib.EpisodeWriter(out_path) as writer:
      for episode in episodes_lib.read_episodes(path, tuple(render_size)):
        writer.write(translate_episode(translator, episode))
        episodes += 1
        frames += len(episode.images)
    now = time.time()
    if now - last >= progress_interval or k == len(todo) - 1:
      last = now
      rate = (k + 1) / max(now - start, 1e-9)
      log(f'translate: {k + 1}/{len(todo)} shards, {frames / max(now - start, 1e-9):.0f} '
          f'frames/s, ETA {(len(todo) - k - 1) / rate:.0f}s')
  total = sum(1 for p in paths for _ in episodes_lib.read_records(
      os.path.join(output_dir, os.path.basename(p))))
  fileio.write_json_atomic(os.path.join(output_dir, SUMMARY_FILE), {
      'episodes': total, 'shards': len(paths), 'seconds_this_run': time.time() - start,
      'frames_this_run': frames, 'generator_fingerprint': translator.fingerprint})
  return check_translated_dir(output_dir, translator.fingerprint)


def frame_vs_crop_difference(generator: Callable, frames: np.ndarray, real_frames: np.ndarray,
                             crop_size: Sequence[int]) -> dict:
  """How far the crop of G(frame) is from G(crop), on paired renders of the same states.

  ``frames``: uint8 sim renders [N, H, W, 3]; ``real_frames``: the true real renders of the
  same states. For the center crop and the two extreme training crops (left / right), returns
  the mean absolute difference (uint8 levels, 0-255) between crop(G(frame)) and G(crop), and
  each one's MAE against the true real crop.
  """
  translator = FrameTranslator(generator, fingerprint='-')
  h, w = frames.shape[1:3]
  ch, cw = crop_size
  top = (h - ch) // 2
  whole = translator.translate(frames).astype(np.float32)
  out = {}
  for name, left in (('left', 0), ('center', (w - cw) // 2), ('right', w - cw)):
    window = (slice(None), slice(top, top + ch), slice(left, left + cw))
    of_frame = whole[window]
    of_crop = translator.translate(np.ascontiguousarray(frames[window])).astype(np.float32)
    real = real_frames[window].astype(np.float32)
    out[name] = {'frame_vs_crop_mae': float(np.mean(np.abs(of_frame - of_crop))),
                 'frame_mae_to_real': float(np.mean(np.abs(of_frame - real))),
                 'crop_mae_to_real': float(np.mean(np.abs(of_crop - real)))}
  return out
