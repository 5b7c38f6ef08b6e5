"""The kill test of issue 20 (``tools/chaos.py``): tiny training runs SIGKILLed at random moments.

For each pipeline (train_qtopt, train_rl_cyclegan) a tiny run is first made once without a kill
(``reference``: which evaluations a finished run has). Then the same command runs in a fresh
directory and is SIGKILLed ``kills`` times, each time re-run (it resumes), and finally run to
the end. The kill moments are seeded: one during start-up and the initial collection, the
others a random 0-3 s after the run logs a random train step (so they land in train steps,
on-policy collection, checkpoint writes and evaluations). Between kills the on-disk state is
read: the episodes the run has made durable (closed shards and the complete records of open
ones) and the last line the run wrote (the phase the kill hit).

At the end, ``audit`` counts, for the table:
  evaluations missing   eval JSONs the reference run has and this one does not (must be 0)
  episodes lost         episodes durable after a kill and missing at the end (must be 0)
  in-progress lost      gaps in the run's episode indices: episodes in progress at a kill
                        (at most ``num_envs`` per kill)
  duplicate ids / seeds episodes sharing an id or an env seed (must be 0)
  corrupt files         episode shards, eval JSONs, run_spec.json or checkpoints that do not read
"""

import dataclasses
import json
import os
import random
import shutil
import signal
import subprocess
import re
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

from rl_cyclegan import run_dir
from rl_cyclegan.data import episodes as episodes_lib

_STEP_RE = re.compile(r'\bstep (\d+)/\d+')
SIM_LOG = run_dir.SIM_REPLAY_SUBDIR  # where the runner logs on-policy sim episodes
NUM_ENVS = 2  # lockstep envs: an episode can end before one started earlier

# Tiny networks and sizes shared by both pipelines (seconds per run on 2 cores).
TINY_BINDINGS = (
    'Environment.render_size = (32, 40)', 'Environment.crop_size = (32, 32)',
    f'Environment.num_envs = {NUM_ENVS}', 'Environment.num_objects = 2',
    'GraspingEnv.max_steps = 3', 'GraspingEnv.num_objects = 2',
    'Replay.min_replay_transitions = 4', 'Replay.episodes_per_shard = 3',
    'Exploration.initial_collect_episodes = 4', 'Exploration.collect_steps_per_train_step = 1.0',
    'Evaluation.num_eval_episodes = 2', 'Checkpointing.checkpoint_interval = 10',
    'Checkpointing.summary_interval = 5', 'Checkpointing.log_interval = 1',
    'GraspingQNetwork.stem_filters = 8', 'GraspingQNetwork.tower_filters = (8,)',
    'GraspingQNetwork.state_action_fc_units = (16,)', 'GraspingQNetwork.merged_filters = (8,)',
    'GraspingQNetwork.final_filters = (8,)', 'GraspingQNetwork.fc_units = (8,)',
    'GraspingQNetwork.num_keypoints = 4', 'GraspingQNetwork.stem_pool_size = 1')


@dataclasses.dataclass
class Pipeline:
  """One training binary at a tiny size."""
  name: str
  binary: str  # tools/<binary>.py
  gin_file: str
  bindings: Sequence[str]
  needs_real_log: bool = False


def pipelines(steps: int, eval_interval: int) -> Dict[str, Pipeline]:
  return {
      'train_qtopt': Pipeline('train_qtopt', 'train_qtopt', 'gin/qtopt_common.gin', [
          f'train_eval.num_train_steps = {steps}', 'train_eval.batch_size = 4',
          "train_eval.eval_appearances = ('sim',)", f'Evaluation.eval_interval = {eval_interval}',
          *TINY_BINDINGS]),
      'train_rl_cyclegan': Pipeline('train_rl_cyclegan', 'train_rl_cyclegan',
                                    'gin/rl_cyclegan.gin', [
          f'train_rl_cyclegan.num_train_steps = {steps}',
          'train_rl_cyclegan.batch_per_domain = 2',
          'train_rl_cyclegan.paired_set_num_states = 4',
          'train_rl_cyclegan.segmentation_set_num_states = 4',
          f'Evaluation.eval_interval = {eval_interval}',
          'UNetGenerator.filters = (8, 16)', 'MultiScaleDiscriminator.filters = (8, 16)',
          *TINY_BINDINGS], needs_real_log=True),
  }


# ----------------------------------------------------------------------------- reading a run


def durable_episodes(root: str) -> List[dict]:
  """Metadata of every episode on disk in ``root``'s sim log, open shards included (read-only)."""
  directory = os.path.join(root, SIM_LOG)
  out = []
  if not os.path.isdir(directory):
    return out
  for name in sorted(os.listdir(directory)):
    if '.tfrecord' not in name:
      continue
    try:
      for _, record in episodes_lib.read_records(os.path.join(directory, name)):
        out.append(episodes_lib.parse_episode(record, decode_images=False).metadata)
    except episodes_lib.EpisodeFormatError:
      pass  # an open shard's truncated tail: the episode being written
  return out


def corrupt_files(root: str) -> List[str]:
  """Files of a finished run that do not read (closed shards, eval JSONs, spec, checkpoint)."""
  bad = []
  sim_log = os.path.join(root, SIM_LOG)
  if os.path.isdir(sim_log):
    report = episodes_lib.validate_directory(sim_log)
    if not report.ok:
      bad.append(f'{sim_log}: {report}')
    bad += [os.path.join(sim_log, n) for n in os.listdir(sim_log)
            if episodes_lib.TMP_MARKER in n]  # an open shard left after a finished run
  for directory, name in ([(os.path.join(root, run_dir.EVAL_SUBDIR), n) for n in sorted(
      os.listdir(os.path.join(root, run_dir.EVAL_SUBDIR)))] if os.path.isdir(
          os.path.join(root, run_dir.EVAL_SUBDIR)) else []) + [(root, run_dir.RUN_SPEC)]:
    path = os.path.join(directory, name)
    if name.endswith('.json'):
      try:
        with open(path) as f:
          json.load(f)
      except (OSError, ValueError) as e:
        bad.append(f'{path}: {e}')
  skipped = []
  try:
    run_dir.latest_checkpoint(os.path.join(root, 'train', 'ckpt'), log=skipped.append)
  except ValueError as e:
    bad.append(str(e))
  bad += skipped
  return bad


def eval_files(root: str) -> List[str]:
  directory = os.path.join(root, run_dir.EVAL_SUBDIR)
  return sorted(n for n in os.listdir(directory) if n.endswith('.json')) if os.path.isdir(
      directory) else []


def audit(root: str, reference_evals: Sequence[str], after_kills: Sequence[List[dict]]) -> dict:
  """The table row of one killed-and-resumed run (see the module docstring)."""
  final = durable_episodes(root)
  ids = [str(m.get('episode_id')) for m in final]
  seeds = [int(m.get('seed', -1)) for m in final]
  indices = sorted(int(i.split('-')[1]) for i in ids if i.startswith('sim-'))
  gaps = (indices[-1] + 1 - len(set(indices))) if indices else 0
  final_ids = set(ids)
  lost = sorted({str(m.get('episode_id')) for snapshot in after_kills for m in snapshot}
                - final_ids)
  return {'evaluations_missing': sorted(set(reference_evals) - set(eval_files(root))),
          'episodes': len(final), 'episodes_lost': lost, 'in_progress_lost': gaps,
          'duplicate_ids': len(ids) - len(set(ids)),
          'duplicate_seeds': len(seeds) - len(set(seeds)), 'corrupt_files': corrupt_files(root)}


# ----------------------------------------------------------------------------- running


def _argv(repo: str, pipeline: Pipeline, root: str, real_log: Optional[str]) -> List[str]:
  argv = [sys.executable, os.path.join(repo, 'tools', f'{pipeline.binary}.py'),
          f'--root_dir={root}', '--gin_file', os.path.join(repo, pipeline.gin_file)]
  bindings = list(pipeline.bindings)
  if real_log:
    bindings.append(f"Replay.real_episode_dir = '{real_log}'")
  return argv + [a for b in bindings for a in ('--gin_bindings', b)]


def _run(argv, cwd, log_path, kill_at_step: Optional[int] = None, kill_after: float = 0.0,
         timeout: float = 900.0) -> Optional[str]:
  """Runs ``argv`` with its output in ``log_path``; returns None when it finished.

  With ``kill_at_step``: SIGKILLs it ``kill_after`` seconds after its progress log reports that
  train step (``kill_at_step=0``: ``kill_after`` seconds after the start, i.e. during start-up
  or the initial collection). Returns the last line it wrote then (the phase the kill hit).
  """
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  with open(log_path, 'a') as log:
    log.write(f'\n==== {" ".join(argv)}\n')
    log.flush()
    offset = log.tell()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
  start, reached = time.time(), None
  while proc.poll() is None:
    time.sleep(0.1)
    if time.time() - start > timeout:
      os.killpg(proc.pid, signal.SIGKILL)
      raise RuntimeError(f'{argv[1]} did not finish in {timeout:.0f}s; see {log_path}')
    if kill_at_step is None:
      continue
    if reached is None and (kill_at_step == 0 or _step(log_path, offset) >= kill_at_step):
      reached = time.time()
    if reached is not None and time.time() - reached >= kill_after:
      os.killpg(proc.pid, signal.SIGKILL)
      proc.wait()
      return _last_line(log_path)
  if proc.returncode != 0:
    raise RuntimeError(f'{argv[1]} exited {proc.returncode}; see {log_path}')
  return None


def _step(log_path, offset) -> int:
  """The newest train step the run's progress lines report ('step 24/60'), or -1."""
  with open(log_path, errors='replace') as f:
    f.seek(offset)
    steps = _STEP_RE.findall(f.read())
  return int(steps[-1]) if steps else -1


def _last_line(log_path):
  with open(log_path) as f:
    lines = [l.strip() for l in f if l.strip() and not l.startswith('====')]
  return lines[-1][:100] if lines else ''


def _real_log(repo, work_dir):
  out = os.path.join(work_dir, 'real_log')
  if not os.path.exists(os.path.join(out, 'summary.json')):
    subprocess.run([sys.executable, os.path.join(repo, 'tools', 'collect.py'),
                    f'--output_dir={out}', '--appearance=real', '--num_episodes=6',
                    '--episodes_per_shard=3', '--render_size=32x40', '--max_steps=3',
                    '--num_objects=2', '--num_workers=0', '--seed=7'],
                   cwd=repo, check=True, capture_output=True)
  return out


def kill_test(repo: str, work_dir: str, pipeline: Pipeline, kills: int, seed: int,
              log: Callable[[str], None] = print) -> dict:
  """Reference run, then ``kills`` SIGKILLs at seeded random moments with re-runs; audit."""
  real_log = _real_log(repo, work_dir) if pipeline.needs_real_log else None
  reference = os.path.join(work_dir, pipeline.name, 'reference')
  shutil.rmtree(reference, ignore_errors=True)
  start = time.time()
  _run(_argv(repo, pipeline, reference, real_log), repo, reference + '.log')
  duration = time.time() - start
  reference_evals = eval_files(reference)
  log(f'{pipeline.name}: reference run {duration:.0f}s, evaluations {reference_evals}')

  root = os.path.join(work_dir, pipeline.name, 'killed')
  shutil.rmtree(root, ignore_errors=True)
  rng = random.Random(seed)
  # Kill moments spread over the whole run: one in the start-up and initial collection, the
  # others at sorted random train steps, each a random fraction of a second to a few seconds
  # after the step is logged (inside a train step, a checkpoint write or an evaluation).
  steps = _steps_of(pipeline)
  targets = [0] + sorted(rng.randint(1, steps - 1) for _ in range(kills - 1))
  phases, after_kills = [], []
  for k, target in enumerate(targets[:kills]):
    delay = rng.uniform(2.0, 12.0) if target == 0 else rng.uniform(0.0, 3.0)
    phase = _run(_argv(repo, pipeline, root, real_log), repo, root + '.log',
                 kill_at_step=target, kill_after=delay)
    if phase is None:
      log(f'  kill {k + 1}: the run finished before step {target} + {delay:.1f}s')
      break
    after_kills.append(durable_episodes(root))
    phases.append(phase)
    log(f'  kill {k + 1} at step {target} + {delay:.1f}s: {len(after_kills[-1])} episodes '
        f'durable; last line: {phase}')
  _run(_argv(repo, pipeline, root, real_log), repo, root + '.log')
  row = audit(root, reference_evals, after_kills)
  row.update(pipeline=pipeline.name, kills=len(phases), phases=phases,
             in_progress_bound=NUM_ENVS * len(phases))
  return row


def _steps_of(pipeline: Pipeline) -> int:
  for b in pipeline.bindings:
    if '.num_train_steps = ' in b:
      return int(b.rsplit('=', 1)[1])
  raise ValueError(f'{pipeline.name}: no num_train_steps binding')


def violations(row: dict) -> List[str]:
  out = []
  for key in ('evaluations_missing', 'episodes_lost', 'corrupt_files'):
    if row[key]:
      out.append(f'{key}: {row[key]}')
  for key in ('duplicate_ids', 'duplicate_seeds'):
    if row[key]:
      out.append(f'{key}: {row[key]}')
  if row['in_progress_lost'] > row['in_progress_bound']:
    out.append(f"in_progress_lost {row['in_progress_lost']} > {row['in_progress_bound']}")
  return out


def format_table(rows: Sequence[dict]) -> str:
  head = ('| pipeline | kills | evaluations missing | durable episodes lost | in progress lost '
          '(bound) | duplicate ids | duplicate seeds | corrupt files | episodes |')
  lines = [head, '|' + '---|' * 9]
  for r in rows:
    lines.append(f"| {r['pipeline']} | {r['kills']} | {len(r['evaluations_missing'])} | "
                 f"{len(r['episodes_lost'])} | {r['in_progress_lost']} ({r['in_progress_bound']})"
                 f" | {r['duplicate_ids']} | {r['duplicate_seeds']} | {len(r['corrupt_files'])} |"
                 f" {r['episodes']} |")
  return '\n'.join(lines)

