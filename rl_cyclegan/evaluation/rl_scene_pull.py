"""Where L_RL-scene pulls G and F: the loss at the run's own generators against at the identity.

Paper eq. 4 compares Q_sim(x), Q_real(G(x)), Q_sim(F(G(x))) on sim states, and Q_real(y),
Q_sim(F(y)), Q_real(G(F(y))) on real ones. When the two critics are the same function (our
joint runs warm-start both from one Sim-Only Q, gin/table1_joint.gin), every q of a triple is
the same number at G = F = identity, so L_RL-scene is exactly 0 there: the loss then pulls the
generators toward the untranslated image in whatever the critics look at, against L_GAN. Once
the critics have trained apart, the identity costs something. ``rl_scene_pull`` measures both
on fixed held-out paired states, so a run can tell from its summaries when (and whether) its
own G and F satisfy the critics better than no translation at all.

Evaluation only: nothing is trained, and every network runs in inference mode.
"""

from typing import Callable, Dict

import numpy as np
import tensorflow as tf

from rl_cyclegan import losses
from rl_cyclegan import specs

ACTIONS_PER_STATE = 16  # random move actions per state, the same for every measurement


def _to_float(images):
  return tf.convert_to_tensor(np.asarray(images), tf.float32) / 127.5 - 1.0


def state_action_q(gripper_height, actions_per_state: int = ACTIONS_PER_STATE,
                   seed: int = 0) -> Callable:
  """Q at fixed random move actions of N paired states: the actions every measurement shares.

  Args:
    gripper_height: [N] metres (the gripper is open in paired states).
    actions_per_state: random move actions (uniform dx, dy, dz, rotation) per state.
    seed: of the actions.

  Returns:
    q(net, images): images float32 [N, h, w, 3] in [-1, 1] -> the Q probabilities
    [N * actions_per_state] of ``net`` (a ``GraspingQNetwork``, inference mode), state-major.
  """
  n = len(gripper_height)
  rng = np.random.default_rng(seed)
  continuous = rng.uniform(-1.0, 1.0, size=(n * actions_per_state, 4)).astype(np.float32)
  actions = specs.encode_action(continuous, np.zeros(len(continuous), np.int32))
  gripper = np.stack([np.zeros(n), np.asarray(gripper_height, np.float64)], -1)
  gripper = tf.constant(np.repeat(gripper, actions_per_state, axis=0), tf.float32)

  def q(net, images):  # [N, h, w, 3] -> [N * actions_per_state]
    images = tf.repeat(images, actions_per_state, axis=0)
    logits, _ = net(({'image': images, 'gripper_state': gripper}, actions), training=False)
    return tf.sigmoid(logits)

  return q


def rl_scene_pull(q_sim, q_real, g: Callable, f: Callable, sim, real, gripper_height,
                  actions_per_state: int = ACTIONS_PER_STATE, seed: int = 0) -> Dict[str, float]:
  """L_RL-scene (eq. 4, unweighted) with the run's G and F and with G = F = identity.

  Args:
    q_sim, q_real: the critics' Q-networks (``GraspingQNetwork``), called in inference mode.
    g, f: images float32 [N, h, w, 3] in [-1, 1] -> translated images (sim->real, real->sim).
    sim, real: uint8 [N, h, w, 3] crops of the same N states (sim render x, true real render
      y).
    gripper_height: [N] metres (the gripper is open in paired states).
    actions_per_state: random move actions (uniform dx, dy, dz, rotation) per state; every
      q of eq. 4 is taken at the same (state, action) pairs.
    seed: of the actions.

  Returns:
    {'own': L with G and F, 'identity': L with neither, 'own_sim' / 'own_real' /
    'identity_sim' / 'identity_real': each side's triple alone, 'critic_disagreement': mean
    |Q_sim(x, a) - Q_real(x, a)| on the sim states (0 when the critics are one function)}.
  """
  n = len(sim)
  if len(real) != n or len(gripper_height) != n:
    raise ValueError(f'rl_scene_pull: {n} sim states, {len(real)} real states and '
                     f'{len(gripper_height)} gripper heights; expected one of each per state')
  q = state_action_q(gripper_height, actions_per_state, seed)
  x, y = _to_float(sim), _to_float(real)

  def loss(g_fn, f_fn):
    g_x, f_y = g_fn(x), f_fn(y)
    sim_q = [q(q_sim, x), q(q_real, g_x), q(q_sim, f_fn(g_x))]
    real_q = [q(q_real, y), q(q_sim, f_y), q(q_real, g_fn(f_y))]
    zeros = [tf.zeros_like(sim_q[0])] * 3  # the other triple: d(0, 0) = 0
    return (float(losses.rl_scene_consistency_loss(*sim_q, *zeros)),
            float(losses.rl_scene_consistency_loss(*zeros, *real_q)), sim_q)

  own_sim, own_real, _ = loss(g, f)
  identity_sim, identity_real, (q_x, q_x_real, _) = loss(lambda i: i, lambda i: i)
  return {'own': own_sim + own_real, 'identity': identity_sim + identity_real,
          'own_sim': own_sim, 'own_real': own_real, 'identity_sim': identity_sim,
          'identity_real': identity_real,
          'critic_disagreement': float(tf.reduce_mean(tf.abs(q_x - q_x_real)))}
