"""Data-collection policies for ``GraspingEnv``: a noisy scripted grasp and a random policy.

Paper Appendix A: the real data sets start from "a human-designed scripted policy, which
succeeds a small fraction of the time", with "random exploration noise" added. The scripted
policy here reads privileged state (object and gripper positions) from the environment, aims
at a random object with a random offset, and adds Gaussian noise to every command, so it
succeeds in a small fraction of episodes (see tests/test_env_scripted.py for the measured
rate). Both policies work in either action mode and return float32 [8] actions per
``rl_cyclegan.specs``.
"""

import math

import gin
import numpy as np

from rl_cyclegan import specs


def _action(dx, dy, dz, u, mode):
  """Continuous (dx, dy, dz, u) and mode name -> float32 [8] action (numpy encode_action)."""
  theta = 0.5 * math.pi * float(np.clip(u, -1, 1))
  flags = np.zeros(3, np.float32)
  index = specs.MODE_NAMES.index(mode)
  if index > 0:
    flags[index - 1] = 1.0
  move = np.clip([dx, dy, dz], -1, 1)
  return np.concatenate([move, [math.sin(theta), math.cos(theta)], flags]).astype(np.float32)


def check_noise_scale(noise_scale):
  """None or (low, high) with 0 <= low <= high -> None or a float pair; else ValueError."""
  if noise_scale is None:
    return None
  try:
    low, high = (float(v) for v in noise_scale)
  except (TypeError, ValueError):
    low = high = -1.0
  if not 0.0 <= low <= high:
    raise ValueError(f'noise_scale must be (low, high) with 0 <= low <= high, got '
                     f'{noise_scale!r}')
  return low, high


@gin.configurable
class ScriptedGraspPolicy:
  """Moves toward a randomly chosen object with exploration noise, descends and grasps.

  Per episode it picks a target object and an aim offset ~ N(0, aim_std) (m) in xy. Each step
  it commands the xy move toward target + offset (in units of the env's max translation),
  plus N(0, noise_std) noise on dx, dy, dz and u. In 'full' mode it descends once within
  ``xy_tolerance`` of the aim point, closes at ``close_height`` (m above the tray floor) and
  terminates once closed; with probability ``early_close_prob`` per step it closes early.
  In 'auto_descend' mode the env descends and grasps by itself, and the policy terminates
  early (a grasp from too high) with probability ``early_close_prob`` per step.

  ``noise_scale = (low, high)`` draws a factor s ~ U[low, high] per episode and multiplies
  ``noise_std``, ``aim_std`` and ``early_close_prob`` by it, so one log holds episodes from
  near-noise-free (s ~ 0) to fully noisy (s ~ 1) grasps. This mimics data gathered by a
  sequence of better and better policies (paper Appendix A: "periodically, those models are
  deployed to the robot to collect data from a better policy"). None keeps s = 1.
  """

  def __init__(self, env, noise_std=0.5, aim_std=0.04, early_close_prob=0.08,
               close_height=0.03, xy_tolerance=0.02, noise_scale=None, seed=None):
    self._env = env
    self._base_noise = (float(noise_std), float(aim_std), float(early_close_prob))
    self._noise_std, self._aim_std, self._early_close_prob = self._base_noise
    self._noise_scale = check_noise_scale(noise_scale)
    self._close_height = float(close_height)
    self._xy_tolerance = float(xy_tolerance)
    self._rng = np.random.default_rng(seed)
    self._target = None
    self._offset = None

  def reset(self):
    """Forgets the target; the next action picks a new one."""
    self._target = None

  def action(self, time_step):
    env = self._env
    if self._target is None or time_step.is_first():
      if self._noise_scale is not None:
        scale = self._rng.uniform(*self._noise_scale)
        self._noise_std, self._aim_std, self._early_close_prob = (
            v * scale for v in self._base_noise)
      positions = env.object_positions()
      self._target = int(self._rng.integers(len(positions)))
      self._offset = self._rng.normal(0.0, self._aim_std, 2)
    aim = env.object_positions()[self._target, :2] + self._offset
    delta = (aim - env.gripper_position()[:2]) / env.max_translation
    noise = self._rng.normal(0.0, self._noise_std, 4)
    dx, dy = np.clip(delta, -1, 1) + noise[:2]
    u = noise[3]
    if env.action_mode == 'auto_descend':
      early = self._rng.random() < self._early_close_prob
      return _action(dx, dy, 0.0, u, 'terminate' if early else 'move')
    closed, height = (float(v) for v in time_step.observation['gripper_state'])
    if closed > 0.5:
      return _action(0.0, 0.0, 0.0, 0.0, 'terminate')
    if height <= self._close_height or self._rng.random() < self._early_close_prob:
      return _action(0.0, 0.0, 0.0, 0.0, 'close')
    near = np.linalg.norm(aim - env.gripper_position()[:2]) < self._xy_tolerance
    dz = (-1.0 if near else -0.3) + noise[2]
    return _action(dx, dy, dz, u, 'move')


@gin.configurable
class RandomPolicy:
  """Uniform continuous parameters; the mode is 'move' except with small probabilities.

  'full': close / open / terminate each with ``flag_prob``; 'auto_descend': terminate with
  ``terminate_prob`` (other flags are ignored there).
  """

  def __init__(self, env, flag_prob=0.1, terminate_prob=0.02, seed=None):
    self._env = env
    self._flag_prob = float(flag_prob)
    self._terminate_prob = float(terminate_prob)
    self._rng = np.random.default_rng(seed)

  def reset(self):
    pass

  def action(self, time_step):
    del time_step
    dx, dy, dz, u = self._rng.uniform(-1, 1, 4)
    r = self._rng.random()
    if self._env.action_mode == 'auto_descend':
      mode = 'terminate' if r < self._terminate_prob else 'move'
    else:
      p = self._flag_prob
      mode = 'close' if r < p else 'open' if r < 2 * p else 'terminate' if r < 3 * p else 'move'
    return _action(dx, dy, dz, u, mode)
