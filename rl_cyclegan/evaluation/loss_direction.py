"""Where each loss of eq. 6 pushes G's output, region by region, against where real(x) lies.

G learns from the gradient of each weighted loss term with respect to its output image G(x).
In the pseudo-real world the true real render y = real(x) of the same state is known, so the
direction each term pushes G(x) in can be compared with the direction that would make G(x)
the true real render, y - G(x), and with the direction back to the sim image, x - G(x). Paper
Section 4 says L_RL-scene keeps G from changing what matters to the task; it does not say what
the loss does to the rest of the scene. At real_gap 0.75 the RL-CycleGAN Gs left the tray and
floor further from real than the CycleGAN Gs (docs/results.md, "Session 37"); this module asks
which term does that, and where.

For one term L (one row of Table 5 that updates G, at its lambda) and one region R of the
image (the object pixels, the robot's, and the rest: tray, table and floor):

  share_R        |dL/dG(x)|^2 summed over R / summed over the whole image: where the term
                 pushes. The shares of the three regions sum to 1.
  toward_real_R  cos(-dL/dG(x), y - G(x)) over R's pixels (and channels): +1 when a small step
                 down the term's gradient moves G(x) straight toward the true real render in R,
                 -1 when straight away from it, ~0 when the push is unrelated to it.
  toward_sim_R   cos(-dL/dG(x), x - G(x)) over R: the same against the sim image (the identity).
  colour_toward_real_R, colour_toward_sim_R
                 the same cosines between R's mean colours: per image and channel, the mean
                 push over R's pixels against the mean of y - G(x) (or x - G(x)) over them
                 (vectors of N * 3). A pixel gradient through a conv net is mostly high
                 frequency, which the pixel cosines count in full; these ask only whether the
                 term moves each region's colour toward the real render's.
  colour_norm_R  the norm of that mean-colour push (the N * 3 vector): how hard the term moves
                 R's colour at all, comparable between terms of one run.

Only the parts of eq. 6 that depend on G(x) at fixed networks enter: lambda_GAN L_GAN(G, D_Y)
on G(x), lambda_cycle times the sim half of eq. 2, mean((F(G(x)) - x)^2), and lambda_RL-scene
times the sim triple of eq. 4 (q_x, q'_x = Q_real(G(x)), q''_x = Q_sim(F(G(x)))), at the fixed
random move actions of ``rl_scene_pull``. The real halves of eq. 2 and eq. 4 reach G through
G(F(y)), an image of another state, and L_RL updates the critics only (Table 5). The loss
means are over the N paired states, as in a train step over a batch of N.

Evaluation only: nothing is trained, and every network runs in inference mode.
"""

from typing import Callable, Dict, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from rl_cyclegan import losses
from rl_cyclegan import specs
from rl_cyclegan.evaluation import rl_scene_pull

REGIONS = ('objects', 'robot', 'background')  # background: neither objects nor robot
FIELDS = ('share', 'toward_real', 'toward_sim', 'colour_toward_real', 'colour_toward_sim',
          'colour_norm')
TERMS = ('gan_generator', 'cycle', 'rl_scene')  # the Table 5 rows that update G, by name


def region_masks(object_mask, robot_mask) -> Dict[str, np.ndarray]:
  """{region: bool [N, h, w]} for ``REGIONS``; they partition every image."""
  object_mask = np.asarray(object_mask, bool)
  robot_mask = np.asarray(robot_mask, bool) & ~object_mask
  return {'objects': object_mask, 'robot': robot_mask,
          'background': ~(object_mask | robot_mask)}


def _cosine(a, b) -> float:
  norm = np.linalg.norm(a) * np.linalg.norm(b)
  return float(np.dot(a, b) / norm) if norm > 0 else float('nan')


def _region_colour(images, mask):
  """[N, h, w, 3], [N, h, w] -> the mean colour over each image's masked pixels, [N * 3]
  (images with no pixel in the region left out)."""
  count = mask.sum(axis=(1, 2))  # [N]
  sums = np.einsum('nhwc,nhw->nc', images, mask.astype(images.dtype))  # [N, 3]
  keep = count > 0
  return (sums[keep] / count[keep, None]).ravel()


def loss_directions(terms_fn: Callable[[tf.Tensor], Mapping[str, tf.Tensor]], g_x, sim, real,
                    object_mask, robot_mask) -> Dict[str, float]:
  """Each term's push on G(x), region by region, against real(x) and against x.

  Args:
    terms_fn: G(x) (float32 [N, h, w, 3] in [-1, 1]) -> {term name: scalar loss}; each term
      must be a differentiable function of its input (``generator_terms`` gives eq. 6's).
    g_x: G(x), float32 [N, h, w, 3] in [-1, 1].
    sim, real: uint8 [N, h, w, 3], the sim render x and the true real render y of the same N
      states.
    object_mask, robot_mask: bool [N, h, w].

  Returns:
    {'<term>/<region>/<field>': float} for every term of ``terms_fn`` plus 'all' (their sum:
    what G's optimizer gets), every region of ``REGIONS`` and every field of ``FIELDS`` (module
    docstring), and '<term>/norm': the gradient's norm over the whole image. A term with a zero
    gradient in a region gets NaN cosines there.
  """
  g_x = tf.convert_to_tensor(g_x, tf.float32)
  shape = tuple(g_x.shape)
  x = specs.to_float_image(np.asarray(sim)).numpy()
  y = specs.to_float_image(np.asarray(real)).numpy()
  if x.shape != shape or y.shape != shape:
    raise ValueError(f'loss_directions: G(x) is {list(shape)}, sim {list(x.shape)} and real '
                     f'{list(y.shape)}; expected the same [N, h, w, 3] for all three')
  masks = region_masks(object_mask, robot_mask)
  for name, mask in masks.items():
    if mask.shape != shape[:3]:
      raise ValueError(f'loss_directions: {name} mask is {list(mask.shape)}, expected '
                       f'{list(shape[:3])} (the images\' [N, h, w])')
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(g_x)
    terms = dict(terms_fn(g_x))
    terms['all'] = tf.add_n(list(terms.values()))
  grads = {}
  for name, term in terms.items():
    grad = tape.gradient(term, g_x)
    grads[name] = np.zeros(shape, np.float32) if grad is None else grad.numpy()
  del tape
  g = g_x.numpy()
  to_real, to_sim = y - g, x - g
  out = {}
  for name, grad in grads.items():
    push = -grad
    total = float(np.sum(np.square(push)))
    out[f'{name}/norm'] = float(np.sqrt(total))
    for region, mask in masks.items():
      p = push[mask].ravel()
      out[f'{name}/{region}/share'] = float(np.sum(np.square(p)) / total) if total > 0 else (
          float('nan'))
      out[f'{name}/{region}/toward_real'] = _cosine(p, to_real[mask].ravel())
      out[f'{name}/{region}/toward_sim'] = _cosine(p, to_sim[mask].ravel())
      colour = _region_colour(push, mask)
      out[f'{name}/{region}/colour_toward_real'] = _cosine(colour,
                                                           _region_colour(to_real, mask))
      out[f'{name}/{region}/colour_toward_sim'] = _cosine(colour, _region_colour(to_sim, mask))
      out[f'{name}/{region}/colour_norm'] = float(np.linalg.norm(colour))
  return out


def generator_terms(sim, gripper_height, d_y: Optional[Callable] = None,
                    f: Optional[Callable] = None, q_sim=None, q_real=None,
                    gan_weight: float = 1.0, cycle_weight: float = 10.0,
                    rl_scene_weight: float = 10.0, gan_loss_type: str = losses.NON_SATURATING,
                    actions_per_state: int = rl_scene_pull.ACTIONS_PER_STATE,
                    seed: int = 0, include: Sequence[str] = TERMS
                    ) -> Callable[[tf.Tensor], Dict[str, tf.Tensor]]:
  """The G(x)-dependent terms of eq. 6 on N paired sim states, as a function of G(x).

  Args:
    sim: uint8 [N, h, w, 3], the sim renders x.
    gripper_height: [N] metres.
    d_y: images -> D_Y's logits (a list over scales), or None without L_GAN.
    f: images in [-1, 1] -> F(images), or None (the GAN ablation: no cycle, no RL-scene).
    q_sim, q_real: the critics' Q-networks, or None without L_RL-scene.
    gan_weight, cycle_weight, rl_scene_weight: the run's lambdas (Table 5: 1, 10, 10).
    gan_loss_type: the run's ``RLCycleGANLearner.gan_loss_type``.
    actions_per_state, seed: the random move actions of ``rl_scene_pull.state_action_q``.
    include: the terms of ``TERMS`` to give (a run's switched-on losses).

  Returns:
    terms(g_x) -> {term of ``include``: lambda * L}.

  Raises:
    ValueError: an unknown term, or a term whose networks were not given.
  """
  needs = {'gan_generator': {'d_y': d_y}, 'cycle': {'f': f},
           'rl_scene': {'f': f, 'q_sim': q_sim, 'q_real': q_real}}
  for term in include:
    if term not in needs:
      raise ValueError(f'generator_terms: unknown term {term!r}; expected one of {TERMS}')
    missing = [name for name, net in needs[term].items() if net is None]
    if missing:
      raise ValueError(f'generator_terms: term {term!r} needs {", ".join(missing)}, which '
                       'was not given')
  x = specs.to_float_image(np.asarray(sim))  # [N, h, w, 3]
  if 'rl_scene' in include:
    q = rl_scene_pull.state_action_q(gripper_height, actions_per_state, seed)
    q_x = q(q_sim, x)  # [N * actions_per_state], a constant of G(x)

  def terms(g_x):
    out = {}
    if 'gan_generator' in include:
      out['gan_generator'] = gan_weight * losses.gan_generator_loss(d_y(g_x), gan_loss_type)
    f_g_x = f(g_x) if {'cycle', 'rl_scene'} & set(include) else None  # [N, h, w, 3]
    if 'cycle' in include:
      out['cycle'] = cycle_weight * tf.reduce_mean(tf.square(f_g_x - x))  # eq. 2, sim half
    if 'rl_scene' in include:
      zeros = [tf.zeros_like(q_x)] * 3  # the real triple: d(0, 0) = 0
      out['rl_scene'] = rl_scene_weight * losses.rl_scene_consistency_loss(
          q_x, q(q_real, g_x), q(q_sim, f_g_x), *zeros)
    return out

  return terms


def learner_terms(learner, sim, gripper_height) -> Callable[[tf.Tensor], Dict[str, tf.Tensor]]:
  """``generator_terms`` of a ``RLCycleGANLearner``: its networks (inference mode), its lambdas
  and GAN loss type, and only the terms it trains G with."""
  include = [term for term, on in (('gan_generator', learner.use_gan),
                                   ('cycle', learner.use_cycle),
                                   ('rl_scene', learner.use_rl_scene)) if on]
  if learner.generator_f is None:  # the GAN ablation
    include = [term for term in include if term == 'gan_generator']
  inference = lambda net: None if net is None else (lambda i: net(i, training=False))
  return generator_terms(
      sim, gripper_height, d_y=inference(learner.discriminator_y),
      f=inference(learner.generator_f), q_sim=learner.critic_sim.network,
      q_real=learner.critic_real.network, gan_weight=learner.gan_weight,
      cycle_weight=learner.cycle_weight, rl_scene_weight=learner.rl_scene_weight,
      gan_loss_type=learner.gan_loss_type, include=include)
