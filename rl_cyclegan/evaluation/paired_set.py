"""A fixed held-out set of paired sim/real renders of the same physical states (EVALUATION ONLY).

Our "real world" is the pseudo-real appearance of the same simulator, so one state can be
rendered in both appearances, pixel-aligned (``GraspingEnv.render_paired``). Real RL-CycleGAN
never has such pairs; here they let us measure how well G(x) keeps the scene (paper Section 4:
a sim-to-real model "may remove some of the objects"; see ``scene_metrics.py``). Paired renders
must never reach a training pipeline: the set is written to its own .npz file and only the
evaluation code reads it.

States: episodes of ``GraspingEnv(appearance='sim')`` on the held-out ``object_split`` driven by
the noisy scripted policy (or a random one). In every episode the states at steps
0, k, 2k, ... (k = ``steps_per_state``) are kept until the episode ends (the terminal, lifted
state is kept when it falls on such a step), so the set covers the gripper high above the tray,
halfway down, near the objects and lifted, over scenes with different objects and poses.

Arrays of a paired set (N states, crop h x w; the dict ``make_paired_set`` returns and the
.npz holds):

  sim           uint8   [N, h, w, 3]  'sim' appearance (what G gets as x)
  real          uint8   [N, h, w, 3]  'real' appearance of the same state (true real(x))
  segmentation  int32   [N, h, w]     pybullet body unique id per pixel (-1: nothing)
  depth         float32 [N, h, w]     pybullet z-buffer in [0, 1]
  object_mask   bool    [N, h, w]     pixels of the grasp objects (any object body)
  robot_mask    bool    [N, h, w]     pixels of the robot body: arm and gripper (the env's
                                      segmentation has body ids only, no link ids, so the
                                      gripper cannot be told apart from the arm)
  gripper_height float32 [N]          fingertip height above the tray floor (m)
  episode, step int32   [N]           where each state came from
  metadata      str     []            JSON: render_size, crop_size, seed, object_split,
                                      action_mode, steps_per_state, policy, num_objects

Images are center-cropped exactly as evaluation crops (``preprocessing.center_crop``).
"""

import json
import logging
import os
import time
from typing import Dict, Optional, Sequence

import numpy as np

from rl_cyclegan import fileio
from rl_cyclegan import specs
from rl_cyclegan.data import preprocessing
from rl_cyclegan.envs import grasping
from rl_cyclegan.envs import scripted

FILE_NAME = 'paired_set.npz'  # in a joint run's root_dir, made once
IMAGE_KEYS = ('sim', 'real')
# key -> (dtype, rank) of every array but 'metadata'.
_SCHEMA = {
    'sim': (np.uint8, 4),
    'real': (np.uint8, 4),
    'segmentation': (np.int32, 3),
    'depth': (np.float32, 3),
    'object_mask': (np.bool_, 3),
    'robot_mask': (np.bool_, 3),
    'gripper_height': (np.float32, 1),
    'episode': (np.int32, 1),
    'step': (np.int32, 1),
}
POLICIES = ('scripted', 'random')


def body_ids(env) -> Dict[str, object]:
  """Body unique ids of ``env``'s current scene, read from its attributes (no env changes).

  The segmentation of ``render_paired`` holds pybullet body unique ids (getCameraImage without
  the link-index flag). Returns {'robot': int, 'objects': tuple of int, 'tray': int,
  'table': int, 'plane': int}. Object ids change with every reset.
  """
  try:
    return {'robot': int(env._kuka_uid),  # pylint: disable=protected-access
            'objects': tuple(int(u) for u in env._object_uids),  # pylint: disable=protected-access
            'tray': int(env._tray_uid),  # pylint: disable=protected-access
            'table': int(env._table_uid),  # pylint: disable=protected-access
            'plane': int(env._plane_uid)}  # pylint: disable=protected-access
  except AttributeError as e:
    raise AttributeError(f'body_ids expects a grasping.GraspingEnv with _kuka_uid, _object_uids, '
                         f'_tray_uid, _table_uid and _plane_uid; {type(env).__name__}: {e}') from e


masks_from_segmentation = grasping.masks_from_segmentation  # the env's own region split


def make_env_and_policy(seed: int, object_split: str, render_size, action_mode: str,
                        policy: str = 'scripted', num_objects: Optional[int] = None):
  """A ``GraspingEnv(appearance='sim')`` and its data policy, both seeded from ``seed``.

  Returns (env, actor); the caller closes the env. ``policy``: one of ``POLICIES``.
  """
  if policy not in POLICIES:
    raise ValueError(f'policy must be one of {POLICIES}, got {policy!r}')
  env_kwargs = dict(appearance='sim', object_split=object_split, render_size=render_size,
                    action_mode=action_mode, seed=seed)
  if num_objects is not None:
    env_kwargs['num_objects'] = num_objects
  env = grasping.GraspingEnv(**env_kwargs)
  policy_seed = np.random.SeedSequence([int(seed), 1]).generate_state(1)[0]
  actor = (scripted.ScriptedGraspPolicy if policy == 'scripted' else scripted.RandomPolicy)(
      env, seed=int(policy_seed))
  return env, actor


def iterate_states(env, actor, num_states: int, steps_per_state: int,
                   progress_interval: float = 10.0, what: str = 'paired set'):
  """Drives episodes of ``actor`` in ``env`` and yields (episode, step) at ``num_states`` states.

  In every episode the states at steps 0, k, 2k, ... (k = ``steps_per_state``) are yielded
  until the episode ends (the terminal state too when it falls on such a step). While the
  caller holds a yielded value, ``env`` is at that state (render it then). Logs progress as
  ``what`` every ``progress_interval`` seconds.
  """
  if num_states < 1:
    raise ValueError(f'num_states must be >= 1, got {num_states}')
  if steps_per_state < 1:
    raise ValueError(f'steps_per_state must be >= 1, got {steps_per_state}')
  kept = 0
  start = last_log = time.time()
  episode = 0
  while kept < num_states:
    time_step = env.reset()
    actor.reset()
    t = 0
    while kept < num_states:
      if t % steps_per_state == 0:
        yield episode, t
        kept += 1
      if time_step.is_last():
        break
      time_step = env.step(actor.action(time_step))
      t += 1
    episode += 1
    now = time.time()
    if now - last_log >= progress_interval:
      rate = kept / (now - start)
      logging.info('%s: %d/%d states (%d episodes), %.1f states/s, ETA %.0f s', what, kept,
                   num_states, episode, rate, (num_states - kept) / max(rate, 1e-9))
      last_log = now
  logging.info('%s: %d states from %d episodes in %.1f s', what, num_states, episode,
               time.time() - start)


def _center_crop(array, crop_size):
  """numpy [N, H, W, C] -> [N, h, w, C] with preprocessing.center_crop's offsets."""
  return np.asarray(preprocessing.center_crop(array, crop_size))


def make_paired_set(num_states: int,
                    render_size: Sequence[int] = specs.DEFAULT_RENDER_SIZE,
                    crop_size: Sequence[int] = specs.DEFAULT_CROP_SIZE,
                    seed: int = 0,
                    object_split: str = 'test',
                    action_mode: str = 'auto_descend',
                    steps_per_state: int = 3,
                    policy: str = 'scripted',
                    num_objects: Optional[int] = None,
                    progress_interval: float = 10.0) -> Dict[str, np.ndarray]:
  """Runs sim episodes and keeps paired sim/real renders of ``num_states`` states.

  Args:
    num_states: N, number of states kept.
    render_size: (H, W) of the renders (CPU default 64x80; paper 512x640).
    crop_size: (h, w) of the stored center crops (CPU default 64x64; paper 472x472).
    seed: seeds the env (scenes) and the policy; the same arguments give the same set.
    object_split: 'test' (held-out objects, the default) or 'train'.
    action_mode: the env's action mode ('auto_descend' or 'full').
    steps_per_state: keep the states at steps 0, k, 2k, ... of every episode.
    policy: 'scripted' (noisy scripted grasps: the gripper goes near objects) or 'random'.
    num_objects: objects per scene; None: the env's default.
    progress_interval: seconds between progress log lines.

  Returns:
    The dict of arrays described in the module docstring.
  """
  if num_states < 1:
    raise ValueError(f'num_states must be >= 1, got {num_states}')
  if steps_per_state < 1:
    raise ValueError(f'steps_per_state must be >= 1, got {steps_per_state}')
  if policy not in POLICIES:
    raise ValueError(f'policy must be one of {POLICIES}, got {policy!r}')
  render_size = specs._check_size(render_size, 'render_size')  # pylint: disable=protected-access
  crop_size = specs._check_size(crop_size, 'crop_size')  # pylint: disable=protected-access
  if crop_size[0] > render_size[0] or crop_size[1] > render_size[1]:
    raise ValueError(f'crop_size {crop_size} is larger than render_size {render_size}')
  env, actor = make_env_and_policy(seed, object_split, render_size, action_mode, policy,
                                   num_objects)
  keys = ('sim', 'real', 'segmentation', 'depth', 'object_mask', 'robot_mask')
  rows = {k: [] for k in keys + ('gripper_height', 'episode', 'step')}
  try:
    for episode, t in iterate_states(env, actor, num_states, steps_per_state,
                                     progress_interval, 'paired set'):
      ids = body_ids(env)
      out = env.render_paired(IMAGE_KEYS)
      object_mask, robot_mask = masks_from_segmentation(
          out['segmentation'], ids['robot'], ids['objects'])
      for k, v in (('sim', out['sim']), ('real', out['real']),
                   ('segmentation', out['segmentation']), ('depth', out['depth']),
                   ('object_mask', object_mask), ('robot_mask', robot_mask)):
        rows[k].append(v)
      rows['gripper_height'].append(env.gripper_position()[2] - env.floor_height)
      rows['episode'].append(episode)
      rows['step'].append(t)
  finally:
    env.close()

  data = {}
  for k in keys:
    stacked = np.stack(rows[k])
    if stacked.ndim == 3:  # [N, H, W] -> crop with a channel axis
      stacked = _center_crop(stacked[..., None], crop_size)[..., 0]
    else:
      stacked = _center_crop(stacked, crop_size)
    data[k] = stacked.astype(_SCHEMA[k][0])
  data['gripper_height'] = np.asarray(rows['gripper_height'], np.float32)
  data['episode'] = np.asarray(rows['episode'], np.int32)
  data['step'] = np.asarray(rows['step'], np.int32)
  data['metadata'] = np.array(json.dumps(dict(
      render_size=list(render_size), crop_size=list(crop_size), seed=int(seed),
      object_split=object_split, action_mode=action_mode, steps_per_state=int(steps_per_state),
      policy=policy, num_objects=num_objects)))
  validate_paired_set(data)
  return data


def metadata(data) -> dict:
  """The parsed JSON metadata of a paired set ({} if absent)."""
  if 'metadata' not in data:
    return {}
  return json.loads(str(np.asarray(data['metadata'])))


def validate_paired_set(data, source='paired set'):
  """Raises ValueError naming ``source``, the key and what was expected if ``data`` is bad."""
  missing = [k for k in _SCHEMA if k not in data]
  if missing:
    raise ValueError(f'{source}: missing arrays {missing}; expected {sorted(_SCHEMA)} '
                     f'(got {sorted(data)})')
  sim = np.asarray(data['sim'])
  if sim.ndim != 4 or sim.shape[-1] != 3:
    raise ValueError(f"{source}: 'sim' must be [N, h, w, 3], got shape {sim.shape}")
  n, h, w = sim.shape[:3]
  expected = {'sim': (n, h, w, 3), 'real': (n, h, w, 3), 'segmentation': (n, h, w),
              'depth': (n, h, w), 'object_mask': (n, h, w), 'robot_mask': (n, h, w),
              'gripper_height': (n,), 'episode': (n,), 'step': (n,)}
  for key, shape in expected.items():
    array = np.asarray(data[key])
    if array.shape != shape:
      raise ValueError(f'{source}: {key!r} has shape {array.shape}, expected {shape} '
                       f"(from 'sim' {sim.shape})")
    dtype = _SCHEMA[key][0]
    if array.dtype != dtype:
      raise ValueError(f'{source}: {key!r} has dtype {array.dtype}, expected {np.dtype(dtype)}')
  if 'metadata' in data:
    try:
      metadata(data)
    except (ValueError, TypeError) as e:
      raise ValueError(f"{source}: 'metadata' is not a JSON string: {e}") from e


def save_paired_set(path: str, data: Dict[str, np.ndarray]) -> str:
  """Writes ``data`` to the single .npz ``path`` atomically (temp file + rename). Returns path."""
  validate_paired_set(data, f'paired set to write to {path!r}')
  return fileio.write_atomic(
      path, lambda f: np.savez_compressed(f, **{k: np.asarray(v) for k, v in data.items()}),
      mode='wb')


def load_paired_set(path: str) -> Dict[str, np.ndarray]:
  """Reads a paired set written by ``save_paired_set``; ValueError naming ``path`` if it is bad."""
  try:
    with np.load(path, allow_pickle=False) as f:
      data = {k: f[k] for k in f.files}
  except FileNotFoundError:
    raise
  except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, EOFError, ...
    raise ValueError(f'Cannot read paired set {path!r} (expected an .npz written by '
                     f'save_paired_set): {type(e).__name__}: {e}') from e
  validate_paired_set(data, f'paired set {path!r}')
  return data


def load_or_make(root_dir, path, num_states, seed, render_size, crop_size, action_mode,
                 num_objects, log=print):
  """The held-out paired set: ``path`` if given, else root_dir/paired_set.npz (made once).

  Raises ValueError naming the file if its crops are not ``crop_size``.
  """
  if not path:
    path = os.path.join(root_dir, FILE_NAME)
    if not os.path.exists(path):
      log(f'making the held-out paired set: {num_states} states (test objects) -> {path}')
      save_paired_set(path, make_paired_set(
          num_states, render_size=render_size, crop_size=crop_size, seed=seed,
          action_mode=action_mode, num_objects=num_objects))
  data = load_paired_set(path)
  size = tuple(int(s) for s in np.shape(data['sim'])[1:3])
  if size != tuple(crop_size):
    raise ValueError(f'paired set {path!r} holds {size[0]}x{size[1]} crops but the run uses '
                     f'crop_size {tuple(crop_size)}; make one at this size (or delete it to '
                     f'have it rebuilt)')
  return data, path
