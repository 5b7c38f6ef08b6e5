"""Off-policy episode collection into sharded TFRecords (paper Appendix A: real data sets start
from a scripted policy with exploration noise; here the 'real' appearance stands in for a robot).

``collect(...)`` writes ``num_episodes`` episodes as ``ceil(num_episodes / episodes_per_shard)``
shards named ``episodes-00003-of-00010.tfrecord`` (episodes.py schema) with worker processes
('spawn' context). Every shard is a pure function of the collection config and its index:

  shard seed    = SeedSequence([seed, shard_index])    -> 31-bit int
  episode seed  = SeedSequence([shard seed, episode j]) -> 31-bit int; the env is reseeded with
                  it (``env.seed``) and the policy is built with it, so ``metadata['seed']``
                  reproduces the episode; episode_id = '<shard>-<j>', e.g. '00003-0001'.

Resumable: shards are written through ``EpisodeWriter`` (temp file + atomic rename), so a file
with a final shard name is complete. A re-run with the same config skips existing shards and
fills in the missing ones; a different config in the same directory is refused
(``collect_config.json``). Temporary files of dead writers are removed on start. At the end
``summary.json`` (episodes, transitions, success rate, seconds) is written atomically.
"""

import dataclasses
import json
import math
import multiprocessing
import os
import queue as queue_lib
import sys
import time
from typing import Any, Callable, Dict, Optional, Sequence

from rl_cyclegan import fileio
from rl_cyclegan import progress as progress_lib
from rl_cyclegan import seeds
from rl_cyclegan import specs
from rl_cyclegan.actors import policies
from rl_cyclegan.actors import rollout
from rl_cyclegan.data import episodes as episodes_lib

POLICY_NAMES = ('scripted', 'random')
CONFIG_FILE = 'collect_config.json'
SUMMARY_FILE = 'summary.json'
SHARD_PREFIX = 'episodes'


@dataclasses.dataclass(frozen=True)
class CollectConfig:
  """Everything that determines the content of the shards."""
  appearance: str = 'real'
  policy: str = 'scripted'
  num_episodes: int = 100
  episodes_per_shard: int = 10
  render_size: Sequence[int] = specs.DEFAULT_RENDER_SIZE
  action_mode: str = 'auto_descend'
  object_split: str = 'train'
  seed: int = 0
  max_steps: Optional[int] = None  # None: the env's default (5 'auto_descend', 20 'full')
  num_objects: Optional[int] = None  # None: the env's default
  image_format: str = episodes_lib.DEFAULT_IMAGE_FORMAT
  # (low, high): per-episode factor on the scripted policy's noise (ScriptedGraspPolicy);
  # None: the policy's fixed noise.
  noise_scale: Optional[Sequence[float]] = None
  # Keyword arguments of the appearance (envs/appearance.make_appearance), e.g.
  # {'real_gap': 0.5} for a pseudo-real world halfway from sim; None: the appearance's defaults.
  appearance_kwargs: Optional[Dict[str, Any]] = None

  def __post_init__(self):
    object.__setattr__(self, 'render_size', tuple(int(v) for v in self.render_size))
    if self.noise_scale is not None:
      object.__setattr__(self, 'noise_scale', tuple(self.noise_scale))  # checked in check_config
    if self.appearance_kwargs is not None:
      object.__setattr__(self, 'appearance_kwargs', dict(sorted(self.appearance_kwargs.items())))

  def to_json(self):
    d = dataclasses.asdict(self)
    d['render_size'] = list(self.render_size)
    for field in ('noise_scale', 'appearance_kwargs'):  # unset: the config files of logs
      if d[field] is None:                              # written before the option match
        del d[field]
    if self.noise_scale is not None:
      d['noise_scale'] = list(self.noise_scale)
    return d

  @property
  def num_shards(self):
    return math.ceil(self.num_episodes / self.episodes_per_shard)

  def shard_size(self, index):
    return min(self.episodes_per_shard, self.num_episodes - index * self.episodes_per_shard)

  def shard_path(self, output_dir, index):
    return os.path.join(output_dir, episodes_lib.shard_name(index, self.num_shards, SHARD_PREFIX))


derive_seed = seeds.derive_seed  # re-exported: callers of the collection API


def valid_names() -> Dict[str, Sequence[str]]:
  """Valid appearance / policy / action_mode / object_split names (from the environment)."""
  from rl_cyclegan.envs import appearance as appearance_lib  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.envs import grasping  # pylint: disable=g-import-not-at-top
  return {'appearance': appearance_lib.APPEARANCE_NAMES, 'policy': POLICY_NAMES,
          'action_mode': grasping.ACTION_MODES, 'object_split': grasping.OBJECT_SPLITS}


def check_config(config: CollectConfig, names=None):
  """Raises ValueError naming the bad setting and listing the valid values."""
  names = names or valid_names()
  for field, valid in names.items():
    value = getattr(config, field)
    if value not in valid:
      raise ValueError(f'unknown {field} {value!r}; valid values: {", ".join(valid)}')
  if config.num_episodes < 1 or config.episodes_per_shard < 1:
    raise ValueError(f'num_episodes and episodes_per_shard must be >= 1, got '
                     f'{config.num_episodes} and {config.episodes_per_shard}')
  specs._check_size(config.render_size, 'render_size')  # pylint: disable=protected-access
  if config.noise_scale is not None:
    from rl_cyclegan.envs import scripted  # pylint: disable=g-import-not-at-top
    if config.policy != 'scripted':
      raise ValueError(f'noise_scale applies to the scripted policy only, got policy '
                       f'{config.policy!r}')
    scripted.check_noise_scale(config.noise_scale)
  if config.appearance_kwargs is not None:
    from rl_cyclegan.envs import appearance as appearance_lib  # pylint: disable=g-import-not-at-top
    try:
      appearance_lib.make_appearance(config.appearance, **config.appearance_kwargs)
    except (TypeError, ValueError) as e:
      raise ValueError(f'appearance_kwargs {config.appearance_kwargs!r} do not fit the '
                       f'{config.appearance!r} appearance: {e}') from None
  if config.image_format not in episodes_lib.IMAGE_FORMATS:
    raise ValueError(f'unknown image_format {config.image_format!r}; valid values: '
                     f'{", ".join(episodes_lib.IMAGE_FORMATS)}')


# --------------------------------------------------------------------- environment and policy


def make_env(config: CollectConfig, seed: int):
  """The default environment factory: a GraspingEnv for ``config``."""
  from rl_cyclegan.envs import grasping  # pylint: disable=g-import-not-at-top
  kwargs = dict(appearance=config.appearance, seed=seed, render_size=tuple(config.render_size),
                action_mode=config.action_mode, object_split=config.object_split,
                max_steps=config.max_steps, appearance_kwargs=config.appearance_kwargs)
  if config.num_objects is not None:
    kwargs['num_objects'] = config.num_objects
  return grasping.GraspingEnv(**kwargs)


def make_policy(name: str, env, seed: int, noise_scale=None):
  """The default policy factory: 'scripted' -> ScriptedGraspPolicy, 'random' -> RandomPolicy."""
  from rl_cyclegan.envs import scripted  # pylint: disable=g-import-not-at-top
  classes = {'scripted': scripted.ScriptedGraspPolicy, 'random': scripted.RandomPolicy}
  if name not in classes:
    raise ValueError(f'unknown policy {name!r}; valid values: {", ".join(classes)}')
  kwargs = {} if noise_scale is None else {'noise_scale': noise_scale}
  return classes[name](env, seed=seed, **kwargs)


# ----------------------------------------------------------------------------------- workers

_WORKER = {}  # per process: progress queue and the current shard's environment
PROGRESS_DRAIN_SECONDS = 30.0  # at the end, how long to wait for counts still in flight


def _init_worker(progress_queue):
  _WORKER['queue'] = progress_queue


def _report(episodes: int):
  """Counts ``episodes`` (negative: taken back) towards the parent's progress line."""
  _WORKER['reported'] = _WORKER.get('reported', 0) + episodes
  if _WORKER.get('queue') is not None and episodes:
    _WORKER['queue'].put(episodes)


def _drain_progress(queue, progress, until: Optional[int] = None,
                    timeout: float = PROGRESS_DRAIN_SECONDS) -> int:
  """Moves the workers' episode counts from ``queue`` to ``progress``; returns their sum.
  Without ``until``, takes what is there now; with it, waits (up to ``timeout`` seconds) until
  the counts taken sum to ``until``."""
  total, deadline = 0, time.time() + timeout
  while True:
    if until is None:
      if queue.empty():
        return total
      count = queue.get()
    elif total == until:
      return total
    else:
      try:
        count = queue.get(timeout=max(0.0, deadline - time.time()))
      except queue_lib.Empty:
        return total
    progress.update(count)
    total += count


def _shard_env(config, env_factory, seed):
  """A new environment for each shard (the previous one is closed).

  A shard is then a function of (config, index) alone, whichever shards its worker collected
  before (pybullet keeps some state across resets, e.g. body ids). In session 15 one shard's
  physics gave NaN in a 2-worker collection with a reused environment, and the same shard
  collected alone in a fresh process was fine. In session 17, with a new environment per
  shard, shard 135 of the 18,000-episode real log diverged again (step 1 of an episode) and
  was fine collected alone: such failures do not reproduce from the index, so
  ``_write_shard_task`` retries the shard. Building the scene costs about a second per shard.
  """
  old = _WORKER.pop('env', None)
  if old is not None and hasattr(old, 'close'):
    old.close()
  _WORKER['env'] = env_factory(config, seed)
  return _WORKER['env']


def write_shard(config: CollectConfig, output_dir: str, index: int,
                env_factory: Callable = make_env, policy_factory: Callable = make_policy):
  """Collects and writes shard ``index`` (temp file + rename). Returns its counts."""
  start = time.time()
  path = config.shard_path(output_dir, index)
  shard_seed = derive_seed(config.seed, index)
  env = _shard_env(config, env_factory, shard_seed)
  # The one episode runner (actors.rollout) with a policy built per episode from its seed.
  action_fn = policies.ScriptedActionFn(
      lambda env, seed: policy_factory(config.policy, env, seed, noise_scale=config.noise_scale),
      name=config.policy)
  successes = 0
  with episodes_lib.EpisodeWriter(path, image_format=config.image_format) as writer:

    def write(episode):  # each episode as it completes
      nonlocal successes
      episode.metadata['episode_id'] = f"{index:05d}-{int(episode.metadata['episode_id']):04d}"
      writer.write(episode)
      successes += int(episode.metadata['success'])
      _report(1)

    rollout.run_episodes([env], action_fn, config.shard_size(index), progress=write,
                         episode_seeds=lambda j: derive_seed(shard_seed, j),
                         metadata={'appearance': config.appearance, 'policy': config.policy,
                                   'action_mode': config.action_mode,
                                   'object_split': config.object_split})
  return {'shard': index, 'episodes': writer.num_episodes, 'transitions': writer.num_transitions,
          'successes': successes, 'seconds': time.time() - start}


SHARD_ATTEMPTS = 3  # a shard whose physics diverged is collected again from its start


def _retryable(error) -> bool:
  from rl_cyclegan.envs import grasping  # pylint: disable=g-import-not-at-top
  return isinstance(error, grasping.PhysicsDivergedError)


def _write_shard_task(args):
  """``write_shard``, again from the start (a new env, the temp file discarded) when the physics
  diverged: the same seeds give the same shard, so a retried shard holds what a clean one does.
  The episodes the failed attempt reported are taken back from the progress count."""
  config, output_dir, index, env_factory, policy_factory = args
  path = config.shard_path(output_dir, index)
  for attempt in range(1, SHARD_ATTEMPTS + 1):
    reported = _WORKER.get('reported', 0)
    try:
      return write_shard(config, output_dir, index, env_factory, policy_factory)
    except Exception as e:  # pylint: disable=broad-except
      if not _retryable(e) or attempt == SHARD_ATTEMPTS:
        tries = f' (attempt {attempt} of {SHARD_ATTEMPTS})' if _retryable(e) else ''
        raise RuntimeError(f'collecting shard {path} failed{tries}: '
                           f'{type(e).__name__}: {e}') from e
      sys.stderr.write(f'collect: shard {path}, attempt {attempt} of {SHARD_ATTEMPTS}: '
                       f'{type(e).__name__}: {e}; collecting it again from its start\n')
      _report(reported - _WORKER.get('reported', 0))


# ----------------------------------------------------------------------------------- collect


pid_alive = fileio.pid_alive
remove_stale_temp_files = fileio.remove_stale_temp_files


def _check_previous_config(output_dir, config):
  path = os.path.join(output_dir, CONFIG_FILE)
  if os.path.exists(path):
    with open(path) as f:
      previous = json.load(f)
    current = config.to_json()
    diffs = {k: (previous.get(k), v) for k, v in current.items() if previous.get(k) != v}
    if diffs:
      listed = ', '.join(f'{k}: {a!r} -> {b!r}' for k, (a, b) in sorted(diffs.items()))
      raise ValueError(f'{output_dir} holds a collection with another config ({listed}); '
                       f'use a new output_dir, or the same flags to resume')
  fileio.write_json_atomic(path, config.to_json())


def summarize(output_dir, config: CollectConfig):
  """Counts episodes, transitions and successes in the config's shards (no image decoding)."""
  counts = {'episodes': 0, 'transitions': 0, 'successes': 0, 'shards': 0}
  for index in range(config.num_shards):
    path = config.shard_path(output_dir, index)
    if not os.path.exists(path):
      continue
    counts['shards'] += 1
    for episode in episodes_lib.read_episodes(path, decode_images=False):
      counts['episodes'] += 1
      counts['transitions'] += len(episode.actions)
      counts['successes'] += int(episode.metadata['success'])
  counts['success_rate'] = (counts['successes'] / counts['episodes'] if counts['episodes']
                            else float('nan'))
  return counts


def collect(output_dir, config: CollectConfig, num_workers: int = 2,
            env_factory: Callable = make_env, policy_factory: Callable = make_policy,
            progress_interval: float = 2.0, names=None, stream=None) -> Dict:
  """Collects the missing shards of ``config`` into ``output_dir``; returns the summary dict.

  Args:
    output_dir: created if missing.
    config: CollectConfig (appearance, policy, counts, render size, seed, ...).
    num_workers: worker processes ('spawn'); 0 runs in this process (debugging).
    env_factory: ``f(config, seed) -> env`` (picklable, e.g. a module-level function); the env
      needs reset/step/seed and ``episode_success``.
    policy_factory: ``f(policy_name, env, seed, noise_scale=None) -> policy`` with reset() and
      action(time_step).
    progress_interval: seconds between progress lines (on ``stream``, default stderr).
    names: valid names per setting (default: from the environment modules).
  """
  check_config(config, names)
  start = time.time()
  stream = stream or sys.stderr
  os.makedirs(output_dir, exist_ok=True)
  removed = remove_stale_temp_files(output_dir)
  if removed:
    stream.write(f'collect: removed {len(removed)} temporary files of interrupted runs\n')
  _check_previous_config(output_dir, config)
  todo = [i for i in range(config.num_shards) if not os.path.exists(config.shard_path(
      output_dir, i))]
  skipped = config.num_shards - len(todo)
  done_before = sum(config.shard_size(i) for i in range(config.num_shards) if i not in set(todo))
  stream.write(f'collect: {config.num_episodes} episodes in {config.num_shards} shards '
               f'into {output_dir}: {skipped} shards complete, {len(todo)} to collect with '
               f'{num_workers} workers\n')
  progress = progress_lib.Progress(config.num_episodes, 'collect', progress_interval, stream,
                                  initial=done_before)
  tasks = [(config, output_dir, i, env_factory, policy_factory) for i in todo]
  if todo and num_workers == 0:
    _init_worker(None)
    for task in tasks:
      result = _write_shard_task(task)
      progress.update(result['episodes'])
  elif todo:
    context = multiprocessing.get_context('spawn')
    queue = context.Queue()
    with context.Pool(min(num_workers, len(todo)), initializer=_init_worker,
                      initargs=(queue,)) as pool:
      results = pool.imap_unordered(_write_shard_task, tasks, chunksize=1)
      remaining, written, counted = len(tasks), 0, 0
      while remaining:
        try:
          written += results.next(timeout=0.2)['episodes']
          remaining -= 1
        except multiprocessing.TimeoutError:
          pass
        counted += _drain_progress(queue, progress)
      # A worker's last counts can still be in its queue's feeder thread when its shard's result
      # arrives; they sum to the episodes written (failed attempts take theirs back).
      counted += _drain_progress(queue, progress, until=written - counted)
  seconds = time.time() - start
  summary = summarize(output_dir, config)
  summary.update(seconds=round(seconds, 3), shards_total=config.num_shards,
                 shards_skipped=skipped, shards_written=len(todo),
                 episodes_collected=sum(config.shard_size(i) for i in todo),
                 episodes_per_second=round(sum(config.shard_size(i) for i in todo) / seconds, 3),
                 num_workers=num_workers, config=config.to_json())
  fileio.write_json_atomic(os.path.join(output_dir, SUMMARY_FILE), summary)
  stream.write(f'collect: done in {seconds:.1f}s: {summary["episodes"]} episodes, '
               f'{summary["transitions"]} transitions, success rate '
               f'{summary["success_rate"]:.3f}\n')
  return summary
