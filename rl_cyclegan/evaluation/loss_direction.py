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

And for the objects and the robot (``CONTRAST_REGIONS``), how the push changes how loudly G
draws them (``scene_metrics.contrast_gradient``: the region's mean local contrast against its
surround, pooled over the N images; at real_gap 0.75 the Gs trained with L_RL-scene drew the
objects 9.2 levels of 255 over the real render, the others 0.6, docs/results.md "Session 41"):

  contrast_change_R   the first-order change of R's mean contrast, in levels of 255, per unit of
                      the push as given (linear: the terms' changes add up to 'all''s). > 0: the
                      term draws R louder.
  toward_contrast_R   cos(push, the contrast's gradient) over the whole image (the gradient lives
                      on R's pixels and their surround): how much of the push goes into it.

Two views of a term's push (``direction_stats`` measures either):
  loss_directions  minus the term's gradient with respect to the pixels of G(x): what G is
                   asked for.
  step_directions  the change in G(x), to first order, of one step down the term's gradient
                   on G's weights, scaled per weight as G's Adam scales it
                   (``adam_preconditioner``): what G can give. A conv net's pixel gradient is
                   mostly high frequency, and much of it is out of G's reach. In inference
                   mode: the rewrite of a spectrally normalized kernel at G's next training
                   call (tfa's power iteration) is not modelled.

Only the parts of eq. 6 that depend on G(x) at fixed networks enter: lambda_GAN L_GAN(G, D_Y)
on G(x), lambda_cycle times the sim half of eq. 2, mean((F(G(x)) - x)^2), and lambda_RL-scene
times the sim triple of eq. 4 (q_x, q'_x = Q_real(G(x)), q''_x = Q_sim(F(G(x)))), at the fixed
random move actions of ``rl_scene_pull``. The real halves of eq. 2 and eq. 4 reach G through
G(F(y)), an image of another state, and L_RL updates the critics only (Table 5); GraspGAN's
L_seg trains G's mask head on labelled sim crops, other images too. So the weight-step view
leaves out those parts of G's step. The loss means are over the N paired states, as in a train
step over a batch of N.

Evaluation only: nothing is trained, and every network runs in inference mode.
"""

from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from rl_cyclegan import losses
from rl_cyclegan import specs
from rl_cyclegan.evaluation import rl_scene_pull
from rl_cyclegan.evaluation import scene_metrics

REGIONS = ('objects', 'robot', 'background')  # background: neither objects nor robot
FIELDS = ('share', 'toward_real', 'toward_sim', 'colour_toward_real', 'colour_toward_sim',
          'colour_norm')
CONTRAST_REGIONS = ('objects', 'robot')
CONTRAST_FIELDS = ('contrast_change', 'toward_contrast')
LEVELS_PER_UNIT = 127.5  # G(x) in [-1, 1]; contrasts are reported in levels of 255
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


def _checked(g_x, sim, real, object_mask, robot_mask, caller):
  """float arrays G(x), x, y [N, h, w, 3] in [-1, 1] and the region masks, shapes checked."""
  g = np.asarray(g_x, np.float32)
  x = specs.to_float_image(np.asarray(sim)).numpy()
  y = specs.to_float_image(np.asarray(real)).numpy()
  if x.shape != g.shape or y.shape != g.shape:
    raise ValueError(f'{caller}: G(x) is {list(g.shape)}, sim {list(x.shape)} and real '
                     f'{list(y.shape)}; expected the same [N, h, w, 3] for all three')
  masks = region_masks(object_mask, robot_mask)
  for name, mask in masks.items():
    if mask.shape != g.shape[:3]:
      raise ValueError(f'{caller}: {name} mask is {list(mask.shape)}, expected '
                       f'{list(g.shape[:3])} (the images\' [N, h, w])')
  return g, x, y, masks


def direction_stats(pushes: Mapping[str, np.ndarray], g_x, sim, real, object_mask,
                    robot_mask) -> Dict[str, float]:
  """The fields of ``FIELDS`` for each push on G(x) (module docstring).

  Args:
    pushes: {name: float [N, h, w, 3]}, a direction G(x) is moved in (``loss_directions``:
      minus a term's gradient; ``step_directions``: the change a weight step makes).
    g_x, sim, real, object_mask, robot_mask: as ``loss_directions``.

  Returns:
    {'<name>/<region>/<field>': float for every region of ``REGIONS`` and field of ``FIELDS``
     and for every region of ``CONTRAST_REGIONS`` and field of ``CONTRAST_FIELDS``,
     '<name>/norm': the push's norm over the whole image}.
  """
  g, x, y, masks = _checked(g_x, sim, real, object_mask, robot_mask, 'direction_stats')
  to_real, to_sim = y - g, x - g
  contrast = {region: scene_metrics.contrast_gradient(g, masks[region]).ravel()
              for region in CONTRAST_REGIONS}
  out = {}
  for name, push in pushes.items():
    push = np.asarray(push, np.float32)
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
    for region, gradient in contrast.items():
      out[f'{name}/{region}/contrast_change'] = LEVELS_PER_UNIT * float(
          np.dot(push.ravel(), gradient))
      out[f'{name}/{region}/toward_contrast'] = _cosine(push.ravel(), gradient)
  return out


def loss_directions(terms_fn: Callable[[tf.Tensor], Mapping[str, tf.Tensor]], g_x, sim, real,
                    object_mask, robot_mask) -> Dict[str, float]:
  """Each term's push on G(x) (minus its pixel gradient), region by region, against real(x)
  and against x.

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
    docstring), the contrast fields of ``direction_stats``, and '<term>/norm': the gradient's
    norm over the whole image. A term with a zero gradient in a region gets NaN cosines there.
  """
  _checked(g_x, sim, real, object_mask, robot_mask, 'loss_directions')
  g_x = tf.convert_to_tensor(g_x, tf.float32)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(g_x)
    terms = dict(terms_fn(g_x))
    terms['all'] = tf.add_n(list(terms.values()))
  pushes = {}
  for name, term in terms.items():
    grad = tape.gradient(term, g_x)
    pushes[name] = np.zeros(g_x.shape, np.float32) if grad is None else -grad.numpy()
  del tape
  return direction_stats(pushes, g_x, sim, real, object_mask, robot_mask)


def adam_preconditioner(optimizer: tf.keras.optimizers.Adam, variables) -> List[tf.Tensor]:
  """1 / (sqrt(v_hat) + epsilon) of a built Keras Adam for each of ``variables``: the factor
  by which Adam scales the newest gradient of each weight (v_hat: its bias-corrected second
  moment). Reads the optimizer's slots (Keras 2.15 attributes ``_velocities``, ``_index_dict``;
  ``_var_key``)."""
  step = tf.cast(tf.convert_to_tensor(optimizer.iterations), tf.float32)
  if float(step) < 1:
    raise ValueError(f'adam_preconditioner: optimizer {optimizer.name!r} has taken no step '
                     '(its second moments are zero); restore it from a checkpoint first')
  correction = 1.0 - tf.pow(tf.cast(optimizer.beta_2, tf.float32), step)
  out = []
  for var in variables:
    # pylint: disable=protected-access
    v = optimizer._velocities[optimizer._index_dict[optimizer._var_key(var)]]
    out.append(1.0 / (tf.sqrt(v / correction) + optimizer.epsilon))
  return out


def step_directions(generator, x, terms_fn: Callable[[tf.Tensor], Mapping[str, tf.Tensor]],
                    sim, real, object_mask, robot_mask,
                    preconditioner: Union[None, Sequence[tf.Tensor],
                                          Mapping[str, Sequence[tf.Tensor]]] = None
                    ) -> Dict[str, float]:
  """What one small step down each term's gradient on G's weights does to G(x).

  A pixel gradient is what G is asked for; G can only move as its weights allow, and its
  optimizer scales each weight's step. For each term L: the weight step
  d_theta = -P * dL/d_theta (P: ``preconditioner``, e.g. ``adam_preconditioner`` of the run's
  own optimizer: Adam's scaling of the newest gradient; 1 without), and the change in G(x) it
  makes to first order, J d_theta (a forward-mode Jacobian-vector product), measured with
  ``direction_stats``. 'all' is the sum of the terms' changes (the step is linear in them).

  Args:
    generator: G, a Keras model (called in inference mode).
    x: the sim images G sees, float32 [N, h, w, 3] in [-1, 1].
    terms_fn, sim, real, object_mask, robot_mask: as ``loss_directions``.
    preconditioner: one tensor per ``generator.trainable_variables`` (same shapes) for every
      term, or {term: such a list} (a learner with one Adam per loss), or None.

  Returns:
    As ``loss_directions``, with '<term>/norm' the norm of G(x)'s change.
  """
  variables = generator.trainable_variables
  with tf.GradientTape(persistent=True) as tape:
    g_x = generator(x, training=False)
    terms = dict(terms_fn(g_x))
  _checked(g_x, sim, real, object_mask, robot_mask, 'step_directions')
  if preconditioner is not None and not isinstance(preconditioner, Mapping):
    preconditioner = {name: preconditioner for name in terms}
  for name, scales in (preconditioner or {}).items():
    if name in terms and len(scales) != len(variables):
      raise ValueError(f'step_directions: {len(scales)} preconditioner tensors for term '
                       f'{name!r}, for the {len(variables)} trainable variables of '
                       f'{generator.name!r}')
  missing = sorted(set(terms) - set(preconditioner or terms))
  if missing:
    raise ValueError(f'step_directions: no preconditioner for terms {missing}')
  pushes = {}
  for name, term in terms.items():
    grads = tape.gradient(term, variables)
    steps = [tf.zeros_like(v) if g is None else -g for v, g in zip(variables, grads)]
    if preconditioner is not None:
      steps = [step * p for step, p in zip(steps, preconditioner[name])]
    with tf.autodiff.ForwardAccumulator(variables, steps) as accumulator:
      out = generator(x, training=False)
    pushes[name] = accumulator.jvp(out).numpy()
  del tape
  pushes['all'] = sum(pushes.values())
  return direction_stats(pushes, g_x, sim, real, object_mask, robot_mask)


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


def learner_term_names(learner) -> List[str]:
  """The terms of ``TERMS`` a ``RLCycleGANLearner`` trains G with."""
  include = [term for term, on in (('gan_generator', learner.use_gan),
                                   ('cycle', learner.use_cycle),
                                   ('rl_scene', learner.use_rl_scene)) if on]
  if learner.generator_f is None:  # the GAN ablation
    include = [term for term in include if term == 'gan_generator']
  return include


def learner_terms(learner, sim, gripper_height) -> Callable[[tf.Tensor], Dict[str, tf.Tensor]]:
  """``generator_terms`` of a ``RLCycleGANLearner``: its networks (inference mode), its lambdas
  and GAN loss type, and only the terms it trains G with (``learner_term_names``)."""
  include = learner_term_names(learner)
  inference = lambda net: None if net is None else (lambda i: net(i, training=False))
  return generator_terms(
      sim, gripper_height, d_y=inference(learner.discriminator_y),
      f=inference(learner.generator_f), q_sim=learner.critic_sim.network,
      q_real=learner.critic_real.network, gan_weight=learner.gan_weight,
      cycle_weight=learner.cycle_weight, rl_scene_weight=learner.rl_scene_weight,
      gan_loss_type=learner.gan_loss_type, include=include)


def learner_preconditioners(learner) -> Optional[Dict[str, List[tf.Tensor]]]:
  """{term: ``adam_preconditioner``} of G under ``learner``'s own Adam (one for every term, or
  each Table 5 row's own with ``generator_optimizer_per_loss``), for the terms of
  ``learner_term_names``; None before G's optimizers have taken a step."""
  variables = learner.generator_g.trainable_variables
  name = learner.generator_g.name
  out = {}
  for term in learner_term_names(learner):
    optimizer = learner.optimizers.get(f'{name}/{term}', learner.optimizers.get(name))
    if optimizer is None or int(tf.convert_to_tensor(optimizer.iterations)) < 1:
      return None
    out[term] = adam_preconditioner(optimizer, variables)
  return out
