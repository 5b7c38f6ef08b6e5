"""Process lifecycle: SIGTERM as an exception, and one owner per run directory.

A training loop runs inside ``sigterm_as_exception()``; SIGTERM (a session ending, a job
scheduler, tools/table1.py stopping a stage) raises ``Terminate``, the loop saves a
checkpoint and the pending episodes, and the binary exits with status 130.

``directory_lock`` / ``acquire_lock``: a lock file holding the owner's pid and host. A second
process on the same directory fails at once, naming the owner; the lock of a dead process on
this host is taken over with a message.
"""

import contextlib
import json
import os
import signal
import socket
import sys
import time
from typing import Callable, Optional

from rl_cyclegan import fileio


class Terminate(Exception):
  """Raised by the SIGTERM handler so that the loop saves and flushes before exiting."""


@contextlib.contextmanager
def sigterm_as_exception():
  """Within the block SIGTERM raises ``Terminate`` (main thread only; elsewhere a no-op)."""
  def on_sigterm(signum, frame):
    del signum, frame
    raise Terminate()

  previous = None
  try:
    previous = signal.signal(signal.SIGTERM, on_sigterm)
  except ValueError:  # not the main thread
    pass
  try:
    yield
  finally:
    if previous is not None:
      signal.signal(signal.SIGTERM, previous)


class LockHeld(RuntimeError):
  """Another live process owns the directory (the message names it)."""


def acquire_lock(directory: str, filename: str = 'run.lock', what: str = 'run directory',
                 info: Optional[dict] = None, log: Optional[Callable[[str], None]] = None) -> str:
  """Creates ``directory/filename`` holding this process's pid and host; returns its path.

  One owner per directory: if a live process holds the lock, LockHeld names it (pid, host,
  since when, the file). A lock left by a dead process on this host is taken over, with a
  message on ``log`` (default stderr). A lock from another host is never taken over.
  """
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, filename)
  me = dict({'pid': os.getpid(), 'host': socket.gethostname(),
             'started': time.strftime('%Y-%m-%dT%H:%M:%S')}, **(info or {}))
  for _ in range(3):
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
      try:
        with open(path) as f:
          holder = json.load(f)
      except (OSError, ValueError):
        holder = {}  # being written right now, or garbage: read again
        time.sleep(0.2)
        try:
          with open(path) as f:
            holder = json.load(f)
        except (OSError, ValueError):
          holder = {'pid': -1, 'host': me['host']}  # unreadable: treat as stale
      pid = int(holder.get('pid', -1))
      if holder.get('host') == me['host'] and (pid == os.getpid() or not fileio.pid_alive(pid)):
        (log or (lambda m: print(m, file=sys.stderr, flush=True)))(
            f'taking over the lock {path} of pid {pid}, which is no longer running')
        try:
          os.remove(path)
        except FileNotFoundError:
          pass
        continue
      raise LockHeld(f'{what} {directory!r} is in use by pid {holder.get("pid")} on '
                     f'{holder.get("host")} since {holder.get("started")} (lock file {path}); '
                     'wait for it to finish or stop it; if that process is gone, delete the '
                     'lock file') from None
    with os.fdopen(fd, 'w') as f:
      json.dump(me, f)
    return path
  raise LockHeld(f'could not take the lock {path!r}')


def release_lock(path: str) -> None:
  """Removes a lock this process holds (a lock taken over by another process is left alone)."""
  try:
    with open(path) as f:
      holder = json.load(f)
  except (OSError, ValueError):
    return
  if holder.get('pid') == os.getpid() and holder.get('host') == socket.gethostname():
    os.remove(path)


@contextlib.contextmanager
def directory_lock(directory: str, filename: str = 'run.lock', what: str = 'run directory',
                   info: Optional[dict] = None):
  """``acquire_lock`` for the duration of the block. A directory the lock created is removed
  again if nothing else was written to it (e.g. the run stopped on a bad setting)."""
  created = not os.path.isdir(directory)
  path = acquire_lock(directory, filename, what, info)
  try:
    yield path
  finally:
    release_lock(path)
    if created and os.path.isdir(directory) and not os.listdir(directory):
      os.rmdir(directory)
