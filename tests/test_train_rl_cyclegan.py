"""Tests of the RL-CycleGAN train/eval loop, its binary, its gin files and the final-Q phase.

Tiny sizes: 32x40 renders, 32x32 crops, 8-filter networks, 3-step episodes, 2 + 2 batches.
"""

import glob
import importlib.util
import json
import os
import shutil

import gin
import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan import configurables  # noqa: F401  (registers every configurable)
from rl_cyclegan.data import episodes as episodes_lib
from rl_cyclegan.data import translation
from rl_cyclegan.evaluation import policy_eval
from rl_cyclegan.replay import buffers as replay_lib
from rl_cyclegan.train import runner
from rl_cyclegan.evaluation import segmentation_set
from rl_cyclegan.pipelines import train_qtopt
from rl_cyclegan.pipelines import train_rl_cyclegan

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIN_DIR = os.path.join(REPO, 'gin')
TINY = [
    'GraspingQNetwork.stem_filters = 8', 'GraspingQNetwork.tower_filters = (8,)',
    'GraspingQNetwork.state_action_fc_units = (16,)', 'GraspingQNetwork.merged_filters = (8,)',
    'GraspingQNetwork.final_filters = (8,)', 'GraspingQNetwork.fc_units = (8,)',
    'UNetGenerator.filters = (8, 16)', 'MultiScaleDiscriminator.filters = (8, 16)',
    'GraspingEnv.max_steps = 3',
]
# Eager train steps and CEM (tests/conftest.py), except in the tests marked traced: the
# end-to-end run and the MirroredStrategy step (the bf16 step traced: test_rl_cyclegan_learner).
pytestmark = pytest.mark.usefixtures('eager_train_steps')
RENDER, CROP = (32, 40), (32, 32)
# Buffers of a few hundred transitions: these runs add tens. The 50,000-transition defaults
# cost ~1.4 s each to allocate in an eager test (AMD EPYC, session 19), for nothing.
SMALL_REPLAY = dict(sim_replay_capacity=512, real_replay_capacity=512, sim_log_capacity=512)
SMALL_RUN = dict(render_size=RENDER, crop_size=CROP, num_objects=2, num_envs=1,
                 batch_per_domain=2, min_replay_transitions=4, initial_collect_episodes=1,
                 checkpoint_interval=1, summary_interval=1, log_interval=1,
                 paired_set_num_states=4, num_eval_episodes=2, **SMALL_REPLAY)


def _load_tool(name):
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, 'tools', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module

def _train(root, **kwargs):
  """``train_rl_cyclegan.train_eval`` with flat keyword arguments: shared settings go to their group."""
  settings, rest = runner.Settings.with_overrides(**kwargs)
  return train_rl_cyclegan.train_eval(root, settings=settings, **rest)


def _train_qtopt(root, **kwargs):
  settings, rest = runner.Settings.with_overrides(**kwargs)
  return train_qtopt.train_eval(root, settings=settings, **rest)



def _bind(extra=(), gin_file=None):
  gin.clear_config()
  if gin_file:
    gin.add_config_file_search_path(GIN_DIR)
    gin.parse_config_file(os.path.join(GIN_DIR, gin_file))
  gin.parse_config(list(TINY) + list(extra))


def _real_dir(path, size=RENDER, name='episodes-00000-of-00001.tfrecord', num=3):
  """A directory of ``num`` synthetic 4-step episodes (the off-policy "real" data)."""
  os.makedirs(path, exist_ok=True)
  with episodes_lib.EpisodeWriter(os.path.join(path, name)) as writer:
    for i in range(num):
      writer.write(episodes_lib.synthetic_episode(4, size, seed=i))
  return str(path)


def test_a_run_with_only_its_weights_copy_resumes_with_fresh_optimizers(tmp_path):
  """Checkpointing.weights_copy keeps train/weights (everything but the optimizers): a run
  whose full checkpoints are gone (a lost machine; table1 commits this copy) resumes its step,
  networks and counters from it, and its optimizers start again at step 0."""
  real = _real_dir(tmp_path / 'real')
  root = str(tmp_path / 'run')
  run = dict(real_episode_dir=real, eval_policies=(), image_summary_interval=0,
             scene_metrics_interval=0, gradient_norms_interval=0, **SMALL_RUN)
  _bind()
  first = _train(root, num_train_steps=2, weights_copy=True, **run)
  assert first['final_step'] == 2 and not first['resumed_weights_only']
  full = tf.train.latest_checkpoint(os.path.join(root, 'train', 'ckpt'))
  weights = tf.train.latest_checkpoint(os.path.join(root, 'train', 'weights'))
  assert full.endswith('ckpt-2') and weights.endswith('ckpt-2')
  full_names = dict(tf.train.list_variables(full))
  weight_names = dict(tf.train.list_variables(weights))
  optimizer_names = {n for n in full_names if '_optimizer' in n.split('/')[0]}
  assert optimizer_names and not optimizer_names & set(weight_names)
  assert set(weight_names) == set(full_names) - optimizer_names  # networks, targets, counters
  iterations = sorted(n for n in optimizer_names if n.split('/')[1] == '_iterations')
  assert len(iterations) == 6  # G, F, D_X, D_Y, Q_sim, Q_real
  before = {n: tf.train.load_variable(weights, n) for n in weight_names}

  shutil.rmtree(os.path.join(root, 'train', 'ckpt'))  # only the weights copy is left
  _bind()
  second = _train(root, num_train_steps=3, weights_copy=True, **run)
  assert second['resumed'] and second['resumed_weights_only']
  assert second['start_step'] == 2 and second['final_step'] == 3
  assert second['env_steps'] >= before['env_steps/.ATTRIBUTES/VARIABLE_VALUE'] > 0  # env steps
  resumed = tf.train.latest_checkpoint(os.path.join(root, 'train', 'ckpt'))
  assert resumed.endswith('ckpt-3')
  for name in iterations:  # one step since the fresh start, not three
    assert int(tf.train.load_variable(resumed, name)) == 1, name
  g_kernel = next(n for n, shape in weight_names.items()
                  if n.startswith('G_sim2real/') and len(shape) == 4)  # a conv kernel: trained on
  assert not np.array_equal(tf.train.load_variable(resumed, g_kernel), before[g_kernel])

  # Without the copy (the default) nothing is written there.
  _bind()
  _train(str(tmp_path / 'plain'), num_train_steps=1, **run)
  assert not os.path.exists(tmp_path / 'plain' / 'train' / 'weights')


@pytest.mark.traced  # the binaries' path: train steps and CEM as tf.functions
def test_smoke_run_resume_evaluate_and_final_q(tmp_path, summary_tags, eagerly):
  real = _real_dir(tmp_path / 'real')
  root = str(tmp_path / 'run')
  _bind()
  first = _train(
      root, real_episode_dir=real, num_train_steps=2, eval_interval=2,
      image_summary_interval=2, scene_metrics_interval=2, gradient_norms_interval=2,
      # A collapse monitor that fires at once (every q_std < 1 is "uniform"), to see the alarm.
      q_collapse_min_std=1.0, q_collapse_max_rl_scene=1e9, q_collapse_patience=1,
      q_collapse_min_step=0, q_collapse_warmup_steps=0, **SMALL_RUN)
  assert first['final_step'] == 2 and not first['resumed'] and first['env_steps'] > 0
  assert first['q_collapse_steps'] == 2
  assert sorted(os.listdir(os.path.join(root, 'train', 'ckpt'))) == [
      'checkpoint', 'ckpt-1.data-00000-of-00001', 'ckpt-1.index',
      'ckpt-2.data-00000-of-00001', 'ckpt-2.index']
  assert os.path.isfile(os.path.join(root, 'paired_set.npz'))
  assert glob.glob(os.path.join(root, 'replay', 'sim', 'sim-*.tfrecord'))

  train_tags = summary_tags(os.path.join(root, 'train'))
  for field in ('total', 'gan_generator', 'gan_discriminator', 'cycle', 'rl_sim', 'rl_real',
                'rl_scene'):
    assert train_tags[f'losses/{field}'] == 'scalars', field
  for field in ('q_x', 'q_x_prime', 'q_x_double', 'q_y', 'q_y_prime', 'q_y_double', 'q_std'):
    assert train_tags[f'q/{field}'] == 'scalars', field
  assert train_tags['rate/train_steps_per_sec'] == 'scalars'
  assert train_tags['images/sim2real'] == 'images'
  assert train_tags['images/real2sim'] == 'images'
  assert train_tags['scene/generator/mae'] == 'scalars'
  # Where L_RL-scene pulls G and F: with them and with the identity (rl_scene_pull).
  for field in ('own', 'identity', 'critic_disagreement'):
    assert train_tags[f'scene/rl_scene_pull/{field}'] == 'scalars', field
  # Where each loss pushes G(x), region by region (loss_direction): every term G trains with.
  for term in ('gan_generator', 'cycle', 'rl_scene', 'all'):
    assert train_tags[f'scene/loss_direction/{term}/norm'] == 'scalars', term
    assert train_tags[f'scene/weight_step/{term}/norm'] == 'scalars', term
    for region in ('objects', 'robot', 'background'):
      assert train_tags[f'scene/loss_direction/{term}/{region}/colour_toward_real'] == (
          'scalars'), (term, region)
    for region in ('objects', 'robot'):  # does the term draw them louder (session 42)
      for view in ('loss_direction', 'weight_step'):
        assert train_tags[f'scene/{view}/{term}/{region}/contrast_change'] == 'scalars', (
            view, term, region)
  # How hard each weighted loss pulls on each network (learner.loss_gradient_norms).
  for tag in ('G/rl_scene', 'G/cycle', 'G/gan_generator', 'G/all', 'D_Y/gan_discriminator',
              'Q_real/rl'):
    assert train_tags[f'gradients/{tag}'] == 'scalars', tag
  assert train_tags['q_collapse'] == 'text' and train_tags['q/collapse_suspected'] == 'scalars'
  eval_tags = summary_tags(os.path.join(root, 'eval'))
  names = ('Q_sim/sim', 'Q_real_G/sim', 'Q_real/real')
  assert {f'success_rate/{n}' for n in names} <= set(eval_tags)
  with open(os.path.join(root, 'eval', 'eval_00000002.json')) as f:
    result = json.load(f)
  assert result['step'] == 2 and sorted(result['results']) == sorted(names)
  assert result['results']['Q_real/real']['appearance'] == 'real'
  assert result['results']['Q_real/real']['num_episodes'] == 2
  with open(os.path.join(root, 'operative_config.gin')) as f:
    config = f.read()
  assert 'GraspingQNetwork.crop_size = (32, 32)' in config
  assert 'UNetGenerator.filters = (8, 16)' in config

  # Restart: the step count continues (eagerly: the first run traced the step).
  _bind()
  with eagerly():
    second = _train(
        root, real_episode_dir=real, num_train_steps=3, eval_policies=(),
        image_summary_interval=0, scene_metrics_interval=0, **SMALL_RUN)
  assert second['resumed'] and second['start_step'] == 2 and second['final_step'] == 3

  # tools/evaluate.py restores Q_real from the run's checkpoint.
  gin.clear_config()
  output = str(tmp_path / 'eval.json')
  assert _load_tool('evaluate').main([
      '--checkpoint_dir', root, '--q_network_key', 'Q_real', '--appearance', 'real',
      '--render_size', '32x40', '--num_episodes', '1', '--num_envs', '1',
      '--output_json', output]) == 0
  with open(output) as f:
    assert json.load(f)['num_episodes'] == 1

  # Final-Q phase: train_qtopt with the frozen G of this run, equal parts sim and real.
  gin.clear_config()
  gin.add_config_file_search_path(GIN_DIR)
  gin.parse_config_file(os.path.join(GIN_DIR, 'final_q.gin'))
  gin.parse_config(TINY)
  # G translates whole frames once: the sim log into a cached copy, on-policy and evaluation
  # frames in the sim-to-real env.
  final_root = str(tmp_path / 'final_q')
  final = _train_qtopt(
      final_root, generator_checkpoint=os.path.join(root, 'train', 'ckpt'),
      real_episode_dir=real, sim_episode_dir=_real_dir(tmp_path / 'sim_log', num=2),
      render_size=RENDER, crop_size=CROP, num_objects=2, num_envs=1, batch_size=4,
      min_replay_transitions=4, initial_collect_episodes=1, num_train_steps=1,
      eval_interval=1, num_eval_episodes=1, eval_appearances=('sim',), **SMALL_REPLAY)
  assert final['final_step'] == 1 and final['evals'][1]['sim']['num_episodes'] == 1
  cache = os.path.join(final_root, train_qtopt.TRANSLATED_SIM_LOG_SUBDIR)
  generator = train_qtopt.load_frozen_generator(os.path.join(root, 'train', 'ckpt'),
                                                crop_size=CROP)
  fingerprint = translation.generator_fingerprint(generator)
  assert translation.check_translated_dir(cache, fingerprint)
  # tools/evaluate.py on that run translates whole frames too (from the run's config).
  gin.clear_config()
  policy = policy_eval.load_policy_from_checkpoint(final_root, render_size=RENDER,
                                                  generator_key='G_sim2real')
  assert policy._frame_transform is not None and policy.image_transform is None  # pylint: disable=protected-access
  assert policy._frame_transform.fingerprint == fingerprint  # pylint: disable=protected-access
  # Another G in front of the same final Q (evaluate.py --generator_checkpoint): a G with
  # other weights, saved under the same key, is the one used; the run's own is not.
  for v in generator.variables:
    v.assign(v + 0.01)
  other = tf.train.Checkpoint(G_sim2real=generator).save(str(tmp_path / 'other_g' / 'g'))
  gin.clear_config()
  swapped = policy_eval.load_policy_from_checkpoint(final_root, generator_key='G_sim2real',
                                                   generator_checkpoint=other)
  assert swapped._frame_transform.fingerprint == translation.generator_fingerprint(generator)  # pylint: disable=protected-access
  assert swapped._frame_transform.fingerprint != fingerprint  # pylint: disable=protected-access
  gin.clear_config()
  with pytest.raises(ValueError, match='needs generator_key'):
    policy_eval.load_policy_from_checkpoint(final_root, generator_checkpoint=other)
  gin.clear_config()
  with pytest.raises(FileNotFoundError, match='nowhere'):
    policy_eval.load_policy_from_checkpoint(final_root, generator_key='G_sim2real',
                                            generator_checkpoint=str(tmp_path / 'nowhere'))


@pytest.mark.parametrize('gin_file, strategy, replicas, mixed_precision', [
    ('rl_cyclegan_ablation_gan.gin', 'default', 1, 'force'),  # bf16 on any CPU
    # conftest: two logical CPUs; ~90 s, so CI runs it after `make test` (.ci/run)
    pytest.param('rl_cyclegan_ablation_cyclegan.gin', 'mirrored', 2, False,
                 marks=[pytest.mark.slow, pytest.mark.traced]),
], ids=['gan_bfloat16', 'cyclegan_mirrored'])
def test_ablation_configs_run_a_step(tmp_path, summary_tags, gin_file, strategy, replicas,
                                     mixed_precision):
  real = _real_dir(tmp_path / 'real')
  _bind([f'RLCycleGANLearner.mixed_precision = {mixed_precision!r}'], gin_file=gin_file)
  result = _train(
      str(tmp_path / 'run'), real_episode_dir=real, num_train_steps=1, strategy=strategy,
      eval_policies=(), image_summary_interval=1, scene_metrics_interval=1,
      collect_steps_per_train_step=1.0, **SMALL_RUN)
  assert result['final_step'] == 1 and result['replicas'] == replicas
  assert result['compute_dtype'] == ('bfloat16' if mixed_precision else 'float32')
  tags = summary_tags(os.path.join(str(tmp_path / 'run'), 'train'))
  assert tags['images/sim2real'] == 'images'
  assert tags['gradients/G/gan_generator'] == 'scalars'  # at the last step, by default
  # Where each loss pushes G(x), under this strategy and precision (loss_direction).
  assert tags['scene/loss_direction/gan_generator/norm'] == 'scalars'
  assert tags['scene/weight_step/all/background/share'] == 'scalars'
  if gin_file == 'rl_cyclegan_ablation_gan.gin':  # no F: no real->sim grid, no cycle
    assert 'images/real2sim' not in tags and 'q/q_x_double' not in tags
    assert 'gradients/F/all' not in tags and 'gradients/G/cycle' not in tags
    assert not [n for n, _ in tf.train.list_variables(result['checkpoint'])
                if n.startswith('F_real2sim/')]
  else:
    assert 'images/real2sim' in tags


def test_graspgan_config_runs_with_the_segmentation_set(tmp_path, summary_tags):
  """gin/table1_graspgan.gin at tiny sizes: the GAN row plus G's mask loss for 2 steps."""
  real = _real_dir(tmp_path / 'real')
  root = tmp_path / 'run'
  # No sim log here (table1.py passes one): the sim half is on-policy only, as in Fig. 6.
  no_log = ['train_rl_cyclegan.segmentation_set_num_states = 6', 'Replay.sim_log_fraction = None']
  _bind(no_log, gin_file='table1_graspgan.gin')
  result = _train(
      str(root), real_episode_dir=real, num_train_steps=2, eval_policies=(),
      image_summary_interval=0, scene_metrics_interval=0, **SMALL_RUN)
  assert result['final_step'] == 2
  assert result['segmentation_set'] == str(root / 'segmentation_set.npz')
  data = segmentation_set.load_segmentation_set(result['segmentation_set'], RENDER)
  assert len(data['images']) == 6 and segmentation_set.metadata(data)['object_split'] == 'train'
  assert not (root / 'paired_set.npz').exists()  # no evaluation set was needed here
  assert summary_tags(str(root / 'train'))['losses/segmentation'] == 'scalars'
  assert summary_tags(str(root / 'train'))['gradients/G/segmentation'] == 'scalars'
  names = [n for n, _ in tf.train.list_variables(result['checkpoint'])]
  assert [n for n in names if n.startswith('G_sim2real/mask_conv/')]  # G has its mask head
  assert not [n for n in names if n.startswith('F_real2sim/')]  # the GAN setting: no F
  # Resuming reuses the set (not rebuilt) and restores the head.
  mtime = os.path.getmtime(result['segmentation_set'])
  _bind(no_log, gin_file='table1_graspgan.gin')
  again = _train(
      str(root), real_episode_dir=real, num_train_steps=3, eval_policies=(),
      image_summary_interval=0, scene_metrics_interval=0, **SMALL_RUN)
  assert again['resumed'] and again['final_step'] == 3
  assert os.path.getmtime(result['segmentation_set']) == mtime


def test_bad_real_episode_dir_fails_before_anything_is_built(tmp_path):
  root = tmp_path / 'run'
  _bind()
  with pytest.raises(ValueError, match='real_episode_dir is required'):
    _train(str(root), **SMALL_RUN)
  real = _real_dir(tmp_path / 'real')
  _real_dir(real, size=(24, 40), name='episodes-wrong-size.tfrecord', num=1)
  with pytest.raises(episodes_lib.EpisodeFormatError, match='episodes-wrong-size.tfrecord'):
    _train(str(root), real_episode_dir=real, **SMALL_RUN)
  assert not root.exists()  # validated before any directory, network or env was made


def test_non_finite_loss_stops_naming_it_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
  real = _real_dir(tmp_path / 'real')
  root = str(tmp_path / 'run')
  original = replay_lib.MixedSampler.sample
  calls = []

  def sample_with_nan_reward_from_the_second_batch(self, training=True):
    sim, real_batch = original(self, training)
    calls.append(1)
    if len(calls) >= 2:
      real_batch = real_batch._replace(reward=real_batch.reward * np.nan)  # [B] NaN
    return sim, real_batch

  monkeypatch.setattr(replay_lib.MixedSampler, 'sample',
                      sample_with_nan_reward_from_the_second_batch)
  _bind()
  with pytest.raises(train_rl_cyclegan.NonFiniteLossError,
                     match=r"loss 'rl_(sim|real)' is not finite.*train step 2.*ckpt-1"):
    _train(root, real_episode_dir=real, num_train_steps=3,
                                 eval_policies=(), image_summary_interval=0,
                                 scene_metrics_interval=0, **SMALL_RUN)
  ckpt_dir = os.path.join(root, 'train', 'ckpt')
  assert tf.train.latest_checkpoint(ckpt_dir).endswith('ckpt-1')
  assert not glob.glob(os.path.join(ckpt_dir, 'ckpt-2*'))
  generator = train_qtopt.load_frozen_generator(ckpt_dir, crop_size=CROP)  # still loads
  assert all(np.isfinite(v.numpy()).all() for v in generator.variables)


def test_unknown_gin_binding_fails_before_any_work(tmp_path, capsys):
  tool = _load_tool('train_rl_cyclegan')
  root = tmp_path / 'run'
  assert tool.main(['--root_dir', str(root),
                    '--gin_file', os.path.join(GIN_DIR, 'rl_cyclegan.gin'),
                    '--gin_bindings', 'train_rl_cyclegan.num_trian_steps = 3']) == 2
  assert 'num_trian_steps' in capsys.readouterr().err
  assert not root.exists()


def _critic_source(path, seed):
  """A QT-Opt-style checkpoint holding a tiny Q-network under 'q_network'. Returns its prefix."""
  from rl_cyclegan.networks import q_network as q_network_lib  # pylint: disable=g-import-not-at-top
  tf.random.set_seed(seed)
  net = q_network_lib.GraspingQNetwork(crop_size=CROP, name='Q')
  net.create_variables()
  checkpoint = tf.train.Checkpoint(q_network=net)
  _ = checkpoint.save_counter  # as in a CheckpointManager's checkpoint
  return checkpoint.write(str(path)), net


def test_sim_log_and_critic_warm_start(tmp_path, summary_scalars):
  real = _real_dir(tmp_path / 'real')
  sim_log = _real_dir(tmp_path / 'sim_log', num=4)  # 4 episodes x 4 steps = 16 transitions
  root = str(tmp_path / 'run')
  _bind()
  source, source_net = _critic_source(tmp_path / 'q_source', seed=1)
  run = dict(real_episode_dir=real, sim_episode_dir=sim_log, sim_log_fraction=0.5,
             eval_policies=(), image_summary_interval=0, scene_metrics_interval=0,
             collect_steps_per_train_step=1.0, **SMALL_RUN)
  first = _train(root, num_train_steps=0, critic_init_checkpoint=source,
                                       **run)
  saved = dict(tf.train.list_variables(first['checkpoint']))
  reader = tf.train.load_checkpoint(first['checkpoint'])
  names = [n for n in saved if '.ATTRIBUTES/VARIABLE_VALUE' in n and '_optimizer' not in n]
  for prefix in ('Q_sim/', 'Q_real/', 'Q_sim_target_1/', 'Q_real_target_2/'):
    values = sorted((n, reader.get_tensor(n)) for n in names if n.startswith(prefix))
    assert len(values) == len(source_net.variables), prefix
    # Same values as the source network, variable by variable (matched by shape and sum).
    got = sorted(float(np.sum(v)) for _, v in values)
    want = sorted(float(np.sum(v.numpy())) for v in source_net.variables)
    np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=prefix)

  # A resumed run keeps its own critics: another init checkpoint is not applied.
  other, other_net = _critic_source(tmp_path / 'q_other', seed=2)
  _bind()
  second = _train(root, num_train_steps=2, critic_init_checkpoint=other,
                                        **run)
  assert second['resumed'] and second['final_step'] == 2
  reader = tf.train.load_checkpoint(second['checkpoint'])
  q_sim = sorted(float(np.sum(reader.get_tensor(n))) for n in names if n.startswith('Q_sim/'))
  assert not np.allclose(q_sim, sorted(float(np.sum(v.numpy())) for v in other_net.variables))
  # Both sim buffers were in use: the log's 16 transitions and the on-policy ones.
  log_sizes = summary_scalars(os.path.join(root, 'train'), 'replay/sim_log_transitions')
  assert log_sizes and set(log_sizes.values()) == {16.0}


def test_q_real_has_its_own_warm_start(tmp_path):
  """real_critic_init_checkpoint starts Q_real (Table 1's critics'-start lever: the Sim-Only Q
  fine-tuned on the real log); critic_init_checkpoint then starts Q_sim only."""
  real = _real_dir(tmp_path / 'real')
  _bind()
  sim_source, sim_net = _critic_source(tmp_path / 'q_sim_source', seed=1)
  real_source, real_net = _critic_source(tmp_path / 'q_real_source', seed=2)
  result = _train(str(tmp_path / 'run'), num_train_steps=0, critic_init_checkpoint=sim_source,
                  real_critic_init_checkpoint=real_source, real_episode_dir=real,
                  eval_policies=(), image_summary_interval=0, scene_metrics_interval=0,
                  **SMALL_RUN)
  reader = tf.train.load_checkpoint(result['checkpoint'])
  names = [n for n, _ in tf.train.list_variables(result['checkpoint'])
           if '.ATTRIBUTES/VARIABLE_VALUE' in n and '_optimizer' not in n]

  def sums(prefix):
    return sorted(float(np.sum(reader.get_tensor(n))) for n in names if n.startswith(prefix))

  def net_sums(net):
    return sorted(float(np.sum(v.numpy())) for v in net.variables)

  for prefix, net in (('Q_sim/', sim_net), ('Q_sim_target_2/', sim_net), ('Q_real/', real_net),
                      ('Q_real_target_1/', real_net), ('Q_real_target_2/', real_net)):
    np.testing.assert_allclose(sums(prefix), net_sums(net), rtol=1e-6, err_msg=prefix)
  assert not np.allclose(sums('Q_real/'), net_sums(sim_net))


def test_critic_warm_start_names_a_missing_checkpoint(tmp_path):
  _bind()
  with pytest.raises(FileNotFoundError, match='no checkpoint at .*nowhere'):
    _train(
        str(tmp_path / 'run'), real_episode_dir=_real_dir(tmp_path / 'real'), num_train_steps=0,
        critic_init_checkpoint=str(tmp_path / 'nowhere'), eval_policies=(),
        image_summary_interval=0, scene_metrics_interval=0, **SMALL_RUN)


def test_a_non_chief_worker_runs_in_its_own_directory_under_the_run():
  from rl_cyclegan import run_dir  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.train import loop  # pylint: disable=g-import-not-at-top
  chief, other = loop.WorkerRole(0, 2), loop.WorkerRole(1, 2)
  assert chief.is_chief and not other.is_chief
  assert train_rl_cyclegan.worker_root_dir('/runs/a', chief) == '/runs/a'
  own = train_rl_cyclegan.worker_root_dir('/runs/a', other)
  assert own == os.path.join('/runs/a', 'workers', 'worker-1')
  assert train_rl_cyclegan.worker_root_dir(own, other) == own  # idempotent
  assert loop.worker_role(tf.distribute.get_strategy()) == loop.WorkerRole()
  gin.clear_config()
  assert train_rl_cyclegan.worker_root_dir('/runs/a') == '/runs/a'  # strategy not bound
  gin.parse_config(["train_rl_cyclegan.strategy = 'mirrored'"])
  assert train_rl_cyclegan.worker_root_dir('/runs/a') == '/runs/a'
  gin.clear_config()
  with pytest.raises(ValueError, match='chief'):
    run_dir.worker_dir('/runs/a', 0)
