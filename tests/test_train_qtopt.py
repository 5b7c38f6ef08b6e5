"""Tests of the QT-Opt train/eval loop, its binary and its gin files (tiny sizes)."""

import glob
import importlib.util
import json
import os

import gin
import pytest

from rl_cyclegan import configurables  # noqa: F401  (registers GraspingEnv, networks, ...)
from rl_cyclegan.actors import policies  # noqa: F401  (CEMPolicy)
from rl_cyclegan.data import episodes as episodes_lib
from rl_cyclegan.learners import qtopt  # noqa: F401  (QTOptLearner)
from rl_cyclegan.train import runner
from rl_cyclegan.pipelines import train_qtopt

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIN_DIR = os.path.join(REPO, 'gin')
TINY = [
    'GraspingQNetwork.stem_filters = 8', 'GraspingQNetwork.tower_filters = (8,)',
    'GraspingQNetwork.state_action_fc_units = (16,)', 'GraspingQNetwork.merged_filters = (8,)',
    'GraspingQNetwork.final_filters = (8,)', 'GraspingQNetwork.fc_units = (8,)',
    'GraspingEnv.max_steps = 3',
]
# Eager train steps and CEM (tests/conftest.py), except in the test marked traced: tracing them
# is most of these tests' time (the module took ~100 s traced, ~36 s eager, on a shared machine).
pytestmark = pytest.mark.usefixtures('eager_train_steps')
SMALL_RUN = dict(render_size=(32, 40), crop_size=(32, 32), num_objects=2, num_envs=1,
                 batch_size=4, min_replay_transitions=4, checkpoint_interval=1,
                 summary_interval=1, log_interval=1,
                 # A few hundred transitions: these runs add tens; the defaults (50,000-120,000)
                 # cost up to ~1 s each to allocate, for nothing.
                 sim_replay_capacity=512, real_replay_capacity=512, sim_log_capacity=512)


def _load_tool(name):
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, 'tools', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module

def _train(root, **kwargs):
  """``train_qtopt.train_eval`` with flat keyword arguments: shared settings go to their group."""
  settings, rest = runner.Settings.with_overrides(**kwargs)
  return train_qtopt.train_eval(root, settings=settings, **rest)



def _write_log(directory, num_episodes=3, num_steps=4):
  """An episode directory of synthetic 32x40 episodes (num_episodes * num_steps transitions)."""
  directory.mkdir()
  with episodes_lib.EpisodeWriter(directory / 'episodes-00000-of-00001.tfrecord') as writer:
    for i in range(num_episodes):
      writer.write(episodes_lib.synthetic_episode(num_steps, (32, 40), seed=i))
  return directory


def _bind(extra=()):
  gin.clear_config()
  gin.parse_config(list(TINY) + list(extra))


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(GIN_DIR, 'qtopt_*.gin'))),
                         ids=os.path.basename)
def test_qtopt_gin_files_parse(path):
  gin.add_config_file_search_path(GIN_DIR)
  gin.parse_config_file(path)
  gin.finalize()


def test_unknown_gin_binding_fails_before_any_work(tmp_path, capsys):
  tool = _load_tool('train_qtopt')
  root = tmp_path / 'run'
  assert tool.main(['--root_dir', str(root),
                    '--gin_bindings', 'train_eval.num_trian_steps = 3']) == 2
  assert 'num_trian_steps' in capsys.readouterr().err
  assert not root.exists()  # nothing was built or written


@pytest.mark.traced  # the binary's path: the train step and CEM as tf.functions
def test_sim_run_writes_artifacts_resumes_and_evaluates(tmp_path, summary_tags, summary_scalars,
                                                        eagerly):
  root = str(tmp_path / 'run')
  _bind(['QTOptLearner.learning_rate = 1e-3', 'QTOptLearner.learning_rate_boundaries = (1,)'])
  first = _train(
      root, initial_collect_episodes=1, num_train_steps=2, eval_interval=2,
      num_eval_episodes=1, eval_appearances=('sim',), replay_digests=True, **SMALL_RUN)
  assert first['final_step'] == 2 and not first['resumed']
  assert sorted(os.listdir(os.path.join(root, 'train', 'ckpt'))) == [
      'checkpoint', 'ckpt-1.data-00000-of-00001', 'ckpt-1.index',
      'ckpt-2.data-00000-of-00001', 'ckpt-2.index']
  assert glob.glob(os.path.join(root, 'train', 'events.out.tfevents.*'))
  assert glob.glob(os.path.join(root, 'eval', 'events.out.tfevents.*'))
  tags = summary_tags(os.path.join(root, 'train'))
  assert {'loss/loss', 'q/mean_q', 'train/learning_rate', 'rate/train_steps_per_sec'} <= set(tags)
  # Step decay after step 1: the update that made step 2 ran at 1e-4.
  assert summary_scalars(os.path.join(root, 'train'), 'train/learning_rate') == pytest.approx(
      {1: 1e-3, 2: 1e-4})
  with open(os.path.join(root, 'eval', 'eval_00000002.json')) as f:
    result = json.load(f)
  assert result['step'] == 2 and 0.0 <= result['results']['sim']['success_rate'] <= 1.0
  assert result['results']['sim']['embedding_spread'] > 0.0  # a fresh tower tells frames apart
  assert result['results']['sim']['action_change'] >= 0.0
  assert {'embedding_spread/sim', 'action_change/sim'} <= set(
      summary_tags(os.path.join(root, 'eval')))
  assert glob.glob(os.path.join(root, 'replay', 'sim', 'sim-*.tfrecord'))
  with open(os.path.join(root, 'operative_config.gin')) as f:
    config = f.read()
  assert 'train_eval.num_train_steps = 2' not in config  # passed explicitly, not bound
  assert 'GraspingQNetwork.crop_size = (32, 32)' in config

  # Restart: the step count continues and the sim buffer holds the same transitions (eagerly:
  # the first run traced the step).
  _bind()
  with eagerly():
    second = _train(root, initial_collect_episodes=1, num_train_steps=3,
                    eval_appearances=(), replay_digests=True, **SMALL_RUN)
  assert second['resumed'] and second['start_step'] == 2 and second['final_step'] == 3
  assert second['sim_replay_transitions_start'] == first['sim_replay_transitions_end'] > 0
  assert second['sim_replay_digest_start'] == first['sim_replay_digest_end']
  assert second['env_steps'] >= first['env_steps']

  # tools/evaluate.py restores the Q-network from the run's checkpoint.
  gin.clear_config()
  output = str(tmp_path / 'eval.json')
  assert _load_tool('evaluate').main([
      '--checkpoint_dir', root, '--render_size', '32x40', '--num_episodes', '1',
      '--num_envs', '1', '--output_json', output]) == 0
  with open(output) as f:
    assert json.load(f)['num_episodes'] == 1

  # Snapshots every eval_interval (2) steps; the selection tool measures each and resumes.
  snapshots = glob.glob(os.path.join(root, 'train', 'snapshots', 'q-*.index'))
  assert [os.path.basename(p) for p in snapshots] == ['q-2.index']
  select_tool = _load_tool('select_checkpoint')
  messages = []
  selection = select_tool.select(root, num_episodes=2, num_envs=1, render_size=(32, 40),
                                 log=messages.append)
  assert [c['step'] for c in selection['candidates']] == [2]
  assert selection['best']['step'] == 2 and selection['object_split'] == 'train'
  assert selection['best']['num_episodes'] == 2
  again = select_tool.select(root, num_episodes=2, num_envs=1, render_size=(32, 40),
                             log=messages.append)
  assert again['candidates'] == selection['candidates']
  assert '1 already measured' in messages[-1]
  gin.clear_config()
  assert _load_tool('evaluate').main([
      '--checkpoint_dir', root, '--checkpoint_path', selection['best']['checkpoint_path'],
      '--render_size', '32x40', '--num_episodes', '1', '--num_envs', '1']) == 0
  with pytest.raises(SystemExit):
    _load_tool('evaluate').main(['--checkpoint_dir', root, '--checkpoint_path',
                                 os.path.join(root, 'train', 'snapshots', 'q-999')])
  with pytest.raises(FileNotFoundError, match='no Q-network snapshots'):
    select_tool.select(root, min_step=3)


def test_real_only_run_and_checkpoint_errors(tmp_path):
  real_dir = tmp_path / 'real'
  real_dir.mkdir()
  with episodes_lib.EpisodeWriter(real_dir / 'episodes-00000-of-00001.tfrecord') as writer:
    for i in range(3):
      writer.write(episodes_lib.synthetic_episode(4, (32, 40), seed=i))
  root = str(tmp_path / 'run')
  kwargs = dict(SMALL_RUN, real_episode_dir=str(real_dir), sim_fraction=0.0,
                collect_steps_per_train_step=0, initial_collect_episodes=0,
                eval_appearances=(), num_train_steps=2)
  _bind()
  result = _train(root, **kwargs)
  assert result['final_step'] == 2 and result['env_steps'] == 0
  assert not os.path.exists(os.path.join(root, 'replay'))

  # An incompatible configuration names the checkpoint file.
  _bind(['GraspingQNetwork.fc_units = (16,)'])
  with pytest.raises(ValueError, match=r'ckpt-2.*does not match'):
    _train(root, **dict(kwargs, num_train_steps=3))

  # A bad real episode file fails before training, naming the file.
  (real_dir / 'episodes-bad.tfrecord').write_bytes(b'garbage')
  _bind()
  with pytest.raises(episodes_lib.EpisodeFormatError, match='episodes-bad.tfrecord'):
    _train(str(tmp_path / 'run2'), **kwargs)
  assert not os.path.exists(os.path.join(tmp_path, 'run2', 'train', 'ckpt', 'checkpoint'))


def test_checkpoint_minutes_saves_between_step_intervals(tmp_path):
  """A wall-clock checkpoint (Checkpointing.checkpoint_minutes) where the step interval is far
  off; the run resumes from it. None: the step interval and the final save only."""
  real_dir = _write_log(tmp_path / 'real')
  kwargs = dict(SMALL_RUN, real_episode_dir=str(real_dir), sim_fraction=0.0,
                collect_steps_per_train_step=0, initial_collect_episodes=0,
                eval_appearances=(), num_train_steps=3, checkpoint_interval=100)

  def saved(root):
    return sorted(int(p.rsplit('-', 1)[1].split('.')[0])
                  for p in glob.glob(os.path.join(root, 'train', 'ckpt', 'ckpt-*.index')))

  timed, untimed = str(tmp_path / 'timed'), str(tmp_path / 'untimed')
  _bind()
  _train(timed, checkpoint_minutes=1e-9, **kwargs)  # every step is "late"
  assert saved(timed) == [1, 2, 3]
  _bind()
  _train(untimed, checkpoint_minutes=None, **kwargs)
  assert saved(untimed) == [3]
  _bind()
  again = _train(timed, checkpoint_minutes=1e-9, **dict(kwargs, num_train_steps=4))
  assert again['resumed'] and again['final_step'] == 4 and saved(timed) == [2, 3, 4]
  for bad in (0, -1.0, 'ten'):
    with pytest.raises((ValueError, TypeError), match='Checkpointing.checkpoint_minutes'):
      runner.Checkpointing(checkpoint_minutes=bad)


def test_init_checkpoint_warm_starts_a_fresh_run_only(tmp_path):
  """train_eval.init_checkpoint (Table 1's critics'-start lever fine-tunes the Sim-Only Q on
  the real log): the Q-network and both targets start as another run's; a resumed run keeps
  its own."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  real_dir = _write_log(tmp_path / 'real')
  kwargs = dict(SMALL_RUN, real_episode_dir=str(real_dir), sim_fraction=0.0,
                collect_steps_per_train_step=0, initial_collect_episodes=0,
                eval_appearances=())
  _bind()
  source = _train(str(tmp_path / 'source'), seed=1, num_train_steps=1, **kwargs)['checkpoint']
  source_values = tf.train.load_checkpoint(source)

  def network_values(checkpoint, key):
    reader = tf.train.load_checkpoint(checkpoint)
    names = sorted(n for n, _ in tf.train.list_variables(checkpoint)
                   if n.startswith(f'{key}/') and n.endswith('.ATTRIBUTES/VARIABLE_VALUE')
                   and 'OPTIMIZER_SLOT' not in n)
    assert names, key
    return {n[len(key):]: reader.get_tensor(n) for n in names}

  want = network_values(source, 'q_network')
  _bind()
  root = str(tmp_path / 'run')
  first = _train(root, num_train_steps=0, init_checkpoint=source, **kwargs)['checkpoint']
  for key in ('q_network', 'q_target_1', 'q_target_2'):
    got = network_values(first, key)
    assert set(got) == set(want), key
    for name, value in want.items():
      np.testing.assert_array_equal(got[name], value, err_msg=f'{key}{name}')
  del source_values
  # Resumed with another start: its own (trained) network is kept.
  _bind()
  other = _train(str(tmp_path / 'other'), seed=2, num_train_steps=1, **kwargs)['checkpoint']
  _bind()
  second = _train(root, num_train_steps=1, init_checkpoint=other, **kwargs)
  assert second['resumed']
  got, theirs = network_values(second['checkpoint'], 'q_network'), network_values(other,
                                                                                   'q_network')
  assert not all(np.array_equal(got[n], theirs[n]) for n in got)


def test_sim_episode_dir_seeds_the_sim_replay_at_every_start(tmp_path):
  offline = _write_log(tmp_path / 'offline')  # 12 transitions
  root = str(tmp_path / 'run')
  kwargs = dict(SMALL_RUN, sim_episode_dir=str(offline), initial_collect_episodes=0,
                collect_steps_per_train_step=0, eval_appearances=(), replay_digests=True)
  _bind()
  first = _train(root, num_train_steps=2, **kwargs)
  assert first['env_steps'] == 0 and first['sim_replay_transitions_start'] == 12
  # Resumed: the off-policy episodes are loaded again, the same rows as before.
  _bind()
  second = _train(root, num_train_steps=3, **kwargs)
  assert second['resumed'] and second['final_step'] == 3
  assert second['sim_replay_digest_start'] == first['sim_replay_digest_end']
  # With on-policy collection the run's own episodes are added after them.
  _bind()
  third = _train(str(tmp_path / 'run3'), num_train_steps=1,
                                 **dict(kwargs, collect_steps_per_train_step=1.0))
  assert third['sim_replay_transitions_end'] > 12 and third['env_steps'] > 0
  # Set together with sim_fraction 0 (nothing would be drawn from it): a named error.
  _bind()
  with pytest.raises(ValueError, match='sim_episode_dir'):
    _train(str(tmp_path / 'run4'), num_train_steps=1,
                           **dict(kwargs, sim_fraction=0.0, real_episode_dir=str(offline)))


def test_sim_log_fraction_keeps_the_log_in_its_own_buffer(tmp_path):
  offline = _write_log(tmp_path / 'offline')  # 12 transitions
  kwargs = dict(SMALL_RUN, sim_episode_dir=str(offline), initial_collect_episodes=0,
                collect_steps_per_train_step=1.0, eval_appearances=(), replay_digests=True,
                sim_log_fraction=0.5, sim_log_capacity=100)
  root = str(tmp_path / 'run')
  _bind()
  first = _train(root, num_train_steps=2, **kwargs)
  # The sim replay holds only the run's own (on-policy) episodes; the log is elsewhere.
  assert first['sim_replay_transitions_start'] == 0
  assert first['sim_replay_transitions_end'] == first['env_steps'] > 0
  _bind()
  second = _train(root, num_train_steps=3, **kwargs)
  assert second['resumed'] and second['final_step'] == 3
  assert second['sim_replay_digest_start'] == first['sim_replay_digest_end']
  for bad, match in ((dict(sim_log_fraction=1.0), r'sim_log_fraction must be in \(0, 1\)'),
                     (dict(collect_steps_per_train_step=0), 'needs both'),
                     (dict(sim_episode_dir=None, initial_collect_episodes=2), 'needs both')):
    _bind()
    with pytest.raises(ValueError, match=match):
      _train(str(tmp_path / 'bad'), num_train_steps=1, **dict(kwargs, **bad))


def test_mc_return_weight_trains_from_replays_that_store_returns(tmp_path):
  """QTOptCritic.mc_return_weight > 0: the sim log, on-policy and real replays store returns,
  and the run trains, checkpoints and resumes with them."""
  offline = _write_log(tmp_path / 'offline')  # 12 transitions
  kwargs = dict(SMALL_RUN, sim_episode_dir=str(offline), initial_collect_episodes=0,
                collect_steps_per_train_step=1.0, eval_appearances=(), sim_log_fraction=0.5,
                sim_log_capacity=100, sim_fraction=0.5, real_episode_dir=str(offline))
  root = str(tmp_path / 'run')
  _bind(['QTOptCritic.mc_return_weight = 0.5'])
  first = _train(root, num_train_steps=2, **kwargs)
  assert first['final_step'] == 2 and first['env_steps'] > 0
  _bind(['QTOptCritic.mc_return_weight = 0.5'])
  second = _train(root, num_train_steps=3, **kwargs)
  assert second['resumed'] and second['final_step'] == 3
  _bind(['QTOptCritic.mc_return_weight = 1.5'])
  with pytest.raises(ValueError, match='mc_return_weight'):
    _train(str(tmp_path / 'bad'), num_train_steps=1, **kwargs)


def test_spatial_q_network_trains_and_acts_from_its_checkpoint(tmp_path):
  """gin/networks_spatial.gin options (keypoints packed in the embedding) through the critic's
  CEM target, the checkpoint and a restored greedy CEM policy."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.evaluation import policy_eval  # pylint: disable=g-import-not-at-top
  log = _write_log(tmp_path / 'log')
  spatial = ['GraspingQNetwork.stem_pool_size = 2', 'GraspingQNetwork.tower_pool_size = 1',
             'GraspingQNetwork.coord_channels = True', 'GraspingQNetwork.num_keypoints = 3',
             'GraspingQNetwork.merged_kernel_size = 1', 'GraspingQNetwork.final_filters = ()',
             "GraspingQNetwork.head_pooling = 'global_max'"]
  root = str(tmp_path / 'run')
  _bind(spatial)
  result = _train(
      root, **dict(SMALL_RUN, sim_episode_dir=str(log), initial_collect_episodes=0,
                   collect_steps_per_train_step=0, eval_appearances=(), num_train_steps=2))
  assert result['final_step'] == 2 and result['checkpoint']
  gin.clear_config()
  policy = policy_eval.load_policy_from_checkpoint(root, render_size=(32, 40), seed=0)
  assert policy.q_network.embed_image(np.zeros([1, 32, 32, 3], np.float32)).shape == (
      1, 8, 8, 8 + 2 * 3)  # 32 -> 16 -> 8 cells; C = 8 features + 3 keypoints (x, y)
  observation = {'image': np.zeros([2, 32, 40, 3], np.uint8),
                 'gripper_state': np.zeros([2, 2], np.float32)}
  actions = policy.greedy_action(observation).numpy()
  assert actions.shape == (2, 8) and np.all(np.abs(actions) <= 1.0)


def test_an_evaluation_lost_to_a_kill_is_made_when_the_run_is_resumed(tmp_path):
  """Killed after the final checkpoint, before (or during) its evaluation and snapshot."""
  root = str(tmp_path / 'run')
  kwargs = dict(initial_collect_episodes=1, num_train_steps=2, eval_interval=2,
                num_eval_episodes=1, eval_appearances=('sim',), snapshot_interval=2,
                **SMALL_RUN)
  _bind()
  _train(root, **kwargs)
  final_eval = os.path.join(root, 'eval', 'eval_00000002.json')
  snapshot = glob.glob(os.path.join(root, 'train', 'snapshots', 'q-2.*'))
  assert os.path.exists(final_eval) and snapshot
  for path in [final_eval] + snapshot:
    os.remove(path)
  _bind()
  again = _train(root, **kwargs)
  assert again['resumed'] and again['final_step'] == 2 and list(again['evals']) == [2]
  assert os.path.exists(final_eval) and glob.glob(os.path.join(root, 'train', 'snapshots',
                                                               'q-2.index'))
  _bind()
  assert _train(root, **kwargs)['evals'] == {}  # a finished run: nothing is made again
