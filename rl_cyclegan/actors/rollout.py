"""Batched episode rollouts: K environments stepped in lockstep, one policy call per step.

``run_episodes`` keeps K environments busy until ``num_episodes`` episodes are complete. At each
step it stacks the observations of the *active* environments (those inside an episode) and calls
the action function once for all of them, so a TF policy runs one batched CEM per step instead of
K single ones. An environment whose episode ends is reset for the next episode right away (while
fewer than ``num_episodes`` have been started), so the batch shrinks only at the very end.

Action function protocol (see ``rl_cyclegan.actors.policies``):

  action_fn(observations, env_ids, time_steps) -> float32 actions [K, 8]
    observations: dict of stacked numpy arrays, e.g. 'image' uint8 [K, H, W, 3] and
      'gripper_state' float32 [K, 2], for the K active environments;
    env_ids: their indices into ``envs`` (ascending); time_steps: their current TimeSteps.
  optional action_fn.begin_episode(env_id, env, seed): called before each episode's reset.
  optional action_fn.name: recorded as metadata['policy'].

Episode j (in start order) runs in the first environment free at that time; with
``episode_seeds`` its environment is reseeded with ``episode_seeds[j]`` (or
``episode_seeds(j)``) first, so the scene of episode j does not depend on K or on the policy.
The environment steps run one after another in this process (pybullet holds the GIL).

With ``replace_env``, an environment whose simulation diverges (``PhysicsDivergedError`` from
its reset or step) is replaced by a new one and its episode starts again, with the same index
and seed, on the new environment: the partial episode is dropped and nothing else changes, so
a long training run does not stop for one diverged episode (``MAX_ENV_REPLACEMENTS`` per
episode, then the error is raised). ``replacing(envs, make_env)`` builds such a callable.
"""

import sys
from typing import Callable, List, Optional, Sequence, Union

import numpy as np

from rl_cyclegan import progress as progress_lib
from rl_cyclegan import specs
from rl_cyclegan.envs import grasping

# Guard against an environment that never ends an episode (when max_steps is None).
MAX_EPISODE_STEPS = 1000
# Diverged environments replaced for one episode before its PhysicsDivergedError is raised.
MAX_ENV_REPLACEMENTS = 3


class _Recorder:
  """Accumulates one episode."""

  def __init__(self, index, seed, time_step):
    self.index = index
    self.seed = seed
    self.time_step = time_step
    self.images = [np.asarray(time_step.observation['image'], np.uint8)]
    self.gripper_states = [np.asarray(time_step.observation['gripper_state'], np.float32)]
    self.actions, self.rewards, self.dones = [], [], []

  def add(self, action, time_step):
    self.time_step = time_step
    self.actions.append(np.asarray(action, np.float32))
    self.rewards.append(float(time_step.reward))
    # 1.0 where s_{t+1} is terminal (no bootstrapping), as every episode the runner records.
    self.dones.append(float(time_step.is_last() and float(time_step.discount) == 0.0))
    self.images.append(np.asarray(time_step.observation['image'], np.uint8))
    self.gripper_states.append(np.asarray(time_step.observation['gripper_state'], np.float32))

  def episode(self, metadata) -> specs.Episode:
    return specs.Episode(
        images=np.stack(self.images), gripper_states=np.stack(self.gripper_states),
        actions=np.stack(self.actions).reshape(-1, specs.ACTION_DIM),
        rewards=np.asarray(self.rewards, np.float32), dones=np.asarray(self.dones, np.float32),
        metadata=metadata)


def _seed_for(episode_seeds, j):
  if episode_seeds is None:
    return None
  seed = episode_seeds(j) if callable(episode_seeds) else episode_seeds[j]
  return None if seed is None else int(seed)


def _success(env, recorder, truncated):
  if truncated:
    return False
  if hasattr(env, 'episode_success'):
    return bool(env.episode_success)
  return bool(np.sum(recorder.rewards) > 0)


def run_episodes(envs: Sequence,
                 action_fn: Callable,
                 num_episodes: int,
                 max_steps: Optional[int] = None,
                 progress: Optional[Callable[[specs.Episode], None]] = None,
                 episode_seeds: Union[None, Sequence[int], Callable[[int], int]] = None,
                 metadata: Optional[dict] = None,
                 replace_env: Optional[Callable[[int], object]] = None,
                 log: Optional[Callable[[str], None]] = None) -> List[specs.Episode]:
  """Runs ``num_episodes`` episodes on ``envs`` in lockstep; see the module docstring.

  Args:
    envs: K tf_agents PyEnvironments (e.g. ``GraspingEnv``), unbatched.
    action_fn: batched action function (protocol above).
    num_episodes: episodes to complete.
    max_steps: optional cap on steps per episode; an episode reaching it without the env
      ending it is cut off (metadata truncated=True, success=False, last done 0). None: the
      env ends episodes itself (a RuntimeError after ``MAX_EPISODE_STEPS``).
    progress: optional callable, called with each completed Episode.
    episode_seeds: optional per-episode env seeds (sequence or callable j -> seed).
    metadata: extra metadata for every episode (e.g. object_split); it overrides the
      defaults below except success, seed, episode_id, env_index and truncated.
    replace_env: optional ``replace_env(i) -> env``: a new environment in place of ``envs[i]``
      after its simulation diverged (the caller closes and forgets the old one; see
      ``replacing``). None: a ``PhysicsDivergedError`` propagates.
    log: where replacements are reported (default stderr).

  Returns:
    The Episodes in completion order; metadata holds appearance and action_mode (from the
    env when it has them), policy (``action_fn.name`` or its type name), seed (-1 if not
    reseeded), success, episode_id (start order, '00007'), env_index and truncated.
  """
  envs = list(envs)
  if not envs:
    raise ValueError('run_episodes needs at least one environment')
  num_episodes = int(num_episodes)
  if num_episodes < 0:
    raise ValueError(f'num_episodes must be >= 0, got {num_episodes}')
  limit = MAX_EPISODE_STEPS if max_steps is None else int(max_steps)
  if limit < 1:
    raise ValueError(f'max_steps must be >= 1, got {max_steps}')
  policy_name = getattr(action_fn, 'name', None) or getattr(
      action_fn, '__name__', type(action_fn).__name__)
  base_metadata = dict(metadata or {})
  begin_episode = getattr(action_fn, 'begin_episode', None)

  recorders = [None] * len(envs)  # per env: _Recorder of the running episode, or None
  started = 0
  episodes = []
  replacements = {}  # episode index -> environments replaced for it

  def begin(i, j):
    seed = _seed_for(episode_seeds, j)
    while True:
      try:
        if seed is not None:
          envs[i].seed(seed)
        if begin_episode is not None:
          begin_episode(i, envs[i], seed)
        recorders[i] = _Recorder(j, seed, envs[i].reset())
        return
      except grasping.PhysicsDivergedError as e:
        replace(i, j, seed, e)

  def replace(i, j, seed, error):
    """A new envs[i] for episode j after ``error``, or the error once replacements run out."""
    n = replacements.get(j, 0) + 1
    if replace_env is None or n > MAX_ENV_REPLACEMENTS:
      raise error
    replacements[j] = n
    (log or _stderr)(f'rollout: episode {j} (seed {seed}) on env {i}: {error}; a new '
                     f'environment runs it again from its start (replacement {n} of '
                     f'{MAX_ENV_REPLACEMENTS})')
    recorders[i] = None
    envs[i] = replace_env(i)

  def start(i):
    nonlocal started
    j, started = started, started + 1
    begin(i, j)

  def finish(i, truncated):
    env, rec = envs[i], recorders[i]
    meta = {'appearance': getattr(env, 'appearance', ''),
            'action_mode': getattr(env, 'action_mode', ''), 'policy': policy_name}
    meta.update(base_metadata)
    meta.update(seed=-1 if rec.seed is None else rec.seed, episode_id=f'{rec.index:05d}',
                env_index=i, truncated=truncated, success=_success(env, rec, truncated))
    grasp_distance = None if truncated else getattr(env, 'grasp_distance', None)
    if grasp_distance is not None:  # GraspingEnv: fingertips to the nearest object, metres
      meta['grasp_distance'] = float(grasp_distance)
    episode = rec.episode(meta)
    episodes.append(episode)
    recorders[i] = None
    if progress is not None:
      progress(episode)

  for i in range(min(len(envs), num_episodes)):
    start(i)
  while True:
    active = [i for i, rec in enumerate(recorders) if rec is not None]
    if not active:
      break
    time_steps = [recorders[i].time_step for i in active]
    observations = {key: np.stack([np.asarray(t.observation[key]) for t in time_steps])
                    for key in time_steps[0].observation}
    actions = np.asarray(action_fn(observations, active, time_steps), np.float32)
    if actions.shape != (len(active), specs.ACTION_DIM):
      raise ValueError(f'action function {policy_name} returned shape {actions.shape}; '
                       f'expected [{len(active)}, {specs.ACTION_DIM}] for envs {active}')
    for action, i in zip(actions, active):
      rec = recorders[i]
      try:
        rec.add(action, envs[i].step(action))
      except grasping.PhysicsDivergedError as e:
        replace(i, rec.index, rec.seed, e)
        begin(i, rec.index)  # the same episode again; its next step is in the next batch
        continue
      ended = rec.time_step.is_last()
      if not ended and len(rec.actions) >= limit:
        if max_steps is None:
          raise RuntimeError(f'env {i} did not end episode {rec.index} within '
                             f'{MAX_EPISODE_STEPS} steps')
        finish(i, truncated=True)
      elif ended:
        finish(i, truncated=False)
      else:
        continue
      if started < num_episodes:
        start(i)
  return episodes


def replacing(envs: List, make_env: Callable[[int], object]) -> Callable[[int], object]:
  """A ``replace_env`` for ``run_episodes`` that closes ``envs[i]``, stores
  ``make_env(i)`` in its place (the caller's list keeps the live environments) and returns it."""
  def replace(i):
    close = getattr(envs[i], 'close', None)
    if close is not None:
      try:
        close()
      except Exception:  # pylint: disable=broad-except
        pass  # a diverged simulation may not close cleanly; the new env does not depend on it
    envs[i] = make_env(i)
    return envs[i]
  return replace


def _stderr(message: str):
  sys.stderr.write(message + '\n')
  sys.stderr.flush()


Progress = progress_lib.Progress  # the progress callable run_episodes takes
