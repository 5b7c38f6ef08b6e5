"""An actor of distributed QT-Opt collection: its own envs and CEM policy, episodes into Reverb.

One actor process (``tools/qtopt_actor.py``; the learner starts ``Actors.num_local_actors`` of
them, or they run on other machines against the learner's ``Actors.reverb_port``):

  1. pulls the learner's Q-network weights, train step and env-step limit from the Reverb
     variable table through TF-Agents' ``ReverbVariableContainer`` (blocks until the learner
     has pushed once), before its first round and every ``pull_interval`` rounds;
  2. sets the CEM policy's exploration from the train step (``schedule(step)`` ->
     (epsilon, noise_std), ``runner.Exploration.at``);
  3. runs one round of episodes, one per env, through ``actors.rollout.run_episodes``; each
     episode's transitions are inserted into the sim table as the episode ends
     (``reverb_tables.EpisodeInserter``: flushed, so a kill loses at most the episodes in
     progress);
  4. waits while the table's inserted transitions reach the pulled env-step limit (the
     learner is behind: actors run at most ``Actors.max_steps_ahead`` train steps ahead).

Episode seeds: ``derive_seed(seed, ACTOR_EPISODE_STREAM, actor_id, incarnation, j)`` where the
incarnation is the table's insert count when the actor started, so a restarted actor never
replays its earlier scenes (its predecessor inserted episodes, so the count moved).

The actor returns when the Reverb server goes away (the learner finished or died), or after
``max_episodes``.
"""

import time
from typing import Callable, Optional, Sequence

import tensorflow as tf

from rl_cyclegan import seeds
from rl_cyclegan.actors import policies
from rl_cyclegan.actors import rollout
from rl_cyclegan.replay import reverb_tables

# Seed streams of actor processes (train/loop.py numbers the learner's 1-3).
ACTOR_ENV_STREAM, ACTOR_EPISODE_STREAM, ACTOR_POLICY_STREAM = 11, 12, 13


class ServerGone(Exception):
  """The Reverb server stopped answering (the learner finished or died)."""


class ReverbActor:
  """See the module docstring. ``run`` returns the number of episodes inserted."""

  def __init__(self, address: str, envs: Sequence, policy: policies.CEMPolicy,
               schedule: Callable[[int], tuple], actor_id: int, seed: int,
               render_size: Sequence[int], return_discount: Optional[float] = None,
               pull_interval: int = 1, poll_seconds: float = 0.2,
               log: Callable[[str], None] = print, name: str = 'qtopt_actor',
               log_every: int = 50, make_env: Optional[Callable[[int], object]] = None):
    self.address = address
    self.envs = list(envs)  # the live environments (a diverged one is replaced in place)
    # make_env(i): a new env i after its simulation diverged (rollout.replacing); None: the
    # actor process stops on it (and its supervisor restarts it).
    self._replace_env = rollout.replacing(self.envs, make_env) if make_env else None
    self.policy = policy
    self.schedule = schedule
    self.actor_id = int(actor_id)
    self.seed = int(seed)
    self.pull_interval = max(1, int(pull_interval))
    self.poll_seconds = float(poll_seconds)
    self._log = log
    self._action_fn = policies.policy_action_fn(policy, name=f'{name}-{self.actor_id}')
    self.client = reverb_tables.wait_for_server(address)
    self._inserter = reverb_tables.EpisodeInserter(address, render_size, return_discount)
    self._container = reverb_tables.weight_container(address)
    self.train_step = tf.Variable(0, dtype=tf.int64, trainable=False)
    self.env_step_limit = tf.Variable(0, dtype=tf.int64, trainable=False)
    self.episodes = 0
    self.successes = 0
    self.log_every = max(1, int(log_every))
    self.pulls = 0

  @property
  def variables(self):
    return {reverb_tables.Q_KEY: self.policy.q_network.variables,
            reverb_tables.TRAIN_STEP_KEY: self.train_step,
            reverb_tables.LIMIT_KEY: self.env_step_limit}

  def _inserted(self) -> int:
    try:
      return reverb_tables.inserted(self.client)
    except Exception as e:  # pylint: disable=broad-except  (grpc errors differ by version)
      raise ServerGone(f'the Reverb server at {self.address} stopped answering: {e}') from e

  def pull(self) -> int:
    """Copies the learner's newest weights into the policy's Q-network; returns its step."""
    self._inserted()  # fails fast (ServerGone) instead of blocking on a dead server
    self._container.update(self.variables, reverb_tables.VARIABLE_TABLE)
    self.pulls += 1
    return int(self.train_step.numpy())

  def checksum(self) -> float:
    """Sum of every Q-network weight (to compare the actor's copy with the learner's)."""
    return float(sum(tf.reduce_sum(tf.cast(v, tf.float64)).numpy()
                     for v in self.policy.q_network.variables))

  def run(self, max_episodes: Optional[int] = None) -> int:
    incarnation = self._inserted()
    self._log(f'actor {self.actor_id}: {len(self.envs)} envs, Reverb at {self.address} '
              f'(incarnation {incarnation}); waiting for the learner\'s weights')
    rounds = 0
    try:
      while max_episodes is None or self.episodes < max_episodes:
        if rounds % self.pull_interval == 0:
          self.pull()
          if rounds == 0:
            self._log(f'actor {self.actor_id}: pulled the weights of train step '
                      f'{int(self.train_step.numpy())} (checksum {self.checksum():.6f})')
        while self._inserted() >= int(self.env_step_limit.numpy()):
          time.sleep(self.poll_seconds)  # the learner is behind: wait for newer weights
          self.pull()
        step = int(self.train_step.numpy())
        self.policy.set_exploration(*self.schedule(step))
        base = self.episodes
        todo = len(self.envs) if max_episodes is None else min(len(self.envs),
                                                                max_episodes - base)
        rollout.run_episodes(
            self.envs, self._action_fn, todo, progress=self._insert,
            episode_seeds=lambda j: seeds.derive_seed(
                self.seed, ACTOR_EPISODE_STREAM, self.actor_id, incarnation, base + j),
            metadata={'object_split': 'train', 'actor_id': self.actor_id},
            replace_env=self._replace_env, log=self._log)
        rounds += 1
    except ServerGone as e:
      self._log(f'actor {self.actor_id}: {e}; stopping after {self.episodes} episodes')
    return self.episodes

  def _insert(self, episode):
    try:
      self._inserter.insert(episode)
    except Exception as e:  # pylint: disable=broad-except
      raise ServerGone(f'inserting into {self.address} failed: {e}') from e
    self.episodes += 1
    self.successes += int(bool(episode.metadata.get('success')))
    if self.episodes % self.log_every == 0:
      self._log(f'actor {self.actor_id}: {self.episodes} episodes inserted, '
                f'{self.successes} successful, policy of train step '
                f'{int(self.train_step.numpy())}')


def actor_seeds(seed: int, actor_id: int, num_envs: int):
  """(env seeds, policy seed) of actor ``actor_id``."""
  return ([seeds.derive_seed(seed, ACTOR_ENV_STREAM, actor_id, i) for i in range(num_envs)],
          seeds.derive_seed(seed, ACTOR_POLICY_STREAM, actor_id))
