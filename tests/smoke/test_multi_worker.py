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
