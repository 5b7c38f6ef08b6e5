"""RL-CycleGAN train/eval loop: the joint step trained via QT-Opt (paper Section 4, Fig. 6).

Paper Appendix A, Fig. 6: "Images from a simulator are transformed by Sim2Real generator G and
then passed to Q_real to generate an action. In this way, on-policy (w.r.t Q_real) episodes are
generated in the simulation-to-real environment. Off-policy real grasps are read from disk.
Separate replay buffers and bellman update instances are used for the off-policy real and
on-policy simulation-to-real data. RL-CycleGAN is trained with batches with equal parts from
real and simulation-to-real data."

  collection   CEMPolicy(Q_real, image_transform = G(., training=False)) in the simulator
               (appearance 'sim'), epsilon / noise schedules as QT-Opt; after an initial
               scripted collection, on-policy env steps are kept >= train steps * ratio
  real data    off-policy episodes from ``real_episode_dir`` (REQUIRED; every file validated
               before anything is built, naming a bad file)
  batches      ``batch_per_domain`` sim + ``batch_per_domain`` real transitions (paper 8 + 8),
               from separate replay buffers, split per replica under a tf.distribute strategy
  train step   RLCycleGANLearner.train_step (GAN, cycle, RL, RL-scene; Table 5); with
               RLCycleGANLearner.use_segmentation (Table 1's GraspGAN row) also
               ``batch_per_domain`` labelled sim crops from the segmentation set
  evaluation   (Appendix A: "we evaluate the performance of both Q_sim and Q_real in the
               simulator, with simulation-to-real applied prior to evaluating Q_real") greedy
               CEM on the test objects: 'Q_sim/sim' (Q_sim in 'sim'), 'Q_real_G/sim' (Q_real
               on G(sim images)) and, since our real world is available, 'Q_real/real'

After this run, the final Q is trained from scratch with G frozen (Section 4; Appendix A):
tools/train_qtopt.py --gin_file=gin/final_q.gin with
train_eval.generator_checkpoint = '<root_dir>/train/ckpt' (key 'G_sim2real').

Layout of root_dir:
  operative_config.gin        the gin config in force (atomic), read by tools/evaluate.py
                              (--checkpoint_dir=<root_dir> --q_network_key=Q_real)
  paired_set.npz              the held-out paired sim/real renders (evaluation only)
  segmentation_set.npz        labelled sim frames, training objects (only with
                              RLCycleGANLearner.use_segmentation; segmentation_set.py)
  train/ckpt/                 networks, targets, optimizers, step, collection counters
  train/events.*              losses/*, q/* (every LossInfo field), rate/*, replay/*,
                              collect/*, images/sim2real, images/real2sim, scene/*,
                              text q_collapse
  eval/events.*, eval/eval_<step>.json    success rate per evaluation (+ Wilson CI)
  replay/sim/sim-NNNNNN.tfrecord          on-policy sim episodes (raw sim images, before G)
"""

import logging
import os
import re
import statistics
import sys
from typing import Optional, Sequence

import gin
import numpy as np
import tensorflow as tf

from rl_cyclegan import policies
from rl_cyclegan import specs
from rl_cyclegan.learners import rl_cyclegan as learner_lib
from rl_cyclegan.train import loop
from rl_cyclegan.train import paired_set as paired_set_lib
from rl_cyclegan.train import replay as replay_lib
from rl_cyclegan.train import scene_metrics
from rl_cyclegan.train import segmentation_set as segmentation_set_lib
from rl_cyclegan.train import summaries

PAIRED_SET_FILE = 'paired_set.npz'
SEGMENTATION_SET_FILE = 'segmentation_set.npz'
# name -> (appearance, critic, apply G first). Appendix A evaluates Q_sim and Q_real(G(.)) in
# the simulator; our pseudo-real world also lets Q_real be evaluated directly.
EVAL_POLICIES = {
    'Q_sim/sim': ('sim', 'Q_sim', False),
    'Q_real_G/sim': ('sim', 'Q_real', True),
    'Q_real/real': ('real', 'Q_real', False),
}
_NON_FINITE_RE = re.compile(r"Loss '(\w+)' is not finite")
_log = loop.make_logger('train_rl_cyclegan')


class NonFiniteLossError(RuntimeError):
  """A loss became NaN or Inf: training stopped without saving (the last checkpoint is good)."""

  def __init__(self, loss_name, step, checkpoint):
    self.loss_name = loss_name
    self.step = step
    self.checkpoint = checkpoint
    super().__init__(
        f'loss {loss_name!r} is not finite (NaN or Inf) in train step {step + 1}; training '
        f'stopped without saving a checkpoint. The last good checkpoint is {checkpoint!r}'
        f'{"" if checkpoint else " (none was written yet)"}. Check the data (rewards, images) '
        f'and the loss weights / learning rate.')


def load_or_make_paired_set(root_dir, path, num_states, seed, render_size, crop_size,
                            action_mode, num_objects):
  """The held-out paired set: ``path`` if given, else root_dir/paired_set.npz (made once).

  Raises ValueError naming the file if its crops are not ``crop_size``.
  """
  if not path:
    path = os.path.join(root_dir, PAIRED_SET_FILE)
    if not os.path.exists(path):
      _log(f'making the held-out paired set: {num_states} states (test objects) -> {path}')
      paired_set_lib.save_paired_set(path, paired_set_lib.make_paired_set(
          num_states, render_size=render_size, crop_size=crop_size, seed=seed,
          action_mode=action_mode, num_objects=num_objects))
  data = paired_set_lib.load_paired_set(path)
  size = tuple(int(s) for s in np.shape(data['sim'])[1:3])
  if size != tuple(crop_size):
    raise ValueError(f'paired set {path!r} holds {size[0]}x{size[1]} crops but the run uses '
                     f'crop_size {tuple(crop_size)}; make one at this size (or delete it to '
                     f'have it rebuilt)')
  return data, path


def load_or_make_segmentation_set(root_dir, path, num_states, seed, render_size, action_mode,
                                  num_objects):
  """The labelled sim frames of GraspGAN's mask loss: ``path`` if given, else
  root_dir/segmentation_set.npz (made once, training objects, 'sim' only).

  Raises ValueError naming the file if its frames are not ``render_size``.
  """
  if not path:
    path = os.path.join(root_dir, SEGMENTATION_SET_FILE)
    if not os.path.exists(path):
      _log(f'making the segmentation set: {num_states} labelled sim states (training objects) '
           f'-> {path}')
      data = segmentation_set_lib.make_segmentation_set(
          num_states, render_size=render_size, seed=seed, action_mode=action_mode,
          num_objects=num_objects)
      segmentation_set_lib.save_segmentation_set(path, data)
  return segmentation_set_lib.load_segmentation_set(path, render_size), path


def _to_float(images):
  return tf.cast(images, tf.float32)


class _RecordingHandler(logging.Handler):
  """Keeps the messages of a logger (the collapse banners, written as text summaries)."""

  def __init__(self):
    super().__init__()
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


def _collapse_logger():
  """A private logger: the monitor's banners go to stderr and to a recording handler."""
  logger = logging.Logger('rl_cyclegan.q_collapse')  # not registered: no shared handlers
  recorder = _RecordingHandler()
  logger.addHandler(recorder)
  logger.addHandler(logging.StreamHandler(sys.stderr))
  return logger, recorder


@gin.configurable('train_rl_cyclegan', denylist=['root_dir'])
def train_eval(
    root_dir: str,
    # ---- Environment (rl_cyclegan/envs/grasping.py; other GraspingEnv settings via gin).
    appearance: str = 'sim',  # the simulator of Fig. 6 (G maps it to real)
    render_size: Sequence[int] = specs.DEFAULT_RENDER_SIZE,  # (H, W) px; paper 512x640
    crop_size: Sequence[int] = specs.DEFAULT_CROP_SIZE,  # (h, w) px; paper 472x472
    action_mode: str = 'auto_descend',  # 'auto_descend' (CPU) or 'full' (paper Section 5)
    num_objects: int = 5,  # objects in the tray
    num_envs: int = 2,  # lockstep environments for collection and evaluation
    auto_descend_terminate: bool = False,  # may the CEM policies pick 'terminate'?
    # ---- Data.
    real_episode_dir: Optional[str] = None,  # REQUIRED: off-policy real episodes
    batch_per_domain: int = 8,  # sim and real transitions per batch each (App. A: 8 + 8)
    sim_replay_capacity: int = 50_000,  # transitions (~31 KB each at 64x80)
    real_replay_capacity: int = 50_000,  # transitions
    episodes_per_shard: int = 16,  # sim episodes per replay/sim shard
    # Off-policy sim episodes (e.g. the scripted log of the Sim-Only recipe) in their own
    # buffer, drawn as ``sim_log_fraction`` of the sim half of every batch; the rest comes
    # from the on-policy episodes. Not in Fig. 6, which draws sim data on-policy only.
    sim_episode_dir: Optional[str] = None,
    sim_log_fraction: float = 0.5,
    sim_log_capacity: int = 120_000,  # transitions of the sim log
    # ---- Collection (on-policy w.r.t. Q_real on G(sim), Fig. 6).
    initial_collect_episodes: int = 100,  # episodes of the initial policy before training
    initial_collect_policy: str = 'scripted',  # 'scripted' or 'random'
    collect_steps_per_train_step: float = 1.0,  # on-policy env steps per train step
    epsilon_start: float = 0.5,  # P(random action), linear over epsilon_decay_steps
    epsilon_end: float = 0.1,
    epsilon_decay_steps: int = 5_000,  # train steps
    noise_std_start: float = 0.2,  # Gaussian noise on (dx, dy, dz, u) of the CEM action
    noise_std_end: float = 0.05,
    noise_decay_steps: int = 5_000,  # train steps
    # ---- Training (learner settings via gin: RLCycleGANLearner.*, QTOptCritic.*).
    num_train_steps: int = 20_000,
    min_replay_transitions: int = 64,  # per buffer, before the first train step
    strategy: str = 'default',  # 'default' | 'mirrored' | 'one_device'
    # Warm start of Q_sim and Q_real (online and target networks) from a QT-Opt run's
    # checkpoint (key 'q_network'), e.g. Sim-Only's, at a fresh start only. Not in the paper
    # (Section 4: "All RL-CycleGAN neural networks are trained jointly from scratch").
    critic_init_checkpoint: Optional[str] = None,
    # ---- Evaluation (greedy CEM on the unseen test objects, Appendix A).
    eval_interval: int = 2_000,  # train steps
    num_eval_episodes: int = 50,  # per evaluated policy
    eval_policies: Sequence[str] = tuple(EVAL_POLICIES),
    eval_seed: int = 0,  # the same scenes at every evaluation (paired curve)
    eval_at_start: bool = False,
    # ---- Summaries (Appendix A: what to watch for convergence and collapse).
    summary_interval: int = 100,  # train steps between scalar summaries
    image_summary_interval: int = 1_000,  # train steps between image grids; 0: never
    scene_metrics_interval: int = 1_000,  # train steps between paired-set metrics; 0: never
    max_images: int = 4,  # rows of the image grids
    paired_set_path: Optional[str] = None,  # None: root_dir/paired_set.npz (made once)
    paired_set_num_states: int = 64,  # states of a paired set made here
    paired_set_seed: int = 1_000,  # scenes of a paired set made here (test objects)
    q_collapse_min_std: float = 0.01,  # QCollapseMonitor: q_std below this is "uniform"
    q_collapse_max_rl_scene: float = 0.01,  # ... and L_RL-scene (unweighted) below this
    q_collapse_patience: int = 10,  # consecutive train steps before the alarm
    q_collapse_min_step: int = 10_000,  # armed from here even if Q was never healthy
    # ---- GraspGAN's mask loss (only with RLCycleGANLearner.use_segmentation; ours).
    segmentation_set_path: Optional[str] = None,  # None: root_dir/segmentation_set.npz, made once
    segmentation_set_num_states: int = 2_000,  # labelled sim states of a set made here
    segmentation_set_seed: int = 2_000,  # scenes of a set made here (training objects)
    # ---- Checkpoints, logging.
    checkpoint_interval: int = 1_000,  # train steps
    max_checkpoints_to_keep: int = 3,
    log_interval: int = 100,  # train steps between progress lines
    seed: int = 0):
  """Trains RL-CycleGAN jointly via QT-Opt; see the module docstring. Returns run facts.

  Raises:
    ValueError naming the setting for inconsistent arguments (e.g. no real_episode_dir),
    EpisodeFormatError naming the file for a bad real episode directory (before anything is
    built), ValueError naming the checkpoint file when it does not match this configuration,
    and NonFiniteLossError naming the loss when a loss becomes NaN / Inf (no checkpoint is
    written after it, so the last one on disk is good).
  """
  from rl_cyclegan.envs import appearance as appearance_lib  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.envs import grasping  # pylint: disable=g-import-not-at-top

  # ------------------------------------------------------------------ argument checks
  render_size = tuple(int(s) for s in render_size)
  crop_size = tuple(int(s) for s in crop_size)
  for name, value, valid in (
      ('appearance', appearance, appearance_lib.APPEARANCE_NAMES),
      ('action_mode', action_mode, grasping.ACTION_MODES),
      ('initial_collect_policy', initial_collect_policy, policies.SCRIPTED_POLICY_NAMES),
      ('strategy', strategy, loop.STRATEGIES)):
    if value not in valid:
      raise ValueError(f'train_rl_cyclegan.{name}={value!r}; valid values: {", ".join(valid)}')
  for name in eval_policies:
    if name not in EVAL_POLICIES:
      raise ValueError(f'train_rl_cyclegan.eval_policies has {name!r}; valid values: '
                       f'{", ".join(EVAL_POLICIES)}')
  if crop_size[0] > render_size[0] or crop_size[1] > render_size[1]:
    raise ValueError(f'crop_size {crop_size} is larger than render_size {render_size}')
  if not real_episode_dir:
    raise ValueError('train_rl_cyclegan.real_episode_dir is required: a directory of real '
                     'episode TFRecord shards (tools/collect.py --appearance=real) at '
                     f'render_size {render_size}')
  if batch_per_domain < 1:
    raise ValueError(f'train_rl_cyclegan.batch_per_domain must be >= 1, got {batch_per_domain}')
  if collect_steps_per_train_step <= 0 and initial_collect_episodes < 1:
    raise ValueError('RL-CycleGAN needs sim data: set collect_steps_per_train_step > 0 or '
                     'initial_collect_episodes > 0')
  if sim_episode_dir and not 0.0 < sim_log_fraction < 1.0:
    raise ValueError(f'train_rl_cyclegan.sim_log_fraction must be in (0, 1) with a '
                     f'sim_episode_dir, got {sim_log_fraction}')
  if sim_episode_dir and collect_steps_per_train_step <= 0:
    raise ValueError('train_rl_cyclegan.sim_episode_dir shares the sim half of each batch with '
                     'on-policy episodes: set collect_steps_per_train_step > 0')

  # Real episodes first: a bad file fails here, naming it, before anything is built.
  real_episodes = replay_lib.load_real_episodes(real_episode_dir, render_size,
                                                real_replay_capacity)

  os.makedirs(root_dir, exist_ok=True)
  train_dir = os.path.join(root_dir, 'train')
  eval_dir = os.path.join(root_dir, 'eval')
  os.makedirs(eval_dir, exist_ok=True)
  if action_mode == 'auto_descend':  # see train_qtopt: by default the policy only moves
    allowed_modes = (policies.AUTO_DESCEND_MODES if auto_descend_terminate
                     else (True, False, False, False))
  else:
    allowed_modes = None

  # ------------------------------------------------------------------ learner, checkpoint
  distribution = loop.make_strategy(strategy)
  replicas = distribution.num_replicas_in_sync
  if batch_per_domain % replicas:
    raise ValueError(f'train_rl_cyclegan.batch_per_domain={batch_per_domain} is not divisible '
                     f'by the {replicas} replicas of strategy {strategy!r}')
  learner = learner_lib.RLCycleGANLearner(crop_size=crop_size, strategy=distribution)
  generator = learner.generator_g

  def sim2real(images):  # [B, h, w, 3] float in [-1, 1] -> G(images), float32
    return _to_float(generator(images, training=False))

  def make_env(appearance, object_split, seed):
    return grasping.GraspingEnv(appearance=appearance, object_split=object_split, seed=seed,
                                render_size=render_size, action_mode=action_mode,
                                num_objects=num_objects)

  collection = loop.SimCollection(
      root_dir, enabled=True, make_env=make_env, appearance=appearance, num_envs=num_envs,
      render_size=render_size, replay_capacity=sim_replay_capacity,
      episodes_per_shard=episodes_per_shard, seed=seed, log=_log,
      offline_episode_dir=sim_episode_dir,
      offline_replay_capacity=sim_log_capacity if sim_episode_dir else None)
  checkpoint = tf.train.Checkpoint(**learner.checkpoint_items(),
                                   **collection.checkpoint_items())
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(root_dir, loop.CHECKPOINT_SUBDIR),
                                       max_to_keep=max_checkpoints_to_keep)
  switches = ', '.join(f'{k}={getattr(learner, k)}' for k in (
      'use_real2sim', 'use_gan', 'use_cycle', 'use_rl', 'use_rl_scene', 'use_segmentation'))
  resumed = loop.restore_latest(
      checkpoint, manager, f'crop size {crop_size}, {switches}, network settings from gin')
  if resumed:
    _log(f'resumed from {manager.latest_checkpoint} at train step '
         f'{int(learner.train_step_counter.numpy())}, {int(collection.env_steps.numpy())} '
         f'env steps')
  elif critic_init_checkpoint:
    for critic in learner.critics:
      path = critic.initialize_from(critic_init_checkpoint)
    _log(f'Q_sim and Q_real (online and targets) initialized from {path}')

  # ------------------------------------------------------------------ replay buffers
  collection.open(resumed)
  sim_replay = collection.replay
  real_replay = replay_lib.TransitionReplay(render_size, real_replay_capacity, name='real')
  n, t, s = replay_lib.refill(real_replay, real_episodes)
  _log(f'real replay filled with {n} episodes ({t} transitions) from {real_episode_dir} '
       f'({s:.1f}s)')
  del real_episodes
  sim_source = sim_replay
  if collection.offline_replay is not None:
    sim_source = replay_lib.ReplayMix(collection.offline_replay, sim_replay, sim_log_fraction,
                                      name='sim')
  sampler = replay_lib.MixedSampler(sim_source, real_replay, 2 * batch_per_domain, 0.5,
                                    crop_size)
  result = {'resumed': resumed, 'start_step': int(learner.train_step_counter.numpy())}

  # ------------------------------------------------------------------ held-out paired set
  paired, paired_path = None, None
  if image_summary_interval > 0 or scene_metrics_interval > 0:
    paired, paired_path = load_or_make_paired_set(
        root_dir, paired_set_path, paired_set_num_states, paired_set_seed, render_size,
        crop_size, action_mode, num_objects)
    _log(f'paired held-out set: {len(paired["sim"])} states from {paired_path}')

  # ------------------------------------------------------------------ segmentation set
  segmentation_sampler = None
  if learner.use_segmentation:  # GraspGAN's mask loss: labelled sim crops for G
    segmentation, segmentation_path = load_or_make_segmentation_set(
        root_dir, segmentation_set_path, segmentation_set_num_states, segmentation_set_seed,
        render_size, action_mode, num_objects)
    segmentation_sampler = segmentation_set_lib.SegmentationSampler(
        segmentation, crop_size, batch_per_domain, seed=[seed, result['start_step']])
    result['segmentation_set'] = segmentation_path
    _log(f'segmentation set: {len(segmentation_sampler)} labelled sim states from '
         f'{segmentation_path}')
    del segmentation

  # ------------------------------------------------------------------ policies
  collection.start_envs()
  critics = {'Q_sim': learner.critic_sim, 'Q_real': learner.critic_real}
  if collect_steps_per_train_step > 0:
    # Fig. 6: on-policy w.r.t. Q_real in the simulation-to-real environment.
    collection.set_cem_policy(
        learner.critic_real.network,
        loop.ExplorationSchedule(epsilon_start, epsilon_end, epsilon_decay_steps,
                                 noise_std_start, noise_std_end, noise_decay_steps),
        collect_steps_per_train_step, name='rl_cyclegan', render_size=render_size,
        crop_size=crop_size, image_transform=sim2real, allowed_modes=allowed_modes)

  train_writer = tf.summary.create_file_writer(train_dir)
  eval_writer = tf.summary.create_file_writer(eval_dir)
  evaluator = loop.Evaluator(eval_dir, eval_writer, make_env, num_episodes=num_eval_episodes,
                             num_envs=num_envs, seed=eval_seed, env_steps=collection.env_steps,
                             log=_log)
  for name in eval_policies:
    eval_appearance, critic, use_g = EVAL_POLICIES[name]
    evaluator.add(name, eval_appearance, policies.greedy_action_fn(policies.CEMPolicy(
        critics[critic].network, render_size=render_size, crop_size=crop_size,
        image_transform=sim2real if use_g else None, allowed_modes=allowed_modes,
        seed=eval_seed), name=name))

  # The values passed explicitly that tools/evaluate.py and the final-Q phase need to rebuild
  # the networks (UNetGenerator / GraspingQNetwork widths are in the gin part already).
  explicit = {'GraspingQNetwork.crop_size': crop_size, 'GraspingEnv.num_objects': num_objects}
  loop.write_operative_config(root_dir, explicit, caller='train_rl_cyclegan')

  # ------------------------------------------------------------------ summaries
  # Fixed rows for the image grids: paired held-out sim states (with their true real
  # renders) and one fixed batch of real center crops.
  grid_x = grid_real_x = grid_y = None
  if paired is not None and image_summary_interval > 0:
    grid_x = paired['sim'][:max_images]  # uint8 [b, h, w, 3]
    grid_real_x = paired['real'][:max_images]
    grid_y = real_replay.sample(len(grid_x), crop_size, training=False).observation['image']
  # Appendix A's mode collapse (uniform Q, spuriously low L_RL-scene): a loud banner on
  # stderr, also written as the text summary 'q_collapse'.
  collapse_logger, collapse_messages = _collapse_logger()
  monitor = summaries.QCollapseMonitor(min_q_std=q_collapse_min_std,
                                       patience=q_collapse_patience,
                                       max_rl_scene=q_collapse_max_rl_scene,
                                       min_step=q_collapse_min_step, logger=collapse_logger)

  def write_images(step):
    with train_writer.as_default():
      summaries.write_cyclegan_images(learner, grid_x, grid_y, step, paired_real=grid_real_x,
                                      max_images=max_images)

  def write_scene_metrics(step):
    metrics = scene_metrics.evaluate_generator(sim2real, paired)
    with train_writer.as_default():
      summaries.write_scene_metrics(metrics, step)
    _log(f'scene metrics step {step}: ' + ', '.join(
        f'{k} {metrics[k]:.3f}' for k in ('generator/mae', 'identity/mae',
                                            'generator/object_preservation',
                                            'identity/object_preservation') if k in metrics))
    return metrics

  # ------------------------------------------------------------------ the loop
  def save_checkpoint():
    collection.flush()  # the checkpoint's bookkeeping never runs ahead of the shards on disk
    return manager.save(checkpoint_number=learner.train_step_counter)

  timer = loop.TrainTimer()
  evals, scene = {}, {}
  collapse_steps = 0
  try:
    with loop.sigterm_as_exception():
      collection.initial_collection(initial_collect_episodes, initial_collect_policy)
      if real_replay.num_transitions < min(min_replay_transitions, real_replay.capacity):
        raise ValueError(f'the real replay holds {real_replay.num_transitions} transitions '
                         f'from {real_episode_dir}, fewer than min_replay_transitions='
                         f'{min_replay_transitions}')
      if collection.policy is None and sim_replay.num_transitions < min(
          min_replay_transitions, sim_replay.capacity):
        raise ValueError(f'the sim replay holds {sim_replay.num_transitions} transitions, '
                         f'fewer than min_replay_transitions={min_replay_transitions}')

      step = int(learner.train_step_counter.numpy())
      if eval_at_start and not resumed and evaluator:
        evals[step] = evaluator.run(step)
      progress = loop.ProgressLogger(num_train_steps, step, timer, collection, _log)
      rates = loop.RateSummaries(timer, collection, {'sim': sim_replay, 'real': real_replay,
                                                     'sim_log': collection.offline_replay})
      _log(f'training from step {step} to {num_train_steps} (batch {batch_per_domain} sim + '
           f'{batch_per_domain} real, {replicas} replica(s), strategy {strategy!r}, '
           f'{switches})')
      while step < num_train_steps:
        # ---- collection: keep on-policy env steps >= train steps * ratio.
        collection.collect_on_policy(step, min_replay_transitions)
        # ---- one joint train step.
        sim_batch, real_batch = sampler.sample(training=True)  # [B] each, model observations
        segmentation_batch = (None if segmentation_sampler is None else
                              segmentation_sampler.sample())  # [B, h, w, 3], [B, h, w]
        try:
          with timer.step():
            info = learner.train_step(loop.distribute(distribution, sim_batch),
                                      loop.distribute(distribution, real_batch),
                                      loop.distribute(distribution, segmentation_batch))
        except tf.errors.InvalidArgumentError as e:
          match = _NON_FINITE_RE.search(str(e.message))
          if not match:
            raise
          error = NonFiniteLossError(match.group(1), step, manager.latest_checkpoint)
          _log(f'STOPPED: {error}')
          raise error from e
        step = int(learner.train_step_counter.numpy())

        collapse_steps += int(monitor.update(info, step))
        if collapse_messages.messages:
          with train_writer.as_default(step=step):
            for message in collapse_messages.messages:
              tf.summary.text('q_collapse', message)
          train_writer.flush()
          collapse_messages.messages = []
        if step % summary_interval == 0:
          with train_writer.as_default(step=step):
            summaries.write_loss_summaries(info, step)
            tf.summary.scalar('q/collapse_suspected', float(monitor.collapsed))
            rates.write()
        if grid_x is not None and (step % image_summary_interval == 0 or
                                   step == num_train_steps):
          write_images(step)
        if paired is not None and scene_metrics_interval > 0 and (
            step % scene_metrics_interval == 0 or step == num_train_steps):
          scene[step] = write_scene_metrics(step)
        if step % log_interval == 0 or step == num_train_steps:
          progress.log(step, (
              f'step {step}/{num_train_steps} total {float(info.total):.3f} gan G/D '
              f'{float(info.gan_generator):.3f}/{float(info.gan_discriminator):.3f} cycle '
              f'{float(info.cycle):.3f} rl {float(info.rl_sim):.3f}+{float(info.rl_real):.3f} '
              f'scene {float(info.rl_scene):.4f} q_x {float(info.q_x):.3f} q_y '
              f'{float(info.q_y):.3f} std {float(info.q_std):.3f}' +
              (f' seg {float(info.segmentation):.3f}' if learner.use_segmentation else '')))
        if step % checkpoint_interval == 0:
          save_checkpoint()
        if evaluator and (step % eval_interval == 0 or step == num_train_steps):
          evals[step] = evaluator.run(step)
      save_checkpoint()
      train_writer.flush()
  except (KeyboardInterrupt, loop.Terminate):
    _log('interrupted: saving a checkpoint and the pending sim episodes before exiting')
    save_checkpoint()
    raise
  finally:
    collection.close()
    train_writer.flush()
  loop.write_operative_config(root_dir, explicit, caller='train_rl_cyclegan')

  step_seconds = timer.step_seconds[1:] or timer.step_seconds  # the first step traces
  result.update(final_step=int(learner.train_step_counter.numpy()),
                env_steps=int(collection.env_steps.numpy()),
                sim_episodes=int(collection.sim_episodes.numpy()),
                checkpoint=manager.latest_checkpoint, evals=evals, scene_metrics=scene,
                paired_set=paired_path, replicas=replicas,
                q_collapse_steps=collapse_steps,
                train_step_seconds=statistics.median(step_seconds) if step_seconds else None,
                train_steps_per_sec=timer.rate, env_steps_per_sec=collection.collect_rate)
  return result
