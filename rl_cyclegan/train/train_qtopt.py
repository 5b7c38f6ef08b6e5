"""QT-Opt train/eval loop: one Q-function from on-policy sim and/or off-policy real episodes.

The baselines of paper Tables 1-3 and the final-Q phase of RL-CycleGAN (Section 4):

  Sim-Only / Randomized-Sim   appearance 'sim' / 'randomized', sim_fraction 1, collection on
  Real-Only                   real_episode_dir, sim_fraction 0, no collection
  Sim+Real (Appendix A)       both, sim_fraction 0.5 ("equal parts"), real_loss_weight
  final Q of RL-CycleGAN      + generator_checkpoint: a frozen Sim2Real G on the sim images,
                              not on real images. translate_frames (default): G translates
                              each whole frame once (data/translation.py): the sim log into a
                              cached copy under root_dir/translated_sim_log, every rendered sim
                              frame in the sim-to-real env (envs/sim2real.py), and the replay
                              stores G's output, so a train step costs what Sim-Only's costs.
                              translate_frames=False: G on the crops in every train step
                              (QTOptLearner(image_transform=G)) and action (CEMPolicy).

Loop (one process; collection and training alternate):
  1. build everything (gin is parsed by the binary before this), restore the latest checkpoint;
     refill the sim buffer from root_dir/replay/sim/ shards (newest first, up to capacity)
     and the real buffer from real_episode_dir (validated first, naming a bad file);
     ``sim_episode_dir`` (off-policy episodes in the training appearance, e.g. a scripted log
     written in parallel by tools/collect.py; QT-Opt's offline data) is loaded into the sim
     buffer first, at every start; the run's own shards fill the remaining capacity;
  2. fresh run: ``initial_collect_episodes`` with the scripted (or random) policy;
  3. repeat: collect one round of ``num_envs`` lockstep episodes with the exploring CEM policy
     whenever the on-policy env steps (after the initial collection) are fewer than
     train steps * ``collect_steps_per_train_step``, then one train step;
     summaries, progress line, evaluation (greedy CEM, test objects, per appearance, JSON),
     checkpoints (the sim episode log is flushed first, so a checkpoint never refers to sim
     data that is not on disk).

The machinery shared with train_rl_cyclegan.py (collection, evaluation, checkpoint restore,
progress, summaries of rates) lives in loop.py.

Layout of root_dir:
  operative_config.gin        the gin config in force (atomic), read by tools/evaluate.py
  train/ckpt/                 tf.train.CheckpointManager: networks, targets, optimizer, step,
                              replay bookkeeping (env steps, sim episodes)
  train/events.*              TensorBoard: loss, Q statistics, rates, replay sizes
  eval/events.*               TensorBoard: success rate per appearance (+ Wilson CI)
  eval/eval_<step>.json       evaluation results per eval step (atomic)
  replay/sim/sim-NNNNNN.tfrecord   on-policy sim episodes (episode TFRecord schema)
"""

import hashlib
import os
from typing import Optional, Sequence

import gin
import numpy as np
import tensorflow as tf

from rl_cyclegan import checkpoints
from rl_cyclegan import policies
from rl_cyclegan import specs
from rl_cyclegan.data import translation
from rl_cyclegan.learners import qtopt as qtopt_lib
from rl_cyclegan.train import loop
from rl_cyclegan.train import replay as replay_lib

OPERATIVE_CONFIG = loop.OPERATIVE_CONFIG
CHECKPOINT_SUBDIR = loop.CHECKPOINT_SUBDIR
SIM_REPLAY_SUBDIR = loop.SIM_REPLAY_SUBDIR
TRANSLATED_SIM_LOG_SUBDIR = 'translated_sim_log'  # G(sim log), made once per generator
_log = loop.make_logger('train_qtopt')
# Re-exported for existing callers.
_format_seconds = loop.format_seconds
_Terminate = loop.Terminate


def replay_digest(replay: replay_lib.TransitionReplay) -> str:
  """Order-independent digest of every transition in ``replay`` (for resume checks)."""
  data = replay.gather_all()
  leaves = replay_lib._leaves(data)  # pylint: disable=protected-access
  rows = []
  for i in range(replay.num_transitions):
    h = hashlib.sha1()
    for leaf in leaves:
      h.update(np.ascontiguousarray(leaf[i]).tobytes())
    rows.append(h.hexdigest())
  return hashlib.sha1(''.join(sorted(rows)).encode()).hexdigest()


def load_frozen_generator(path: str, key: str = 'G_sim2real', crop_size=specs.DEFAULT_CROP_SIZE):
  """A UNetGenerator (gin-configured) restored from checkpoint ``path`` (file or directory).

  The generator is frozen (``trainable = False``) and called with ``training=False``.
  Raises FileNotFoundError / ValueError naming the checkpoint and what was expected.
  """
  from rl_cyclegan.networks import generator as generator_lib  # pylint: disable=g-import-not-at-top
  generator = generator_lib.UNetGenerator(name='G_sim2real')
  generator(tf.zeros([1, *crop_size, specs.IMAGE_CHANNELS]), training=False)  # build
  checkpoints.restore({key: generator}, path,
                      f'generator_checkpoint (the frozen G, crop size {tuple(crop_size)})')
  generator.trainable = False
  return generator


@gin.configurable(denylist=['root_dir'])
def train_eval(
    root_dir: str,
    # ---- Environment (rl_cyclegan/envs/grasping.py; other GraspingEnv settings via gin).
    appearance: str = 'sim',  # training appearance: 'sim', 'randomized' or 'real'
    render_size: Sequence[int] = specs.DEFAULT_RENDER_SIZE,  # (H, W) px; paper 512x640
    crop_size: Sequence[int] = specs.DEFAULT_CROP_SIZE,  # (h, w) px; paper 472x472
    action_mode: str = 'auto_descend',  # 'auto_descend' (CPU) or 'full' (paper Section 5)
    num_objects: int = 5,  # objects in the tray
    num_envs: int = 2,  # lockstep environments for collection and evaluation
    auto_descend_terminate: bool = False,  # may CEM pick 'terminate' in 'auto_descend'?
    # ---- Data.
    real_episode_dir: Optional[str] = None,  # off-policy episodes (episodes.py schema)
    real_loss_weight: float = qtopt_lib.PAPER_REAL_LOSS_WEIGHT_SMALL,  # lambda_RL-real, App. A
    sim_fraction: float = 1.0,  # sim share of a batch: 1 Sim-Only, 0 Real-Only, 0.5 App. A
    sim_episode_dir: Optional[str] = None,  # off-policy sim episodes, e.g. a scripted log
    sim_replay_capacity: int = 50_000,  # transitions (~31 KB each at 64x80)
    # None: the sim log and the on-policy episodes share one buffer (uniform over both). A
    # fraction: the log gets its own buffer (sim_log_capacity) and that share of the sim part
    # of every batch; the rest comes from on-policy episodes (sim_replay_capacity of them).
    # 0.5: equal parts, like Appendix A's separate off-policy / on-policy buffers.
    sim_log_fraction: Optional[float] = None,
    sim_log_capacity: int = 120_000,  # transitions of the sim log (with sim_log_fraction)
    real_replay_capacity: int = 50_000,  # transitions
    episodes_per_shard: int = 16,  # sim episodes per replay/sim shard
    # ---- Collection.
    initial_collect_episodes: int = 100,  # episodes of the initial policy before training
    initial_collect_policy: str = 'scripted',  # 'scripted' or 'random'
    collect_steps_per_train_step: float = 1.0,  # on-policy env steps per train step; 0: none
    epsilon_start: float = 0.5,  # P(random action), linearly decayed over epsilon_decay_steps
    epsilon_end: float = 0.1,
    epsilon_decay_steps: int = 5_000,  # train steps
    noise_std_start: float = 0.2,  # Gaussian noise on (dx, dy, dz, u) of the CEM action
    noise_std_end: float = 0.05,
    noise_decay_steps: int = 5_000,  # train steps
    # ---- Training (learner settings via gin: QTOptLearner.*, QTOptCritic.*).
    num_train_steps: int = 20_000,
    batch_size: int = 32,  # transitions per step (paper: 8 real + 8 sim)
    min_replay_transitions: int = 64,  # do not train before the buffers hold this many
    # ---- Evaluation (greedy CEM on the unseen test objects).
    eval_interval: int = 2_000,  # train steps
    num_eval_episodes: int = 50,  # per appearance
    eval_appearances: Sequence[str] = ('sim', 'real'),
    eval_seed: int = 0,  # the same scenes at every evaluation (paired curve)
    eval_at_start: bool = False,
    # ---- Checkpoints, summaries, logging.
    checkpoint_interval: int = 1_000,  # train steps
    max_checkpoints_to_keep: int = 3,
    # Train steps between Q-network snapshots kept for good (train/snapshots/q-<step>, ~0.3
    # MB each at 64x64) for tools/select_checkpoint.py; None: eval_interval; 0: none.
    snapshot_interval: Optional[int] = None,
    summary_interval: int = 100,  # train steps
    log_interval: int = 100,  # train steps between progress lines
    # ---- Final-Q phase: a frozen Sim2Real generator G on the sim images.
    generator_checkpoint: Optional[str] = None,
    generator_checkpoint_key: str = 'G_sim2real',
    translate_frames: bool = True,  # G once per whole frame, cached (False: per crop, per step)
    seed: int = 0,
    replay_digests: bool = False):  # tests: return digests of the sim replay at start / end
  """Trains one QT-Opt Q-function; see the module docstring. Returns a dict of run facts.

  Raises:
    ValueError naming the setting for inconsistent arguments, EpisodeFormatError naming the
    file for a bad real episode directory, and ValueError naming the checkpoint file when the
    latest checkpoint cannot be restored into this configuration.
  """
  from rl_cyclegan.envs import appearance as appearance_lib  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.envs import grasping  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.envs import sim2real  # pylint: disable=g-import-not-at-top

  # ------------------------------------------------------------------ argument checks
  render_size = tuple(int(s) for s in render_size)
  crop_size = tuple(int(s) for s in crop_size)
  for name, value, valid in (
      ('appearance', appearance, appearance_lib.APPEARANCE_NAMES),
      ('action_mode', action_mode, grasping.ACTION_MODES),
      ('initial_collect_policy', initial_collect_policy, policies.SCRIPTED_POLICY_NAMES)):
    if value not in valid:
      raise ValueError(f'train_eval.{name}={value!r}; valid values: {", ".join(valid)}')
  for a in eval_appearances:
    if a not in appearance_lib.APPEARANCE_NAMES:
      raise ValueError(f'train_eval.eval_appearances has {a!r}; valid values: '
                       f'{", ".join(appearance_lib.APPEARANCE_NAMES)}')
  if crop_size[0] > render_size[0] or crop_size[1] > render_size[1]:
    raise ValueError(f'crop_size {crop_size} is larger than render_size {render_size}')
  if not 0.0 <= sim_fraction <= 1.0:
    raise ValueError(f'train_eval.sim_fraction must be in [0, 1], got {sim_fraction}')
  use_sim = sim_fraction > 0.0
  use_real = sim_fraction < 1.0
  if sim_episode_dir and not use_sim:
    raise ValueError(f'train_eval.sim_episode_dir={sim_episode_dir!r} is set but sim_fraction=0 '
                     'draws no sim transitions')
  if use_real and not real_episode_dir:
    raise ValueError(f'train_eval.sim_fraction={sim_fraction} draws real transitions but '
                     'train_eval.real_episode_dir is not set')
  collect_on_policy = use_sim and collect_steps_per_train_step > 0
  if snapshot_interval is None:
    snapshot_interval = eval_interval
  if snapshot_interval < 0:
    raise ValueError(f'train_eval.snapshot_interval must be >= 0 or None, got {snapshot_interval}')
  if sim_log_fraction is not None:
    if not 0.0 < sim_log_fraction < 1.0:
      raise ValueError(f'train_eval.sim_log_fraction must be in (0, 1) or None, got '
                       f'{sim_log_fraction}')
    if not sim_episode_dir or not collect_on_policy:
      raise ValueError(f'train_eval.sim_log_fraction={sim_log_fraction} splits the sim part '
                       'between the sim log and on-policy episodes: it needs both '
                       'train_eval.sim_episode_dir and collect_steps_per_train_step > 0')
  if use_sim and not collect_on_policy and initial_collect_episodes < 1 and not sim_episode_dir:
    raise ValueError('sim_fraction > 0 needs sim data: set collect_steps_per_train_step > 0, '
                     'initial_collect_episodes > 0 or sim_episode_dir')

  os.makedirs(root_dir, exist_ok=True)
  train_dir = os.path.join(root_dir, 'train')
  eval_dir = os.path.join(root_dir, 'eval')
  os.makedirs(eval_dir, exist_ok=True)
  # In 'auto_descend' the env grasps by itself at the bottom; 'terminate' only grasps early from
  # above the objects. Uniformly random exploration picks it in half of its random actions
  # (cut episodes, ~3% success measured), so by default the policy only moves (dx, dy, u).
  if action_mode == 'auto_descend':
    allowed_modes = (policies.AUTO_DESCEND_MODES if auto_descend_terminate
                     else (True, False, False, False))
  else:
    allowed_modes = None

  # ------------------------------------------------------------------ networks and learner
  generator = translator = None
  if generator_checkpoint:
    generator = load_frozen_generator(generator_checkpoint, generator_checkpoint_key, crop_size)
    if translate_frames:
      translator = translation.FrameTranslator(generator)
    _log(f'frozen Sim2Real generator from {generator_checkpoint} (final-Q phase), applied '
         f'{"once per whole frame, cached" if translator else "to the crops in every step"}')
    if translator is not None and sim_episode_dir:
      sim_episode_dir = translation.translate_episode_dir(
          translator, sim_episode_dir, os.path.join(root_dir, TRANSLATED_SIM_LOG_SUBDIR),
          render_size, generator_name=generator_checkpoint, log=_log)
  # With cached translation the learner never sees G: its inputs are G's output already.
  learner = qtopt_lib.QTOptLearner(
      crop_size=crop_size, real_loss_weight=real_loss_weight,
      image_transform=generator if translator is None else None, allowed_modes=allowed_modes)
  crop_transform = generator if translator is None else None  # policies' per-crop G

  # QTOptCritic.mc_return_weight > 0: every replay also stores discounted returns-to-go.
  return_discount = learner.critic.gamma if learner.needs_returns else None

  def make_env(appearance, object_split, seed):
    env = grasping.GraspingEnv(appearance=appearance, object_split=object_split, seed=seed,
                               render_size=render_size, action_mode=action_mode,
                               num_objects=num_objects)
    if translator is not None and appearance != 'real':  # Fig. 6's sim-to-real environment
      env = sim2real.Sim2RealEnv(env, translator)
    return env

  collection = loop.SimCollection(
      root_dir, enabled=use_sim, make_env=make_env, appearance=appearance, num_envs=num_envs,
      render_size=render_size, replay_capacity=sim_replay_capacity,
      episodes_per_shard=episodes_per_shard, seed=seed, log=_log,
      offline_episode_dir=sim_episode_dir,
      offline_replay_capacity=sim_log_capacity if sim_log_fraction is not None else None,
      return_discount=return_discount)
  items = dict(learner.checkpoint_items(), **collection.checkpoint_items())
  if generator is not None:
    items[generator_checkpoint_key] = generator
  checkpoint = tf.train.Checkpoint(**items)
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(root_dir, CHECKPOINT_SUBDIR),
                                       max_to_keep=max_checkpoints_to_keep)
  resumed = loop.restore_latest(
      checkpoint, manager,
      f'crop size {crop_size}, Q-network / learner settings from gin'
      f'{", generator " + generator_checkpoint_key if generator is not None else ""}')
  if resumed:
    _log(f'resumed from {manager.latest_checkpoint} at train step '
         f'{int(learner.train_step_counter.numpy())}, {int(collection.env_steps.numpy())} '
         f'env steps')

  # ------------------------------------------------------------------ replay buffers
  collection.open(resumed)
  sim_replay = collection.replay
  real_replay = None
  if use_real:
    real_episodes = replay_lib.load_real_episodes(real_episode_dir, render_size,
                                                  real_replay_capacity)
    real_replay = replay_lib.TransitionReplay(render_size, real_replay_capacity, name='real',
                                              return_discount=return_discount)
    n, t, s = replay_lib.refill(real_replay, real_episodes)
    _log(f'real replay filled with {n} episodes ({t} transitions) from {real_episode_dir} '
         f'({s:.1f}s)')
    del real_episodes
  sim_source, sim_parts = sim_replay, ''
  if collection.offline_replay is not None:
    sim_source = replay_lib.ReplayMix(collection.offline_replay, sim_replay, sim_log_fraction,
                                      name='sim')
  sampler = replay_lib.MixedSampler(sim_source, real_replay, batch_size, sim_fraction,
                                    crop_size)
  if sim_source is not sim_replay:
    sim_parts = ' ({} from the sim log + {} on-policy)'.format(*sim_source.split(sampler.num_sim))
  result = {'resumed': resumed, 'start_step': int(learner.train_step_counter.numpy())}
  if replay_digests and sim_replay is not None:
    result['sim_replay_digest_start'] = replay_digest(sim_replay)
    result['sim_replay_transitions_start'] = sim_replay.num_transitions

  # ------------------------------------------------------------------ environments and policies
  collection.start_envs()
  if collect_on_policy:
    collection.set_cem_policy(
        learner.q_network,
        loop.ExplorationSchedule(epsilon_start, epsilon_end, epsilon_decay_steps,
                                 noise_std_start, noise_std_end, noise_decay_steps),
        collect_steps_per_train_step, name='qtopt', render_size=render_size,
        crop_size=crop_size, image_transform=crop_transform, allowed_modes=allowed_modes)

  train_writer = tf.summary.create_file_writer(train_dir)
  eval_writer = tf.summary.create_file_writer(eval_dir)
  evaluator = loop.Evaluator(eval_dir, eval_writer, make_env, num_episodes=num_eval_episodes,
                             num_envs=num_envs, seed=eval_seed, env_steps=collection.env_steps,
                             log=_log)
  for a in eval_appearances:
    # Q is trained on G(sim): sim-like appearances go through G, 'real' images do not.
    transform = crop_transform if a != 'real' else None
    evaluator.add(a, a, policies.greedy_action_fn(policies.CEMPolicy(
        learner.q_network, render_size=render_size, crop_size=crop_size,
        image_transform=transform, allowed_modes=allowed_modes, seed=eval_seed), name='qtopt'))

  # The gin config in force (after building every configurable), plus the values train_eval
  # passed explicitly that evaluation needs to rebuild the networks and envs.
  explicit = {'GraspingQNetwork.crop_size': crop_size, 'GraspingEnv.num_objects': num_objects}
  loop.write_operative_config(root_dir, explicit)

  # ------------------------------------------------------------------ the loop
  def save_checkpoint():
    collection.flush()  # the checkpoint's bookkeeping never runs ahead of the shards on disk
    return manager.save(checkpoint_number=learner.train_step_counter)

  timer = loop.TrainTimer()
  evals = {}
  try:
    with loop.sigterm_as_exception():
      collection.initial_collection(initial_collect_episodes, initial_collect_policy)
      for name, r in (('sim', sim_replay), ('real', real_replay)):
        if r is not None and r.num_transitions < min(min_replay_transitions, r.capacity):
          if name == 'real' or not collect_on_policy:
            raise ValueError(f'the {name} replay holds {r.num_transitions} transitions, fewer '
                             f'than min_replay_transitions={min_replay_transitions}')

      step = int(learner.train_step_counter.numpy())
      if eval_at_start and not resumed and evaluator:
        evals[step] = evaluator.run(step)
      progress = loop.ProgressLogger(num_train_steps, step, timer, collection, _log)
      rates = loop.RateSummaries(timer, collection, {'sim': sim_replay, 'real': real_replay,
                                                     'sim_log': collection.offline_replay})
      _log(f'training from step {step} to {num_train_steps} (batch {batch_size}: '
           f'{sampler.num_sim} sim{sim_parts} + {sampler.num_real} real)')
      while step < num_train_steps:
        # ---- collection: keep on-policy env steps >= train steps * ratio.
        collection.collect_on_policy(step, min_replay_transitions)
        # ---- one train step.
        sim_batch, real_batch = sampler.sample(training=True,
                                               with_returns=learner.needs_returns)
        returns = {}
        if learner.needs_returns:  # (batch, returns) pairs
          if sim_batch is not None:
            sim_batch, returns['sim_returns'] = sim_batch
          if real_batch is not None:
            real_batch, returns['real_returns'] = real_batch
        with timer.step():
          info = learner.train_step(sim_batch, real_batch, **returns)
        step = int(learner.train_step_counter.numpy())

        if step % summary_interval == 0:
          with train_writer.as_default(step=step):
            loop.write_loss_info(info, lambda f: f'loss/{f}' if f.startswith(('loss', 'td'))
                                 else f'q/{f}')
            tf.summary.scalar('train/learning_rate',
                              float(learner.critic.optimizer.learning_rate.numpy()))
            rates.write()
        if step % log_interval == 0 or step == num_train_steps:
          progress.log(step, f'step {step}/{num_train_steps} loss {float(info.loss):.4f} Q '
                       f'{float(info.mean_q):.3f} target {float(info.target_q):.3f} std '
                       f'{float(info.q_std):.3f}')
        if step % checkpoint_interval == 0:
          save_checkpoint()
        if snapshot_interval and step % snapshot_interval == 0:
          loop.write_snapshot(root_dir, step, learner.q_network)
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
  loop.write_operative_config(root_dir, explicit)

  result.update(final_step=int(learner.train_step_counter.numpy()),
                env_steps=int(collection.env_steps.numpy()),
                sim_episodes=int(collection.sim_episodes.numpy()),
                checkpoint=manager.latest_checkpoint, evals=evals,
                train_steps_per_sec=timer.rate, env_steps_per_sec=collection.collect_rate)
  if replay_digests and sim_replay is not None:
    result['sim_replay_digest_end'] = replay_digest(sim_replay)
    result['sim_replay_transitions_end'] = sim_replay.num_transitions
  return result
