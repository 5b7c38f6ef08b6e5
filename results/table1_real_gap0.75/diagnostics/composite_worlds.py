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

Usage (from the repo root; resumes: a finished evaluation's JSON is kept and skipped):
  PYTHONPATH=. python results/table1_real_gap0.75/diagnostics/composite_worlds.py [rows...]
  PYTHONPATH=. python results/table1_real_gap0.75/diagnostics/composite_worlds.py --summarize
Outputs: composite_worlds/<row>/<world>_seed<k>.json beside this script.
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
OUT = os.path.join(HERE, 'composite_worlds')
WORLDS = ('none', 'background', 'objects,robot')
SEEDS = (0, 1, 2)
DILATION = 2
# Final Qs with a live image tower, the headline recipes first.
ROWS = ('rl_cyclegan_seed0', 'rl_cyclegan_fq_seed0', 'rl_cyclegan_fq_seed1',
        'cyclegan_seed1', 'cyclegan_seed0', 'rl_cyclegan_rlscene1_seed1',
        'rl_cyclegan_real_critic', 'cyclegan_fq_seed1', 'cyclegan_fq_seed0',
        'rl_cyclegan_rlscene1_seed0')


def _path(row, world, seed):
  return os.path.join(OUT, row, f'{world.replace(",", "+")}_seed{seed}.json')


def run(rows):
  todo = [(seed, row, world) for seed in SEEDS for row in rows for world in WORLDS
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
  print('| final Q | n | real (Table 1) | control: paired real render | background from G | '
        'objects and robot from G | sim through G (Table 1) | background from G - control '
        '(95% CI) | objects and robot from G - control (95% CI) |')
  print('|---|---|---|---|---|---|---|---|---|')
  for row in sorted(os.listdir(OUT), key=lambda r: ROWS.index(r) if r in ROWS else 99):
    seeds = [s for s in SEEDS if all(os.path.exists(_path(row, w, s)) for w in WORLDS)]
    if not seeds:
      continue
    cat = lambda f: sum((f(s) for s in seeds), [])  # noqa: E731
    worlds = {w: cat(lambda s, w=w: _outcomes(_path(row, w, s))) for w in WORLDS}
    table = {k: cat(lambda s, k=k: _outcomes(os.path.join(TABLE, row, 'eval',
                                                           f'{k}_seed{s}.json')))
             for k in ('real', 'sim')}
    rate = lambda o: f'{100 * np.mean(o):.1f}%'  # noqa: E731

    def diff(a, b):
      d, low, high = policy_eval.paired_difference_interval(a, b)
      return f'{100 * d:+.1f} ({100 * low:+.1f} to {100 * high:+.1f})'

    print(f'| {row} | {len(worlds["none"])} | {rate(table["real"])} | {rate(worlds["none"])} | '
          f'{rate(worlds["background"])} | {rate(worlds["objects,robot"])} | '
          f'{rate(table["sim"])} | {diff(worlds["background"], worlds["none"])} | '
          f'{diff(worlds["objects,robot"], worlds["none"])} |')


if __name__ == '__main__':
  if sys.argv[1:2] == ['--summarize']:
    summarize()
  else:
    run(sys.argv[1:] or ROWS)
