"""Ad hoc (session 17): which part of G(x) makes a final Q act differently than on real(x)?

For each held-out paired state, the real render with one region (objects, robot, the rest)
replaced by G(x)'s pixels (and, for scale, real(x) plus pixel noise); the Q's greedy (dx, dy) move on it against its move on real(x),
same CEM seed and gripper height (generator_report.oracle_q_agreement). Usage:
  python results/table1/diagnostics/region_swap.py <row> <Q run dir> <paired_set.npz>
"""
import json
import sys

import numpy as np

from rl_cyclegan.cli import generator_report as _cli  # noqa: F401  (registers configurables)
from rl_cyclegan import run_dir
from rl_cyclegan.data import translation
from rl_cyclegan.evaluation import paired_set, policy_eval
from rl_cyclegan.pipelines import generator_report, train_qtopt

row, q_dir, pairs = sys.argv[1:4]
policy_eval.parse_run_config(f'results/table1/{row}/joint')
crop = tuple(run_dir.read_run_spec(f'results/table1/{row}/joint').crop_size)
g = train_qtopt.load_frozen_generator(f'results/table1/{row}/generator', 'G_sim2real', crop)
data = paired_set.load_paired_set(pairs)
sim, real = np.asarray(data['sim']), np.asarray(data['real'])
height = np.asarray(data['gripper_height'])
objects = np.asarray(data['object_mask']).astype(bool)
robot = np.asarray(data['robot_mask']).astype(bool)
policy = policy_eval.load_policy_from_checkpoint(q_dir, render_size=sim.shape[1:3], seed=0)
generated = translation.FrameTranslator(g).translate(sim)
regions = {'objects': objects, 'robot': robot, 'rest': ~(objects | robot),
           'all (G(x))': np.ones_like(objects)}
out = {'row': row, 'q': q_dir, 'pixel_share': {}, 'action_xy_distance': {}}
for name, mask in regions.items():
  m = mask[..., None]
  mixed = np.where(m, generated, real)
  out['pixel_share'][name] = float(mask.mean())
  out['action_xy_distance'][name] = generator_report.oracle_q_agreement(
      policy, mixed, real, height)['action_xy_distance']
# Scale: the real render with Gaussian pixel noise (sigma 4 levels), no G at all.
noisy = np.clip(real + np.random.default_rng(0).normal(0, 4, real.shape), 0, 255).astype(np.uint8)
out['action_xy_distance']['real + noise (sigma 4)'] = generator_report.oracle_q_agreement(
    policy, noisy, real, height)['action_xy_distance']
print(json.dumps(out))
