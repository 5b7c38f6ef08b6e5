"""The main job: what the method achieves, then the whole pipeline at a small size.

First (a few minutes) the committed Table 1 policies (results/table1, docs/table1.md) are
evaluated in `real` on fresh test scenes (an evaluation seed the table does not use), beside the
Sim-Only Q they are compared with, and the Figure 4 style grid of the committed generators is
written. Then the short from-scratch pipeline runs; its figures are a pipeline check, not a
result (2,000 final-Q steps against the table's 32,000).

Each pipeline stage runs one of the project's binaries in its own process, exactly as a user would run
it, so each stage's gin config stays separate and every stage resumes where it stopped when the
demo is run again with the same root_dir (collection fills in missing shards, training restores
its latest checkpoint, finished stages are skipped).

  1. collect     a small pseudo-real log: scripted policy in the `real` appearance
                 (tools/collect.py; stands in for a robot's off-policy episodes)
  2. rl_cyclegan joint RL-CycleGAN training (tools/train_rl_cyclegan.py, gin/demo_rl_cyclegan.gin)
  3. final_q     a Q-function from scratch with G frozen: G-adapted on-policy sim data plus the
                 real log weighted by lambda_RL-real (tools/train_qtopt.py, gin/demo_final_q.gin)
  4. evaluate    the final policy on unseen test objects in `real` and `sim` (tools/evaluate.py)
  5. export      SavedModels for a robot controller (tools/export.py)
"""

import dataclasses
import json
import os
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

from rl_cyclegan import fileio

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = os.path.join(REPO, 'tools')
GIN = os.path.join(REPO, 'gin')


@dataclasses.dataclass
class DemoConfig:
  """Embedded defaults (about 15 minutes on 2 CPU cores)."""
  real_episodes: int = 100  # scripted episodes in the pseudo-real appearance
  rl_cyclegan_steps: int = 500  # joint train steps (batch 8 sim + 8 real)
  final_q_steps: int = 2000  # QT-Opt train steps of the final Q
  eval_episodes: int = 50  # per appearance, unseen test objects
  render_size: str = '64x80'
  seed: int = 0
  showcase_episodes: int = 50  # per committed policy, in `real`; 0: skip the showcase
  showcase_seed: int = 100  # not one of Table 1's evaluation seeds (0, 1, 2): fresh scenes


# The committed tables the showcase can show (under the repo), in order of preference: the
# first whose summary.json has finished final Qs for both HEADLINE_ROWS, else the last. Each
# table's summary.json names each row's checkpoint, its world.json the pseudo-real world the row
# was measured in (every `real` render of the showcase is made in that world). The 0.75 world
# comes first: there the real-trained oracle is a ceiling above Sim-Only, where at 1.0 it
# learned nothing from the image (docs/results.md, "Table 1").
SHOWCASE_TABLES = ('results/table1_real_gap0.75', 'results/table1')
HEADLINE_ROWS = ('cyclegan_seed0', 'rl_cyclegan_seed0')  # the comparison the method exists for
# The rows it evaluates: (label, row key of the table's summary.json).
SHOWCASE = (('Sim-Only Q (no adaptation)', 'sim_only'),
            ('CycleGAN final Q', 'cyclegan_seed0'),
            ('RL-CycleGAN final Q', 'rl_cyclegan_seed0'),
            # The lever that came level with CycleGAN at seed 0 (docs/results.md, "Session 33").
            ('RL-CycleGAN final Q, lambda_RL-scene 1', 'rl_cyclegan_rlscene1_seed0'),
            # The same recipe trained in `real` (Table 1). In the project's world (real_gap
            # 1.0) it learns nothing from the image: it scores at the random floor
            # (docs/results.md, Table 1).
            ('Real-trained oracle Q (the same recipe in real)', 'real_oracle'))


def _log(message: str):
  print(f'[demo {time.strftime("%H:%M:%S")}] {message}', flush=True)


def _run(args: List[str], log_path: str) -> None:
  """Runs a binary, streaming its output to the console and to ``log_path``."""
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
  _log('$ ' + ' '.join(args))
  with open(log_path, 'a') as log:
    proc = subprocess.Popen([sys.executable] + args, cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:
      log.write(line)
      # Keep the console to progress lines and results; the full log is in log_path.
      if any(k in line for k in ('step ', 'episodes', 'eval', 'grasp success', 'export', 'Error',
                                 'error', 'wrote', 'resumed', 'collection', 'WARNING: Q')):
        print('    ' + line.rstrip()[:200], flush=True)
    if proc.wait() != 0:
      raise SystemExit(f'demo stage failed (exit {proc.returncode}): {" ".join(args)}\n'
                       f'full log: {log_path}')


def _done_marker(path: str) -> bool:
  return os.path.exists(path)


def _mark_done(path: str, info: Optional[dict] = None):
  fileio.write_json_atomic(path, info or {})


def _finished_final_q(checkpoint_dir: str) -> bool:
  """A committed policy: a finished stage's checkpoint (never an interim copy)."""
  from rl_cyclegan.pipelines import table1  # pylint: disable=g-import-not-at-top
  return (os.path.isfile(os.path.join(checkpoint_dir, 'train', 'ckpt', 'checkpoint')) and (
      'table1' not in checkpoint_dir or
      os.path.isfile(os.path.join(checkpoint_dir, table1.DONE_FILE))))


def _finished_row(rows: dict, key: str) -> Optional[str]:
  """The row's committed final-Q directory if it is finished (``_finished_final_q``)."""
  rel = (rows.get(key) or {}).get('checkpoint_dir')
  return rel if isinstance(rel, str) and _finished_final_q(os.path.join(REPO, rel)) else None


def showcase_table() -> str:
  """The first of SHOWCASE_TABLES with both HEADLINE_ROWS finished, else the last."""
  for table in SHOWCASE_TABLES:
    rows, _ = _showcase_table(table)
    if all(_finished_row(rows, key) for key in HEADLINE_ROWS):
      return table
  return SHOWCASE_TABLES[-1]


def _showcase_table(table: str) -> Tuple[dict, dict]:
  """(summary.json's rows, world.json) of ``table`` (a directory under the repo); ({}, the
  project's world) before the table has a summary."""
  from rl_cyclegan.envs.appearance import DEFAULT_REAL_GAP  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.pipelines import table1  # pylint: disable=g-import-not-at-top
  table_dir = os.path.join(REPO, table)
  found = []
  for name, default in (('summary.json', {'rows': {}}),
                        (table1.WORLD_FILE, {'real_gap': DEFAULT_REAL_GAP})):
    path = os.path.join(table_dir, name)
    if not os.path.isfile(path):
      found.append(default)
      continue
    with open(path) as f:
      try:
        found.append(json.load(f))
      except ValueError as e:
        raise ValueError(f'{path}: not JSON ({e}); rewrite it with tools/table1.py '
                         '--summarize_only') from e
  return found[0].get('rows', {}), found[1]


def showcase(root_dir: str, config: DemoConfig, logs: str) -> Dict[str, Optional[dict]]:
  """The committed Table 1 policies in `real` on fresh test scenes, and the Figure 4 grid."""
  from rl_cyclegan.envs.appearance import DEFAULT_REAL_GAP  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.pipelines import table1  # pylint: disable=g-import-not-at-top
  out_dir = os.path.join(root_dir, 'showcase')
  os.makedirs(out_dir, exist_ok=True)
  shown = showcase_table()
  rows, world = _showcase_table(shown)
  gap = float(world['real_gap'])
  bindings = [] if gap == DEFAULT_REAL_GAP else [
      f'--gin_bindings=RealAppearance.real_gap = {gap!r}']
  results = {}
  for label, key in SHOWCASE:
    rel = _finished_row(rows, key)
    if rel is None:
      results[label] = None  # not committed yet (docs/table1.md lists the rows still to run)
      continue
    out = os.path.join(out_dir, f"{shown.replace('/', '_')}_{key}_real.json")
    if not _done_marker(out):
      _run([os.path.join(TOOLS, 'evaluate.py'), f'--checkpoint_dir={os.path.join(REPO, rel)}',
            '--appearance=real', *bindings, f'--num_episodes={config.showcase_episodes}',
            f'--seed={config.showcase_seed}', f'--output_json={out}'],
           os.path.join(logs, 'showcase.log'))
    with open(out) as f:
      results[label] = json.load(f)
  table = table1.Table1(os.path.join(root_dir, 'unused'), REPO, log=lambda m: None,
                        results_dir=os.path.join(REPO, shown), real_gap=gap)
  figure = table1.render_figure(table, os.path.join(out_dir, 'figure4.png'))
  world_text = '' if gap == DEFAULT_REAL_GAP else f' (the pseudo-real world at real_gap {gap:g})'
  print()
  print(f'What the method achieves: committed policies ({shown}, docs/) in real'
        f'{world_text} on {config.showcase_episodes} fresh test scenes (seed '
        f'{config.showcase_seed}); 95% CI:')
  keys = dict(SHOWCASE)
  for label, r in results.items():
    print(f'    {label:48s} ' + ('not committed yet' if r is None else
                                 f'{100 * r["success_rate"]:5.1f}%  ({100 * r["ci95_low"]:.1f}-'
                                 f'{100 * r["ci95_high"]:.1f}%, n={r["num_episodes"]})'
                                 + _table_figure(rows.get(keys[label]))))
  if figure:
    print(f'  Figure 4 style grid (sim | G(sim) of each generator | true real): {figure}')
  print()
  return results


def _table_figure(row: Optional[dict]) -> str:
  """'; the table: <rate> (k/n)': the row's pooled figure in real on the table's own
  evaluation seeds, or nothing if the summary has none."""
  real = (row or {}).get('real') or {}
  if not real.get('episodes'):
    return ''
  return (f"; the table: {100 * real['successes'] / real['episodes']:.1f}% "
          f"({real['successes']}/{real['episodes']})")


def run(root_dir: str, config: DemoConfig = DemoConfig()) -> Dict[str, dict]:
  """Runs every stage under ``root_dir``; returns the evaluation results."""
  root_dir = os.path.abspath(root_dir)
  os.makedirs(root_dir, exist_ok=True)
  logs = os.path.join(root_dir, 'logs')
  os.makedirs(logs, exist_ok=True)
  showcased = {}
  if config.showcase_episodes > 0:
    _log('what the method achieves: the committed Table 1 policies in real')
    showcased = showcase(root_dir, config, logs)
    _log('next: the short from-scratch pipeline, a PIPELINE CHECK (not a result: 2,000 final-Q '
         'steps against the table\'s 32,000)')
  real_log = os.path.join(root_dir, 'real_log')
  gan_dir = os.path.join(root_dir, 'rl_cyclegan')
  q_dir = os.path.join(root_dir, 'final_q')
  export_dir = os.path.join(root_dir, 'export')
  start = time.time()
  stages = ['collect', 'rl_cyclegan', 'final_q', 'evaluate', 'export']

  def stage(i, name):
    elapsed = time.time() - start
    _log(f'stage {i + 1}/{len(stages)}: {name} (elapsed {elapsed / 60:.1f} min)')

  stage(0, 'collect a pseudo-real scripted log')
  _run([os.path.join(TOOLS, 'collect.py'), '--appearance=real', '--policy=scripted',
        f'--num_episodes={config.real_episodes}', f'--output_dir={real_log}',
        f'--render_size={config.render_size}', f'--seed={config.seed}', '--num_workers=2'],
       os.path.join(logs, 'collect.log'))

  stage(1, 'train RL-CycleGAN (G, F, D_X, D_Y, Q_sim, Q_real jointly)')
  _run([os.path.join(TOOLS, 'train_rl_cyclegan.py'), f'--root_dir={gan_dir}',
        f'--gin_file={os.path.join(GIN, "demo_rl_cyclegan.gin")}',
        f'--gin_bindings=Replay.real_episode_dir="{real_log}"',
        f'--gin_bindings=train_rl_cyclegan.num_train_steps={config.rl_cyclegan_steps}'],
       os.path.join(logs, 'rl_cyclegan.log'))

  stage(2, 'train the final Q from scratch with G frozen')
  _run([os.path.join(TOOLS, 'train_qtopt.py'), f'--root_dir={q_dir}',
        f'--gin_file={os.path.join(GIN, "demo_final_q.gin")}',
        f'--gin_bindings=Replay.real_episode_dir="{real_log}"',
        f'--gin_bindings=train_eval.generator_checkpoint="{os.path.join(gan_dir, "train", "ckpt")}"',
        f'--gin_bindings=train_eval.num_train_steps={config.final_q_steps}'],
       os.path.join(logs, 'final_q.log'))

  stage(3, 'evaluate the final policy on unseen test objects')
  results = {}
  for appearance in ('real', 'sim'):
    out = os.path.join(root_dir, f'eval_final_q_{appearance}.json')
    if not _done_marker(out):
      args = [os.path.join(TOOLS, 'evaluate.py'), f'--checkpoint_dir={q_dir}',
              f'--appearance={appearance}', f'--num_episodes={config.eval_episodes}',
              f'--render_size={config.render_size}', f'--output_json={out}']
      if appearance == 'sim':  # the final Q was trained on G(sim): sim images go through G
        args.append('--generator_key=G_sim2real')
      _run(args, os.path.join(logs, 'evaluate.log'))
    with open(out) as f:
      results[appearance] = json.load(f)
  floors = os.path.join(root_dir, 'eval_scripted_real.json')
  if not _done_marker(floors):
    _run([os.path.join(TOOLS, 'evaluate.py'), '--policy=scripted', '--appearance=real',
          f'--num_episodes={config.eval_episodes}', f'--render_size={config.render_size}',
          f'--output_json={floors}'], os.path.join(logs, 'evaluate.log'))
  with open(floors) as f:
    results['scripted_real'] = json.load(f)

  stage(4, 'export SavedModels')
  if not _done_marker(os.path.join(export_dir, 'policy')):
    _run([os.path.join(TOOLS, 'export.py'), f'--root_dir={q_dir}', f'--export_dir={export_dir}',
          '--what=q_function,policy'], os.path.join(logs, 'export.log'))
  if not _done_marker(os.path.join(export_dir, 'generator')):
    _run([os.path.join(TOOLS, 'export.py'), f'--root_dir={gan_dir}', f'--export_dir={export_dir}',
          '--what=generator'], os.path.join(logs, 'export.log'))

  minutes = (time.time() - start) / 60
  print()
  print(f'Demo finished in {minutes:.1f} min. Everything is under {root_dir}')
  print(f'  TensorBoard:   tensorboard --logdir {root_dir}   '
        f'(rl_cyclegan/train: losses, Q-values, image grids, scene metrics; eval: success)')
  print(f'  SavedModels:   {export_dir}/{{generator,q_function,policy}}  (see docs/export.md)')
  print('  Pipeline check (short training; not a result), grasp success on unseen test objects '
        '(95% Wilson CI):')
  for name, r in results.items():
    label = {'real': 'final Q in real (the deployment target)',
             'sim': 'final Q in sim (through G)',
             'scripted_real': 'scripted policy in real (floor)'}[name]
    print(f'    {label:42s} {100 * r["success_rate"]:5.1f}%  '
          f'({100 * r["ci95_low"]:.1f}-{100 * r["ci95_high"]:.1f}%, n={r["num_episodes"]})')
  _mark_done(os.path.join(root_dir, 'demo_summary.json'),
             {'minutes': minutes, 'results': results, 'showcase': showcased})
  return results
