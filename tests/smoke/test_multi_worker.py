"""MultiWorkerMirroredStrategy (issue 21): the joint step over 2 worker processes on localhost
equals the same step in one process over 2 replicas (MirroredStrategy), on the same global
batch from the same initial weights: every loss and every updated weight, within 1e-5.
About 2-4 minutes on 2 cores (three processes trace the joint step), so it runs with the smoke
tests (.ci/run), not in `make test`.

CEM's seeds in the TD targets follow (train step, global replica id) (core.replica_seed), so
both runs draw the same candidates. Which networks each loss updates (Table 5) is the
learner's, whatever the strategy (test_rl_cyclegan_learner.py checks it)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

import multi_worker_step

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(('localhost', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def test_two_workers_equal_one_process_with_two_replicas(tmp_path, mirrored_strategy):
  init = str(tmp_path / 'init')
  losses, weights = multi_worker_step.step(mirrored_strategy, save_init=init)
  workers = [f'localhost:{p}' for p in _free_ports(2)]
  out = tmp_path / 'workers.npz'
  procs = []
  for index in range(2):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, HERE]), CUDA_VISIBLE_DEVICES='',
               TF_CONFIG=json.dumps({'cluster': {'worker': workers},
                                     'task': {'type': 'worker', 'index': index}}))
    procs.append(subprocess.Popen(
        [sys.executable, os.path.join(HERE, 'multi_worker_step.py'), init, str(out)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
  try:
    outputs = [p.communicate(timeout=600)[0] for p in procs]
  finally:
    for p in procs:
      p.kill()
  assert all(p.returncode == 0 for p in procs), '\n'.join(o[-3000:] for o in outputs)
  got = np.load(out)
  for name, value in losses.items():
    np.testing.assert_allclose(got[f'loss:{name}'], value, rtol=1e-5, atol=1e-5, err_msg=name)
  assert set(weights) == {k for k in got.files if not k.startswith('loss:')}
  for name, value in weights.items():
    np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-5, err_msg=name)
  assert losses['total'] > 0 and len(weights) > 50


# ----------------------------------------------------------------------------- the binary

TINY_RUN = [
    'GraspingQNetwork.stem_filters = 8', 'GraspingQNetwork.tower_filters = (8,)',
    'GraspingQNetwork.state_action_fc_units = (16,)', 'GraspingQNetwork.merged_filters = (8,)',
    'GraspingQNetwork.final_filters = (8,)', 'GraspingQNetwork.fc_units = (8,)',
    'UNetGenerator.filters = (8, 16)', 'MultiScaleDiscriminator.filters = (8, 16)',
    'GraspingEnv.max_steps = 3', 'Environment.render_size = (32, 40)',
    'Environment.crop_size = (32, 32)', 'Environment.num_objects = 2', 'Environment.num_envs = 1',
    'Replay.min_replay_transitions = 4', 'Exploration.initial_collect_episodes = 1',
    'Checkpointing.checkpoint_interval = 1', 'Checkpointing.summary_interval = 1',
    'Evaluation.num_eval_episodes = 2', 'Evaluation.eval_interval = 2',
    'train_rl_cyclegan.batch_per_domain = 2', 'train_rl_cyclegan.paired_set_num_states = 4',
    'train_rl_cyclegan.image_summary_interval = 2', 'train_rl_cyclegan.scene_metrics_interval = 2',
    "train_rl_cyclegan.strategy = 'multi_worker'",
]


def _run_workers(root, real, steps, timeout=900):
  """tools/train_rl_cyclegan.py as 2 workers on localhost; returns [(exit code, output)]."""
  workers = [f'localhost:{p}' for p in _free_ports(2)]
  bindings = TINY_RUN + [f"Replay.real_episode_dir = '{real}'",
                         f'train_rl_cyclegan.num_train_steps = {steps}']
  procs = []
  for index in range(2):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', TF_NUM_INTRAOP_THREADS='1',
               TF_CONFIG=json.dumps({'cluster': {'worker': workers},
                                     'task': {'type': 'worker', 'index': index}}))
    argv = [sys.executable, os.path.join(os.path.dirname(REPO), 'tools', 'train_rl_cyclegan.py'),
            f'--root_dir={root}'] + [a for b in bindings for a in ('--gin_bindings', b)]
    procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True))
  try:
    outputs = [p.communicate(timeout=timeout)[0] for p in procs]
  finally:
    for p in procs:
      p.kill()
  return [(p.returncode, out) for p, out in zip(procs, outputs)]


# Checkpoint entries that are each worker's own: its collection counters and the graph.
OWN_ENTRIES = ('_CHECKPOINTABLE_OBJECT_GRAPH', 'env_steps', 'initial_env_steps', 'sim_episodes',
               'save_counter')


def _learner_state(prefix):
  """Every other entry of a checkpoint: the networks (G, F, D_X, D_Y, both critics and their
  targets), the optimizers and their slots, the train step."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  reader = tf.train.load_checkpoint(prefix)
  return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
          if k.split('/')[0] not in OWN_ENTRIES}


def test_the_binary_trains_across_two_workers_and_resumes(tmp_path):
  """train_rl_cyclegan.strategy = 'multi_worker': the chief owns the run directory (its
  evaluations and checkpoints), worker 1 keeps its own under workers/worker-1; after the run
  both hold the same networks; a re-run resumes both; workers restored from different steps
  fail at once on both, naming the directories."""
  from rl_cyclegan.data import episodes as episodes_lib  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  real = tmp_path / 'real'
  real.mkdir()
  with episodes_lib.EpisodeWriter(str(real / 'episodes-00000-of-00001.tfrecord')) as writer:
    for i in range(3):
      writer.write(episodes_lib.synthetic_episode(4, (32, 40), seed=i))
  root = tmp_path / 'run'
  worker = root / 'workers' / 'worker-1'

  runs = _run_workers(root, real, steps=2)
  assert [code for code, _ in runs] == [0, 0], '\n'.join(out[-4000:] for _, out in runs)
  assert (root / 'eval' / 'eval_00000002.json').is_file()  # the chief evaluates
  assert not list(worker.glob('eval/*.json'))  # worker 1 does not
  chief_ckpt = tf.train.latest_checkpoint(str(root / 'train' / 'ckpt'))
  worker_ckpt = tf.train.latest_checkpoint(str(worker / 'train' / 'ckpt'))
  assert chief_ckpt.endswith('ckpt-2') and worker_ckpt.endswith('ckpt-2')
  chief, other = _learner_state(chief_ckpt), _learner_state(worker_ckpt)
  assert len(chief) > 100 and chief.keys() == other.keys()
  assert any(k.startswith('G_sim2real/') for k in chief), sorted(chief)[:20]
  for key, value in chief.items():  # all-reduced gradients: the same networks on both
    np.testing.assert_allclose(other[key], value, rtol=1e-6, atol=1e-6, err_msg=key)
  with open(root / 'replay' / 'sim' / os.listdir(root / 'replay' / 'sim')[0], 'rb') as f:
    chief_episodes = f.read()
  with open(worker / 'replay' / 'sim' / os.listdir(worker / 'replay' / 'sim')[0], 'rb') as f:
    assert f.read() != chief_episodes  # each worker collects its own episodes

  runs = _run_workers(root, real, steps=3)
  assert [code for code, _ in runs] == [0, 0], '\n'.join(out[-4000:] for _, out in runs)
  assert all('resumed from' in out and 'at train step 2' in out for _, out in runs)

  for name in os.listdir(worker / 'train' / 'ckpt'):  # worker 1 loses its newest checkpoint
    if name.startswith('ckpt-3'):
      os.remove(worker / 'train' / 'ckpt' / name)
  runs = _run_workers(root, real, steps=4)
  outputs = '\n'.join(out[-3000:] for _, out in runs)
  assert 0 not in [code for code, _ in runs], outputs
  for _, out in runs:
    assert 'resumed from different train steps' in out, outputs
