"""The joint RL-CycleGAN learner (paper Section 4, Table 5, Appendix A).

One learner owns the Sim2Real generator G, the Real2Sim generator F, the discriminators D_X
(sim) and D_Y (real), and two QT-Opt critics Q_sim and Q_real (each with two target networks),
with one Adam optimizer per network (Appendix A: lr 1e-4, beta1 0.1, beta2 0.999).

One train step, given a batch of sim transitions (x, a, r, x', done) and a batch of real
transitions (y, a, r, y', done):

  x -> G(x) -> F(G(x))      y -> F(y) -> G(F(y))          (and the same for x', y')
  Q_sim  is trained by TD on {x, F(G(x)), F(y)}            (eq. 5)
  Q_real is trained by TD on {G(x), y, G(F(y))}
  q_x = Q_sim(x), q'_x = Q_real(G(x)), q''_x = Q_sim(F(G(x)))      (Section 4)
  q_y = Q_real(y), q'_y = Q_sim(F(y)), q''_y = Q_real(G(F(y)))

The objective is eq. 6 (``losses.rl_cyclegan_loss``), weighted as in Table 5 (GAN 1, cycle 10,
RL 10, RL-scene 10), and each loss's gradient is applied ONLY to the networks its Table 5 row
names (``TABLE5`` below, which the gradient application reads): the full backward pass is
computed (no stop-gradient on the generated images), but L_RL updates only Q_sim/Q_real, L_cycle
and L_RL-scene update only G/F, and the GAN loss updates G/F on the generator side and D_X/D_Y on
the discriminator side (Appendix A explains why this separation matters).

Ablations (paper Table 1) are switches: ``use_real2sim=False`` drops F and D_X (the "GAN"
ablation, no cycle); ``use_rl_scene=False`` is a plain CycleGAN trained next to the Q-functions;
everything on is RL-CycleGAN.

Table 1's GraspGAN row (Bousmalis et al. 2018) is approximated by the GAN ablation plus
``use_segmentation=True``: G (built with a mask head, ``UNetGenerator(num_mask_classes=4)``)
also predicts the segmentation of labelled sim images (``segmentation_batch`` of
``train_step``), with the softmax cross-entropy ``losses.segmentation_loss``. That loss is an
extra row of Table 5, ours: L_seg (weight ``segmentation_weight``) -> G only. GraspGAN's
feature-level domain-adversarial loss and its content-similarity loss are not implemented.

``generator_optimizer_per_loss=True`` (ours, a variant; the paper has one Adam per network):
G and F keep one Adam state per Table 5 row that updates them (L_GAN, L_cycle, L_RL-scene,
L_seg), and each row's gradient steps with its own. Adam divides each weight's step by the root
of its second moment; with one Adam, a loss whose gradient is large or noisy fills that moment
and shrinks the steps of every other loss on the network. At real_gap 0.75 the RL-CycleGAN Gs'
Adam second moments were ~16x CycleGAN's (root, median over G's weights), and one step of their
L_GAN moved G(x) ~6x less (docs/results.md, "Session 38"). Adam is invariant to a loss's scale,
so with this option a row's lambda no longer sets its share of the step (only its sign and
epsilon remain): each row's step is Adam-sized on its own.
"""

import collections
import functools
import operator
from typing import Callable, Dict, Optional, Sequence, Union

import gin
import tensorflow as tf

from rl_cyclegan import losses
from rl_cyclegan import specs
from rl_cyclegan.learners import core
from rl_cyclegan.learners import critic as critic_lib
from rl_cyclegan.networks import discriminator as discriminator_lib
from rl_cyclegan.networks import generator as generator_lib
from rl_cyclegan.networks import q_network as q_network_lib

LossInfo = collections.namedtuple('LossInfo', [
    'total',  # sum of all weighted terms
    'gan_generator',  # L_GAN, generator side (G and F), unweighted
    'gan_discriminator',  # L_GAN, discriminator side (D_X and D_Y), unweighted
    'cycle',  # L_cycle (eq. 2), unweighted
    'rl',  # L_RL (eq. 5) = rl_sim + rl_real, unweighted
    'rl_sim',  # TD loss of Q_sim
    'rl_real',  # TD loss of Q_real
    'rl_scene',  # L_RL-scene (eq. 4), unweighted
    'segmentation',  # L_seg (GraspGAN's mask loss, losses.segmentation_loss), unweighted; 0 off
    # Mean Q-values (probabilities) of the six images of Section 4.
    'q_x', 'q_x_prime', 'q_x_double', 'q_y', 'q_y_prime', 'q_y_double',
    'q_std',  # std of all Q-values in the batch: the mode-collapse monitor (Appendix A)
    'target_q_sim', 'target_q_real',  # mean TD targets
])


# Paper Table 5 (and our GraspGAN row): each loss -> the networks its gradient updates.
# Loss names are LossInfo fields and keys of losses.rl_cyclegan_loss (eq. 6); network names are
# the paper's. The gradient application reads this map (``backward_passes``, ``_apply_rows``),
# updating networks in the order written here (D_Y before D_X: under MirroredStrategy the other
# order changes the updates in the last bits, so this keeps earlier runs' arithmetic).
TABLE5 = {
    'gan_generator': ('G', 'F'),  # L_GAN, eq. 1, generator side; lambda_GAN = 1
    'gan_discriminator': ('D_Y', 'D_X'),  # L_GAN, eq. 1, discriminator side; lambda_GAN = 1
    'cycle': ('G', 'F'),  # L_cycle, eq. 2; lambda_cycle = 10
    'rl': ('Q_sim', 'Q_real'),  # L_RL, eq. 5; lambda_RL = 10
    'rl_scene': ('G', 'F'),  # L_RL-scene, eq. 4; lambda_RL-scene = 10
    'segmentation': ('G',),  # ours: GraspGAN's L_seg (G's mask head); segmentation_weight
}


def backward_passes(table):
  """Groups a Table-5-like map into backward passes: [(network names, loss names)].

  Networks that share a loss share one backward pass, of the sum of the losses that update
  any of them (so G and F, which share L_GAN, L_cycle and L_RL-scene, take one pass, whose
  L_seg term has no path to F). Passes, networks and losses come in the order of the table.
  For ``TABLE5``: [(G, F; gan_generator, cycle, rl_scene, segmentation),
  (D_Y, D_X; gan_discriminator), (Q_sim, Q_real; rl)].
  """
  passes = []  # [(network names, loss names)]
  for loss, networks in table.items():
    joined = [p for p in passes if set(p[0]) & set(networks)]
    if not joined:
      passes.append((list(networks), [loss]))
      continue
    first = joined[0]
    for other in joined[1:]:  # a loss that names networks of two passes joins them
      first[0].extend(other[0])
      first[1].extend(other[1])
      passes.remove(other)
    first[0].extend(n for n in networks if n not in first[0])
    first[1].append(loss)
  order = list(table)
  return [(tuple(nets), tuple(sorted(rows, key=order.index))) for nets, rows in passes]


def _check_segmentation_batch(batch, crop_size):
  """Raises ValueError unless ``batch`` is (images float32 [B, h, w, 3], labels int32 [B, h, w])."""
  if not isinstance(batch, (tuple, list)) or len(batch) != 2:
    raise ValueError(f'segmentation_batch: expected a pair (images float32 [B, h, w, 3] in '
                     f'[-1, 1], labels int32 [B, h, w]), got {type(batch).__name__}')
  images, labels = batch
  specs.check_tensor(images, tf.TensorSpec([*crop_size, specs.IMAGE_CHANNELS], tf.float32),
                     'segmentation_batch images')
  specs.check_tensor(labels, tf.TensorSpec(crop_size, tf.int32), 'segmentation_batch labels')


@gin.configurable
class RLCycleGANLearner(tf.Module):
  """Owns G, F, D_X, D_Y, Q_sim, Q_real and their optimizers; runs the joint train step."""

  def __init__(self,
               crop_size: Sequence[int] = specs.DEFAULT_CROP_SIZE,
               generator_fn: Callable[..., tf.keras.Model] = generator_lib.UNetGenerator,
               discriminator_fn: Callable[..., tf.keras.Model] = (
                   discriminator_lib.MultiScaleDiscriminator),
               q_network_fn: Callable[..., tf.Module] = q_network_lib.GraspingQNetwork,
               # Loss switches (ablations, paper Table 1).
               use_real2sim: bool = True,
               use_gan: bool = True,
               use_cycle: bool = True,
               use_rl: bool = True,
               use_rl_scene: bool = True,
               # GraspGAN's auxiliary mask loss on G (Table 1 "GraspGAN" row; not in Table 5).
               use_segmentation: bool = False,
               # Loss weights (paper Table 5).
               gan_weight: float = 1.0,
               cycle_weight: float = 10.0,
               rl_weight: float = 10.0,
               rl_scene_weight: float = 10.0,
               real_rl_weight: float = 1.0,
               segmentation_weight: float = 1.0,  # ours (equal to lambda_GAN), not a paper value
               # Ours, a variant: one Adam state per Table 5 row on G and F (module docstring).
               generator_optimizer_per_loss: bool = False,
               gan_loss_type: str = 'non_saturating',
               # Optimizer (paper Appendix A).
               learning_rate: float = 1e-4,
               beta_1: float = 0.1,
               beta_2: float = 0.999,
               # Precision and distribution.
               mixed_precision: Union[bool, str] = False,
               strategy: Optional[tf.distribute.Strategy] = None,
               name: str = 'rl_cyclegan'):
    """Creates the networks, critics and optimizers.

    Args:
      crop_size: (height, width) of the images the networks see (paper: 472x472).
      generator_fn, discriminator_fn, q_network_fn: constructors (gin-configurable) for G/F,
        D_X/D_Y and the Q-networks. ``q_network_fn(crop_size=..., name=...)``.
      use_real2sim: build F and D_X. False gives the "GAN" ablation (G only, no cycle and no
        RL-scene loss, Q_sim sees only x and Q_real sees G(x) and y).
      use_gan, use_cycle, use_rl, use_rl_scene: switch each loss term on or off.
      use_segmentation: add GraspGAN's segmentation loss on G (needs a generator with a mask
        head, ``UNetGenerator.num_mask_classes`` > 0, and a ``segmentation_batch`` in every
        ``train_step``). Its gradient updates G only.
      gan_weight, cycle_weight, rl_weight, rl_scene_weight: lambda of eq. 6 (Table 5: 1, 10,
        10, 10).
      real_rl_weight: lambda_RL-real (Appendix A) on TD terms from real transitions.
      segmentation_weight: weight of L_seg in G's objective. Ours: 1.0, the weight of the GAN
        loss; GraspGAN's own weighting is not reproduced.
      generator_optimizer_per_loss: G and F keep one Adam per Table 5 row that updates them,
        each stepping with its own row's gradient (module docstring). False: one Adam per
        network, as in the paper.
      gan_loss_type: 'non_saturating' (eq. 1 with the usual non-saturating generator loss) or
        'least_squares'.
      learning_rate, beta_1, beta_2: Adam for every network (Appendix A).
      mixed_precision: False: float32. True: build networks under 'mixed_bfloat16' (variables
        and losses float32) where the CPU has native bf16 arithmetic, else float32 with a
        warning. 'force': bfloat16 on any CPU. ``compute_dtype`` records what was used.
      strategy: a tf.distribute strategy; networks and optimizers are created in its scope.
      name: module name.
    """
    super().__init__(name=name)
    if not use_real2sim and (use_cycle or use_rl_scene):
      raise ValueError('use_real2sim=False (the GAN ablation) has no F: set use_cycle=False '
                       'and use_rl_scene=False as well.')
    self.crop_size = tuple(int(s) for s in crop_size)
    self.observation_spec = specs.model_observation_spec(self.crop_size)
    self.use_real2sim = use_real2sim
    self.use_gan = use_gan
    self.use_cycle = use_cycle
    self.use_rl = use_rl
    self.use_rl_scene = use_rl_scene
    self.use_segmentation = use_segmentation
    self.gan_weight = gan_weight
    self.cycle_weight = cycle_weight
    self.rl_weight = rl_weight
    self.rl_scene_weight = rl_scene_weight
    self.real_rl_weight = real_rl_weight
    self.segmentation_weight = segmentation_weight
    self.generator_optimizer_per_loss = generator_optimizer_per_loss
    self.gan_loss_type = gan_loss_type
    self.mixed_precision = mixed_precision
    policy, self.compute_dtype = core.precision(mixed_precision,
                                                'RLCycleGANLearner.mixed_precision')
    self.strategy = strategy or tf.distribute.get_strategy()

    adam = lambda n: critic_lib.make_adam(learning_rate, beta_1, beta_2, name=n)
    with self.strategy.scope(), core.dtype_policy(policy):
      image = tf.zeros([1, *self.crop_size, 3])
      self.generator_g = generator_fn(name='G_sim2real')
      self.generator_g(image)
      self.num_mask_classes = int(getattr(self.generator_g, 'num_mask_classes', 0))
      if use_segmentation and not self.num_mask_classes:
        raise ValueError('use_segmentation=True needs a generator with a mask head: set '
                         'UNetGenerator.num_mask_classes (4: background, tray, robot, objects)')
      self.generator_f = self.discriminator_x = None
      if use_real2sim:
        # Only G segments (GraspGAN): F never gets a mask head.
        f_kwargs = {'num_mask_classes': 0} if self.num_mask_classes else {}
        self.generator_f = generator_fn(name='F_real2sim', **f_kwargs)
        self.generator_f(image)
      self.discriminator_y = discriminator_fn(name='D_Y_real')
      self.discriminator_y(image)
      if use_real2sim:
        self.discriminator_x = discriminator_fn(name='D_X_sim')
        self.discriminator_x(image)
      # Q_sim and Q_real exist in every configuration (the RL-scene loss needs them even
      # when L_RL is switched off), so switching a loss off never changes the checkpoint.
      self.critic_sim = critic_lib.QTOptCritic(
          q_network_fn(crop_size=self.crop_size, name='Q_sim'), name='Q_sim',
          learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2)
      self.critic_real = critic_lib.QTOptCritic(
          q_network_fn(crop_size=self.crop_size, name='Q_real'), name='Q_real',
          learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2)
      for critic in (self.critic_sim, self.critic_real):
        if critic.mc_return_weight:
          raise ValueError(f'QTOptCritic.mc_return_weight={critic.mc_return_weight}: Monte Carlo '
                           'returns are supported by the QT-Opt learner (train_qtopt, final Q) '
                           'only, not by the RL-CycleGAN learner; unset it for this run')
      self.optimizers = {}  # network name (or 'network/row', per loss) -> Adam
      for net in self.gan_networks:
        for row in self._optimizer_rows(net):
          key = net.name if row is None else f'{net.name}/{row}'
          self.optimizers[key] = critic_lib.build_optimizer(
              adam(f'{net.name}_adam' if row is None else f'{net.name}_{row}_adam'),
              net.trainable_variables)
      self.train_step_counter = tf.Variable(0, dtype=tf.int64, trainable=False,
                                            name='train_step')
    self._train_step_fn = tf.function(self._distributed_train_step)

  # -------------------------------------------------------------------------------------------
  @property
  def gan_networks(self):
    """G, F, D_Y, D_X that exist in this configuration."""
    nets = [self.generator_g, self.generator_f, self.discriminator_y, self.discriminator_x]
    return [n for n in nets if n is not None]

  @property
  def critics(self):
    return [self.critic_sim, self.critic_real]

  def _optimizer_rows(self, net):
    """[None] (one Adam for ``net``), or with ``generator_optimizer_per_loss`` and ``net`` G
    or F, the active Table 5 rows that update it, each with its own Adam."""
    generators = {self.generator_g.name: 'G'}
    if self.generator_f is not None:
      generators[self.generator_f.name] = 'F'
    if not self.generator_optimizer_per_loss or net.name not in generators:
      return [None]
    active = {'gan_generator': self.use_gan, 'cycle': self.use_cycle,
              'rl_scene': self.use_rl_scene, 'segmentation': self.use_segmentation}
    rows = [row for row, networks in TABLE5.items()
            if generators[net.name] in networks and active.get(row, False)]
    return rows or [None]

  def checkpoint_items(self):
    """Everything a checkpoint must hold to resume: networks, targets, optimizers, step."""
    items = {'train_step': self.train_step_counter}
    for net in self.gan_networks:
      items[net.name] = net
      for row in self._optimizer_rows(net):
        suffix = '' if row is None else f'_{row}'
        items[f'{net.name}_optimizer{suffix}'] = self.optimizers[
            net.name if row is None else f'{net.name}/{row}']
    for c in self.critics:
      items[c.name] = c.network
      items[f'{c.name}_target_1'] = c.target_1
      items[f'{c.name}_target_2'] = c.target_2
      items[f'{c.name}_optimizer'] = c.optimizer
    return items

  # -------------------------------------------------------------------------------------------
  def train_step(self, sim_batch: specs.Transition, real_batch: specs.Transition,
                 segmentation_batch=None) -> LossInfo:
    """One joint step on a sim batch and a real batch (each a specs.Transition).

    Observations are model observations (float32 images in [-1, 1] at ``crop_size``). Under a
    strategy, pass per-replica values from ``strategy.experimental_distribute_dataset``.
    ``segmentation_batch`` (required with ``use_segmentation``, refused without it) is a pair
    (images float32 [B, h, w, 3] in [-1, 1], labels int32 [B, h, w]) of labelled sim crops.
    Raises ValueError naming the spec on malformed input.
    """
    for batch, what in ((sim_batch, 'sim_batch'), (real_batch, 'real_batch')):
      core.check_batch(tf.nest.map_structure(core.local_value, batch), self.observation_spec,
                       what)
    if self.use_segmentation:
      if segmentation_batch is None:
        raise ValueError('use_segmentation=True: train_step needs a segmentation_batch '
                         '(images float32 [B, h, w, 3], labels int32 [B, h, w])')
      _check_segmentation_batch(tf.nest.map_structure(core.local_value, segmentation_batch),
                                self.crop_size)
      segmentation_batch = tuple(segmentation_batch)
    elif segmentation_batch is not None:
      raise ValueError('train_step got a segmentation_batch but use_segmentation=False: set '
                       'RLCycleGANLearner.use_segmentation = True to train on it')
    return self._train_step_fn(sim_batch, real_batch, segmentation_batch)

  def _distributed_train_step(self, sim_batch, real_batch, segmentation_batch=None):
    return core.train_step_across_replicas(
        self.strategy, self._replica_step, (sim_batch, real_batch, segmentation_batch),
        self.critics, self.train_step_counter)

  def _generate(self, x, y, training):
    """G and F on sim images x and real images y. Returns G(x), F(G(x)), F(y), G(F(y))."""
    g_x = self.generator_g(x, training=training)  # [B, H, W, 3]
    if not self.use_real2sim:
      return g_x, None, None, None
    f_g_x = self.generator_f(g_x, training=training)  # [B, H, W, 3]
    f_y = self.generator_f(y, training=training)  # [B, H, W, 3]
    g_f_y = self.generator_g(f_y, training=training)  # [B, H, W, 3]
    return g_x, f_g_x, f_y, g_f_y

  def _sources(self, sim, real):
    """Which source transition (action, reward, done, gripper state) each Q input comes from,
    with the weight of its TD terms (lambda_RL-real on real transitions, Appendix A): Q_sim
    sees {x, F(G(x)), F(y)}, Q_real sees {G(x), y, G(F(y))} (Section 4)."""
    sim_w, real_w = (sim, 1.0), (real, self.real_rl_weight)
    if self.use_real2sim:
      return (sim_w, sim_w, real_w), (sim_w, real_w, real_w)
    return (sim_w,), (sim_w, real_w)

  def _next_values(self, sim, real):
    """V(s') of every Q input's next image (eq. 3/5), or None without L_RL. They carry no
    gradient, so they are computed before the tape: the tape does not record G(x'), F(y') or
    CEM."""
    if not self.use_rl:
      return None
    sim_sources, real_sources = self._sources(sim, real)
    gx_n, fgx_n, fy_n, gfy_n = self._generate(
        sim.next_observation['image'], real.next_observation['image'], training=False)
    sim_next = [sim.next_observation['image'], fgx_n, fy_n][:len(sim_sources)]
    real_next = [gx_n, real.next_observation['image'], gfy_n][:len(real_sources)]
    # CEM's seeds follow (step, replica): a step split over workers is the same split in one
    # process (MultiWorkerMirroredStrategy against MirroredStrategy).
    value_sim = self.critic_sim.target_value(
        self._observations(sim_next, sim_sources, 'next_observation'),
        tf.concat([s.done for s, _ in sim_sources], axis=0),
        seed=core.replica_seed(self.train_step_counter, 0))  # [S * B]
    value_real = self.critic_real.target_value(
        self._observations(real_next, real_sources, 'next_observation'),
        tf.concat([s.done for s, _ in real_sources], axis=0),
        seed=core.replica_seed(self.train_step_counter, 1))  # [R * B]
    return value_sim, value_real

  def _objective(self, sim, real, segmentation, next_values, inference=False):
    """Eq. 6 term by term on one replica's batches, to be called under the gradient tape.

    Returns (terms, report): terms {TABLE5 row: lambda * L} (``losses.rl_cyclegan_loss`` and
    our L_seg); report {LossInfo field: value} of everything but ``total``. ``inference``: every
    network runs in inference mode (no spectral-norm power iteration, no state change), for
    the diagnostics of ``loss_gradient_norms``.
    """
    x, y = sim.observation['image'], real.observation['image']  # [B, H, W, 3] each
    zero = tf.constant(0.0)
    sim_sources, real_sources = self._sources(sim, real)
    # Networks that no active loss updates run in inference mode: tfa spectral normalization
    # rewrites its kernel on every training call, and a network that is not being trained
    # must stay bit-identical.
    train_generators = (self.use_gan or self.use_cycle or self.use_rl_scene) and not inference
    train_others = not inference

    # --- GraspGAN's mask loss: G segments labelled sim crops (ours: Table 5 row L_seg -> G).
    seg = zero
    if self.use_segmentation:
      seg_images, seg_labels = segmentation  # [B', h, w, 3] float, [B', h, w] int32
      _, mask_logits = self.generator_g.call_with_mask(
          seg_images, training=train_others)  # [B', h, w, C]
      seg = losses.segmentation_loss(mask_logits, seg_labels)

    g_x, f_g_x, f_y, g_f_y = self._generate(x, y, training=train_generators)

    # --- GAN, eq. 1 (both directions). -----------------------------------------------------
    gan_g = gan_d = zero
    if self.use_gan:
      d_y_real = self.discriminator_y(y, training=train_others)  # list of [B, h, w, 1]
      d_y_fake = self.discriminator_y(g_x, training=train_others)  # (only use_gan trains D)
      gan_g = losses.gan_generator_loss(d_y_fake, self.gan_loss_type)
      gan_d = losses.gan_discriminator_loss(d_y_real, d_y_fake, self.gan_loss_type)
      if self.use_real2sim:
        d_x_real = self.discriminator_x(x, training=train_others)
        d_x_fake = self.discriminator_x(f_y, training=train_others)
        gan_g += losses.gan_generator_loss(d_x_fake, self.gan_loss_type)
        gan_d += losses.gan_discriminator_loss(d_x_real, d_x_fake, self.gan_loss_type)

    # --- Cycle consistency, eq. 2. ----------------------------------------------------------
    cycle = losses.cycle_consistency_loss(x, f_g_x, y, g_f_y) if self.use_cycle else zero

    # --- RL (eq. 5) and RL-scene (eq. 4). ---------------------------------------------------
    rl_sim = rl_real = rl_scene = q_std = target_sim = target_real = zero
    q = {}
    if self.use_rl or self.use_rl_scene:
      b = tf.shape(x)[0]
      sim_images = [x, f_g_x, f_y][:len(sim_sources)]
      real_images = [g_x, y, g_f_y][:len(real_sources)]
      train_critics = self.use_rl and not inference
      logits_sim = self._q_logits(self.critic_sim, sim_images, sim_sources,
                                  train_critics)  # [S * B]
      logits_real = self._q_logits(self.critic_real, real_images, real_sources,
                                   train_critics)  # [R * B]
      if self.use_rl:
        value_sim, value_real = next_values
        rl_sim, y_sim = core.td_loss(self.critic_sim, logits_sim, sim_sources, value_sim)
        rl_real, y_real = core.td_loss(self.critic_real, logits_real, real_sources, value_real)
        target_sim, target_real = tf.reduce_mean(y_sim), tf.reduce_mean(y_real)
      q_sim = tf.reshape(tf.sigmoid(logits_sim), [len(sim_sources), b])  # [S, B]
      q_real = tf.reshape(tf.sigmoid(logits_real), [len(real_sources), b])  # [R, B]
      q['q_x'], q['q_x_prime'], q['q_y'] = q_sim[0], q_real[0], q_real[1]
      if self.use_real2sim:
        q['q_x_double'], q['q_y_prime'], q['q_y_double'] = q_sim[1], q_sim[2], q_real[2]
        if self.use_rl_scene:
          rl_scene = losses.rl_scene_consistency_loss(
              q['q_x'], q['q_x_prime'], q['q_x_double'],
              q['q_y'], q['q_y_prime'], q['q_y_double'])
      q_std = tf.math.reduce_std(tf.concat([q_sim, q_real], axis=0))

    # A non-finite loss stops the step with an error naming the loss (before any update).
    gan_g = losses.check_finite(gan_g, 'gan_generator')
    gan_d = losses.check_finite(gan_d, 'gan_discriminator')
    cycle = losses.check_finite(cycle, 'cycle')
    rl_sim = losses.check_finite(rl_sim, 'rl_sim')
    rl_real = losses.check_finite(rl_real, 'rl_real')
    rl_scene = losses.check_finite(rl_scene, 'rl_scene')
    seg = losses.check_finite(seg, 'segmentation')
    rl = rl_sim + rl_real
    # Eq. 6 term by term (lambda * L, Table 5's weights), and our L_seg.
    terms = losses.rl_cyclegan_loss(
        gan_g, gan_d, cycle, rl, rl_scene, gan_weight=self.gan_weight,
        cycle_weight=self.cycle_weight, rl_weight=self.rl_weight,
        rl_scene_weight=self.rl_scene_weight)
    terms['segmentation'] = self.segmentation_weight * seg
    nan = tf.constant(float('nan'))
    report = dict(gan_generator=gan_g, gan_discriminator=gan_d, cycle=cycle, rl=rl,
                  rl_sim=rl_sim, rl_real=rl_real, rl_scene=rl_scene, segmentation=seg,
                  q_std=q_std, target_q_sim=target_sim, target_q_real=target_real)
    report.update({k: tf.reduce_mean(q[k]) if k in q else nan for k in
                   ('q_x', 'q_x_prime', 'q_x_double', 'q_y', 'q_y_prime', 'q_y_double')})
    return terms, report

  def _replica_step(self, sim, real, segmentation=None):
    next_values = self._next_values(sim, real)
    with tf.GradientTape(persistent=True) as tape:
      terms, report = self._objective(sim, real, segmentation, next_values)
      # One objective per backward pass: the terms of the Table 5 rows naming its networks,
      # scaled so that the optimizers' sum over replicas is the global mean. (Everything the
      # gradients start from must be computed inside the tape.)
      passes = backward_passes(TABLE5)
      objectives = [functools.reduce(operator.add, [terms[row] for row in rows])
                    for _, rows in passes]
      scale = core.replica_scale()
      scaled = [objective * scale for objective in objectives]
      scaled_terms = ({row: term * scale for row, term in terms.items()}
                      if self.generator_optimizer_per_loss else None)

    # Selective application (Appendix A): full backward pass, each loss's gradient applied
    # only to the networks its Table 5 row names.
    for (networks, rows), loss in zip(passes, scaled):
      self._apply_rows(tape, loss, networks, rows, terms, scaled_terms)
    del tape
    total = functools.reduce(operator.add, objectives)  # eq. 6 (+ our L_seg)
    return LossInfo(total=total, **report)

  def loss_gradient_norms(self, sim_batch: specs.Transition, real_batch: specs.Transition,
                          segmentation_batch=None) -> Dict[str, float]:
    """How hard each loss pulls on each network: {'<network>/<row>': global norm of the
    gradient of the row's weighted term (lambda * L of eq. 6, Table 5's weights) with respect
    to that network's variables}, for every active TABLE5 row and each network it updates
    (paper names: G, F, D_X, D_Y, Q_sim, Q_real), plus '<network>/all': the norm of the
    gradient the network's optimizer gets (the sum of its rows). Issue 18 asks for "the size of
    the RL-scene loss against the others": this is it, in the units that move G.

    On the inputs of ``train_step`` (under a strategy, the mean over replicas of each
    replica's norms). Every network runs in inference mode, so nothing changes (no update, no
    spectral-norm power iteration, no random stream, no step); the TD targets use the current
    step's CEM seeds. Eager: for occasional diagnostics, not every step.
    """
    if self.use_segmentation != (segmentation_batch is not None):
      raise ValueError('loss_gradient_norms needs a segmentation_batch exactly when '
                       f'use_segmentation is on (it is {self.use_segmentation})')
    segmentation_batch = None if segmentation_batch is None else tuple(segmentation_batch)
    per_replica = self.strategy.run(self._replica_gradient_norms,
                                    args=(sim_batch, real_batch, segmentation_batch))
    return {k: float(self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None))
            for k, v in per_replica.items()}

  def _replica_gradient_norms(self, sim, real, segmentation=None):
    next_values = self._next_values(sim, real)
    with tf.GradientTape(persistent=True) as tape:
      terms, _ = self._objective(sim, real, segmentation, next_values, inference=True)
    out, totals = {}, {}  # totals: network -> {variable index: the sum of its rows' gradients}
    for row, networks in TABLE5.items():
      groups = [(name, self._trainables(name)) for name in networks]
      groups = [(name, group[0]) for name, group in groups
                if group is not None]  # F and D_X are not built in the GAN ablation
      grads = iter(tape.gradient(terms[row], [v for _, vs in groups for v in vs]))
      for name, variables in groups:
        mine = {i: g for i, g in enumerate(next(grads) for _ in variables) if g is not None}
        if mine:  # a switched-off loss is a constant: no gradient, no entry
          out[f'{name}/{row}'] = tf.linalg.global_norm(list(mine.values()))
          total = totals.setdefault(name, {})
          for i, g in mine.items():
            total[i] = total[i] + g if i in total else g
    out.update({f'{name}/all': tf.linalg.global_norm(list(total.values()))
                for name, total in totals.items()})
    del tape
    return out

  def _trainables(self, name, row=None):
    """(trainable variables, optimizer) of the network TABLE5 calls ``name``; None if this
    configuration does not build it (F and D_X in the GAN ablation). With
    ``generator_optimizer_per_loss``, G's and F's optimizer is the one of Table 5 row ``row``
    (None when it has none: a switched-off row, or no row given)."""
    critics = {'Q_sim': self.critic_sim, 'Q_real': self.critic_real}
    if name in critics:
      return critics[name].trainable_variables, critics[name].optimizer
    net = {'G': self.generator_g, 'F': self.generator_f, 'D_X': self.discriminator_x,
           'D_Y': self.discriminator_y}[name]
    if net is None:
      return None
    if self._optimizer_rows(net) == [None]:
      return net.trainable_variables, self.optimizers[net.name]
    return net.trainable_variables, self.optimizers.get(f'{net.name}/{row}')

  def _apply_rows(self, tape, loss, networks, rows, terms, scaled_terms=None):
    """One backward pass of ``loss`` (the sum of the ``rows``' terms) into ``networks``; with
    ``generator_optimizer_per_loss``, one pass of each row's term (``scaled_terms``, as scaled
    for the replicas) into the networks it updates, each with that row's optimizer.

    A term may reach only the networks its TABLE5 row names; checked while tracing (L_seg in
    the G/F pass has no path to F, which has no mask head).
    """
    groups = {name: self._trainables(name) for name in networks}
    groups = {name: group for name, group in groups.items() if group is not None}
    for row in rows:
      for name, (variables, _) in groups.items():
        if name not in TABLE5[row] and any(
            g is not None for g in tape.gradient(terms[row], variables)):
          raise ValueError(f'Table 5 row {row!r} updates {TABLE5[row]}, but its gradient '
                           f'reaches {name}, which shares its backward pass')
    if all(optimizer is not None for _, optimizer in groups.values()):
      core.apply_gradients(tape, loss, list(groups.values()))
      return
    for row in rows:  # per-loss optimizers (G and F only; checked in _optimizer_rows)
      row_groups = [self._trainables(name, row) for name in groups if name in TABLE5[row]]
      row_groups = [group for group in row_groups if group[1] is not None]
      if row_groups:  # a switched-off row has no optimizer and no gradient
        core.apply_gradients(tape, scaled_terms[row], row_groups)

  @staticmethod
  def _observations(images, sources, key):
    """Concatenates images with their source transitions' gripper states. [S * B, ...]."""
    return {'image': tf.concat(images, axis=0),
            'gripper_state': tf.concat([getattr(s, key)['gripper_state'] for s, _ in sources],
                                       0)}

  def _q_logits(self, critic, images, sources, training):
    """Q logits for several image sets, concatenated so the Q tower runs once. [S * B]."""
    obs = self._observations(images, sources, 'observation')
    action = tf.concat([s.action for s, _ in sources], axis=0)  # [S * B, 8]
    logits, _ = critic.network((obs, action), training=training)  # [S * B]
    return logits
