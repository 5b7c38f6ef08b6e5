"""Specs: the one contract shared by the environment, data, networks, learners and export.

Observation (paper Section 5, QT-Opt [20]):
  * ``image``: RGB camera image. The environment and the episode files hold uint8 images at
    the *render* size (paper: 512x640); networks see float32 images in [-1, 1] at the *crop*
    size (paper: 472x472 random crops for training, the center crop for evaluation).
  * ``gripper_state``: float32 [2] = [gripper closed flag (0/1), gripper height above the
    tray bottom in metres].

Action (paper Section 5: "xyz and top-down rotation, along with gripper close/open and
episode termination"), a float32 vector of width ``ACTION_DIM`` = 8:

  index  name        range     meaning
  0..2   dx, dy, dz  [-1, 1]   Cartesian gripper translation, scaled by the env's max step
  3, 4   sin, cos    [-1, 1]   top-down rotation step theta (scaled by the env's max angle)
                               encoded as (sin(pi/2 * u), cos(pi/2 * u)) for u in [-1, 1]
  5      close       {0, 1}    close the gripper
  6      open        {0, 1}    open the gripper
  7      terminate   {0, 1}    end the episode

At most one of close/open/terminate is 1 ("move" is all three 0). CEM searches the
4 continuous parameters (dx, dy, dz, u) with a Gaussian and the 4-way mode
{move, close, open, terminate} with a categorical; ``encode_action`` maps them to the vector.

Transitions are ``Transition(observation, action, reward, next_observation, done)``; ``done``
is 1.0 when ``next_observation`` is terminal (no bootstrapping).
"""

import collections
import math
from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf

GRIPPER_STATE_DIM = 2
ACTION_DIM = 8
CONTINUOUS_ACTION_DIM = 4  # dx, dy, dz, u (rotation step in [-1, 1])
NUM_ACTION_MODES = 4  # move, close, open, terminate
ACTION_NAMES = ('dx', 'dy', 'dz', 'sin_theta', 'cos_theta', 'close', 'open', 'terminate')
MODE_NAMES = ('move', 'close', 'open', 'terminate')
# CEM's allowed modes (``policies.CEMPolicy(allowed_modes=...)``) for the envs' action modes.
# In 'auto_descend' only the move parameters (dx, dy, u) and terminate matter; close and open
# act as move. By default the training loops let the policy only move there: uniformly random
# exploration picks 'terminate' in half of its random actions (cut episodes, ~3% success).
AUTO_DESCEND_MODES = (True, False, False, True)  # move, close, open, terminate
MOVE_ONLY_MODES = (True, False, False, False)
ALL_MODES = (True, True, True, True)


def allowed_modes_for(action_mode: str, auto_descend_terminate: bool = False):
  """CEM's allowed modes of a run: None (all) in 'full'; in 'auto_descend' move only, or
  move + terminate with ``auto_descend_terminate``."""
  if action_mode != 'auto_descend':
    return None
  return AUTO_DESCEND_MODES if auto_descend_terminate else MOVE_ONLY_MODES
IMAGE_CHANNELS = 3

# Paper, Appendix A: 512x640 images, 472x472 crops.
PAPER_RENDER_SIZE = (512, 640)
PAPER_CROP_SIZE = (472, 472)
# CPU default: 64x80 renders cropped to 64x64.
DEFAULT_RENDER_SIZE = (64, 80)
DEFAULT_CROP_SIZE = (64, 64)

Transition = collections.namedtuple(
    'Transition', ['observation', 'action', 'reward', 'next_observation', 'done'])


def _check_size(size, what):
  if (len(size) != 2 or not all(isinstance(int(s), int) and int(s) > 0 for s in size)):
    raise ValueError(f'{what} must be (height, width) with positive ints, got {size!r}')
  return (int(size[0]), int(size[1]))


def env_observation_spec(render_size: Sequence[int] = DEFAULT_RENDER_SIZE):
  """Observation as the environment emits it and as episode files store it (uint8 image)."""
  h, w = _check_size(render_size, 'render_size')
  return {
      'image': tf.TensorSpec([h, w, IMAGE_CHANNELS], tf.uint8, name='image'),
      'gripper_state': tf.TensorSpec([GRIPPER_STATE_DIM], tf.float32, name='gripper_state'),
  }


def model_observation_spec(crop_size: Sequence[int] = DEFAULT_CROP_SIZE):
  """Observation as networks consume it: float32 image in [-1, 1] at the crop size."""
  h, w = _check_size(crop_size, 'crop_size')
  return {
      'image': tf.TensorSpec([h, w, IMAGE_CHANNELS], tf.float32, name='image'),
      'gripper_state': tf.TensorSpec([GRIPPER_STATE_DIM], tf.float32, name='gripper_state'),
  }


def action_spec():
  """The 8-D action (see module docstring)."""
  return tf.TensorSpec([ACTION_DIM], tf.float32, name='action')


def bounded_action_spec():
  from tf_agents.specs import tensor_spec  # pylint: disable=g-import-not-at-top
  return tensor_spec.BoundedTensorSpec(
      [ACTION_DIM], tf.float32, name='action',
      minimum=np.array([-1.] * 5 + [0.] * 3, np.float32),
      maximum=np.ones([ACTION_DIM], np.float32))


def transition_spec(observation_spec):
  """Transition spec for a given observation spec (env or model)."""
  return Transition(
      observation=observation_spec,
      action=action_spec(),
      reward=tf.TensorSpec([], tf.float32, name='reward'),
      next_observation=observation_spec,
      done=tf.TensorSpec([], tf.float32, name='done'))


def to_float_image(image):
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return tf.cast(image, tf.float32) / 127.5 - 1.0


def to_uint8_image(image):
  """float [-1, 1] -> uint8 [0, 255] (rounded, clipped)."""
  image = tf.cast(image, tf.float32)
  return tf.cast(tf.clip_by_value(tf.round((image + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def encode_action(continuous, mode):
  """Continuous params [..., 4] (dx, dy, dz, u) and mode index [...] -> action [..., 8].

  Works for tf and numpy inputs (returns a tf.Tensor).
  """
  continuous = tf.convert_to_tensor(continuous, tf.float32)
  mode = tf.cast(mode, tf.int32)
  theta = (math.pi / 2.0) * continuous[..., 3:4]
  flags = tf.one_hot(mode, NUM_ACTION_MODES, dtype=tf.float32)[..., 1:]  # drop 'move'
  return tf.concat([continuous[..., :3], tf.sin(theta), tf.cos(theta), flags], axis=-1)


def decode_action(action) -> Tuple[np.ndarray, np.ndarray]:
  """Action [..., 8] (numpy) -> (continuous [..., 4] with u in [-1, 1], mode index [...])."""
  action = np.asarray(action, np.float32)
  if action.shape[-1] != ACTION_DIM:
    raise ValueError(f'action must have last dimension {ACTION_DIM} '
                     f'{ACTION_NAMES}, got shape {action.shape}')
  u = np.arctan2(action[..., 3], action[..., 4]) / (math.pi / 2.0)
  flags = action[..., 5:8]
  mode = np.where(flags.max(axis=-1) > 0.5, 1 + flags.argmax(axis=-1), 0)
  return np.concatenate([action[..., :3], u[..., None]], axis=-1), mode.astype(np.int32)


def check_tensor(value, spec, what, batch_dims=1):
  """Raises ValueError naming ``what`` and ``spec`` unless ``value`` matches ``spec``.

  Checks dtype and the static inner shape (after ``batch_dims`` leading dims). Unknown static
  dimensions in ``value`` are accepted.
  """
  dtype = getattr(value, 'dtype', None)
  if dtype is not None and tf.as_dtype(dtype) != spec.dtype:
    raise ValueError(f'{what}: expected dtype {spec.dtype.name} per spec {spec}, '
                     f'got {tf.as_dtype(dtype).name}')
  shape = tf.TensorShape(getattr(value, 'shape', None))
  if shape.rank is None:
    return
  expected_rank = spec.shape.rank + batch_dims
  if shape.rank != expected_rank:
    raise ValueError(f'{what}: expected rank {expected_rank} ([batch] + {spec.shape.as_list()}) '
                     f'per spec {spec}, got shape {shape.as_list()}')
  if not spec.shape.is_compatible_with(shape[batch_dims:]):
    raise ValueError(f'{what}: expected shape [batch] + {spec.shape.as_list()} per spec {spec}, '
                     f'got {shape.as_list()}')


# One episode as the environment produces it and as episode files store it (see
# rl_cyclegan/data/episodes.py for the TFRecord schema). T = number of steps.
#   images:         uint8   [T + 1, H, W, 3]   observations s_0 .. s_T (render size)
#   gripper_states: float32 [T + 1, 2]
#   actions:        float32 [T, 8]
#   rewards:        float32 [T]
#   dones:          float32 [T]                1.0 where s_{t+1} is terminal
#   metadata:       dict: appearance (str), seed (int), policy (str), success (bool),
#                   action_mode (str), object_split (str), episode_id (str)
Episode = collections.namedtuple(
    'Episode', ['images', 'gripper_states', 'actions', 'rewards', 'dones', 'metadata'])
