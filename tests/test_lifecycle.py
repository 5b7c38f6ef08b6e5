"""One owner per run directory (lock files), and SIGTERM as an exception."""

import json
import os
import signal
import socket
import subprocess
import sys

import gin
import pytest

from rl_cyclegan import gin_utils
from rl_cyclegan import lifecycle


@pytest.fixture
def other_process():
  """A live process that is not this one (its pid goes into lock files)."""
  proc = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])
  yield proc
  proc.kill()
  proc.wait()


def _write_lock(path, pid, host=None):
  with open(path, 'w') as f:
    json.dump({'pid': pid, 'host': host or socket.gethostname(), 'started': 'then'}, f)


def test_a_live_owner_keeps_the_directory_and_is_named(tmp_path, other_process):
  path = tmp_path / 'run.lock'
  _write_lock(path, other_process.pid)
  with pytest.raises(lifecycle.LockHeld, match=f'pid {other_process.pid}') as info:
    lifecycle.acquire_lock(str(tmp_path))
  assert str(path) in str(info.value)
  assert json.loads(path.read_text())['pid'] == other_process.pid  # untouched


def test_a_dead_owners_lock_is_taken_over_with_a_message(tmp_path, other_process):
  path = tmp_path / 'run.lock'
  _write_lock(path, other_process.pid)
  other_process.kill()
  other_process.wait()
  messages = []
  assert lifecycle.acquire_lock(str(tmp_path), log=messages.append) == str(path)
  assert json.loads(path.read_text())['pid'] == os.getpid()
  assert str(other_process.pid) in messages[0] and 'no longer running' in messages[0]
  lifecycle.release_lock(str(path))
  assert not path.exists()


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
  _write_lock(tmp_path / 'run.lock', 1, host='elsewhere.example')
  with pytest.raises(lifecycle.LockHeld, match='elsewhere.example'):
    lifecycle.acquire_lock(str(tmp_path))


def test_a_second_training_binary_on_the_directory_fails_at_once(tmp_path, other_process,
                                                                 capsys):
  root = tmp_path / 'run'
  root.mkdir()
  _write_lock(root / 'run.lock', other_process.pid)
  called = []
  gin.clear_config()
  code = gin_utils.run_training_binary('doc', called.append, 'x.y = 1',
                                       ['--root_dir', str(root)])
  assert code == 3 and not called
  assert f'pid {other_process.pid}' in capsys.readouterr().err
  # Without the other owner, the run goes ahead, holding the lock, and releases it.
  (root / 'run.lock').unlink()
  gin.clear_config()
  seen = []
  assert gin_utils.run_training_binary(
      'doc', lambda r: seen.append(json.loads((root / 'run.lock').read_text())['pid']),
      'x.y = 1', ['--root_dir', str(root)]) == 0
  assert seen == [os.getpid()] and not (root / 'run.lock').exists()
  gin.clear_config()


def test_sigterm_becomes_terminate_inside_the_block():
  with pytest.raises(lifecycle.Terminate):
    with lifecycle.sigterm_as_exception():
      os.kill(os.getpid(), signal.SIGTERM)
      signal.pause()  # not reached: the handler raises first
