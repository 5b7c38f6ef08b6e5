"""Vision-based grasping in pybullet: a Kuka IIWA, a tray and procedural objects (paper Section 5).

``GraspingEnv`` is a ``tf_agents`` ``PyEnvironment`` whose observation and action follow
``rl_cyclegan.specs``:

  observation = {'image': uint8 [H, W, 3], 'gripper_state': float32 [2]}
  action      = float32 [8] = [dx, dy, dz, sin(pi/2 u), cos(pi/2 u), close, open, terminate]

Scene (geometry as in pybullet_envs' KukaDiverseObjectEnv): Kuka IIWA with a two-finger
gripper, a tray on a table, ``num_objects`` objects from pybullet_data ``random_urdfs/000..999``
(paper Appendix B: procedural shapes of attached prisms). Objects whose name ends in 0 are the
100 'test' objects, the other 900 the 'train' objects.

Action modes:
  * ``'full'`` (paper Section 5): the gripper moves by ``(dx, dy, dz) * max_translation``
    metres and rotates by ``u * max_rotation`` radians about the vertical; ``close`` closes
    the fingers, ``open`` opens them, ``terminate`` lifts the gripper and ends the episode.
    Reaching ``max_steps`` also lifts and ends the episode (a closed gripper holding an
    object then counts as a success).
  * ``'auto_descend'`` (the easier CPU mode, the "height hack" of KukaDiverseObjectEnv): dz,
    close and open are ignored; the gripper descends ``(start_height - grasp_height) /
    max_steps`` metres every step; at the bottom (which is the last step) or on
    ``terminate`` it closes, lifts and the episode ends. Defaults: 5 steps of at most 7 cm
    in x and y (KukaDiverseObjectEnv uses 8 steps; 5 gives 1.6x more grasps per env step for
    the same reach, and a noise-free privileged grasp succeeds as often: 87% vs 89% of 100
    test-object episodes).

Reward: 1.0 on the final step if an object is held above ``success_height`` after the lift,
else 0.0; minus ``step_penalty`` on every step (QT-Opt style, default 0).

Reset: the static world (plane, table, robot, tray) is loaded once; each episode removes the
old objects, restores the saved robot state, loads the new objects at non-overlapping xy
spots just above the tray floor (an object without a free spot is dropped on the others),
and steps physics in chunks of 20 until all objects are at rest (at most ``settle_steps``).
Gripper fingers close with 10 N m (kuka.py: 2-2.5; with those, objects slipped out during
the lift in ~30% of otherwise well-placed grasps). Objects get linear/angular damping (0.5, 2.0) because some random_urdfs shapes otherwise rock
on their hulls forever.

Each instance owns its own headless pybullet client (``BulletClient(DIRECT)``), so several
environments can live in one process. Seeding: the environment keeps one ``SeedSequence``
from which the object choice and poses, the sensor noise and the appearance draws get their
own streams, so episodes are identical across appearances for the same seed.
"""

import glob
import math
import os
import sys
import time

import gin
import numpy as np
import pybullet
import pybullet_data
from pybullet_utils import bullet_client
from tf_agents.environments import py_environment
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from rl_cyclegan import specs
from rl_cyclegan.envs import appearance as appearance_lib

ACTION_MODES = ('full', 'auto_descend')
OBJECT_SPLITS = ('train', 'test')

# Kuka with gripper (pybullet_data kuka_iiwa/kuka_with_gripper2.sdf).
_END_EFFECTOR_LINK = 6
_GRIPPER_ROTATION_JOINT = 7
_LEFT_FINGER_JOINT, _RIGHT_FINGER_JOINT = 8, 11
_LEFT_TIP_JOINT, _RIGHT_TIP_JOINT = 10, 13
_LEFT_TIP_LINK, _RIGHT_TIP_LINK = 10, 13
_KUKA_BASE_POSITION = (-0.1, 0.0, 0.07)
_KUKA_REST_JOINTS = (0.006418, 0.413184, -0.011401, -1.589317, 0.005379, 1.137684, -0.006539,
                     0.000048, -0.299912, 0.0, -0.000043, 0.299960, 0.0, -0.000200)
# Null-space IK (limits, ranges, rest pose) as in pybullet_envs/bullet/kuka.py.
_IK_LOWER = (-.967, -2, -2.96, 0.19, -2.96, -2.09, -3.05)
_IK_UPPER = (.967, 2, 2.96, 2.29, 2.96, 2.09, 3.05)
_IK_RANGE = (5.8, 4, 5.8, 4, 5.8, 4, 6)
_IK_REST = (0, 0, 0, 0.5 * math.pi, 0, -math.pi * 0.5 * 0.66, 0)
_ARM_FORCE = 200.
_FINGER_OPEN = 0.3  # rad
# kuka.py uses 2.0 / 2.5 / 2.0; with those a noise-free privileged grasp succeeded in only
# 68-71% of test-object episodes (objects slip out during the lift). 10 raises it to 88%.
_FINGER_FORCES = (10.0, 10.0)  # left, right (N m)
_TIP_FORCE = 10.0
_TRAY_POSITION = (0.64, 0.075, -0.19)
_TRAY_ORIENTATION = (0., 0., 1., 0.)
_TABLE_POSITION = (0.5, 0.0, -0.82)
_PLANE_POSITION = (0., 0., -1.)
_TIME_STEP = 1. / 240.
_PLACEMENT_ATTEMPTS = 20
_OBJECT_DAMPING = (0.5, 2.0)  # linear, angular (pybullet units, 1/s)
# Settling after the drop: chunks of physics steps until every object is at rest.
_SETTLE_CHUNK = 20
_SETTLE_MIN_STEPS = 40
_REST_LINEAR = 0.01  # m/s
_REST_ANGULAR = 0.2  # rad/s


def _data_path(*parts):
  path = os.path.join(pybullet_data.getDataPath(), *parts)
  if not os.path.exists(path):
    raise FileNotFoundError(f'Missing pybullet asset {path!r} (pybullet_data from pybullet==3.2.7 '
                            'is expected to ship it; reinstall pybullet)')
  return path


def object_urdfs(split='train'):
  """Sorted URDF paths of the procedural objects of ``split`` ('train': 900, 'test': 100)."""
  if split not in OBJECT_SPLITS:
    raise ValueError(f'object_split must be one of {OBJECT_SPLITS}, got {split!r}')
  root = _data_path('random_urdfs')
  pattern = '*0/*.urdf' if split == 'test' else '*[1-9]/*.urdf'
  paths = sorted(glob.glob(os.path.join(root, pattern)))
  if not paths:
    raise FileNotFoundError(f'No object URDFs match {os.path.join(root, pattern)!r}')
  return paths


def masks_from_segmentation(segmentation, robot_id, object_ids):
  """Boolean (object_mask, robot_mask) [..., h, w] from body-id segmentation [..., h, w]."""
  segmentation = np.asarray(segmentation)
  object_mask = np.isin(segmentation, np.asarray(list(object_ids), segmentation.dtype))
  robot_mask = segmentation == robot_id
  return object_mask, robot_mask


class PhysicsDivergedError(RuntimeError):
  """The simulation gave a non-finite state (pybullet diverged). Names the env seed, episode and
  step. It has been rare (2 episodes in ~30,000 scripted ones, sessions 15 and 17) and did not
  recur when the same shard was collected again in a fresh process, so collection retries the
  shard (``actors.collect``), and training's collection, evaluations and Reverb actors run the
  episode again on a new environment (``actors.rollout.run_episodes(replace_env=...)``)."""


def _direct_client() -> bullet_client.BulletClient:
  """A headless pybullet client. pybullet's C code prints 'argv[0]=' to the process's stdout
  on every connect, a line per env in every log; the process's fd 1 points at /dev/null for
  the connect only (output other threads write in that moment is lost with it)."""
  sys.stdout.flush()
  try:
    saved = os.dup(1)
  except OSError:  # no fd 1 (a daemon): nothing to keep clean
    return bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
  try:
    with open(os.devnull, 'w') as devnull:
      os.dup2(devnull.fileno(), 1)
      return bullet_client.BulletClient(connection_mode=pybullet.DIRECT)
  finally:
    os.dup2(saved, 1)
    os.close(saved)


@gin.configurable
class GraspingEnv(py_environment.PyEnvironment):
  """Kuka grasping environment; see the module docstring."""

  def __init__(self,
               appearance='sim',
               num_objects=5,
               object_split='train',
               render_size=specs.DEFAULT_RENDER_SIZE,
               action_mode='auto_descend',
               max_steps=None,
               step_penalty=0.0,
               seed=None,
               # Camera (fixed, over the shoulder, looking at the tray).
               camera_target=(0.6, 0.05, -0.12),
               camera_distance=1.3,
               camera_yaw=225.0,
               camera_pitch=-52.0,
               camera_fov=32.0,
               # Control.
               max_translation=None,  # m per step for dx, dy, dz = 1; None: 0.07 auto, 0.05 full
               max_rotation=math.pi / 8,  # rad per step for u = 1
               start_height=0.30,  # m, fingertips above the tray floor at reset
               grasp_height=0.015,  # m, lowest fingertip height ('auto_descend' bottom)
               lift_distance=0.20,  # m, lift after the grasp
               success_height=0.10,  # m, object centre above the tray floor after the lift
               action_repeat=24,  # physics steps (1/240 s) per action
               close_steps=40,  # physics steps to close the fingers
               lift_steps=60,  # physics steps to lift
               settle_steps=240,  # at most this many physics steps for objects to come to rest
               solver_iterations=50,
               appearance_kwargs=None):
    """Creates the environment.

    Args:
      appearance: 'sim', 'real' or 'randomized' (see appearance.py).
      num_objects: objects in the tray per episode.
      object_split: 'train' (900 objects) or 'test' (100 objects, names ending in 0).
      render_size: (height, width) of the camera image.
      action_mode: 'auto_descend' (default, CPU mode) or 'full' (paper Section 5).
      max_steps: steps per episode; None = 5 for 'auto_descend', 20 for 'full'.
      step_penalty: subtracted from the reward on every step (QT-Opt style; default 0).
      seed: int seed; None draws one from the OS. ``seed(s)`` reseeds later.
      camera_*: fixed camera: target point, distance (m), yaw/pitch (deg), vertical fov (deg).
      max_translation, max_rotation: scale of one unit of dx/dy/dz and of u.
      start_height, grasp_height, lift_distance, success_height: heights (m) of the fingertips
        above the tray floor at reset and at the 'auto_descend' bottom, the lift after a grasp,
        and the height an object's centre must exceed after the lift to count as held.
      action_repeat, close_steps, lift_steps, settle_steps: physics steps of 1/240 s.
      solver_iterations: pybullet solver iterations per physics step.
      appearance_kwargs: extra keyword arguments for the appearance (e.g. real_gap).
    """
    super().__init__(handle_auto_reset=False)
    if action_mode not in ACTION_MODES:
      raise ValueError(f'action_mode must be one of {ACTION_MODES}, got {action_mode!r}')
    self._urdfs = object_urdfs(object_split)
    self._appearance = appearance_lib.make_appearance(appearance, **(appearance_kwargs or {}))
    if num_objects < 1:
      raise ValueError(f'num_objects must be >= 1, got {num_objects}')
    self._num_objects = int(num_objects)
    self._object_split = object_split
    self._render_size = tuple(int(s) for s in render_size)
    self._action_mode = action_mode
    if max_steps is None:
      max_steps = 5 if action_mode == 'auto_descend' else 20
    if max_steps < 1:
      raise ValueError(f'max_steps must be >= 1, got {max_steps}')
    self._max_steps = int(max_steps)
    self._step_penalty = float(step_penalty)
    if max_translation is None:
      max_translation = 0.07 if action_mode == 'auto_descend' else 0.05
    if max_translation <= 0:
      raise ValueError(f'max_translation must be > 0 m, got {max_translation}')
    self._max_translation = float(max_translation)
    self._max_rotation = float(max_rotation)
    self._start_height = float(start_height)
    self._grasp_height = float(grasp_height)
    self._lift_distance = float(lift_distance)
    self._success_height = float(success_height)
    self._action_repeat = int(action_repeat)
    self._close_steps = int(close_steps)
    self._lift_steps = int(lift_steps)
    self._settle_steps = int(settle_steps)
    self._auto_dz = (self._start_height - self._grasp_height) / self._max_steps

    self._action_spec = tensor_spec.to_array_spec(specs.bounded_action_spec())
    self._observation_spec = tensor_spec.to_array_spec(
        specs.env_observation_spec(self._render_size))

    h, w = self._render_size
    self._camera = dict(target=tuple(camera_target), distance=float(camera_distance),
                        yaw=float(camera_yaw), pitch=float(camera_pitch), fov=float(camera_fov))
    self._view_matrix = pybullet.computeViewMatrixFromYawPitchRoll(
        self._camera['target'], self._camera['distance'], self._camera['yaw'],
        self._camera['pitch'], 0.0, 2)
    self._proj_matrix = pybullet.computeProjectionMatrixFOV(self._camera['fov'], w / h, 0.01, 10.)

    self._p = _direct_client()
    self._solver_iterations = int(solver_iterations)
    self._build_scene()
    self._episode_success = False
    self._grasp_distance = None
    self._episode_count = 0
    self._step_count = 0
    self._done = True
    self._timers = {'physics': 0.0, 'render': 0.0, 'reset': 0.0}
    self._paired_appearances = {}
    self.seed(seed)

  # ----------------------------------------------------------------------------- scene

  def _build_scene(self):
    """(Re)creates the static world: plane, table, robot, tray. Clears loaded textures."""
    p = self._p
    p.resetSimulation()
    self._object_uids = []
    self._object_ids = []  # indices into self._urdfs
    self._scene_used = False
    for look in [getattr(self, '_appearance', None)] + list(
        getattr(self, '_paired_appearances', {}).values()):
      if look is not None:
        look.forget_textures()
    p.setPhysicsEngineParameter(numSolverIterations=self._solver_iterations)
    p.setTimeStep(_TIME_STEP)
    p.setGravity(0, 0, -10)
    self._plane_uid = p.loadURDF(_data_path('plane.urdf'), _PLANE_POSITION)
    self._table_uid = p.loadURDF(_data_path('table', 'table.urdf'), _TABLE_POSITION)
    self._kuka_uid = p.loadSDF(_data_path('kuka_iiwa', 'kuka_with_gripper2.sdf'))[0]
    p.resetBasePositionAndOrientation(self._kuka_uid, _KUKA_BASE_POSITION, (0, 0, 0, 1))
    self._tray_uid = p.loadURDF(_data_path('tray', 'tray.urdf'), _TRAY_POSITION,
                                _TRAY_ORIENTATION)
    self._num_joints = p.getNumJoints(self._kuka_uid)
    self._down = p.getQuaternionFromEuler([0, -math.pi, 0])
    # Tray floor height: a ray down through the tray centre.
    hit = p.rayTest((_TRAY_POSITION[0], _TRAY_POSITION[1], 0.5),
                    (_TRAY_POSITION[0], _TRAY_POSITION[1], -0.5))[0]
    self._floor_z = float(hit[3][2])
    # Fingertip point relative to the end effector target, measured at the rest pose.
    self._reset_robot()
    ee = np.array(p.getLinkState(self._kuka_uid, _END_EFFECTOR_LINK)[0])
    self._tip_offset = self._tip_position() - ee  # [3], mostly -z
    self._static_state = None

  def _reset_robot(self):
    p = self._p
    for j in range(self._num_joints):
      p.resetJointState(self._kuka_uid, j, _KUKA_REST_JOINTS[j])
    self._finger = _FINGER_OPEN
    self._gripper_angle = 0.0
    ee = np.array(self._p.getLinkState(self._kuka_uid, _END_EFFECTOR_LINK,
                                       computeForwardKinematics=True)[0])
    self._ee_target = ee

  def _tip_position(self):
    left = self._p.getLinkState(self._kuka_uid, _LEFT_TIP_LINK, computeForwardKinematics=True)[0]
    right = self._p.getLinkState(self._kuka_uid, _RIGHT_TIP_LINK,
                                 computeForwardKinematics=True)[0]
    return 0.5 * (np.array(left) + np.array(right))

  # Workspace of the end effector target (x, y) and fingertip height bounds.
  # The flat tray floor spans x in [0.44, 0.72], y in [-0.15, 0.27] (ray tests).
  _XY_LOW = np.array([0.44, -0.14])
  _XY_HIGH = np.array([0.72, 0.27])
  _OBJ_LOW = np.array([0.47, -0.11])
  _OBJ_HIGH = np.array([0.69, 0.24])

  def _apply_targets(self):
    p = self._p
    joints = p.calculateInverseKinematics(self._kuka_uid, _END_EFFECTOR_LINK,
                                          self._ee_target.tolist(), self._down, _IK_LOWER,
                                          _IK_UPPER, _IK_RANGE, _IK_REST)
    for j in range(_END_EFFECTOR_LINK + 1):
      p.setJointMotorControl2(self._kuka_uid, j, pybullet.POSITION_CONTROL,
                              targetPosition=joints[j], targetVelocity=0, force=_ARM_FORCE,
                              maxVelocity=2.0, positionGain=0.3, velocityGain=1)
    p.setJointMotorControl2(self._kuka_uid, _GRIPPER_ROTATION_JOINT, pybullet.POSITION_CONTROL,
                            targetPosition=self._gripper_angle, force=_ARM_FORCE)
    p.setJointMotorControl2(self._kuka_uid, _LEFT_FINGER_JOINT, pybullet.POSITION_CONTROL,
                            targetPosition=-self._finger, force=_FINGER_FORCES[0])
    p.setJointMotorControl2(self._kuka_uid, _RIGHT_FINGER_JOINT, pybullet.POSITION_CONTROL,
                            targetPosition=self._finger, force=_FINGER_FORCES[1])
    for j in (_LEFT_TIP_JOINT, _RIGHT_TIP_JOINT):
      p.setJointMotorControl2(self._kuka_uid, j, pybullet.POSITION_CONTROL, targetPosition=0,
                              force=_TIP_FORCE)

  def _simulate(self, n):
    t = time.perf_counter()
    step = self._p.stepSimulation
    for _ in range(n):
      step()
    self._timers['physics'] += time.perf_counter() - t

  def _move_to(self, target_xyz, steps):
    self._ee_target = np.asarray(target_xyz, np.float64)
    self._apply_targets()
    self._simulate(steps)

  def _clamp_target(self, target):
    target = np.array(target, np.float64)
    target[:2] = np.clip(target[:2], self._XY_LOW, self._XY_HIGH)
    tip_z_low = self._floor_z + self._grasp_height
    tip_z_high = self._floor_z + self._start_height + 0.05
    tip_z = np.clip(target[2] + self._tip_offset[2], tip_z_low, tip_z_high)
    target[2] = tip_z - self._tip_offset[2]
    return target

  # ----------------------------------------------------------------------------- seeding

  def seed(self, seed=None):
    """Reseeds; the next ``reset()`` starts the first episode of ``seed``'s sequence."""
    if seed is None:
      seed = int(np.random.SeedSequence().entropy % (2**31))
    self._seed = int(seed)
    ss = np.random.SeedSequence(self._seed)
    scene_ss, noise_ss, appearance_ss = ss.spawn(3)
    if self._scene_used:
      # pybullet keeps solver caches across episodes: a reseeded env rebuilds its world so
      # that it replays exactly what a fresh env with the same seed does.
      self._build_scene()
    self._rng = np.random.default_rng(scene_ss)
    self._noise_rng = np.random.default_rng(noise_ss)
    self._appearance_rng = np.random.default_rng(appearance_ss)
    self._episode_count = 0
    self._done = True
    return [self._seed]

  # ----------------------------------------------------------------------------- specs

  def action_spec(self):
    return self._action_spec

  def observation_spec(self):
    return self._observation_spec

  # ----------------------------------------------------------------------------- episode

  def _reset(self):
    t0 = time.perf_counter()
    p = self._p
    self._scene_used = True
    for uid in self._object_uids:
      p.removeBody(uid)
    if self._static_state is None:
      self._static_state = p.saveState()
    else:
      p.restoreState(self._static_state)  # robot, velocities, contacts: a fresh start
    self._reset_robot()
    # Start above a random point of the object area, gripper open, random rotation.
    start_xy = self._rng.uniform(self._OBJ_LOW + 0.04, self._OBJ_HIGH - 0.04)
    self._gripper_angle = float(self._rng.uniform(-math.pi / 2, math.pi / 2))
    self._ee_target = self._clamp_target(
        [start_xy[0], start_xy[1], self._floor_z + self._start_height - self._tip_offset[2]])
    self._set_arm_to_target()

    ids = self._rng.choice(len(self._urdfs), self._num_objects, replace=False)
    self._object_ids = [int(i) for i in ids]
    self._object_uids = []
    placed = []  # xy boxes (low, high) of the objects placed on the floor so far
    for i in self._object_ids:
      yaw = self._rng.uniform(-math.pi, math.pi)
      orn = p.getQuaternionFromEuler([0, 0, yaw])
      uid = p.loadURDF(self._urdfs[i], [0.0, -2.0, 1.0], orn)
      low, high = (np.array(v) for v in p.getAABB(uid))
      # Objects are dropped together from just above the floor, at xy positions whose
      # bounding boxes do not overlap (rejection sampling). An object without a free spot
      # is dropped on top of the others instead.
      z = self._floor_z + 0.005 + (1.0 - low[2])
      for attempt in range(_PLACEMENT_ATTEMPTS):
        xy = self._rng.uniform(self._OBJ_LOW, self._OBJ_HIGH)
        box = (low[:2] - [0.0, -2.0] + xy - 0.005, high[:2] - [0.0, -2.0] + xy + 0.005)
        if not any(np.all(box[0] < b[1]) and np.all(b[0] < box[1]) for b in placed):
          placed.append(box)
          break
      else:
        z += 0.06
      p.resetBasePositionAndOrientation(uid, [xy[0], xy[1], z], orn)
      # Some random_urdfs objects rock forever on their hulls without damping.
      p.changeDynamics(uid, -1, linearDamping=_OBJECT_DAMPING[0],
                       angularDamping=_OBJECT_DAMPING[1])
      self._object_uids.append(uid)
    self._apply_targets()
    self._settle()

    self._appearance.new_episode(self._appearance_rng)
    self._appearance.apply(self._scene())
    self._step_count = 0
    self._done = False
    self._grasp_distance = None
    self._episode_count += 1
    self._timers['reset'] += time.perf_counter() - t0
    return ts.restart(self._observe())

  def _settle(self):
    """Steps physics until the objects are at rest (or ``settle_steps`` is reached)."""
    done = 0
    while done < self._settle_steps:
      n = min(_SETTLE_CHUNK, self._settle_steps - done)
      self._simulate(n)
      done += n
      if done >= _SETTLE_MIN_STEPS and all(
          np.linalg.norm(v) < _REST_LINEAR and np.linalg.norm(w) < _REST_ANGULAR
          for v, w in (self._p.getBaseVelocity(u) for u in self._object_uids)):
        break
    self._last_settle_steps = done

  def _set_arm_to_target(self):
    """Teleports the arm to the IK solution of the current target (used at reset only)."""
    p = self._p
    for _ in range(3):  # IK from the rest pose converges in a few resets
      joints = p.calculateInverseKinematics(self._kuka_uid, _END_EFFECTOR_LINK,
                                            self._ee_target.tolist(), self._down, _IK_LOWER,
                                            _IK_UPPER, _IK_RANGE, _IK_REST)
      for j in range(_END_EFFECTOR_LINK + 1):
        p.resetJointState(self._kuka_uid, j, joints[j])
    p.resetJointState(self._kuka_uid, _GRIPPER_ROTATION_JOINT, self._gripper_angle)

  def _step(self, action):
    if self._done:
      return self.reset()
    action = np.asarray(action, np.float32)
    if action.shape != (specs.ACTION_DIM,):
      raise ValueError(f'action must have shape ({specs.ACTION_DIM},) per specs.action_spec() '
                       f'{specs.ACTION_NAMES}, got {action.shape}')
    continuous, mode = specs.decode_action(np.clip(action, self._action_spec.minimum,
                                                   self._action_spec.maximum))
    mode = specs.MODE_NAMES[int(mode)]
    dx, dy, dz, u = (float(v) for v in continuous)
    self._step_count += 1
    last = self._step_count >= self._max_steps
    grasp = False

    self._gripper_angle = float(np.clip(self._gripper_angle + u * self._max_rotation,
                                        -math.pi / 2, math.pi / 2))
    if self._action_mode == 'auto_descend':
      if mode == 'terminate':
        grasp = True
      else:
        target = self._ee_target + self._max_translation * np.array([dx, dy, 0.0])
        target[2] -= self._auto_dz
        self._move_to(self._clamp_target(target), self._action_repeat)
        tip_height = self._tip_position()[2] - self._floor_z
        grasp = last or tip_height <= self._grasp_height + 0.01
      if grasp:
        self._finger = 0.0
        self._apply_targets()
        self._simulate(self._close_steps)
    else:
      if mode == 'close':
        self._finger = 0.0
        self._apply_targets()
        self._simulate(self._action_repeat)
      elif mode == 'open':
        self._finger = _FINGER_OPEN
        self._apply_targets()
        self._simulate(self._action_repeat)
      elif mode == 'move':
        target = self._ee_target + self._max_translation * np.array([dx, dy, dz])
        self._move_to(self._clamp_target(target), self._action_repeat)
      grasp = mode == 'terminate' or last

    reward = -self._step_penalty
    if grasp:
      self._grasp_distance = self._nearest_object_distance()
      self._lift()
      self._episode_success = self._object_held()
      reward += float(self._episode_success)
      self._done = True
    observation = self._observe()
    if self._done:
      return ts.termination(observation, np.float32(reward))
    return ts.transition(observation, np.float32(reward), discount=np.float32(1.0))

  def _lift(self):
    target = self._ee_target.copy()
    target[2] += self._lift_distance
    self._move_to(target, self._lift_steps)

  def _object_held(self):
    heights = self.object_positions()[:, 2] - self._floor_z
    return bool(np.any(heights > self._success_height))

  # ----------------------------------------------------------------------------- observation

  def _gripper_state(self):
    closed = 1.0 if self._finger < 0.5 * _FINGER_OPEN else 0.0
    tip = self._tip_position()
    if not np.all(np.isfinite(tip)):
      raise PhysicsDivergedError(
          f'GraspingEnv(seed={self._seed}): the fingertip position is {tip.tolist()} at step '
          f'{self._step_count} of episode {self._episode_count} (pybullet diverged)')
    return np.array([closed, tip[2] - self._floor_z], np.float32)

  def _scene(self):
    return appearance_lib.Scene(client=self._p, plane=self._plane_uid, table=self._table_uid,
                                tray=self._tray_uid, robot=self._kuka_uid,
                                objects=tuple(self._object_uids),
                                object_ids=tuple(self._object_ids))

  def _render(self, appearance, noise_rng, segmentation=False):
    h, w = self._render_size
    t = time.perf_counter()
    flags = 0 if segmentation else pybullet.ER_NO_SEGMENTATION_MASK
    _, _, rgba, depth, seg = self._p.getCameraImage(
        width=w, height=h, viewMatrix=self._view_matrix, projectionMatrix=self._proj_matrix,
        renderer=pybullet.ER_TINY_RENDERER, flags=flags, **appearance.light_kwargs())
    rgb = np.reshape(np.asarray(rgba, np.uint8), (h, w, 4))[:, :, :3]
    rgb = appearance.postprocess(rgb, noise_rng)
    self._timers['render'] += time.perf_counter() - t
    if segmentation:
      return rgb, np.reshape(np.asarray(seg, np.int32), (h, w)), np.reshape(
          np.asarray(depth, np.float32), (h, w))
    return rgb

  def _observe(self):
    self._check_objects()
    return {'image': self._render(self._appearance, self._noise_rng),
            'gripper_state': self._gripper_state()}

  def _check_objects(self):
    """Raises PhysicsDivergedError when an object's pose is not finite. The fingertip can stay
    finite while an object diverged (session 31: a scripted episode's first action was NaN,
    aimed at such an object, and the collection stopped)."""
    positions = self.object_positions()
    bad = ~np.all(np.isfinite(positions), axis=-1)
    if np.any(bad):
      i = int(np.argmax(bad))
      raise PhysicsDivergedError(
          f'GraspingEnv(seed={self._seed}): object {i} (urdf {self._object_ids[i]}) is at '
          f'{positions[i].tolist()} at step {self._step_count} of episode {self._episode_count} '
          '(pybullet diverged)')

  def render(self, mode='rgb_array'):
    """The current camera image (uint8 [H, W, 3]) in the env's appearance, without noise draw."""
    if mode != 'rgb_array':
      raise ValueError(f"Only mode='rgb_array' is supported, got {mode!r}")
    return self._render(self._appearance, np.random.default_rng(0))

  def render_paired(self, appearances=('sim', 'real')):
    """Renders the current state in several appearances, pixel-aligned (evaluation only).

    Returns a dict {name: uint8 [H, W, 3] for each name, 'segmentation': int32 [H, W] body
    ids, 'depth': float32 [H, W] z-buffer}. Same camera and geometry for all; the env's own
    appearance is restored afterwards and the episode is not otherwise touched. Noise in
    post-processing is drawn from a generator keyed by (seed, episode, step), not the env's.
    """
    out = {}
    scene = self._scene()
    for k, name in enumerate(appearances):
      if name == self._appearance.name:
        look = self._appearance
      else:
        if name not in self._paired_appearances:
          self._paired_appearances[name] = appearance_lib.make_appearance(name)
        look = self._paired_appearances[name]
        look.new_episode(np.random.default_rng([self._seed, self._episode_count, 1]))
      look.apply(scene)
      rng = np.random.default_rng([self._seed, self._episode_count, self._step_count, k])
      rgb, seg, depth = self._render(look, rng, segmentation=True)
      out[name] = rgb
      if 'segmentation' not in out:
        out['segmentation'], out['depth'] = seg, depth
    self._appearance.apply(scene)
    return out

  # ----------------------------------------------------------------------------- privileged

  @property
  def episode_success(self):
    """Whether the last finished episode ended with an object held (False before any)."""
    return self._episode_success

  @property
  def grasp_distance(self):
    """Horizontal distance (m) from the closed fingertips to the nearest object's base frame,
    measured before the lift of this episode's grasp; None before the grasp. A diagnostic:
    how far from every object a failed grasp was (``policy_eval.grasp_distance_table``)."""
    return self._grasp_distance

  def _nearest_object_distance(self):
    objects = self.object_positions()
    if not len(objects):
      return None
    tip = np.asarray(self._tip_position())[:2]
    return float(np.min(np.linalg.norm(objects[:, :2] - tip, axis=1)))

  def region_masks(self, segmentation) -> dict:
    """{'objects', 'robot', 'background'}: boolean [H, W] masks of a ``render_paired``
    segmentation of the current scene (its body ids), which partition the image.
    'background' is everything else: tray, table, floor and empty pixels."""
    objects, robot = masks_from_segmentation(segmentation, self._kuka_uid, self._object_uids)
    return {'objects': objects, 'robot': robot, 'background': ~(objects | robot)}

  def object_positions(self):
    """World positions of the objects' base frames, float64 [N, 3]."""
    return np.array([self._p.getBasePositionAndOrientation(u)[0] for u in self._object_uids],
                    np.float64).reshape(-1, 3)

  def gripper_position(self):
    """World position of the point between the fingertips, float64 [3]."""
    return self._tip_position()

  def gripper_angle(self):
    """Commanded top-down rotation of the gripper (rad, in [-pi/2, pi/2])."""
    return self._gripper_angle

  @property
  def floor_height(self):
    """World z of the tray floor (m)."""
    return self._floor_z

  @property
  def action_mode(self):
    return self._action_mode

  @property
  def max_steps(self):
    return self._max_steps

  @property
  def max_translation(self):
    return self._max_translation

  @property
  def max_rotation(self):
    return self._max_rotation

  @property
  def appearance(self):
    return self._appearance.name

  @property
  def render_size(self):
    return self._render_size

  @property
  def timers(self):
    """Cumulative seconds spent in 'physics', 'render' and 'reset' (reset includes physics)."""
    return dict(self._timers)

  def close(self):
    if self._p is not None:
      try:
        self._p.disconnect()
      except pybullet.error:
        pass
      self._p = None

  def __del__(self):
    try:
      self.close()
    except Exception:  # pylint: disable=broad-except
      pass
