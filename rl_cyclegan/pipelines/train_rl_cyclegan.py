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
  real data    off-policy episodes from ``Replay.real_episode_dir`` (REQUIRED; every file
               validated before anything is built, naming a bad file)
  batches      ``batch_per_domain`` sim + ``batch_per_domain`` real transitions (paper 8 + 8),
               from separate replay buffers, split per replica under a tf.distribute strategy
  train step   RLCycleGANLearner.train_step (GAN, cycle, RL, RL-scene; Table 5); with
               RLCycleGANLearner.use_segmentation (Table 1's GraspGAN row) also
               ``batch_per_domain`` labelled sim crops from the segmentation set
  evaluation   (Appendix A: "we evaluate the performance of both Q_sim and Q_real in the
               simulator, with simulation-to-real applied prior to evaluating Q_real") greedy
               CEM on the test objects: 'Q_sim/sim' (Q_sim in 'sim'), 'Q_real_G/sim' (Q_real
               on G(sim images)) and, since our real world is available, 'Q_real/real'

Across learner workers (``strategy='multi_worker'``, MultiWorkerMirroredStrategy over the
workers TF_CONFIG names): every worker runs this same loop and the same schedule. Each collects
its own on-policy episodes (its own seed stream) into its own replay and samples a global batch
from it, of which its replicas train on their slices; the gradients are all-reduced, so the
networks stay identical. The chief (task 0) owns ``root_dir``: evaluations, image grids, scene
metrics and the checkpoints that evaluation and export read. Worker k > 0 keeps its replay and
checkpoints (written at the same steps) in ``root_dir/workers/worker-k`` and resumes from them;
a resume checks that every worker restored the same step. The workers wait for each other in
every step's all-reduce, so they are started and stopped together (a lost worker stalls the
others; TF's collectives have no timeout by default).

The loop is runner.py's (shared settings: its gin groups Environment.*, Replay.*,
Exploration.*, Evaluation.*, Checkpointing.*); the run directory's layout is run_dir.py's.

After this run, the final Q is trained from scratch with G frozen (Section 4; Appendix A):
tools/train_qtopt.py --gin_file=gin/final_q.gin with
train_eval.generator_checkpoint = '<root_dir>' (key 'G_sim2real').

Files of root_dir beyond run_dir.py's layout (run_spec.json, operative_config.gin, train/,
eval/, replay/; tools/evaluate.py --checkpoint_dir=<root_dir> evaluates its Q_real):
  paired_set.npz              the held-out paired sim/real renders (evaluation only)
  segmentation_set.npz        labelled sim frames, training objects (only with
                              RLCycleGANLearner.use_segmentation; segmentation_set.py)
  train/events.*              losses/*, q/* (every LossInfo field), rate/*, replay/*,
                              collect/*, images/sim2real, images/real2sim, scene/*
                              (scene/loss_direction/*, scene/weight_step/*:
                              evaluation/loss_direction.py; with each term's
                              <term>/objects/contrast_change: does it draw the
                              objects louder),
                              text q_collapse
  replay/sim/                 on-policy sim episodes (raw sim images, before G)
"""

import collections
import os
import re
from typing import Optional, Sequence

import gin
import tensorflow as tf

from rl_cyclegan import run_dir
from rl_cyclegan import seeds
from rl_cyclegan import specs
from rl_cyclegan.learners import rl_cyclegan as learner_lib
from rl_cyclegan.train import loop
from rl_cyclegan.evaluation import paired_set as paired_set_lib
from rl_cyclegan.train import runner
from rl_cyclegan.evaluation import loss_direction as loss_direction_lib
from rl_cyclegan.evaluation import scene_metrics
from rl_cyclegan.evaluation import rl_scene_pull as rl_scene_pull_lib
from rl_cyclegan.evaluation import segmentation_set as segmentation_set_lib
from rl_cyclegan.evaluation import summaries

# name -> (appearance, critic, apply G first). Appendix A evaluates Q_sim and Q_real(G(.)) in
# the simulator; our pseudo-real world also lets Q_real be evaluated directly.
EVAL_POLICIES = {
    'Q_sim/sim': ('sim', 'Q_sim', False),
    'Q_real_G/sim': ('sim', 'Q_real', True),
    'Q_real/real': ('real', 'Q_real', False),
}
_NON_FINITE_RE = re.compile(r"Loss '(\w+)' is not finite")
WORKER_SEED_STREAM = 7  # seeds.derive_seed(seed, stream, task): a non-chief worker's collection
_log = loop.make_logger('train_rl_cyclegan')


def worker_root_dir(root_dir: str, worker: Optional[loop.WorkerRole] = None) -> str:
  """This process's run directory: ``root_dir``, or for learner worker k > 0 of a
  multi-worker run (``train_rl_cyclegan.strategy = 'multi_worker'``, TF_CONFIG)
  ``root_dir/workers/worker-k`` (idempotent).

  Without ``worker``, reads the gin binding and, for a multi-worker run, creates the strategy
  now: the binary calls this first, before any other TensorFlow op, as
  MultiWorkerMirroredStrategy asks, and to lock the right directory.
  """
  if worker is None:
    try:
      name = gin.query_parameter('train_rl_cyclegan.strategy')
    except ValueError:  # not bound: the default strategy
      return root_dir
    if name != 'multi_worker':
      return root_dir
    worker = loop.worker_role(loop.make_strategy(name))
  if worker.is_chief:
    return root_dir
  tail = os.path.join(run_dir.WORKERS_SUBDIR, f'worker-{worker.task_id}')
  if os.path.normpath(root_dir).endswith(os.sep + tail):
    return root_dir  # already this worker's directory
  return run_dir.worker_dir(root_dir, worker.task_id)


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


def _to_float(images):
  return tf.cast(images, tf.float32)


@gin.configurable('train_rl_cyclegan', denylist=['root_dir'])
def train_eval(
    root_dir: str,
    num_train_steps: int = 20_000,
    batch_per_domain: int = 8,  # sim and real transitions per batch each (App. A: 8 + 8)
    strategy: str = 'default',  # 'default' | 'mirrored' | 'one_device' | 'multi_worker'
    # Warm start of Q_sim and Q_real (online and target networks) from a QT-Opt run's
    # checkpoint (key 'q_network'), e.g. Sim-Only's, at a fresh start only. Not in the paper
    # (Section 4: "All RL-CycleGAN neural networks are trained jointly from scratch").
    critic_init_checkpoint: Optional[str] = None,
    # Q_real's own warm start, instead of critic_init_checkpoint (which then starts Q_sim
    # only), e.g. the Sim-Only Q fine-tuned on the real log (Table 1's critics'-start lever).
    real_critic_init_checkpoint: Optional[str] = None,
    eval_policies: Sequence[str] = tuple(EVAL_POLICIES),
    # ---- Summaries (Appendix A: what to watch for convergence and collapse).
    image_summary_interval: int = 1_000,  # train steps between image grids; 0: never
    scene_metrics_interval: int = 1_000,  # train steps between paired-set metrics; 0: never
    # Train steps between the loss gradient norms (learner.loss_gradient_norms: how hard each
    # weighted loss pulls on each network, on that step's batch); 0: never.
    gradient_norms_interval: int = 1_000,
    max_images: int = 4,  # rows of the image grids
    paired_set_path: Optional[str] = None,  # None: root_dir/paired_set.npz (made once)
    paired_set_num_states: int = 64,  # states of a paired set made here
    paired_set_seed: int = 1_000,  # scenes of a paired set made here (test objects)
    q_collapse_min_std: float = 0.01,  # QCollapseMonitor: q_std below this is "uniform"
    q_collapse_max_rl_scene: float = 0.01,  # ... and L_RL-scene (unweighted) below this
    q_collapse_patience: int = 10,  # consecutive train steps before the alarm
    q_collapse_min_step: int = 10_000,  # armed from here even if Q was never healthy
    q_collapse_warmup_steps: int = 1_000,  # never armed before this step (Q still settling)
    # ---- GraspGAN's mask loss (only with RLCycleGANLearner.use_segmentation; ours).
    segmentation_set_path: Optional[str] = None,  # None: root_dir/segmentation_set.npz, made once
    segmentation_set_num_states: int = 2_000,  # labelled sim states of a set made here
    segmentation_set_seed: int = 2_000,  # scenes of a set made here (training objects)
    seed: int = 0,
    settings: Optional[runner.Settings] = None):  # None: every group from gin
  """Trains RL-CycleGAN jointly via QT-Opt; see the module docstring. Returns run facts.

  Shared settings (environment, replay, exploration, evaluation, checkpointing) are the gin
  groups of runner.py; Replay.real_episode_dir is required. Learner settings are
  RLCycleGANLearner.* / QTOptCritic.*.

  Raises:
    ValueError / TypeError naming the setting for inconsistent or mistyped arguments (e.g. no
    real_episode_dir), EpisodeFormatError naming the file for a bad real episode directory
    (before anything is built), ValueError naming the checkpoint file when it does not match
    this configuration, and NonFiniteLossError naming the loss when a loss becomes NaN / Inf
    (no checkpoint is written after it, so the last one on disk is good).
  """
  settings = settings or runner.Settings()
  env = settings.environment
  runner.check_steps('train_rl_cyclegan.num_train_steps', num_train_steps)
  eval_policies = runner.check_names('train_rl_cyclegan.eval_policies', eval_policies,
                                     tuple(EVAL_POLICIES))
  runner.check_names('train_rl_cyclegan.strategy', (strategy,), loop.STRATEGIES)
  distribution = loop.make_strategy(strategy)
  worker = loop.worker_role(distribution)
  root_dir = worker_root_dir(root_dir, worker)
  if not worker.is_chief:
    # Another learner worker: it runs the same schedule (its own collection, replay and
    # checkpoints at the same steps) in its own directory; the chief's run is the run.
    # (It keeps gradient_norms_interval: the gradient norms reduce over every replica, so
    # each worker computes them at the same steps as the chief.)
    eval_policies, image_summary_interval, scene_metrics_interval = (), 0, 0
    seed = seeds.derive_seed(seed, WORKER_SEED_STREAM, worker.task_id)
  if isinstance(batch_per_domain, bool) or not isinstance(batch_per_domain, int) or (
      batch_per_domain < 1):
    raise TypeError(f'train_rl_cyclegan.batch_per_domain = {batch_per_domain!r}: expected an '
                    'integer >= 1')
  if settings.exploration.collect_steps_per_train_step <= 0 and (
      settings.exploration.initial_collect_episodes < 1):
    raise ValueError('RL-CycleGAN needs sim data: set Exploration.collect_steps_per_train_step '
                     '> 0 or Exploration.initial_collect_episodes > 0')
  runner.check_data(settings, 0.5, needs_real=True, owner='train_rl_cyclegan')
  # Real episodes first: a bad file fails here, naming it, before anything is built.
  real_episodes = runner.load_real_episodes(settings)
  os.makedirs(root_dir, exist_ok=True)

  # ------------------------------------------------------------------ learner
  replicas = distribution.num_replicas_in_sync
  if batch_per_domain % replicas:
    raise ValueError(f'train_rl_cyclegan.batch_per_domain={batch_per_domain} is not divisible '
                     f'by the {replicas} replicas of strategy {strategy!r}')
  learner = learner_lib.RLCycleGANLearner(crop_size=env.crop_size, strategy=distribution)
  generator = learner.generator_g
  critics = {'Q_sim': learner.critic_sim, 'Q_real': learner.critic_real}

  def sim2real(images):  # [B, h, w, 3] float in [-1, 1] -> G(images), float32
    return _to_float(generator(images, training=False))

  def fresh_start():
    starts = {'Q_sim': critic_init_checkpoint,
              'Q_real': real_critic_init_checkpoint or critic_init_checkpoint}
    for name, path in starts.items():
      if path:
        _log(f'{name} (online and targets) initialized from '
             f'{critics[name].initialize_from(path)}')

  # ------------------------------------------------------------------ held-out sets
  paired, paired_path = None, None
  if image_summary_interval > 0 or scene_metrics_interval > 0:
    paired, paired_path = paired_set_lib.load_or_make(
        root_dir, paired_set_path, paired_set_num_states, paired_set_seed, env.render_size,
        env.crop_size, env.action_mode, env.num_objects, log=_log)
    _log(f'paired held-out set: {len(paired["sim"])} states from {paired_path}')
  segmentation, segmentation_path = None, None
  if learner.use_segmentation:  # GraspGAN's mask loss: labelled sim crops for G
    segmentation, segmentation_path = segmentation_set_lib.load_or_make(
        root_dir, segmentation_set_path, segmentation_set_num_states, segmentation_set_seed,
        env.render_size, env.action_mode, env.num_objects, log=_log)
  facts = {'scene_metrics': {}, 'q_collapse_steps': 0, 'grid': None, 'segmentation': None,
           'batches': None}

  def on_open(result, context):
    """After the restore: the samplers that depend on the step, the fixed image-grid rows."""
    if segmentation is not None:
      facts['segmentation'] = segmentation_set_lib.SegmentationSampler(
          segmentation, env.crop_size, batch_per_domain, seed=[seed, result['start_step']])
      _log(f'segmentation set: {len(facts["segmentation"])} labelled sim states from '
           f'{segmentation_path}')
    loop.check_same_step(distribution, result['start_step'], worker)
    if paired is not None and image_summary_interval > 0:
      grid_x = paired['sim'][:max_images]  # uint8 [b, h, w, 3]: paired held-out sim states
      grid_y = context.real_replay.sample(len(grid_x), env.crop_size,
                                          training=False).observation['image']
      facts['grid'] = (grid_x, paired['real'][:max_images], grid_y)

  # ------------------------------------------------------------------ the joint step
  def train_step(sampler, step, context):
    sim_batch, real_batch = sampler.sample(training=True)  # [B] each, model observations
    segmentation_batch = (None if facts['segmentation'] is None else
                          facts['segmentation'].sample())  # [B, h, w, 3], [B, h, w]
    batches = tuple(loop.distribute(distribution, b)
                    for b in (sim_batch, real_batch, segmentation_batch))
    done = step + 1  # ``step`` counts the steps before this one
    if gradient_norms_interval > 0 and (done % gradient_norms_interval == 0 or
                                        done == num_train_steps):
      facts['batches'] = batches  # for the gradient norms after this step (on_step)
    try:
      return learner.train_step(*batches)
    except tf.errors.InvalidArgumentError as e:
      match = _NON_FINITE_RE.search(str(e.message))
      if not match:
        raise
      error = NonFiniteLossError(match.group(1), step, context.manager.latest_checkpoint)
      _log(f'STOPPED: {error}')
      raise error from e

  # Appendix A's mode collapse (uniform Q, spuriously low L_RL-scene): a loud banner on
  # stderr, also written as the text summary 'q_collapse'.
  collapse_logger, collapse_messages = summaries.collapse_logger()
  monitor = summaries.QCollapseMonitor(min_q_std=q_collapse_min_std,
                                       patience=q_collapse_patience,
                                       max_rl_scene=q_collapse_max_rl_scene,
                                       min_step=q_collapse_min_step, logger=collapse_logger,
                                       warmup_steps=q_collapse_warmup_steps)
  def on_step(info, step, context):
    writer = context.train_writer
    facts['q_collapse_steps'] += int(monitor.update(info, step))
    if collapse_messages.messages:
      with writer.as_default(step=step):
        for message in collapse_messages.messages:
          tf.summary.text('q_collapse', message)
      writer.flush()
      collapse_messages.messages = []
    last = step == num_train_steps
    if facts['grid'] is not None and (step % image_summary_interval == 0 or last):
      grid_x, grid_real_x, grid_y = facts['grid']
      with writer.as_default():
        summaries.write_cyclegan_images(learner, grid_x, grid_y, step, paired_real=grid_real_x,
                                        max_images=max_images)
    if paired is not None and scene_metrics_interval > 0 and (
        step % scene_metrics_interval == 0 or last):
      metrics = scene_metrics.evaluate_generator(sim2real, paired)
      if learner.generator_f is not None:  # where L_RL-scene pulls G and F, with these critics
        pull = rl_scene_pull_lib.rl_scene_pull(
            learner.critic_sim.network, learner.critic_real.network, sim2real,
            lambda images: _to_float(learner.generator_f(images, training=False)),
            paired['sim'], paired['real'], paired['gripper_height'])
        metrics.update({f'rl_scene_pull/{k}': v for k, v in pull.items()})
      # Where each loss G trains with pushes G(x), region by region, against real(x): as a
      # pixel gradient, and as the change one step of G's own Adam makes.
      terms = loss_direction_lib.learner_terms(learner, paired['sim'], paired['gripper_height'])
      x_paired = specs.to_float_image(paired['sim'])
      regions = (paired['sim'], paired['real'], paired['object_mask'], paired['robot_mask'])
      directions = loss_direction_lib.loss_directions(terms, sim2real(x_paired), *regions)
      metrics.update({f'loss_direction/{k}': v for k, v in directions.items()})
      scales = loss_direction_lib.learner_preconditioners(learner)
      if scales is not None:
        steps = loss_direction_lib.step_directions(generator, x_paired, terms, *regions,
                                                   preconditioner=scales)
        metrics.update({f'weight_step/{k}': v for k, v in steps.items()})
      with writer.as_default():
        summaries.write_scene_metrics(metrics, step)
      _log(f'scene metrics step {step}: ' + ', '.join(
          f'{k} {metrics[k]:.3f}' for k in ('generator/mae', 'identity/mae',
                                              'generator/object_preservation',
                                              'identity/object_preservation') if k in metrics)
           + (f", L_RL-scene with G, F {metrics['rl_scene_pull/own']:.4f} / with the identity "
              f"{metrics['rl_scene_pull/identity']:.4f}" if 'rl_scene_pull/own' in metrics
              else '')
           + "; G(x)'s change in one Adam step (norm, background colour toward real): "
           + ', '.join(f"{term} {metrics[f'weight_step/{term}/norm']:.3g} "
                       f"({metrics[f'weight_step/{term}/background/colour_toward_real']:+.2f})"
                       for term in loss_direction_lib.TERMS
                       if f'weight_step/{term}/norm' in metrics))
      facts['scene_metrics'][step] = metrics

    if facts['batches'] is not None:  # this step's batch, the weights after it
      norms = learner.loss_gradient_norms(*facts['batches'])
      facts['batches'] = None
      with writer.as_default():
        summaries.write_scene_metrics(norms, step, prefix='gradients')
      by_network = collections.defaultdict(list)
      for key, value in sorted(norms.items()):
        network, row = key.split('/')
        by_network[network].append(f'{row} {value:.3g}')
      _log(f'gradient norms step {step}: ' + '; '.join(
          f"{network} {', '.join(rows)}" for network, rows in by_network.items()))

  def write_summaries(info, step):
    summaries.write_loss_summaries(info, step)
    tf.summary.scalar('q/collapse_suspected', float(monitor.collapsed))

  def progress_head(info):
    return (f'total {float(info.total):.3f} gan G/D {float(info.gan_generator):.3f}/'
            f'{float(info.gan_discriminator):.3f} cycle {float(info.cycle):.3f} rl '
            f'{float(info.rl_sim):.3f}+{float(info.rl_real):.3f} scene '
            f'{float(info.rl_scene):.4f} q_x {float(info.q_x):.3f} q_y {float(info.q_y):.3f} '
            f'std {float(info.q_std):.3f}' +
            (f' seg {float(info.segmentation):.3f}' if learner.use_segmentation else ''))

  def on_finish(result, context):
    del context
    result.update(scene_metrics=facts['scene_metrics'], paired_set=paired_path,
                  replicas=replicas, q_collapse_steps=facts['q_collapse_steps'])
    if segmentation_path:
      result['segmentation_set'] = segmentation_path

  switches = ', '.join(f'{k}={getattr(learner, k)}' for k in (
      'use_real2sim', 'use_gan', 'use_cycle', 'use_rl', 'use_rl_scene', 'use_segmentation'))
  _log(f'RL-CycleGAN: batch {batch_per_domain} sim + {batch_per_domain} real, {replicas} '
       f'replica(s), strategy {strategy!r}, {switches}')
  pipeline = runner.Pipeline(
      name='train_rl_cyclegan', learner=learner, train_step=train_step,
      write_summaries=write_summaries, progress_head=progress_head,
      # Fig. 6: on-policy w.r.t. Q_real in the simulation-to-real environment.
      collect_network=learner.critic_real.network, collect_transform=sim2real,
      eval_policies={name: (EVAL_POLICIES[name][0], critics[EVAL_POLICIES[name][1]].network,
                            sim2real if EVAL_POLICIES[name][2] else None)
                     for name in eval_policies},
      run_spec=dict(kind='rl_cyclegan', policy_q_key='Q_real', generator_input='crops'),
      sim_fraction=0.5, batch_size=2 * batch_per_domain, needs_real=True, on_open=on_open,
      on_step=on_step, on_finish=on_finish, fresh_start=fresh_start)
  return runner.run(root_dir, pipeline, settings, num_train_steps, seed, _log,
                    real_episodes=real_episodes)
