"""The QT-Opt replay on a Reverb server: on-policy sim transitions and the policy's weights.

Distributed collection (issue 21; BUILD.md "Distributed collection: Reverb actors"): actor
processes (``actors/reverb_actor.py``) run their own envs and CEM policy and insert every
finished episode's transitions into the Reverb table ``SIM_TABLE``; the learner samples its sim
batches from it (``ReverbReplay``, the interface of ``buffers.TransitionReplay``, so
``MixedSampler`` and ``ReplayMix`` take it unchanged) and publishes its weights to the table
``VARIABLE_TABLE``, read by TF-Agents' ``ReverbVariableContainer`` (as TF-Agents' distributed
examples do).

Tables (``make_tables``):

  SIM_TABLE       one item per transition, signature ``buffers.replay_data_spec(render_size)``
                  (uint8 images at the render size, as the in-process buffers store them;
                  with ``return_discount`` the pair (transition, mc_return)); uniform sampler,
                  FIFO remover at ``capacity``, ``MinSize(min_size)`` rate limiter: sampling
                  waits until the table holds ``min_size`` transitions. The collection ratio
                  is not a Reverb rate limiter: see ``runner.Actors``.
  VARIABLE_TABLE  one item (max_size 1): {'q_network': [variables], 'train_step': int64,
                  'env_step_limit': int64} (``variable_signature``).

``ReplayServer`` hosts them with ``reverb.checkpointers.DefaultCheckpointer(directory)``: a
server started on a directory holding a checkpoint restores the tables (items, insert counts).
``checkpoint()`` writes one (the learner does it before each of its own checkpoints).
The off-policy logs (``Replay.sim_episode_dir``, ``Replay.real_episode_dir``) stay in the
learner's in-process buffers: they are read from disk at every start anyway.
"""

import os
import time
from typing import Dict, Optional, Sequence

import numpy as np
import reverb
import tensorflow as tf
from tf_agents.experimental.distributed import reverb_variable_container

from rl_cyclegan import specs
from rl_cyclegan.replay import buffers as replay_lib

SIM_TABLE = 'sim_transitions'
VARIABLE_TABLE = 'variables'  # tf_agents' reverb_variable_container.DEFAULT_TABLE
Q_KEY, TRAIN_STEP_KEY, LIMIT_KEY = 'q_network', 'train_step', 'env_step_limit'


def item_signature(render_size: Sequence[int], return_discount: Optional[float] = None):
  """The sim table's item: one transition (+ its return-to-go with ``return_discount``)."""
  spec = replay_lib.replay_data_spec(render_size)
  if return_discount is not None:
    spec = (spec, tf.TensorSpec([], tf.float32, name='mc_return'))
  return spec


def variable_signature(variables: Sequence[tf.Variable]) -> Dict[str, object]:
  """The variable table's item for the Q-network ``variables`` (in their order)."""
  return {Q_KEY: [tf.TensorSpec(v.shape, v.dtype) for v in variables],
          TRAIN_STEP_KEY: tf.TensorSpec([], tf.int64),
          LIMIT_KEY: tf.TensorSpec([], tf.int64)}


def weight_item(variables: Sequence[tf.Variable], train_step: int, env_step_limit: int):
  """The variable table's item (``variable_signature``): what the learner pushes."""
  return {Q_KEY: list(variables), TRAIN_STEP_KEY: tf.constant(int(train_step), tf.int64),
          LIMIT_KEY: tf.constant(int(env_step_limit), tf.int64)}


def weight_container(address: str):
  """TF-Agents' ReverbVariableContainer over the variable table of the server at ``address``."""
  return reverb_variable_container.ReverbVariableContainer(address, [VARIABLE_TABLE])


def push_weights(container, variables: Sequence[tf.Variable], train_step: int,
                 env_step_limit: int):
  """Publishes the Q-network's weights, the train step and the actors' env-step limit."""
  container.push(weight_item(variables, train_step, env_step_limit), VARIABLE_TABLE)


def make_tables(render_size: Sequence[int], capacity: int, min_size: int,
                variables: Sequence[tf.Variable],
                return_discount: Optional[float] = None):
  """[sim table, variable table]; see the module docstring."""
  if capacity < 1 or min_size < 1:
    raise ValueError(f'Reverb sim table: capacity ({capacity}) and min_size ({min_size}) must be '
                     '>= 1 transition')
  sim = reverb.Table(
      SIM_TABLE, sampler=reverb.selectors.Uniform(), remover=reverb.selectors.Fifo(),
      max_size=int(capacity), rate_limiter=reverb.rate_limiters.MinSize(int(min_size)),
      signature=item_signature(render_size, return_discount))
  weights = reverb.Table(
      VARIABLE_TABLE, sampler=reverb.selectors.Uniform(), remover=reverb.selectors.Fifo(),
      max_size=1, max_times_sampled=0, rate_limiter=reverb.rate_limiters.MinSize(1),
      signature=variable_signature(variables))
  return [sim, weights]


class ReplayServer:
  """A Reverb server with the QT-Opt tables, checkpointed into ``checkpoint_dir``.

  Restores the newest checkpoint in ``checkpoint_dir`` when there is one (Reverb's
  DefaultCheckpointer). ``port`` None picks a free port. ``address`` is 'localhost:<port>';
  actors on other machines use '<this host>:<port>'.
  """

  def __init__(self, checkpoint_dir: str, render_size: Sequence[int], capacity: int,
               min_size: int, variables: Sequence[tf.Variable], port: Optional[int] = None,
               return_discount: Optional[float] = None):
    self.checkpoint_dir = os.fspath(checkpoint_dir)
    os.makedirs(self.checkpoint_dir, exist_ok=True)
    self.restored = any(os.path.isdir(os.path.join(self.checkpoint_dir, n))  # one per checkpoint
                        for n in os.listdir(self.checkpoint_dir))
    self._server = reverb.Server(
        make_tables(render_size, capacity, min_size, variables, return_discount),
        port=port, checkpointer=reverb.checkpointers.DefaultCheckpointer(self.checkpoint_dir))
    self.port = self._server.port
    self.address = f'localhost:{self.port}'

  def checkpoint(self) -> str:
    """Writes a checkpoint of every table (blocks); returns its path."""
    return reverb.Client(self.address).checkpoint()

  def stop(self):
    if self._server is not None:
      self._server.stop()
      self._server = None


def table_info(client: reverb.Client, table: str = SIM_TABLE):
  return client.server_info(timeout=30)[table]


def inserted(client: reverb.Client, table: str = SIM_TABLE) -> int:
  """Items ever inserted into ``table`` (restored with a checkpoint)."""
  return int(table_info(client, table).rate_limiter_info.insert_stats.completed)


def episode_items(episode: specs.Episode, render_size: Sequence[int],
                  return_discount: Optional[float] = None, name: str = SIM_TABLE):
  """The sim-table items of one episode: a list of T transitions (NumPy), checked against the
  table's spec (ReplaySpecError naming both)."""
  transitions = replay_lib.episode_to_transitions(episode)
  replay_lib.check_data_spec(transitions, replay_lib.replay_data_spec(render_size), name)
  n = int(np.shape(transitions.reward)[0])
  rows = [tf.nest.map_structure(lambda x, i=i: x[i], transitions) for i in range(n)]
  if return_discount is not None:
    returns = replay_lib.episode_returns(episode, return_discount)
    rows = [(row, returns[i]) for i, row in enumerate(rows)]
  return rows


class EpisodeInserter:
  """Inserts whole episodes into the sim table, one item per transition, flushed per episode.

  ``insert`` returns after the server has every item of the episode (``TrajectoryWriter.flush``),
  so an episode is either wholly in the table or (killed before the flush) not at all.
  """

  def __init__(self, address: str, render_size: Sequence[int],
               return_discount: Optional[float] = None, table: str = SIM_TABLE,
               timeout_ms: int = 60_000):
    self.client = reverb.Client(address)
    self.timeout_ms = int(timeout_ms)
    self._writer = None
    self.table = table
    self.return_discount = return_discount
    self.render_size = tuple(int(s) for s in render_size)
    self.num_inserted = 0

  def insert(self, episode: specs.Episode) -> int:
    rows = episode_items(episode, self.render_size, self.return_discount, self.table)
    if self._writer is None:
      self._writer = self.client.trajectory_writer(num_keep_alive_refs=1)
    for row in rows:
      self._writer.append(row)
      self._writer.create_item(self.table, 1.0, tf.nest.map_structure(
          lambda column: column[-1], self._writer.history))
    # Blocks until the server holds every item of the episode (DeadlineExceeded if it is gone).
    self._writer.end_episode(timeout_ms=self.timeout_ms)
    self.num_inserted += len(rows)
    return len(rows)

  def close(self):
    if self._writer is not None:
      self._writer.close()
      self._writer = None


class ReverbReplay:
  """The sim table seen as a ``TransitionReplay`` (add, count, sample as model observations).

  ``sample`` draws a uniform batch through ``reverb.TrajectoryDataset`` and crops and converts
  it exactly as ``TransitionReplay.sample`` does (``buffers.to_model_batch``).
  """

  def __init__(self, address: str, render_size: Sequence[int], capacity: int,
               name: str = 'sim', return_discount: Optional[float] = None):
    self.address = address
    self.name = name
    self.render_size = tuple(int(s) for s in render_size)
    self.capacity = int(capacity)
    self.return_discount = return_discount
    self.client = reverb.Client(address)
    self._inserter = EpisodeInserter(address, self.render_size, return_discount)
    self._iterators = {}
    self._convert = {}

  @property
  def num_transitions(self) -> int:
    return int(table_info(self.client).current_size)

  @property
  def num_inserted(self) -> int:
    """Transitions ever inserted (by the learner and every actor, restored with the table)."""
    return inserted(self.client)

  def add_episodes(self, episodes: Sequence[specs.Episode]):
    for episode in episodes:
      self._inserter.insert(episode)

  def sample(self, batch_size: int, crop_size: Sequence[int] = specs.DEFAULT_CROP_SIZE,
             training: bool = True, with_returns: bool = False):
    if with_returns and self.return_discount is None:
      raise ValueError(f'{self.name}: with_returns needs a table built with return_discount')
    batch_size = int(batch_size)
    if batch_size not in self._iterators:
      dataset = reverb.TrajectoryDataset.from_table_signature(
          self.address, SIM_TABLE, max_in_flight_samples_per_worker=2 * batch_size)
      self._iterators[batch_size] = iter(dataset.batch(batch_size, drop_remainder=True))
    items = next(self._iterators[batch_size]).data
    returns = None
    if self.return_discount is not None:
      items, returns = items
    key = (tuple(int(s) for s in crop_size), bool(training))
    if key not in self._convert:
      self._convert[key] = tf.function(
          lambda t, k=key: replay_lib.to_model_batch(t, k[0], k[1]))
    batch = self._convert[key](items)
    return (batch, returns) if with_returns else batch

  def gather_all(self):
    raise NotImplementedError(f'{self.name}: a Reverb table is not read whole; sample it')


def wait_for_server(address: str, timeout: float = 60.0) -> reverb.Client:
  """A client of ``address`` once the server answers; raises TimeoutError naming it."""
  client = reverb.Client(address)
  deadline = time.time() + timeout
  while True:
    try:
      client.server_info(timeout=5)
      return client
    except Exception as e:  # pylint: disable=broad-except  (grpc errors differ by version)
      if time.time() > deadline:
        raise TimeoutError(f'no Reverb server answered at {address} within {timeout:.0f}s: '
                           f'{e}') from e
      time.sleep(0.5)
