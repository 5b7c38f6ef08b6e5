"""QT-Opt's Bellman target value V(s') by clipped double-Q learning (paper Section 3.2).

QT-Opt (Kalashnikov et al., 2018) with Clipped Double-Q (Fujimoto et al., 2018), as RL-CycleGAN
uses it for eqs. 3 and 5:
  a* = argmax_a Q_target1(s', a)                          (by CEM, ``cem.cem_maximize``)
  V(s') = min(Q_target1(s', a*), Q_target2(s', a*)),     Q = sigmoid(logit) in [0, 1].

The Q networks are used through two methods only (see rl_cyclegan/networks/q_network.py):
  net.embed_image(image, training=False) -> embedding [B, h, w, C]
  net.logits_from_embedding(embedding, gripper_state, actions, training=False) -> [B, N]
    for actions [B, N, 8].
Each network embeds the image once; CEM then scores candidate actions from the embedding.
"""

import tensorflow as tf

from rl_cyclegan import cem


def target_value(target_network_1,
                 target_network_2,
                 next_observation,
                 allowed_modes=None,
                 num_samples: int = cem.QTOPT_NUM_SAMPLES,
                 num_iterations: int = cem.QTOPT_NUM_ITERATIONS,
                 num_elites: int = cem.QTOPT_NUM_ELITES,
                 seed=None,
                 initial_std: float = cem.DEFAULT_INITIAL_STD,
                 min_std: float = cem.DEFAULT_MIN_STD,
                 min_mode_prob: float = cem.DEFAULT_MIN_MODE_PROB,
                 done=None) -> tf.Tensor:
  """Clipped double-Q value of the next state, V(s') in [0, 1], as a constant.

  V(s') = min(sigmoid(l1(s', a*)), sigmoid(l2(s', a*))), a* = CEM argmax_a l1(s', a), where
  l1, l2 are the logits of the two target networks (sigmoid is monotonic, so CEM maximizes
  the logits of network 1). Terminal s' are masked by ``losses.td_target``, not here.

  Args:
    target_network_1: target Q network whose CEM argmax defines a*.
    target_network_2: second target Q network.
    next_observation: dict with 'image' float32 [B, H, W, 3] in [-1, 1] and
      'gripper_state' float32 [B, 2].
    allowed_modes: optional bool/0-1 vector [4] over (move, close, open, terminate) for CEM.
    num_samples, num_iterations, num_elites, initial_std, min_std, min_mode_prob: CEM
      settings (QT-Opt: 64 samples, 2 iterations, 6 elites); see ``cem.cem_maximize``.
    seed: optional int or int [2] tensor for CEM's stateless sampling.
    done: optional float32 [B], 1 where s' is terminal. Given, CEM and the target networks
      run only on the non-terminal rows (in 5-step episodes a fifth of a batch) and terminal
      rows get V = 0; the batch shape becomes dynamic, so leave it None under XLA / on TPUs.

  Returns:
    float32 [B], wrapped in ``tf.stop_gradient``.
  """
  if done is not None:
    done = tf.convert_to_tensor(done)
    live = tf.where(done < 0.5)  # int64 [L, 1]

    def live_values():
      value = target_value(
          target_network_1, target_network_2,
          tf.nest.map_structure(lambda t: tf.gather_nd(t, live), next_observation),
          allowed_modes=allowed_modes, num_samples=num_samples, num_iterations=num_iterations,
          num_elites=num_elites, seed=seed, initial_std=initial_std, min_std=min_std,
          min_mode_prob=min_mode_prob)  # [L]
      return tf.scatter_nd(live, value, tf.shape(done, out_type=tf.int64))  # [B]

    # An all-terminal batch skips the networks: TF 2.15's CPU conv fails on an empty batch
    # inside a tf.function ('input depth must be evenly divisible by filter depth').
    return tf.cond(tf.size(live) > 0, live_values, lambda: tf.zeros_like(done, tf.float32))
  image = next_observation['image']  # [B, H, W, 3]
  gripper_state = next_observation['gripper_state']  # [B, 2]
  batch_size = tf.shape(image)[0]
  embedding_1 = target_network_1.embed_image(image, training=False)  # [B, h, w, C]
  embedding_2 = target_network_2.embed_image(image, training=False)  # [B, h, w, C]

  def score_fn(actions):  # [B, N, 8] -> [B, N]
    return target_network_1.logits_from_embedding(
        embedding_1, gripper_state, actions, training=False)

  best_actions, logits_1 = cem.cem_maximize(
      score_fn, batch_size, num_samples=num_samples, num_iterations=num_iterations,
      num_elites=num_elites, initial_std=initial_std, min_std=min_std,
      allowed_modes=allowed_modes, seed=seed, min_mode_prob=min_mode_prob)  # [B, 8], [B]
  logits_2 = target_network_2.logits_from_embedding(
      embedding_2, gripper_state, best_actions[:, None], training=False)[:, 0]  # [B]
  value = tf.minimum(tf.sigmoid(logits_1), tf.sigmoid(tf.cast(logits_2, tf.float32)))  # [B]
  return tf.stop_gradient(value)
