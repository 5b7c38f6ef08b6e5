"""Grasp-success evaluation on unseen objects, with a Wilson score interval.

Paper Section 5.1: Robot 1 is evaluated on *unseen* objects and "grasp success is reported as a
percent average over all grasps". Here ``evaluate`` runs ``num_episodes`` episodes of a policy in
``num_envs`` lockstep environments (``rollout.run_episodes``) on the 100 test objects
(``object_split='test'``, procedural objects whose names end in 0) and reports the success rate
with its 95% Wilson score interval.

Episode j is played in a scene seeded by ``derive_seed(seed, j)``, so every policy evaluated with
the same seed, appearance and split sees the same sequence of scenes (a paired comparison),
whatever ``num_envs`` is.

``load_run_policy`` rebuilds a greedy-capable ``CEMPolicy`` from a training run directory
through the run-directory contract (``rl_cyclegan/run_dir.py``): the run's spec, its gin
config and its newest readable checkpoint.
"""

import bisect
import itertools
import math
import os
import time
from typing import Callable, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from rl_cyclegan import run_dir
from rl_cyclegan import seeds
from rl_cyclegan.actors import rollout

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


def two_proportion_z(successes_a: int, n_a: int, successes_b: int, n_b: int) -> float:
  """The pooled two-proportion z statistic of p_a - p_b (0 when it is undefined).

  z = (p_a - p_b) / sqrt(p (1 - p) (1 / n_a + 1 / n_b)), with p the pooled success rate; |z| >
  1.96 is a difference at the 5% level (two-sided). E.g. 160/300 against 115/300 -> 3.69.
  """
  if min(n_a, n_b) <= 0:
    raise ValueError(f'two_proportion_z needs episodes on both sides, got n_a={n_a}, n_b={n_b}')
  pooled = (successes_a + successes_b) / (n_a + n_b)
  variance = pooled * (1.0 - pooled) * (1.0 / n_a + 1.0 / n_b)
  if variance <= 0.0:
    return 0.0
  return (successes_a / n_a - successes_b / n_b) / math.sqrt(variance)


def mcnemar_exact(outcomes_a: Sequence[int], outcomes_b: Sequence[int]) -> dict:
  """Exact McNemar test of two policies evaluated on the same scenes (paired by index).

  Only the discordant scenes count: ``only_a`` where a succeeded and b failed, ``only_b`` the
  other way. Under "equally good", each discordant scene goes either way with probability 1/2,
  so the two-sided p-value is min(1, 2 P[Binomial(only_a + only_b, 1/2) <= min(only_a,
  only_b)]). Scenes fixed by the evaluation seeds (``evaluate``'s ``outcomes``) make the paired
  test sharper than ``two_proportion_z``, which ignores the pairing. E.g. 30 against 10
  discordant scenes -> p = 0.0022.
  """
  a, b = list(outcomes_a), list(outcomes_b)
  if len(a) != len(b) or not a:
    raise ValueError(f'mcnemar_exact needs outcomes of the same scenes, got {len(a)} and '
                     f'{len(b)} scenes')
  only_a = sum(1 for x, y in zip(a, b) if x and not y)
  only_b = sum(1 for x, y in zip(a, b) if y and not x)
  n = only_a + only_b
  tail = sum(math.comb(n, k) for k in range(min(only_a, only_b) + 1)) / 2.0**n
  return {'scenes': len(a), 'only_a': only_a, 'only_b': only_b, 'p_value': min(1.0, 2.0 * tail)}


def paired_difference_interval(outcomes_a: Sequence[int], outcomes_b: Sequence[int],
                               z: float = Z_95) -> Tuple[float, float, float]:
  """The difference of two success rates measured on the same scenes (paired by index), and
  its Wald interval for matched pairs (Agresti, Categorical Data Analysis, Section 10.1):
  d = (only_a - only_b) / n, se = sqrt(only_a + only_b - (only_a - only_b)^2 / n) / n. Scenes
  both grasped or both missed add nothing to its width, so it is narrower than an unpaired
  interval when the two policies agree on most scenes. E.g. 30 against 10 discordant scenes of
  100 -> 0.20 (0.08 to 0.32). Returns (d, low, high)."""
  test = mcnemar_exact(outcomes_a, outcomes_b)
  n, only_a, only_b = test['scenes'], test['only_a'], test['only_b']
  d = (only_a - only_b) / n
  half = z * math.sqrt(max(0.0, only_a + only_b - (only_a - only_b) ** 2 / n)) / n
  return d, d - half, d + half


# Up to this many pairs, spearman_exact enumerates every permutation (9! = 362,880); above
# it, SPEARMAN_DRAWS random ones with a fixed seed.
SPEARMAN_EXACT_MAX_N = 9
SPEARMAN_DRAWS = 200_000


def _ranks(values: Sequence[float]) -> np.ndarray:
  """1-based ranks, ties sharing their mean rank."""
  values = np.asarray(values, dtype=np.float64)
  order = np.argsort(values, kind='stable')
  ranks = np.empty(len(values))
  ranks[order] = np.arange(1, len(values) + 1)
  for v in np.unique(values):
    tied = values == v
    ranks[tied] = ranks[tied].mean()
  return ranks


def spearman_exact(x: Sequence[float], y: Sequence[float]) -> dict:
  """Spearman's rank correlation of paired values with its two-sided permutation p-value.

  rho is the Pearson correlation of the ranks (ties averaged). p is the share of the
  pairings of y's ranks with x's whose |rho| is at least the observed one: every pairing up to
  SPEARMAN_EXACT_MAX_N pairs, else SPEARMAN_DRAWS random ones (seed 0; the observed pairing
  counted among them); which one is in 'exact'. For the handful of generators a table has,
  where the normal approximation is poor. E.g. ranks (1..6) against (2, 1, 3, 6, 5, 4) ->
  rho 0.714, p 0.136.
  Returns {'rho', 'p_value', 'n', 'exact'}; needs 3 or more pairs with some spread.
  """
  if len(x) != len(y) or len(x) < 3:
    raise ValueError(f'spearman_exact needs 3 or more pairs, got {len(x)} x and {len(y)} y')
  rx, ry = _ranks(x), _ranks(y)
  if rx.std() == 0 or ry.std() == 0:
    raise ValueError('spearman_exact: one side has a single value; there is no order to '
                     f'correlate (x={list(x)}, y={list(y)})')
  rx, ry = (rx - rx.mean()) / rx.std(), (ry - ry.mean()) / ry.std()
  rho = float(np.mean(rx * ry))
  n = len(rx)
  exact = n <= SPEARMAN_EXACT_MAX_N
  if exact:
    perms = np.array(list(itertools.permutations(range(n))), dtype=np.int8)
  else:
    rng = np.random.default_rng(0)
    perms = np.argsort(rng.random((SPEARMAN_DRAWS, n)), axis=1)
  null = (ry[perms] * rx).mean(axis=1)
  hits = int(np.sum(np.abs(null) >= abs(rho) - 1e-12))
  # Random pairings: the observed one counts among them (never p = 0 from a sample).
  p = hits / len(perms) if exact else (hits + 1) / (len(perms) + 1)
  return {'rho': rho, 'p_value': p, 'n': n, 'exact': exact}


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
    dict(success_rate, ci95_low, ci95_high, num_episodes, num_successes, outcomes, appearance,
    object_split, seed, policy, seconds, episodes_per_second[, episodes]). ``outcomes[j]`` is 1
    if the grasp of scene j (seed ``derive_seed(seed, j)``) succeeded: two policies evaluated
    with one seed met the same scenes, so they can be compared pair by pair
    (``mcnemar_exact``).
  """
  if num_episodes < 1 or num_envs < 1:
    raise ValueError(f'evaluate needs num_episodes >= 1 and num_envs >= 1, got '
                     f'{num_episodes} and {num_envs}')
  make_env = make_env or default_make_env
  start = time.time()
  num_envs = min(int(num_envs), int(num_episodes))
  envs = []
  try:
    def new_env(i):  # each env is reseeded per episode; this seed only fixes its construction
      return make_env(appearance=appearance, object_split=object_split,
                      seed=seeds.derive_seed(seed, 1_000_000 + i))

    for i in range(num_envs):
      envs.append(new_env(i))
    progress = rollout.Progress(num_episodes, label=f'evaluate ({appearance}, {object_split})',
                                interval=progress_interval, stream=progress_stream)
    # A diverged episode runs again (same seed) on a new env: the scene set stays fixed.
    episodes = rollout.run_episodes(
        envs, action_fn, num_episodes, max_steps=max_steps, progress=progress,
        episode_seeds=lambda j: seeds.derive_seed(seed, j),
        metadata={'object_split': object_split},
        replace_env=rollout.replacing(envs, new_env))
  finally:
    for env in envs:
      close = getattr(env, 'close', None)
      if close is not None:
        close()
  seconds = time.time() - start
  outcomes = [int(bool(e.metadata['success']))  # by scene: episode_id is the start order j
               for e in sorted(episodes, key=lambda e: int(e.metadata['episode_id']))]
  successes = sum(outcomes)
  low, high = wilson_interval(successes, len(episodes))
  result = {
      'success_rate': successes / len(episodes), 'ci95_low': low, 'ci95_high': high,
      'num_episodes': len(episodes), 'num_successes': successes, 'outcomes': outcomes,
      'appearance': appearance,
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


SPREAD_FRAMES = 256  # evaluation frames the image-use measures (FrameRecorder) use
# Below this embedding spread a Q's image tower gives every frame the same features and its
# policy is blind: collapsed final Qs measured 0.0000-0.0019, working ones 0.02-0.13
# (docs/results.md, "Session 22" and "Session 32"). table1.COLLAPSED_SPREAD is the same value
# there without TensorFlow (a test checks it).
COLLAPSED_SPREAD = 0.005


class FrameRecorder:
  """An action function that also keeps the first ``limit`` frames it is given (their images
  and gripper states), for the image-use measures of a CEM policy (``image_use``)."""

  def __init__(self, action_fn: Callable, limit: int = SPREAD_FRAMES):
    self._action_fn, self._left = action_fn, limit
    self._images, self._gripper_states = [], []

  def __call__(self, observations, *args, **kwargs):
    if self._left > 0:
      self._images.append(np.asarray(observations['image'])[:self._left])
      self._gripper_states.append(np.asarray(observations['gripper_state'])[:self._left])
      self._left -= len(self._images[-1])
    return self._action_fn(observations, *args, **kwargs)

  @property
  def num_frames(self) -> int:
    return sum(map(len, self._images))

  def image_use(self, policy) -> dict:
    """Does ``policy``'s Q (a ``CEMPolicy``) still use the image, on the frames kept?
    ``embedding_spread`` (its image tower's features vary across frames) and ``action_change``
    (its greedy move follows the scene); {} with fewer than 2 frames."""
    if self.num_frames < 2:
      return {}
    images = np.concatenate(self._images)
    return {'embedding_spread': policy.embedding_spread(images),
            'action_change': policy.action_change(images, np.concatenate(self._gripper_states))}

  @staticmethod
  def format(measures: dict) -> str:
    """'embedding spread 0.0337, action change 0.56' ('' without measures), and a warning
    when the spread is below COLLAPSED_SPREAD."""
    if not measures:
      return ''
    out = (f"embedding spread {measures['embedding_spread']:.4f}, action change "
           f"{measures['action_change']:.2f}")
    if measures['embedding_spread'] < COLLAPSED_SPREAD:
      out += (f' -- COLLAPSED IMAGE TOWER (spread below {COLLAPSED_SPREAD:g}): every frame gets '
              'the same features, the policy ignores the image; a training run rarely '
              'recovers (docs/results.md, "Session 22")')
    return out

  def __getattr__(self, name):  # begin_episode, name, ... of the wrapped function
    return getattr(self._action_fn, name)


def format_result(result: dict) -> str:
  """'grasp success: 73.5% (95% CI 64.1-81.2%, n=100) in real on test objects'; another
  pseudo-real world than the project's (``result['world']``) is named: 'in real (real_gap 0.75)'.
  """
  from rl_cyclegan.envs import appearance as appearance_lib  # pylint: disable=g-import-not-at-top
  defaults = {'real_gap': appearance_lib.DEFAULT_REAL_GAP,
              'real_seed': appearance_lib.DEFAULT_REAL_SEED}
  world = ', '.join(f'{k} {v:g}' for k, v in sorted(result.get('world', {}).items())
                    if k in defaults and v != defaults[k])
  return (f"grasp success: {100 * result['success_rate']:.1f}% (95% CI "
          f"{100 * result['ci95_low']:.1f}-{100 * result['ci95_high']:.1f}%, "
          f"n={result['num_episodes']}) in {result['appearance']}"
          f"{f' ({world})' if world else ''} on {result['object_split']} objects")


# ------------------------------------------------------------------------ checkpoint loading


class RunPolicy(NamedTuple):
  """A run's greedy-capable policy, the run's spec and the checkpoint it was restored from."""
  policy: object  # policies.CEMPolicy
  spec: object  # run_dir.RunSpec
  checkpoint: str
  config: Optional[str]  # the gin config parsed for the env / CEM settings
  # The frozen G on whole frames, when it is to be applied outside the policy
  # (``load_run_policy(generator_in_policy=False)``: ``sim2real.CompositeEnv``).
  translator: Optional[object] = None


def check_agrees(name: str, given, recorded, spec) -> None:
  """Raises ValueError when an explicitly given setting disagrees with what the run recorded."""
  if given is None:
    return
  norm = lambda v: tuple(int(x) for x in v) if isinstance(v, (list, tuple)) else v  # noqa: E731
  if norm(given) != norm(recorded):
    raise ValueError(f'{name}={given!r} disagrees with the run, which was trained with '
                     f'{name}={recorded!r} ({spec.source}); leave it out to use the run\'s')


# The configurables a run's evaluation rebuilds from its gin config: the env, CEM and the
# networks (older runs without constructor arguments in run_spec.json). Training-only
# settings (train_eval.*, the runner's groups, learners) come from run_spec.json or are not
# needed, and are not bound: an older run's bindings of them may not fit today's code.
RUN_CONFIGURABLES = ('GraspingEnv', 'CEMPolicy', 'GraspingQNetwork', 'UNetGenerator',
                     'MultiScaleDiscriminator')


def parse_run_config(root_dir: str, gin_file: Optional[str] = None,
                     gin_bindings: Sequence[str] = ()) -> Optional[str]:
  """Binds the env, CEM and network settings (``RUN_CONFIGURABLES``) of the run's gin config
  (``gin_file``, else its operative config; includes followed, gin/ searched), then
  ``gin_bindings``, in the process's gin config; returns the file read (None if the run has
  none and no ``gin_file`` is given).
  """
  import gin  # pylint: disable=g-import-not-at-top
  from rl_cyclegan import gin_utils  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.actors import policies  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  from rl_cyclegan.envs import grasping  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  config = gin_file or run_dir.find_operative_config(root_dir)
  bindings = {}
  if config is not None:
    if not os.path.isfile(config):
      raise FileNotFoundError(f'gin file {config!r} does not exist')
    bindings = run_dir.parse_gin_bindings(config, search_paths=(gin_utils.GIN_DIR,))
  with gin.unlock_config():  # adds to the process's gin config (does not clear it)
    for key, value in bindings.items():
      if (key.rsplit('.', 1)[0].split('.')[-1] in RUN_CONFIGURABLES and
          not isinstance(value, run_dir.Unresolved)):
        gin.bind_parameter(key, value)
    gin.parse_config(list(gin_bindings), skip_unknown=True)
  return config


def other_world_note(config: Optional[str], appearance: str) -> Optional[str]:
  """A note when a run's gin ``config`` binds a pseudo-real world (``RealAppearance.*``) other
  than the one this process renders 'real' in, or None.

  The world is where a policy is measured, not part of the policy, so ``parse_run_config``
  does not take it from the run; a run trained at ``real_gap`` 0.75 and evaluated without
  ``--gin_bindings="RealAppearance.real_gap = 0.75"`` is measured in the project's world.
  That may be intended (transfer), so this is a note, not an error.
  """
  from rl_cyclegan.envs import appearance as appearance_lib  # pylint: disable=g-import-not-at-top
  if appearance != 'real' or config is None or not os.path.isfile(config):
    return None
  from rl_cyclegan import gin_utils  # pylint: disable=g-import-not-at-top
  bindings = run_dir.parse_gin_bindings(config, search_paths=(gin_utils.GIN_DIR,))
  here = appearance_lib.configured_real_world()
  trained = dict(here)
  for k in here:  # a macro or reference stays unresolved: not compared
    v = bindings.get(f'RealAppearance.{k}')
    if isinstance(v, (int, float)) and not isinstance(v, bool):
      trained[k] = v
  if all(float(trained[k]) == float(here[k]) for k in here):
    return None
  fmt = lambda w: ', '.join(f'{k} {w[k]}' for k in sorted(w))  # noqa: E731
  return (f'note: {config} binds the pseudo-real world {fmt(trained)}, but this evaluation '
          f"renders 'real' at {fmt(here)}; to measure it in its own world, pass "
          + ' '.join(f'--gin_bindings="RealAppearance.{k} = {v}"'
                     for k, v in sorted(trained.items()) if v != here[k]))


def load_run_policy(root_dir: str,
                    render_size: Optional[Sequence[int]] = None,
                    gin_file: Optional[str] = None,
                    gin_bindings: Sequence[str] = (),
                    q_network_key: Optional[str] = None,
                    generator_key: Optional[str] = None,
                    checkpoint_path: Optional[str] = None,
                    action_mode: Optional[str] = None,
                    seed: Optional[int] = None,
                    generator_checkpoint: Optional[str] = None,
                    generator_in_policy: bool = True) -> RunPolicy:
  """A greedy-capable ``CEMPolicy`` of a training run, restored from its checkpoint.

  What the run was (sizes, action mode, allowed CEM modes, networks and their keys) comes
  from its ``run_spec.json`` (``run_dir.read_run_spec``; older runs: inferred from their
  operative config). ``render_size`` / ``action_mode`` may be given only to check them: a
  value that disagrees with the run is a ValueError. The env and CEM settings (GraspingEnv.*,
  CEMPolicy.*) come from the run's gin config (``gin_file`` if given, else its operative
  config) plus ``gin_bindings``, added to the process's gin config (call
  ``gin.clear_config()`` first for a clean slate).

  The Q-network is the run's policy Q (``spec.policy_q_key``: 'q_network' for QT-Opt runs,
  'Q_real' for RL-CycleGAN runs) unless ``q_network_key`` names another; ``generator_key``
  puts that network (a frozen G) in front of Q, on whole frames or on crops as the run
  trained (``spec.generator_input``). The checkpoint is ``checkpoint_path`` or the newest
  readable one under train/ckpt. ``generator_checkpoint`` (a checkpoint prefix or directory
  holding ``generator_key``, e.g. another row's published G) restores that G instead of the
  run's own, built the same way: the swap test of a final Q under another generator. With
  ``generator_in_policy=False`` the policy sees frames as given and G comes back as
  ``RunPolicy.translator`` (for an env that translates, e.g. ``sim2real.CompositeEnv``; a G
  trained on whole frames only).

  Raises:
    FileNotFoundError: no run spec, gin config or checkpoint (names the paths tried).
    ValueError: a disagreeing setting, or a checkpoint that does not hold the networks the
      spec describes (names the file).
  """
  from rl_cyclegan.actors import policies  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.data import translation  # pylint: disable=g-import-not-at-top

  config = parse_run_config(root_dir, gin_file, gin_bindings)
  spec = run_dir.read_run_spec(root_dir, checkpoint_path, config=config)
  if checkpoint_path is None:
    ckpt_dir = run_dir.checkpoint_dir(root_dir)
    checkpoint_path = run_dir.latest_checkpoint(ckpt_dir)
    if checkpoint_path is None:
      raise FileNotFoundError(f'no checkpoint in {ckpt_dir!r} (expected a tf.train.Checkpoint '
                              f'with a "checkpoint" index file, written by the training loop)')
  check_agrees('render_size', render_size, spec.render_size, spec)
  check_agrees('action_mode', action_mode, spec.action_mode, spec)
  if generator_checkpoint is not None and not generator_key:
    raise ValueError(f'generator_checkpoint={generator_checkpoint!r} needs generator_key (the '
                     "checkpoint key of the frozen G, e.g. 'G_sim2real')")
  own_g = bool(generator_key) and generator_checkpoint is None
  keys = [q_network_key or spec.policy_q_key] + ([generator_key] if own_g else [])
  if generator_key and generator_key not in spec.networks:
    # A frozen G the spec does not list (e.g. a run trained on G's output by other means).
    spec = run_dir.with_network(spec, generator_key, 'UNetGenerator')
  nets = run_dir.restore_networks(spec, keys, checkpoint_path)
  if generator_checkpoint is not None:
    nets.update(run_dir.restore_networks(spec, [generator_key], generator_checkpoint))
  net, generator = nets[keys[0]], nets.get(generator_key)
  frames = generator is not None and spec.generator_input == 'frames'
  translator = None
  if generator is not None and not generator_in_policy:
    if not frames:
      raise ValueError(f'generator_in_policy=False needs a G on whole frames, but run '
                       f'{root_dir!r} applies {generator_key!r} to crops '
                       f'(generator_input={spec.generator_input!r})')
    translator = translation.FrameTranslator(generator)
    generator, frames = None, False
  policy = policies.CEMPolicy(
      net, render_size=spec.render_size, crop_size=spec.crop_size,
      image_transform=generator if generator is not None and not frames else None,
      frame_transform=translation.FrameTranslator(generator) if frames else None,
      allowed_modes=spec.allowed_modes, seed=seed)
  return RunPolicy(policy, spec, checkpoint_path, config, translator)


def load_policy_from_checkpoint(root_dir: str, **kwargs):
  """``load_run_policy(root_dir, **kwargs).policy``."""
  return load_run_policy(root_dir, **kwargs).policy
