"""Labelled sim frames for GraspGAN's mask loss (TRAINING data of the Table 1 "GraspGAN" row).

GraspGAN (Bousmalis et al. 2018) trains its generator to also predict the semantic
segmentation of the simulated image; the simulator gives the labels for free. This module makes
that data: scripted sim episodes on the TRAINING objects (``object_split='train'``), rendered in
the 'sim' appearance only, each kept state stored as its whole frame with a per-pixel class:

  0 background (plane, table, nothing)   1 tray   2 robot (arm and gripper)   3 objects

Classes come from the env's body-id segmentation (``GraspingEnv.render_paired(('sim',))``,
which renders the one appearance; ``paired_set.body_ids`` names the bodies). The env's
segmentation has no link ids, so the gripper is part of the robot class. The set never holds a
'real' render: paired sim/real renders are for evaluation only (``paired_set.py``).

Arrays (N states at render size H x W; the dict ``make_segmentation_set`` returns and the .npz
holds):

  images    uint8  [N, H, W, 3]  'sim' appearance, whole frames
  labels    uint8  [N, H, W]     class per pixel, 0..3 (``CLASSES``)
  episode, step  int32 [N]       where each state came from
  metadata  str    []            JSON: render_size, seed, object_split ('train'), appearance
                                 ('sim'), action_mode, steps_per_state, policy, num_objects,
                                 classes

Training takes random crops with the same offset for a frame and its labels
(``SegmentationSampler``).
"""

import json
import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from rl_cyclegan import fileio
from rl_cyclegan import specs
from rl_cyclegan.data import preprocessing
from rl_cyclegan.evaluation import paired_set

FILE_NAME = 'segmentation_set.npz'  # in a joint run's root_dir, made once
CLASSES = ('background', 'tray', 'robot', 'objects')
NUM_CLASSES = len(CLASSES)
BACKGROUND, TRAY, ROBOT, OBJECTS = range(NUM_CLASSES)
OBJECT_SPLIT = 'train'  # training objects only: the test objects stay unseen
APPEARANCE = 'sim'
_SCHEMA = {  # key -> dtype
    'images': np.uint8,
    'labels': np.uint8,
    'episode': np.int32,
    'step': np.int32,
}


def labels_from_segmentation(segmentation, ids) -> np.ndarray:
  """uint8 class map [..., H, W] (``CLASSES``) from body-id segmentation [..., H, W].

  ``ids``: ``paired_set.body_ids(env)`` of the scene the segmentation was rendered from.
  """
  segmentation = np.asarray(segmentation)
  object_mask, robot_mask = paired_set.masks_from_segmentation(
      segmentation, ids['robot'], ids['objects'])
  labels = np.full(segmentation.shape, BACKGROUND, np.uint8)
  labels[segmentation == ids['tray']] = TRAY
  labels[robot_mask] = ROBOT
  labels[object_mask] = OBJECTS
  return labels


def make_segmentation_set(num_states: int,
                          render_size: Sequence[int] = specs.DEFAULT_RENDER_SIZE,
                          seed: int = 0,
                          action_mode: str = 'auto_descend',
                          steps_per_state: int = 2,
                          policy: str = 'scripted',
                          num_objects: Optional[int] = None,
                          progress_interval: float = 10.0) -> Dict[str, np.ndarray]:
  """Runs sim episodes on the training objects and keeps ``num_states`` labelled frames.

  Args:
    num_states: N, number of states kept.
    render_size: (H, W) of the frames (CPU default 64x80; paper 512x640).
    seed: seeds the env (scenes) and the policy; the same arguments give the same set.
    action_mode: the env's action mode ('auto_descend' or 'full').
    steps_per_state: keep the states at steps 0, k, 2k, ... of every episode.
    policy: 'scripted' (noisy scripted grasps: the gripper goes near objects) or 'random'.
    num_objects: objects per scene; None: the env's default.
    progress_interval: seconds between progress log lines.

  Returns:
    The dict of arrays described in the module docstring.
  """
  render_size = specs._check_size(render_size, 'render_size')  # pylint: disable=protected-access
  env, actor = paired_set.make_env_and_policy(seed, OBJECT_SPLIT, render_size, action_mode,
                                              policy, num_objects)
  rows = {k: [] for k in _SCHEMA}
  try:
    for episode, t in paired_set.iterate_states(env, actor, num_states, steps_per_state,
                                                progress_interval, 'segmentation set'):
      out = env.render_paired((APPEARANCE,))  # the sim render and its segmentation only
      rows['images'].append(out[APPEARANCE])
      rows['labels'].append(labels_from_segmentation(out['segmentation'],
                                                     paired_set.body_ids(env)))
      rows['episode'].append(episode)
      rows['step'].append(t)
  finally:
    env.close()
  data = {k: np.stack(rows[k]).astype(dtype) for k, dtype in _SCHEMA.items()}
  data['metadata'] = np.array(json.dumps(dict(
      render_size=list(render_size), seed=int(seed), object_split=OBJECT_SPLIT,
      appearance=APPEARANCE, action_mode=action_mode, steps_per_state=int(steps_per_state),
      policy=policy, num_objects=num_objects, classes=list(CLASSES))))
  validate_segmentation_set(data)
  return data


metadata = paired_set.metadata  # the parsed JSON metadata ({} if absent)


def validate_segmentation_set(data, source='segmentation set'):
  """Raises ValueError naming ``source``, the key and what was expected if ``data`` is bad."""
  missing = [k for k in _SCHEMA if k not in data]
  if missing:
    raise ValueError(f'{source}: missing arrays {missing}; expected {sorted(_SCHEMA)} '
                     f'(got {sorted(data)})')
  unexpected = sorted(set(data) - set(_SCHEMA) - {'metadata'})
  if unexpected:  # e.g. a 'real' render: never training data
    raise ValueError(f'{source}: unexpected arrays {unexpected}; a segmentation set holds '
                     f'{sorted(_SCHEMA)} and metadata only')
  images = np.asarray(data['images'])
  if images.ndim != 4 or images.shape[-1] != 3 or not len(images):
    raise ValueError(f"{source}: 'images' must be [N, H, W, 3] with N >= 1, got shape "
                     f'{images.shape}')
  n, h, w = images.shape[:3]
  expected = {'images': (n, h, w, 3), 'labels': (n, h, w), 'episode': (n,), 'step': (n,)}
  for key, shape in expected.items():
    array = np.asarray(data[key])
    if array.shape != shape:
      raise ValueError(f'{source}: {key!r} has shape {array.shape}, expected {shape} '
                       f"(from 'images' {images.shape})")
    if array.dtype != _SCHEMA[key]:
      raise ValueError(f'{source}: {key!r} has dtype {array.dtype}, expected '
                       f'{np.dtype(_SCHEMA[key])}')
  top = int(np.max(data['labels']))
  if top >= NUM_CLASSES:
    raise ValueError(f"{source}: 'labels' holds class {top}; expected 0..{NUM_CLASSES - 1} "
                     f'{CLASSES}')
  if 'metadata' in data:
    try:
      meta = metadata(data)
    except (ValueError, TypeError) as e:
      raise ValueError(f"{source}: 'metadata' is not a JSON string: {e}") from e
    for key, value in (('appearance', APPEARANCE), ('object_split', OBJECT_SPLIT)):
      if meta.get(key, value) != value:
        raise ValueError(f'{source}: metadata {key}={meta[key]!r}; a segmentation set is made '
                         f'from {key}={value!r} only')


def save_segmentation_set(path: str, data: Dict[str, np.ndarray]) -> str:
  """Writes ``data`` to the .npz ``path`` atomically (temp file + rename). Returns path."""
  validate_segmentation_set(data, f'segmentation set to write to {path!r}')
  return fileio.write_atomic(
      path, lambda f: np.savez_compressed(f, **{k: np.asarray(v) for k, v in data.items()}),
      mode='wb')


def load_segmentation_set(path: str, render_size: Optional[Sequence[int]] = None
                          ) -> Dict[str, np.ndarray]:
  """Reads a set written by ``save_segmentation_set``; ValueError naming ``path`` if it is bad.

  With ``render_size`` (H, W), frames of another size are an error too.
  """
  try:
    with np.load(path, allow_pickle=False) as f:
      data = {k: f[k] for k in f.files}
  except FileNotFoundError:
    raise
  except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, EOFError, ...
    raise ValueError(f'Cannot read segmentation set {path!r} (expected an .npz written by '
                     f'save_segmentation_set): {type(e).__name__}: {e}') from e
  validate_segmentation_set(data, f'segmentation set {path!r}')
  size = tuple(int(s) for s in data['images'].shape[1:3])
  if render_size is not None and size != tuple(int(s) for s in render_size):
    raise ValueError(f'segmentation set {path!r} holds {size[0]}x{size[1]} frames but the run '
                     f'renders {tuple(render_size)}; make one at this size (or delete it to '
                     f'have it rebuilt)')
  return data


class SegmentationSampler:
  """Random labelled crops of a segmentation set: (images, labels) for ``train_step``.

  Each sample draws ``batch_size`` states uniformly (with replacement) and one random crop per
  state with the same offset for the frame and its labels (``preprocessing.random_crop`` on the
  frame and labels stacked as a 4th channel). Reproducible from ``seed``.
  """

  def __init__(self, data: Dict[str, np.ndarray], crop_size: Sequence[int], batch_size: int,
               seed=0):
    validate_segmentation_set(data)
    self._images = np.asarray(data['images'])  # uint8 [N, H, W, 3]
    self._labels = np.asarray(data['labels'])  # uint8 [N, H, W]
    self.crop_size = specs._check_size(crop_size, 'crop_size')  # pylint: disable=protected-access
    h, w = self._images.shape[1:3]
    if self.crop_size[0] > h or self.crop_size[1] > w:
      raise ValueError(f'crop_size {self.crop_size} is larger than the segmentation frames '
                       f'{h}x{w}')
    if batch_size < 1:
      raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    self.batch_size = int(batch_size)
    self._rng = np.random.default_rng(seed)

  def __len__(self):
    return len(self._images)

  def sample(self) -> Tuple[tf.Tensor, tf.Tensor]:
    """(images float32 [B, h, w, 3] in [-1, 1], labels int32 [B, h, w])."""
    index = self._rng.integers(0, len(self._images), self.batch_size)  # [B]
    stacked = np.concatenate([self._images[index], self._labels[index][..., None]],
                             axis=-1)  # uint8 [B, H, W, 4]
    seed = tf.constant(self._rng.integers(0, 2**31 - 1, 2), tf.int64)
    crops = preprocessing.random_crop(stacked, self.crop_size, seed=seed)  # uint8 [B, h, w, 4]
    images = preprocessing.to_model_image(crops[..., :3])  # float32 [B, h, w, 3]
    labels = tf.cast(crops[..., 3], tf.int32)  # [B, h, w]
    return images, labels


def load_or_make(root_dir, path, num_states, seed, render_size, action_mode, num_objects,
                 log=print):
  """The labelled sim frames of GraspGAN's mask loss: ``path`` if given, else
  root_dir/segmentation_set.npz (made once, training objects, 'sim' only).

  Raises ValueError naming the file if its frames are not ``render_size``.
  """
  if not path:
    path = os.path.join(root_dir, FILE_NAME)
    if not os.path.exists(path):
      log(f'making the segmentation set: {num_states} labelled sim states (training objects) '
           f'-> {path}')
      data = make_segmentation_set(
          num_states, render_size=render_size, seed=seed, action_mode=action_mode,
          num_objects=num_objects)
      save_segmentation_set(path, data)
  return load_segmentation_set(path, render_size), path
