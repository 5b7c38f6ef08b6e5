"""Grasping policies: the QT-Opt CEM policy over a Q-network, and adapters for batched rollouts.

``CEMPolicy`` (a tf_agents ``TFPolicy``) acts by maximizing Q(s, a) with CEM (QT-Opt, Kalashnikov
et al. 2018, Section 4.2; ``rl_cyclegan.cem``). Per batch of env observations:

  image uint8 [B, H, W, 3] (render size)
    -> optional frame_transform on the whole frame (uint8 -> uint8, e.g. the frozen G of the
       final-Q phase, ``data.translation.FrameTranslator``)
    -> center crop to crop_size (paper Appendix A: evaluation uses the center crop)
    -> float32 [-1, 1] -> optional image_transform (e.g. a frozen Sim2Real generator G)
    -> q_network.embed_image once -> CEM over q_network.logits_from_embedding
    -> exploration: with probability epsilon a uniformly random action (``cem.random_actions``),
       otherwise the CEM action with N(0, noise_std) noise on (dx, dy, dz, u), clipped to
       [-1, 1] and re-encoded (``specs.encode_action``), so sin/cos stay on the unit circle.

``image_transform`` is how on-policy sim episodes are collected "in the simulation-to-real
environment" (paper Appendix A, Fig. 6): sim images go through G before Q_real sees them.

Randomness comes from a ``tf.random.Generator`` owned by the policy (seeded by ``seed``, or
non-deterministic when ``seed`` is None); each call draws fresh stateless seeds from it, so two
policies with the same seed and weights produce the same action sequence. The ``seed``
argument of ``TFPolicy.action`` is ignored (PolicySaver would otherwise freeze one seed).
``distribution()`` is not implemented (CEM is a search, not a distribution): PolicySaver then
saves ``action`` only, and the SavedModel loads with TensorFlow alone (a serialized tfp
Deterministic would need tensorflow_probability imported before ``tf.saved_model.load``).

Batched rollouts (``rl_cyclegan.actors.rollout.run_episodes``) call an *action function*

  action_fn(observations, env_ids=None, time_steps=None) -> float32 actions [K, 8]

with ``observations`` a dict of stacked numpy arrays for the K active environments, their
indices ``env_ids`` and their current tf_agents ``TimeStep`` s. An action function may also
have ``begin_episode(env_id, env, seed)`` (called before each episode's reset) and a ``name``
(recorded as the episode's ``metadata['policy']``). ``greedy_action_fn`` / ``policy_action_fn``
wrap a TF policy (or a PolicySaver SavedModel); ``ScriptedActionFn`` wraps per-env Python
policies such as ``envs.scripted.ScriptedGraspPolicy`` and ``RandomPolicy``.
"""

import math
from typing import Callable, Optional, Sequence

import gin
import numpy as np
import tensorflow as tf
from tf_agents.policies import tf_policy
from tf_agents.trajectories import policy_step
from tf_agents.trajectories import time_step as ts

from rl_cyclegan import cem
from rl_cyclegan import specs
from rl_cyclegan.data import preprocessing

# Names of the exploration variables (found by name in a loaded SavedModel's model_variables).
EPSILON_VARIABLE = 'exploration_epsilon'
NOISE_STD_VARIABLE = 'exploration_noise_std'

# allowed_modes for the action modes of envs.grasping.GraspingEnv (specs.allowed_modes_for).
AUTO_DESCEND_MODES = specs.AUTO_DESCEND_MODES
ALL_MODES = specs.ALL_MODES


def linear_schedule(step, start, end, steps) -> float:
  """Linear interpolation from ``start`` (step 0) to ``end`` (step >= ``steps``), a Python float.

  E.g. an epsilon schedule: ``linear_schedule(step, 0.5, 0.1, 10000)``. ``steps <= 0`` gives
  ``end`` for every step; negative steps give ``start``.
  """
  step, start, end = float(step), float(start), float(end)
  if steps <= 0:
    return end
  fraction = min(max(step / float(steps), 0.0), 1.0)
  return start + fraction * (end - start)


def decode_action_tf(action):
  """tf version of ``specs.decode_action``: [..., 8] -> (continuous [..., 4], mode int32 [...])."""
  action = tf.convert_to_tensor(action, tf.float32)
  u = tf.atan2(action[..., 3], action[..., 4]) / (math.pi / 2.0)  # [...]
  continuous = tf.concat([action[..., :3], u[..., None]], axis=-1)  # [..., 4]
  flags = action[..., 5:8]  # [..., 3] close, open, terminate
  mode = tf.where(tf.reduce_max(flags, axis=-1) > 0.5,
                  1 + tf.argmax(flags, axis=-1, output_type=tf.int32), 0)
  return continuous, mode


def _call_transform(transform, images):
  if isinstance(transform, tf.keras.layers.Layer):  # Keras models are layers
    return transform(images, training=False)
  return transform(images)


@gin.configurable
class CEMPolicy(tf_policy.TFPolicy):
  """QT-Opt CEM policy with epsilon-random and Gaussian exploration; see the module docstring."""

  def __init__(self,
               q_network,
               render_size: Sequence[int] = specs.DEFAULT_RENDER_SIZE,
               crop_size: Sequence[int] = specs.DEFAULT_CROP_SIZE,
               image_transform: Optional[Callable] = None,
               allowed_modes=None,
               frame_transform: Optional[Callable] = None,
               num_samples: int = cem.QTOPT_NUM_SAMPLES,
               num_iterations: int = cem.QTOPT_NUM_ITERATIONS,
               num_elites: int = cem.QTOPT_NUM_ELITES,
               num_test_crops: int = 1,
               epsilon: float = 0.0,
               noise_std: float = 0.0,
               seed: Optional[int] = None,
               name: str = 'CEMPolicy'):
    """Creates the policy.

    Args:
      q_network: an object with ``embed_image(image [B, h, w, 3] float32, training)`` ->
        embedding and ``logits_from_embedding(embedding, gripper_state [B, 2], actions
        [B, N, 8], training)`` -> logits [B, N], e.g. ``networks.q_network.GraspingQNetwork``.
      render_size: (H, W) of the env images (the time_step_spec's image shape).
      crop_size: (h, w) of the center crop the Q-network sees.
      image_transform: optional callable / Keras model on float images [B, h, w, 3] in
        [-1, 1], e.g. a frozen Sim2Real generator G (paper Appendix A, Fig. 6). Keras models
        are called with ``training=False``. Its variables are tracked (and saved by
        PolicySaver) but not trained here.
      frame_transform: optional callable on whole uint8 frames [B, H, W, 3] -> uint8, applied
        before cropping: the frozen G of a final Q trained on translated frames
        (``data.translation.FrameTranslator``), so acting sees what training saw.
      allowed_modes: optional bool vector [4] over (move, close, open, terminate) for CEM and
        random actions; None allows all. ``AUTO_DESCEND_MODES`` suits 'auto_descend'.
      num_samples, num_iterations, num_elites: CEM settings (QT-Opt Section 4.2: 64, 2, 6).
      num_test_crops: 1 = the center crop (paper). K > 1 scores every action with the mean
        logit over K crops at evenly spaced offsets (``preprocessing.spread_crops``), a
        test-time average over the offsets training's random crops cover; K times the
        Q-network cost per CEM round.
      epsilon: initial probability of a uniformly random action (``set_exploration``).
      noise_std: initial std of the Gaussian noise on (dx, dy, dz, u) of the CEM action.
      seed: seed of the policy's random generator; None = non-deterministic.
      name: module name.
    """
    self._render_size = specs._check_size(render_size, 'render_size')  # pylint: disable=protected-access
    self._crop_size = specs._check_size(crop_size, 'crop_size')  # pylint: disable=protected-access
    if (self._crop_size[0] > self._render_size[0] or self._crop_size[1] > self._render_size[1]):
      raise ValueError(f'crop_size {self._crop_size} is larger than render_size '
                       f'{self._render_size}')
    for method in ('embed_image', 'logits_from_embedding'):
      if not callable(getattr(q_network, method, None)):
        raise TypeError(f'q_network must have a {method}() method (see '
                        f'networks/q_network.py GraspingQNetwork), got {type(q_network).__name__}')
    time_step_spec = ts.time_step_spec(specs.env_observation_spec(self._render_size))
    super().__init__(time_step_spec, specs.bounded_action_spec(), name=name)
    self._q_network = q_network
    self._image_transform = image_transform
    self._frame_transform = frame_transform
    self._allowed_modes = None if allowed_modes is None else tuple(
        bool(m) for m in allowed_modes)
    if self._allowed_modes is not None:
      cem._allowed_mask(self._allowed_modes)  # pylint: disable=protected-access  # validates
    self._num_samples = int(num_samples)
    self._num_iterations = int(num_iterations)
    self._num_elites = int(num_elites)
    if int(num_test_crops) < 1:
      raise ValueError(f'num_test_crops must be >= 1, got {num_test_crops}')
    self._num_test_crops = int(num_test_crops)
    self._epsilon = tf.Variable(float(epsilon), dtype=tf.float32, trainable=False,
                                name=EPSILON_VARIABLE)
    self._noise_std = tf.Variable(float(noise_std), dtype=tf.float32, trainable=False,
                                  name=NOISE_STD_VARIABLE)
    self._check_exploration(epsilon, noise_std)
    self._rng = (tf.random.Generator.from_seed(int(seed)) if seed is not None
                 else tf.random.Generator.from_non_deterministic_state())
    if hasattr(q_network, 'create_variables'):
      q_network.create_variables()  # build now, so checkpoints restore and savers see all
    self._greedy_fn = None

  # ------------------------------------------------------------------------------ properties

  @property
  def q_network(self):
    return self._q_network

  @property
  def image_transform(self):
    return self._image_transform

  @property
  def render_size(self):
    return self._render_size

  @property
  def crop_size(self):
    return self._crop_size

  @property
  def allowed_modes(self):
    return self._allowed_modes

  @property
  def epsilon(self) -> tf.Variable:
    return self._epsilon

  @property
  def noise_std(self) -> tf.Variable:
    return self._noise_std

  @staticmethod
  def _check_exploration(epsilon, noise_std):
    if not 0.0 <= float(epsilon) <= 1.0 or float(noise_std) < 0.0:
      raise ValueError(f'exploration needs 0 <= epsilon <= 1 and noise_std >= 0, got '
                       f'epsilon={epsilon}, noise_std={noise_std}')

  def set_exploration(self, epsilon: float, noise_std: float):
    """Sets the exploration variables (no retracing; also inside a saved policy's graph)."""
    self._check_exploration(epsilon, noise_std)
    self._epsilon.assign(float(epsilon))
    self._noise_std.assign(float(noise_std))

  # ------------------------------------------------------------------------------ acting

  def model_images(self, image, num_crops=None):
    """What the Q-network sees of env frames [B, H, W, 3] uint8: the frame transform, the
    crops (``num_crops``, default the policy's test crops; 1 = the center crop), [-1, 1], the
    image transform. [K * B, h, w, 3] float32."""
    k = self._num_test_crops if num_crops is None else num_crops
    if self._frame_transform is not None:
      image = self._frame_transform(image)  # [B, H, W, 3] uint8
    image = preprocessing.spread_crops(image, self._crop_size,
                                       k)  # [K * B, h, w, 3] u8 (K = 1: center crop)
    image = specs.to_float_image(image)  # [K * B, h, w, 3] in [-1, 1]
    if self._image_transform is not None:
      image = tf.cast(_call_transform(self._image_transform, image), tf.float32)
    return image

  def embedding_spread(self, images, batch_size=64) -> float:
    """Does the Q-network's image tower still tell these frames apart? The standard deviation
    across env frames ``images`` [N, H, W, 3] uint8 (N >= 2; center crops) of its embedding's
    C feature channels, averaged over cells and channels. Near 0 when the tower outputs the
    same features for every image: the Q then acts the same whatever the scene (a collapse
    seen when the objects are hard to see; docs/results.md, Table 1). Deterministic."""
    images = np.asarray(images)
    if len(images) < 2:
      raise ValueError(f'embedding_spread needs at least 2 frames, got {len(images)}')
    channels = self._q_network.feature_channels
    features = np.concatenate([
        self._q_network.embed_image(self.model_images(
            tf.constant(images[i:i + batch_size]), num_crops=1)).numpy()[..., :channels]
        for i in range(0, len(images), batch_size)])  # [N, e_h, e_w, C]
    return float(np.mean(features.std(axis=0)))

  def action_change(self, images, gripper_states, batch_size=64) -> float:
    """Does the greedy action depend on the scene? For env frames ``images`` [N, H, W, 3]
    uint8 (N >= 2) and their gripper states [N, 2]: the mean distance between the greedy
    (dx, dy) moves, in units of the largest step, on each frame and on the frame N // 2 places
    further on (another state; in an evaluation's frames, mostly another episode), both with
    the first frame's gripper state and the same CEM seed. Scale-free, unlike
    ``embedding_spread``, so it compares Q-networks of different architectures. 0 when the Q
    ignores the image (the collapsed real_gap 1.0 oracle: 0.003; Sim-Only: 0.87, measured on
    the paired states; docs/results.md, Table 1); two independent uniformly random moves are
    ~1.04 apart. Deterministic for a given ``batch_size`` (CEM draws its samples per call of
    that many frames); touches no random stream of the policy."""
    images, gripper_states = np.asarray(images), np.asarray(gripper_states, np.float32)
    if len(images) < 2 or len(gripper_states) != len(images):
      raise ValueError(f'action_change needs at least 2 frames and one gripper state per frame, '
                       f'got {len(images)} frames and {len(gripper_states)} gripper states')
    others = np.roll(images, len(images) // 2, axis=0)

    def moves(frames):  # [N, 2] greedy (dx, dy)
      return np.concatenate([
          self.greedy_with_value({'image': tf.constant(frames[i:i + batch_size]),
                                  'gripper_state': tf.constant(gripper_states[i:i + batch_size])}
                                 )[0].numpy()[:, :2]
          for i in range(0, len(frames), batch_size)])

    return float(np.mean(np.linalg.norm(moves(images) - moves(others), axis=-1)))

  def _cem(self, observation, seed):
    """Greedy CEM action and its logit for a batch of env observations."""
    k = self._num_test_crops
    batch_size = tf.shape(observation['image'])[0]
    image = self.model_images(observation['image'])  # [K * B, h, w, 3] in [-1, 1]
    gripper_state = tf.tile(tf.cast(observation['gripper_state'], tf.float32),
                            [k, 1])  # [K * B, 2]
    embedding = self._q_network.embed_image(image, training=False)  # [K * B, e_h, e_w, C]

    def score_fn(actions):  # [B, N, 8] -> [B, N]
      logits = self._q_network.logits_from_embedding(
          embedding, gripper_state, tf.tile(actions, [k, 1, 1]), training=False)  # [K * B, N]
      if k == 1:
        return logits
      return tf.reduce_mean(tf.reshape(logits, tf.stack([k, batch_size, -1])), 0)  # [B, N]

    return cem.cem_maximize(
        score_fn, batch_size, num_samples=self._num_samples,
        num_iterations=self._num_iterations, num_elites=self._num_elites,
        allowed_modes=self._allowed_modes, seed=seed)  # [B, 8], [B]

  def _explore(self, greedy, epsilon, noise_std, seeds):
    """Adds Gaussian noise to greedy actions [B, 8], then replaces a fraction epsilon."""
    batch_size = tf.shape(greedy)[0]
    continuous, mode = decode_action_tf(greedy)  # [B, 4], [B]
    noise = tf.random.stateless_normal(tf.shape(continuous), seeds[:, 0])  # [B, 4]
    continuous = tf.clip_by_value(continuous + noise_std * noise, -1.0, 1.0)
    noisy = tf.where(noise_std > 0.0, specs.encode_action(continuous, mode), greedy)  # [B, 8]
    random = cem.random_actions(batch_size, self._allowed_modes, seed=seeds[:, 1])  # [B, 8]
    coin = tf.random.stateless_uniform([batch_size], seeds[:, 2])  # [B]
    return tf.where((coin < epsilon)[:, None], random, noisy)  # [B, 8]

  def compute_action(self, observation, epsilon=None, noise_std=None):
    """Action [B, 8] for env observations (dict of batched tensors).

    ``epsilon`` / ``noise_std`` default to the policy's exploration variables; pass 0.0 for
    the greedy CEM action.
    """
    epsilon = self._epsilon if epsilon is None else tf.constant(epsilon, tf.float32)
    noise_std = self._noise_std if noise_std is None else tf.constant(noise_std, tf.float32)
    seeds = self._rng.make_seeds(4)  # [2, 4] int64
    greedy, _ = self._cem(observation, seeds[:, 0])  # [B, 8]
    return self._explore(greedy, epsilon, noise_std, seeds[:, 1:])

  def greedy_with_value(self, observation, seed=(0, 0)):
    """Greedy CEM actions [B, 8] and their Q-values (sigmoid of the logit) [B], with a fixed
    CEM seed, so two calls on different images compare like with like."""
    action, logit = self._cem(observation, tf.constant(seed, tf.int64))
    return action, tf.sigmoid(logit)

  def _action(self, time_step, policy_state, seed=None):
    del seed  # the policy's own generator is used; see the module docstring
    return policy_step.PolicyStep(self.compute_action(time_step.observation), policy_state, ())

  def greedy_action(self, observation):
    """Greedy CEM actions [B, 8] (epsilon = noise_std = 0), traced once for any batch size."""
    if self._greedy_fn is None:
      signature = tf.nest.map_structure(
          lambda s: tf.TensorSpec([None] + s.shape.as_list(), s.dtype, s.name),
          self.time_step_spec.observation)
      self._greedy_fn = tf.function(
          lambda obs: self.compute_action(obs, epsilon=0.0, noise_std=0.0),
          input_signature=[signature])
    return self._greedy_fn(observation)


# ---------------------------------------------------------------------------- action functions


def _batched_time_step(observations, time_steps):
  """A batched TimeStep of tensors from stacked observations and per-env time steps."""
  k = len(next(iter(observations.values())))
  if time_steps is None:
    step_type = np.full([k], ts.StepType.MID, np.int32)
    reward = np.zeros([k], np.float32)
    discount = np.ones([k], np.float32)
  else:
    step_type = np.asarray([t.step_type for t in time_steps], np.int32)
    reward = np.asarray([t.reward for t in time_steps], np.float32)
    discount = np.asarray([t.discount for t in time_steps], np.float32)
  return ts.TimeStep(step_type=tf.constant(step_type), reward=tf.constant(reward),
                     discount=tf.constant(discount),
                     observation={key: tf.convert_to_tensor(value)
                                  for key, value in observations.items()})


def _check_actions(actions, k, who):
  actions = np.asarray(actions, np.float32)
  if actions.shape != (k, specs.ACTION_DIM):
    raise ValueError(f'{who} must return actions [K, {specs.ACTION_DIM}] = [{k}, '
                     f'{specs.ACTION_DIM}] for K={k} observations, got shape {actions.shape}')
  return actions


class PolicyActionFn:
  """Batched action function over a TF policy or a loaded PolicySaver SavedModel.

  ``greedy=True`` needs a ``CEMPolicy`` and ignores its exploration variables; otherwise the
  policy's ``action(time_step, policy_state)`` is called (with the exploration it is set to).
  Stateless policies only (policy_state = ()).
  """

  def __init__(self, policy, greedy=False, name=None):
    if greedy and not isinstance(policy, CEMPolicy):
      raise TypeError(f'greedy=True needs a CEMPolicy, got {type(policy).__name__}; for a '
                      'SavedModel set its exploration variables instead (see '
                      'set_saved_model_exploration)')
    self._policy = policy
    self._greedy = greedy
    self.name = name or ('qtopt' if isinstance(policy, CEMPolicy) else 'saved_model')
    self._action = None
    if isinstance(policy, tf_policy.TFPolicy) and not greedy:
      spec = tf.nest.map_structure(
          lambda s: tf.TensorSpec([None] + s.shape.as_list(), s.dtype, s.name),
          policy.time_step_spec)
      self._action = tf.function(lambda time_step: policy.action(time_step).action,
                                 input_signature=[spec], autograph=False)

  def __call__(self, observations, env_ids=None, time_steps=None):
    del env_ids  # unused: the policy is the same for every env
    k = len(next(iter(observations.values())))
    if self._greedy:
      actions = self._policy.greedy_action(
          {key: tf.convert_to_tensor(value) for key, value in observations.items()})
    else:
      time_step = _batched_time_step(observations, time_steps)
      if self._action is not None:
        actions = self._action(time_step)
      else:  # a loaded SavedModel: action(time_step, policy_state)
        actions = self._policy.action(time_step, ()).action
    return _check_actions(actions, k, f'policy {self.name}')


def greedy_action_fn(policy, name=None) -> PolicyActionFn:
  """``obs_batch -> actions [K, 8]`` with the greedy CEM action of a ``CEMPolicy``.

  For a SavedModel (no ``CEMPolicy`` object) use ``policy_action_fn`` after
  ``set_saved_model_exploration(saved, 0, 0)``.
  """
  return PolicyActionFn(policy, greedy=True, name=name)


def policy_action_fn(policy, name=None) -> PolicyActionFn:
  """``obs_batch -> actions [K, 8]`` through ``policy.action`` (a TFPolicy or a SavedModel)."""
  return PolicyActionFn(policy, greedy=False, name=name)


def set_saved_model_exploration(saved_policy, epsilon=0.0, noise_std=0.0) -> bool:
  """Sets a loaded CEMPolicy SavedModel's exploration variables; False if it has none."""
  found = {}
  for variable in getattr(saved_policy, 'model_variables', ()):
    base = variable.name.split('/')[-1].split(':')[0]
    if base in (EPSILON_VARIABLE, NOISE_STD_VARIABLE):
      found[base] = variable
  if len(found) != 2:
    return False
  found[EPSILON_VARIABLE].assign(float(epsilon))
  found[NOISE_STD_VARIABLE].assign(float(noise_std))
  return True


class ScriptedActionFn:
  """Batched action function over per-env Python policies (``reset()``, ``action(time_step)``).

  ``make_policy(env, seed)`` builds a policy for one env; it is called before every episode
  (``begin_episode``) with the episode's seed, so a seeded rollout replays exactly (as
  ``actors.collect`` does), or once per env when the rollout gives no seeds.
  """

  def __init__(self, make_policy: Callable, name: str = 'scripted'):
    self._make_policy = make_policy
    self._policies = {}
    self.name = name

  def begin_episode(self, env_id, env, seed=None):
    if seed is not None or env_id not in self._policies:
      self._policies[env_id] = self._make_policy(env, seed)
    self._policies[env_id].reset()

  def __call__(self, observations, env_ids=None, time_steps=None):
    del observations  # the per-env policies read their own time steps
    if env_ids is None or time_steps is None:
      raise ValueError(f'{self.name} action function needs env_ids and time_steps (it acts per '
                       'env); call it through rollout.run_episodes')
    missing = [i for i in env_ids if i not in self._policies]
    if missing:
      raise ValueError(f'{self.name}: no policy for envs {missing}; begin_episode(env_id, env, '
                       'seed) must be called first (run_episodes does)')
    actions = [self._policies[i].action(t) for i, t in zip(env_ids, time_steps)]
    return _check_actions(np.stack(actions), len(env_ids), f'{self.name} policies')


# 'oracle': the scripted policy with no aim or exploration noise and no early closing. It reads
# the simulator's object positions, so it is a reference ceiling for evaluation, not a
# baseline a learner could match from pixels alone.
SCRIPTED_POLICY_NAMES = ('scripted', 'random', 'oracle')
_ORACLE_KWARGS = dict(noise_std=0.0, aim_std=0.0, early_close_prob=0.0)


def scripted_action_fn(name: str = 'scripted', **kwargs) -> ScriptedActionFn:
  """'scripted' / 'oracle' (ScriptedGraspPolicy) or 'random' (RandomPolicy) per env.

  ``kwargs`` go to the policy class (for 'oracle' on top of its noise-free settings).
  """
  from rl_cyclegan.envs import scripted  # pylint: disable=g-import-not-at-top
  classes = {'scripted': scripted.ScriptedGraspPolicy, 'random': scripted.RandomPolicy,
             'oracle': scripted.ScriptedGraspPolicy}
  if name not in classes:
    raise ValueError(f'unknown scripted policy {name!r}; valid: {", ".join(classes)}')
  cls = classes[name]
  if name == 'oracle':
    kwargs = dict(_ORACLE_KWARGS, **kwargs)
  return ScriptedActionFn(lambda env, seed: cls(env, seed=seed, **kwargs), name=name)
