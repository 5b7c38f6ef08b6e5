"""A single-Q QT-Opt learner (Kalashnikov et al. 2018) on sim and/or real transitions.

Used for the baselines of paper Tables 1-3 (Sim-Only, Randomized-Sim, Real-Only, Sim+Real) and
for the final phase of RL-CycleGAN (paper Section 4 and Appendix A: "freezing the Sim2Real
generator and retraining a Q(s, a) from scratch"): with ``image_transform`` = the frozen
generator G, the sim images (s and s') are mapped by G before Q sees them; real images are not.

One train step on a sim batch (B_s transitions) and/or a real batch (B_r transitions):

  V(s')   = clipped double-Q of the two lagged target networks (CEM argmax of target 1)
  y       = r + gamma * (1 - done) * V(s')                               (eq. 3 / 5)
  l_i     = d(Q(s_i, a_i), y_i)                                          (log loss, QT-Opt)
  loss    = (sum_{sim} l_i + lambda_RL-real * sum_{real} l_i) / (B_s + B_r)

i.e. the paper's L_RL = sum_Sim2Real L + lambda_RL-real * sum_Real L (Appendix A), normalized
by the batch size: eq. 5 as ``core.td_loss``, the TD loss of the RL-CycleGAN learner too.
lambda_RL-real is ``real_loss_weight``: 0.1 with 10,000 real episodes or fewer, 2.0 with 80,000
or more (paper Table 6). ``td_sim`` / ``td_real`` report the unweighted mean TD loss of each part.
"""

import collections
from typing import Callable, Optional, Sequence, Union

import gin
import tensorflow as tf

from rl_cyclegan import losses
from rl_cyclegan import specs
from rl_cyclegan.learners import core
from rl_cyclegan.learners import critic as critic_lib
from rl_cyclegan.networks import q_network as q_network_lib

LossInfo = collections.namedtuple('LossInfo', [
    'loss',  # the weighted TD loss that is minimized (see module docstring)
    'td_sim',  # mean TD loss over the sim rows (NaN without a sim batch)
    'td_real',  # mean TD loss over the real rows (NaN without a real batch)
    'mean_q',  # mean Q(s, a) = sigmoid(logit) over the batch
    'target_q',  # mean TD target r + gamma * (1 - done) * V(s')
    'q_std',  # std of Q(s, a) over the batch: the collapse monitor (paper Appendix A)
])

# Paper Appendix A / Table 6: lambda_RL-real = 0.1 with <= 10,000 real episodes.
PAPER_REAL_LOSS_WEIGHT_SMALL = 0.1
# ... and 2.0 with >= 80,000 real episodes.
PAPER_REAL_LOSS_WEIGHT_LARGE = 2.0


@gin.configurable
class QTOptLearner(tf.Module):
  """Owns one QTOptCritic (online Q, two lagged targets, Adam) and runs the TD train step."""

  def __init__(self,
               crop_size: Sequence[int] = specs.DEFAULT_CROP_SIZE,
               q_network_fn: Callable[..., tf.Module] = q_network_lib.GraspingQNetwork,
               real_loss_weight: float = PAPER_REAL_LOSS_WEIGHT_SMALL,
               image_transform: Optional[Callable[[tf.Tensor], tf.Tensor]] = None,
               allowed_modes: Optional[Sequence[bool]] = None,
               learning_rate: float = 1e-4,
               beta_1: float = 0.1,
               beta_2: float = 0.999,
               learning_rate_boundaries: Sequence[int] = (),
               learning_rate_decay: float = 0.1,
               mixed_precision: Union[bool, str] = False,
               strategy: Optional[tf.distribute.Strategy] = None,
               name: str = 'qtopt'):
    """Creates the Q-network, its target networks and optimizer.

    Args:
      crop_size: (height, width) of the images Q sees (paper: 472x472; CPU: 64x64).
      q_network_fn: Q-network constructor, ``q_network_fn(crop_size=..., name=...)``.
      real_loss_weight: lambda_RL-real on TD terms of real transitions (paper Appendix A,
        Table 6: 0.1 with <= 10,000 real episodes, 2.0 with >= 80,000).
      image_transform: optional frozen map of float images [B, h, w, 3] in [-1, 1] to the same
        (e.g. the Sim2Real generator G, called with ``training=False`` if it accepts it),
        applied to the sim images s and s' only. Its variables are never updated here.
      allowed_modes: optional mask over (move, close, open, terminate) for the CEM of the
        target value (e.g. ``policies.AUTO_DESCEND_MODES``); None leaves QTOptCritic's (gin)
        setting.
      learning_rate, beta_1, beta_2: Adam (paper Appendix A: 1e-4, 0.1, 0.999).
      learning_rate_boundaries, learning_rate_decay: optional step decay: the rate is
        multiplied by ``learning_rate_decay`` at each boundary (train steps; the paper keeps
        it constant). The schedule follows the train step counter, so resumed runs continue on it.
      mixed_precision: False: float32. True: build the Q-networks under 'mixed_bfloat16'
        (paper Appendix A: bfloat16; variables, logits and losses stay float32) where the CPU
        has native bf16 arithmetic, else float32 with a warning. 'force': bfloat16 on any CPU.
        ``compute_dtype`` records what was used ('bfloat16' or 'float32').
      strategy: a tf.distribute strategy; networks and the optimizer are created in its scope.
        Pass per-replica batches (``distribute``) to ``train_step``. An ``image_transform``
        with variables must be created in the same scope.
      name: module name.
    """
    super().__init__(name=name)
    self.crop_size = tuple(int(s) for s in crop_size)
    self.observation_spec = specs.model_observation_spec(self.crop_size)
    self.real_loss_weight = float(real_loss_weight)
    if self.real_loss_weight < 0:
      raise ValueError(f'real_loss_weight (lambda_RL-real) must be >= 0, got {real_loss_weight}')
    self.image_transform = image_transform
    self.mixed_precision = mixed_precision
    policy, self.compute_dtype = core.precision(mixed_precision, 'QTOptLearner.mixed_precision')
    self.strategy = strategy or tf.distribute.get_strategy()
    with self.strategy.scope(), core.dtype_policy(policy):
      critic_kwargs = {} if allowed_modes is None else {'allowed_modes': allowed_modes}
      self.critic = critic_lib.QTOptCritic(
          q_network_fn(crop_size=self.crop_size, name='Q'), name='Q',
          learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
          learning_rate_boundaries=learning_rate_boundaries,
          learning_rate_decay=learning_rate_decay, **critic_kwargs)
      self.train_step_counter = tf.Variable(0, dtype=tf.int64, trainable=False,
                                            name='train_step')
    self._train_step_fn = tf.function(self._distributed_train_step)

  @property
  def q_network(self):
    return self.critic.network

  def checkpoint_items(self):
    """Everything needed to resume: online Q (as ``q_network``), targets, Adam, step counter.

    ``tf.train.Checkpoint(**learner.checkpoint_items())`` holds the online network under
    ``q_network``, which is what ``policy_eval.load_policy_from_checkpoint`` restores.
    """
    return {
        'q_network': self.critic.network,
        'q_target_1': self.critic.target_1,
        'q_target_2': self.critic.target_2,
        'q_optimizer': self.critic.optimizer,
        'train_step': self.train_step_counter,
    }

  # -------------------------------------------------------------------------------------------
  def distribute(self, batch):
    """Splits a (global) batch along axis 0 into per-replica values of ``self.strategy``."""
    return core.distribute(self.strategy, batch)

  @property
  def needs_returns(self) -> bool:
    """True if train_step needs Monte Carlo returns (``QTOptCritic.mc_return_weight`` > 0)."""
    return self.critic.mc_return_weight > 0.0

  def train_step(self, sim_batch: Optional[specs.Transition],
                 real_batch: Optional[specs.Transition] = None,
                 sim_returns=None, real_returns=None) -> LossInfo:
    """One TD step on a sim batch and/or a real batch (specs.Transition of model observations).

    Either batch may be None (Sim-Only: no real batch; Real-Only: no sim batch), not both.
    ``sim_returns`` / ``real_returns`` (float32 [B_s] / [B_r]) are the batches' Monte Carlo
    returns-to-go, needed when ``needs_returns``. Raises ValueError naming the spec on
    malformed input.
    """
    if sim_batch is None and real_batch is None:
      raise ValueError('train_step needs a sim_batch, a real_batch or both; got neither')
    for batch, returns, what in ((sim_batch, sim_returns, 'sim_batch'),
                                 (real_batch, real_returns, 'real_batch')):
      if batch is not None:
        core.check_batch(tf.nest.map_structure(core.local_value, batch), self.observation_spec,
                         what)
        if self.needs_returns and returns is None:
          raise ValueError(f'QTOptCritic.mc_return_weight={self.critic.mc_return_weight} '
                           f'needs {what}\'s Monte Carlo returns (replays built with '
                           'return_discount); got none')
    if not self.needs_returns:
      sim_returns = real_returns = None
    return self._train_step_fn(sim_batch, real_batch, sim_returns, real_returns)

  def _distributed_train_step(self, sim_batch, real_batch, sim_returns=None, real_returns=None):
    return core.train_step_across_replicas(
        self.strategy, self._replica_step, (sim_batch, real_batch, sim_returns, real_returns),
        [self.critic], self.train_step_counter)

  def _transform(self, image):
    """The frozen image_transform (e.g. G) on sim images; float32 [B, h, w, 3], no gradient."""
    try:
      out = self.image_transform(image, training=False)
    except TypeError:
      out = self.image_transform(image)
    return tf.stop_gradient(tf.cast(out, tf.float32))

  def _sim_observation(self, observation):
    if self.image_transform is None:
      return observation
    return {'image': self._transform(observation['image']),  # [B_s, h, w, 3]
            'gripper_state': observation['gripper_state']}  # [B_s, 2]

  def _replica_step(self, sim, real, sim_returns=None, real_returns=None):
    parts = []  # (batch, lambda, observation, next_observation, returns)
    if sim is not None:
      parts.append((sim, 1.0, self._sim_observation(sim.observation),
                    self._sim_observation(sim.next_observation), sim_returns))
    if real is not None:
      parts.append((real, self.real_loss_weight, real.observation, real.next_observation,
                    real_returns))
    sizes = [tf.shape(p[0].reward)[0] for p in parts]  # [B_s], [B_r]

    def cat(fn):
      return tf.concat([fn(p) for p in parts], axis=0)

    observation = {k: cat(lambda p, k=k: p[2][k]) for k in ('image', 'gripper_state')}
    next_observation = {k: cat(lambda p, k=k: p[3][k]) for k in ('image', 'gripper_state')}
    action = cat(lambda p: p[0].action)  # [B, 8], B = B_s + B_r
    done = cat(lambda p: p[0].done)  # [B]
    returns = cat(lambda p: p[4]) if self.needs_returns else None  # [B]

    # V(s') from the lagged target networks (clipped double-Q, CEM): a constant, off the tape.
    next_value = self.critic.target_value(next_observation, done)  # [B]

    with tf.GradientTape() as tape:
      logits, _ = self.critic.network((observation, action), training=True)  # [B]
      loss, target = core.td_loss(self.critic, logits, [p[:2] for p in parts], next_value,
                                  returns)  # eq. 5; target [B]
      loss = losses.check_finite(loss, 'td_loss')
      scaled_loss = loss * core.replica_scale()  # the optimizer sums over replicas
    core.apply_gradients(tape, scaled_loss,
                         [(self.critic.trainable_variables, self.critic.optimizer)])

    # Per-part unweighted TD losses for monitoring.
    nan = tf.constant(float('nan'))
    td = {'sim': nan, 'real': nan}
    pieces_logits = tf.split(logits, sizes) if len(parts) > 1 else [logits]
    pieces_target = tf.split(target, sizes) if len(parts) > 1 else [target]
    names = (['sim'] if sim is not None else []) + (['real'] if real is not None else [])
    for name, l, t in zip(names, pieces_logits, pieces_target):
      td[name] = losses.td_loss(l, t, distance=self.critic.td_distance)
    q = tf.sigmoid(logits)  # [B]
    return LossInfo(loss=loss, td_sim=td['sim'], td_real=td['real'], mean_q=tf.reduce_mean(q),
                    target_q=tf.reduce_mean(target), q_std=tf.math.reduce_std(q))
