"""Latency of the exported policy against one batched Q forward pass (loaded SavedModels only).

Per call, after ``warmup`` calls, the median over ``num_calls`` (wall clock, one thread of
control, TensorFlow's default intra-op threads):

  grasp            policy ``grasp`` signature, batch 1: one image tower, then
                   num_iterations CEM rounds of num_samples head evaluations
  q_batch          q_function ``serving_default`` on num_samples (image, action) pairs of one
                   frame: num_samples image towers + num_samples heads (how a CEM step would
                   cost without the shared embedding)
  q_candidates     q_function ``q_values_for_candidates``, 1 frame x num_samples actions:
                   one image tower + num_samples heads (one CEM round with the shared embedding)

ratio = grasp / q_batch. Everything is read from the SavedModels and their export_info.json,
so the numbers are what a controller process sees.
"""

import json
import os
import statistics
import time
from typing import Callable, Optional

import numpy as np


def time_calls(fn: Callable[[], object], num_calls: int = 50, warmup: int = 5) -> list:
  """Seconds per call of ``fn`` (results converted to NumPy, so the work is done)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def run():
    tf.nest.map_structure(lambda t: t.numpy(), fn())

  for _ in range(max(0, int(warmup))):
    run()
  times = []
  for _ in range(max(1, int(num_calls))):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  return times


def _summary(times):
  ms = sorted(1000.0 * t for t in times)
  return {'median_ms': statistics.median(ms), 'min_ms': ms[0],
          'p90_ms': ms[min(len(ms) - 1, int(0.9 * len(ms)))], 'calls': len(ms)}


def benchmark_exports(export_dir: str,
                      num_calls: int = 50,
                      warmup: int = 5,
                      num_samples: Optional[int] = None,
                      seed: int = 0) -> dict:
  """Times ``<export_dir>/policy`` and ``<export_dir>/q_function`` (see the module docstring).

  Args:
    export_dir: holds ``policy/`` and ``q_function/`` (``saved_models.export_*``).
    num_calls: timed calls per measurement (median reported).
    warmup: untimed calls first (tracing, allocation).
    num_samples: Q batch / candidates; default the policy's CEM num_samples (QT-Opt: 64).
    seed: for the random frame, gripper state and actions.

  Returns:
    dict with render_size, crop_size, num_samples, cem settings, grasp / q_batch /
    q_candidates summaries ({median_ms, min_ms, p90_ms, calls}) and ratios.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  policy_dir = os.path.join(export_dir, 'policy')
  q_dir = os.path.join(export_dir, 'q_function')
  for path in (policy_dir, q_dir):
    if not os.path.isfile(os.path.join(path, 'saved_model.pb')):
      raise FileNotFoundError(f'{path!r} has no saved_model.pb (expected the output of '
                              'tools/export.py with --what including policy,q_function)')
  with open(os.path.join(policy_dir, 'export_info.json')) as f:
    info = json.load(f)
  render_h, render_w = info['render_size']
  num_samples = int(num_samples or info['cem']['num_samples'])
  rng = np.random.default_rng(seed)
  frame = rng.integers(0, 256, [1, render_h, render_w, 3], dtype=np.uint8)
  gripper = np.array([[0.0, 0.2]], np.float32)
  actions = np.zeros([1, num_samples, 8], np.float32)
  actions[..., :3] = rng.uniform(-1, 1, [1, num_samples, 3])
  theta = rng.uniform(-np.pi / 2, np.pi / 2, [1, num_samples])
  actions[..., 3], actions[..., 4] = np.sin(theta), np.cos(theta)

  policy = tf.saved_model.load(policy_dir)
  q_function = tf.saved_model.load(q_dir)
  grasp = policy.signatures['grasp']
  q_value = q_function.signatures['serving_default']
  q_candidates = q_function.signatures['q_values_for_candidates']
  frames = tf.constant(np.repeat(frame, num_samples, axis=0))  # [N, H, W, 3]
  grippers = tf.constant(np.repeat(gripper, num_samples, axis=0))  # [N, 2]
  frame, gripper = tf.constant(frame), tf.constant(gripper)
  flat_actions, actions = tf.constant(actions[0]), tf.constant(actions)

  results = {
      'render_size': [render_h, render_w], 'crop_size': info['crop_size'],
      'num_samples': num_samples, 'cem': info['cem'],
      'grasp': _summary(time_calls(lambda: grasp(image=frame, gripper_state=gripper),
                                   num_calls, warmup)),
      'q_batch': _summary(time_calls(
          lambda: q_value(image=frames, gripper_state=grippers, action=flat_actions),
          num_calls, warmup)),
      'q_candidates': _summary(time_calls(
          lambda: q_candidates(image=frame, gripper_state=gripper, actions=actions),
          num_calls, warmup)),
  }
  results['ratio_grasp_to_q_batch'] = (results['grasp']['median_ms'] /
                                       results['q_batch']['median_ms'])
  results['ratio_grasp_to_q_candidates'] = (results['grasp']['median_ms'] /
                                            results['q_candidates']['median_ms'])
  return results


def export_random_networks(export_dir: str,
                           gin_files=(),
                           gin_bindings=(),
                           render_size=(64, 80),
                           crop_size=(64, 64),
                           seed: int = 0) -> dict:
  """Exports randomly initialized gin-configured networks (policy, q_function) for timing.

  Latency does not depend on the weights, so no checkpoint is needed: ``GraspingQNetwork``
  is built from ``gin_files`` / ``gin_bindings`` (e.g. gin/networks_small.gin) at
  ``crop_size``, and a greedy ``CEMPolicy`` (QT-Opt CEM defaults unless bound in gin) at
  ``render_size``. Returns {kind: export info}.
  """
  import gin  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rl_cyclegan import configurables  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  from rl_cyclegan.actors import policies  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.export import saved_models  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.networks import q_network as q_network_lib  # pylint: disable=g-import-not-at-top
  with gin.unlock_config():
    gin.parse_config_files_and_bindings(list(gin_files), list(gin_bindings),
                                        finalize_config=False, skip_unknown=True)
  tf.keras.utils.set_random_seed(seed)
  q_net = q_network_lib.GraspingQNetwork(crop_size=crop_size)
  policy = policies.CEMPolicy(q_net, render_size=render_size, crop_size=crop_size, seed=seed)
  source = {'extra_info': {'note': 'random weights (benchmark)',
                           'gin_files': [os.path.abspath(f) for f in gin_files]}}
  return {
      'q_function': saved_models.export_q_function(
          q_net, render_size, crop_size, os.path.join(export_dir, 'q_function'), **source),
      'policy': saved_models.export_policy(policy, os.path.join(export_dir, 'policy'), **source),
  }


def format_results(results: dict) -> str:
  """Human-readable lines for ``benchmark_exports`` results."""
  n = results['num_samples']
  h, w = results['render_size']
  cem = results['cem']

  def line(label, summary):
    return (f'  {label:<44s} median {summary["median_ms"]:7.2f} ms  (min '
            f'{summary["min_ms"]:.2f}, p90 {summary["p90_ms"]:.2f}, {summary["calls"]} calls)')

  return '\n'.join([
      f'exported policy vs Q at render {h}x{w}, crop {results["crop_size"][0]}x'
      f'{results["crop_size"][1]}; CEM {cem["num_samples"]} samples x '
      f'{cem["num_iterations"]} rounds',
      line('policy grasp, batch 1', results['grasp']),
      line(f'Q serving_default, batch {n} (= CEM samples)', results['q_batch']),
      line(f'Q q_values_for_candidates, 1 x {n}', results['q_candidates']),
      f'  ratio grasp / Q batch {n}: {results["ratio_grasp_to_q_batch"]:.2f}; '
      f'grasp / candidates 1 x {n}: {results["ratio_grasp_to_q_candidates"]:.2f}',
  ])
