"""The learner's side of distributed collection: a Reverb server, actor processes, weights.

``ActorFeed`` (used by runner.py when ``runner.Actors.distributed``):

  * hosts a ``reverb_tables.ReplayServer`` (the on-policy sim table and the variable table),
    checkpointed under ``<root_dir>/replay/reverb``; a restarted learner's server restores
    the newest Reverb checkpoint, so the table (and its insert count) resumes with the run;
  * ``replay``: the sim table as a ``TransitionReplay`` (``ReverbReplay``) for the sampler;
  * writes ``<root_dir>/actors/actor.gin`` (gin's config, the settings groups and the
    pipeline's ``actor_bindings``), starts ``Actors.num_local_actors`` processes
    (``python -m rl_cyclegan.cli.qtopt_actor``, logs in ``<root_dir>/actors/actor-<i>.log``)
    and restarts one that died (``Actors.restart_actors``, at most ``max_restarts``), or goes
    on without it;
  * ``push(step)``: the Q-network's weights, the train step and the env-step limit of the
    actors (``Actors.max_steps_ahead`` train steps ahead, and at least
    ``Replay.min_replay_transitions``: ``actor_env_step_limit``) into the variable table
    through TF-Agents' ``ReverbVariableContainer``;
  * ``wait(step)``: blocks until the env steps inserted after the initial collection reach
    (step + 1) x ``Exploration.collect_steps_per_train_step`` and the table holds
    ``Replay.min_replay_transitions``: the in-process schedule's rule, with the env steps
    counted from the table's insert count (restored with it); fails after
    ``Actors.stall_timeout`` seconds without a new transition;
  * ``checkpoint()``: a Reverb checkpoint (the runner writes one before each of its own).
"""

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, Optional

import gin

from rl_cyclegan import fileio
from rl_cyclegan import run_dir
from rl_cyclegan.replay import reverb_tables

ACTOR_GIN = 'actor.gin'
PIDS = 'pids.json'  # actor id -> pid of the processes this learner started (for cleanup)
SERVER_INFO = 'server.json'  # {'pid', 'port'} of a separate server process (Actors.separate_server)
ACTOR_MODULE = 'rl_cyclegan.cli.qtopt_actor'
SERVER_MODULE = 'rl_cyclegan.cli.reverb_server'


def settings_bindings(settings) -> str:
  """Gin lines of every field of every settings group (runner.Settings), e.g.
  'Environment.render_size = (32, 40)'."""
  lines = []
  for field in dataclasses.fields(settings):
    group = getattr(settings, field.name)
    for f in dataclasses.fields(group):
      lines.append(f'{type(group).__name__}.{f.name} = {getattr(group, f.name)!r}')
  return '\n'.join(lines) + '\n'


def write_actor_gin(path: str, settings, actor_bindings=()) -> str:
  """The actors' gin: gin's config, every settings group and the pipeline's lines (atomic)."""
  fileio.write_text_atomic(path, (
      f'# Written by the learner for its actor processes (train/distributed.py).\n'
      f'{gin.config_str()}\n# The learner\'s settings groups:\n'
      f'{settings_bindings(settings)}# The pipeline\'s collection:\n' +
      ''.join(f'{b}\n' for b in actor_bindings)))
  return path


def actor_command(address: str, actor_id: int, seed: int, gin_path: str,
                  return_discount: Optional[float] = None):
  """argv of one actor process (rl_cyclegan/cli/qtopt_actor.py)."""
  cmd = [sys.executable, '-m', ACTOR_MODULE, '--reverb_address', address,
         '--actor_id', str(actor_id), '--seed', str(seed), '--gin_file', gin_path]
  if return_discount is not None:
    cmd += ['--return_discount', repr(float(return_discount))]
  return cmd


def stop_processes(processes, grace_seconds: float = 10.0):
  """SIGTERM, then SIGKILL after ``grace_seconds``; waits for every one."""
  for process in processes:
    if process.poll() is None:
      process.send_signal(signal.SIGTERM)
  deadline = time.time() + grace_seconds
  for process in processes:
    try:
      process.wait(max(0.1, deadline - time.time()))
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()


def _cmdline(pid: int) -> str:
  try:
    with open(f'/proc/{int(pid)}/cmdline', 'rb') as f:
      return f.read().replace(b'\0', b' ').decode(errors='replace')
  except OSError:
    return ''


def kill_stale(pids, module: str, log: Callable[[str], None] = print):
  """SIGKILLs the live processes among ``pids`` that run ``module`` (left by a killed learner)."""
  for pid in pids:
    if fileio.pid_alive(int(pid)) and module in _cmdline(pid):
      log(f'stopping pid {pid} ({module}), left running by a previous learner')
      os.kill(int(pid), signal.SIGKILL)


def _read_json(path):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def serve(checkpoint_dir: str, settings, variables, port: int,
          return_discount: Optional[float] = None, log: Callable[[str], None] = print):
  """A separate Reverb server process (Actors.separate_server): serves the tables until SIGTERM,
  then writes a checkpoint. Writes ``<checkpoint_dir>/server.json`` ({'pid', 'port'}) once up."""
  from rl_cyclegan import lifecycle  # pylint: disable=g-import-not-at-top
  env, r = settings.environment, settings.replay
  server = reverb_tables.ReplayServer(
      checkpoint_dir, env.render_size, capacity=r.sim_replay_capacity,
      min_size=min(r.min_replay_transitions, r.sim_replay_capacity), variables=variables,
      port=port, return_discount=return_discount)
  fileio.write_text_atomic(os.path.join(checkpoint_dir, SERVER_INFO),
                           json.dumps({'pid': os.getpid(), 'port': server.port}))
  log(f'Reverb server at {server.address} ({"restored" if server.restored else "new"}, '
      f'checkpoints in {checkpoint_dir})')
  try:
    with lifecycle.sigterm_as_exception():
      while True:
        time.sleep(1.0)
  except (KeyboardInterrupt, lifecycle.Terminate):
    log(f'stopping: checkpoint {server.checkpoint()}')
  finally:
    server.stop()


WAIT_LOG_SECONDS = 60.0  # ActorFeed.wait says what it waits for this often


def actor_env_step_limit(step: int, initial_env_steps: int, ratio: float, push_interval: int,
                         max_steps_ahead: int, min_transitions: int) -> int:
  """The table insert count up to which the actors may collect while the learner is at
  ``step``: ``max_steps_ahead`` train steps past the next weight push at ``ratio`` env steps per
  train step, and never less than ``min_transitions``, which the learner waits for before its
  first step (else a small ratio window and a large ``Replay.min_replay_transitions`` would
  stop both sides)."""
  ahead = step + push_interval + max_steps_ahead
  return max(initial_env_steps + int(math.ceil(ahead * ratio)), int(min_transitions))


class ActorFeed:
  """See the module docstring."""

  def __init__(self, root_dir: str, settings, q_network, seed: int, ratio: float,
               collection, actor_bindings=(), return_discount: Optional[float] = None,
               log: Callable[[str], None] = print):
    self.settings = settings
    self.actors = settings.actors
    env, r = settings.environment, settings.replay
    self.q_network = q_network
    self.seed = int(seed)
    self.ratio = float(ratio)
    self.collection = collection
    self.return_discount = return_discount
    self._log = log
    self.min_transitions = min(r.min_replay_transitions, r.sim_replay_capacity)
    self.actor_dir = os.path.join(root_dir, run_dir.ACTORS_SUBDIR)
    os.makedirs(self.actor_dir, exist_ok=True)
    # Actors of a killed learner (they stop by themselves once its server is gone).
    kill_stale((_read_json(os.path.join(self.actor_dir, PIDS)) or {}).values(), ACTOR_MODULE,
               log)
    self.gin_path = write_actor_gin(os.path.join(self.actor_dir, ACTOR_GIN), settings,
                                    actor_bindings)
    self.checkpoint_dir = os.path.join(root_dir, run_dir.REVERB_SUBDIR)
    self.server = self.server_process = None
    if self.actors.separate_server:
      self.address, state = self._server_process(log)
    else:
      self.server = reverb_tables.ReplayServer(
          self.checkpoint_dir, env.render_size, capacity=r.sim_replay_capacity,
          min_size=self.min_transitions, variables=q_network.variables,
          port=self.actors.reverb_port, return_discount=return_discount)
      self.address = self.server.address
      state = 'restored from' if self.server.restored else 'new, checkpointed in'
    self.replay = reverb_tables.ReverbReplay(self.address, env.render_size,
                                             r.sim_replay_capacity, name='sim',
                                             return_discount=return_discount)
    self._container = reverb_tables.weight_container(self.address)
    self.processes: Dict[int, subprocess.Popen] = {}
    self._logs = {}
    self.restarts = 0
    self.pushes = 0
    self.last_push_step = None
    self._start_time = time.time()
    self._start_inserted = self.replay.num_inserted
    log(f'Reverb server at {self.address} ({state} {self.checkpoint_dir}): '
        f'{self.replay.num_transitions} sim transitions, {self._start_inserted} inserted so far')

  def _server_process(self, log):
    """(address, state) of the run's server process: the one still running from a killed
    learner (it kept every insert), else a new one (restored from the checkpoint)."""
    os.makedirs(self.checkpoint_dir, exist_ok=True)
    info_path = os.path.join(self.checkpoint_dir, SERVER_INFO)
    info = _read_json(info_path)
    if info and fileio.pid_alive(info['pid']) and SERVER_MODULE in _cmdline(info['pid']):
      address = f'localhost:{info["port"]}'
      try:
        reverb_tables.wait_for_server(address, timeout=30)
        return address, f'still running (pid {info["pid"]}), checkpoints in'
      except TimeoutError:
        kill_stale([info['pid']], SERVER_MODULE, log)
    if os.path.exists(info_path):
      os.remove(info_path)
    import portpicker  # pylint: disable=g-import-not-at-top  (a dependency of dm-reverb)
    port = self.actors.reverb_port or portpicker.pick_unused_port()
    restoring = any(os.path.isdir(os.path.join(self.checkpoint_dir, n))
                    for n in os.listdir(self.checkpoint_dir))
    cmd = [sys.executable, '-m', SERVER_MODULE, '--checkpoint_dir', self.checkpoint_dir,
           '--port', str(port), '--gin_file', self.gin_path]
    if self.return_discount is not None:
      cmd += ['--return_discount', repr(float(self.return_discount))]
    self._server_log = open(os.path.join(self.actor_dir, 'server.log'), 'ab')  # pylint: disable=consider-using-with
    # Its own session: a SIGKILLed learner's server keeps running for the next learner.
    self.server_process = subprocess.Popen(
        cmd, stdout=self._server_log, stderr=subprocess.STDOUT, start_new_session=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get('TF_CPP_MIN_LOG_LEVEL', '2')))
    deadline = time.time() + 300
    while not (_read_json(info_path) or {}).get('pid') == self.server_process.pid:
      if self.server_process.poll() is not None or time.time() > deadline:
        raise RuntimeError(f'the Reverb server process did not start (status '
                           f'{self.server_process.poll()}); see '
                           f'{os.path.join(self.actor_dir, "server.log")}')
      time.sleep(0.2)
    address = f'localhost:{port}'
    reverb_tables.wait_for_server(address)
    log(f'Reverb server process started (pid {self.server_process.pid})')
    return address, 'restored from' if restoring else 'new, checkpointed in'

  # ---------------------------------------------------------------- actor processes

  def command(self, actor_id: int):
    return actor_command(self.address, actor_id, self.seed, self.gin_path, self.return_discount)

  def start_actors(self):
    for i in range(self.actors.num_local_actors):
      self._spawn(i)

  def _spawn(self, actor_id: int):
    path = os.path.join(self.actor_dir, f'actor-{actor_id}.log')
    log_file = open(path, 'ab')  # pylint: disable=consider-using-with  (closed in close())
    if actor_id in self._logs:
      self._logs[actor_id].close()
    self._logs[actor_id] = log_file
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get('TF_CPP_MIN_LOG_LEVEL', '2'))
    self.processes[actor_id] = subprocess.Popen(self.command(actor_id), stdout=log_file,
                                                stderr=subprocess.STDOUT, env=env)
    self._write_pids()
    self._log(f'actor {actor_id} started (pid {self.processes[actor_id].pid}, log {path})')

  def _write_pids(self):
    fileio.write_text_atomic(os.path.join(self.actor_dir, PIDS), json.dumps(
        {str(i): p.pid for i, p in self.processes.items()}))

  def supervise(self):
    """Restarts local actors that exited (or drops them); returns the live ones."""
    for actor_id, process in list(self.processes.items()):
      code = process.poll()
      if code is None:
        continue
      if self.actors.restart_actors and self.restarts < self.actors.max_restarts:
        self.restarts += 1
        self._log(f'actor {actor_id} (pid {process.pid}) exited with status {code}: '
                  f'restarting it (restart {self.restarts}/{self.actors.max_restarts})')
        self._spawn(actor_id)
      else:
        self._log(f'actor {actor_id} (pid {process.pid}) exited with status {code}: going on '
                  f'without it ({len(self.processes) - 1} local actors left)')
        del self.processes[actor_id]
        self._write_pids()
    return len(self.processes)

  # ---------------------------------------------------------------- weights and counting

  def env_step_limit(self, step: int) -> int:
    return actor_env_step_limit(step, int(self.collection.initial_env_steps.numpy()), self.ratio,
                                self.actors.weight_push_interval, self.actors.max_steps_ahead,
                                self.min_transitions)

  def push(self, step: int):
    """The Q-network's weights, the train step and the actors' env-step limit."""
    reverb_tables.push_weights(self._container, self.q_network.variables, step,
                               self.env_step_limit(step))
    self.pushes += 1
    self.last_push_step = step

  def maybe_push(self, step: int):
    if self.last_push_step is None or step - self.last_push_step >= (
        self.actors.weight_push_interval):
      self.push(step)

  def sync_counters(self):
    """The run's env steps := transitions ever inserted into the sim table."""
    inserted = self.replay.num_inserted
    self.collection.env_steps.assign(inserted)
    stats = self.collection.stats
    stats['collect_steps'] = inserted - self._start_inserted
    stats['collect_seconds'] = time.time() - self._start_time
    return inserted

  def wait(self, step: int, poll_seconds: float = 0.05):
    """Blocks until the actors' env steps cover train step ``step``; see the module docstring.
    Says what it waits for every ``WAIT_LOG_SECONDS``."""
    last, last_change = None, time.time()
    last_log = time.time()
    while True:
      self.maybe_push(step)
      inserted = self.sync_counters()
      if (self.collection.on_policy_steps >= (step + 1) * self.ratio and
          self.replay.num_transitions >= self.min_transitions):
        return
      if time.time() - last_log >= WAIT_LOG_SECONDS:
        last_log = time.time()
        self._log(f'train step {step} waits for the actors: {self.collection.on_policy_steps} '
                  f'of {(step + 1) * self.ratio:.0f} on-policy env steps, the table holds '
                  f'{self.replay.num_transitions} of Replay.min_replay_transitions='
                  f'{self.min_transitions}; actors may insert up to env step '
                  f'{self.env_step_limit(step)} ({inserted} so far)')
      if inserted != last:
        last, last_change = inserted, time.time()
      elif time.time() - last_change > self.actors.stall_timeout:
        raise RuntimeError(
            f'no transition was inserted into the Reverb table at {self.address} for '
            f'{self.actors.stall_timeout:.0f}s (Actors.stall_timeout) while train step {step} '
            f'waits for {(step + 1) * self.ratio:.0f} on-policy env steps (has '
            f'{self.collection.on_policy_steps}); local actors alive: '
            f'{len(self.processes)}; their logs are in {self.actor_dir}')
      if not self.supervise() and self.actors.reverb_port is None:
        raise RuntimeError(
            f'every local actor died and none can connect from elsewhere (Actors.reverb_port is '
            f'None) while train step {step} waits for {(step + 1) * self.ratio:.0f} on-policy '
            f'env steps (has {self.collection.on_policy_steps}); their logs are in '
            f'{self.actor_dir}')
      time.sleep(poll_seconds)

  def checkpoint(self) -> str:
    return self.replay.client.checkpoint()

  def close(self, grace_seconds: float = 10.0):
    """Stops the local actors (SIGTERM, then SIGKILL after ``grace_seconds``) and the server."""
    stop_processes(self.processes.values(), grace_seconds)
    self.processes = {}
    self._write_pids()
    for f in self._logs.values():
      f.close()
    self._logs = {}
    if self.server is not None:
      self.server.stop()
    else:  # the server process checkpoints on SIGTERM
      info = _read_json(os.path.join(self.checkpoint_dir, SERVER_INFO)) or {}
      if self.server_process is not None:
        stop_processes([self.server_process], grace_seconds=120)
        self._server_log.close()
      elif info.get('pid'):  # a server this learner found running
        if fileio.pid_alive(info['pid']) and SERVER_MODULE in _cmdline(info['pid']):
          os.kill(int(info['pid']), signal.SIGTERM)
          deadline = time.time() + 120
          while fileio.pid_alive(info['pid']) and time.time() < deadline:
            time.sleep(0.2)
