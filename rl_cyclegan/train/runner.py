"""The training runner: one loop for every pipeline (QT-Opt, RL-CycleGAN, the final Q).

A pipeline (train_qtopt.py, train_rl_cyclegan.py) builds its learner and says what it needs
(``Pipeline``); the runner owns everything else, in this order:

  1. checks the settings, builds the sim collection (envs, on-policy replay, durable episode
     log, counters), the checkpoint and its manager; resumes from the newest readable
     checkpoint (a truncated one is skipped, naming it), or calls ``pipeline.fresh_start``;
  2. fills the replays: the off-policy sim log (``Replay.sim_episode_dir``, first at every
     start), the run's own logged sim episodes, the real episodes; builds the batch sampler;
  3. writes operative_config.gin and run_spec.json (rl_cyclegan/run_dir.py);
  4. initial collection (scripted), then the schedule: on-policy collection whenever the env
     steps after the initial collection fall below train steps x
     ``Exploration.collect_steps_per_train_step``; one train step; summaries, progress line,
     checkpoints, Q-network snapshots and greedy evaluations at their intervals; SIGTERM or
     Ctrl-C saves a checkpoint and the pending episodes, then re-raises;
  5. returns the run facts (steps, env steps, evaluations, rates).

Shared settings are small gin-configurable groups, bound once for every binary:

  Environment     the simulated grasping env: appearance, sizes, action mode, objects, envs
  Replay          data: real and sim episode directories, buffer capacities, shard size
  Exploration     initial collection, collection ratio, epsilon / noise schedules
  Evaluation      greedy CEM evaluations on the test objects: interval, episodes, seed
  Checkpointing   checkpoint / snapshot / summary / progress-line intervals
  Actors          distributed collection (train/distributed.py): off by default; with local
                  actor processes or a Reverb port the on-policy sim replay is a Reverb table
                  fed by actors, and step 4's collection becomes waiting for their env steps

Each pipeline's own settings (steps, batch, losses, generator) stay in its ``train_eval``.
"""

import dataclasses
import os
import time
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import gin
import tensorflow as tf
from tf_agents.train import interval_trigger

from rl_cyclegan.actors import policies
from rl_cyclegan import run_dir
from rl_cyclegan import specs
from rl_cyclegan.train import loop
from rl_cyclegan.replay import buffers as replay_lib


# ----------------------------------------------------------------------------- settings

@gin.configurable
@dataclasses.dataclass(frozen=True)
class Environment:
  """The grasping environment of collection and evaluation (envs/grasping.py; other
  GraspingEnv settings via gin)."""
  appearance: str = 'sim'  # training appearance: 'sim', 'randomized' or 'real'
  render_size: Tuple[int, int] = specs.DEFAULT_RENDER_SIZE  # (H, W) px; paper 512x640
  crop_size: Tuple[int, int] = specs.DEFAULT_CROP_SIZE  # (h, w) px; paper 472x472
  action_mode: str = 'auto_descend'  # 'auto_descend' (CPU) or 'full' (paper Section 5)
  num_objects: int = 5  # objects in the tray
  num_envs: int = 2  # lockstep environments for collection and evaluation
  auto_descend_terminate: bool = False  # may CEM pick 'terminate' in 'auto_descend'?

  def __post_init__(self):
    from rl_cyclegan.envs import appearance as appearance_lib  # pylint: disable=g-import-not-at-top
    from rl_cyclegan.envs import grasping  # pylint: disable=g-import-not-at-top
    _check_size(self, 'render_size')
    _check_size(self, 'crop_size')
    _check_choice(self, 'appearance', appearance_lib.APPEARANCE_NAMES)
    _check_choice(self, 'action_mode', grasping.ACTION_MODES)
    _check_int(self, 'num_objects', 1)
    _check_int(self, 'num_envs', 1)
    if self.crop_size[0] > self.render_size[0] or self.crop_size[1] > self.render_size[1]:
      raise ValueError(f'Environment.crop_size {self.crop_size} is larger than '
                       f'Environment.render_size {self.render_size}')

  @property
  def allowed_modes(self):
    """CEM's allowed modes (by default the policy only moves in 'auto_descend')."""
    return specs.allowed_modes_for(self.action_mode, self.auto_descend_terminate)

  def make_env(self, appearance, object_split, seed):
    from rl_cyclegan.envs import grasping  # pylint: disable=g-import-not-at-top
    return grasping.GraspingEnv(appearance=appearance, object_split=object_split, seed=seed,
                                render_size=self.render_size, action_mode=self.action_mode,
                                num_objects=self.num_objects)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class Replay:
  """The data: episode directories (episodes.py schema) and replay buffers."""
  real_episode_dir: Optional[str] = None  # off-policy real episodes
  # Off-policy sim episodes in the training appearance (e.g. a scripted log written by
  # tools/collect.py; QT-Opt's offline data), loaded first at every start.
  sim_episode_dir: Optional[str] = None
  # None: the sim log and the on-policy episodes share one buffer (uniform over both). A
  # fraction: the log gets its own buffer (sim_log_capacity) and that share of the sim part
  # of every batch (0.5: equal parts, like Appendix A's separate off- / on-policy buffers).
  sim_log_fraction: Optional[float] = None
  sim_log_capacity: int = 120_000  # transitions of the sim log (with sim_log_fraction)
  sim_replay_capacity: int = 50_000  # transitions (~31 KB each at 64x80)
  real_replay_capacity: int = 50_000  # transitions
  episodes_per_shard: int = 16  # on-policy sim episodes per replay/sim shard
  min_replay_transitions: int = 64  # per buffer, before the first train step

  def __post_init__(self):
    for name in ('sim_log_capacity', 'sim_replay_capacity', 'real_replay_capacity',
                 'episodes_per_shard', 'min_replay_transitions'):
      _check_int(self, name, 1)
    if self.sim_log_fraction is not None:
      _check_number(self, 'sim_log_fraction')
      if not 0.0 < self.sim_log_fraction < 1.0:
        raise ValueError(f'Replay.sim_log_fraction must be in (0, 1) or None, got '
                         f'{self.sim_log_fraction}')


@gin.configurable
@dataclasses.dataclass(frozen=True)
class Exploration:
  """Collection: the initial policy, then on-policy CEM with linearly decaying exploration
  (in train steps)."""
  initial_collect_episodes: int = 100  # episodes of the initial policy before training
  initial_collect_policy: str = 'scripted'  # 'scripted' or 'random'
  collect_steps_per_train_step: float = 1.0  # on-policy env steps per train step; 0: none
  epsilon_start: float = 0.5  # P(uniformly random action)
  epsilon_end: float = 0.1
  epsilon_decay_steps: int = 5_000
  noise_std_start: float = 0.2  # Gaussian noise on (dx, dy, dz, u) of the CEM action
  noise_std_end: float = 0.05
  noise_decay_steps: int = 5_000

  def at(self, step):
    """(epsilon, noise_std) at train step ``step``."""
    return (policies.linear_schedule(step, self.epsilon_start, self.epsilon_end,
                                     self.epsilon_decay_steps),
            policies.linear_schedule(step, self.noise_std_start, self.noise_std_end,
                                     self.noise_decay_steps))

  def __post_init__(self):
    _check_choice(self, 'initial_collect_policy', policies.SCRIPTED_POLICY_NAMES)
    _check_int(self, 'initial_collect_episodes', 0)
    for name in ('collect_steps_per_train_step', 'epsilon_start', 'epsilon_end',
                 'noise_std_start', 'noise_std_end'):
      _check_number(self, name)
    for name in ('epsilon_decay_steps', 'noise_decay_steps'):
      _check_int(self, name, 0)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class Evaluation:
  """Greedy CEM on the unseen test objects, the same scenes at every evaluation."""
  eval_interval: int = 2_000  # train steps
  num_eval_episodes: int = 50  # per evaluated policy
  eval_seed: int = 0
  eval_at_start: bool = False

  def __post_init__(self):
    _check_int(self, 'eval_interval', 1)
    _check_int(self, 'num_eval_episodes', 1)
    _check_int(self, 'eval_seed', 0)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class Checkpointing:
  """Intervals (train steps) of checkpoints, snapshots, summaries and progress lines."""
  checkpoint_interval: int = 1_000
  # Also a checkpoint when this many minutes of wall time have passed since the last one (as
  # Acme's Checkpointer's time_delta_minutes), so a SIGKILL loses at most this much work however
  # slow the step; None: step intervals only.
  checkpoint_minutes: Optional[float] = 15.0
  max_checkpoints_to_keep: int = 3
  # Q-network snapshots kept for good (train/snapshots/q-<step>) for
  # tools/select_checkpoint.py; None: the evaluation interval; 0: none.
  snapshot_interval: Optional[int] = None
  summary_interval: int = 100
  log_interval: int = 100
  # Also keep the newest checkpoint of everything but the optimizers in train/weights (a
  # Table 1 joint run's: 4.2 MB, its full one 10.4 MB): a copy small enough to keep off the
  # machine (tools/table1.py commits a running joint run's). A run with no checkpoint of its
  # own resumes from it; its optimizers then start fresh (``loop.restore_run``).
  weights_copy: bool = False

  def __post_init__(self):
    for name in ('checkpoint_interval', 'max_checkpoints_to_keep', 'summary_interval',
                 'log_interval'):
      _check_int(self, name, 1)
    if self.snapshot_interval is not None:
      _check_int(self, 'snapshot_interval', 0)
    if self.checkpoint_minutes is not None:
      _check_number(self, 'checkpoint_minutes')
      if self.checkpoint_minutes <= 0:
        raise ValueError(f'Checkpointing.checkpoint_minutes = {self.checkpoint_minutes!r}: '
                         'expected minutes > 0, or None for step intervals only')


@gin.configurable
@dataclasses.dataclass(frozen=True)
class Actors:
  """Distributed collection (train/distributed.py; BUILD.md "Distributed collection: Reverb
  actors"). The default (no local actors, no port) is in-process collection.

  With ``num_local_actors`` > 0 or a ``reverb_port``, the learner hosts a Reverb server (the
  on-policy sim table, checkpointed under replay/reverb, and the weights), starts
  ``num_local_actors`` actor processes (tools/qtopt_actor.py), and before each train step waits
  until the actors' inserted env steps reach its collection ratio
  (Exploration.collect_steps_per_train_step). Actors on other machines run tools/qtopt_actor.py
  with --reverb_address=<learner host>:<reverb_port> and the learner's gin.
  """
  num_local_actors: int = 0  # actor processes started (and restarted) by the learner
  reverb_port: Optional[int] = None  # None: a free port (local actors only)
  weight_push_interval: int = 10  # train steps between weight pushes to the actors
  pull_interval: int = 1  # actor rounds (one episode per env) between weight pulls
  max_steps_ahead: int = 50  # train steps of collection the actors may run ahead of the learner
  restart_actors: bool = True  # restart a local actor that died (else go on without it)
  max_restarts: int = 20  # restarts over the run, all actors together
  stall_timeout: float = 600.0  # seconds without a new transition before the learner fails
  # True: the Reverb server runs in its own process (tools/reverb_server.py), which outlives a
  # killed learner, so the restarted learner finds every insert; False: in the learner.
  separate_server: bool = False

  def __post_init__(self):
    for name, minimum in (('num_local_actors', 0), ('weight_push_interval', 1),
                          ('pull_interval', 1), ('max_steps_ahead', 0), ('max_restarts', 0)):
      _check_int(self, name, minimum)
    if self.reverb_port is not None:
      _check_int(self, 'reverb_port', 1)
    _check_number(self, 'stall_timeout')

  @property
  def distributed(self) -> bool:
    return self.num_local_actors > 0 or self.reverb_port is not None


def _check_int(group, name, minimum):
  value = getattr(group, name)
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    raise TypeError(f'{type(group).__name__}.{name} = {value!r}: expected an integer >= '
                    f'{minimum}')


def _check_number(group, name):
  value = getattr(group, name)
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise TypeError(f'{type(group).__name__}.{name} = {value!r}: expected a number')


def _check_size(group, name):
  value = getattr(group, name)
  if (not isinstance(value, (tuple, list)) or len(value) != 2 or
      not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
    raise TypeError(f'{type(group).__name__}.{name} = {value!r}: expected (height, width), '
                    'two positive integers')
  object.__setattr__(group, name, tuple(value))


def _check_choice(group, name, valid):
  value = getattr(group, name)
  if value not in valid:
    raise ValueError(f'{type(group).__name__}.{name} = {value!r}; valid values: '
                     f'{", ".join(valid)}')


def check_names(owner: str, values: Sequence[str], valid: Sequence[str]) -> Tuple[str, ...]:
  """``values`` as a tuple of names from ``valid``; a lone string or an unknown name is an
  error naming ``owner`` (e.g. 'train_eval.eval_appearances')."""
  if isinstance(values, str) or not isinstance(values, (tuple, list)):
    raise TypeError(f'{owner} = {values!r}: expected a tuple of names from {", ".join(valid)}')
  for v in values:
    if v not in valid:
      raise ValueError(f'{owner} has {v!r}; valid values: {", ".join(valid)}')
  return tuple(values)


def check_steps(owner: str, value) -> int:
  if isinstance(value, bool) or not isinstance(value, int) or value < 0:
    raise TypeError(f'{owner} = {value!r}: expected an integer >= 0')
  return value


_GROUPS = {'environment': Environment, 'replay': Replay, 'exploration': Exploration,
           'evaluation': Evaluation, 'checkpointing': Checkpointing, 'actors': Actors}


@dataclasses.dataclass(frozen=True)
class Settings:
  """Every shared settings group (each built from gin unless given)."""
  environment: Environment = None
  replay: Replay = None
  exploration: Exploration = None
  evaluation: Evaluation = None
  checkpointing: Checkpointing = None
  actors: Actors = None

  def __post_init__(self):
    for field, cls in _GROUPS.items():
      if getattr(self, field) is None:
        object.__setattr__(self, field, cls())

  @classmethod
  def with_overrides(cls, **overrides) -> Tuple['Settings', Dict[str, object]]:
    """Settings from gin with ``overrides`` (flat, e.g. render_size=...) applied to the group
    that owns each; returns (settings, the overrides no group owns)."""
    groups, rest = {}, dict(overrides)
    for field, group in _GROUPS.items():
      names = {f.name for f in dataclasses.fields(group)}
      mine = {k: rest.pop(k) for k in list(rest) if k in names}
      groups[field] = group(**mine)  # gin supplies the others
    return cls(**groups), rest


# ----------------------------------------------------------------------------- pipelines

@dataclasses.dataclass
class Pipeline:
  """What a pipeline gives the runner; see the module docstring.

  learner            has ``checkpoint_items()`` and ``train_step_counter``
  train_step         (sampler, step, context) -> LossInfo: samples its batches from the
                     runner's ``MixedSampler`` and runs one train step
  write_summaries    (info, step) -> None: the pipeline's scalar summaries, called within
                     the train writer's default context every summary interval
  progress_head      (info) -> the middle of the progress line
  collect_network    the Q-network of the on-policy CEM policy (None: no on-policy data)
  collect_transform  the per-crop image transform of that policy (e.g. G), or None
  eval_policies      {name: (appearance, q_network, per-crop transform or None)}
  snapshot_network   kept every snapshot interval as train/snapshots/q-<step>, or None
  sim_fraction       sim share of a batch (1: sim only, 0: real only)
  needs_real         whether real episodes are required
  return_discount    set: the replays store discounted returns-to-go (MC targets)
  batch_size         transitions per batch (sim + real)
  on_step            optional (info, step, context) -> None after every train step (monitors,
                     images, metrics)
  on_open            optional (result, context) -> None once the replays are filled
  on_finish          optional (result, context) -> None: adds the pipeline's run facts
  fresh_start        optional () -> None when there is no checkpoint to resume (warm starts)
  extra_items        other objects to checkpoint (e.g. a frozen G)
  run_spec           kwargs of run_dir.RunSpec beyond the environment's (kind, networks' keys)
  make_env           optional override of ``Environment.make_env`` (e.g. the sim-to-real env)
  explicit_config    'Configurable.param': value lines the operative config needs
  actor_bindings     gin lines an actor process needs beyond the groups to rebuild the
                     collection (None: the pipeline has no actor binary; Actors unsupported)
  """
  name: str
  learner: object
  train_step: Callable
  write_summaries: Callable
  progress_head: Callable
  eval_policies: Mapping[str, Tuple[str, object, Optional[Callable]]]
  run_spec: Mapping[str, object]
  collect_network: object = None
  collect_transform: Optional[Callable] = None
  snapshot_network: object = None
  sim_fraction: float = 1.0
  batch_size: int = 32
  needs_real: bool = False
  return_discount: Optional[float] = None
  on_step: Optional[Callable] = None
  on_open: Optional[Callable] = None
  on_finish: Optional[Callable] = None
  fresh_start: Optional[Callable] = None
  extra_items: Mapping[str, object] = dataclasses.field(default_factory=dict)
  make_env: Optional[Callable] = None
  explicit_config: Mapping[str, object] = dataclasses.field(default_factory=dict)
  actor_bindings: Optional[Sequence[str]] = None


@dataclasses.dataclass
class Context:
  """What the runner built, for a pipeline's hooks (summaries that read replays, etc.)."""
  root_dir: str
  settings: Settings
  collection: loop.SimCollection
  sampler: replay_lib.MixedSampler
  real_replay: Optional[replay_lib.TransitionReplay]
  manager: tf.train.CheckpointManager
  train_writer: object
  resumed: Optional[str]
  feed: Optional[object] = None  # distributed.ActorFeed when Actors.distributed


def check_data(settings: Settings, sim_fraction: float, needs_real: bool, owner: str):
  """Raises ValueError naming the setting when the data cannot feed the batches."""
  r, x = settings.replay, settings.exploration
  if not 0.0 <= sim_fraction <= 1.0:
    raise ValueError(f'{owner}.sim_fraction must be in [0, 1], got {sim_fraction}')
  use_sim, use_real = sim_fraction > 0.0, sim_fraction < 1.0 or needs_real
  collect = use_sim and x.collect_steps_per_train_step > 0
  if r.sim_episode_dir and not use_sim:
    raise ValueError(f'Replay.sim_episode_dir={r.sim_episode_dir!r} is set but '
                     f'{owner}.sim_fraction=0 draws no sim transitions')
  if use_real and not r.real_episode_dir:
    raise ValueError(f'{owner} draws real transitions, so Replay.real_episode_dir is required: '
                     'a directory of real episode TFRecord shards (tools/collect.py '
                     f'--appearance=real) at render_size {settings.environment.render_size}')
  if r.sim_log_fraction is not None and (not r.sim_episode_dir or not collect):
    raise ValueError(f'Replay.sim_log_fraction={r.sim_log_fraction} splits the sim part '
                     'between the sim log and on-policy episodes: it needs both '
                     'Replay.sim_episode_dir and Exploration.collect_steps_per_train_step > 0')
  if use_sim and not collect and x.initial_collect_episodes < 1 and not r.sim_episode_dir:
    raise ValueError('the batches draw sim data but there is none: set '
                     'Exploration.collect_steps_per_train_step > 0, '
                     'Exploration.initial_collect_episodes > 0 or Replay.sim_episode_dir')


def check_actors(settings: Settings, pipeline: Pipeline, collect_on_policy: bool):
  """Raises ValueError naming the setting when distributed collection cannot run."""
  if pipeline.actor_bindings is None:
    raise ValueError(f'Actors.num_local_actors / Actors.reverb_port are set but {pipeline.name} '
                     'has no actor binary (only train_qtopt collects through Reverb actors)')
  if not collect_on_policy:
    raise ValueError('Actors.num_local_actors / Actors.reverb_port are set but there is no '
                     'on-policy collection: it needs sim data (sim_fraction > 0) and '
                     'Exploration.collect_steps_per_train_step > 0')
  if settings.replay.sim_episode_dir and settings.replay.sim_log_fraction is None:
    raise ValueError('with Reverb actors the off-policy sim log (Replay.sim_episode_dir) stays '
                     'in its own in-process buffer: set Replay.sim_log_fraction (its share of '
                     'the sim part of a batch, e.g. 0.5)')


def load_real_episodes(settings: Settings):
  """The real episodes (validated, naming a bad file), before anything is built."""
  r = settings.replay
  return replay_lib.load_real_episodes(r.real_episode_dir, settings.environment.render_size,
                                       r.real_replay_capacity)


# ----------------------------------------------------------------------------- the run

def run(root_dir: str, pipeline: Pipeline, settings: Settings, num_train_steps: int,
        seed: int, log: Callable[[str], None], real_episodes=None) -> Dict[str, object]:
  """Trains ``pipeline`` to ``num_train_steps``; see the module docstring. Returns run facts.

  ``real_episodes``: already loaded real episodes (a pipeline that validates them before
  building its networks), else they are loaded here when the batches need them.
  """
  env, r, x = settings.environment, settings.replay, settings.exploration
  ev, ck = settings.evaluation, settings.checkpointing
  use_sim = pipeline.sim_fraction > 0.0
  use_real = pipeline.sim_fraction < 1.0 or pipeline.needs_real
  collect_on_policy = (use_sim and x.collect_steps_per_train_step > 0 and
                       pipeline.collect_network is not None)
  use_actors = settings.actors.distributed
  if use_actors:
    check_actors(settings, pipeline, collect_on_policy)
  snapshot_interval = ev.eval_interval if ck.snapshot_interval is None else ck.snapshot_interval
  train_dir = os.path.join(root_dir, run_dir.TRAIN_SUBDIR)
  eval_dir = os.path.join(root_dir, run_dir.EVAL_SUBDIR)
  os.makedirs(eval_dir, exist_ok=True)
  make_env = pipeline.make_env or env.make_env

  # ------------------------------------------------------------------ checkpoint, resume
  collection = loop.SimCollection(
      root_dir, enabled=use_sim, make_env=make_env, appearance=env.appearance,
      num_envs=env.num_envs, render_size=env.render_size,
      replay_capacity=r.sim_replay_capacity, episodes_per_shard=r.episodes_per_shard,
      seed=seed, log=log, offline_episode_dir=r.sim_episode_dir,
      offline_replay_capacity=r.sim_log_capacity if r.sim_log_fraction is not None else None,
      return_discount=pipeline.return_discount)
  items = dict(pipeline.learner.checkpoint_items(), **collection.checkpoint_items(),
               **pipeline.extra_items)
  checkpoint = tf.train.Checkpoint(**items)
  manager = tf.train.CheckpointManager(checkpoint, run_dir.checkpoint_dir(root_dir),
                                       max_to_keep=ck.max_checkpoints_to_keep)
  weights = tf.train.Checkpoint(**loop.weight_items(items))
  weights_manager = tf.train.CheckpointManager(weights, run_dir.weights_checkpoint_dir(root_dir),
                                               max_to_keep=1)
  counter = pipeline.learner.train_step_counter
  resumed, weights_only = loop.restore_run(checkpoint, manager, weights, weights_manager,
                                           f'crop size {env.crop_size}, {pipeline.name} '
                                           'settings and networks from gin', log)
  if resumed:
    log(f'resumed from {resumed} at train step {int(counter.numpy())}, '
        f'{int(collection.env_steps.numpy())} env steps')
  elif pipeline.fresh_start is not None:
    pipeline.fresh_start()

  # ------------------------------------------------------------------ replay buffers
  feed = None
  if use_actors:  # the on-policy sim replay is a Reverb table fed by actor processes
    from rl_cyclegan.train import distributed  # pylint: disable=g-import-not-at-top
    feed = distributed.ActorFeed(
        root_dir, settings, pipeline.collect_network, seed, x.collect_steps_per_train_step,
        collection, pipeline.actor_bindings, pipeline.return_discount, log)
  collection.open(resumed, replay=feed.replay if feed else None)
  sim_replay, real_replay = collection.replay, None
  if use_real:
    if real_episodes is None:
      real_episodes = load_real_episodes(settings)
    real_replay = replay_lib.TransitionReplay(env.render_size, r.real_replay_capacity,
                                              name='real',
                                              return_discount=pipeline.return_discount)
    n, t, s = replay_lib.refill(real_replay, real_episodes)
    log(f'real replay filled with {n} episodes ({t} transitions) from {r.real_episode_dir} '
        f'({s:.1f}s)')
    del real_episodes
  sim_source, sim_parts = sim_replay, ''
  if collection.offline_replay is not None:
    sim_source = replay_lib.ReplayMix(collection.offline_replay, sim_replay, r.sim_log_fraction,
                                      name='sim')
  sampler = replay_lib.MixedSampler(sim_source, real_replay, pipeline.batch_size,
                                    pipeline.sim_fraction, env.crop_size)
  if sim_source is not sim_replay:
    sim_parts = ' ({} from the sim log + {} on-policy)'.format(*sim_source.split(sampler.num_sim))
  result = {'resumed': bool(resumed), 'start_step': int(counter.numpy()),
            'resumed_weights_only': weights_only,
            'compute_dtype': getattr(pipeline.learner, 'compute_dtype', 'float32')}

  # ------------------------------------------------------------------ policies
  collection.start_envs()
  if collect_on_policy and not use_actors:
    collection.set_cem_policy(
        pipeline.collect_network, x, x.collect_steps_per_train_step, name=pipeline.name,
        render_size=env.render_size, crop_size=env.crop_size,
        image_transform=pipeline.collect_transform, allowed_modes=env.allowed_modes)
  train_writer = tf.summary.create_file_writer(train_dir)
  eval_writer = tf.summary.create_file_writer(eval_dir)
  evaluator = loop.Evaluator(eval_dir, eval_writer, make_env, num_episodes=ev.num_eval_episodes,
                             num_envs=env.num_envs, seed=ev.eval_seed,
                             env_steps=collection.env_steps, log=log)
  for name, (appearance, q_network, transform) in pipeline.eval_policies.items():
    policy = policies.CEMPolicy(
        q_network, render_size=env.render_size, crop_size=env.crop_size,
        image_transform=transform, allowed_modes=env.allowed_modes, seed=ev.eval_seed)
    evaluator.add(name, appearance, policies.greedy_action_fn(policy, name=name), policy)

  # ------------------------------------------------------------------ what the run is
  explicit = dict({'GraspingQNetwork.crop_size': env.crop_size,
                   'GraspingEnv.num_objects': env.num_objects}, **pipeline.explicit_config)
  loop.write_operative_config(root_dir, explicit, caller=pipeline.name)
  run_dir.write_run_spec(root_dir, run_dir.RunSpec(
      render_size=env.render_size, crop_size=env.crop_size, action_mode=env.action_mode,
      allowed_modes=env.allowed_modes, num_objects=env.num_objects, appearance=env.appearance,
      networks=run_dir.network_specs(items), checkpoint_keys=tuple(sorted(items)),
      **pipeline.run_spec))
  context = Context(root_dir, settings, collection, sampler, real_replay, manager,
                    train_writer, resumed, feed)
  if pipeline.on_open is not None:
    pipeline.on_open(result, context)

  # ------------------------------------------------------------------ the schedule
  last_save = time.monotonic()  # of the newest checkpoint (or the start)

  def save_checkpoint():
    nonlocal last_save
    collection.flush()  # the checkpoint's bookkeeping never runs ahead of the shards on disk
    if feed is not None:  # the Reverb table first: its insert count >= the checkpoint's
      first = feed.sync_counters()
      feed.checkpoint()
      last = feed.replay.num_inserted  # actors insert meanwhile: the table's is in between
    path = manager.save(checkpoint_number=counter)
    if ck.weights_copy:
      weights_manager.save(checkpoint_number=counter)
    last_save = time.monotonic()
    if feed is not None:
      log(f'checkpoint at step {int(counter.numpy())} with a Reverb checkpoint of the sim '
          f'table taken at {first}-{last} inserted transitions')
    return path

  timer = loop.TrainTimer()
  evals = {}
  try:
    with loop.sigterm_as_exception():
      collection.initial_collection(x.initial_collect_episodes, x.initial_collect_policy)
      if feed is not None:
        feed.checkpoint()  # the initial episodes are in the table's checkpoint
        feed.push(int(counter.numpy()))
        feed.start_actors()
      for name, buffer in (('sim', sim_replay), ('real', real_replay)):
        if buffer is not None and buffer.num_transitions < min(r.min_replay_transitions,
                                                               buffer.capacity):
          if name == 'real' or not collect_on_policy:
            source = f' from {r.real_episode_dir}' if name == 'real' else ''
            raise ValueError(f'the {name} replay holds {buffer.num_transitions} transitions'
                             f'{source}, fewer than Replay.min_replay_transitions='
                             f'{r.min_replay_transitions}')
      step = int(counter.numpy())
      if ev.eval_at_start and not resumed and evaluator:
        evals[step] = evaluator.run(step)
      if resumed and step > 0:
        # Evaluations and snapshots are part of the resumable state: one that was due at the
        # restored step (a kill between the checkpoint and its evaluation, or during it) is
        # made now, so a run is finished only when its final evaluation is written.
        if (pipeline.snapshot_network is not None and snapshot_interval and
            step % snapshot_interval == 0 and
            step not in dict(run_dir.list_snapshots(root_dir))):
          loop.write_snapshot(root_dir, step, pipeline.snapshot_network)
        if evaluator and (step % ev.eval_interval == 0 or step >= num_train_steps) and (
            not os.path.exists(evaluator.path(step))):
          log(f'the evaluation at step {step} is missing (interrupted run): making it now')
          evals[step] = evaluator.run(step)
      progress = loop.ProgressLogger(num_train_steps, step, timer, collection, log)
      rates = loop.RateSummaries(timer, collection, {'sim': sim_replay, 'real': real_replay,
                                                     'sim_log': collection.offline_replay})
      log(f'training from step {step} to {num_train_steps} (batch {pipeline.batch_size}: '
          f'{sampler.num_sim} sim{sim_parts} + {sampler.num_real} real; computing in '
          f'{result["compute_dtype"]})')
      now = {}  # the step and LossInfo the triggers act on

      def write_summaries():
        with train_writer.as_default(step=now['step']):
          pipeline.write_summaries(now['info'], now['step'])
          rates.write()

      def evaluate():
        evals[now['step']] = evaluator.run(now['step'])

      # (interval, action, also at the last step); each fires at the multiples of its interval.
      schedule = [
          (ck.summary_interval, write_summaries, False),
          (ck.log_interval, lambda: progress.log(now['step'], (
              f'step {now["step"]}/{num_train_steps} {pipeline.progress_head(now["info"])}')),
           True),
          (ck.checkpoint_interval, save_checkpoint, False),
          (snapshot_interval if pipeline.snapshot_network is not None else 0,
           lambda: loop.write_snapshot(root_dir, now['step'], pipeline.snapshot_network), False),
          (ev.eval_interval if evaluator else 0, evaluate, True)]
      triggers = [(interval_trigger.IntervalTrigger(n, fn, start=step - step % n if n else 0),
                   at_end) for n, fn, at_end in schedule]
      while step < num_train_steps:
        if feed is not None:
          feed.wait(step)  # the actors' env steps cover this step (and weights pushed)
        else:
          collection.collect_on_policy(step, r.min_replay_transitions)
        with timer.step():
          info = pipeline.train_step(sampler, step, context)
        step = int(counter.numpy())
        now.update(step=step, info=info)
        if pipeline.on_step is not None:
          pipeline.on_step(info, step, context)
        for trigger, at_end in triggers:
          trigger(step, force_trigger=at_end and step == num_train_steps)
        if (ck.checkpoint_minutes is not None and step < num_train_steps and
            time.monotonic() - last_save >= 60.0 * ck.checkpoint_minutes):
          save_checkpoint()
          log(f'checkpoint at step {step}: {ck.checkpoint_minutes:g} min since the last one '
              '(Checkpointing.checkpoint_minutes)')
      save_checkpoint()
  except (KeyboardInterrupt, loop.Terminate):
    log('interrupted: saving a checkpoint and the pending sim episodes before exiting')
    save_checkpoint()
    raise
  finally:
    collection.close()
    if feed is not None:
      result['actor_restarts'] = feed.restarts
      result['weight_pushes'] = feed.pushes
      result['sim_table_transitions'] = feed.replay.num_transitions
      feed.close()
    train_writer.flush()
  loop.write_operative_config(root_dir, explicit, caller=pipeline.name)
  if pipeline.on_finish is not None:
    pipeline.on_finish(result, context)
  result.update(final_step=int(counter.numpy()), env_steps=int(collection.env_steps.numpy()),
                sim_episodes=int(collection.sim_episodes.numpy()),
                checkpoint=manager.latest_checkpoint, evals=evals,
                train_steps_per_sec=timer.rate, env_steps_per_sec=collection.collect_rate,
                train_step_seconds=timer.median_step_seconds)
  return result
