"""QT-Opt train/eval loop: one Q-function from on-policy sim and/or off-policy real episodes.

The baselines of paper Tables 1-3 and the final-Q phase of RL-CycleGAN (Section 4):

  Sim-Only / Randomized-Sim   appearance 'sim' / 'randomized', sim_fraction 1, collection on
  Real-Only                   real_episode_dir, sim_fraction 0, no collection
  Sim+Real (Appendix A)       both, sim_fraction 0.5 ("equal parts"), real_loss_weight
  final Q of RL-CycleGAN      + generator_checkpoint: a frozen Sim2Real G applied to the sim
                              images in collection (CEMPolicy(image_transform=G)) and training
                              (QTOptLearner(image_transform=G)), not to real images

Loop (one process; collection and training alternate):
  1. build everything (gin is parsed by the binary before this), restore the latest checkpoint;
     refill the sim buffer from root_dir/replay/sim/ shards (newest first, up to capacity)
     and the real buffer from real_episode_dir (validated first, naming a bad file);
  2. fresh run: ``initial_collect_episodes`` with the scripted (or random) policy;
  3. repeat: collect one round of ``num_envs`` lockstep episodes with the exploring CEM policy
     whenever the on-policy env steps (after the initial collection) are fewer than
     train steps * ``collect_steps_per_train_step``, then one train step;
     summaries, progress line, evaluation (greedy CEM, test objects, per appearance, JSON),
     checkpoints (the sim episode log is flushed first, so a checkpoint never refers to sim
     data that is not on disk).

Layout of root_dir:
  operative_config.gin        the gin config in force (atomic), read by tools/evaluate.py
  train/ckpt/                 tf.train.CheckpointManager: networks, targets, optimizer, step,
                              replay bookkeeping (env steps, sim episodes)
  train/events.*              TensorBoard: loss, Q statistics, rates, replay sizes
  eval/events.*               TensorBoard: success rate per appearance (+ Wilson CI)
  eval/eval_<step>.json       evaluation results per eval step (atomic)
  replay/sim/sim-NNNNNN.tfrecord   on-policy sim episodes (episode TFRecord schema)
"""

import functools
import hashlib
import json
import os
import signal
import sys
import time
from typing import Optional, Sequence

import gin
import numpy as np
import tensorflow as tf

from rl_cyclegan import policies
from rl_cyclegan import specs
from rl_cyclegan.data import collect as collect_lib
from rl_cyclegan.learners import qtopt as qtopt_lib
from rl_cyclegan.train import evaluation
from rl_cyclegan.train import replay as replay_lib
from rl_cyclegan.train import rollout

OPERATIVE_CONFIG = 'operative_config.gin'
CHECKPOINT_SUBDIR = os.path.join('train', 'ckpt')
SIM_REPLAY_SUBDIR = os.path.join('replay', 'sim')
# Seed streams (collect.derive_seed(seed, STREAM, index)).
_TRAIN_ENV_STREAM, _COLLECT_EPISODE_STREAM, _POLICY_STREAM = 1, 2, 3


def _log(message):
  print(f'[train_qtopt {time.strftime("%H:%M:%S")}] {message}', file=sys.stderr, flush=True)


def write_text_atomic(path, text):
  tmp = f'{path}.tmp-{os.getpid()}'
  with open(tmp, 'w') as f:
    f.write(text)
  os.replace(tmp, path)


def write_json_atomic(path, data):
  write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + '\n')


def _format_seconds(seconds):
  seconds = int(max(0, seconds))
  return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m' if seconds >= 3600 else (
      f'{seconds // 60}m{seconds % 60:02d}s')


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
  checkpoint_path = tf.train.latest_checkpoint(path) if os.path.isdir(path) else path
  if not checkpoint_path or not tf.io.gfile.exists(checkpoint_path + '.index'):
    raise FileNotFoundError(
        f'generator_checkpoint {path!r}: no checkpoint there (expected a tf.train.Checkpoint '
        f'prefix or a directory with a "checkpoint" index file, holding the generator under '
        f'key {key!r}, e.g. from the RL-CycleGAN joint training run)')
  generator = generator_lib.UNetGenerator(name='G_sim2real')
  generator(tf.zeros([1, *crop_size, specs.IMAGE_CHANNELS]), training=False)  # build
  try:
    status = tf.train.Checkpoint(**{key: generator}).restore(checkpoint_path)
    status.expect_partial()
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise ValueError(f'generator_checkpoint {checkpoint_path!r} has no generator compatible with '
                     f'key {key!r} and the gin-configured UNetGenerator at crop size '
                     f'{tuple(crop_size)}: {type(e).__name__}: {str(e)[:1500]}') from e
  generator.trainable = False
  return generator


class _Terminate(Exception):
  """Raised by the SIGTERM handler so that the loop saves and flushes before exiting."""


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
    sim_replay_capacity: int = 50_000,  # transitions (~31 KB each at 64x80)
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
    summary_interval: int = 100,  # train steps
    log_interval: int = 100,  # train steps between progress lines
    # ---- Final-Q phase: a frozen Sim2Real generator G on the sim images.
    generator_checkpoint: Optional[str] = None,
    generator_checkpoint_key: str = 'G_sim2real',
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
  if use_real and not real_episode_dir:
    raise ValueError(f'train_eval.sim_fraction={sim_fraction} draws real transitions but '
                     'train_eval.real_episode_dir is not set')
  collect_on_policy = use_sim and collect_steps_per_train_step > 0
  if use_sim and not collect_on_policy and initial_collect_episodes < 1:
    raise ValueError('sim_fraction > 0 needs sim data: set collect_steps_per_train_step > 0 or '
                     'initial_collect_episodes > 0')

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
  generator = None
  if generator_checkpoint:
    generator = load_frozen_generator(generator_checkpoint, generator_checkpoint_key, crop_size)
    _log(f'frozen Sim2Real generator from {generator_checkpoint} (final-Q phase)')
  learner = qtopt_lib.QTOptLearner(crop_size=crop_size, real_loss_weight=real_loss_weight,
                                   image_transform=generator, allowed_modes=allowed_modes)
  env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name='env_steps')
  sim_episodes = tf.Variable(0, dtype=tf.int64, trainable=False, name='sim_episodes')
  # Env steps of the initial (scripted) collection: the collection ratio counts only the
  # on-policy steps after it.
  initial_env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name='initial_env_steps')
  items = dict(learner.checkpoint_items(), env_steps=env_steps, sim_episodes=sim_episodes,
               initial_env_steps=initial_env_steps)
  if generator is not None:
    items[generator_checkpoint_key] = generator
  checkpoint = tf.train.Checkpoint(**items)
  manager = tf.train.CheckpointManager(checkpoint, os.path.join(root_dir, CHECKPOINT_SUBDIR),
                                       max_to_keep=max_checkpoints_to_keep)
  resumed = False
  if manager.latest_checkpoint:
    latest = manager.latest_checkpoint
    try:
      status = checkpoint.restore(latest)
      status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
      raise ValueError(
          f'cannot resume from checkpoint {latest!r}: it does not match this configuration '
          f'(crop size {crop_size}, Q-network / learner settings from gin'
          f'{", generator " + generator_checkpoint_key if generator is not None else ""}); '
          f'use a new root_dir or the original config. {type(e).__name__}: {str(e)[:1500]}'
      ) from e
    resumed = True
    _log(f'resumed from {latest} at train step {int(learner.train_step_counter.numpy())}, '
         f'{int(env_steps.numpy())} env steps')

  # ------------------------------------------------------------------ replay buffers
  sim_replay = real_replay = sim_log = None
  if use_sim:
    sim_replay = replay_lib.TransitionReplay(render_size, sim_replay_capacity, name='sim')
    sim_log = replay_lib.SimEpisodeLog(os.path.join(root_dir, SIM_REPLAY_SUBDIR), render_size,
                                       episodes_per_shard=episodes_per_shard)
    old = sim_log.load_newest(sim_replay_capacity)
    num_logged = len(old)
    if not resumed:
      sim_episodes.assign(num_logged)  # new episode seeds continue after the logged ones
    if old:
      n, t, s = replay_lib.refill(sim_replay, old)
      _log(f'sim replay refilled with {n} episodes ({t} transitions) from '
           f'{len(sim_log.shard_paths())} shards in {sim_log.directory} ({s:.1f}s)')
  if use_real:
    real_episodes = replay_lib.load_real_episodes(real_episode_dir, render_size,
                                                  real_replay_capacity)
    real_replay = replay_lib.TransitionReplay(render_size, real_replay_capacity, name='real')
    n, t, s = replay_lib.refill(real_replay, real_episodes)
    _log(f'real replay filled with {n} episodes ({t} transitions) from {real_episode_dir} '
         f'({s:.1f}s)')
    del real_episodes
  sampler = replay_lib.MixedSampler(sim_replay, real_replay, batch_size, sim_fraction,
                                    crop_size)
  result = {'resumed': resumed, 'start_step': int(learner.train_step_counter.numpy())}
  if replay_digests and sim_replay is not None:
    result['sim_replay_digest_start'] = replay_digest(sim_replay)
    result['sim_replay_transitions_start'] = sim_replay.num_transitions

  # ------------------------------------------------------------------ environments and policies
  def make_env(appearance, object_split, seed):
    return grasping.GraspingEnv(appearance=appearance, object_split=object_split, seed=seed,
                                render_size=render_size, action_mode=action_mode,
                                num_objects=num_objects)

  envs = []
  collect_policy = None
  if use_sim:
    envs = [make_env(appearance, 'train', collect_lib.derive_seed(seed, _TRAIN_ENV_STREAM, i))
            for i in range(num_envs)]
  if collect_on_policy:
    collect_policy = policies.CEMPolicy(
        learner.q_network, render_size=render_size, crop_size=crop_size,
        image_transform=generator, allowed_modes=allowed_modes,
        seed=collect_lib.derive_seed(seed, _POLICY_STREAM, int(env_steps.numpy())))
    collect_fn = policies.policy_action_fn(collect_policy, name='qtopt')
  eval_policies = {}
  for a in eval_appearances:
    # Q is trained on G(sim): sim-like appearances go through G, 'real' images do not.
    transform = generator if (generator is not None and a != 'real') else None
    eval_policies[a] = policies.greedy_action_fn(policies.CEMPolicy(
        learner.q_network, render_size=render_size, crop_size=crop_size,
        image_transform=transform, allowed_modes=allowed_modes, seed=eval_seed), name='qtopt')

  # The gin config in force (after building every configurable), plus the values train_eval
  # passed explicitly that evaluation needs to rebuild the networks and envs.
  def write_operative_config():
    extra = (f'\n# Passed explicitly by train_eval (for tools/evaluate.py):\n'
             f'GraspingQNetwork.crop_size = {crop_size}\n'
             f'GraspingEnv.num_objects = {num_objects}\n')
    write_text_atomic(os.path.join(root_dir, OPERATIVE_CONFIG),
                      gin.operative_config_str() + extra)

  write_operative_config()

  train_writer = tf.summary.create_file_writer(train_dir)
  eval_writer = tf.summary.create_file_writer(eval_dir)

  # ------------------------------------------------------------------ loop pieces
  def collect(action_fn, num_episodes, label):
    start = time.time()
    base = int(sim_episodes.numpy())
    progress = rollout.Progress(num_episodes, label=label, interval=30.0)
    episodes = rollout.run_episodes(
        envs, action_fn, num_episodes, progress=progress if num_episodes > num_envs else None,
        episode_seeds=lambda j: collect_lib.derive_seed(seed, _COLLECT_EPISODE_STREAM, base + j),
        metadata={'object_split': 'train'})
    sim_log.append(episodes)
    sim_replay.add_episodes(episodes)
    steps = sum(int(e.actions.shape[0]) for e in episodes)
    env_steps.assign_add(steps)
    sim_episodes.assign_add(len(episodes))
    successes = sum(int(bool(e.metadata['success'])) for e in episodes)
    return steps, successes, len(episodes), time.time() - start

  def save_checkpoint():
    if sim_log is not None:
      sim_log.flush()  # the checkpoint's bookkeeping never runs ahead of the shards on disk
    path = manager.save(checkpoint_number=learner.train_step_counter)
    return path

  def run_eval(step):
    results = {}
    for a, action_fn in eval_policies.items():
      r = evaluation.evaluate(action_fn, make_env, num_episodes=num_eval_episodes,
                              num_envs=num_envs, appearance=a, object_split='test',
                              seed=eval_seed, progress_interval=60.0)
      results[a] = r
      with eval_writer.as_default(step=step):
        tf.summary.scalar(f'success_rate/{a}', r['success_rate'])
        tf.summary.scalar(f'success_ci95_low/{a}', r['ci95_low'])
        tf.summary.scalar(f'success_ci95_high/{a}', r['ci95_high'])
      _log(f'eval step {step}: {evaluation.format_result(r)} ({r["seconds"]:.0f}s)')
    eval_writer.flush()
    write_json_atomic(os.path.join(eval_dir, f'eval_{step:08d}.json'),
                      {'step': step, 'env_steps': int(env_steps.numpy()), 'results': results})
    return results

  def on_sigterm(signum, frame):
    del signum, frame
    raise _Terminate()

  previous_handler = None
  try:
    previous_handler = signal.signal(signal.SIGTERM, on_sigterm)
  except ValueError:  # not the main thread
    pass

  stats = {'collect_seconds': 0.0, 'collect_steps': 0, 'train_seconds': 0.0, 'train_steps': 0,
           'collect_successes': 0, 'collect_episodes': 0}
  evals = {}
  try:
    # ---------------------------------------------------------------- initial collection
    if use_sim:
      # Episodes already collected (a resumed run; or shards of a run killed before its
      # first checkpoint) count towards the initial collection.
      missing = initial_collect_episodes - int(sim_episodes.numpy())
      if missing > 0:
        _log(f'initial collection: {missing} episodes with the {initial_collect_policy} policy '
             f'in {appearance!r}')
        steps, succ, n, secs = collect(policies.scripted_action_fn(initial_collect_policy),
                                       missing, f'initial collect ({initial_collect_policy})')
        sim_log.flush()
        initial_env_steps.assign(env_steps)
        _log(f'initial collection: {n} episodes, {steps} steps, {succ}/{n} successes, '
             f'{steps / max(secs, 1e-9):.1f} env steps/s')
    for name, r in (('sim', sim_replay), ('real', real_replay)):
      if r is not None and r.num_transitions < min(min_replay_transitions, r.capacity):
        if name == 'real' or not collect_on_policy:
          raise ValueError(f'the {name} replay holds {r.num_transitions} transitions, fewer '
                           f'than min_replay_transitions={min_replay_transitions}')

    step = int(learner.train_step_counter.numpy())
    if eval_at_start and not resumed and eval_policies:
      evals[step] = run_eval(step)
    start_time = last_log_time = time.time()
    start_step = last_log_step = step
    last_summary = {'time': time.time(), 'train': 0.0, 'collect': 0.0, 'collect_steps': 0,
                    'train_steps': 0}
    info = None
    _log(f'training from step {step} to {num_train_steps} (batch {batch_size}: '
         f'{sampler.num_sim} sim + {sampler.num_real} real)')
    while step < num_train_steps:
      # ---- collection: keep env steps >= train steps * ratio.
      if collect_on_policy:
        while (int(env_steps.numpy()) - int(initial_env_steps.numpy()) <
               (step + 1) * collect_steps_per_train_step or
               sim_replay.num_transitions < min_replay_transitions):
          collect_policy.set_exploration(
              policies.linear_schedule(step, epsilon_start, epsilon_end, epsilon_decay_steps),
              policies.linear_schedule(step, noise_std_start, noise_std_end, noise_decay_steps))
          steps, succ, n, secs = collect(collect_fn, num_envs, 'collect')
          for k, v in (('collect_seconds', secs), ('collect_steps', steps),
                       ('collect_successes', succ), ('collect_episodes', n)):
            stats[k] += v
      # ---- one train step.
      sim_batch, real_batch = sampler.sample(training=True)
      t0 = time.time()
      info = learner.train_step(sim_batch, real_batch)
      step = int(learner.train_step_counter.numpy())
      stats['train_seconds'] += time.time() - t0
      stats['train_steps'] += 1

      if step % summary_interval == 0:
        now = time.time()
        with train_writer.as_default(step=step):
          for field in info._fields:
            value = float(getattr(info, field))
            if np.isfinite(value):
              tf.summary.scalar(f'loss/{field}' if field.startswith(('loss', 'td'))
                                else f'q/{field}', value)
          d_train = stats['train_seconds'] - last_summary['train']
          d_collect = stats['collect_seconds'] - last_summary['collect']
          d_steps = stats['collect_steps'] - last_summary['collect_steps']
          d_train_steps = stats['train_steps'] - last_summary['train_steps']
          if d_train > 0:
            tf.summary.scalar('rate/train_steps_per_sec', d_train_steps / d_train)
          if d_collect > 0:
            tf.summary.scalar('rate/env_steps_per_sec', d_steps / d_collect)
          tf.summary.scalar('rate/wall_train_steps_per_sec',
                            d_train_steps / max(now - last_summary['time'], 1e-9))
          tf.summary.scalar('replay/env_steps', int(env_steps.numpy()))
          for name, r in (('sim', sim_replay), ('real', real_replay)):
            if r is not None:
              tf.summary.scalar(f'replay/{name}_transitions', r.num_transitions)
          if collect_policy is not None:
            tf.summary.scalar('collect/epsilon', float(collect_policy.epsilon.numpy()))
            tf.summary.scalar('collect/noise_std', float(collect_policy.noise_std.numpy()))
            if stats['collect_episodes']:
              tf.summary.scalar('collect/success_rate',
                                stats['collect_successes'] / stats['collect_episodes'])
        last_summary = {'time': now, 'train': stats['train_seconds'],
                        'collect': stats['collect_seconds'],
                        'collect_steps': stats['collect_steps'],
                        'train_steps': stats['train_steps']}
      if step % log_interval == 0 or step == num_train_steps:
        now = time.time()
        rate = (step - last_log_step) / max(now - last_log_time, 1e-9)
        overall = (step - start_step) / max(now - start_time, 1e-9)
        eta = (num_train_steps - step) / overall if overall > 0 else float('inf')
        collect_rate = stats['collect_steps'] / max(stats['collect_seconds'], 1e-9)
        train_rate = stats['train_steps'] / max(stats['train_seconds'], 1e-9)
        success = (f', on-policy success {stats["collect_successes"]}/'
                   f'{stats["collect_episodes"]}' if stats['collect_episodes'] else '')
        _log(f'step {step}/{num_train_steps} loss {float(info.loss):.4f} Q {float(info.mean_q):.3f}'
             f' target {float(info.target_q):.3f} std {float(info.q_std):.3f} | {rate:.2f} '
             f'steps/s (train {train_rate:.1f}/s, env {collect_rate:.1f} steps/s), env steps '
             f'{int(env_steps.numpy())}{success} | ETA {_format_seconds(eta)}')
        last_log_time, last_log_step = now, step
      if step % checkpoint_interval == 0:
        save_checkpoint()
      if eval_policies and (step % eval_interval == 0 or step == num_train_steps):
        evals[step] = run_eval(step)
    save_checkpoint()
    train_writer.flush()
  except (KeyboardInterrupt, _Terminate):
    _log('interrupted: saving a checkpoint and the pending sim episodes before exiting')
    save_checkpoint()
    raise
  finally:
    if sim_log is not None:
      sim_log.flush()
    for env in envs:
      env.close()
    if previous_handler is not None:
      signal.signal(signal.SIGTERM, previous_handler)
  write_operative_config()

  result.update(final_step=int(learner.train_step_counter.numpy()),
                env_steps=int(env_steps.numpy()), sim_episodes=int(sim_episodes.numpy()),
                checkpoint=manager.latest_checkpoint, evals=evals,
                train_steps_per_sec=stats['train_steps'] / max(stats['train_seconds'], 1e-9),
                env_steps_per_sec=stats['collect_steps'] / max(stats['collect_seconds'], 1e-9))
  if replay_digests and sim_replay is not None:
    result['sim_replay_digest_end'] = replay_digest(sim_replay)
    result['sim_replay_transitions_end'] = sim_replay.num_transitions
  return result
