"""Ad hoc (session 27): where does L_RL-scene pull G and F, given the critics it is measured with?

At real_gap 0.75 the RL-CycleGAN G kept the sim objects' colours where the CycleGAN G repainted
them (docs/table1_real_gap0.75.png). One explanation is our deviation 1 (gin/table1_joint.gin):
Q_sim and Q_real both start as the Sim-Only Q, and with Q_sim = Q_real every q of paper eq. 4
is the same number when G = F = identity, so L_RL-scene is exactly 0 there: at the start, the
loss pulls G and F toward the identity in whatever the Sim-Only Q looks at. The critics then
train apart (Q_real on the real log and G(sim)). This script measures how much that still
holds at a run's last step.

For each joint run, with critics of two kinds: the Sim-Only Q as both Q_sim and Q_real (the
joint run's start), and the run's own Q_sim / Q_real at its newest checkpoint;
``rl_cyclegan.evaluation.rl_scene_pull`` (L_RL-scene, eq. 4, unweighted, with the run's G and F
and with the identity) on the center crops of the held-out paired states (sim render x, true
real render y of the same states), 16 random move actions per state. Joint runs since session
27 write the same with their own critics every 1,000 steps (``scene/rl_scene_pull/*``).
With ``--q_real_start=<QT-Opt run>``, also the critics of the critics'-start lever
(rl_cyclegan_real_critic): the Sim-Only Q as Q_sim and that run's Q as Q_real.
Usage:
  python results/table1_real_gap0.75/diagnostics/rl_scene_pull.py <sim_only_run> \
      <paired_set.npz> <joint_run_dir> [<joint_run_dir> ...] [--q_real_start=<run_dir>]
Prints one JSON line per joint run.
"""
import json
import sys

import numpy as np

from rl_cyclegan import configurables  # noqa: F401  (registers the configurables)
from rl_cyclegan import run_dir
from rl_cyclegan.evaluation import paired_set, policy_eval
from rl_cyclegan.evaluation.rl_scene_pull import rl_scene_pull
from rl_cyclegan.pipelines.generator_report import center_window


def main(argv):
  flags = [a for a in argv if a.startswith('--q_real_start=')]
  argv = [a for a in argv if a not in flags]
  sim_only_run, pairs, joint_runs = argv[0], argv[1], argv[2:]
  data = paired_set.load_paired_set(pairs)

  def load_q(run):
    return policy_eval.load_run_policy(run, render_size=data['sim'].shape[1:3],
                                       seed=0).policy.q_network

  sim_only = load_q(sim_only_run)
  q_real_start = load_q(flags[0].split('=', 1)[1]) if flags else None
  rows, cols = center_window(*data['sim'].shape[1:3], sim_only.crop_size)
  crops = {k: np.asarray(data[k])[:, rows, cols] for k in ('sim', 'real')}
  for joint in joint_runs:
    spec = run_dir.read_run_spec(joint)
    prefix = run_dir.latest_checkpoint(run_dir.checkpoint_dir(joint))
    nets = run_dir.restore_networks(spec, ['G_sim2real', 'F_real2sim', 'Q_sim', 'Q_real'],
                                    prefix)

    def g(images, nets=nets):
      return nets['G_sim2real'](images, training=False)

    def f(images, nets=nets):
      return nets['F_real2sim'](images, training=False)

    critics = {'start (Sim-Only Q as both)': (sim_only, sim_only),
               "own (the run's Q_sim, Q_real)": (nets['Q_sim'], nets['Q_real'])}
    if q_real_start is not None:
      critics['lever start (Sim-Only Q_sim, the given Q_real)'] = (sim_only, q_real_start)
    out = {'run': joint, 'checkpoint': prefix, 'paired_set': pairs,
           'states': len(crops['sim']), 'rl_scene_pull': {}}
    for name, (q_sim, q_real) in critics.items():
      out['rl_scene_pull'][name] = rl_scene_pull(q_sim, q_real, g, f, crops['sim'],
                                                 crops['real'], data['gripper_height'])
    print(json.dumps(out), flush=True)


if __name__ == '__main__':
  main(sys.argv[1:])
