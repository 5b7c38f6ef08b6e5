"""Grasp-success evaluation on unseen objects, with a Wilson score interval.

Paper Section 5.1: Robot 1 is evaluated on *unseen* objects and "grasp success is reported as a
percent average over all grasps". Here ``evaluate`` runs ``num_episodes`` episodes of a policy in
``num_envs`` lockstep environments (``rollout.run_episodes``) on the 100 test objects
(``object_split='test'``, procedural objects whose names end in 0) and reports the success rate
with its 95% Wilson score interval.

Episode j is played in a scene seeded by ``derive_seed(seed, j)``, so every policy evaluated with
the same seed, appearance and split sees the same sequence of scenes (a paired comparison),
whatever ``num_envs`` is.

``load_policy_from_checkpoint`` rebuilds a greedy-capable ``CEMPolicy`` from a training run
directory: the gin config saved there and the latest ``tf.train.Checkpoint`` under
``<root_dir>/train/ckpt``.
"""

import bisect
import math
import os
import time
from typing import Callable, Optional, Sequence, Tuple

from rl_cyclegan import specs
from rl_cyclegan.train import rollout

CHECKPOINT_SUBDIR = os.path.join('train', 'ckpt')
OPERATIVE_CONFIG = 'operative_config.gin'
# Where load_policy_from_checkpoint looks for the run's gin config, in order.
OPERATIVE_CONFIG_PATHS = (OPERATIVE_CONFIG, os.path.join('train', OPERATIVE_CONFIG))
Z_95 = 1.959963984540054  # two-sided 95% normal quantile


def wilson_interval(successes: int, n: int, z: float = Z_95) -> Tuple[float, float]:
  """Wilson score interval for a binomial proportion (Wilson, 1927).

  With p = successes / n:
    centre     = (p + z^2 / (2n)) / (1 + z^2 / n)
    half-width = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))
    interval   = [centre - half-width, centre + half-width]   (always inside [0, 1])
  Unlike the normal (Wald) interval it does not collapse to zero width at 0/n or n/n and keeps
  close to nominal coverage for small n, which matters for evaluations of ~100 grasps.
  E.g. 5/10 -> (0.2366, 0.7634); 0/10 -> (0, 0.2775); 10/10 -> (0.7225, 1).

  Args:
    successes: number of successes, 0 <= successes <= n.
    n: number of trials; n = 0 gives the uninformative (0, 1).
    z: normal quantile (1.96 for 95%).

  Returns:
    (low, high) as floats in [0, 1].
  """
  successes, n = int(successes), int(n)
  if n < 0 or not 0 <= successes <= max(n, 0):
    raise ValueError(f'wilson_interval needs 0 <= successes <= n, got successes={successes}, '
                     f'n={n}')
  if n == 0:
    return 0.0, 1.0
  p = successes / n
  z2 = z * z
  denominator = 1.0 + z2 / n
  centre = (p + z2 / (2.0 * n)) / denominator
  half = z / denominator * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
  return max(0.0, centre - half), min(1.0, centre + half)


def default_make_env(appearance='sim', object_split='test', seed=None, **kwargs):
  """A ``GraspingEnv`` (other settings from kwargs and gin)."""
  from rl_cyclegan.envs import grasping  # pylint: disable=g-import-not-at-top
  return grasping.GraspingEnv(appearance=appearance, object_split=object_split, seed=seed,
                              **kwargs)


def evaluate(action_fn: Callable,
             make_env: Optional[Callable] = None,
             num_episodes: int = 100,
             num_envs: int = 4,
             appearance: str = 'sim',
             object_split: str = 'test',
             seed: int = 0,
             max_steps: Optional[int] = None,
             progress_interval: float = 5.0,
             progress_stream=None,
             return_episodes: bool = False) -> dict:
  """Grasp success of ``action_fn`` over ``num_episodes`` episodes; see the module docstring.

  Args:
    action_fn: a batched action function (``rollout`` protocol), e.g.
      ``policies.greedy_action_fn(cem_policy)`` or ``policies.scripted_action_fn('random')``.
    make_env: ``make_env(appearance=, object_split=, seed=)`` -> env; default
      ``default_make_env`` (a GraspingEnv, other settings from gin). The envs are closed after.
    num_episodes: grasps to evaluate (paper Section 5.1: 102 per robot).
    num_envs: environments stepped in lockstep (policy batch size).
    appearance: 'sim', 'real' or 'randomized'.
    object_split: 'test' (unseen objects, default) or 'train'.
    seed: episode j uses the scene seed ``derive_seed(seed, j)``.
    max_steps: optional per-episode step cap (see ``rollout.run_episodes``).
    progress_interval: seconds between progress lines on stderr.
    progress_stream: stream for them (default stderr).
    return_episodes: also return the Episodes under 'episodes'.

  Returns:
    dict(success_rate, ci95_low, ci95_high, num_episodes, num_successes, appearance,
    object_split, seed, policy, seconds, episodes_per_second[, episodes]).
  """
  from rl_cyclegan.data import collect  # pylint: disable=g-import-not-at-top
  if num_episodes < 1 or num_envs < 1:
    raise ValueError(f'evaluate needs num_episodes >= 1 and num_envs >= 1, got '
                     f'{num_episodes} and {num_envs}')
  make_env = make_env or default_make_env
  start = time.time()
  num_envs = min(int(num_envs), int(num_episodes))
  envs = []
  try:
    for i in range(num_envs):
      # Each env is reseeded per episode; this seed only fixes its construction.
      envs.append(make_env(appearance=appearance, object_split=object_split,
                           seed=collect.derive_seed(seed, 1_000_000 + i)))
    progress = rollout.Progress(num_episodes, label=f'evaluate ({appearance}, {object_split})',
                                interval=progress_interval, stream=progress_stream)
    episodes = rollout.run_episodes(
        envs, action_fn, num_episodes, max_steps=max_steps, progress=progress,
        episode_seeds=lambda j: collect.derive_seed(seed, j),
        metadata={'object_split': object_split})
  finally:
    for env in envs:
      close = getattr(env, 'close', None)
      if close is not None:
        close()
  seconds = time.time() - start
  successes = sum(int(bool(e.metadata['success'])) for e in episodes)
  low, high = wilson_interval(successes, len(episodes))
  result = {
      'success_rate': successes / len(episodes), 'ci95_low': low, 'ci95_high': high,
      'num_episodes': len(episodes), 'num_successes': successes, 'appearance': appearance,
      'object_split': object_split, 'seed': int(seed),
      'policy': episodes[0].metadata.get('policy', '') if episodes else '',
      'seconds': seconds, 'episodes_per_second': len(episodes) / seconds if seconds else 0.0}
  table = grasp_distance_table(episodes)
  if table is not None:
    result['grasp_distance'] = table
  if return_episodes:
    result['episodes'] = episodes
  return result


GRASP_DISTANCE_BINS_CM = (0.0, 2.0, 4.0, 7.0)  # the last bin is open: >= 7 cm


def grasp_distance_table(episodes, bins_cm: Sequence[float] = GRASP_DISTANCE_BINS_CM):
  """Successes and failures by the grasp's distance to the nearest object (None if unknown).

  Uses ``metadata['grasp_distance']`` (metres, written by ``rollout.run_episodes`` for envs
  with a ``grasp_distance``, e.g. ``GraspingEnv``). Returns {'bins_cm': [[lo, hi], ...]
  (hi None = open), 'successes': [...], 'failures': [...]}: far failures are navigation
  errors, near ones grasp mechanics or noise.
  """
  values = [(e.metadata.get('grasp_distance'), bool(e.metadata.get('success')))
            for e in episodes]
  values = [(100.0 * d, ok) for d, ok in values if d is not None]
  if not values:
    return None
  edges = list(bins_cm) + [None]
  table = {'bins_cm': [[edges[i], edges[i + 1]] for i in range(len(bins_cm))],
           'successes': [0] * len(bins_cm), 'failures': [0] * len(bins_cm)}
  for d, ok in values:
    i = max(bisect.bisect_right(bins_cm, d) - 1, 0)
    table['successes' if ok else 'failures'][i] += 1
  return table


def format_grasp_distances(table) -> str:
  """'grasp distance to the nearest object: 0-2 cm 22/23 ok, 2-4 cm 33/43 ok, ...'."""
  parts = []
  for (lo, hi), ok, bad in zip(table['bins_cm'], table['successes'], table['failures']):
    label = f'{lo:g}-{hi:g} cm' if hi is not None else f'>={lo:g} cm'
    parts.append(f'{label} {ok}/{ok + bad} ok')
  return 'grasp distance to the nearest object: ' + ', '.join(parts)


def format_result(result: dict) -> str:
  """'grasp success: 73.5% (95% CI 64.1-81.2%, n=100) in real on test objects'."""
  return (f"grasp success: {100 * result['success_rate']:.1f}% (95% CI "
          f"{100 * result['ci95_low']:.1f}-{100 * result['ci95_high']:.1f}%, "
          f"n={result['num_episodes']}) in {result['appearance']} on "
          f"{result['object_split']} objects")


# ------------------------------------------------------------------------ checkpoint loading


def find_operative_config(root_dir: str) -> Optional[str]:
  """The run's saved gin config (see ``OPERATIVE_CONFIG_PATHS``), or None."""
  for relative in OPERATIVE_CONFIG_PATHS:
    path = os.path.join(root_dir, relative)
    if os.path.isfile(path):
      return path
  return None


def infer_allowed_modes(action_mode: str):
  """CEM modes for a run, as train_qtopt.train_eval chooses them (reads the parsed gin config).

  'auto_descend': move only, or move + terminate when ``train_eval.auto_descend_terminate`` is
  bound to True; 'full': all modes (None).
  """
  import gin  # pylint: disable=g-import-not-at-top
  from rl_cyclegan import policies  # pylint: disable=g-import-not-at-top
  if action_mode != 'auto_descend':
    return None
  try:
    terminate = bool(gin.query_parameter('train_eval.auto_descend_terminate'))
  except (ValueError, KeyError):  # not bound or train_eval not registered
    terminate = False
  return policies.AUTO_DESCEND_MODES if terminate else (True, False, False, False)


def load_policy_from_checkpoint(root_dir: str,
                                render_size: Sequence[int] = specs.DEFAULT_RENDER_SIZE,
                                gin_file: Optional[str] = None,
                                gin_bindings: Sequence[str] = (),
                                q_network_key: str = 'q_network',
                                generator_key: Optional[str] = None,
                                checkpoint_path: Optional[str] = None,
                                action_mode: Optional[str] = 'auto_descend',
                                seed: Optional[int] = None):
  """Builds a ``CEMPolicy`` per gin and restores its Q-network (and generator) weights.

  The gin config is ``gin_file`` if given, else the run's ``operative_config.gin`` (looked up
  in ``OPERATIVE_CONFIG_PATHS`` under ``root_dir``); unknown configurables in it are skipped.
  ``GraspingQNetwork`` (and ``UNetGenerator`` when ``generator_key`` is set) are built from it,
  and restored from ``checkpoint_path`` or else the latest checkpoint in
  ``<root_dir>/train/ckpt`` as ``tf.train.Checkpoint(<q_network_key>=net[,
  <generator_key>=G])``; a key may be a '/'-separated path into nested checkpoint objects. The
  generator, if any, translates the images before Q: whole frames (``frame_transform``) when
  the run trained on cached frame translations (``train_eval.translate_frames`` in its
  config), else the crops (``image_transform``, runs made before frame translation). CEM's
  allowed modes follow ``infer_allowed_modes(action_mode)`` (as in training). The gin config
  is added to the process's global gin config (call ``gin.clear_config()`` first for a clean
  slate).

  Raises:
    FileNotFoundError: no gin config or no checkpoint (the message names the paths tried).
    ValueError: the checkpoint does not hold the expected objects or shapes (names the file).
  """
  import gin  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rl_cyclegan import configurables  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  from rl_cyclegan import policies  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.networks import generator as generator_lib  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.networks import q_network as q_network_lib  # pylint: disable=g-import-not-at-top

  try:  # registers train_eval, so its bindings in the operative config are read, not skipped
    from rl_cyclegan.train import train_qtopt  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    pass

  config = gin_file or find_operative_config(root_dir)
  if config is None:
    tried = ', '.join(os.path.join(root_dir, p) for p in OPERATIVE_CONFIG_PATHS)
    raise FileNotFoundError(f'no gin config for run {root_dir!r}: tried {tried}; pass '
                            '--gin_file (e.g. gin/networks_small.gin) for the network sizes')
  if not os.path.isfile(config):
    raise FileNotFoundError(f'gin file {config!r} does not exist')
  with gin.unlock_config():  # adds to the process's gin config (does not clear it)
    gin.parse_config_files_and_bindings([config], list(gin_bindings), finalize_config=False,
                                        skip_unknown=True)

  if checkpoint_path is None:
    ckpt_dir = os.path.join(root_dir, CHECKPOINT_SUBDIR)
    checkpoint_path = tf.train.latest_checkpoint(ckpt_dir)
    if checkpoint_path is None:
      raise FileNotFoundError(f'no checkpoint in {ckpt_dir!r} (expected a tf.train.Checkpoint '
                              f'with a "checkpoint" index file, written by the training loop)')

  net = q_network_lib.GraspingQNetwork()
  net.create_variables()
  objects = {q_network_key: net}
  generator = None
  if generator_key:
    generator = generator_lib.UNetGenerator()
    generator(tf.zeros([1, *net.crop_size, specs.IMAGE_CHANNELS]), training=False)  # build
    objects[generator_key] = generator
  trees = {}
  for key, obj in objects.items():  # merge nested key paths into one tree of dicts
    node = trees
    parts = key.split('/')
    for part in parts[:-1]:
      node = node.setdefault(part, {})
    node[parts[-1]] = obj

  def build(tree):
    return tf.train.Checkpoint(**{k: build(v) if isinstance(v, dict) else v
                                  for k, v in tree.items()})

  checkpoint = build(trees)
  try:
    status = checkpoint.restore(checkpoint_path)
    status.expect_partial()  # the file also holds optimizers, targets, step counters, ...
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise ValueError(
        f'checkpoint {checkpoint_path!r} is missing or incompatible with '
        f'{", ".join(objects)} built from gin config {config!r} (crop size '
        f'{net.crop_size}): {type(e).__name__}: {str(e)[:2000]}') from e
  frames = False
  if generator is not None:
    try:
      frames = bool(gin.query_parameter('train_eval.translate_frames'))
    except ValueError:  # not in the config: a run made before frame translation
      frames = False
  from rl_cyclegan.data import translation  # pylint: disable=g-import-not-at-top
  return policies.CEMPolicy(net, render_size=render_size, crop_size=net.crop_size,
                            image_transform=None if frames else generator,
                            frame_transform=translation.FrameTranslator(generator)
                            if frames else None,
                            allowed_modes=infer_allowed_modes(action_mode), seed=seed)
