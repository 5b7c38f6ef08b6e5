"""What the two learners share: the QT-Opt learner (qtopt.py) and the RL-CycleGAN learner.

* ``check_batch``: a transition batch against the model observation spec.
* ``precision``, ``dtype_policy``: the Keras dtype policy the networks are built under (float32,
  or mixed bfloat16 where the CPU has native bf16 or it is forced; ``rl_cyclegan.hardware``).
* ``distribute``, ``local_value``: per-replica batches, and the first local part of one.
* ``td_loss``: L_RL of paper eq. 5 for one QT-Opt critic, the TD loss both learners minimize.
* ``replica_scale``, ``apply_gradients``, ``train_step_across_replicas``: the synchronous
  train step (loss scaling, gradients and updates, and the cross-replica part).

No learner imports another learner; both import this module.
"""

import contextlib
from typing import Callable, Optional, Sequence, Tuple

import tensorflow as tf

from rl_cyclegan import hardware
from rl_cyclegan import losses
from rl_cyclegan import specs


# ----------------------------------------------------------------------------- inputs

def check_batch(batch, observation_spec, what):
  """Raises ValueError naming the spec if a transition batch does not match it."""
  if not isinstance(batch, specs.Transition):
    raise ValueError(f'{what}: expected a specs.Transition(observation, action, reward, '
                     f'next_observation, done), got {type(batch).__name__}')
  for key in ('observation', 'next_observation'):
    obs = getattr(batch, key)
    if not isinstance(obs, dict) or set(obs) != set(observation_spec):
      raise ValueError(f'{what}.{key}: expected a dict with keys {sorted(observation_spec)}, '
                       f'got {obs!r:.200}')
    for name, spec in observation_spec.items():
      specs.check_tensor(obs[name], spec, f'{what}.{key}[{name!r}]')
  specs.check_tensor(batch.action, specs.action_spec(), f'{what}.action')
  scalar = tf.TensorSpec([], tf.float32)
  specs.check_tensor(batch.reward, scalar, f'{what}.reward')
  specs.check_tensor(batch.done, scalar, f'{what}.done')


def precision(mixed_precision, binding: str) -> Tuple[Optional[str], str]:
  """(dtype policy name or None, compute dtype) for a learner's ``mixed_precision``.

  ``mixed_precision`` is False, True or 'force' (``hardware.dtype_policy_name``: True falls
  back to float32, with a warning naming ``binding``, on a CPU without native bf16). The
  compute dtype is 'bfloat16' or 'float32', what the learner records as ``compute_dtype``.
  """
  policy = hardware.dtype_policy_name(mixed_precision, binding)
  return policy, 'bfloat16' if policy else 'float32'


@contextlib.contextmanager
def dtype_policy(name: Optional[str]):
  """Temporarily sets the global Keras dtype policy (e.g. 'mixed_bfloat16') to build networks."""
  if not name:
    yield
    return
  previous = tf.keras.mixed_precision.global_policy()
  tf.keras.mixed_precision.set_global_policy(name)
  try:
    yield
  finally:
    tf.keras.mixed_precision.set_global_policy(previous)


# ----------------------------------------------------------------------------- distribution

def distribute(strategy: tf.distribute.Strategy, batch):
  """Splits a global batch (a nest of tensors, leading dim B) into per-replica values.

  B must be divisible by ``strategy.num_replicas_in_sync``; with one replica (or no batch)
  the batch is returned as is.
  """
  n = strategy.num_replicas_in_sync
  if batch is None or n == 1:
    return batch

  def value_fn(ctx):
    return tf.nest.map_structure(lambda t: tf.split(t, n, axis=0)[ctx.replica_id_in_sync_group],
                                 batch)

  return strategy.experimental_distribute_values_from_function(value_fn)


def local_value(value):
  """First local component of a (possibly) distributed value, for static checks."""
  values = getattr(value, 'values', None)
  return values[0] if isinstance(values, tuple) else value


def replica_seed(step: tf.Variable, stream: int) -> tf.Tensor:
  """A stateless seed [2] for (train step, replica, stream), in replica context.

  The same on every run of the same step and global replica id, whichever strategy or worker
  runs it, so a step split over workers draws what the same split in one process draws.
  """
  replica = tf.distribute.get_replica_context().replica_id_in_sync_group
  return tf.stack([tf.cast(step, tf.int64),
                   tf.cast(replica, tf.int64) * 16 + int(stream)])


def replica_scale() -> tf.Tensor:
  """1 / replicas in sync, in replica context. Optimizers sum gradients over replicas, so a
  replica's loss times this scale gives the gradient of the global mean."""
  num_replicas = tf.distribute.get_replica_context().num_replicas_in_sync
  return 1.0 / tf.cast(num_replicas, tf.float32)


def train_step_across_replicas(strategy: tf.distribute.Strategy, replica_step: Callable,
                               args: tuple, critics: Sequence, train_step_counter: tf.Variable):
  """The cross-replica part of one train step of either learner.

  Sets each critic's Adam rate to its configured schedule (the update that makes train step k
  uses schedule(k), so steps 1..boundary run at the initial rate, also after a resume), runs
  ``replica_step(*args)`` on every replica, averages its outputs over the replicas, counts the
  step and updates the critics' target networks (Polyak average, periodic copy).

  Returns:
    the replica-mean of ``replica_step``'s outputs (a nest of scalars).
  """
  for critic in critics:
    critic.set_learning_rate(train_step_counter + 1)
  per_replica = strategy.run(replica_step, args=args)
  info = tf.nest.map_structure(
      lambda t: strategy.reduce(tf.distribute.ReduceOp.MEAN, t, axis=None), per_replica)
  train_step_counter.assign_add(1)
  for critic in critics:
    critic.update_targets(train_step_counter)
  return info


# ----------------------------------------------------------------------------- losses, updates

def td_loss(critic, logits: tf.Tensor, sources: Sequence[Tuple[specs.Transition, float]],
            next_value: tf.Tensor, returns: Optional[tf.Tensor] = None):
  """L_RL of paper eq. 5 for one QT-Opt critic: the TD loss both learners minimize.

    y_i = r_i + gamma * (1 - done_i) * V(s'_i)              (losses.td_target)
    L   = sum_i lambda_i * d(Q(s_i, a_i), y_i) / N          (losses.td_loss, d = td_distance)

  V(s') is the clipped double-Q value of the critic's two target networks
  (``critic.target_value``, i.e. ``rl_cyclegan.qtopt.target_value``), a constant. lambda_i is
  1 on rows from sim transitions and lambda_RL-real on rows from real ones (paper Appendix A:
  L_RL = sum_Sim2Real L + lambda_RL-real * sum_Real L, here divided by N). With
  ``critic.mc_return_weight`` = w > 0 (not in the paper) the target is
  (1 - w) * y_i + w * returns_i.

  Args:
    critic: the ``QTOptCritic`` whose gamma, td_distance and mc_return_weight apply.
    logits: the online network's Q(s, a) logits, [N].
    sources: (transition batch, lambda) pairs in the order of the rows of ``logits``: each
      batch gives its rows' reward and done ([B_k] each, sum B_k = N), lambda their weight.
    next_value: V(s'), [N].
    returns: Monte Carlo returns-to-go, [N]; needed only with mc_return_weight > 0.

  Returns:
    (float32 scalar loss, target [N]).
  """
  reward = tf.concat([batch.reward for batch, _ in sources], axis=0)  # [N]
  done = tf.concat([batch.done for batch, _ in sources], axis=0)  # [N]
  weights = tf.concat([tf.fill(tf.shape(batch.reward), tf.constant(weight, tf.float32))
                       for batch, weight in sources], axis=0)  # [N]
  target = losses.td_target(reward, done, next_value, gamma=critic.gamma)  # [N]
  target = critic.mix_returns(target, returns)  # [N]; as is without Monte Carlo returns
  loss = losses.td_loss(logits, target, distance=critic.td_distance, weights=weights)
  return loss, target


def apply_gradients(tape: tf.GradientTape, loss: tf.Tensor, groups):
  """One backward pass of ``loss`` for all (variables, optimizer) groups, then each applies.

  Variables that get no gradient are skipped; an optimizer none of whose variables gets one
  does not step.
  """
  variables = [v for vs, _ in groups for v in vs]
  grads = tape.gradient(loss, variables)
  i = 0
  for vs, optimizer in groups:
    pairs = [(g, v) for g, v in zip(grads[i:i + len(vs)], vs) if g is not None]
    i += len(vs)
    if pairs:
      optimizer.apply_gradients(pairs)
