"""Tests for rl_cyclegan/evaluation/policy_eval.py and tools/evaluate.py."""
import io
import json
import math
import os
import shutil
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan.actors import policies
from rl_cyclegan.networks import q_network as q_network_lib
from rl_cyclegan.evaluation import policy_eval
import test_rollout  # noqa: E402  (tests/ is on sys.path under pytest)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL_GIN = os.path.join(REPO, 'gin', 'networks_small.gin')


@pytest.mark.parametrize('successes,n,low,high', [
    # z = 1.96, z^2 = 3.8416. n = 10: 1 + z^2/n = 1.38416.
    # 0/10: centre = (0 + 0.19208) / 1.38416 = 0.13877; half = 1.96/1.38416 * sqrt(3.8416/400)
    #       = 1.41602 * 0.098 = 0.13877 -> (0, 0.27754).
    (0, 10, 0.0, 0.27754),
    # 5/10: centre = 0.5; half = 1.41602 * sqrt(0.025 + 0.009604) = 0.26341.
    (5, 10, 0.23659, 0.76341),
    (10, 10, 0.72246, 1.0),
    # 1/1: centre = (1 + 1.9208) / 4.8416 = 0.60328; half = 1.96/4.8416 * sqrt(0.9604) = 0.39672.
    (1, 1, 0.20656, 1.0),
])
def test_wilson_interval_hand_worked(successes, n, low, high):
  got = policy_eval.wilson_interval(successes, n, z=1.96)
  np.testing.assert_allclose(got, (low, high), atol=2e-5)


def test_wilson_interval_edges():
  assert policy_eval.wilson_interval(0, 0) == (0.0, 1.0)
  low, high = policy_eval.wilson_interval(50, 100)
  assert low < 0.5 < high and high - low < 0.2
  with pytest.raises(ValueError, match='successes <= n'):
    policy_eval.wilson_interval(3, 2)


def test_two_proportion_z_hand_worked():
  # 30/100 against 20/100: pooled p = 0.25; sqrt(0.25 * 0.75 * 0.02) = 0.061237; 0.1 / it.
  assert policy_eval.two_proportion_z(30, 100, 20, 100) == pytest.approx(1.63299, abs=1e-5)
  assert policy_eval.two_proportion_z(20, 100, 30, 100) == pytest.approx(-1.63299, abs=1e-5)
  assert policy_eval.two_proportion_z(0, 50, 0, 50) == 0.0  # no spread: no difference
  with pytest.raises(ValueError, match='n_a=0'):
    policy_eval.two_proportion_z(0, 0, 1, 10)


def test_mcnemar_exact_hand_worked():
  # 30 scenes only a grasped, 10 only b, 60 both or neither: 2 P[Bin(40, 1/2) <= 10] = 0.00222.
  a = [1] * 30 + [0] * 10 + [1] * 35 + [0] * 25
  b = [0] * 30 + [1] * 10 + [1] * 35 + [0] * 25
  paired = policy_eval.mcnemar_exact(a, b)
  assert (paired['scenes'], paired['only_a'], paired['only_b']) == (100, 30, 10)
  assert paired['p_value'] == pytest.approx(0.0022214, abs=1e-6)
  assert policy_eval.mcnemar_exact(b, a)['p_value'] == pytest.approx(paired['p_value'])
  # 1 against 0 discordant: p = 2 * 1/2 = 1; none: 1 (capped); 5 against 0: 2 / 32.
  assert policy_eval.mcnemar_exact([1, 0], [0, 0])['p_value'] == 1.0
  assert policy_eval.mcnemar_exact([1, 0], [1, 0])['p_value'] == 1.0
  assert policy_eval.mcnemar_exact([1] * 5, [0] * 5)['p_value'] == pytest.approx(0.0625)
  with pytest.raises(ValueError, match='same scenes, got 2 and 3'):
    policy_eval.mcnemar_exact([1, 0], [1, 0, 1])



def test_paired_difference_interval_hand_worked():
  # 30 only a, 10 only b of 100: d = 0.2, se = sqrt(40 - 400 / 100) / 100 = 0.06.
  a = [1] * 30 + [0] * 10 + [1] * 35 + [0] * 25
  b = [0] * 30 + [1] * 10 + [1] * 35 + [0] * 25
  d, low, high = policy_eval.paired_difference_interval(a, b)
  assert d == pytest.approx(0.2)
  assert (low, high) == pytest.approx((0.2 - 1.959964 * 0.06, 0.2 + 1.959964 * 0.06), abs=1e-5)
  # The same rates unpaired (65% against 45% of 100) give a wider Wald interval.
  unpaired = 1.959964 * math.sqrt(0.65 * 0.35 / 100 + 0.45 * 0.55 / 100)
  assert high - low < 2 * unpaired
  assert policy_eval.paired_difference_interval(b, a) == pytest.approx((-d, -high, -low))
  assert policy_eval.paired_difference_interval([1, 0], [1, 0]) == (0.0, 0.0, 0.0)
  with pytest.raises(ValueError, match='same scenes, got 2 and 3'):
    policy_eval.paired_difference_interval([1, 0], [1, 0, 1])

def test_spearman_exact_hand_worked():
  # Ranks (2, 1, 3, 6, 5, 4) against 1..6: sum of squared rank differences 10, rho = 1 - 60 /
  # 210 = 0.714; 98 of the 720 orderings reach |rho| >= 0.714 (p = 0.136).
  r = policy_eval.spearman_exact([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [20, 10, 30, 60, 50, 40])
  assert r['rho'] == pytest.approx(5 / 7) and r['n'] == 6 and r['exact']
  assert r['p_value'] == pytest.approx(98 / 720)
  assert policy_eval.spearman_exact([3, 2, 1], [1, 2, 3])['rho'] == pytest.approx(-1.0)
  assert policy_eval.spearman_exact([3, 2, 1], [1, 2, 3])['p_value'] == pytest.approx(2 / 6)
  # Ties share their mean rank: (1, 2.5, 2.5, 4) against 1..4.
  assert policy_eval.spearman_exact([1, 2, 2, 3], [1, 2, 3, 4])['rho'] == pytest.approx(
      0.9486833, abs=1e-6)
  # Above SPEARMAN_EXACT_MAX_N pairs, sampled orderings (seed 0), never p = 0.
  big = policy_eval.spearman_exact(list(range(12)), list(range(12)))
  assert not big['exact'] and big['rho'] == pytest.approx(1.0)
  assert big['p_value'] == pytest.approx(1 / (policy_eval.SPEARMAN_DRAWS + 1))
  with pytest.raises(ValueError, match='3 or more pairs, got 2'):
    policy_eval.spearman_exact([1, 2], [1, 2])
  with pytest.raises(ValueError, match='single value'):
    policy_eval.spearman_exact([1, 1, 1], [1, 2, 3])


def test_format_result():
  result = dict(success_rate=0.735, ci95_low=0.641, ci95_high=0.812, num_episodes=100,
                appearance='real', object_split='test')
  assert policy_eval.format_result(result) == (
      'grasp success: 73.5% (95% CI 64.1-81.2%, n=100) in real on test objects')
  result['world'] = {'real_gap': 1.0, 'real_seed': 2020}  # the project's world: not named
  assert policy_eval.format_result(result).endswith('in real on test objects')
  result['world'] = {'real_gap': 0.75, 'real_seed': 2020}
  assert policy_eval.format_result(result).endswith('in real (real_gap 0.75) on test objects')


def test_other_world_note_names_the_run_world_and_the_binding(tmp_path):
  config = str(tmp_path / 'operative_config.gin')
  with open(config, 'w') as f:
    f.write('RealAppearance.real_gap = 0.75\nGraspingEnv.max_steps = 20\n')
  gin.clear_config()
  note = policy_eval.other_world_note(config, 'real')
  assert 'real_gap 0.75' in note and 'real_gap 1.0' in note
  assert '--gin_bindings="RealAppearance.real_gap = 0.75"' in note
  assert policy_eval.other_world_note(config, 'sim') is None  # sim renders are not moved
  assert policy_eval.other_world_note(None, 'real') is None
  try:
    gin.bind_parameter('RealAppearance.real_gap', 0.75)  # measured in the run's own world
    assert policy_eval.other_world_note(config, 'real') is None
    gin.bind_parameter('RealAppearance.real_gap', 0.5)
    assert 'real_gap 0.5' in policy_eval.other_world_note(config, 'real')
  finally:
    gin.clear_config()
  with open(config, 'w') as f:  # a run of the project's world, or one that never rendered real
    f.write('GraspingEnv.max_steps = 20\n')
  assert policy_eval.other_world_note(config, 'real') is None


def test_grasp_distance_table_bins_successes_and_failures():
  from rl_cyclegan import specs  # pylint: disable=g-import-not-at-top
  def ep(distance, success):
    meta = {'success': success}
    if distance is not None:
      meta['grasp_distance'] = distance
    return specs.Episode(images=None, gripper_states=None, actions=None, rewards=None,
                         dones=None, metadata=meta)
  episodes = [ep(0.005, True), ep(0.019, False), ep(0.02, True), ep(0.05, False),
              ep(0.12, False), ep(None, True)]
  table = policy_eval.grasp_distance_table(episodes)
  assert table == {'bins_cm': [[0.0, 2.0], [2.0, 4.0], [4.0, 7.0], [7.0, None]],
                   'successes': [1, 1, 0, 0], 'failures': [1, 0, 1, 1]}
  assert policy_eval.format_grasp_distances(table) == (
      'grasp distance to the nearest object: 0-2 cm 1/2 ok, 2-4 cm 1/1 ok, 4-7 cm 0/1 ok, '
      '>=7 cm 0/1 ok')
  assert policy_eval.grasp_distance_table([ep(None, True)]) is None


def test_evaluate_counts_successes_with_fake_envs():
  made = []

  def make_env(appearance, object_split, seed):
    made.append((appearance, object_split))
    # Per env, episode lengths alternate 2 (success), 3 (failure): with 2 lockstep envs the
    # 6 episodes are 2, 2, 3, 3, 2, 2 steps long -> 4 successes.
    return test_rollout.CountingEnv([2, 3])

  stream = io.StringIO()
  result = policy_eval.evaluate(test_rollout.RecordingActionFn(), make_env, num_episodes=6,
                               num_envs=2, appearance='real', seed=3, progress_stream=stream,
                               return_episodes=True)
  assert made == [('real', 'test')] * 2
  assert result['num_episodes'] == 6 and result['num_successes'] == 4
  # Per scene j (not completion order): env 0 runs scenes 0, 2, 4 (2, 3, 2 steps), env 1 1, 3, 5.
  assert result['outcomes'] == [1, 1, 0, 0, 1, 1]
  assert result['success_rate'] == pytest.approx(4 / 6) and result['policy'] == 'recording'
  assert (result['ci95_low'], result['ci95_high']) == pytest.approx(
      policy_eval.wilson_interval(4, 6))
  assert all(e.metadata['object_split'] == 'test' for e in result['episodes'])
  # Episode j's scene seed is derive_seed(seed, j), whatever the env or num_envs.
  from rl_cyclegan.actors import collect  # pylint: disable=g-import-not-at-top
  assert sorted((e.metadata['episode_id'], e.metadata['seed']) for e in result['episodes']) == [
      (f'{j:05d}', collect.derive_seed(3, j)) for j in range(6)]
  assert 'evaluate (real, test): 6/6 episodes, 66.7% success' in stream.getvalue()
  assert 'ETA' in stream.getvalue()


def _write_run(root, gin_text, net):
  os.makedirs(os.path.join(root, 'train', 'ckpt'))
  with open(os.path.join(root, 'operative_config.gin'), 'w') as f:
    f.write(gin_text)
  tf.train.Checkpoint(q_network=net).save(os.path.join(root, 'train', 'ckpt', 'ckpt'))


def _write_small_run(root, extra_gin):
  """A run of the small network (gin/networks_small.gin plus ``extra_gin``); returns it."""
  gin.parse_config_file(SMALL_GIN, skip_unknown=True)
  net = q_network_lib.GraspingQNetwork()
  net.create_variables()
  gin.clear_config()
  with open(SMALL_GIN) as f:
    _write_run(root, f.read() + '\n' + extra_gin + '\n', net)
  return net


def test_load_policy_from_checkpoint(tmp_path):
  root = str(tmp_path / 'run')
  net = _write_small_run(root, 'train_eval.auto_descend_terminate = True')
  policy = policy_eval.load_policy_from_checkpoint(root, render_size=(64, 80), seed=0)
  assert isinstance(policy, policies.CEMPolicy) and policy.crop_size == (64, 64)
  assert policy.allowed_modes == policies.AUTO_DESCEND_MODES  # as training chose them
  for got, want in zip(policy.q_network.variables, net.variables):
    np.testing.assert_array_equal(got.numpy(), want.numpy())
  obs = {'image': np.zeros((2, 64, 80, 3), np.uint8), 'gripper_state': np.zeros((2, 2),
                                                                                np.float32)}
  assert policies.greedy_action_fn(policy)(obs).shape == (2, 8)


def test_load_policy_from_checkpoint_errors_name_the_file(tmp_path):
  root = str(tmp_path / 'run')
  os.makedirs(root)
  with pytest.raises(FileNotFoundError, match='operative_config.gin'):
    policy_eval.load_policy_from_checkpoint(root)
  with open(os.path.join(root, 'operative_config.gin'), 'w') as f:
    f.write('')
  with pytest.raises(FileNotFoundError, match=r'train/ckpt'):
    policy_eval.load_policy_from_checkpoint(root)
  gin.clear_config()
  # A checkpoint of the small network does not fit the default (QT-Opt width) network.
  small = q_network_lib.GraspingQNetwork(**q_network_lib.small_config())
  small.create_variables()
  shutil.rmtree(root)
  _write_run(root, '', small)
  with pytest.raises(ValueError, match=r'ckpt-1.*does not match'):
    policy_eval.load_policy_from_checkpoint(root)


def test_frame_recorder_keeps_the_first_frames_and_forwards_the_rest():
  calls = []
  def action_fn(observations, env_ids=None, time_steps=None):
    calls.append(env_ids)
    return np.zeros((len(observations['image']), 8), np.float32)
  action_fn.begin_episode = lambda *a: 'began'
  recorder = policy_eval.FrameRecorder(action_fn, limit=5)
  for i in range(3):
    obs = {'image': np.full((2, 4, 4, 3), i, np.uint8),
           'gripper_state': np.full((2, 2), i, np.float32)}
    assert recorder(obs, env_ids=[0, 1]).shape == (2, 8)
  assert calls == [[0, 1]] * 3 and recorder.begin_episode() == 'began'
  assert recorder.num_frames == 5

  class Measured:  # records what image_use hands the policy's measures
    def embedding_spread(self, images):
      self.images = images
      return 0.5

    def action_change(self, images, gripper_states):
      assert images is self.images
      self.gripper_states = gripper_states
      return 0.25

  policy = Measured()
  assert recorder.image_use(policy) == {'embedding_spread': 0.5, 'action_change': 0.25}
  assert list(policy.images[:, 0, 0, 0]) == [0, 0, 1, 1, 2]
  assert list(policy.gripper_states[:, 0]) == [0, 0, 1, 1, 2]
  assert policy_eval.FrameRecorder.format(recorder.image_use(policy)) == (
      'embedding spread 0.5000, action change 0.25')
  assert policy_eval.FrameRecorder(action_fn).image_use(policy) == {}  # no frames yet
  assert policy_eval.FrameRecorder.format({}) == ''
  blind = policy_eval.FrameRecorder.format({'embedding_spread': 0.0001, 'action_change': 0.0})
  assert blind.startswith('embedding spread 0.0001, action change 0.00 -- COLLAPSED IMAGE TOWER')
  from rl_cyclegan.pipelines import table1  # pylint: disable=g-import-not-at-top
  assert table1.COLLAPSED_SPREAD == policy_eval.COLLAPSED_SPREAD  # the table marks the same runs


def _run_tool(*flags):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, os.path.join(REPO, 'tools', 'evaluate.py'), *flags],
                        capture_output=True, text=True, env=env, timeout=300, check=False)


def test_tool_random_policy_writes_json(tmp_path):
  out = str(tmp_path / 'sub' / 'result.json')
  proc = _run_tool('--policy=random', '--num_episodes=2', '--num_envs=2',
                   '--render_size=32x40', f'--output_json={out}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'grasp success:' in proc.stdout and 'n=2) in sim on test objects' in proc.stdout
  with open(out) as f:
    result = json.load(f)
  assert result['num_episodes'] == 2 and result['policy'] == 'random'
  assert result['object_split'] == 'test' and 0.0 <= result['ci95_low'] <= result['ci95_high']
  assert sum(result['grasp_distance']['successes'] + result['grasp_distance']['failures']) == 2
  assert 'world' not in result  # measured in sim
  assert 'grasp distance to the nearest object: 0-2 cm' in proc.stdout
  assert not [p for p in os.listdir(tmp_path / 'sub') if p != 'result.json']  # no tmp left


def test_tool_checkpoint_dir_reports_spread_and_a_run_of_another_world(tmp_path):
  root = str(tmp_path / 'run')
  _write_small_run(root, 'RealAppearance.real_gap = 0.75')
  out = str(tmp_path / 'result.json')
  proc = _run_tool(f'--checkpoint_dir={root}', '--appearance=real', '--num_episodes=1',
                   '--num_envs=1', f'--output_json={out}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'binds the pseudo-real world real_gap 0.75' in proc.stderr
  assert 'in real on test objects' in proc.stdout  # measured in the project's world, as asked
  assert 'image use: embedding spread ' in proc.stdout and ', action change ' in proc.stdout
  with open(out) as f:
    result = json.load(f)
  assert result['embedding_spread'] > 0.0 and result['world']['real_gap'] == 1.0
  assert result['action_change'] >= 0.0


def test_tool_saved_model_in_fresh_process(tmp_path):
  from tf_agents.policies import policy_saver  # pylint: disable=g-import-not-at-top
  net = q_network_lib.GraspingQNetwork(crop_size=(32, 32), **q_network_lib.small_config())
  policy = policies.CEMPolicy(net, (32, 40), (32, 32), num_samples=16, seed=0)
  policy.set_exploration(1.0, 0.5)  # the tool evaluates greedily unless --explore
  saved = str(tmp_path / 'policy')
  policy_saver.PolicySaver(policy, batch_size=None).save(saved)
  out = str(tmp_path / 'result.json')
  proc = _run_tool(f'--saved_model={saved}', '--num_episodes=2', '--num_envs=2',
                   '--render_size=32x40', '--appearance=real', f'--output_json={out}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'in real on test objects' in proc.stdout
  with open(out) as f:
    result = json.load(f)
  assert result['policy'] == 'saved_model' and result['world']['real_gap'] == 1.0
  # --gin_bindings move a SavedModel's evaluation to another world too (they were once ignored).
  other = _run_tool(f'--saved_model={saved}', '--num_episodes=1', '--render_size=32x40',
                    '--appearance=real', '--gin_bindings=RealAppearance.real_gap = 0.5',
                    f'--output_json={out}')
  assert other.returncode == 0, other.stderr[-3000:]
  assert 'in real (real_gap 0.5) on test objects' in other.stdout
  with open(out) as f:
    assert json.load(f)['world']['real_gap'] == 0.5
  typo = _run_tool('--policy=random', '--num_episodes=1', '--render_size=32x40',
                   '--gin_bindings=RealAppearance.real_gapp = 0.5')
  assert typo.returncode != 0 and "--gin_bindings 'RealAppearance.real_gapp = 0.5'" in typo.stderr
  bad = _run_tool(f'--saved_model={saved}', '--num_episodes=1', '--render_size=64x80')
  assert bad.returncode != 0 and 'expects images of 32x40' in bad.stderr


def test_a_diverged_episode_is_evaluated_again_on_a_new_env():
  """The same scenes and the same result as without the divergence (a fixed evaluation set)."""
  def run(diverge):
    made = []

    def make_env(appearance, object_split, seed):
      made.append(seed)
      if diverge and len(made) == 1:
        return test_rollout.DivergingEnv(on_reset=2, at_step=1)
      return test_rollout.SeededLengthEnv()

    result = policy_eval.evaluate(test_rollout.RecordingActionFn(), make_env, num_episodes=7,
                                 num_envs=2, seed=5, progress_stream=io.StringIO(),
                                 return_episodes=True)
    return made, result

  made, diverged = run(True)
  _, clean = run(False)
  assert len(made) == 3 and made[2] == made[0]  # env 0 rebuilt with its construction seed
  assert diverged['num_successes'] == clean['num_successes'] and diverged['num_episodes'] == 7
  key = lambda e: e.metadata['episode_id']
  assert test_rollout._summary(sorted(diverged['episodes'], key=key)) == test_rollout._summary(
      sorted(clean['episodes'], key=key))


@pytest.mark.parametrize('run', ['results/sim_only_ratio2', 'results/table1/real_oracle/final_q'])
def test_committed_checkpoints_still_restore(run):
  """The Q-networks committed under results/ load into today's network (its checkpoint keys:
  a renamed or re-nested layer would orphan every earlier run's weights)."""
  gin.clear_config()
  loaded = policy_eval.load_run_policy(os.path.join(REPO, run), seed=0)
  q = loaded.policy.q_network
  assert q.normalization is None
  reader = tf.train.load_checkpoint(loaded.checkpoint)
  for attribute in ('_coord_projection', '_keypoint_conv'):  # the spatial network's own layers
    saved = reader.get_tensor(f'q_network/{attribute}/kernel/.ATTRIBUTES/VARIABLE_VALUE')
    np.testing.assert_array_equal(getattr(q, attribute).kernel.numpy(), saved)


FINAL_Q = os.path.join(REPO, 'results', 'table1_real_gap0.75', 'cyclegan_seed1', 'final_q')


def test_a_final_q_can_leave_its_generator_to_the_env():
  """generator_in_policy=False: the policy sees frames as given, and G comes back to translate
  them elsewhere (sim2real.CompositeEnv); with it, G stays in the policy."""
  gin.clear_config()
  inside = policy_eval.load_run_policy(FINAL_Q, generator_key='G_sim2real', seed=0)
  gin.clear_config()
  outside = policy_eval.load_run_policy(FINAL_Q, generator_key='G_sim2real', seed=0,
                                        generator_in_policy=False)
  assert inside.translator is None and inside.policy._frame_transform is not None  # pylint: disable=protected-access
  assert outside.policy._frame_transform is None  # pylint: disable=protected-access
  frames = np.random.default_rng(0).integers(0, 256, (1, 64, 80, 3), dtype=np.uint8)
  np.testing.assert_array_equal(outside.translator.translate(frames),
                                inside.policy._frame_transform.translate(frames))  # pylint: disable=protected-access


def test_tool_translated_regions_evaluates_in_a_composite_world(tmp_path):
  out = str(tmp_path / 'composite.json')
  base = [f'--checkpoint_dir={FINAL_Q}', '--generator_key=G_sim2real', '--num_episodes=1',
          '--num_envs=1', '--gin_bindings=RealAppearance.real_gap = 0.75']
  proc = _run_tool(*base, '--appearance=real', '--translated_regions=robot',
                   '--region_dilation=2', '--translated_ring_only', '--object_contrast_gain=1.5',
                   '--colour_from_g=objects,background', f'--output_json={out}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert ('composite: the real render with robot from G_sim2real(sim render) of the same '
          'state (only the ring around them); objects, background in its colours') in proc.stdout
  with open(out) as f:
    result = json.load(f)
  assert result['translated_regions'] == ['robot'] and result['region_dilation'] == 2
  assert result['object_contrast_gain'] == 1.5 and result['translated_ring_only'] is True
  assert result['colour_from_g'] == ['objects', 'background']
  assert result['appearance'] == 'real' and result['num_episodes'] == 1
  for flags, message in [(['--appearance=sim', '--translated_regions=background'],
                          'needs --checkpoint_dir, --generator_key'),
                         (['--appearance=real', '--translated_regions=sky'],
                          "expected 'none' or a comma-separated subset of objects, robot"),
                         (['--appearance=real', '--translated_regions=none',
                           '--region_dilation=-1'], 'must be >= 0'),
                         (['--appearance=real', '--region_dilation=2'],
                          'grows the masks of --translated_regions; give that too'),
                         (['--appearance=real', '--object_contrast_gain=1.5'],
                          'changes the real render of --translated_regions; give that too'),
                         (['--appearance=real', '--translated_regions=none',
                           '--object_contrast_gain=-2'], '--object_contrast_gain must be >= 0'),
                         (['--appearance=real', '--translated_regions=objects',
                           '--translated_ring_only'], 'give both (a dilation > 0, no background)'),
                         (['--appearance=real', '--translated_regions=background',
                           '--region_dilation=2', '--translated_ring_only'],
                          'give both (a dilation > 0, no background)'),
                         (['--appearance=real', '--colour_from_g=objects'],
                          'recolours the real render of --translated_regions; give that too'),
                         (['--appearance=real', '--translated_regions=none',
                           '--colour_from_g=sky'], "--colour_from_g 'sky': expected"),
                         (['--appearance=real', '--translated_regions=robot',
                           '--colour_from_g=objects,robot'], "share ['robot']; a region is")]:
    proc = _run_tool(*base, *flags)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
