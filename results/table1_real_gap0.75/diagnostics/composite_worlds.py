"""Ad hoc (session 39): which of G's regions does a final Q trained on G(sim) need to succeed?

Each final Q of the 0.75 table is evaluated in `real` on the same scenes as its Table 1
figures (eval seeds 0, 1, 2; 100 test-object episodes each), but with what it sees rebuilt per
frame by ``sim2real.CompositeEnv`` (``tools/evaluate.py --translated_regions``): the real
render of the state with some regions taken from its own G's translation of the sim render
of the same state, by the simulator's segmentation, the objects' and robot's masks grown by 2
pixels (G draws an object a pixel or two beyond its sim mask). Worlds:
  none             the paired real render itself (the control: only the sensor-noise draw
                   differs from the Table 1 `real` figure)
  background       tray, table and floor from G(sim); objects and robot real
  objects,robot    objects and robot from G(sim); tray, table and floor real
The Table 1 `sim` figure (the whole of G(sim)) and `real` figure close the square. If a
final Q loses its sim figure in real because of how G renders the background, `background`
gives it back; if because of the objects or the robot, `objects,robot` does.

The Table 1 runner now makes the three worlds above as stages of every final Q on a frozen G
(`table1.COMPOSITE_WORLDS`, stages `<row>/eval/composite_<world>_seed<k>`, the section
"Composite worlds" of docs/table1_real_gap0.75.md). This script made them first (session 39,
the same tools/evaluate.py flags) and makes the finer split of the foreground, the objects
alone and the robot alone, which the runner does not:
  PYTHONPATH=. python results/table1_real_gap0.75/diagnostics/composite_worlds.py \
      [--worlds=objects,robot] [rows...]       # resumes: a finished evaluation is kept
  PYTHONPATH=. python results/table1_real_gap0.75/diagnostics/composite_worlds.py --summarize
Outputs: results/table1_real_gap0.75/<row>/eval/composite_<world>_seed<k>.json, the runner's
layout ('objects,robot' is written 'objects_robot'). --summarize also pairs the objects and robot
in G's colours and G's ring around them (g_region_interventions.sh, session 43:
composite_{colour,ring,ring_colour}_objects_robot_seed<k>.json) with the control.
"""
import json
import os
import subprocess
import sys
import time

import numpy as np

from rl_cyclegan.evaluation import policy_eval

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.dirname(HERE)  # results/table1_real_gap0.75
WORLDS = ('none', 'background', 'objects,robot')  # the runner's; 'objects' and 'robot' split
SEEDS = (0, 1, 2)
DILATION = 2
# Final Qs with a live image tower, the headline recipes first.
ROWS = ('rl_cyclegan_seed0', 'rl_cyclegan_fq_seed0', 'rl_cyclegan_fq_seed1',
        'cyclegan_seed1', 'cyclegan_seed0', 'rl_cyclegan_rlscene1_seed1',
        'rl_cyclegan_real_critic', 'cyclegan_fq_seed1', 'cyclegan_fq_seed0',
        'rl_cyclegan_rlscene1_seed0', 'rl_cyclegan_long')


def _path(row, world, seed):
  return os.path.join(TABLE, row, 'eval', f'composite_{world.replace(",", "_")}_seed{seed}.json')


def run(rows, worlds=WORLDS):
  todo = [(seed, row, world) for seed in SEEDS for row in rows for world in worlds
          if not os.path.exists(_path(row, world, seed))]
  start = time.time()
  for i, (seed, row, world) in enumerate(todo):
    out = _path(row, world, seed)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cmd = [sys.executable, 'tools/evaluate.py',
           f'--checkpoint_dir={os.path.join(TABLE, row, "final_q")}',
           '--generator_key=G_sim2real', '--appearance=real',
           '--gin_bindings=RealAppearance.real_gap = 0.75', '--num_episodes=100',
           f'--seed={seed}', f'--translated_regions={world}', f'--region_dilation={DILATION}',
           '--progress_interval=600', f'--output_json={out}']
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
      raise RuntimeError(f'{" ".join(cmd)} failed:\n{proc.stderr[-3000:]}')
    done = time.time() - start
    line = [l for l in proc.stdout.splitlines() if l.startswith('grasp success')][0]
    print(f'[{i + 1}/{len(todo)}] {row} {world} seed {seed}: {line} | '
          f'{done / (i + 1):.0f} s each, ETA {done / (i + 1) * (len(todo) - i - 1) / 60:.0f} min',
          flush=True)


def _outcomes(path):
  with open(path) as f:
    return json.load(f)['outcomes']


def summarize():
  """Per final Q: the Table 1 real and sim figures and each composite world measured on all
  three seeds, with the paired difference from the control."""
  worlds = ('background', 'objects,robot', 'objects', 'robot', 'colour_objects,robot',
            'ring_objects,robot', 'ring_colour_objects,robot')
  label = {w: f'{w} from G' for w in worlds}
  label['colour_objects,robot'] = "objects,robot in G's colours"  # g_region_interventions.sh
  label['ring_objects,robot'] = "G's ring around objects,robot"
  label['ring_colour_objects,robot'] = "G's ring and colours on objects,robot"
  print('| final Q | n | real (Table 1) | control | ' + ' | '.join(
      label[w] for w in worlds) + ' | sim through G (Table 1) | ' + ' | '.join(
          f'{label[w]} - control (95% CI)' for w in worlds) + ' |')
  print('|---' * (5 + 2 * len(worlds)) + '|')
  for row in ROWS:
    measured = {w: [_path(row, w, s) for s in SEEDS] for w in ('none',) + worlds}
    measured = {w: [_outcomes(p) for p in paths] for w, paths in measured.items()
                if all(os.path.exists(p) for p in paths)}
    if 'none' not in measured:
      continue
    cat = lambda lists: sum(lists, [])  # noqa: E731
    table = {k: cat([_outcomes(os.path.join(TABLE, row, 'eval', f'{k}_seed{s}.json'))
                     for s in SEEDS]) for k in ('real', 'sim')}
    control = cat(measured['none'])
    rate = lambda o: f'{100 * np.mean(o):.1f}%' if o else '-'  # noqa: E731

    def diff(w):
      if w not in measured:
        return '-'
      d, low, high = policy_eval.paired_difference_interval(cat(measured[w]), control)
      return f'{100 * d:+.1f} ({100 * low:+.1f} to {100 * high:+.1f})'

    print(f'| {row} | {len(control)} | {rate(table["real"])} | {rate(control)} | ' +
          ' | '.join(rate(cat(measured.get(w, []))) for w in worlds) +
          f' | {rate(table["sim"])} | ' + ' | '.join(diff(w) for w in worlds) + ' |')


if __name__ == '__main__':
  args = sys.argv[1:]
  if args[:1] == ['--summarize']:
    summarize()
  else:
    chosen = [a.split('=', 1)[1] for a in args if a.startswith('--worlds=')]
    rows = [a for a in args if not a.startswith('--')] or ROWS
    run(rows, (chosen[0].split(',') if chosen else WORLDS))
