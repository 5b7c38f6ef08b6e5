"""A QT-Opt critic: one online Q-network, two lagged target networks and its own Adam.

QT-Opt (Kalashnikov et al. 2018, Sec. 4 and Appendix) estimates V(s') with clipped double-Q:
the action is the CEM argmax of the first target network, the value is the minimum of the two
target networks at that action. The first target network is a Polyak average of the online
network (QT-Opt: 0.9999 per step, i.e. ``tau`` = 1e-4); the second is a lagged copy of the first,
refreshed every ``target_2_period`` steps (QT-Opt: 6000).

Used twice by the joint RL-CycleGAN learner (Q_sim and Q_real) and once by the single-Q
QT-Opt learner.
"""

from typing import Optional, Sequence

import gin
import tensorflow as tf
from tf_agents.utils import common

from rl_cyclegan import checkpoints
from rl_cyclegan import qtopt


def learning_rate_schedule(learning_rate, boundaries=(), decay=0.1):
  """Step decay: ``learning_rate`` up to the first boundary, times ``decay`` after each one.

  Returns ``fn(step) -> rate`` (a Keras ``PiecewiseConstantDecay``: steps 1..b0 get
  ``learning_rate``, b0+1..b1 ``learning_rate * decay``, ...; constant without boundaries).
  The critic assigns it to the optimizer's rate before every update, so a resumed run follows
  the configured schedule, not the rate stored in its checkpoint.
  """
  learning_rate = float(learning_rate)
  boundaries = [int(b) for b in boundaries]
  if not learning_rate >= 0:
    raise ValueError(f'learning rate must be >= 0, got {learning_rate}')
  if any(b <= 0 for b in boundaries) or boundaries != sorted(set(boundaries)):
    raise ValueError('learning-rate boundaries must be positive, strictly increasing train '
                     f'steps, got {boundaries}')
  if not 0.0 < decay <= 1.0:
    raise ValueError(f'learning-rate decay must be in (0, 1], got {decay}')
  if not boundaries:
    return lambda step: tf.constant(learning_rate, tf.float32)
  values = [learning_rate * decay**i for i in range(len(boundaries) + 1)]
  return tf.keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def make_adam(learning_rate=1e-4, beta_1=0.1, beta_2=0.999, name='adam'):
  """Adam with the paper's settings (Appendix A: lr 1e-4, beta1 0.1, beta2 0.999)."""
  return tf.keras.optimizers.Adam(
      learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, name=name)


def build_optimizer(optimizer, variables):
  """Builds optimizer slots up front (needed for checkpoints and for one optimizer per net)."""
  optimizer.build(variables)
  return optimizer


@gin.configurable
class QTOptCritic(tf.Module):
  """Online Q-network + two target networks + optimizer, with V(s') and target updates.

  Its TD loss (eq. 5) is ``learners.core.td_loss``, which reads gamma, td_distance and
  mc_return_weight from here.
  """

  def __init__(self,
               q_network,
               gamma: float = 0.9,
               target_update_tau: float = 1e-4,
               target_2_period: int = 6000,
               td_distance: str = 'log_loss',
               cem_num_samples: int = 64,
               cem_num_iterations: int = 2,
               cem_num_elites: int = 6,
               allowed_modes: Optional[Sequence[float]] = None,
               learning_rate: float = 1e-4,
               beta_1: float = 0.1,
               beta_2: float = 0.999,
               learning_rate_boundaries: Sequence[int] = (),
               learning_rate_decay: float = 0.1,
               skip_terminal_targets: bool = True,
               mc_return_weight: float = 0.0,
               name: str = 'critic'):
    """Creates the critic.

    Args:
      q_network: a GraspingQNetwork (variables are created here if needed).
      gamma: discount (QT-Opt: 0.9).
      target_update_tau: Polyak weight of the online net in target 1 per step (QT-Opt: 1e-4).
      target_2_period: steps between copies of target 1 into target 2 (QT-Opt: 6000).
      td_distance: 'log_loss' (QT-Opt) or 'mse'.
      cem_num_samples, cem_num_iterations, cem_num_elites: CEM for the target action
        (QT-Opt: 64, 2, 6).
      allowed_modes: optional 0/1 mask over (move, close, open, terminate) for CEM.
      learning_rate, beta_1, beta_2: Adam (paper Appendix A).
      learning_rate_boundaries, learning_rate_decay: optional step decay of the learning
        rate at these optimizer steps (``learning_rate_schedule``); none in the paper.
      skip_terminal_targets: V(s') (CEM over the target networks) only for non-terminal
        transitions, whose targets use it; False keeps static batch shapes (XLA, TPUs).
      mc_return_weight: w in [0, 1]: the target becomes (1 - w) * (r + gamma V(s')) + w * G,
        G the discounted Monte Carlo return-to-go of the transition's episode (stored by
        replays built with ``return_discount=gamma``). 0 = QT-Opt. Not in the paper: Monte
        Carlo returns rank the early moves of an episode by what followed them, where the
        bootstrapped target of a step that a later step can still correct is nearly flat
        (docs/results.md; Quillen et al. 2018 compare both on this grasping task).
      name: module name; prefixes the target networks' names.
    """
    super().__init__(name=name)
    if not 0.0 <= float(mc_return_weight) <= 1.0:
      raise ValueError(f'mc_return_weight must be in [0, 1], got {mc_return_weight}')
    self.mc_return_weight = float(mc_return_weight)
    self.network = q_network
    self.network.create_variables()
    self.target_1 = q_network.copy(name=f'{name}_target_1')
    self.target_1.create_variables()
    self.target_2 = q_network.copy(name=f'{name}_target_2')
    self.target_2.create_variables()
    self.gamma = gamma
    self.target_update_tau = target_update_tau
    self.target_2_period = target_2_period
    self.td_distance = td_distance
    self.skip_terminal_targets = bool(skip_terminal_targets)
    self._cem_kwargs = dict(num_samples=cem_num_samples, num_iterations=cem_num_iterations,
                            num_elites=cem_num_elites, allowed_modes=allowed_modes)
    self.optimizer = build_optimizer(
        make_adam(learning_rate, beta_1, beta_2, name=f'{name}_adam'),
        self.network.trainable_variables)
    self.learning_rate_fn = learning_rate_schedule(
        learning_rate, learning_rate_boundaries, learning_rate_decay)
    # Targets start equal to the online network.
    common.soft_variables_update(self.network.variables, self.target_1.variables, tau=1.0)
    common.soft_variables_update(self.network.variables, self.target_2.variables, tau=1.0)

  @property
  def trainable_variables(self):
    return self.network.trainable_variables

  def initialize_from(self, checkpoint_path: str, key: str = 'q_network'):
    """Loads the online network from a checkpoint (``key``) and copies it into both targets.

    For warm starts, e.g. the joint RL-CycleGAN critics from a Sim-Only QT-Opt run (not in
    the paper, which trains every network from scratch). ``checkpoint_path``: a prefix or a
    directory with a "checkpoint" index. Raises FileNotFoundError / ValueError naming the
    file and the key when there is no checkpoint or no compatible network under ``key``.
    """
    path = checkpoints.restore({key: self.network}, checkpoint_path,
                               f'{self.name} initialization')
    common.soft_variables_update(self.network.variables, self.target_1.variables, tau=1.0)
    common.soft_variables_update(self.network.variables, self.target_2.variables, tau=1.0)
    return path

  def target_value(self, next_observation, done=None, seed=None):
    """V(s') by clipped double-Q over the two target networks. [B] in [0, 1], no gradient.

    With ``done`` (float32 [B]) and ``skip_terminal_targets``, terminal rows are not
    evaluated and get 0 (``losses.td_target`` masks them either way). ``seed``: CEM's
    stateless seed (int [2]); None draws a fresh one.
    """
    if not self.skip_terminal_targets:
      done = None
    return qtopt.target_value(self.target_1, self.target_2, next_observation, done=done,
                              seed=seed, **self._cem_kwargs)

  def mix_returns(self, td_target, returns):
    """(1 - w) * td_target + w * returns, w = ``mc_return_weight``; [B] -> [B].

    ``returns`` may be None only when w = 0 (then td_target is returned as is).
    """
    if self.mc_return_weight == 0.0:
      return td_target
    if returns is None:
      raise ValueError(f'{self.name}: mc_return_weight={self.mc_return_weight} needs the '
                       'Monte Carlo returns of the batch (replays built with return_discount)')
    w = self.mc_return_weight
    return (1.0 - w) * td_target + w * tf.cast(returns, tf.float32)

  def set_learning_rate(self, step):
    """Sets Adam's rate to the configured schedule at train step ``step`` (cross-replica)."""
    rate = tf.cast(self.learning_rate_fn(step), tf.float32)
    self.optimizer.learning_rate.assign(rate)
    return rate

  def update_targets(self, step):
    """Polyak update of target 1; every ``target_2_period`` steps copy target 1 into target 2.

    Call in cross-replica context after the optimizer step; ``step`` is the new step count.
    """
    common.soft_variables_update(self.network.variables, self.target_1.variables,
                                 tau=self.target_update_tau)
    copy_now = tf.equal(tf.math.floormod(step, self.target_2_period), 0)

    def _copy():
      common.soft_variables_update(self.target_1.variables, self.target_2.variables, tau=1.0)
      return tf.constant(True)

    tf.cond(copy_now, _copy, lambda: tf.constant(False))
