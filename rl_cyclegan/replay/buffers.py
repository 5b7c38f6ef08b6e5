"""Replay buffers for QT-Opt: on-policy sim transitions and off-policy real transitions.

Paper Appendix A (Fig. 6): "Separate replay buffers and bellman update instances are used for the
off-policy real and on-policy simulation-to-real data", and batches hold "equal parts from real
and simulation-to-real data".

* ``TransitionReplay`` wraps a tf_agents ``TFUniformReplayBuffer`` of env-format transitions
  (``specs.transition_spec(specs.env_observation_spec(render_size))``: uint8 images at the
  render size). ``sample`` crops (random crops for training, the center crop otherwise, paper
  Appendix A) and converts to model observations (float32 in [-1, 1], ``data/preprocessing``).
  Each transition holds two uint8 images: 64x80 renders take ~31 KB per transition, so
  capacity 50,000 is ~1.5 GB.
* ``MixedSampler`` draws ``(sim_batch, real_batch)`` with ``round(batch_size * sim_fraction)``
  sim transitions (0 = Real-Only, 1 = Sim-Only, 0.5 = the paper's equal parts); a part with
  no rows is ``None``.
* ``ReplayMix`` draws from two replays at a fixed ratio and samples like one replay.
  ``Replay.sim_log_fraction`` uses it for the sim part: an off-policy sim log and the
  run's own on-policy episodes in separate buffers, mixed at a fixed ratio, as Appendix A
  does for off-policy real and on-policy sim data (equal parts).
* ``SimEpisodeLog`` makes the on-policy sim data durable without checkpointing the buffer: every
  collected episode is written (and flushed to the OS) to the open shard
  ``DIR/sim-000042.tfrecord.tmp-<pid>`` as soon as it ends; the shard is closed (renamed to
  ``sim-000042.tfrecord``) when it holds ``episodes_per_shard`` episodes and on every
  ``flush``. A killed writer's open shard is recovered by the next log on the directory: its
  complete records become a closed shard, a truncated last record is dropped. So SIGKILL loses
  at most the episode in progress. On resume, ``load_newest`` reads the newest shards up to the
  buffer capacity and the buffer is refilled from them.
* ``load_real_episodes`` validates a user's episode directory (``check_episode_files``, naming
  the bad file) before reading it into the real buffer.
"""

import os
import re
import time
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
from tf_agents.replay_buffers import tf_uniform_replay_buffer

from rl_cyclegan import fileio
from rl_cyclegan import specs
from rl_cyclegan.data import dataset as dataset_lib
from rl_cyclegan.data import episodes as episodes_lib
from rl_cyclegan.data import preprocessing


class ReplaySpecError(ValueError):
  """Data given to a replay buffer does not match its spec. Names both specs."""


def replay_data_spec(render_size: Sequence[int] = specs.DEFAULT_RENDER_SIZE) -> specs.Transition:
  """Spec of one stored transition: env observations (uint8 image at the render size)."""
  return specs.transition_spec(specs.env_observation_spec(render_size))


def episode_to_transitions(episode: specs.Episode) -> specs.Transition:
  """specs.Episode (T steps) -> specs.Transition of NumPy arrays with leading dimension T."""
  images = np.asarray(episode.images)
  gripper = np.asarray(episode.gripper_states, np.float32)
  return specs.Transition(
      observation={'image': images[:-1], 'gripper_state': gripper[:-1]},  # [T, H, W, 3], [T, 2]
      action=np.asarray(episode.actions, np.float32),  # [T, 8]
      reward=np.asarray(episode.rewards, np.float32),  # [T]
      next_observation={'image': images[1:], 'gripper_state': gripper[1:]},
      done=np.asarray(episode.dones, np.float32))  # [T]


def episode_returns(episode: specs.Episode, gamma: float) -> np.ndarray:
  """Discounted return-to-go of every step: G_t = r_t + gamma * G_{t+1} (G after the end = 0).

  float32 [T]. Assumes the episode ends in a terminal step (every GraspingEnv episode does); a
  log cut off mid-episode would get returns that are too low. QT-Opt's targets bootstrap;
  ``QTOptCritic.mc_return_weight`` mixes these Monte Carlo returns of the behaviour policy
  into the TD target (Quillen et al. 2018 compare Monte Carlo and TD targets on this grasping
  task).
  """
  rewards = np.asarray(episode.rewards, np.float64)
  returns = np.zeros_like(rewards)
  running = 0.0
  for t in range(len(rewards) - 1, -1, -1):
    running = rewards[t] + gamma * running
    returns[t] = running
  return returns.astype(np.float32)


def concat_transitions(parts: Sequence[specs.Transition]) -> specs.Transition:
  return tf.nest.map_structure(lambda *xs: np.concatenate(xs, axis=0), *parts)


def _data_spec_of(transitions) -> specs.Transition:
  """The per-item spec of a batch of transitions (leading dimension dropped)."""
  return tf.nest.map_structure(
      lambda x: tf.TensorSpec(np.shape(x)[1:], tf.as_dtype(np.asarray(x).dtype)
                              if not tf.is_tensor(x) else x.dtype), transitions)


def _spec_str(spec) -> str:
  def one(s):
    return f'{s.dtype.name}{s.shape.as_list()}'
  return (f'Transition(observation={{image: {one(spec.observation["image"])}, gripper_state: '
          f'{one(spec.observation["gripper_state"])}}}, action: {one(spec.action)}, reward: '
          f'{one(spec.reward)}, next_observation={{image: '
          f'{one(spec.next_observation["image"])}, gripper_state: '
          f'{one(spec.next_observation["gripper_state"])}}}, done: {one(spec.done)})')


def check_data_spec(transitions, replay_spec, name='replay'):
  """Raises ReplaySpecError naming the replay spec and the data spec unless they match."""
  try:
    tf.nest.assert_same_structure(transitions, replay_spec)
  except (ValueError, TypeError) as e:
    raise ReplaySpecError(f'{name}: data structure does not match the replay spec '
                          f'{_spec_str(replay_spec)}: {e}') from None
  data_spec = _data_spec_of(transitions)
  bad = [path for path, d, r in zip(_paths(replay_spec), _leaves(data_spec), _leaves(replay_spec))
         if d.dtype != r.dtype or not r.shape.is_compatible_with(d.shape)]
  if bad:
    raise ReplaySpecError(
        f'{name}: data spec {_spec_str(data_spec)} does not match the replay spec '
        f'{_spec_str(replay_spec)} (mismatch in {", ".join(bad)}); e.g. episodes rendered at '
        f'another size than the run\'s render_size')
  sizes = {int(np.shape(x)[0]) for x in tf.nest.flatten(transitions)}
  if len(sizes) != 1:
    raise ReplaySpecError(f'{name}: fields have different leading sizes {sorted(sizes)}')


_FIELDS = (('observation', 'image'), ('observation', 'gripper_state'), ('action',), ('reward',),
           ('next_observation', 'image'), ('next_observation', 'gripper_state'), ('done',))


def _paths(spec):
  del spec
  return ['.'.join(f) for f in _FIELDS]


def _leaves(transition):
  out = []
  for field in _FIELDS:
    value = getattr(transition, field[0])
    out.append(value[field[1]] if len(field) > 1 else value)
  return out


class TransitionReplay:
  """A uniform replay buffer of env-format transitions (TFUniformReplayBuffer, FIFO at capacity)."""

  def __init__(self, render_size: Sequence[int] = specs.DEFAULT_RENDER_SIZE,
               capacity: int = 50_000, name: str = 'replay',
               return_discount: Optional[float] = None):
    """Creates an empty buffer.

    Args:
      render_size: (H, W) of the stored images.
      capacity: transitions kept (FIFO).
      name: names the buffer in errors and logs.
      return_discount: if set, every transition also stores its episode's discounted
        return-to-go (``episode_returns``) with this discount, and ``sample(...,
        with_returns=True)`` returns it (``QTOptCritic.mc_return_weight``).
    """
    if capacity < 1:
      raise ValueError(f'{name}: capacity must be >= 1 transition, got {capacity}')
    if return_discount is not None and not 0.0 <= float(return_discount) <= 1.0:
      raise ValueError(f'{name}: return_discount must be in [0, 1], got {return_discount}')
    self.name = name
    self.render_size = tuple(int(s) for s in render_size)
    self.capacity = int(capacity)
    self.return_discount = None if return_discount is None else float(return_discount)
    self.data_spec = replay_data_spec(self.render_size)
    stored_spec = self.data_spec
    if self.return_discount is not None:
      stored_spec = (self.data_spec, tf.TensorSpec([], tf.float32, name='mc_return'))
    # One block of ``capacity`` rows: add_batch adds one transition, the oldest is overwritten.
    self._buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
        stored_spec, batch_size=1, max_length=self.capacity, scope=f'{name}_buffer')
    batched = tf.nest.map_structure(
        lambda s: tf.TensorSpec([None] + s.shape.as_list(), s.dtype), stored_spec)
    self._add_fn = tf.function(self._add_rows, input_signature=[batched])
    self._sample_fns = {}
    self.num_added = 0  # transitions added since construction (Python bookkeeping)

  def _add_rows(self, rows):
    n = tf.shape(tf.nest.flatten(rows)[0])[0]
    for i in tf.range(n):
      self._buffer.add_batch(tf.nest.map_structure(lambda t: t[i:i + 1], rows))
    return n

  @property
  def num_transitions(self) -> int:
    return int(self._buffer.num_frames())

  def add_transitions(self, transitions: specs.Transition, returns=None):
    """Adds a batch of transitions (leading dim N) after checking it against the replay spec.

    ``returns`` (float32 [N], the return-to-go of each) is required when the buffer stores
    returns (``return_discount``) and refused otherwise.
    """
    check_data_spec(transitions, self.data_spec, self.name)
    n = int(np.shape(transitions.reward)[0])
    rows = tf.nest.map_structure(tf.convert_to_tensor, transitions)
    if self.return_discount is not None:
      if returns is None or np.shape(returns) != (n,):
        raise ReplaySpecError(
            f'{self.name}: this buffer stores returns (return_discount '
            f'{self.return_discount}): pass returns of shape ({n},), got '
            f'{None if returns is None else np.shape(returns)}')
      rows = (rows, tf.convert_to_tensor(np.asarray(returns, np.float32)))
    elif returns is not None:
      raise ReplaySpecError(f'{self.name}: returns given but the buffer has no return_discount')
    self._add_fn(rows)
    self.num_added += n

  def add_episodes(self, episodes: Sequence[specs.Episode]):
    if episodes:
      returns = None
      if self.return_discount is not None:
        returns = np.concatenate([episode_returns(e, self.return_discount) for e in episodes])
      self.add_transitions(concat_transitions([episode_to_transitions(e) for e in episodes]),
                           returns)

  def clear(self):
    self._buffer.clear()

  def _items(self, items):
    return items[0] if self.return_discount is not None else items

  def gather_all(self) -> specs.Transition:
    """All stored transitions (env format, leading dim N), for tests and inspection."""
    items = self._items(self._buffer.gather_all())
    return tf.nest.map_structure(lambda t: t[0].numpy(), items)

  def gather_returns(self) -> np.ndarray:
    """The stored returns-to-go [N] (needs ``return_discount``), in ``gather_all`` order."""
    if self.return_discount is None:
      raise ValueError(f'{self.name}: the buffer stores no returns (return_discount is None)')
    return self._buffer.gather_all()[1][0].numpy()

  def sample(self, batch_size: int, crop_size: Sequence[int] = specs.DEFAULT_CROP_SIZE,
             training: bool = True, with_returns: bool = False):
    """A uniform batch as model observations (random crops if training, else center crops).

    Returns specs.Transition with images float32 [B, h, w, 3] in [-1, 1], gripper_state
    [B, 2], action [B, 8], reward [B], done [B]; with ``with_returns`` (needs
    ``return_discount``) the pair (transitions, returns-to-go float32 [B]).
    """
    if self.num_transitions == 0:
      raise ValueError(f'{self.name} replay buffer is empty: add episodes before sampling '
                       f'(capacity {self.capacity} transitions)')
    if with_returns and self.return_discount is None:
      raise ValueError(f'{self.name}: with_returns needs a buffer built with return_discount')
    key = (int(batch_size), tuple(int(s) for s in crop_size), bool(training))
    if key not in self._sample_fns:
      self._sample_fns[key] = tf.function(lambda: self._sample(*key))
    batch, returns = self._sample_fns[key]()
    return (batch, returns) if with_returns else batch

  def _sample(self, batch_size, crop_size, training):
    items, _ = self._buffer.get_next(sample_batch_size=batch_size)
    returns = None
    if self.return_discount is not None:
      items, returns = items
    return to_model_batch(items, crop_size, training), returns


def to_model_batch(items: specs.Transition, crop_size: Sequence[int],
                   training: bool) -> specs.Transition:
  """Env-format transitions (uint8 images at the render size) -> model observations: random
  crops if training, else center crops (paper Appendix A), float32 images in [-1, 1]."""

  def model_obs(obs):
    image = preprocessing.crop(obs['image'], crop_size, training)  # [B, h, w, 3] uint8
    return {'image': preprocessing.to_model_image(image),  # [B, h, w, 3] float32
            'gripper_state': obs['gripper_state']}  # [B, 2]

  return specs.Transition(
      observation=model_obs(items.observation), action=items.action, reward=items.reward,
      next_observation=model_obs(items.next_observation), done=items.done)


class MixedSampler:
  """Draws ``(sim_batch, real_batch)`` from two replays at a fixed ratio (paper: equal parts)."""

  def __init__(self, sim_replay: Optional[TransitionReplay],
               real_replay: Optional[TransitionReplay], batch_size: int,
               sim_fraction: float = 0.5, crop_size: Sequence[int] = specs.DEFAULT_CROP_SIZE):
    if not 0.0 <= sim_fraction <= 1.0:
      raise ValueError(f'sim_fraction must be in [0, 1], got {sim_fraction}')
    self.num_sim = int(round(batch_size * sim_fraction))
    self.num_real = int(batch_size) - self.num_sim
    if self.num_sim and sim_replay is None:
      raise ValueError(f'sim_fraction {sim_fraction} needs {self.num_sim} sim transitions per '
                       'batch but there is no sim replay buffer')
    if self.num_real and real_replay is None:
      raise ValueError(f'sim_fraction {sim_fraction} needs {self.num_real} real transitions per '
                       'batch but there is no real replay buffer (set real_episode_dir)')
    self.sim_replay = sim_replay
    self.real_replay = real_replay
    self.crop_size = tuple(crop_size)

  def sample(self, training=True, with_returns=False):
    """(sim_batch, real_batch); with ``with_returns`` each part is a (batch, returns) pair."""
    sim = (self.sim_replay.sample(self.num_sim, self.crop_size, training, with_returns)
           if self.num_sim else None)
    real = (self.real_replay.sample(self.num_real, self.crop_size, training, with_returns)
            if self.num_real else None)
    return sim, real


class ReplayMix:
  """Two replays sampled at a fixed ratio; ``sample`` returns one concatenated batch.

  ``round(batch_size * first_fraction)`` rows come from ``first``, the rest from ``second``
  (a part with no rows is not sampled). Has the ``sample`` / ``num_transitions`` interface of
  ``TransitionReplay``, so ``MixedSampler`` can use it as its sim (or real) source.
  """

  def __init__(self, first: TransitionReplay, second: TransitionReplay, first_fraction: float,
               name: str = 'mix'):
    if not 0.0 <= first_fraction <= 1.0:
      raise ValueError(f'{name}: the {first.name} share must be in [0, 1], got {first_fraction}')
    self.first, self.second = first, second
    self.first_fraction = float(first_fraction)
    self.name = name

  @property
  def num_transitions(self) -> int:
    return self.first.num_transitions + self.second.num_transitions

  def split(self, batch_size: int):
    """(rows from ``first``, rows from ``second``) of a batch of ``batch_size``."""
    n_first = int(round(batch_size * self.first_fraction))
    return n_first, int(batch_size) - n_first

  def sample(self, batch_size: int, crop_size: Sequence[int] = specs.DEFAULT_CROP_SIZE,
             training: bool = True, with_returns: bool = False):
    parts = [r.sample(n, crop_size, training, with_returns)
             for r, n in zip((self.first, self.second), self.split(batch_size)) if n]
    if len(parts) == 1:
      return parts[0]
    return tf.nest.map_structure(lambda *xs: tf.concat(xs, axis=0), *parts)


# ------------------------------------------------------------------------- durable sim episodes

_SIM_SHARD_RE = re.compile(r'^sim-(\d{6})\.tfrecord$')


class SimEpisodeLog:
  """Append-only episode shards ``DIR/sim-NNNNNN.tfrecord`` of on-policy sim episodes.

  Each episode is written to the open shard (``EpisodeWriter``'s temp file) and flushed when it
  is appended; the shard is closed (atomic rename) once it holds ``episodes_per_shard``
  episodes and on ``flush()``. A file with a final name is always complete. Open shards of dead
  writers (a killed run) are recovered on construction (``recovered`` lists them).
  """

  def __init__(self, directory: str, render_size: Sequence[int],
               episodes_per_shard: int = 16,
               image_format: str = episodes_lib.DEFAULT_IMAGE_FORMAT,
               log: Optional[Callable[[str], None]] = None):
    self.directory = os.fspath(directory)
    os.makedirs(self.directory, exist_ok=True)
    self.render_size = tuple(int(s) for s in render_size)
    self.episodes_per_shard = max(1, int(episodes_per_shard))
    self.image_format = image_format
    self._writer: Optional[episodes_lib.EpisodeWriter] = None
    self.recovered = self._recover_open_shards(log or (lambda m: None))
    indices = self._indices()
    self._next_index = (indices[-1] + 1) if indices else 0

  def _recover_open_shards(self, log) -> List[Tuple[str, int, bool]]:
    """Closes the open shards of dead writers: (name, episodes kept, truncated tail dropped)."""
    out = []
    for name in sorted(os.listdir(self.directory)):
      head, marker, pid = name.rpartition(episodes_lib.TMP_MARKER)
      if (not marker or not pid.isdigit() or not _SIM_SHARD_RE.match(head) or
          int(pid) == os.getpid() or fileio.pid_alive(int(pid))):
        continue
      path = os.path.join(self.directory, name)
      records = []
      try:
        for _, record in episodes_lib.read_records(path):
          records.append(record)
      except episodes_lib.EpisodeFormatError:
        pass  # a corrupt record: keep the ones before it
      # A TFRecord record is its data plus 16 framing bytes; the rest is the episode being
      # written when the writer died.
      truncated = sum(len(r) + 16 for r in records) < os.path.getsize(path)
      final = os.path.join(self.directory, head)
      if records and not os.path.exists(final):
        with episodes_lib.EpisodeWriter(final, image_format=self.image_format) as writer:
          for record in records:
            writer.write_serialized(record)
      os.remove(path)
      out.append((name, len(records), truncated))
      log(f'recovered {len(records)} episodes from {path}, the open shard of a killed run'
          f'{" (its truncated last record dropped)" if truncated else ""}')
    return out

  def _indices(self):
    out = []
    for name in os.listdir(self.directory):
      m = _SIM_SHARD_RE.match(name)
      if m:
        out.append(int(m.group(1)))
    return sorted(out)

  def shard_paths(self) -> List[str]:
    """Complete shards, oldest first."""
    return [os.path.join(self.directory, f'sim-{i:06d}.tfrecord') for i in self._indices()]

  def append(self, episodes: Sequence[specs.Episode]):
    """Writes each episode to the open shard at once (durable against a kill of this process)."""
    for episode in episodes:
      if self._writer is None:
        self._writer = episodes_lib.EpisodeWriter(
            os.path.join(self.directory, f'sim-{self._next_index:06d}.tfrecord'),
            image_format=self.image_format)
      self._writer.write(episode)
      self._writer.flush()
      if self._writer.num_episodes >= self.episodes_per_shard:
        self.flush()

  def flush(self):
    """Closes the open shard (no-op when none is open); returns its path."""
    if self._writer is None:
      return None
    self._writer.close()
    path, self._writer = self._writer.path, None
    self._next_index += 1
    return path

  def count_episodes(self) -> int:
    """Episodes in the complete shards (records counted, nothing decoded)."""
    return sum(sum(1 for _ in episodes_lib.read_records(p)) for p in self.shard_paths())

  def load_newest(self, max_transitions: int) -> List[specs.Episode]:
    """The newest episodes whose transitions fit in ``max_transitions``, oldest first."""
    selected, total = [], 0
    for path in reversed(self.shard_paths()):
      episodes = list(episodes_lib.read_episodes(path, self.render_size))
      for episode in reversed(episodes):
        n = int(np.shape(episode.actions)[0])
        if total + n > max_transitions:
          return selected[::-1]
        selected.append(episode)
        total += n
    return selected[::-1]


def load_real_episodes(episode_dir, render_size: Sequence[int],
                       max_transitions: Optional[int] = None) -> List[specs.Episode]:
  """Validates ``episode_dir`` (fails naming the bad file) and reads its episodes.

  Stops once ``max_transitions`` transitions are read (the buffer capacity). Raises
  EpisodeFormatError naming the file and record on a corrupt file, a schema mismatch or a
  render size other than ``render_size``.
  """
  paths = dataset_lib.check_episode_files(episode_dir, expected_render_size=tuple(render_size))
  out, total = [], 0
  for path in paths:
    for episode in episodes_lib.read_episodes(path, tuple(render_size)):
      n = int(np.shape(episode.actions)[0])
      if max_transitions is not None and total + n > max_transitions:
        return out
      out.append(episode)
      total += n
  return out


def refill(replay: TransitionReplay, episodes: Sequence[specs.Episode], chunk: int = 256):
  """Adds episodes to ``replay`` in chunks; returns (episodes, transitions, seconds)."""
  start = time.time()
  transitions = 0
  for i in range(0, len(episodes), chunk):
    part = episodes[i:i + chunk]
    replay.add_episodes(part)
    transitions += sum(int(np.shape(e.actions)[0]) for e in part)
  return len(episodes), transitions, time.time() - start
