"""make demo's showcase (rl_cyclegan/demo.py): the committed Table 1 policies, never interim
copies, evaluated in real on fresh scenes, and the Figure 4 grid of the committed generators."""

import json
import os

import pytest

from rl_cyclegan import demo
from rl_cyclegan.pipelines import table1


def _fake_run(calls):
  """demo._run that records its arguments and writes a 50% evaluation to --output_json."""
  def run(args, log_path):
    del log_path
    calls.append(args)
    out = [a for a in args if a.startswith('--output_json=')][0].split('=', 1)[1]
    with open(out, 'w') as f:
      json.dump({'success_rate': 0.5, 'ci95_low': 0.4, 'ci95_high': 0.6, 'num_episodes': 4}, f)
  return run


def test_showcase_evaluates_only_finished_policies_on_fresh_scenes(tmp_path, monkeypatch):
  repo = tmp_path / 'repo'
  finished = repo / 'results' / 'table1' / 'rl_cyclegan_seed0' / 'final_q'
  interim = repo / 'results' / 'table1' / 'cyclegan_seed0' / 'final_q'  # no done marker
  for d in (finished, interim, repo / 'results' / 'sim_only_ratio2'):
    (d / 'train' / 'ckpt').mkdir(parents=True)
    (d / 'train' / 'ckpt' / 'checkpoint').write_text('model_checkpoint_path: "ckpt-1"\n')
  (finished / table1.DONE_FILE).write_text('{}')
  rows = {'sim_only': 'results/sim_only_ratio2',
          'rl_cyclegan_seed0': 'results/table1/rl_cyclegan_seed0/final_q',
          'cyclegan_seed0': 'results/table1/cyclegan_seed0/final_q'}  # no real_oracle row yet
  (repo / 'results' / 'table1' / 'summary.json').write_text(json.dumps(
      {'rows': {k: {'checkpoint_dir': v} for k, v in rows.items()}}))
  monkeypatch.setattr(demo, 'REPO', str(repo))
  calls = []

  monkeypatch.setattr(demo, '_run', _fake_run(calls))
  config = demo.DemoConfig(showcase_episodes=4)
  results = demo.showcase(str(tmp_path / 'demo'), config, str(tmp_path))
  assert results['CycleGAN final Q'] is None  # only an interim copy: never shown as a result
  assert results['RL-CycleGAN final Q']['success_rate'] == 0.5
  assert results['Sim-Only Q (no adaptation)'] is not None
  assert results['Real-trained oracle Q (the same recipe in real)'] is None  # not in results/ at all
  assert len(calls) == 2 and all('--appearance=real' in a for a in calls)
  assert all(f'--seed={config.showcase_seed}' in a for a in calls)
  assert not any('real_gap' in ' '.join(a) for a in calls)  # the project's world
  assert config.showcase_seed not in table1.EVAL_SEEDS  # fresh scenes, not the table's
  demo.showcase(str(tmp_path / 'demo'), config, str(tmp_path))  # resumes: nothing re-run
  assert len(calls) == 2
  # A table measured in another pseudo-real world is shown in that world.
  (repo / 'results' / 'table1' / table1.WORLD_FILE).write_text(
      json.dumps({'appearance': 'real', 'real_gap': 0.75}))
  demo.showcase(str(tmp_path / 'demo2'), config, str(tmp_path))
  assert len(calls) == 4
  assert all('--gin_bindings=RealAppearance.real_gap = 0.75' in a for a in calls[2:])


def test_a_table_without_a_summary_shows_nothing_and_a_broken_one_is_named(tmp_path,
                                                                          monkeypatch):
  monkeypatch.setattr(demo, 'REPO', str(tmp_path))
  monkeypatch.setattr(demo, '_run', lambda args, log: pytest.fail(f'ran {args}'))
  results = demo.showcase(str(tmp_path / 'demo'), demo.DemoConfig(), str(tmp_path))
  assert set(results) == {label for label, _ in demo.SHOWCASE}
  assert all(r is None for r in results.values())
  for table in demo.SHOWCASE_TABLES:
    os.makedirs(tmp_path / table)
    (tmp_path / table / 'summary.json').write_text('{"rows": ')
    with pytest.raises(ValueError, match=f'{table}/summary.json'):
      demo.showcase(str(tmp_path / 'demo'), demo.DemoConfig(), str(tmp_path))
    (tmp_path / table / 'summary.json').write_text('{"rows": {}}')


def test_the_showcase_shows_the_first_table_whose_headline_rows_are_finished(tmp_path,
                                                                              monkeypatch):
  """The 0.75 table once both headline final Qs are committed there, else results/table1."""
  monkeypatch.setattr(demo, 'REPO', str(tmp_path))
  first, last = demo.SHOWCASE_TABLES[0], demo.SHOWCASE_TABLES[-1]
  assert first == 'results/table1_real_gap0.75' and last == 'results/table1'
  assert demo.showcase_table() == last  # no table at all yet

  def commit(table, key, done=True):
    run = tmp_path / table / key / 'final_q'
    (run / 'train' / 'ckpt').mkdir(parents=True)
    (run / 'train' / 'ckpt' / 'checkpoint').write_text('model_checkpoint_path: "ckpt-1"\n')
    if done:
      (run / table1.DONE_FILE).write_text('{}')
    path = tmp_path / table / 'summary.json'
    rows = json.loads(path.read_text())['rows'] if path.exists() else {}
    rows[key] = {'checkpoint_dir': f'{table}/{key}/final_q'}
    path.write_text(json.dumps({'rows': rows}))

  commit(first, 'cyclegan_seed0')
  commit(first, 'rl_cyclegan_seed0', done=False)  # an interim copy is not a finished row
  assert demo.showcase_table() == last
  (tmp_path / first / 'rl_cyclegan_seed0' / 'final_q' / table1.DONE_FILE).write_text('{}')
  assert demo.showcase_table() == first
  (tmp_path / first / table1.WORLD_FILE).write_text(json.dumps({'real_gap': 0.75}))
  calls = []

  monkeypatch.setattr(demo, '_run', _fake_run(calls))
  results = demo.showcase(str(tmp_path / 'demo'), demo.DemoConfig(showcase_episodes=4),
                          str(tmp_path))
  assert results['RL-CycleGAN final Q'] is not None and results['CycleGAN final Q'] is not None
  assert len(calls) == 2
  assert all('--gin_bindings=RealAppearance.real_gap = 0.75' in a for a in calls)
  assert all(f'--checkpoint_dir={tmp_path}/{first}/' in ' '.join(a) for a in calls)


def test_the_showcase_prints_each_rows_table_figure_beside_its_fresh_one(tmp_path, monkeypatch,
                                                                        capsys):
  """The fresh scenes' figure (n=50) beside the table's own (300 episodes on its evaluation
  seeds), so that a reader sees which one the table reports; a row without one shows none."""
  table = demo.SHOWCASE_TABLES[-1]
  run = tmp_path / table / 'cyclegan_seed0' / 'final_q'
  (run / 'train' / 'ckpt').mkdir(parents=True)
  (run / 'train' / 'ckpt' / 'checkpoint').write_text('model_checkpoint_path: "ckpt-1"\n')
  (run / table1.DONE_FILE).write_text('{}')
  rows = {'cyclegan_seed0': {'checkpoint_dir': f'{table}/cyclegan_seed0/final_q',
                             'real': {'successes': 171, 'episodes': 300}}}
  (tmp_path / table / 'summary.json').write_text(json.dumps({'rows': rows}))
  monkeypatch.setattr(demo, 'REPO', str(tmp_path))
  monkeypatch.setattr(demo, '_run', _fake_run([]))
  demo.showcase(str(tmp_path / 'demo'), demo.DemoConfig(showcase_episodes=4), str(tmp_path))
  line = [x for x in capsys.readouterr().out.splitlines() if 'CycleGAN final Q ' in x
          and 'RL-' not in x][0]
  assert line.endswith('n=4); the table: 57.0% (171/300)'), line
  assert demo._table_figure(None) == '' and demo._table_figure({'real': {}}) == ''
