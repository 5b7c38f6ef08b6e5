"""The oracle-Q agreement of the Table 1 generator report (pipelines/generator_report.py)."""

import numpy as np
import tensorflow as tf

from rl_cyclegan.actors import policies
from rl_cyclegan.networks import q_network as q_network_lib
from rl_cyclegan.pipelines import generator_report

RENDER, CROP = (32, 40), (32, 32)


def _policy():
  tf.random.set_seed(0)
  net = q_network_lib.GraspingQNetwork(
      crop_size=CROP, stem_filters=8, tower_filters=(8,), state_action_fc_units=(16,),
      merged_filters=(8,), final_filters=(8,), fc_units=(8,))
  return policies.CEMPolicy(net, render_size=RENDER, crop_size=CROP, seed=0)


def test_identical_frames_agree_exactly_and_other_frames_do_not():
  policy = _policy()
  rng = np.random.default_rng(0)
  real = rng.integers(0, 256, (3, *RENDER, 3), dtype=np.uint8)
  height = np.array([0.2, 0.1, 0.05], np.float32)
  same = generator_report.oracle_q_agreement(policy, real.copy(), real, height)
  assert same['value_abs_diff'] == 0.0 and same['q_abs_diff_at_real_action'] == 0.0
  assert same['action_xy_distance'] == 0.0 and same['num_states'] == 3
  other = rng.integers(0, 256, (3, *RENDER, 3), dtype=np.uint8)
  diff = generator_report.oracle_q_agreement(policy, other, real, height)
  assert diff['q_abs_diff_at_real_action'] > 0.0
  assert 0.0 <= diff['mean_value_real'] <= 1.0
