"""The oracle-Q agreement of the Table 1 generator report (pipelines/generator_report.py)."""

import numpy as np
import pytest
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
  assert same['action_xy_distances'] == [0.0] * 3 and same['action_xy_distance_se'] == 0.0
  other = rng.integers(0, 256, (3, *RENDER, 3), dtype=np.uint8)
  diff = generator_report.oracle_q_agreement(policy, other, real, height)
  assert diff['q_abs_diff_at_real_action'] > 0.0
  distances = np.asarray(diff['action_xy_distances'])  # per state, in the states' order
  assert distances.shape == (3,) and (distances >= 0).all()
  assert diff['action_xy_distance'] == pytest.approx(distances.mean(), abs=1e-5)
  assert diff['action_xy_distance_se'] == pytest.approx(distances.std(ddof=1) / np.sqrt(3),
                                                        abs=1e-5)
  assert 0.0 <= diff['mean_value_real'] <= 1.0


def test_the_tool_reads_a_published_g_with_a_config_written_by_older_code(tmp_path):
  """tools/generator_report.py on a published joint directory: only an operative config as
  older code wrote it (training settings on ``train_rl_cyclegan.*``, since moved to the
  runner's groups) and G alone in a ``generator/`` directory (table1's oracle_q stage)."""
  import json
  import os
  import gin
  from rl_cyclegan.cli import generator_report as cli
  from rl_cyclegan.evaluation import paired_set
  from rl_cyclegan.networks import generator as generator_lib

  joint = tmp_path / 'joint'
  joint.mkdir()
  (joint / 'operative_config.gin').write_text('\n'.join([
      "train_rl_cyclegan.action_mode = 'auto_descend'",  # unknown to today's train_rl_cyclegan
      'train_rl_cyclegan.crop_size = (32, 32)', 'train_rl_cyclegan.render_size = (32, 40)',
      'train_rl_cyclegan.num_train_steps = 7', 'UNetGenerator.filters = (8, 16)', '']))
  gin.clear_config()
  g = generator_lib.UNetGenerator(filters=(8, 16))
  g(tf.zeros([1, *CROP, 3]))
  g_dir = tmp_path / 'generator'
  ckpt = tf.train.Checkpoint(G_sim2real=g)
  _ = ckpt.save_counter  # as generator_report.report writes G alone
  ckpt.write(str(g_dir / 'g-7'))
  (g_dir / 'checkpoint').write_text('model_checkpoint_path: "g-7"\n')
  pairs = str(tmp_path / 'paired.npz')
  paired_set.save_paired_set(pairs, paired_set.make_paired_set(
      2, render_size=RENDER, crop_size=RENDER, seed=3, steps_per_state=2))
  out = tmp_path / 'report.json'
  before = sorted(os.listdir(g_dir))
  assert cli.main([f'--run_dir={joint}', f'--generator_checkpoint={g_dir}',
                   f'--paired_set={pairs}', f'--output_json={out}', '--figure_states=0']) == 0
  report = json.loads(out.read_text())
  assert report['step'] == 7 and report['num_states'] == 2
  assert report['generator_checkpoint'].endswith('g-7')
  assert 0 <= report['frame']['generator/mae'] <= 255
  assert not os.path.exists(tmp_path / 'figure_states.npz')  # --figure_states=0
  assert sorted(os.listdir(g_dir)) == before  # the published G is not written again
