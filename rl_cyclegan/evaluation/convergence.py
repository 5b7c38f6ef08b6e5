"""Appendix A's convergence criteria of a joint RL-CycleGAN run, read from what it wrote.

Appendix A: training has converged when "the simulation-to-real images look realistic, the
cycled images look reasonable with a reasonably low L_cyc, both Q_sim and Q_real perform well
along with a reasonably low L_RL-scene", watching for the collapse "where Q outputs incorrect,
uniform Q-values that give a spuriously low L_RL-scene". The paper gives no thresholds, so
``joint_criteria`` reports each criterion as a number at the run's last step, beside where it
started:

  G(x) looks real         scene/generator/mae against scene/identity/mae (the untranslated
                          sim image) on held-out paired renders, and object preservation
  low L_cyc               losses/cycle, mean of the last window against the first window
  Q_sim, Q_real perform   the last evaluation: Q_sim in sim, Q_real on G(sim) in sim (the
                          paper's), Q_real in `real` (ours: this world has one to measure)
  low L_RL-scene          losses/rl_scene, last window against the first; and on the
                          paired states with the run's G and F against with the identity
                          (scene/rl_scene_pull/own, .../identity: where the loss pulls G)
  no collapse             q/q_std (last window) and q/collapse_suspected (any in the last
                          window)

and, beside them, how hard each of G's losses pulls on it: the norm of the gradient of each
weighted term with respect to G (gradients/G/<loss>, written every 1,000 steps since session
26, ``RLCycleGANLearner.loss_gradient_norms``), mean of the last window: the size of
L_RL-scene against the others, in the units that move G.

Inputs are the run's TensorBoard scalars as ``summaries.read_scalars`` returns them (tags
prefixed by the event file's subdirectory: ``train/losses/cycle``) or as
``summaries.export_scalars`` writes them (``scalars.json``), and its ``eval/eval_<step>.json``
files. A criterion whose data the run did not write is left out, not guessed, and so is a loss
its configuration switched off (the learner reports it as 0 at every step).
"""

import glob
import json
import os
from typing import Dict, List, Optional, Sequence

# (key, scalar tag, what it is): the loss criteria, averaged over a window.
WINDOWED = (
    ('cycle', 'train/losses/cycle', 'L_cycle (eq. 2), unweighted'),
    ('rl_scene', 'train/losses/rl_scene', 'L_RL-scene (eq. 4), unweighted'),
    ('gan_generator', 'train/losses/gan_generator', 'L_GAN, generator side, unweighted'),
    ('q_std', 'train/q/q_std', 'std of the batch Q-values (collapse monitor)'),
)
COLLAPSE_TAG = 'train/q/collapse_suspected'
# (key, scalar tag): scene metrics on held-out paired renders, at their last step.
SCENE = (
    ('mae_generator', 'train/scene/generator/mae'),
    ('mae_identity', 'train/scene/identity/mae'),
    ('object_preservation', 'train/scene/generator/object_preservation'),
    # L_RL-scene on the paired states with the run's G and F and with the identity, under its
    # critics (evaluation/rl_scene_pull.py; runs since session 27).
    ('rl_scene_own', 'train/scene/rl_scene_pull/own'),
    ('rl_scene_identity', 'train/scene/rl_scene_pull/identity'),
)
# (key, scalar tag): the gradient norm of each of G's weighted losses and of their sum.
G_GRADIENTS = (
    ('gan_generator', 'train/gradients/G/gan_generator'),
    ('cycle', 'train/gradients/G/cycle'),
    ('rl_scene', 'train/gradients/G/rl_scene'),
    ('segmentation', 'train/gradients/G/segmentation'),
    ('all', 'train/gradients/G/all'),
)
# The joint run's evaluations (train_rl_cyclegan.EVAL_POLICIES): (key, eval result name).
EVALUATIONS = (
    ('q_sim_in_sim', 'Q_sim/sim'),
    ('q_real_on_g_sim', 'Q_real_G/sim'),
    ('q_real_in_real', 'Q_real/real'),
)


def _window_mean(points: Sequence[Sequence[float]], low: float, high: float) -> Optional[float]:
  """Mean of the values at steps in [low, high)."""
  values = [v for s, v in points if low <= s < high]
  return sum(values) / len(values) if values else None


def read_evals(eval_dir: str) -> Dict[int, dict]:
  """{step: eval_<step>.json contents} of a run's eval directory (missing dir: {}).

  Raises ValueError naming the file for one that is not a JSON evaluation record.
  """
  out = {}
  for path in sorted(glob.glob(os.path.join(eval_dir, 'eval_*.json'))):
    try:
      with open(path) as f:
        record = json.load(f)
      out[int(record['step'])] = record
    except (ValueError, KeyError, TypeError) as e:
      raise ValueError(f'{path}: not an evaluation record with a "step" ({e})') from e
  return out


def joint_criteria(scalars: Dict[str, List[List[float]]], evals: Dict[int, dict],
                   window_steps: int = 1_000) -> dict:
  """Appendix A's criteria at the run's last train step (module docstring).

  Args:
    scalars: {tag: [[step, value], ...]} (summaries.read_scalars / scalars.json 'scalars').
    evals: {step: eval record} (``read_evals``).
    window_steps: loss criteria are means over the last (and the first) this many steps.

  Returns:
    {'step': last train step, 'window_steps', '<loss>': {'first', 'last'} per WINDOWED key the
    run wrote, 'collapse_suspected' (bool), 'g_gradient_norms' ({G_GRADIENTS key: mean of the
    last window}, runs since session 26), SCENE keys (and 'scene_step'), and EVALUATIONS keys
    as {'successes', 'episodes', 'success_rate', 'ci95', 'step'} of the last evaluation}.
    Empty when the run wrote none of these.
  """
  steps = [s for _, tag, _ in WINDOWED for s, _ in scalars.get(tag, [])]
  out = {}
  if steps:
    first, last = min(steps), max(steps)
    out.update(step=int(last))
    for key, tag, _ in WINDOWED:
      points = scalars.get(tag)
      # The learner reports a switched-off loss (L_RL-scene without use_rl_scene) as 0 at
      # every step; a loss it computes is never exactly 0 throughout.
      if points and any(v != 0.0 for _, v in points):
        out[key] = {'first': _window_mean(points, first, first + window_steps),
                    'last': _window_mean(points, last - window_steps + 1, last + 1)}
    collapse = scalars.get(COLLAPSE_TAG)
    if collapse:
      out['collapse_suspected'] = any(v > 0 for s, v in collapse if s > last - window_steps)
    pulls = {key: _window_mean(scalars[tag], last - window_steps + 1, last + 1)
             for key, tag in G_GRADIENTS if scalars.get(tag)}
    pulls = {k: v for k, v in pulls.items() if v is not None}
    if pulls:
      out['g_gradient_norms'] = pulls
  for key, tag in SCENE:
    points = scalars.get(tag)
    if points:
      step, value = max(points)
      out[key] = value
      out['scene_step'] = int(step)
  if evals:
    step = max(evals)
    results = evals[step].get('results', {})
    for key, name in EVALUATIONS:
      r = results.get(name)
      if r:
        out[key] = {'successes': int(r['num_successes']), 'episodes': int(r['num_episodes']),
                    'success_rate': float(r['success_rate']),
                    'ci95': [float(r['ci95_low']), float(r['ci95_high'])], 'step': int(step)}
    out.setdefault('step', int(step))
  if out:
    out['window_steps'] = int(window_steps)
  return out


def read_joint_criteria(run_dir: str, window_steps: int = 1_000) -> dict:
  """``joint_criteria`` of a joint run directory: its event files (``train/``), or the
  ``scalars.json`` that results/ holds when the event files stayed on the training machine,
  and its ``eval/``."""
  from rl_cyclegan.evaluation import summaries  # pylint: disable=g-import-not-at-top
  exported = os.path.join(run_dir, summaries.SCALARS_FILE)
  if os.path.isfile(exported):
    try:
      with open(exported) as f:
        scalars = json.load(f)['scalars']
    except (ValueError, KeyError, TypeError) as e:
      raise ValueError(f'{exported}: not a scalars file written by summaries.export_scalars '
                       f'(a JSON object with "scalars": {{tag: [[step, value], ...]}}): {e}'
                       ) from e
  else:
    scalars = summaries.read_scalars(run_dir)
  return joint_criteria(scalars, read_evals(os.path.join(run_dir, 'eval')), window_steps)
