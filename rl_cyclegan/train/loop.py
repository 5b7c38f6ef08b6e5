"""Machinery shared by the train/eval loops (``train_qtopt.py``, ``train_rl_cyclegan.py``).

  make_logger / format_seconds
  Terminate, sigterm_as_exception   SIGTERM becomes an exception, so a loop saves before exiting
  restore_latest                    resume from a CheckpointManager or fail naming the file
  make_strategy                     tf.distribute strategies by name (one per kind per process)
  SimCollection                     lockstep sim envs + sim replay + durable SimEpisodeLog +
                                    the collection counters (checkpointed); initial and
                                    ratio-driven on-policy collection
  Evaluator                         greedy evaluations on test objects -> eval summaries + JSON
  TrainTimer, RateSummaries         train / collect rates as scalar summaries
  ProgressLogger                    periodic progress line with rate and ETA
  write_loss_info                   every finite LossInfo field as a scalar summary
"""

import contextlib
import os
import time
from typing import Callable, Dict, Mapping, NamedTuple, Optional, Sequence, Tuple

import gin
import numpy as np
import tensorflow as tf

from rl_cyclegan import fileio
from rl_cyclegan import lifecycle
from rl_cyclegan.actors import policies
from rl_cyclegan import progress as progress_lib
from rl_cyclegan import run_dir
from rl_cyclegan import seeds
from rl_cyclegan.learners import core as learner_core
from rl_cyclegan.evaluation import policy_eval
from rl_cyclegan.replay import buffers as replay_lib
from rl_cyclegan.actors import rollout

# The run-directory layout (rl_cyclegan/run_dir.py owns it).
CHECKPOINT_SUBDIR = run_dir.CHECKPOINT_SUBDIR
SIM_REPLAY_SUBDIR = run_dir.SIM_REPLAY_SUBDIR
OPERATIVE_CONFIG = run_dir.OPERATIVE_CONFIG
# Seed streams (seeds.derive_seed(seed, STREAM, index)).
TRAIN_ENV_STREAM, COLLECT_EPISODE_STREAM, POLICY_STREAM = 1, 2, 3
STRATEGIES = ('default', 'mirrored', 'one_device', 'multi_worker')


# ----------------------------------------------------------------------------- small helpers

make_logger = progress_lib.make_logger
format_seconds = progress_lib.format_seconds


def write_operative_config(root_dir, explicit: Dict[str, object], caller='train_eval'):
  """Writes gin's operative config plus ``Configurable.param = value`` lines (atomic).

  ``explicit`` holds values the loop passed as arguments (so gin does not record them) that a
  reader such as tools/evaluate.py needs to rebuild the networks and envs.
  """
  lines = ''.join(f'{k} = {v!r}\n' for k, v in explicit.items())
  fileio.write_text_atomic(os.path.join(root_dir, OPERATIVE_CONFIG),
                           f'{gin.operative_config_str()}\n# Passed explicitly by {caller} (for '
                           f'tools/evaluate.py):\n{lines}')


def write_snapshot(root_dir: str, step: int, q_network) -> str:
  """Saves the Q-network alone as ``<root_dir>/train/snapshots/q-<step>`` through the run's
  snapshot manager (``run_dir.snapshot_manager``, which lists it once complete); returns the
  prefix."""
  return run_dir.snapshot_manager(root_dir, q_network).save(checkpoint_number=int(step))


Terminate = lifecycle.Terminate
sigterm_as_exception = lifecycle.sigterm_as_exception


def restore_latest(checkpoint: tf.train.Checkpoint, manager: tf.train.CheckpointManager,
                   configuration: str) -> Optional[str]:
  """Restores the newest readable checkpoint of ``manager`` into ``checkpoint`` (a truncated
  newer one is skipped, naming it); returns its prefix, or None if there is none.

  Raises ValueError naming the checkpoint file and ``configuration`` (what this run expects)
  when the checkpoint does not match the objects of ``checkpoint``.
  """
  latest = run_dir.latest_checkpoint(manager.directory)  # skips a truncated newest one
  if not latest:
    return None
  try:
    status = checkpoint.restore(latest)
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise ValueError(
        f'cannot resume from checkpoint {latest!r}: it does not match this configuration '
        f'({configuration}); use a new root_dir or the original config. '
        f'{type(e).__name__}: {str(e)[:1500]}') from e
  return latest


def weight_items(items: Mapping[str, object]) -> Dict[str, object]:
  """A checkpoint's items without its optimizers (Keras' own or legacy ones): the networks,
  their targets, the step and collection counters (``Checkpointing.weights_copy``)."""
  optimizers = (tf.keras.optimizers.Optimizer, tf.keras.optimizers.legacy.Optimizer)
  return {key: obj for key, obj in items.items() if not isinstance(obj, optimizers)}


def restore_run(checkpoint: tf.train.Checkpoint, manager: tf.train.CheckpointManager,
                weights: tf.train.Checkpoint, weights_manager: tf.train.CheckpointManager,
                configuration: str, log=print) -> Tuple[Optional[str], bool]:
  """Restores a run's newest full checkpoint (``restore_latest``); without one, its newest
  weights-only one (``weights``, the items of ``weight_items``), saying so on ``log``: the
  optimizers then start fresh, Adam's moments and step count at zero, so its first steps are
  of ~the learning rate per variable, as at a run's start.

  Returns (the prefix restored or None, whether it was the weights-only one).
  """
  resumed = restore_latest(checkpoint, manager, configuration)
  if resumed or not os.path.isdir(weights_manager.directory):
    return resumed, False
  resumed = restore_latest(weights, weights_manager, configuration)
  if resumed:
    log(f'no full checkpoint in {manager.directory}: resuming from the weights-only checkpoint '
        f'{resumed}; the optimizers start fresh (their moments and step counts were not kept)')
  return resumed, bool(resumed)


# ----------------------------------------------------------------------------- distribution

_STRATEGY_CACHE = {}


def make_strategy(name: str) -> tf.distribute.Strategy:
  """'default' (no distribution), 'mirrored' (all GPUs, else all logical CPUs), 'one_device',
  or 'multi_worker' (MultiWorkerMirroredStrategy over the workers TF_CONFIG names, ring
  collectives; each worker's GPUs, else its CPU).

  One strategy per kind per process: several MirroredStrategy objects over the same devices in
  one process can give colliding collective-op instance keys ("Shape mismatch in the collective
  instance"), so repeated calls return the same object.
  """
  if name not in STRATEGIES:
    raise ValueError(f'strategy={name!r}; valid values: {", ".join(STRATEGIES)}')
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'multi_worker' and name not in _STRATEGY_CACHE:
    if 'TF_CONFIG' not in os.environ:
      raise ValueError("strategy='multi_worker' needs TF_CONFIG naming the cluster and this "
                       'worker, e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                       '"task": {"type": "worker", "index": 0}}')
    _STRATEGY_CACHE[name] = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING))
  if name not in _STRATEGY_CACHE:
    gpus = [d.name for d in tf.config.list_logical_devices('GPU')]
    devices = gpus or [d.name for d in tf.config.list_logical_devices('CPU')]
    _STRATEGY_CACHE[name] = (tf.distribute.OneDeviceStrategy(devices[0]) if name == 'one_device'
                             else tf.distribute.MirroredStrategy(devices))
  return _STRATEGY_CACHE[name]


distribute = learner_core.distribute  # a global batch split per replica


class WorkerRole(NamedTuple):
  """This process's place among the learner workers of a multi-worker run."""
  task_id: int = 0
  num_workers: int = 1

  @property
  def is_chief(self) -> bool:
    return self.task_id == 0


def worker_role(strategy: Optional[tf.distribute.Strategy]) -> WorkerRole:
  """Task id and worker count of a MultiWorkerMirroredStrategy (TF_CONFIG's 'worker' list;
  task 0 is the chief); WorkerRole() for any other strategy."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
    return WorkerRole()
  workers = resolver.cluster_spec().as_dict().get('worker', [])
  if resolver.task_type not in (None, 'worker'):
    raise ValueError(f"TF_CONFIG task type {resolver.task_type!r}: a multi-worker run's "
                     "learners are all 'worker' tasks (task 0 is the chief)")
  return WorkerRole(int(resolver.task_id or 0), max(1, len(workers)))


def check_same_step(strategy: tf.distribute.Strategy, step: int, role: WorkerRole):
  """Raises ValueError on every worker when the workers resumed from different train steps.

  Each worker restores its own checkpoint; they are written at the same steps, so the steps
  agree unless a run directory was lost or edited. The sum of the steps and of their squares
  over the replicas tells every worker at once (so none is left waiting in a collective).
  """
  if role.num_workers == 1:
    return
  value = tf.constant([step, step * step], tf.int64)
  per_replica = strategy.experimental_distribute_values_from_function(lambda ctx: value)
  total, total_sq = (int(v) for v in
                     strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None).numpy())
  n = strategy.num_replicas_in_sync
  mean = total / n
  if n * total_sq != total * total:  # n * sum(s^2) == (sum s)^2 iff every s is the same
    raise ValueError(
        f'the {role.num_workers} learner workers resumed from different train steps (this '
        f'worker, task {role.task_id}: step {step}; mean over the workers {mean:.1f}): each '
        f'worker restores its own run directory (the chief root_dir, the others '
        f'root_dir/{run_dir.WORKERS_SUBDIR}/worker-<task>); restore them from the same step')


# ----------------------------------------------------------------------------- collection

def _episode_index(episode) -> Optional[int]:
  """The run's episode index of an on-policy episode id 'sim-00000042'; None for other ids."""
  episode_id = str(episode.metadata.get('episode_id', ''))
  head, _, digits = episode_id.partition('-')
  return int(digits) if head == 'sim' and digits.isdigit() else None


class SimCollection:
  """Sim envs, the on-policy sim replay, its durable episode log and the collection counters.

  Life cycle: construct (creates the counters), add ``checkpoint_items()`` to the checkpoint
  and restore it, ``open(resumed)`` (refills the replay from the log), ``start_envs()``,
  optionally ``set_cem_policy(...)``, then ``initial_collection`` / ``collect_on_policy``;
  ``flush()`` before every checkpoint and ``close()`` at the end.

  With ``enabled=False`` (no sim data) only the counters exist (they are still checkpointed,
  so a checkpoint's layout does not depend on the data mix).
  """

  def __init__(self, root_dir: str, enabled: bool, make_env: Callable, appearance: str,
               num_envs: int, render_size: Sequence[int], replay_capacity: int,
               episodes_per_shard: int, seed: int, log: Callable[[str], None],
               offline_episode_dir: Optional[str] = None,
               offline_replay_capacity: Optional[int] = None,
               return_discount: Optional[float] = None):
    self.root_dir = root_dir
    # Set (to the critic's gamma): the replays also store Monte Carlo returns-to-go.
    self.return_discount = return_discount
    self.offline_episode_dir = offline_episode_dir
    # None: the off-policy episodes share ``replay`` with the on-policy ones (sampled
    # uniformly together). A capacity: they get their own buffer ``offline_replay`` and
    # ``replay`` holds only on-policy episodes (``replay_capacity`` of them).
    self.offline_replay_capacity = offline_replay_capacity
    self.enabled = bool(enabled)
    self._make_env = make_env
    self.appearance = appearance
    self.num_envs = int(num_envs)
    self.render_size = tuple(int(s) for s in render_size)
    self.replay_capacity = int(replay_capacity)
    self.episodes_per_shard = episodes_per_shard
    self.seed = seed
    self._log = log
    self.env_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name='env_steps')
    self.sim_episodes = tf.Variable(0, dtype=tf.int64, trainable=False, name='sim_episodes')
    # Env steps of the initial (scripted) collection: the collection ratio counts only the
    # on-policy steps after it.
    self.initial_env_steps = tf.Variable(0, dtype=tf.int64, trainable=False,
                                         name='initial_env_steps')
    self.replay: Optional[replay_lib.TransitionReplay] = None
    self.offline_replay: Optional[replay_lib.TransitionReplay] = None
    self.log: Optional[replay_lib.SimEpisodeLog] = None
    self.envs = []
    self.policy = None
    self._action_fn = None
    self._schedule = None
    self._steps_per_train_step = 0.0
    self.stats = {'collect_seconds': 0.0, 'collect_steps': 0, 'collect_successes': 0,
                  'collect_episodes': 0}

  def checkpoint_items(self):
    return {'env_steps': self.env_steps, 'sim_episodes': self.sim_episodes,
            'initial_env_steps': self.initial_env_steps}

  def open(self, resumed: bool, replay=None):
    """Builds the sim replay and refills it from the newest logged shards (up to capacity).

    ``replay``: a given on-policy replay (the Reverb table of distributed collection,
    ``reverb_tables.ReverbReplay``) restored from its own checkpoint: it is not refilled from
    the log (the log's episodes are still counted).
    """
    if not self.enabled:
      return
    self.replay = replay or replay_lib.TransitionReplay(
        self.render_size, self.replay_capacity, name='sim', return_discount=self.return_discount)
    self.log = replay_lib.SimEpisodeLog(os.path.join(self.root_dir, SIM_REPLAY_SUBDIR),
                                        self.render_size,
                                        episodes_per_shard=self.episodes_per_shard,
                                        log=self._log)
    capacity = self.replay_capacity
    if self.offline_episode_dir:
      target, limit = self.replay, capacity
      if self.offline_replay_capacity is not None:
        self.offline_replay = replay_lib.TransitionReplay(
            self.render_size, self.offline_replay_capacity, name='sim_log',
            return_discount=self.return_discount)
        target, limit = self.offline_replay, self.offline_replay_capacity
      # Off-policy episodes from disk come first at every start (fresh or resumed), so a
      # shared replay's oldest rows are the ones evicted first, as in an uninterrupted run.
      offline = replay_lib.load_real_episodes(self.offline_episode_dir, self.render_size, limit)
      if not offline:
        raise ValueError(f'sim_episode_dir {self.offline_episode_dir!r} holds no episodes')
      n, t, s = replay_lib.refill(target, offline)
      if target is self.replay:
        capacity -= t
      self._log(f'{target.name} replay: {n} off-policy episodes ({t} transitions) from '
                f'{self.offline_episode_dir} ({s:.1f}s)')
    old = self.log.load_newest(capacity) if capacity > 0 else []
    self._count_logged_after_checkpoint(old, resumed)
    if old and replay is None:
      n, t, s = replay_lib.refill(self.replay, old)
      self._log(f'sim replay refilled with {n} episodes ({t} transitions) from '
                f'{len(self.log.shard_paths())} shards in {self.log.directory} ({s:.1f}s)')

  def _count_logged_after_checkpoint(self, old, resumed):
    """Episodes logged after the checkpoint (or by a run killed before its first one) are in
    the replay: count them, so that new episodes get new seeds and ids and the collection
    ratio sees them.

    The run's episode index is in each id (``sim-00000042``). With K envs an episode can end
    before one started earlier, so a kill can leave a gap (an episode in progress); new indices
    start after the highest logged one, never in a gap. Logs of older runs, whose ids are not
    indices, are counted by records.
    """
    checkpointed = int(self.sim_episodes.numpy())
    indices = [_episode_index(e) for e in old]
    if old and all(i is not None for i in indices):
      after = [(i, e) for i, e in zip(indices, old) if i >= checkpointed]
      behind = max(indices) + 1 - checkpointed if after else 0
      steps = sum(int(e.actions.shape[0]) for _, e in after)
      gaps = behind - len(after)
    else:
      behind = self.log.count_episodes() - checkpointed
      steps = sum(int(e.actions.shape[0]) for e in old[-behind:]) if 0 < behind <= len(
          old) else 0
      gaps = 0
    if behind <= 0:
      return
    self.sim_episodes.assign_add(behind)
    self.env_steps.assign_add(steps)
    if resumed:
      self._log(f'{behind - gaps} sim episodes ({steps} env steps) were logged after the '
                'checkpoint: counted, so new episodes get new seeds' +
                (f'; {gaps} in progress at the kill were lost' if gaps else ''))

  def start_envs(self):
    if self.enabled and not self.envs:
      self.envs = [self._train_env(i) for i in range(self.num_envs)]

  def _train_env(self, i):
    """Collection env i (also a diverged one's replacement: the same construction seed)."""
    return self._make_env(self.appearance, 'train',
                          seeds.derive_seed(self.seed, TRAIN_ENV_STREAM, i))

  def policy_seed(self) -> int:
    """Seed of an on-policy policy built now (depends on the env steps, so resumes differ)."""
    return seeds.derive_seed(self.seed, POLICY_STREAM, int(self.env_steps.numpy()))

  def set_cem_policy(self, q_network, schedule,
                     steps_per_train_step: float, name: str, **cem_kwargs):
    """Builds the exploring ``CEMPolicy`` over ``q_network`` that ``collect_on_policy`` uses.

    ``cem_kwargs`` go to ``policies.CEMPolicy`` (render_size, crop_size, image_transform,
    allowed_modes); its seed comes from ``policy_seed()``. Its ``set_exploration`` follows
    ``schedule.at(train_step)`` -> (epsilon, noise_std), e.g. ``runner.Exploration``.
    """
    self.policy = policies.CEMPolicy(q_network, seed=self.policy_seed(), **cem_kwargs)
    self._action_fn = policies.policy_action_fn(self.policy, name=name)
    self._schedule = schedule
    self._steps_per_train_step = float(steps_per_train_step)

  def collect(self, action_fn, num_episodes, label):
    """Runs episodes on the envs into the log and replay. Returns (steps, successes, n, secs)."""
    start = time.time()
    base = int(self.sim_episodes.numpy())
    progress = (rollout.Progress(num_episodes, label=label, interval=30.0)
                if num_episodes > self.num_envs else None)

    def log_episode(e):  # durable as soon as it ends (SimEpisodeLog flushes each episode)
      # Unique over the run and its resumes: the run's episode index.
      e.metadata['episode_id'] = f'sim-{base + int(e.metadata["episode_id"]):08d}'
      self.log.append([e])
      if progress is not None:
        progress(e)

    episodes = rollout.run_episodes(
        self.envs, action_fn, num_episodes, progress=log_episode,
        episode_seeds=lambda j: seeds.derive_seed(self.seed, COLLECT_EPISODE_STREAM,
                                                        base + j),
        metadata={'object_split': 'train'},
        replace_env=rollout.replacing(self.envs, self._train_env), log=self._log)
    self.replay.add_episodes(episodes)
    steps = sum(int(e.actions.shape[0]) for e in episodes)
    self.env_steps.assign_add(steps)
    self.sim_episodes.assign_add(len(episodes))
    successes = sum(int(bool(e.metadata['success'])) for e in episodes)
    return steps, successes, len(episodes), time.time() - start

  def initial_collection(self, num_episodes: int, policy_name: str):
    """Tops the sim episodes up to ``num_episodes`` with a scripted (or random) policy.

    Episodes already collected (a resumed run; or shards of a run killed before its first
    checkpoint) count towards it.
    """
    if not self.enabled:
      return
    missing = num_episodes - int(self.sim_episodes.numpy())
    if missing <= 0:
      return
    self._log(f'initial collection: {missing} episodes with the {policy_name} policy '
              f'in {self.appearance!r}')
    steps, succ, n, secs = self.collect(policies.scripted_action_fn(policy_name), missing,
                                        f'initial collect ({policy_name})')
    self.log.flush()
    self.initial_env_steps.assign(self.env_steps)
    self._log(f'initial collection: {n} episodes, {steps} steps, {succ}/{n} successes, '
              f'{steps / max(secs, 1e-9):.1f} env steps/s')

  @property
  def on_policy_steps(self) -> int:
    return int(self.env_steps.numpy()) - int(self.initial_env_steps.numpy())

  def collect_on_policy(self, step: int, min_transitions: int):
    """Collects rounds of ``num_envs`` episodes until the on-policy env steps reach
    (step + 1) * steps_per_train_step and the replay holds ``min_transitions``."""
    if self.policy is None:
      return
    # A long fill (e.g. the on-policy replay of a run resumed on a new machine) logs progress.
    have = self.replay.num_transitions
    progress = (progress_lib.Progress(min_transitions, label='on-policy replay fill',
                                      interval=30.0, initial=have, unit='transitions')
                if min_transitions - have > 50 * self.num_envs else None)
    if progress is not None:
      self._log(f'on-policy replay: collecting with the current policy until it holds '
                f'{min_transitions} transitions (it holds {self.replay.num_transitions})')
    while (self.on_policy_steps < (step + 1) * self._steps_per_train_step or
           self.replay.num_transitions < min_transitions):
      self.policy.set_exploration(*self._schedule.at(step))
      steps, succ, n, secs = self.collect(self._action_fn, self.num_envs, 'collect')
      for k, v in (('collect_seconds', secs), ('collect_steps', steps),
                   ('collect_successes', succ), ('collect_episodes', n)):
        self.stats[k] += v
      if progress is not None:
        now = min(self.replay.num_transitions, min_transitions)
        progress.update(max(0, now - have))
        have = now

  @property
  def collect_rate(self) -> float:
    return self.stats['collect_steps'] / max(self.stats['collect_seconds'], 1e-9)

  def success_text(self) -> str:
    if not self.stats['collect_episodes']:
      return ''
    return (f', on-policy success {self.stats["collect_successes"]}/'
            f'{self.stats["collect_episodes"]}')

  def flush(self):
    """Writes pending sim episodes (call before a checkpoint: its counters must not run
    ahead of the shards on disk)."""
    if self.log is not None:
      self.log.flush()

  def close(self):
    self.flush()
    for env in self.envs:
      env.close()
    self.envs = []


# ----------------------------------------------------------------------------- evaluation

class Evaluator:
  """Greedy evaluations on the test objects: eval/ summaries and eval/eval_<step>.json.

  Each entry is ``name -> (appearance, action_fn)``; with name == appearance (train_qtopt)
  the tags are ``success_rate/<appearance>`` etc. An entry added with its ``CEMPolicy`` also
  reports whether the policy's Q still uses the image, over the first ``SPREAD_FRAMES`` frames
  it saw (``policy_eval.FrameRecorder.image_use``): ``embedding_spread/<name>`` and
  ``action_change/<name>``, both near 0 when the Q ignores the image.
  """

  SPREAD_FRAMES = policy_eval.SPREAD_FRAMES

  def __init__(self, eval_dir: str, writer, make_env: Callable, num_episodes: int,
               num_envs: int, seed: int, env_steps: tf.Variable, log: Callable[[str], None]):
    self.eval_dir = eval_dir
    self.writer = writer
    self.make_env = make_env
    self.num_episodes = num_episodes
    self.num_envs = num_envs
    self.seed = seed
    self.env_steps = env_steps
    self._log = log
    self.entries = {}

  def add(self, name: str, appearance: str, action_fn, policy=None):
    self.entries[name] = (appearance, action_fn, policy)

  def __bool__(self):
    return bool(self.entries)

  def path(self, step: int) -> str:
    """The evaluation JSON of train step ``step`` (written atomically, last)."""
    return os.path.join(self.eval_dir, f'eval_{step:08d}.json')

  def run(self, step: int):
    results = {}
    for name, (appearance, action_fn, policy) in self.entries.items():
      if policy is not None:
        action_fn = policy_eval.FrameRecorder(action_fn, self.SPREAD_FRAMES)
      r = policy_eval.evaluate(action_fn, self.make_env, num_episodes=self.num_episodes,
                              num_envs=self.num_envs, appearance=appearance,
                              object_split='test', seed=self.seed, progress_interval=60.0)
      image_use = action_fn.image_use(policy) if policy is not None else {}
      r.update(image_use)
      results[name] = r
      with self.writer.as_default(step=step):
        tf.summary.scalar(f'success_rate/{name}', r['success_rate'])
        tf.summary.scalar(f'success_ci95_low/{name}', r['ci95_low'])
        tf.summary.scalar(f'success_ci95_high/{name}', r['ci95_high'])
        for measure, value in image_use.items():
          tf.summary.scalar(f'{measure}/{name}', value)
      label = '' if name == appearance else f' [{name}]'
      measures = policy_eval.FrameRecorder.format(image_use)
      self._log(f'eval step {step}{label}: {policy_eval.format_result(r)} '
                f'({r["seconds"]:.0f}s){"; " + measures if measures else ""}')
    self.writer.flush()
    fileio.write_json_atomic(self.path(step),
                             {'step': step, 'env_steps': int(self.env_steps.numpy()),
                              'results': results})
    return results


# ----------------------------------------------------------------------------- rates, progress

class TrainTimer:
  """Seconds spent in train steps (not collection or evaluation)."""

  def __init__(self):
    self.seconds = 0.0
    self.steps = 0
    self.step_seconds = []  # per step, for timing reports

  @contextlib.contextmanager
  def step(self):
    t0 = time.time()
    yield
    dt = time.time() - t0
    self.seconds += dt
    self.steps += 1
    self.step_seconds.append(dt)

  @property
  def rate(self) -> float:
    return self.steps / max(self.seconds, 1e-9)

  @property
  def median_step_seconds(self) -> Optional[float]:
    """Median seconds per train step, the first (tracing) step left out; None before any."""
    seconds = sorted(self.step_seconds[1:] or self.step_seconds)
    return seconds[len(seconds) // 2] if seconds else None


class RateSummaries:
  """Writes rate/, replay/ and collect/ scalars with rates over the last summary interval."""

  def __init__(self, timer: TrainTimer, collection: SimCollection,
               replays: Dict[str, Optional[replay_lib.TransitionReplay]]):
    self.timer = timer
    self.collection = collection
    self.replays = replays
    self._last = self._now()

  def _now(self):
    return {'time': time.time(), 'train': self.timer.seconds,
            'collect': self.collection.stats['collect_seconds'],
            'collect_steps': self.collection.stats['collect_steps'],
            'train_steps': self.timer.steps}

  def write(self):
    """Within a summary writer's default context (with a step)."""
    now = self._now()
    last = self._last
    d_train = now['train'] - last['train']
    d_collect = now['collect'] - last['collect']
    d_train_steps = now['train_steps'] - last['train_steps']
    if d_train > 0:
      tf.summary.scalar('rate/train_steps_per_sec', d_train_steps / d_train)
    if d_collect > 0:
      tf.summary.scalar('rate/env_steps_per_sec', (now['collect_steps'] - last['collect_steps'])
                        / d_collect)
    tf.summary.scalar('rate/wall_train_steps_per_sec',
                      d_train_steps / max(now['time'] - last['time'], 1e-9))
    tf.summary.scalar('replay/env_steps', int(self.collection.env_steps.numpy()))
    for name, r in self.replays.items():
      if r is not None:
        tf.summary.scalar(f'replay/{name}_transitions', r.num_transitions)
    policy = self.collection.policy
    if policy is not None:
      tf.summary.scalar('collect/epsilon', float(policy.epsilon.numpy()))
      tf.summary.scalar('collect/noise_std', float(policy.noise_std.numpy()))
      stats = self.collection.stats
      if stats['collect_episodes']:
        tf.summary.scalar('collect/success_rate',
                          stats['collect_successes'] / stats['collect_episodes'])
    self._last = now


class ProgressLogger:
  """Progress line: '<head> | <rate> steps/s (train .../s, env ... steps/s), env steps N | ETA'.

  The ETA uses ``progress.RecentRate`` over the last ``ETA_WINDOW`` intervals between lines,
  not the average since the start: a resumed run first trains without collecting (its
  episodes logged after the checkpoint count), and a paused process (SIGSTOP) makes one
  interval slow; neither should set the ETA for hours.
  """

  ETA_WINDOW = 9

  def __init__(self, num_train_steps: int, start_step: int, timer: TrainTimer,
               collection: SimCollection, log: Callable[[str], None],
               now: Optional[float] = None):
    self.num_train_steps = num_train_steps
    self.timer = timer
    self.collection = collection
    self._log = log
    self._recent = progress_lib.RecentRate(self.ETA_WINDOW)
    self._recent.add(start_step, time.time() if now is None else now)

  def eta_seconds(self, step: int) -> float:
    """Seconds to ``num_train_steps`` at the median recent rate (inf before any)."""
    return self._recent.eta_seconds(self.num_train_steps - step)

  def log(self, step: int, head: str, now: Optional[float] = None):
    rate = self._recent.add(step, time.time() if now is None else now)
    self._log(f'{head} | {rate:.2f} steps/s (train {self.timer.rate:.1f}/s, env '
              f'{self.collection.collect_rate:.1f} steps/s), env steps '
              f'{int(self.collection.env_steps.numpy())}{self.collection.success_text()} | '
              f'ETA {format_seconds(self.eta_seconds(step))}')


def write_loss_info(info, tag_fn: Callable[[str], str]):
  """Every finite field of a LossInfo namedtuple as ``tag_fn(field)`` (default writer/step)."""
  for field in info._fields:
    value = float(getattr(info, field))
    if np.isfinite(value):
      tf.summary.scalar(tag_fn(field), value)
