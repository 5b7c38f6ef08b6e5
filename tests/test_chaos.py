"""The kill test's audit (rl_cyclegan/pipelines/chaos.py) on hand-made run directories; the
whole kill test is tools/chaos.py (minutes: run outside the suite, figures in docs/)."""

import json
import os

from rl_cyclegan.data import episodes as episodes_lib
from rl_cyclegan.pipelines import chaos
from rl_cyclegan.replay import buffers

RENDER = (16, 20)


def _episode(index, seed=None):
  e = episodes_lib.synthetic_episode(2, RENDER, seed=index)
  e.metadata.update(episode_id=f'sim-{index:08d}', seed=index if seed is None else seed)
  return e


def _run(root, indices, evals=('eval_00000020.json',), seeds=None):
  log = buffers.SimEpisodeLog(os.path.join(root, chaos.SIM_LOG), RENDER, episodes_per_shard=2)
  for k, i in enumerate(indices):
    log.append([_episode(i, None if seeds is None else seeds[k])])
  log.flush()
  os.makedirs(os.path.join(root, 'eval'), exist_ok=True)
  with open(os.path.join(root, 'run_spec.json'), 'w') as f:
    f.write('{}')
  for name in evals:
    with open(os.path.join(root, 'eval', name), 'w') as f:
      json.dump({'step': 20}, f)


def test_a_clean_run_passes_the_audit(tmp_path):
  _run(str(tmp_path), [0, 1, 2, 3])
  row = chaos.audit(str(tmp_path), ['eval_00000020.json'], [[{'episode_id': 'sim-00000001'}]])
  row.update(in_progress_bound=2)
  assert chaos.violations(row) == [] and row['episodes'] == 4 and row['in_progress_lost'] == 0


def test_the_audit_counts_every_kind_of_damage(tmp_path):
  root = str(tmp_path)
  _run(root, [0, 1, 3, 3], evals=(), seeds=[5, 6, 6, 8])  # index 2 lost, 3 logged twice
  with open(os.path.join(root, 'run_spec.json'), 'w') as f:
    f.write('{"render_size": [32,')  # cut off
  row = chaos.audit(root, ['eval_00000020.json'],
                    [[{'episode_id': 'sim-00000009'}]])  # durable after a kill, gone now
  row.update(in_progress_bound=0)
  assert row['evaluations_missing'] == ['eval_00000020.json']
  assert row['episodes_lost'] == ['sim-00000009']
  assert row['duplicate_ids'] == 1 and row['duplicate_seeds'] == 1
  assert row['in_progress_lost'] == 1  # the gap at index 2
  assert any('run_spec.json' in c for c in row['corrupt_files'])
  problems = chaos.violations(row)
  assert len(problems) == 6, problems
  assert 'duplicate ids' in chaos.format_table([dict(row, pipeline='x', kills=1)])
