"""Ad hoc (session 27): where does L_RL-scene pull G and F, given the critics it is measured with?

At real_gap 0.75 the RL-CycleGAN G kept the sim objects' colours where the CycleGAN G repainted
them (docs/table1_real_gap0.75.png). One explanation is our deviation 1 (gin/table1_joint.gin):
Q_sim and Q_real both start as the Sim-Only Q, and with Q_sim = Q_real every q of paper eq. 4
is the same number when G = F = identity, so L_RL-scene is exactly 0 there: at the start, the
loss pulls G and F toward the identity in whatever the Sim-Only Q looks at. The critics then
train apart (Q_real on the real log and G(sim)). This script measures how much that still
holds at a run's last step.

For each joint run, with critics of two kinds: the Sim-Only Q as both Q_sim and Q_real (the
joint run's start), and the run's own Q_sim / Q_real at its newest checkpoint; and for
(G, F) the run's own and the identity: L_RL-scene (``losses.rl_scene_consistency_loss``, eq. 4,
unweighted, the sim and real triples also apart) on the center crops of the held-out paired
states (sim render x, true real render y of the same states), each state with
``ACTIONS_PER_STATE`` random move actions (one action set for every measurement). Also the
critics' disagreement on one image: mean |Q_sim(x, a) - Q_real(x, a)| on sim crops and on real
crops.
Usage:
  python results/table1_real_gap0.75/diagnostics/rl_scene_pull.py <sim_only_run> \
      <paired_set.npz> <joint_run_dir> [<joint_run_dir> ...]
Prints one JSON line per joint run.
"""
import json
import sys

import numpy as np
import tensorflow as tf

from rl_cyclegan import configurables  # noqa: F401  (registers the configurables)
from rl_cyclegan import losses
from rl_cyclegan import run_dir
from rl_cyclegan import specs
from rl_cyclegan.evaluation import paired_set, policy_eval
from rl_cyclegan.pipelines.generator_report import center_window

ACTIONS_PER_STATE = 16
SEED = 0


def main(argv):
  sim_only_run, pairs, joint_runs = argv[0], argv[1], argv[2:]
  data = paired_set.load_paired_set(pairs)
  n = len(data['sim'])
  rng = np.random.default_rng(SEED)
  continuous = rng.uniform(-1.0, 1.0, size=(n * ACTIONS_PER_STATE, 4)).astype(np.float32)
  actions = specs.encode_action(continuous, np.zeros(len(continuous), np.int32))
  gripper = np.stack([np.zeros(n), np.asarray(data['gripper_height'])], -1).astype(np.float32)
  gripper = tf.constant(np.repeat(gripper, ACTIONS_PER_STATE, axis=0))
  sim_only = policy_eval.load_run_policy(sim_only_run, render_size=data['sim'].shape[1:3],
                                         seed=SEED).policy.q_network
  crops = {}
  for k in ('sim', 'real'):
    frames = np.asarray(data[k])
    rows, cols = center_window(frames.shape[1], frames.shape[2], sim_only.crop_size)
    crops[k] = tf.constant(frames[:, rows, cols].astype(np.float32) / 127.5 - 1.0)

  def q(net, images):  # [N, h, w, 3] -> Q probabilities [N * ACTIONS_PER_STATE]
    images = tf.repeat(images, ACTIONS_PER_STATE, axis=0)
    logits, _ = net(({'image': images, 'gripper_state': gripper}, actions), training=False)
    return tf.sigmoid(logits)

  def rl_scene(q_sim, q_real, g, f):
    x, y = crops['sim'], crops['real']
    g_x, f_y = g(x), f(y)
    qs = [q(q_sim, x), q(q_real, g_x), q(q_sim, f(g_x)),
          q(q_real, y), q(q_sim, f_y), q(q_real, g(f_y))]
    zeros = [tf.zeros_like(v) for v in qs[:3]]
    sim_part = losses.rl_scene_consistency_loss(*qs[:3], *zeros)
    real_part = losses.rl_scene_consistency_loss(*zeros, *qs[3:])
    return {'total': float(sim_part + real_part), 'sim_triple': float(sim_part),
            'real_triple': float(real_part)}

  def identity(images):
    return images

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
               'own (the run\'s Q_sim, Q_real)': (nets['Q_sim'], nets['Q_real'])}
    out = {'run': joint, 'checkpoint': prefix, 'paired_set': pairs, 'states': n,
           'actions_per_state': ACTIONS_PER_STATE, 'rl_scene': {}}
    for name, (q_sim, q_real) in critics.items():
      out['rl_scene'][name] = {'own G, F': rl_scene(q_sim, q_real, g, f),
                               'identity': rl_scene(q_sim, q_real, identity, identity)}
    out['critic_disagreement'] = {
        k: float(tf.reduce_mean(tf.abs(q(nets['Q_sim'], crops[k]) - q(nets['Q_real'],
                                                                         crops[k]))))
        for k in ('sim', 'real')}
    print(json.dumps(out), flush=True)


if __name__ == '__main__':
  main(sys.argv[1:])
