"""Throughput of distributed collection: env steps/s in-process vs N actor processes, and
Reverb insert / sample rates of transitions at a given render size.

``collection_rates``: the same CEM policy (gin's Q-network, untrained) and envs
(``runner.Environment``) collect for ``seconds``: in-process (``rollout.run_episodes`` into a
``TransitionReplay``, what ``SimCollection`` does) and with 1, 2, ... actor processes inserting
into a Reverb table (counted from the table's inserts once every actor has inserted, so
process start-up is left out).

``recipe_rates``: a training recipe (e.g. gin/qtopt_sim_only.gin) run by the train_qtopt binary
for the same wall time in-process and with N local actor processes (``Actors.num_local_actors``),
one after the other; train steps/s from the run's progress lines after its first one (start-up,
the log's refill and tracing left out), env steps/s from the checkpoint SIGTERM saves.

``reverb_rates``: synthetic episodes inserted through ``EpisodeInserter`` and batches sampled
through ``ReverbReplay`` (crop + conversion included), against the in-process
``TransitionReplay`` doing the same.

Figures only, no asserts. Each section (each recipe row) says how much of the machine's CPU
time other processes used while it ran (``hardware.MachineShare``): above 5%, its rates are
lower bounds.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from rl_cyclegan import hardware
from rl_cyclegan.actors import policies
from rl_cyclegan.actors import rollout
from rl_cyclegan.data import episodes as episodes_lib
from rl_cyclegan.networks import q_network as q_network_lib
from rl_cyclegan.replay import buffers as replay_lib
from rl_cyclegan.replay import reverb_tables
from rl_cyclegan.train import distributed
from rl_cyclegan.train import runner

def _q_network(crop_size):
  q = q_network_lib.GraspingQNetwork(crop_size=crop_size, name='Q')
  q.create_variables()
  return q


def in_process_rate(settings: runner.Settings, seconds: float, seed: int = 0) -> float:
  """Env steps/s of in-process collection (one process, ``Environment.num_envs`` envs)."""
  env = settings.environment
  q = _q_network(env.crop_size)
  policy = policies.CEMPolicy(q, render_size=env.render_size, crop_size=env.crop_size,
                              allowed_modes=env.allowed_modes, seed=seed)
  action_fn = policies.policy_action_fn(policy, name='bench')
  envs = [env.make_env(env.appearance, 'train', seed + i) for i in range(env.num_envs)]
  replay = replay_lib.TransitionReplay(env.render_size, 10_000)
  try:
    replay.add_episodes(rollout.run_episodes(envs, action_fn, len(envs)))  # traces the policy
    steps, start = 0, time.time()
    while time.time() - start < seconds:
      episodes = rollout.run_episodes(envs, action_fn, len(envs))
      replay.add_episodes(episodes)
      steps += sum(int(e.actions.shape[0]) for e in episodes)
    return steps / (time.time() - start)
  finally:
    for e in envs:
      e.close()


def actor_rate(settings: runner.Settings, num_actors: int, seconds: float, seed: int = 0,
               startup_timeout: float = 300.0, log: Callable[[str], None] = print) -> float:
  """Env steps/s inserted by ``num_actors`` actor processes (start-up excluded)."""
  env = settings.environment
  q = _q_network(env.crop_size)
  work = tempfile.mkdtemp(prefix='bench-actors-')
  server = reverb_tables.ReplayServer(os.path.join(work, 'reverb'), env.render_size,
                                      capacity=100_000, min_size=1, variables=q.variables)
  processes, logs, failed = [], [], True
  try:
    reverb_tables.push_weights(reverb_tables.weight_container(server.address), q.variables,
                               train_step=0, env_step_limit=2**62)  # the actors never wait
    gin_path = distributed.write_actor_gin(os.path.join(work, 'actor.gin'), settings)
    for i in range(num_actors):
      logs.append(open(os.path.join(work, f'actor-{i}.log'), 'wb'))  # pylint: disable=consider-using-with
      processes.append(subprocess.Popen(
          distributed.actor_command(server.address, i, seed, gin_path), stdout=logs[-1],
          stderr=subprocess.STDOUT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')))
    client = reverb_tables.wait_for_server(server.address)
    # Start-up (TF import, envs, tracing): until the table holds as many transitions as there
    # are envs in all the actors, then 2 s more.
    deadline = time.time() + startup_timeout
    while reverb_tables.inserted(client) < num_actors * env.num_envs:
      if time.time() > deadline or any(p.poll() is not None for p in processes):
        raise RuntimeError(f'actors did not start within {startup_timeout:.0f}s; logs in {work}')
      time.sleep(0.2)
    time.sleep(2.0)
    first, start = reverb_tables.inserted(client), time.time()
    time.sleep(seconds)
    rate = (reverb_tables.inserted(client) - first) / (time.time() - start)
    failed = False
    return rate
  except Exception:
    log(f'  {num_actors} actor(s) failed: logs in {work}')
    raise
  finally:
    distributed.stop_processes(processes)
    for f in logs:
      f.close()
    server.stop()
    if not failed:
      shutil.rmtree(work, ignore_errors=True)


def collection_rates(settings: runner.Settings, actor_counts: Sequence[int] = (1, 2),
                     seconds: float = 20.0, print_fn: Callable[[str], None] = print):
  """Prints and returns {'in-process': rate, '1 actor': rate, ...} (env steps/s)."""
  env = settings.environment
  share = hardware.MachineShare()
  print_fn(f'collection at {env.render_size[0]}x{env.render_size[1]}, {env.num_envs} env(s) '
           f'per process, {seconds:.0f}s each')
  out = {'in-process': in_process_rate(settings, seconds)}
  print_fn(f'  in-process: {out["in-process"]:.1f} env steps/s')
  for n in actor_counts:
    key = f'{n} actor{"s" if n > 1 else ""}'
    out[key] = actor_rate(settings, n, seconds, log=print_fn)
    print_fn(f'  {key}: {out[key]:.1f} env steps/s (x{out[key] / max(out["in-process"], 1e-9):.2f} '
             'in-process)')
  print_fn(f'  {share.note()}')
  return out


_PROGRESS_RE = re.compile(r'^\[\w+ (\d\d):(\d\d):(\d\d)\] step (\d+)/\d+ ')


def progress_rate(lines: Sequence[str]) -> Tuple[float, int, int]:
  """(train steps/s, first step, last step) between the first and the last progress line of a
  training log ('[train_qtopt 12:00:01] step 100/32000 ...'); (nan, -1, -1) with fewer than 2."""
  points = []
  for line in lines:
    m = _PROGRESS_RE.match(line)
    if m:
      h, mi, sec, step = (int(v) for v in m.groups())
      points.append((h * 3600 + mi * 60 + sec, step))
  if len(points) < 2:
    return float('nan'), -1, -1
  (t0, s0), (t1, s1) = points[0], points[-1]
  elapsed = (t1 - t0) % 86_400  # across midnight
  return (s1 - s0) / max(elapsed, 1), s0, s1


def run_for(argv: Sequence[str], seconds: float, log_path: str, env=None) -> int:
  """Runs ``argv`` for ``seconds``, then SIGTERM (a training binary saves a checkpoint and
  exits); output in ``log_path``. Returns the exit code."""
  with open(log_path, 'wb') as log_file:
    process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    try:
      process.wait(seconds)
    except subprocess.TimeoutExpired:
      distributed.stop_processes([process], grace_seconds=120.0)
  return process.returncode


def recipe_rates(gin_files: Sequence[str], gin_bindings: Sequence[str], seconds: float,
                 actor_counts: Sequence[int] = (0, 2), work_dir: Optional[str] = None,
                 print_fn: Callable[[str], None] = print) -> Dict[str, Dict[str, float]]:
  """Runs the train_qtopt binary (python -m rl_cyclegan.cli.train_qtopt) with the recipe for
  ``seconds`` per configuration (0 actors: in-process collection) and prints / returns
  {config: {train_steps_per_s, env_steps_per_s, train_steps, env_steps}}. The runs'
  directories stay in ``work_dir`` (default: a temp dir)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  work = work_dir or tempfile.mkdtemp(prefix='bench-recipe-')
  os.makedirs(work, exist_ok=True)
  print_fn(f'recipe {" ".join(gin_files)}: {seconds / 60:.1f} min per configuration, run '
           f'directories in {work}')
  out = {}
  for n in actor_counts:
    key = 'in-process' if n == 0 else f'{n} actor{"s" if n > 1 else ""}'
    root = os.path.join(work, key.replace(' ', '_'))
    argv = [sys.executable, '-m', 'rl_cyclegan.cli.train_qtopt', f'--root_dir={root}']
    argv += [a for g in gin_files for a in ('--gin_file', g)]
    argv += [a for b in list(gin_bindings) + [f'Actors.num_local_actors = {n}']
             for a in ('--gin_bindings', b)]
    log_path = os.path.join(work, f'{key.replace(" ", "_")}.log')
    share = hardware.MachineShare()
    code = run_for(argv, seconds, log_path, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
    with open(log_path, errors='replace') as f:
      rate, first, last = progress_rate(f.read().splitlines())
    ckpt = tf.train.latest_checkpoint(os.path.join(root, 'train', 'ckpt'))
    env_steps = train_steps = -1
    if ckpt:
      reader = tf.train.load_checkpoint(ckpt)
      names = reader.get_variable_to_shape_map()
      env_key = next((k for k in names if k.startswith('env_steps/')), None)
      step_key = next((k for k in names if k.startswith('train_step/')), None)
      env_steps = int(reader.get_tensor(env_key)) if env_key else -1
      train_steps = int(reader.get_tensor(step_key)) if step_key else -1
    out[key] = {'train_steps_per_s': rate, 'train_steps': train_steps, 'env_steps': env_steps,
                'env_steps_per_s': rate * env_steps / train_steps if train_steps > 0 else
                float('nan'), 'exit_code': code, 'progress_steps': (first, last),
                'other_cpu_fraction': share.other_fraction()}
    print_fn(f'  {key}: {rate:.2f} train steps/s over steps {first}-{last}; at the SIGTERM '
             f'checkpoint {train_steps} train steps, {env_steps} env steps (exit {code}; log '
             f'{log_path})')
    print_fn(f'    {share.note()}')
  base = out.get('in-process', {}).get('train_steps_per_s')
  for key, row in out.items():
    if base and key != 'in-process':
      print_fn(f'  {key} / in-process: x{row["train_steps_per_s"] / base:.2f} train steps/s')
  return out


def reverb_rates(render_size: Sequence[int], crop_size: Sequence[int], num_transitions: int = 256,
                 batch_size: int = 32, num_batches: int = 10,
                 print_fn: Callable[[str], None] = print):
  """Prints and returns insert / sample rates (transitions/s) of Reverb and in-process."""
  episode_steps = 8
  episodes = [episodes_lib.synthetic_episode(episode_steps, tuple(render_size), seed=i)
              for i in range(max(1, num_transitions // episode_steps))]
  n = len(episodes) * episode_steps
  mb = 2 * np.prod(render_size) * 3 / 2**20
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  dummy = [tf.Variable(0.0)]  # the variable table needs a signature; no weights here
  work = tempfile.mkdtemp(prefix='bench-reverb-')
  share = hardware.MachineShare()
  server = reverb_tables.ReplayServer(os.path.join(work, 'reverb'), render_size,
                                      capacity=n, min_size=1, variables=dummy)
  out = {}
  try:
    replay = reverb_tables.ReverbReplay(server.address, render_size, n)
    start = time.time()
    replay.add_episodes(episodes)
    out['reverb_insert'] = n / (time.time() - start)
    replay.sample(batch_size, crop_size)  # first batch: connection and tracing
    start = time.time()
    for _ in range(num_batches):
      replay.sample(batch_size, crop_size)
    out['reverb_sample'] = num_batches * batch_size / (time.time() - start)
    t0 = time.time()
    server.checkpoint()
    out['reverb_checkpoint_s'] = time.time() - t0
  finally:
    server.stop()
    shutil.rmtree(work, ignore_errors=True)
  local = replay_lib.TransitionReplay(render_size, n)
  start = time.time()
  local.add_episodes(episodes)
  out['local_insert'] = n / (time.time() - start)
  local.sample(batch_size, crop_size)
  start = time.time()
  for _ in range(num_batches):
    local.sample(batch_size, crop_size)
  out['local_sample'] = num_batches * batch_size / (time.time() - start)
  print_fn(f'transitions at {render_size[0]}x{render_size[1]} ({mb:.2f} MiB each, two uint8 '
           f'images), {n} inserted, {num_batches} batches of {batch_size} cropped to '
           f'{crop_size[0]}x{crop_size[1]}:')
  print_fn(f'  Reverb:     insert {out["reverb_insert"]:.0f}/s, sample {out["reverb_sample"]:.0f}'
           f'/s, checkpoint of the table {out["reverb_checkpoint_s"]:.2f}s')
  print_fn(f'  in-process: insert {out["local_insert"]:.0f}/s, sample {out["local_sample"]:.0f}/s')
  print_fn(f'  {share.note()}')
  return out
