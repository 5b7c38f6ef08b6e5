"""Export tested from both ends: save here, load in a fresh process without rl_cyclegan, compare.

Tiny random networks (render 20x24, crop 16x16, non-square frames) keep tracing and saving fast.
Tolerances: generator images exact up to 1 uint8 level (rounding of float outputs), Q values
1e-5, the ``grasp`` action exactly (its CEM seed is stateless, see signatures.grasp_seed).
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan.actors import policies
from rl_cyclegan import specs
from rl_cyclegan.data import preprocessing
from rl_cyclegan.export import saved_models as sm
from rl_cyclegan.export import signatures
from rl_cyclegan.networks import generator as generator_lib
from rl_cyclegan.networks import q_network as q_network_lib

RENDER, CROP = (20, 24), (16, 16)
GENERATOR_FILTERS = (4, 8)
Q_KWARGS = dict(stem_filters=4, tower_filters=(4,), state_action_fc_units=(8,),
                merged_filters=(4,), final_filters=(4,), fc_units=(8,))
N_CANDIDATES = 5


def _networks(seed=0):
  tf.keras.utils.set_random_seed(seed)
  generator = generator_lib.UNetGenerator(filters=GENERATOR_FILTERS)
  generator(tf.zeros([1, *CROP, 3]))
  q_net = q_network_lib.GraspingQNetwork(crop_size=CROP, **Q_KWARGS)
  q_net.create_variables()
  return generator, q_net


def _inputs(batch=3, seed=0):
  rng = np.random.default_rng(seed)
  frames = rng.integers(0, 256, [batch, *RENDER, 3], dtype=np.uint8)
  gripper = rng.uniform(0, 0.3, [batch, 2]).astype(np.float32)
  gripper[:, 0] = [0, 1, 0][:batch]
  continuous = rng.uniform(-1, 1, [batch, N_CANDIDATES, 4]).astype(np.float32)
  modes = rng.integers(0, 4, [batch, N_CANDIDATES])
  candidates = specs.encode_action(continuous, modes).numpy()  # [B, N, 8]
  return {'frames': frames, 'crops': preprocessing.center_crop(frames, CROP).numpy(),
          'gripper': gripper, 'action': candidates[:, 0], 'candidates': candidates}


# Runs in a fresh interpreter, without PYTHONPATH, in the export directory, as a controller
# without this package would: the package is installed in the venv (editable), so it is made
# unimportable first; loading the SavedModels must not need it.
_CONTROLLER_CODE = textwrap.dedent('''
    import sys
    sys.modules['rl_cyclegan'] = None  # any import of the package raises ImportError
    try:
      import rl_cyclegan  # noqa: F401
    except ImportError:
      pass
    else:
      raise SystemExit('rl_cyclegan must not be importable here')
    import numpy as np
    import tensorflow as tf
    x = {k: np.load(k + '.npy') for k in ('frames', 'crops', 'gripper', 'action', 'candidates')}
    out = {}
    g = tf.saved_model.load('generator')
    out['g_crop'] = g.signatures['serving_default'](image=x['crops'])['image'].numpy()
    out['g_frame'] = g.signatures['translate_frame'](image=x['frames'])['image'].numpy()
    q = tf.saved_model.load('q_function')
    out['q'] = q.signatures['serving_default'](
        image=x['frames'], gripper_state=x['gripper'], action=x['action'])['q_value'].numpy()
    out['q_candidates'] = q.signatures['q_values_for_candidates'](
        image=x['frames'], gripper_state=x['gripper'], actions=x['candidates'])['q_values'].numpy()
    p = tf.saved_model.load('policy')
    grasp = p.signatures['grasp'](image=x['frames'], gripper_state=x['gripper'])
    out['grasp_action'] = grasp['action'].numpy()
    out['grasp_q'] = grasp['q_value'].numpy()
    again = p.signatures['grasp'](image=x['frames'], gripper_state=x['gripper'])['action'].numpy()
    out['grasp_repeatable'] = np.array(np.array_equal(again, out['grasp_action']))
    # Batch of one, as a controller calls it.
    out['grasp_single'] = p.signatures['grasp'](
        image=x['frames'][:1], gripper_state=x['gripper'][:1])['action'].numpy()
    # Rows are independent: [frame 0, frame 0] gives frame 0's action twice.
    out['grasp_pair'] = p.signatures['grasp'](
        image=x['frames'][[0, 0]], gripper_state=x['gripper'][[0, 0]])['action'].numpy()
    bad = x['gripper'].copy()
    bad[1, 1] = np.nan
    for name, kwargs in (('nan', dict(image=x['frames'], gripper_state=bad)),
                         ('mismatch', dict(image=x['frames'][:2], gripper_state=x['gripper'][:1]))):
      try:
        p.signatures['grasp'](**kwargs)
        out[name + '_error'] = np.array('')
      except tf.errors.InvalidArgumentError as e:
        out[name + '_error'] = np.array(e.message)
    # A tf.Tensor of the wrong dtype is rejected by the signature.
    try:
      p.signatures['grasp'](image=tf.constant(x['frames'], tf.float32),
                            gripper_state=x['gripper'])
      out['wrong_dtype_raised'] = np.array(False)
    except (tf.errors.InvalidArgumentError, TypeError, ValueError):
      out['wrong_dtype_raised'] = np.array(True)
    out['tf_agents_imported'] = np.array('tf_agents' in sys.modules)
    for k, v in out.items():
      np.save('out_' + k + '.npy', v)
    print('controller ok')
''')


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  """Exports all three, writes the inputs, runs the controller code in a subprocess."""
  root = tmp_path_factory.mktemp('export')
  generator, q_net = _networks()
  policy = policies.CEMPolicy(q_net, RENDER, CROP, num_samples=16, seed=1, epsilon=0.5,
                              noise_std=0.2)
  infos = {
      'generator': sm.export_generator(generator, CROP, str(root / 'generator'), RENDER),
      'q_function': sm.export_q_function(q_net, RENDER, CROP, str(root / 'q_function')),
      'policy': sm.export_policy(policy, str(root / 'policy')),
  }
  x = _inputs()
  for key, value in x.items():
    np.save(root / f'{key}.npy', value)
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  env['TF_CPP_MIN_LOG_LEVEL'] = '2'
  proc = subprocess.run([sys.executable, '-c', _CONTROLLER_CODE], env=env, cwd=str(root),
                        capture_output=True, text=True, timeout=600, check=False)
  assert proc.returncode == 0, f'controller process failed:\n{proc.stdout}\n{proc.stderr[-3000:]}'
  out = {f[4:-4]: np.load(root / f) for f in os.listdir(root) if f.startswith('out_')}
  return dict(root=root, generator=generator, q_net=q_net, policy=policy, x=x, out=out,
              infos=infos)


def test_generator_roundtrip(exported):
  g, x, out = exported['generator'], exported['x'], exported['out']
  expected = specs.to_uint8_image(g(specs.to_float_image(x['crops']), training=False)).numpy()
  assert out['g_crop'].dtype == np.uint8 and out['g_crop'].shape == (3, *CROP, 3)
  assert np.abs(out['g_crop'].astype(int) - expected.astype(int)).max() <= 1
  # translate_frame = center crop, then G.
  assert np.abs(out['g_frame'].astype(int) - expected.astype(int)).max() <= 1


def test_q_function_roundtrip(exported):
  q_net, x, out = exported['q_net'], exported['x'], exported['out']
  obs = {'image': specs.to_float_image(x['crops']), 'gripper_state': x['gripper']}
  expected = q_net.q_values(obs, x['action']).numpy()  # [B]
  np.testing.assert_allclose(out['q'], expected, atol=1e-5)
  embedding = q_net.embed_image(obs['image'])
  expected_n = tf.sigmoid(q_net.logits_from_embedding(
      embedding, x['gripper'], x['candidates'])).numpy()  # [B, N]
  assert out['q_candidates'].shape == (3, N_CANDIDATES)
  np.testing.assert_allclose(out['q_candidates'], expected_n, atol=1e-5)
  # Candidate 0 is the single action.
  np.testing.assert_allclose(out['q_candidates'][:, 0], out['q'], atol=1e-6)


def test_policy_grasp_roundtrip_is_deterministic(exported):
  policy, x, out = exported['policy'], exported['x'], exported['out']
  expected = signatures.greedy_grasp(policy, tf.constant(x['frames']), tf.constant(x['gripper']))
  # Exact: the same graph with a stateless seed derived from the inputs.
  np.testing.assert_array_equal(out['grasp_action'], expected['action'].numpy())
  np.testing.assert_allclose(out['grasp_q'], expected['q_value'].numpy(), atol=1e-6)
  assert bool(out['grasp_repeatable'])
  assert out['grasp_single'].shape == (1, specs.ACTION_DIM)
  # A row's action depends on that row only: alone, first of three, or twice in a batch.
  np.testing.assert_array_equal(out['grasp_single'][0], out['grasp_action'][0])
  np.testing.assert_array_equal(out['grasp_pair'], out['grasp_single'][[0, 0]])
  # Bad inputs are errors that say what is wrong, not actions.
  assert 'NaN or Inf' in str(out['nan_error'])
  assert 'same batch size' in str(out['mismatch_error'])
  # Greedy and valid: sin^2 + cos^2 = 1, at most one of close/open/terminate.
  np.testing.assert_allclose(np.square(out['grasp_action'][:, 3:5]).sum(-1), 1.0, atol=1e-5)
  assert (out['grasp_action'][:, 5:].sum(-1) <= 1).all()
  # The controller needs neither rl_cyclegan nor tf_agents.
  assert not bool(out['tf_agents_imported'])


def test_wrong_dtype_tensor_is_rejected(exported):
  assert bool(exported['out']['wrong_dtype_raised'])


def test_policy_saver_signature_is_greedy_and_exploration_restored(exported):
  policy = exported['policy']
  # The in-process policy keeps its exploration; the saved one has 0.
  assert policy.epsilon.numpy() == pytest.approx(0.5)
  loaded = tf.saved_model.load(str(exported['root'] / 'policy'))
  names = (policies.EPSILON_VARIABLE, policies.NOISE_STD_VARIABLE)
  values = {v.name.split('/')[-1].split(':')[0]: v for v in loaded.model_variables}
  values = {name: float(values[name].numpy()) for name in names}
  assert values[policies.EPSILON_VARIABLE] == 0.0
  assert values[policies.NOISE_STD_VARIABLE] == 0.0
  assert set(loaded.signatures) >= {'action', 'grasp', 'get_initial_state'}
  # export_info names the keywords a controller passes.
  info = sm.read_export_info(str(exported['root'] / 'policy'))['signatures']
  for name in ('action', 'grasp'):
    assert set(info[name]['inputs']) == set(loaded.signatures[name].structured_input_signature[1])


def test_export_info(exported):
  root = exported['root']
  for kind in sm.EXPORT_KINDS:
    info = json.loads((root / kind / sm.EXPORT_INFO).read_text())
    assert info['kind'] == kind
    assert info['crop_size'] == list(CROP) and info['render_size'] == list(RENDER)
    assert 'rl_cyclegan' in info['versions'] and 'git_commit' in info
  q_info = sm.read_export_info(str(root / 'q_function'))
  assert q_info['signatures']['serving_default']['inputs']['image'] == {
      'shape': [None, *RENDER, 3], 'dtype': 'uint8'}
  assert q_info['signatures']['q_values_for_candidates']['outputs']['q_values']['shape'] == [
      None, None]
  grasp = sm.read_export_info(str(root / 'policy'))['signatures']['grasp']
  assert grasp['outputs']['action'] == {'shape': [None, 8], 'dtype': 'float32'}
  assert not any(n.startswith(('generator.', 'policy.', 'q_function.'))
                 for n in os.listdir(root))  # no .tmp-/.old- leftovers


def test_export_is_atomic(tmp_path, monkeypatch):
  _, q_net = _networks()
  target = tmp_path / 'q'
  sm.export_q_function(q_net, RENDER, CROP, str(target))
  before = {p: (target / p).read_bytes() for p in ('saved_model.pb', sm.EXPORT_INFO)}

  real_save = tf.saved_model.save

  def failing_save(obj, export_dir, *args, **kwargs):
    real_save(obj, export_dir, *args, **kwargs)  # the files are written ...
    raise RuntimeError('disk full')  # ... and then the export fails

  monkeypatch.setattr(tf.saved_model, 'save', failing_save)
  with pytest.raises(RuntimeError, match='disk full'):
    sm.export_q_function(q_net, RENDER, CROP, str(target), extra_info={'attempt': 2})
  monkeypatch.undo()
  assert {p: (target / p).read_bytes() for p in before} == before
  assert sorted(os.listdir(tmp_path)) == ['q']  # no temporary directory left
  # A successful export replaces it completely.
  sm.export_q_function(q_net, RENDER, CROP, str(target), extra_info={'attempt': 3})
  assert sm.read_export_info(str(target))['attempt'] == 3
  assert sorted(os.listdir(tmp_path)) == ['q']


_RUN_CONFIG = f'''
UNetGenerator.filters = {GENERATOR_FILTERS}
GraspingQNetwork.crop_size = {CROP}
GraspingQNetwork.stem_filters = 4
GraspingQNetwork.tower_filters = (4,)
GraspingQNetwork.state_action_fc_units = (8,)
GraspingQNetwork.merged_filters = (4,)
GraspingQNetwork.final_filters = (4,)
GraspingQNetwork.fc_units = (8,)
Environment.render_size = {RENDER}
Environment.crop_size = {CROP}
Environment.action_mode = 'auto_descend'
'''


@pytest.fixture
def run_dir(tmp_path):
  """A run directory as train_qtopt writes it: operative_config.gin and train/ckpt."""
  generator, q_net = _networks(seed=3)
  (tmp_path / 'operative_config.gin').write_text(_RUN_CONFIG)
  manager = tf.train.CheckpointManager(
      tf.train.Checkpoint(q_network=q_net, G_sim2real=generator,
                          train_step=tf.Variable(7, dtype=tf.int64)),
      str(tmp_path / 'train' / 'ckpt'), max_to_keep=1)
  path = manager.save()
  return dict(root=tmp_path, generator=generator, q_net=q_net, checkpoint=path)


def test_export_from_checkpoint(run_dir, tmp_path):
  out_dir = tmp_path / 'exports'
  results = sm.export_from_checkpoint(str(run_dir['root']), str(out_dir),
                                      what=('generator', 'q_function', 'policy'))
  assert set(results) == {'generator', 'q_function', 'policy'}
  assert results['q_function']['source_checkpoint'] == os.path.abspath(run_dir['checkpoint'])
  assert results['q_function']['render_size'] == list(RENDER)
  x = _inputs(batch=2)
  g = tf.saved_model.load(str(out_dir / 'generator'))
  got = g.signatures['translate_frame'](image=x['frames'])['image'].numpy()
  expected = specs.to_uint8_image(run_dir['generator'](specs.to_float_image(x['crops']))).numpy()
  assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
  q = tf.saved_model.load(str(out_dir / 'q_function'))
  got = q.signatures['serving_default'](image=x['frames'], gripper_state=x['gripper'],
                                        action=x['action'])['q_value'].numpy()
  obs = {'image': specs.to_float_image(x['crops']), 'gripper_state': x['gripper']}
  np.testing.assert_allclose(got, run_dir['q_net'].q_values(obs, x['action']), atol=1e-5)
  # The policy: CEM modes from Environment.action_mode ('auto_descend': move only).
  assert results['policy']['allowed_modes'] == [True, False, False, False]
  p = tf.saved_model.load(str(out_dir / 'policy'))
  action = p.signatures['grasp'](image=x['frames'], gripper_state=x['gripper'])['action']
  assert action.shape == (2, specs.ACTION_DIM) and np.all(action.numpy()[:, 5:] == 0)


@pytest.mark.parametrize('binding, expected', [
    # More levels than the checkpoint: variables missing from it.
    ('UNetGenerator.filters = (4, 8, 16)', 'not in the checkpoint'),
    # Fewer levels: the checkpoint's extra level would be silently dropped by a plain restore.
    ('UNetGenerator.filters = (4,)', 'not in the configured generator'),
    ('UNetGenerator.filters = (6, 8)', 'shape mismatch'),
])
def test_export_from_checkpoint_rejects_mismatching_generator(run_dir, tmp_path, binding,
                                                              expected):
  with pytest.raises(ValueError) as error:
    sm.export_from_checkpoint(str(run_dir['root']), str(tmp_path / 'exports'),
                              what=('generator',), gin_bindings=[binding])
  message = str(error.value)
  assert os.path.basename(run_dir['checkpoint']) in message
  assert 'G_sim2real' in message and expected in message
  assert not (tmp_path / 'exports').exists()


def test_export_from_checkpoint_names_missing_files(tmp_path):
  with pytest.raises(FileNotFoundError, match='operative_config.gin'):
    sm.export_from_checkpoint(str(tmp_path), str(tmp_path / 'out'))
  (tmp_path / 'operative_config.gin').write_text(_RUN_CONFIG)
  with pytest.raises(FileNotFoundError, match='no checkpoint'):
    sm.export_from_checkpoint(str(tmp_path), str(tmp_path / 'out'))
  with pytest.raises(ValueError, match='what must name'):
    sm.export_from_checkpoint(str(tmp_path), str(tmp_path / 'out'), what=('pol',))


def test_export_without_what_exports_what_the_run_has(run_dir, tmp_path):
  """A QT-Opt run without a frozen G: the Q-function and the policy, no generator asked for."""
  results = sm.export_from_checkpoint(str(run_dir['root']), str(tmp_path / 'exports'))
  assert set(results) == {'q_function', 'policy'}
  assert not (tmp_path / 'exports' / 'generator').exists()


def test_export_from_checkpoint_keeps_batch_norm_statistics(tmp_path):
  """A run with QT-Opt's batch norm (GraspingQNetwork.normalization = 'batch' in its config):
  the exported Q-function computes what the network computes in inference, with the moving
  statistics the checkpoint holds."""
  tf.keras.utils.set_random_seed(5)
  q_net = q_network_lib.GraspingQNetwork(crop_size=CROP, normalization='batch', **Q_KWARGS)
  q_net.create_variables()
  x = _inputs(batch=2)
  obs = {'image': specs.to_float_image(x['crops']), 'gripper_state': x['gripper']}
  for _ in range(3):  # training calls move the moving statistics away from (0, 1)
    q_net((obs, x['action']), training=True)
  means = [v.numpy() for v in q_net.variables if 'moving_mean' in v.name]
  assert means and all(np.any(m != 0.0) for m in means)
  (tmp_path / 'operative_config.gin').write_text(
      _RUN_CONFIG + "GraspingQNetwork.normalization = 'batch'\n")
  tf.train.CheckpointManager(
      tf.train.Checkpoint(q_network=q_net, train_step=tf.Variable(3, dtype=tf.int64)),
      str(tmp_path / 'train' / 'ckpt'), max_to_keep=1).save()
  sm.export_from_checkpoint(str(tmp_path), str(tmp_path / 'exports'), what=('q_function',))
  q = tf.saved_model.load(str(tmp_path / 'exports' / 'q_function'))
  got = q.signatures['serving_default'](image=x['frames'], gripper_state=x['gripper'],
                                        action=x['action'])['q_value'].numpy()
  np.testing.assert_allclose(got, q_net.q_values(obs, x['action']).numpy(), atol=1e-5)
  assert not np.allclose(got, q_net.q_values(obs, x['action'], training=True).numpy(),
                         atol=1e-5)  # batch statistics would give another value
