"""One-off (session 41): adds scene_metrics' contrast excesses (object_contrast_excess,
robot_contrast_excess; new in session 41) to the committed generator reports of the 0.75 table.

For each row's G it runs tools/generator_report.py again (the published joint config and G, on
this machine's render of the held-out paired set) into a scratch file, and copies only the new
metrics (generator/ and identity/, in the frame and crop views) into the committed
generator_report.json, with a 'backfilled' entry naming them, the paired set and the date.
Every other figure of the report stays as first measured (the paired set re-rendered on another
machine differs slightly: identity MAE 49.66 against 49.65). Usage:
  python results/table1_real_gap0.75/diagnostics/backfill_contrast.py <paired_set.npz> <row> ...
"""
import json
import os
import subprocess
import sys
import tempfile
import time

from rl_cyclegan import fileio

RESULTS = 'results/table1_real_gap0.75'
NEW = ('object_contrast_excess', 'robot_contrast_excess')

paired, rows = sys.argv[1], sys.argv[2:]
for row in rows:
  report_path = os.path.join(RESULTS, row, 'generator_report.json')
  with open(report_path) as f:
    report = json.load(f)
  generator = os.path.join(RESULTS, row, 'generator')
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, 'report.json')
    subprocess.run([sys.executable, 'tools/generator_report.py',
                    f'--run_dir={os.path.join(RESULTS, row, "joint")}',
                    f'--generator_checkpoint={generator}', f'--paired_set={paired}',
                    f'--output_json={out}', '--figure_states=0'], check=True)
    with open(out) as f:
      fresh = json.load(f)
  if fresh['generator_fingerprint'] != report['generator_fingerprint']:
    raise ValueError(f'{row}: the published G is not the one the report measured')
  keys = [f'{who}/{name}' for who in ('generator', 'identity') for name in NEW]
  for view in ('frame', 'crop'):
    for key in keys:
      report[view][key] = fresh[view][key]
  report['backfilled'] = {
      'keys': keys, 'views': ['frame', 'crop'], 'paired_set': paired,
      'generator_checkpoint': fresh['generator_checkpoint'],
      'date': time.strftime('%Y-%m-%d'),
      'by': 'results/table1_real_gap0.75/diagnostics/backfill_contrast.py'}
  fileio.write_json_atomic(report_path, report)
  print(f"{row}: object contrast over real {report['frame']['generator/object_contrast_excess']:+.1f}")
