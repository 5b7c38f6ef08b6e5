"""Distributed QT-Opt collection (issue 21): a learner with Reverb actor processes, tiny sizes.

Every process a test starts is killed by the test (by pid) or stopped by the learner; the
subprocess waits have timeouts.
"""

import math
import json
import os
import re
import signal
import subprocess
import sys
import time

import gin
import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan import configurables  # noqa: F401  (registers the configurables)
from rl_cyclegan import fileio
from rl_cyclegan.actors import policies
from rl_cyclegan.actors import reverb_actor
from rl_cyclegan.envs import grasping
from rl_cyclegan.networks import q_network as q_network_lib
from rl_cyclegan.pipelines import chaos
from rl_cyclegan.pipelines import train_qtopt
from rl_cyclegan.replay import reverb_tables
from rl_cyclegan.train import distributed
from rl_cyclegan.train import runner

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = list(chaos.TINY_BINDINGS) + [
    'Environment.num_envs = 1', 'Exploration.initial_collect_episodes = 2',
    'Evaluation.num_eval_episodes = 1', 'Evaluation.eval_interval = 100000',
    'train_eval.batch_size = 4', "train_eval.eval_appearances = ('sim',)",
    'Actors.num_local_actors = 2']
TIMEOUT = 300  # seconds for any one learner process


def _alive(pid):
  return fileio.pid_alive(int(pid))


def _kill(pids):
  for pid in pids:
    if _alive(pid):
      os.kill(int(pid), signal.SIGKILL)


def _actor_pids(root):
  path = os.path.join(root, 'actors', distributed.PIDS)
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    text = f.read()
  return {int(k): v for k, v in json.loads(text).items()} if text else {}


def _learner(root, steps, extra=(), log_name='learner.log'):
  """tools/train_qtopt.py on ``root`` as a subprocess; returns (Popen, log path)."""
  bindings = TINY + [f'train_eval.num_train_steps = {steps}', *extra]
  argv = [sys.executable, os.path.join(REPO, 'tools', 'train_qtopt.py'), '--root_dir', root,
          '--gin_file', os.path.join(REPO, 'gin', 'qtopt_common.gin')]
  for b in bindings:
    argv += ['--gin_bindings', b]
  os.makedirs(root, exist_ok=True)
  path = os.path.join(root, log_name)
  with open(path, 'ab') as log:
    proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
  return proc, path


def _read(path):
  with open(path, errors='replace') as f:
    return f.read()


def _wait_for(predicate, what, proc, timeout=TIMEOUT):
  deadline = time.time() + timeout
  while time.time() < deadline:
    value = predicate()
    if value:
      return value
    if proc is not None and proc.poll() is not None:
      raise AssertionError(f'the learner exited ({proc.returncode}) before {what}')
    time.sleep(0.2)
  raise AssertionError(f'timed out waiting for {what}')


def _step_logged(path, minimum):
  steps = [int(s) for s in re.findall(r'step (\d+)/\d+ loss', _read(path))]
  return steps and max(steps) >= minimum


def test_learner_trains_with_two_local_actors_and_stops_them(tmp_path, monkeypatch):
  started = []
  popen = distributed.subprocess.Popen

  def recording_popen(*args, **kwargs):
    process = popen(*args, **kwargs)
    started.append(process.pid)
    return process

  monkeypatch.setattr(distributed.subprocess, 'Popen', recording_popen)
  gin.clear_config()
  gin.parse_config(TINY + ['Checkpointing.log_interval = 10'])
  root = str(tmp_path / 'run')
  try:
    result = train_qtopt.train_eval(root, num_train_steps=40)
  finally:
    _kill(started)
    gin.clear_config()
  assert result['final_step'] == 40
  assert len(started) == 2 and result['actor_restarts'] == 0
  # The collection ratio (1 env step per train step) counted from the table's inserts.
  initial = 2 * 1  # at least one step per initial episode
  assert result['env_steps'] >= 40 + initial
  assert result['sim_table_transitions'] == result['env_steps']  # capacity not reached
  assert result['weight_pushes'] >= 40 // runner.Actors().weight_push_interval
  for i in range(2):
    text = _read(os.path.join(root, 'actors', f'actor-{i}.log'))
    assert f'actor {i}: pulled the weights of train step' in text
  assert not any(_alive(p) for p in started), 'the learner left an actor running'
  assert _actor_pids(root) == {}
  assert os.listdir(os.path.join(root, 'replay', 'reverb'))  # Reverb checkpoints


@pytest.mark.slow  # ~2 min: processes killed and restarted (CI runs it, .ci/run)
@pytest.mark.parametrize('restart', [True, False], ids=['restarted', 'dropped'])
def test_a_killed_actor_is_restarted_or_dropped_and_the_learner_goes_on(tmp_path, restart):
  root = str(tmp_path / 'run')
  # A few hundred steps (issue 21). Actors may run only 2 train steps ahead, so the learner
  # keeps needing them after the kill.
  proc, log = _learner(root, 200, ['Checkpointing.log_interval = 5',
                                  'Actors.max_steps_ahead = 0', 'Actors.weight_push_interval = 2',
                                  f'Actors.restart_actors = {restart}'])
  seen = set()
  try:
    _wait_for(lambda: _step_logged(log, 10), 'train step 10', proc)
    pids = _actor_pids(root)
    seen.update(pids.values())
    assert set(pids) == {0, 1}
    os.kill(pids[0], signal.SIGKILL)
    victim = pids[0]
    if restart:
      _wait_for(lambda: _actor_pids(root).get(0) not in (None, victim), 'the restart', proc)
      seen.update(_actor_pids(root).values())
    assert proc.wait(TIMEOUT) == 0, _read(log)[-3000:]
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()
    _kill(seen | set(_actor_pids(root).values()))
  text = _read(log)
  assert 'step 200/200' in text
  assert f'actor 0 (pid {victim}) exited with status -9' in text
  actor0 = _read(os.path.join(root, 'actors', 'actor-0.log'))
  if restart:
    assert 'restarting it' in text
    pulled = [int(s) for s in re.findall(r'pulled the weights of train step (\d+)', actor0)]
    assert len(pulled) == 2 and pulled[1] >= 10  # the new actor got the current weights
  else:
    assert 'going on without it (1 local actors left)' in text
  assert not any(_alive(p) for p in seen)


def _server_info(root):
  return distributed._read_json(  # pylint: disable=protected-access
      os.path.join(root, 'replay', 'reverb', distributed.SERVER_INFO)) or {}


def _server_pid(root):
  return _server_info(root).get('pid')


@pytest.mark.slow  # ~95 s: a learner killed and resumed (CI runs it, .ci/run)
@pytest.mark.parametrize('separate', [False, True], ids=['server_in_learner', 'server_process'])
def test_a_killed_learner_resumes_its_step_and_its_reverb_table(tmp_path, separate):
  """In the learner, the server's table comes back from the Reverb checkpoint of the step the
  learner resumes from; a separate server process keeps every insert over the learner's kill."""
  root = str(tmp_path / 'run')
  settings = ['Checkpointing.checkpoint_interval = 10', 'Checkpointing.log_interval = 5',
              f'Actors.separate_server = {separate}']
  proc, log = _learner(root, 1000, settings)
  line = re.compile(r'checkpoint at step (\d+) with a Reverb checkpoint of the sim table taken '
                    r'at (\d+)-(\d+) inserted')
  seen = set()
  try:
    def checkpointed():
      seen.update(_actor_pids(root).values())
      found = line.findall(_read(log))
      return found if found and int(found[-1][0]) >= 20 else None
    _wait_for(checkpointed, 'a checkpoint at step 20', proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(60)
    _kill(seen | set(_actor_pids(root).values()))  # no insert after this
    at_kill = None
    if separate:
      server = _server_pid(root)
      assert server and _alive(server), 'the server process died with the learner'
      client = reverb_tables.wait_for_server(f'localhost:{_server_info(root)["port"]}')
      info = reverb_tables.table_info(client)
      at_kill = (int(info.current_size), reverb_tables.inserted(client))
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()
    _kill(seen | set(_actor_pids(root).values()))
    if not separate and _server_pid(root):
      _kill([_server_pid(root)])
  before = {int(s): (int(n), int(i)) for s, n, i in line.findall(_read(log))}
  proc, log2 = _learner(root, 0, settings, log_name='learner2.log')  # resume, no train step
  try:
    assert proc.wait(TIMEOUT) == 0, _read(log2)[-3000:]
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()
    _kill(_actor_pids(root).values())
    if separate and _server_pid(root) and _alive(_server_pid(root)):
      _kill([_server_pid(root)])
      pytest.fail('the learner left its server process running')
  text = _read(log2)
  step = int(re.search(r'resumed from \S+ at train step (\d+)', text).group(1))
  counts = re.search(r'\): (\d+) sim transitions, (\d+) inserted so far', text)
  counts = (int(counts.group(1)), int(counts.group(2)))
  assert step in before, (step, before)
  first, last = before[step]  # the insert count while the Reverb checkpoint was taken
  assert first > 0
  if separate:  # every insert, also those after the last checkpoint
    assert 'still running' in text
    assert counts == at_kill and counts[1] >= last
  else:  # the newest Reverb checkpoint: the resumed step's, or the next one's
    assert 'restored from' in text
    # A checkpoint writes the Reverb table first, then the learner's (runner.save_checkpoint),
    # so a kill between the two resumes the learner at step S with the table of the save after
    # S (seen in CI under load: 69 inserted against step 20's 66). The table never holds less
    # than the resumed step's.
    assert counts[1] >= first and counts[0] == counts[1]  # nothing evicted (capacity)


def test_an_actor_pulls_the_learners_current_weights(tmp_path):
  """A new ReverbActor (what a restarted actor process builds) gets the newest push."""
  gin.clear_config()
  gin.parse_config(TINY)
  settings = runner.Settings()
  env = settings.environment
  learner_q = q_network_lib.GraspingQNetwork(crop_size=env.crop_size, name='Q')
  learner_q.create_variables()
  server = reverb_tables.ReplayServer(str(tmp_path / 'reverb'), env.render_size, 100, 2,
                                      learner_q.variables)
  envs, messages = [], []
  try:
    container = reverb_tables.weight_container(server.address)

    def push(step):
      reverb_tables.push_weights(container, learner_q.variables, step, env_step_limit=1000)

    def new_actor(actor_id):
      q = q_network_lib.GraspingQNetwork(crop_size=env.crop_size, name='Q')
      q.create_variables()
      policy = policies.CEMPolicy(q, render_size=env.render_size, crop_size=env.crop_size,
                                  allowed_modes=env.allowed_modes, seed=0)
      envs.append(env.make_env('sim', 'train', 1))

      def replacement(i):  # a diverged env's replacement (closed in `finally` too)
        envs.append(env.make_env('sim', 'train', 1))
        return envs[-1]

      return reverb_actor.ReverbActor(server.address, [envs[-1]], policy,
                                      settings.exploration.at, actor_id, 0, env.render_size,
                                      log=messages.append, make_env=replacement)

    push(3)
    first = new_actor(0)
    assert first.pull() == 3
    learner_q.variables[0].assign(learner_q.variables[0] + 0.5)  # the learner trained on
    push(9)
    restarted = new_actor(0)
    assert restarted.pull() == 9
    for mine, theirs in zip(restarted.policy.q_network.variables, learner_q.variables):
      np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert not np.array_equal(first.policy.q_network.variables[0].numpy(),
                              learner_q.variables[0].numpy())  # the old copy is stale
    diverging = restarted.envs[0]

    def diverged(action):
      raise grasping.PhysicsDivergedError('the fingertip position is [nan, nan, nan]')

    diverging.step = diverged  # its physics diverges at the episode's first step
    assert restarted.run(max_episodes=1) == 1  # a new env ran the episode again
    assert restarted.envs[0] is envs[-1] is not diverging
    assert any('a new environment runs it again' in m for m in messages), messages
    assert reverb_tables.table_info(restarted.client).current_size >= 1
  finally:
    for e in envs:
      e.close()
    server.stop()
    gin.clear_config()


def _pipeline(**kwargs):
  return runner.Pipeline(name='p', learner=None, train_step=None, write_summaries=None,
                         progress_head=None, eval_policies={}, run_spec={}, **kwargs)


def test_actor_settings_are_checked_naming_the_setting():
  gin.clear_config()
  try:
    assert not runner.Actors().distributed  # the default: in-process collection
    assert runner.Actors(reverb_port=8000).distributed
    with pytest.raises(TypeError, match='Actors.num_local_actors'):
      runner.Actors(num_local_actors=-1)
    settings, _ = runner.Settings.with_overrides(num_local_actors=2)
    with pytest.raises(ValueError, match='only train_qtopt'):
      runner.check_actors(settings, _pipeline(), True)
    with pytest.raises(ValueError, match='collect_steps_per_train_step'):
      runner.check_actors(settings, _pipeline(actor_bindings=()), False)
    settings, _ = runner.Settings.with_overrides(num_local_actors=2, sim_episode_dir='/logs')
    with pytest.raises(ValueError, match='Replay.sim_log_fraction'):
      runner.check_actors(settings, _pipeline(actor_bindings=()), True)
    settings, _ = runner.Settings.with_overrides(num_local_actors=2, sim_episode_dir='/logs',
                                                 sim_log_fraction=0.5)
    runner.check_actors(settings, _pipeline(actor_bindings=()), True)
  finally:
    gin.clear_config()


def test_the_actors_may_always_fill_the_table_to_what_the_learner_waits_for():
  # The Sim-Only recipe with actors (2 env steps per train step, pushes every 10 steps, 50 steps
  # ahead, no initial episodes, 256 transitions before the first step) stood still: the actors
  # stopped at 120 inserts while the learner waited for 256 (session 19).
  for step, initial, ratio, interval, ahead, minimum in [
      (0, 0, 2.0, 10, 50, 256), (0, 12, 1.0, 2, 0, 64), (7, 0, 0.5, 1, 0, 9),
      (100, 30, 2.0, 10, 50, 256), (0, 0, 2.0, 10, 50, 1)]:
    limit = distributed.actor_env_step_limit(step, initial, ratio, interval, ahead, minimum)
    # What ActorFeed.wait(step) needs: (step + 1) x ratio on-policy steps and a table of minimum.
    assert limit >= initial + math.ceil((step + 1) * ratio) and limit >= minimum
  assert distributed.actor_env_step_limit(0, 0, 2.0, 10, 50, 256) == 256
  assert distributed.actor_env_step_limit(100, 30, 2.0, 10, 50, 256) == 30 + 320  # the ratio


def test_the_actor_gin_holds_every_setting_and_parses(tmp_path):
  gin.clear_config()
  try:
    settings, _ = runner.Settings.with_overrides(render_size=(32, 40), crop_size=(32, 32),
                                                 num_local_actors=3)
    path = distributed.write_actor_gin(str(tmp_path / 'actor.gin'), settings,
                                       ["train_eval.generator_checkpoint = 'runs/g'"])
    gin.clear_config()
    gin.parse_config_file(path)
    again = runner.Settings()
    assert again == settings
    assert gin.get_bindings('train_eval')['generator_checkpoint'] == 'runs/g'
  finally:
    gin.clear_config()


@pytest.mark.parametrize('translate_frames', [True, False], ids=['frames', 'crops'])
def test_a_final_q_actor_loads_the_frozen_g_and_inserts(tmp_path, translate_frames):
  """The final Q's actor (run_actor) builds G from train_eval.generator_checkpoint: whole
  frames in a sim-to-real env, or the policy's per-crop transform."""
  from rl_cyclegan.envs import sim2real  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.run_dir import NetworkSpec  # pylint: disable=g-import-not-at-top
  gin.clear_config()
  bindings = TINY + ['UNetGenerator.filters = (8, 16)']
  gin.parse_config(bindings)
  settings = runner.Settings()
  env = settings.environment
  generator = NetworkSpec('UNetGenerator').build(env.crop_size)
  prefix = tf.train.Checkpoint(G_sim2real=generator).save(str(tmp_path / 'g' / 'ckpt'))
  gin.parse_config([f"train_eval.generator_checkpoint = '{prefix}'",
                    f'train_eval.translate_frames = {translate_frames}'])
  learner_q = q_network_lib.GraspingQNetwork(crop_size=env.crop_size, name='Q')
  learner_q.create_variables()
  server = reverb_tables.ReplayServer(str(tmp_path / 'reverb'), env.render_size, 100, 2,
                                      learner_q.variables)
  try:
    g, translator, crop_transform, make_env = train_qtopt.collection_parts(
        settings, prefix, translate_frames=translate_frames)
    assert g is not None and (translator is not None) == translate_frames
    assert (crop_transform is not None) == (not translate_frames)
    e = make_env('sim', 'train', 0)
    assert isinstance(e, sim2real.Sim2RealEnv) == translate_frames
    e.close()
    reverb_tables.push_weights(reverb_tables.weight_container(server.address),
                               learner_q.variables, 0, env_step_limit=1000)
    assert train_qtopt.run_actor(server.address, 0, max_episodes=1, log=lambda m: None) == 1
    client = reverb_tables.wait_for_server(server.address)
    assert reverb_tables.table_info(client).current_size >= 1
  finally:
    server.stop()
    gin.clear_config()


@pytest.mark.parametrize('restart', [True, False], ids=['restarts_capped', 'no_restarts'])
def test_the_learner_fails_naming_the_logs_when_every_local_actor_is_gone(
    tmp_path, monkeypatch, restart):
  """Actors that exit at once (a stand-in command): restarted up to Actors.max_restarts, then
  the learner's wait fails instead of waiting for the stall timeout."""
  from rl_cyclegan.train import loop  # pylint: disable=g-import-not-at-top
  gin.clear_config()
  gin.parse_config(TINY)
  monkeypatch.setattr(distributed, 'actor_command',
                      lambda *args, **kwargs: [sys.executable, '-c', 'import sys; sys.exit(3)'])
  settings, _ = runner.Settings.with_overrides(restart_actors=restart, max_restarts=2)
  q = q_network_lib.GraspingQNetwork(crop_size=settings.environment.crop_size, name='Q')
  q.create_variables()
  collection = loop.SimCollection(str(tmp_path), False, None, 'sim', 1, (32, 40), 100, 4, 0,
                                  log=lambda m: None)
  messages = []
  feed = distributed.ActorFeed(str(tmp_path), settings, q, 0, 1.0, collection,
                               log=messages.append)
  try:
    feed.start_actors()
    with pytest.raises(RuntimeError, match='every local actor died.*actors'):
      feed.wait(0)
    assert feed.restarts == (2 if restart else 0)
    assert sum('exited with status 3' in m for m in messages) == (2 + 2 if restart else 2)
  finally:
    feed.close()
    gin.clear_config()
  assert _actor_pids(str(tmp_path)) == {}


def test_progress_rate_reads_the_training_log():
  from rl_cyclegan.train import benchmark_actors  # pylint: disable=g-import-not-at-top
  lines = ['[train_qtopt 23:59:50] step 100/32000 loss 0.3 | 2.00 steps/s ...',
           'something else', '[train_qtopt 23:59:55] eval step 100 ...',
           '[train_qtopt 00:00:10] step 160/32000 loss 0.2 | 3.00 steps/s ...']
  assert benchmark_actors.progress_rate(lines) == (3.0, 100, 160)  # across midnight
  rate, first, last = benchmark_actors.progress_rate(lines[:2])
  assert math.isnan(rate) and (first, last) == (-1, -1)


@pytest.mark.slow  # ~3 min: two short training runs (CI runs it, .ci/run)
def test_recipe_rates_runs_the_recipe_in_process_and_with_actors(tmp_path):
  from rl_cyclegan.train import benchmark_actors  # pylint: disable=g-import-not-at-top
  bindings = [b for b in TINY if not b.startswith('Actors.')] + [
      'train_eval.num_train_steps = 100000', 'Checkpointing.log_interval = 5']
  lines = []
  out = benchmark_actors.recipe_rates([os.path.join(REPO, 'gin', 'qtopt_common.gin')], bindings,
                                      seconds=75, actor_counts=(0, 1),
                                      work_dir=str(tmp_path / 'recipe'),  # made by the benchmark
                                      print_fn=lines.append)
  assert set(out) == {'in-process', '1 actor'}
  # Each row says how much of the CPU other processes took while it ran.
  assert len([m for m in lines if 'other processes used' in m]) == 2, lines
  for key, row in out.items():
    assert row['exit_code'] == 130, (key, row)  # SIGTERM: saved a checkpoint and stopped
    assert row['train_steps_per_s'] > 0 and row['train_steps'] > row['progress_steps'][0] >= 0
    assert row['env_steps'] >= row['train_steps']  # 1 env step per train step, or ahead
