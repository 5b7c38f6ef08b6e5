"""Tests of the Table 1 pipeline (rl_cyclegan/pipelines/table1.py): stage skipping, resuming,
locks, row names, and the summary's pooled figures. The real binaries at a tiny size run in
tests/smoke/test_table1_smoke.py (a separate CI step: about 4 minutes)."""

import fcntl
import glob
import json
import math
import os
import re
import shutil
import socket
import subprocess
import threading
import sys
import time

import pytest

from rl_cyclegan.pipelines import table1
from rl_cyclegan.evaluation import policy_eval
from rl_cyclegan.evaluation import run_statistics as rs


def _stage(tmp_path, name, body, marker=None):
  """A stage running ``python -c body``; its marker is the done file unless given."""
  directory = str(tmp_path / name)
  os.makedirs(directory, exist_ok=True)
  return table1.Stage(name, [sys.executable, '-c', body], directory,
                      marker or os.path.join(directory, table1.DONE_FILE), 1.0)


def test_expand_rows_names_every_training_seed_and_refuses_unknown_rows():
  assert table1.expand_rows(['cyclegan']) == ['cyclegan_seed0', 'cyclegan_seed1',
                                              'cyclegan_seed2']
  assert table1.expand_rows(['cyclegan_fq']) == ['cyclegan_fq_seed0', 'cyclegan_fq_seed1']
  assert set(table1.expand_rows(['all'])) >= {'rl_cyclegan_seed2', 'cyclegan_seed2'}
  assert table1.expand_rows(['rl_cyclegan_seed1', 'sim_only']) == ['rl_cyclegan_seed1',
                                                                   'sim_only']
  assert table1.expand_rows(['all'])[:3] == ['sim_only', 'rl_cyclegan_seed0', 'cyclegan_seed0']
  with pytest.raises(ValueError, match="unknown Table 1 row 'rl_cylcegan'"):
    table1.expand_rows(['rl_cylcegan'])


def test_finished_stages_are_skipped_and_a_failed_one_resumes(tmp_path):
  counter = tmp_path / 'calls.txt'
  flag = tmp_path / 'fail_once'
  flag.write_text('x')
  count = f"open({str(counter)!r}, 'a').write('.')"
  first = _stage(tmp_path, 'first', count)
  # Fails while the flag exists (a killed or crashed binary), then succeeds.
  second = _stage(tmp_path, 'second', f"import os, sys; {count}; "
                  f"sys.exit(1 if os.path.exists({str(flag)!r}) else 0)")
  runner = table1.Table1(str(tmp_path / 'work'), str(tmp_path), log=lambda m: None)
  with pytest.raises(table1.StageError, match="stage 'second' failed with exit code 1"):
    runner.run([first, second])
  assert first.done and not second.done and counter.read_text() == '..'
  os.remove(flag)
  runner.run([first, second])  # the first is not run again
  assert second.done and counter.read_text() == '...'
  with open(second.marker) as f:
    assert json.load(f)['argv'][-1].startswith('import os')
  assert not os.path.exists(os.path.join(second.directory, table1.LOCK_FILE))
  assert 'done' in runner.plan([first, second]).splitlines()[0]


def test_a_stage_exiting_0_without_its_marker_is_an_error(tmp_path):
  st = _stage(tmp_path, 'quiet', 'pass', marker=str(tmp_path / 'never.json'))
  with pytest.raises(table1.StageError, match='exited 0 but wrote no'):
    table1.run_stage(st, str(tmp_path), lambda m: None)


def test_lock_of_a_live_runner_stops_a_second_one_and_a_dead_ones_is_taken_over(tmp_path):
  directory = str(tmp_path / 'stage')
  sleeper = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
  try:
    os.makedirs(directory)
    with open(os.path.join(directory, table1.LOCK_FILE), 'w') as f:
      json.dump({'pid': sleeper.pid, 'host': socket.gethostname(), 'started': 'now'}, f)
    with pytest.raises(table1.StageError, match=f'in use by pid {sleeper.pid}'):
      table1.acquire_lock(directory, 'x')
  finally:
    sleeper.kill()
    sleeper.wait()
  path = table1.acquire_lock(directory, 'x')  # the holder is dead now
  with open(path) as f:
    assert json.load(f)['pid'] == os.getpid()


def _write_eval(path, successes, n, seed, grasp_distance=None, outcomes=None, spread=None):
  low, high = policy_eval.wilson_interval(successes, n)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  result = {'num_successes': successes, 'num_episodes': n, 'success_rate': successes / n,
            'ci95_low': low, 'ci95_high': high, 'seed': seed}
  if spread is not None:  # the Q's image tower (policy_eval's embedding_spread)
    result['embedding_spread'] = spread
  if outcomes is not None:  # per scene (policy_eval.evaluate)
    assert sum(outcomes) == successes and len(outcomes) == n
    result['outcomes'] = list(outcomes)
  if grasp_distance is not None:  # (successes, failures) per bin of GRASP_DISTANCE_BINS_CM
    result['grasp_distance'] = {
        'bins_cm': [[0.0, 2.0], [2.0, 4.0], [4.0, 7.0], [7.0, None]],
        'successes': list(grasp_distance[0]), 'failures': list(grasp_distance[1])}
  with open(path, 'w') as f:
    json.dump(result, f)


def test_summary_paths_are_relative_to_the_checkout_holding_the_results(tmp_path):
  # The runner's code in one worktree, the results in another checkout (session 17).
  results = tmp_path / 'checkout' / 'results' / 'table1'
  table = table1.Table1(str(tmp_path / 'work'), str(tmp_path / 'code'), table1.TINY,
                        log=lambda m: None, results_dir=str(results),
                        docs_dir=str(tmp_path / 'docs'))
  for seed in table1.EVAL_SEEDS:
    for what in ('real', 'sim'):
      _write_eval(table.published('cyclegan_seed0', 'eval', f'{what}_seed{seed}.json'), 5, 10,
                  seed)
  row = table1.summarize(table)['rows']['cyclegan_seed0']
  assert row['checkpoint_dir'] == 'results/table1/cyclegan_seed0/final_q'
  assert '--checkpoint_dir=results/table1/cyclegan_seed0/final_q ' in row['evaluate']


def test_summary_pools_seeds_and_names_every_row_as_the_issue_asks(tmp_path):
  work = tmp_path / 'work'
  table = table1.Table1(str(work), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  real = {'rl_cyclegan_seed0': (30, 40, 50), 'rl_cyclegan_seed1': (20, 20, 20),
          'cyclegan_seed0': (10, 10, 10)}
  for row, wins in real.items():  # as publish_row leaves them in results/table1/<row>/
    for seed, k in zip(table1.EVAL_SEEDS, wins):
      _write_eval(table.published(row, 'eval', f'real_seed{seed}.json'), k, 100, seed)
      _write_eval(table.published(row, 'eval', f'sim_seed{seed}.json'), 50, 100, seed)
  summary = table1.summarize(table)
  rows = summary['rows']
  assert rows['rl_cyclegan_seed0']['real']['successes'] == 120
  assert rows['rl_cyclegan_seed0']['real']['episodes'] == 300
  pooled = rows['rl_cyclegan']['real']
  assert (pooled['successes'], pooled['episodes']) == (180, 600)
  want = policy_eval.wilson_interval(180, 600)
  assert pooled['ci95'] == pytest.approx(list(want))
  assert rows['cyclegan']['seeds'] == [0]  # one seed so far, marked as such
  for key in ('rl_cyclegan', 'rl_cyclegan_seed0', 'cyclegan'):
    assert 'evaluate' in rows[key] and 'checkpoint_dir' in rows[key]
    assert rows[key]['sim']['episodes'] in (300, 600)
  assert 'cyclegan_seed1' in summary['pending'] and 'rl_cyclegan_seed1' not in summary['pending']
  with open(tmp_path / 'results' / 'summary.json') as f:
    assert json.load(f)['rows'].keys() == rows.keys()
  markdown = (tmp_path / 'docs' / 'table1.md').read_text()
  assert '| RL-CycleGAN (pooled) | 30.0% (180/600;' in markdown
  assert '| CycleGAN (seed 0 only) | 10.0% (30/300;' in markdown
  assert '| CycleGAN (seed 0) |' not in markdown  # the same figures once, not twice
  assert '| CycleGAN (seed 1) | not run yet |' in markdown
  assert '| RL-CycleGAN (seed 0) | 40.0% (120/300;' in markdown
  empty = table1.table_markdown({'rows': {}, 'pending': [], 'episodes_per_seed': 100,
                                 'eval_seeds': [0, 1, 2]})
  assert '| CycleGAN | not run yet |' in empty  # no row yet: no '(seed 0 only)' suffix either


def _write_training_eval(run, step, real_rate):
  os.makedirs(os.path.join(run, 'eval'), exist_ok=True)
  low, high = policy_eval.wilson_interval(int(50 * real_rate), 50)
  with open(os.path.join(run, 'eval', f'eval_{step:08d}.json'), 'w') as f:
    json.dump({'step': step, 'results': {'real': {
        'success_rate': real_rate, 'ci95_low': low, 'ci95_high': high}}}, f)


def test_learning_curves_mark_the_oracle_the_baseline_and_the_floor():
  """The dashed lines: the real-trained oracle's, Sim-Only's and the random policy's final
  figures in real, in that order, each only once measured."""
  def measured(successes):
    return {'real': {'success_rate': successes / 300, 'episodes': 300}}
  summary = {'rows': {'sim_only': measured(115), 'random': measured(83),
                      'rl_cyclegan': {'real': None}}}
  assert table1.reference_lines(summary) == [
      ('Sim-Only, final: 38.3% (n=300)', 115 / 300),
      ('Random policy, final: 27.7% (n=300)', 83 / 300)]
  summary['rows']['real_oracle'] = measured(160)
  assert [label for label, _ in table1.reference_lines(summary)] == [
      'Real-trained oracle, final: 53.3% (n=300)', 'Sim-Only, final: 38.3% (n=300)',
      'Random policy, final: 27.7% (n=300)']


def test_summary_draws_the_final_qs_learning_curves_of_this_world(tmp_path):
  """docs/<table>_curves.png: each final Q's in-training success in real, a finished one's
  published copy before its interim copy; the project's Sim-Only run only in its own world."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  checkout = tmp_path / 'repo'
  (checkout / 'results').mkdir(parents=True)
  def make(gap, name):
    return table1.Table1(str(tmp_path / f'work_{name}'), str(checkout), table1.TINY,
                         log=lambda m: None, results_dir=str(checkout / 'results' / name),
                         docs_dir=str(tmp_path / 'docs'), real_gap=gap)
  table, other = make(None, 'table1'), make(0.75, 'gap')
  assert table1.summarize(table) and not os.path.exists(tmp_path / 'docs' / 'table1_curves.png')
  _write_training_eval(checkout / table1.SIM_ONLY_RESULTS, 4000, 0.3)
  _write_training_eval(table.published('real_oracle', 'final_q_interim'), 4000, 0.2)
  _write_training_eval(table.published('rl_cyclegan_seed0', 'final_q_interim'), 4000, 0.1)
  _write_training_eval(table.published('rl_cyclegan_seed0', 'final_q'), 8000, 0.4)
  assert ('RL-CycleGAN s0 (training)', table.published('rl_cyclegan_seed0', 'final_q_interim')
          ) in table1.training_curve_dirs(table)  # no done marker: not the finished run yet
  _mark(table.published('rl_cyclegan_seed0', 'final_q', table1.DONE_FILE))
  assert table1.training_curve_dirs(table) == [
      ('Sim-Only', str(checkout / table1.SIM_ONLY_RESULTS)),
      ('RL-CycleGAN s0', table.published('rl_cyclegan_seed0', 'final_q')),
      ('Real-trained oracle (training)', table.published('real_oracle', 'final_q_interim'))]
  assert table1.summarize(table)['curves'] == 'table1_curves.png'
  assert '![learning curves](table1_curves.png)' in (tmp_path / 'docs' / 'table1.md').read_text()
  with Image.open(tmp_path / 'docs' / 'table1_curves.png') as image:
    assert image.size[1] == 440
  assert 'joint_curves' not in table1.summarize(table)  # no joint run has evaluated yet
  joint = table.published('cyclegan_seed0', 'joint')
  running = os.path.join(table.row_dir('cyclegan_seed0'), 'joint')
  for run in (joint, running):  # publish_row copies a running joint run's evaluations too
    os.makedirs(os.path.join(run, 'eval'))
    with open(os.path.join(run, 'eval', 'eval_00002000.json'), 'w') as f:
      json.dump({'step': 2000, 'results': {'Q_real/real': {
          'success_rate': 0.3, 'ci95_low': 0.2, 'ci95_high': 0.4}}}, f)
  assert table1.training_curve_dirs(table, 'joint') == [('CycleGAN s0 (training)', running)]
  _mark(os.path.join(joint, table1.DONE_FILE))
  assert table1.training_curve_dirs(table, 'joint') == [('CycleGAN s0', joint)]
  assert table1.summarize(table)['joint_curves'] == 'table1_joint_curves.png'
  assert "![joint runs' Q_real](table1_joint_curves.png)" in (
      tmp_path / 'docs' / 'table1.md').read_text()
  # Another world: the project's Sim-Only curves were measured at real_gap 1, not here.
  assert table1.training_curve_dirs(other) == []
  _write_training_eval(other.published('real_oracle', 'final_q_interim'), 4000, 0.5)
  table1.summarize(other)
  assert os.path.isfile(tmp_path / 'docs' / 'table1_real_gap0.75_curves.png')
  # A malformed evaluation file costs its run's curve, named in the log, not the summary.
  logs = []
  other._log = logs.append  # pylint: disable=protected-access
  with open(other.published('real_oracle', 'final_q_interim', 'eval', 'eval_00008000.json'),
            'w') as f:
    json.dump({'results': {}}, f)
  table1.summarize(other)
  assert any('eval_00008000.json' in m and 'left out' in m for m in logs)


def test_plan_lists_each_stage_with_an_estimate(tmp_path):
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(),
                        results_dir=str(tmp_path / 'results'))
  stages = table.stages(['rl_cyclegan_seed0'])
  names = [s.name for s in stages]
  assert names[:3] == ['data/real_log5k', 'data/paired_full', 'data/sim_mix18']
  assert names[3:5] == ['rl_cyclegan_seed0/joint', 'rl_cyclegan_seed0/generator_report']
  assert names[8:10] == ['rl_cyclegan_seed0/translate', 'rl_cyclegan_seed0/final_q']
  plan = table.plan(stages)
  assert 'rl_cyclegan_seed0/final_q' in plan and 'remaining: ~' in plan
  joint = stages[3].argv
  assert '--gin_file' in joint and any('critic_init_checkpoint' in a for a in joint)
  assert any(a.endswith('train_rl_cyclegan.seed = 0') for a in joint)
  # A collection that stopped part-way is estimated for its missing shards only.
  sim_log = stages[2]
  full = table.scale.sim_log_episodes / table.scale.collect_episodes_per_s
  assert sim_log.estimate_s == pytest.approx(full)
  num_shards = -(-table.scale.sim_log_episodes // table.scale.episodes_per_shard)
  os.makedirs(sim_log.directory)
  for i in range(num_shards // 4):
    open(os.path.join(sim_log.directory, f'episodes-{i:05d}-of-{num_shards:05d}.tfrecord'),
         'w').close()
  open(os.path.join(sim_log.directory, 'episodes-00099-of-00180.tfrecord.tmp-1'), 'w').close()
  again = {s.name: s for s in table.stages(['rl_cyclegan_seed0'])}['data/sim_mix18']
  assert again.estimate_s == pytest.approx(full * (1 - (num_shards // 4) / num_shards))


def test_the_paper_faithful_row_drops_both_deviations(tmp_path):
  """rl_cyclegan_scratch: critics from scratch and no sim log; otherwise the RL-CycleGAN row."""
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd())
  joint = {s.name: s.argv for s in table.stages(['rl_cyclegan_seed0', 'rl_cyclegan_scratch'])}
  warm, scratch = joint['rl_cyclegan_seed0/joint'], joint['rl_cyclegan_scratch/joint']
  for deviation in ('critic_init_checkpoint', 'Replay.sim_episode_dir'):
    assert any(deviation in a for a in warm) and not any(deviation in a for a in scratch)
  assert table.gin('gin/table1_rl_cyclegan_scratch.gin') in scratch
  assert any("Replay.real_episode_dir" in a for a in scratch)
  # Its final Q is the same recipe as every generator row's (the sim log through its G).
  final = joint['rl_cyclegan_scratch/final_q']
  assert any('Replay.sim_episode_dir' in a for a in final)
  assert table1.expand_rows(['rl_cyclegan_scratch']) == ['rl_cyclegan_scratch']


def test_each_lever_row_changes_one_thing_of_the_rl_cyclegan_row(tmp_path):
  """Issue 18's levers: each is the RL-CycleGAN row (seed 0) with one documented change."""
  from rl_cyclegan import run_dir  # pylint: disable=g-import-not-at-top
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd())
  stages = {s.name: s for s in table.stages(['rl_cyclegan_seed0'] + list(table1.LEVER_ROWS))}
  base_gin = run_dir.parse_gin_bindings(table.gin('gin/table1_rl_cyclegan.gin'))
  expected = {'rl_cyclegan_rlscene1': {'RLCycleGANLearner.rl_scene_weight': 1.0},
              'rl_cyclegan_long': {'train_rl_cyclegan.num_train_steps': 20000,
                                   'Replay.sim_replay_capacity': 11000},
              'rl_cyclegan_real_critic': {},  # its change is the stage before its joint run
              'rl_cyclegan_adam_per_loss': {
                  'RLCycleGANLearner.generator_optimizer_per_loss': True}}
  assert set(expected) == set(table1.LEVER_ROWS)
  assert base_gin['train_rl_cyclegan.num_train_steps'] == 10000  # 'long' is twice that
  for row, gin_file in table1.LEVER_ROWS.items():
    lever_gin = run_dir.parse_gin_bindings(table.gin(gin_file))
    changed = {k: v for k, v in lever_gin.items() if base_gin.get(k) != v}
    assert changed == expected[row], row
    assert table1.GENERATOR_ROWS[row] == gin_file and row in table1.ROW_LABELS
    key = f'{row}_seed0' if row in table1.TRAINING_SEEDS else row  # its seed-0 run
    assert key in table1.expand_rows([row]) and key not in table1.expand_rows(['all'])
    # The joint command is the seed-0 row's but for its gin file and directory.
    base_argv = stages['rl_cyclegan_seed0/joint'].argv
    argv = stages[f'{key}/joint'].argv
    if row in table1.REAL_CRITIC_ROWS:  # ... and Q_real's start
      start = table.published(row, 'real_critic', 'train', 'ckpt')
      binding = f"train_rl_cyclegan.real_critic_init_checkpoint = '{start}'"
      assert argv[argv.index(binding) - 1] == '--gin_bindings'
      argv = argv[:argv.index(binding) - 1] + argv[argv.index(binding) + 1:]
    assert [a.replace(f'/{key}/', '/rl_cyclegan_seed0/').replace(
        gin_file, 'gin/table1_rl_cyclegan.gin') for a in argv] == base_argv
    # Its final Q is every generator row's recipe on its own G.
    final = ' '.join(stages[f'{key}/final_q'].argv)
    assert f'{key}/generator' in final and 'table1_final_q.gin' in final
  # Session 34: the lambda_RL-scene 1 lever's second training seed is RL-CycleGAN seed 1 with
  # the same one change, in every stage (joint run, translation, final Q, evaluations).
  lever, rl = 'rl_cyclegan_rlscene1_seed1', 'rl_cyclegan_seed1'
  assert table1.expand_rows(['rl_cyclegan_rlscene1']) == ['rl_cyclegan_rlscene1_seed0', lever]
  pair = {st.name: st.argv for st in table.stages([rl, lever])}
  lever_names = [n for n in pair if n.startswith(f'{lever}/')]
  assert len(lever_names) == len([n for n in pair if n.startswith(f'{rl}/')]) > 10
  for name in lever_names:
    assert [a.replace(f'/{lever}/', f'/{rl}/').replace(
        'table1_rl_cyclegan_rlscene1.gin', 'table1_rl_cyclegan.gin') for a in pair[name]] == (
            pair[name.replace(lever, rl)]), name
  assert 'train_rl_cyclegan.seed = 1' in pair[f'{lever}/joint']
  assert 'train_eval.seed = 1' in pair[f'{lever}/final_q']
  # At a set scale the longer run's step count is the multiple of the table's.
  tiny = table1.Table1(str(tmp_path / 'tiny'), os.getcwd(), table1.TINY, log=lambda m: None)
  joint = {s.name: s.argv for s in tiny.stages(['rl_cyclegan_long'], joint_only=True)}
  assert 'train_rl_cyclegan.num_train_steps = 4' in joint['rl_cyclegan_long/joint']
  assert 'train_rl_cyclegan.num_train_steps = 2' in joint['rl_cyclegan_seed0/joint']


def test_a_frozen_g_is_built_as_its_joint_run_built_it_for_translation_and_final_q(tmp_path):
  """Session 32: GraspGAN-style's translation stopped the chain, since the final Q's config
  built G without the mask head its checkpoint holds. Every generator row's joint-gin
  UNetGenerator settings that gin/table1_final_q.gin lacks reach both stages that build G."""
  from rl_cyclegan import run_dir  # pylint: disable=g-import-not-at-top
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=lambda m: None,
                        results_dir=str(tmp_path / 'results'))
  final_q = run_dir.parse_gin_bindings(table.gin('gin/table1_final_q.gin'),
                                       search_paths=[table.gin('gin')])
  for base, gin_file in table1.GENERATOR_ROWS.items():
    joint = run_dir.parse_gin_bindings(table.gin(gin_file), search_paths=[table.gin('gin')])
    needed = {f'{k} = {v!r}' for k, v in joint.items()
              if k.startswith('UNetGenerator.') and final_q.get(k) != v}
    assert needed == set(table1.FROZEN_G_BINDINGS.get(base, ())), base
    row = f'{base}_seed0' if base in table1.TRAINING_SEEDS else base
    stages = {st.name: st for st in table.stages([row])}
    for what in ('translate', 'final_q'):
      argv = stages[f'{row}/{what}'].argv
      for binding in needed:
        assert binding in argv, (row, what)
  assert table1.FROZEN_G_BINDINGS['graspgan'] == ('UNetGenerator.num_mask_classes = 4',)


def test_the_critics_start_lever_fine_tunes_the_sim_only_q_on_the_real_log_first(tmp_path):
  """rl_cyclegan_real_critic: a QT-Opt stage (the Sim-Only Q, trained on the real log alone)
  comes before its joint run, and its published checkpoint starts Q_real."""
  from rl_cyclegan import run_dir  # pylint: disable=g-import-not-at-top
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=lambda m: None,
                        results_dir=str(tmp_path / 'results'))
  row = 'rl_cyclegan_real_critic'
  stages = table.stages([row], joint_only=True)
  names = [s.name for s in stages]
  assert names.index(f'{row}/real_critic') < names.index(f'{row}/joint')
  critic = {s.name: s for s in stages}[f'{row}/real_critic']
  argv = ' '.join(critic.argv)
  assert 'train_qtopt.py' in argv and table.gin(table1.REAL_CRITIC_GIN) in critic.argv
  assert f"train_eval.init_checkpoint = '{table.critic_init}'" in critic.argv
  assert f"Replay.real_episode_dir = '{table.data('real_log5k')}'" in critic.argv
  assert critic.reads == ('data/real_log5k',) and critic.interim is None
  gin_values = run_dir.parse_gin_bindings(table.gin(table1.REAL_CRITIC_GIN))
  assert gin_values['train_eval.num_train_steps'] == table1.REAL_CRITIC_STEPS
  assert gin_values['train_eval.sim_fraction'] == 0.0  # the real log alone
  assert critic.estimate_s == pytest.approx(
      table1.REAL_CRITIC_STEPS / table.scale.final_steps_per_s)
  # Finished and published, it is not trained again on a new machine.
  _trained_q_run(critic.directory, table1.REAL_CRITIC_STEPS)
  _mark(critic.marker)
  table1.publish_row(table, row)
  assert os.path.isfile(table.published(row, 'real_critic', 'train', 'ckpt',
                                        f'ckpt-{table1.REAL_CRITIC_STEPS}.index'))
  shutil.rmtree(tmp_path / 'work')
  again = {s.name: s for s in table.stages([row], joint_only=True)}
  assert again[f'{row}/real_critic'].done and not again[f'{row}/joint'].done


def test_the_longer_lever_trains_the_finished_seed0_joint_run_on(tmp_path):
  """rl_cyclegan_long starts from a copy of rl_cyclegan_seed0's finished joint run; without
  it (a new machine) from step 0; never over a checkpoint of its own."""
  logs = []
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=logs.append,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  stages = table.stages(['rl_cyclegan_long'], joint_only=True)
  names = [s.name for s in stages]
  # The run it trains on comes first.
  assert names.index('rl_cyclegan_seed0/joint') < names.index('rl_cyclegan_long/joint')
  long_joint = {s.name: s for s in stages}['rl_cyclegan_long/joint']
  assert long_joint.estimate_s == pytest.approx(
      2 * table.joint_steps() / table.scale.joint_steps_per_s)
  assert long_joint.prepare() == [] and 'training from step 0' in logs[-1]
  assert not os.path.exists(os.path.join(long_joint.directory, 'train', 'ckpt'))

  source = os.path.join(table.row_dir('rl_cyclegan_seed0'), 'joint')
  _fake_checkpoint(os.path.join(source, 'train', 'ckpt'), 10000)
  for part, content in (('replay/sim/sim-000000.tfrecord', 'episodes'),
                        ('eval/eval_00010000.json', '{}'), ('train/events.out.1', 'scalars')):
    os.makedirs(os.path.dirname(os.path.join(source, part)), exist_ok=True)
    with open(os.path.join(source, part), 'w') as f:
      f.write(content)
  long_joint = {s.name: s for s in table.stages(['rl_cyclegan_long'])}['rl_cyclegan_long/joint']
  assert long_joint.prepare() == []  # the source is not finished yet
  _mark(os.path.join(source, table1.DONE_FILE))
  long_joint = {s.name: s for s in table.stages(['rl_cyclegan_long'])}['rl_cyclegan_long/joint']
  assert long_joint.estimate_s == pytest.approx(  # half of it is trained already
      table.joint_steps() / table.scale.joint_steps_per_s)
  assert long_joint.prepare() == []
  root = long_joint.directory
  with open(os.path.join(root, 'train', 'ckpt', 'ckpt-10000.index')) as f:
    assert f.read() == 'weights at 10000'
  for part in ('replay/sim/sim-000000.tfrecord', 'eval/eval_00010000.json',
               'train/events.out.1'):
    assert os.path.isfile(os.path.join(root, part)), part
  with open(os.path.join(root, table1.CONTINUED_NOTE)) as f:
    assert json.load(f)['step'] == 10000
  _fake_checkpoint(os.path.join(root, 'train', 'ckpt'), 12000)  # it trains on, is stopped
  _fake_checkpoint(os.path.join(source, 'train', 'ckpt'), 10000)
  assert long_joint.prepare() == []  # its own checkpoint is kept
  with open(os.path.join(root, 'train', 'ckpt', 'checkpoint')) as f:
    assert 'ckpt-12000' in f.read()

  _mark(long_joint.marker)  # finished: the table says whose run it trained on
  table1.publish_row(table, 'rl_cyclegan_long')
  entry = table1.summarize(table)['generators']['rl_cyclegan_long']
  assert entry['joint_continued_from'] == {'row': 'rl_cyclegan_seed0', 'step': 10000}
  doc = (tmp_path / 'docs' / 'table1.md').read_text()
  assert "`rl_cyclegan_long`'s joint run trained the finished joint run of" in doc
  assert ('`rl_cyclegan_rlscene1` (`gin/table1_rl_cyclegan_rlscene1.gin`; no joint run reported '
          'yet)') in doc
  assert 'rl_cyclegan_rlscene1' not in doc.split('Rows still to run:')[-1]


def test_the_random_floor_is_evaluated_on_the_same_episodes_without_a_q(tmp_path):
  """The floor row: 'tools/evaluate.py --policy=random' at every evaluation seed, in both
  worlds; no data, no training; shown in the table with its re-measure command."""
  table = table1.Table1(str(tmp_path / 'work'), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  stages = table.stages(['random'])
  assert [s.name for s in stages] == [f'random/eval/{w}_seed{k}' for k in table1.EVAL_SEEDS
                                      for w in ('real', 'sim')]
  for stage in stages:
    assert '--policy=random' in stage.argv
    assert not [a for a in stage.argv if a.startswith(('--checkpoint_dir', '--generator_key'))]
  assert '--seed=2' in stages[-1].argv and '--appearance=sim' in stages[-1].argv
  for seed in table1.EVAL_SEEDS:
    for what in ('real', 'sim'):
      _write_eval(table.published('random', 'eval', f'{what}_seed{seed}.json'), 25, 100, seed)
  row = table1.summarize(table)['rows']['random']
  assert row['real']['successes'] == 75 and 'checkpoint_dir' not in row
  assert row['evaluate'].startswith('python tools/evaluate.py --policy=random --appearance=real')
  markdown = (tmp_path / 'docs' / 'table1.md').read_text()
  assert '| Random policy (the floor) | 25.0% (75/300;' in markdown


def test_another_pseudo_real_world_reaches_every_real_render_and_never_mixes(tmp_path):
  """--real_gap: real logs are collected, runs trained and evaluations rendered in that world;
  sim logs are not touched; world.json keeps two worlds' results apart."""
  table = table1.Table1(str(tmp_path / 'gap'), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results_gap'),
                        docs_dir=str(tmp_path / 'docs'), real_gap=0.75)
  binding = ['--gin_bindings', 'RealAppearance.real_gap = 0.75']
  stages = {s.name: s for s in table.stages(['rl_cyclegan_seed0', 'real_oracle'])}
  flag = '--appearance_kwargs={"real_gap": 0.75}'
  for name in ('data/real_log5k', 'data/real_mix18'):
    assert flag in stages[name].argv, name
  assert not [a for a in stages['data/sim_mix18'].argv if 'real_gap' in a]
  def has_binding(argv):
    return any(argv[i:i + 2] == binding for i in range(len(argv) - 1))
  for name in ('data/paired_full', 'rl_cyclegan_seed0/joint', 'rl_cyclegan_seed0/final_q',
               'real_oracle/final_q', 'rl_cyclegan_seed0/eval/real_seed0',
               'rl_cyclegan_seed0/eval/sim_seed0', 'rl_cyclegan_seed0/eval/joint_q_real_real_seed0'):
    assert has_binding(stages[name].argv), name
  table.check_world()
  for directory in ('gap', 'results_gap'):
    with open(tmp_path / directory / table1.WORLD_FILE) as f:
      assert json.load(f) == {'appearance': 'real', 'real_gap': 0.75}
  table.check_world()  # the same world again: fine
  # A new machine: the work dir holds only the runner's log, put there before the first call.
  fresh = tmp_path / 'fresh'
  fresh.mkdir()
  (fresh / 'runner.log').write_text('started\n')
  table1.Table1(str(fresh), str(tmp_path), table1.TINY, log=lambda m: None,
                results_dir=str(tmp_path / 'results_fresh'), real_gap=0.75).check_world()
  with open(fresh / table1.WORLD_FILE) as f:
    assert json.load(f)['real_gap'] == 0.75
  # The project's world in a directory that already holds runs (written before world.json):
  old = tmp_path / 'old'
  (old / 'data').mkdir(parents=True)
  other = table1.Table1(str(old), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results_old'), real_gap=0.75)
  with pytest.raises(ValueError, match=r"old holds the runs of the pseudo-real world .*'real_gap': 1\.0"):
    other.check_world()
  default = table1.Table1(str(old), str(tmp_path), table1.TINY, log=lambda m: None,
                          results_dir=str(tmp_path / 'results_old'))
  assert default.real_gap is None and default.doc_name == 'table1'
  assert not [a for s in default.stages(['real_oracle']) for a in s.argv if 'real_gap' in a]
  default.check_world()
  with pytest.raises(ValueError, match='results_gap holds the runs'):
    table1.Table1(str(tmp_path / 'new'), str(tmp_path), table1.TINY, log=lambda m: None,
                  results_dir=str(tmp_path / 'results_gap')).check_world()
  with pytest.raises(ValueError, match=r'real_gap must lie in \[0, 1\]'):
    table1.Table1(str(tmp_path / 'x'), str(tmp_path), real_gap=1.5)
  for seed in table1.EVAL_SEEDS:
    for what in ('real', 'sim'):
      _write_eval(table.published('sim_only', 'eval', f'{what}_seed{seed}.json'), 1, 2, seed)
  summary = table1.summarize(table)
  assert summary['world'] == {'appearance': 'real', 'real_gap': 0.75}
  assert ('--appearance=real --gin_bindings="RealAppearance.real_gap = 0.75"'  # re-measure
          in summary['rows']['sim_only']['evaluate'])
  markdown = (tmp_path / 'docs' / 'table1_real_gap0.75.md').read_text()
  assert markdown.startswith('# Table 1 in the pseudo-real world at real_gap 0.75')
  assert '`tools/table1.py --real_gap=0.75`' in markdown
  assert 'results_gap/summary.json`; do not edit' in markdown  # this world's, not the project's
  # An evaluation that records another world (tools/evaluate.py writes 'world') is refused.
  path = table.published('sim_only', 'eval', 'real_seed1.json')
  with open(path) as f:
    result = json.load(f)
  with open(path, 'w') as f:
    json.dump(dict(result, world={'real_gap': 1.0, 'real_seed': 2020}), f)
  with pytest.raises(ValueError, match=r"real_seed1\.json was measured in the pseudo-real "
                     r"world .*'real_gap': 1\.0.*this table's is .*'real_gap': 0\.75"):
    table1.summarize(table)
  with open(path, 'w') as f:
    json.dump(dict(result, world={'real_gap': 0.75, 'real_seed': 2020}), f)
  assert table1.summarize(table)['rows']['sim_only']['real']['successes'] == 3


def test_a_q_network_variant_reaches_every_q_retrains_sim_only_first_and_never_mixes(tmp_path):
  """--q_normalization: every training stage builds its Q-functions with it, the Sim-Only row
  trains again here before the joint runs whose critics start from it, and world.json keeps
  the variant's results apart from the plain table's."""
  from rl_cyclegan.networks import q_network  # pylint: disable=g-import-not-at-top
  assert table1.Q_NORMALIZATIONS == tuple(n for n in q_network.NORMALIZATIONS if n)
  results = tmp_path / 'results_q'
  table = table1.Table1(str(tmp_path / 'q'), os.getcwd(), log=lambda m: None,
                        results_dir=str(results), docs_dir=str(tmp_path / 'docs'),
                        q_normalization='layer')
  binding = ['--gin_bindings', "GraspingQNetwork.normalization = 'layer'"]
  def has_binding(argv):
    return any(argv[i:i + 2] == binding for i in range(len(argv) - 1))
  names = [st.name for st in table.stages(['rl_cyclegan_seed0', 'real_oracle'])]
  assert names.index('sim_only/final_q') < names.index('rl_cyclegan_seed0/joint')
  assert 'sim_only/eval/real_seed0' not in names  # only what the joint run needs
  stages = {st.name: st for st in table.stages(['rl_cyclegan_seed0', 'real_oracle', 'sim_only'])}
  assert list(stages).index('sim_only/eval/real_seed0') < list(stages).index(
      'rl_cyclegan_seed0/joint')  # the Sim-Only row first, as asked or not
  for name in ('sim_only/final_q', 'rl_cyclegan_seed0/joint', 'rl_cyclegan_seed0/final_q',
               'real_oracle/final_q'):
    assert has_binding(stages[name].argv), name
  sim_only = stages['sim_only/final_q'].argv
  assert "Environment.appearance = 'sim'" in sim_only and 'gin/qtopt_sim_only.gin' in ' '.join(
      sim_only)
  assert any(a.startswith('Replay.sim_episode_dir') and 'sim_mix18' in a for a in sim_only)
  critic_init = os.path.join(str(results), 'sim_only', 'final_q', 'train', 'ckpt')
  assert f"train_rl_cyclegan.critic_init_checkpoint = '{critic_init}'" in stages[
      'rl_cyclegan_seed0/joint'].argv
  assert 'data/sim_mix18' in {st.name for st in table.stages(['sim_only'])}
  assert 'sim_only/final_q' not in {st.name for st in table.stages(['rl_cyclegan_scratch'])}
  assert table.doc_name == 'table1_qlayer'
  table.check_world()
  with open(results / table1.WORLD_FILE) as f:
    assert json.load(f) == {'appearance': 'real', 'real_gap': 1.0, 'q_normalization': 'layer'}
  with pytest.raises(ValueError, match=r"results_q holds the runs of .*'q_normalization': "
                     r"'layer'"):
    table1.Table1(str(tmp_path / 'plain'), os.getcwd(), results_dir=str(results)).check_world()
  plain = table1.Table1(str(tmp_path / 'plain'), os.getcwd())
  assert not [a for st in plain.stages(['rl_cyclegan_seed0']) for a in st.argv
              if 'normalization' in a]
  with pytest.raises(ValueError, match=r"q_normalization must be one of \('layer', 'batch'\)"):
    table1.Table1(str(tmp_path / 'x'), os.getcwd(), q_normalization='group')
  # The plain table's logs serve the variant (--data_dir), not another world's.
  (tmp_path / 'plain' / 'data' / 'sim_mix18').mkdir(parents=True)
  lent = table1.Table1(str(tmp_path / 'q2'), os.getcwd(), results_dir=str(tmp_path / 'r2'),
                       q_normalization='layer', data_dir=str(tmp_path / 'plain' / 'data'))
  assert any(str(tmp_path / 'plain' / 'data' / 'sim_mix18') in a
             for a in {st.name: st for st in lent.stages(['sim_only'])}['sim_only/final_q'].argv)
  lent.check_world()
  with open(tmp_path / 'plain' / 'data' / table1.WORLD_FILE) as f:
    assert json.load(f) == {'appearance': 'real', 'real_gap': 1.0}
  with pytest.raises(ValueError, match=r'the data directory .*plain/data holds logs of the '
                     r"pseudo-real world .*'real_gap': 1\.0.*not .*'real_gap': 0\.75"):
    table1.Table1(str(tmp_path / 'q3'), os.getcwd(), results_dir=str(tmp_path / 'r3'),
                  real_gap=0.75, data_dir=str(tmp_path / 'plain' / 'data')).check_world()
  for seed in table1.EVAL_SEEDS:
    for what in ('real', 'sim'):
      _write_eval(table.published('sim_only', 'eval', f'{what}_seed{seed}.json'), 1, 2, seed)
  summary = table1.summarize(table)
  assert summary['world']['q_normalization'] == 'layer'
  assert 'results_q/sim_only/final_q --appearance=real' in summary['rows']['sim_only']['evaluate']
  markdown = (tmp_path / 'docs' / 'table1_qlayer.md').read_text()
  assert markdown.startswith('# Table 1 in the pseudo-real world, Q-networks with layer norm')
  assert '`tools/table1.py --q_normalization=layer`' in markdown


def test_published_stages_count_as_done_and_later_stages_read_the_published_g(tmp_path):
  """A machine lost after the joint run: the committed G and markers are enough."""
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=lambda m: None,
                        results_dir=str(tmp_path / 'results'))
  stages = {s.name: s for s in table.stages(['rl_cyclegan_seed0'])}
  joint, report = stages['rl_cyclegan_seed0/joint'], stages['rl_cyclegan_seed0/generator_report']
  assert not joint.done and not report.done
  for path in (joint.published, report.published):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
      f.write('{}')
  assert joint.done and report.done
  assert not stages['rl_cyclegan_seed0/final_q'].done
  generator = table.published('rl_cyclegan_seed0', 'generator')
  assert f'--generator_checkpoint={generator}' in stages['rl_cyclegan_seed0/translate'].argv
  assert any(generator in a for a in stages['rl_cyclegan_seed0/final_q'].argv)
  names = list(stages)  # the joint run's own evaluations come right after its report
  assert names.index('rl_cyclegan_seed0/eval/joint_q_real_real_seed2') < names.index(
      'rl_cyclegan_seed0/translate')
  work_q = os.path.join(table.row_dir('rl_cyclegan_seed0'), 'final_q')
  evaluations = [n for n in names if n.startswith('rl_cyclegan_seed0/eval/') and 'joint' not in n]
  assert any('composite' in n for n in evaluations) and any('/sim_' in n for n in evaluations)
  assert all(f'--checkpoint_dir={work_q}' in stages[n].argv for n in evaluations)
  # Once the final Q is published, every evaluation of it (later ones too, e.g. on a machine
  # that never trained it) reads the published copy.
  _mark(stages['rl_cyclegan_seed0/final_q'].published)
  published_q = table.published('rl_cyclegan_seed0', 'final_q')
  stages = {s.name: s for s in table.stages(['rl_cyclegan_seed0'])}
  assert all(f'--checkpoint_dir={published_q}' in stages[n].argv for n in evaluations)


def test_the_oracle_q_stage_reads_only_published_files_once_the_oracle_is_published(tmp_path):
  """A generator row's oracle-Q report needs no joint run directory: G, its config and the
  oracle as committed under results/ (a machine lost after both rows finished)."""
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  assert table.oracle_q_dir() is None
  assert 'cyclegan_seed0/oracle_q' not in [s.name for s in table.stages(['cyclegan_seed0'])]
  oracle = table.published('real_oracle', 'final_q')
  os.makedirs(oracle)
  with open(os.path.join(oracle, table1.DONE_FILE), 'w') as f:
    f.write('{}')
  assert table.oracle_q_dir() == oracle
  stages = {s.name: s for s in table.stages(['cyclegan_seed0'])}
  argv = stages['cyclegan_seed0/oracle_q'].argv
  assert f"--run_dir={table.published('cyclegan_seed0', 'joint')}" in argv
  assert f"--generator_checkpoint={table.published('cyclegan_seed0', 'generator')}" in argv
  assert f'--oracle_run_dir={oracle}' in argv and '--figure_states=0' in argv
  assert [s for s in table.stages(['cyclegan_seed0']) if s.name.startswith('data/')][1].name == (
      'data/paired_full')
  # The summary and docs/table1.md carry the agreement, with the no-G baseline first.
  agreement = {'value_abs_diff': 0.25, 'q_abs_diff_at_real_action': 0.125,
               'action_xy_distance': 0.5, 'mean_value_real': 0.75, 'num_states': 64}
  for seed in table1.EVAL_SEEDS:
    for what in ('real', 'sim'):
      _write_eval(table.published('cyclegan_seed0', 'eval', f'{what}_seed{seed}.json'), 1, 2,
                  seed)
  with open(table.published('cyclegan_seed0', 'oracle_q_report.json'), 'w') as f:
    json.dump({'oracle_q': {'generator': agreement,
                            'identity': dict(agreement, value_abs_diff=0.375),
                            'other_state': dict(agreement, action_xy_distance=0.875)}}, f)
  summary = table1.summarize(table)
  assert summary['rows']['cyclegan_seed0']['oracle_q']['generator'] == agreement
  markdown = (tmp_path / 'docs' / 'table1.md').read_text()
  assert '| no G (sim x) | 0.375 | 0.125 | 0.500 | 0.750 |' in markdown
  assert '| CycleGAN (seed 0) | 0.250 | 0.125 | 0.500 | 0.750 |' in markdown
  assert "| chance: another state's real render | 0.250 | 0.125 | 0.875 | 0.750 |" in markdown
  assert 'does not respond to the image' not in markdown
  # The 0.75 world's case: the sim image moves the oracle's action more than chance (0.914
  # against 0.740), a generator less. The oracle responds to the image: it ranks generators.
  with open(table.published('cyclegan_seed0', 'oracle_q_report.json'), 'w') as f:
    json.dump({'oracle_q': {'generator': dict(agreement, action_xy_distance=0.612),
                            'identity': dict(agreement, action_xy_distance=0.914),
                            'other_state': dict(agreement, action_xy_distance=0.740)}}, f)
  table1.summarize(table)
  assert 'does not respond to the image' not in (tmp_path / 'docs' / 'table1.md').read_text()
  # An oracle that ignores the image (another state moves its action no more than G does):
  # the table says that the metric cannot rank the generators, and shows tiny differences.
  with open(table.published('cyclegan_seed0', 'oracle_q_report.json'), 'w') as f:
    json.dump({'oracle_q': {'generator': dict(agreement, value_abs_diff=1.4e-4),
                            'identity': agreement,
                            'other_state': dict(agreement, action_xy_distance=0.003)}}, f)
  table1.summarize(table)
  markdown = (tmp_path / 'docs' / 'table1.md').read_text()
  assert '| CycleGAN (seed 0) | 1.4e-04 | 0.125 | 0.500 | 0.750 |' in markdown
  assert 'cannot rank the generators here: the oracle does not respond to the image' in markdown


def test_the_oracle_q_distances_are_compared_state_by_state(tmp_path):
  """RL-CycleGAN against CycleGAN of the same seed, a lever against RL-CycleGAN seed 0: the
  mean of the per-state differences with its interval, and each distance with its SE."""
  table = table1.Table1(str(tmp_path / 'work'), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  per_state = {'cyclegan_seed0': [0.25, 0.5, 0.75, 0.5], 'rl_cyclegan_seed0': [0.5, 1.0, 1.0, 1.0],
               'rl_cyclegan_rlscene1_seed0': [0.5, 1.0, 1.0, 1.0]}
  # A lever's second training seed is read against the RL-CycleGAN row of that seed.
  assert table1.oracle_q_reference('rl_cyclegan_rlscene1_seed1') == 'rl_cyclegan_seed1'
  assert table1.oracle_q_reference('rl_cyclegan_real_critic') == 'rl_cyclegan_seed0'
  for row, distances in per_state.items():
    agreement = {'value_abs_diff': 0.25, 'q_abs_diff_at_real_action': 0.125,
                 'action_xy_distance': sum(distances) / 4, 'action_xy_distance_se': 0.0625,
                 'action_xy_distances': distances, 'mean_value_real': 0.75, 'num_states': 4}
    os.makedirs(table.published(row), exist_ok=True)
    identity = dict(agreement, action_xy_distances=[1.0, 0.75, 1.0, 0.5])  # the same oracle
    with open(table.published(row, 'oracle_q_report.json'), 'w') as f:
      json.dump({'oracle_q': {'oracle': f'/machine{len(row)}/o', 'generator': agreement,
                              'identity': identity}}, f)  # paths differ between machines
  table1.summarize(table)
  markdown = (tmp_path / 'docs' / 'table1.md').read_text()
  assert '| CycleGAN (seed 0) | 0.250 | 0.125 | 0.500 ± 0.062 | 0.750 |' in markdown
  # differences 0.25, 0.5, 0.25, 0.5: mean 0.375, sample sd 0.1443, half-width 1.96 * sd / 2
  assert ('- RL-CycleGAN (seed 0) against CycleGAN (seed 0): +0.375 (95% CI +0.234 to +0.516; '
          '4 states)') in markdown
  assert ('- RL-CycleGAN, lever: lambda_RL-scene 1 (seed 0) against RL-CycleGAN (seed 0): '
          '+0.000') in markdown
  assert 'not comparable' not in markdown
  # The lever's report made again on another machine: the table says why there is no line.
  lever = json.load(open(table.published('rl_cyclegan_rlscene1_seed0', 'oracle_q_report.json')))
  lever['oracle_q']['identity']['action_xy_distances'] = [0.5, 0.75, 1.0, 0.5]
  with open(table.published('rl_cyclegan_rlscene1_seed0', 'oracle_q_report.json'), 'w') as f:
    json.dump(lever, f)
  table1.summarize(table)
  markdown = (tmp_path / 'docs' / 'table1.md').read_text()
  assert ('- RL-CycleGAN, lever: lambda_RL-scene 1 (seed 0) against RL-CycleGAN (seed 0): not '
          'comparable state by state') in markdown
  assert '- RL-CycleGAN (seed 0) against CycleGAN (seed 0): +0.375' in markdown
  sim = {'action_xy_distances': [1.0, 0.75, 1.0, 0.5]}
  cyclegan = {'generator': {'action_xy_distances': per_state['cyclegan_seed0']}, 'identity': sim}
  rl = {'generator': {'action_xy_distances': per_state['rl_cyclegan_seed0']}, 'identity': sim}
  assert table1.oracle_q_paired_difference(rl, cyclegan)['mean'] == pytest.approx(0.375)
  another_oracle = dict(rl, identity={'action_xy_distances': [0.5, 0.75, 1.0, 0.5]})
  assert table1.oracle_q_paired_difference(rl, another_oracle) is None
  other_states = {'generator': {'action_xy_distances': [0.5]},
                  'identity': {'action_xy_distances': [1.0]}}
  assert table1.oracle_q_paired_difference(cyclegan, other_states) is None
  older = {'generator': {'action_xy_distance': 0.5}, 'identity': {'action_xy_distance': 0.9}}
  assert table1.oracle_q_paired_difference(cyclegan, older) is None  # no per-state distances


def test_the_oracle_q_report_is_made_on_its_own_larger_set_and_older_ones_again(tmp_path):
  """The oracle-Q stage reads data/paired_oracle (Scale.oracle_states, not the 64 states of the
  scene figures); a report of fewer states, committed before, is made again, not counted."""
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  _mark(os.path.join(table.published('real_oracle', 'final_q'), table1.DONE_FILE))
  for name in ('joint/' + table1.DONE_FILE, 'generator_report.json'):
    _mark(table.published('cyclegan_seed0', name))
  for k in table1.EVAL_SEEDS:
    _mark(table.published('cyclegan_seed0', 'eval', f'joint_q_real_real_seed{k}.json'))
  stage = lambda: {s.name: s for s in table.stages(['cyclegan_seed0'], joint_only=True)}
  oracle_q = stage()['cyclegan_seed0/oracle_q']
  assert oracle_q.reads == ('data/paired_oracle',)
  assert f"--paired_set={table.data('paired_oracle.npz')}" in oracle_q.argv
  paired = stage()['data/paired_oracle'].argv
  assert f'--num_states={table1.FULL.oracle_states}' in paired and '--seed=2000' in paired
  assert table1.FULL.oracle_states > table1.FULL.paired_states
  # The joint run is published, so only the oracle's set is collected, for the oracle-Q stage.
  assert [n for n in stage() if not stage()[n].done] == ['data/paired_oracle',
                                                         'cyclegan_seed0/oracle_q']

  def report(path, num_states):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
      json.dump({'oracle_q': {'generator': {'num_states': num_states}}}, f)

  report(oracle_q.published, table1.FULL.paired_states)  # a 64-state report, as committed
  assert not stage()['cyclegan_seed0/oracle_q'].done
  report(oracle_q.marker, table1.FULL.oracle_states)  # made again on this machine
  assert stage()['cyclegan_seed0/oracle_q'].done
  assert 'data/paired_oracle' not in stage()  # nothing unfinished reads it now
  os.remove(oracle_q.marker)
  report(oracle_q.published, table1.FULL.oracle_states)  # and published
  assert stage()['cyclegan_seed0/oracle_q'].done
  with open(oracle_q.published, 'w') as f:
    f.write('{"oracle_q": ')  # a partial file never counts
  assert not stage()['cyclegan_seed0/oracle_q'].done


def test_oracle_q_rows_of_different_set_sizes_are_marked(tmp_path):
  """While older reports are made again, each row says how many states it was measured on."""
  table = table1.Table1(str(tmp_path / 'work'), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  for row, n in (('cyclegan_seed0', 64), ('rl_cyclegan_seed0', 256)):
    agreement = {'value_abs_diff': 0.25, 'q_abs_diff_at_real_action': 0.125,
                 'action_xy_distance': 0.5, 'mean_value_real': 0.75, 'num_states': n}
    os.makedirs(table.published(row), exist_ok=True)
    with open(table.published(row, 'oracle_q_report.json'), 'w') as f:
      json.dump({'oracle_q': {'generator': agreement, 'identity': agreement}}, f)
  table1.summarize(table)
  markdown = (tmp_path / 'docs' / 'table1.md').read_text()
  assert '| CycleGAN (seed 0) [64 states] | 0.250 |' in markdown
  assert '| RL-CycleGAN (seed 0) [256 states] | 0.250 |' in markdown
  assert "States: as marked; `no G` and `chance` on the first row's 64" in markdown


def test_docs_say_where_each_generators_errors_lie(tmp_path):
  """The per-region errors of each generator's report, the sim image's in brackets; a metric
  an older report lacks is a dash."""
  table = table1.Table1(str(tmp_path / 'work'), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  metrics = {'mae': 17.4, 'mae_objects': 40.25, 'mae_robot': 50.0, 'mae_background': 12.5,
             'edge_corr_objects': 0.175, 'object_preservation': 0.9,
             'object_contrast_excess': 9.25, 'robot_contrast_excess': -4.5}
  identity = {f'identity/{k}': 2 * v for k, v in metrics.items()}
  reports = {'rl_cyclegan_seed0': {f'generator/{k}': v for k, v in metrics.items()},
             'cyclegan_seed0': {f'generator/{k}': v for k, v in metrics.items()
                                if k not in ('mae_background', 'object_contrast_excess',
                                             'robot_contrast_excess')}}  # before they existed
  for row, report in reports.items():
    os.makedirs(table.published(row))
    with open(table.published(row, 'generator_report.json'), 'w') as f:
      json.dump({'frame': dict(report, **identity), 'crop': {}}, f)
  table1.summarize(table)
  markdown = (tmp_path / 'docs' / 'table1.md').read_text()
  assert "## Where G's errors lie" in markdown
  assert ('| RL-CycleGAN (seed 0) | 17.4 (34.8) | 40.2 (80.5) | 50.0 (100.0) | 12.5 (25.0) | '
          '0.17 (0.35) | 0.900 (1.800) | 9.2 (18.5) | -4.5 (-9.0) |') in markdown
  assert '| 0.900 (1.800) | - (18.5) |' not in markdown  # a dash, not half a figure
  assert '| 0.17 (0.35) | 0.900 (1.800) | - | - |' in markdown
  assert '| CycleGAN (seed 0) | 17.4 (34.8) | 40.2 (80.5) | 50.0 (100.0) | - |' in markdown
  section = markdown[markdown.index("## Where G's errors lie"):]
  assert section.index('| CycleGAN (seed 0) |') < section.index('| RL-CycleGAN (seed 0) |')
  # Neither final Q has run: the main table shows each frozen G's own figure, and says so.
  assert '| RL-CycleGAN (seed 0) | final Q not run yet | | not measured | 0.900 | | 70% |' in (
      markdown)
  for seed in table1.EVAL_SEEDS:  # the joint run's Q_real in real lands next
    _write_eval(table.published('rl_cyclegan_seed0', 'eval', f'joint_q_real_real_seed{seed}.json'),
                40, 100, seed)
  summary = table1.summarize(table)
  assert 'rl_cyclegan_seed0' in summary['pending'] and 'rl_cyclegan_seed0' not in summary['rows']
  assert summary['generators']['rl_cyclegan_seed0']['joint_q_real_real']['successes'] == 120
  assert '| RL-CycleGAN (seed 0) | final Q not run yet | | 40.0% (120/300; 35-46%) | 0.900 |' in (
      (tmp_path / 'docs' / 'table1.md').read_text())


def test_publish_copies_a_finished_rows_files(tmp_path):
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=lambda m: None,
                        results_dir=str(tmp_path / 'results'))
  row = table.row_dir('cyclegan_seed0')
  os.makedirs(os.path.join(row, 'joint', 'eval'))
  _write_eval(os.path.join(row, 'joint', 'eval', 'eval_00002000.json'), 1, 2, 0)
  table1.publish_row(table, 'cyclegan_seed0')  # still training: its interim copy, not joint/
  assert not os.path.exists(table.published('cyclegan_seed0', 'joint'))
  with open(os.path.join(row, 'joint', table1.DONE_FILE), 'w') as f:
    f.write('{}')
  _write_eval(os.path.join(row, 'eval', 'real_seed0.json'), 1, 2, 0)
  table1.publish_row(table, 'cyclegan_seed0')
  assert os.path.isfile(table.published('cyclegan_seed0', 'joint', table1.DONE_FILE))
  assert os.path.isfile(table.published('cyclegan_seed0', 'joint', 'eval', 'eval_00002000.json'))
  assert os.path.isfile(table.published('cyclegan_seed0', 'eval', 'real_seed0.json'))


def test_a_data_stage_another_runner_collects_is_waited_for_not_collected_twice(
    tmp_path, monkeypatch):
  """A --data_only runner and a runner of the rows share the logs: the second one waits for
  the first one's lock, then finds the log done; a training stage's held lock still fails."""
  monkeypatch.setattr(table1, 'DATA_LOCK_POLL_S', 0.05)
  logs = []
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=logs.append,
                        results_dir=str(tmp_path / 'results'))
  ran = tmp_path / 'ran_here'
  st = _stage(tmp_path, 'data/log', f"open({str(ran)!r}, 'w').close()")
  other = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
  with open(os.path.join(st.directory, table1.LOCK_FILE), 'w') as f:
    json.dump({'pid': other.pid, 'host': socket.gethostname()}, f)
  def finish():  # the other runner writes the marker, releases its lock, then exits
    time.sleep(1.0)
    with open(st.marker, 'w') as f:
      json.dump({}, f)
    os.remove(os.path.join(st.directory, table1.LOCK_FILE))
    other.kill()
    other.wait()
  threading.Thread(target=finish).start()
  table.run([st])
  assert any('data/log: waiting for another runner' in m for m in logs)
  assert not ran.exists()  # done by the other runner: not collected twice
  train = _stage(tmp_path, 'row/final_q', 'pass')
  holder = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])
  try:
    with open(os.path.join(train.directory, table1.LOCK_FILE), 'w') as f:
      json.dump({'pid': holder.pid, 'host': socket.gethostname()}, f)
    with pytest.raises(table1.StageError, match='row/final_q'):
      table.run([train])
  finally:
    holder.kill()
    holder.wait()


def test_joint_only_runs_the_joint_part_and_the_logs_it_reads(tmp_path):
  """--joint_only: each joint run and what is measured of it, before any final Q is spent."""
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(),
                        results_dir=str(tmp_path / 'results'))
  names = [s.name for s in table.stages(['rl_cyclegan_seed0', 'real_oracle'], joint_only=True)]
  assert names == ['data/real_log5k', 'data/paired_full', 'data/sim_mix18',
                   'rl_cyclegan_seed0/joint', 'rl_cyclegan_seed0/generator_report'] + [
                       f'rl_cyclegan_seed0/eval/joint_q_real_real_seed{k}'
                       for k in table1.EVAL_SEEDS]
  # The paper-faithful joint run reads no sim log; only its final Q would.
  scratch = [s.name for s in table.stages(['rl_cyclegan_scratch'], joint_only=True)]
  assert 'data/sim_mix18' not in scratch and 'rl_cyclegan_scratch/joint' in scratch
  assert 'data/sim_mix18' in [s.name for s in table.stages(['rl_cyclegan_scratch'])]


def test_data_only_plans_just_the_logs_the_rows_read(tmp_path, capsys):
  from rl_cyclegan.cli import table1 as cli  # pylint: disable=g-import-not-at-top
  assert cli.main([f'--work_dir={tmp_path / "work"}', f'--results_dir={tmp_path / "results"}',
                   '--rows=rl_cyclegan_seed0', '--data_only', '--dry_run']) == 0
  plan = [line.split()[1] for line in capsys.readouterr().out.splitlines()
          if line.strip()[:1].isdigit()]
  assert plan == ['data/real_log5k', 'data/paired_full', 'data/sim_mix18']


def test_sigterm_to_the_runner_stops_the_stage_binary_and_frees_the_lock(tmp_path):
  """tools/table1.py's handling, on a fake stage: the child dies with the runner."""
  script = tmp_path / 'runner.py'
  pid_file = tmp_path / 'child.pid'
  script.write_text(f'''
import os, sys
sys.path.insert(0, {os.getcwd()!r})
from rl_cyclegan.pipelines import table1
from rl_cyclegan.train import loop
body = "import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
st = table1.Stage('slow', [sys.executable, '-c', body], {str(tmp_path / 'slow')!r},
                  {str(tmp_path / 'never')!r}, 1.0)
st.interim = lambda: open({str(tmp_path / 'interim_copied')!r}, 'w').close()
try:
  with loop.sigterm_as_exception():
    table1.run_stage(st, {str(tmp_path)!r}, print)
except loop.Terminate:
  sys.exit(130)
''')
  runner = subprocess.Popen([sys.executable, str(script)])
  deadline = time.time() + 600  # importing TensorFlow took over 60 s beside two training runs
  while not pid_file.exists() and time.time() < deadline and runner.poll() is None:
    time.sleep(0.2)
  assert pid_file.exists(), f'the fake stage did not start (runner exit code {runner.poll()})'
  child = int(pid_file.read_text())
  runner.terminate()
  assert runner.wait(timeout=300) == 130
  time.sleep(0.5)
  with pytest.raises(ProcessLookupError):
    os.kill(child, 0)
  assert not (tmp_path / 'slow' / table1.LOCK_FILE).exists()
  assert (tmp_path / 'interim_copied').exists()  # the checkpoint SIGTERM saved is published


def _mark(path):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write('{}')


def test_a_log_is_collected_only_while_an_unfinished_stage_reads_it(tmp_path):
  """A lost machine after the joint run: the real log and paired set are not collected again."""
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=lambda m: None,
                        results_dir=str(tmp_path / 'results'))
  names = lambda: [s.name for s in table.stages(['rl_cyclegan_seed0']) if s.name.startswith(
      'data/')]
  assert names() == ['data/real_log5k', 'data/paired_full', 'data/sim_mix18']
  stages = {s.name: s for s in table.stages(['rl_cyclegan_seed0'])}
  _mark(stages['rl_cyclegan_seed0/joint'].published)
  _mark(stages['rl_cyclegan_seed0/generator_report'].published)
  assert names() == ['data/sim_mix18']  # still read by the translation and the final Q
  # A published final Q needs no translated log: neither it nor the sim log is made again.
  _mark(stages['rl_cyclegan_seed0/final_q'].published)
  assert stages['rl_cyclegan_seed0/translate'].done
  assert names() == []
  # The oracle's own log is read by its final Q only.
  assert [s.name for s in table.stages(['real_oracle']) if s.name.startswith('data/')] == [
      'data/real_mix18']


def _fake_checkpoint(directory, step):
  os.makedirs(directory, exist_ok=True)
  for suffix in ('index', 'data-00000-of-00001'):
    with open(os.path.join(directory, f'ckpt-{step}.{suffix}'), 'w') as f:
      f.write(f'weights at {step}')
  with open(os.path.join(directory, 'checkpoint'), 'w') as f:
    f.write(f'model_checkpoint_path: "ckpt-{step}"\n')


def _trained_q_run(root, step, generator=None):
  """A finished QT-Opt run as train_qtopt leaves it (a tiny Q): run_spec.json, and its only
  checkpoint holding the Q, a target network and the train step. With ``generator`` (a
  directory) it is a final Q on a frozen G, which is also saved alone there, as the joint
  run's report stage publishes it."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rl_cyclegan import run_dir  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.networks import generator as generator_lib  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.networks import q_network as q_network_lib  # pylint: disable=g-import-not-at-top
  q, target = (q_network_lib.GraspingQNetwork(crop_size=(32, 32), **q_network_lib.small_config())
               for _ in range(2))
  q.create_variables()
  target.create_variables()
  nets = {'q_network': q}
  if generator:
    nets['G_sim2real'] = generator_lib.UNetGenerator(filters=(4, 8), name='G_sim2real')
    nets['G_sim2real'](tf.zeros([1, 32, 32, 3]))
    tf.train.Checkpoint(G_sim2real=nets['G_sim2real']).save(os.path.join(generator, 'g'))
  run_dir.write_run_spec(root, run_dir.RunSpec(
      kind='qtopt', render_size=(32, 40), crop_size=(32, 32), action_mode='auto_descend',
      allowed_modes=None, num_objects=2, appearance='sim',
      networks=run_dir.network_specs(nets), policy_q_key='q_network',
      generator_key='G_sim2real' if generator else None,
      generator_input='frames' if generator else None,
      checkpoint_keys=tuple(sorted(nets)) + ('q_target_1', 'train_step')))
  shutil.rmtree(run_dir.checkpoint_dir(root), ignore_errors=True)
  tf.train.CheckpointManager(tf.train.Checkpoint(
      **nets, q_target_1=target, train_step=tf.Variable(step, dtype=tf.int64)),
      run_dir.checkpoint_dir(root), max_to_keep=1).save(checkpoint_number=step)
  return nets


def _checkpoint_keys(ckpt_dir):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return {n.split('/')[0] for n, _ in tf.train.list_variables(ckpt_dir)}


def test_a_final_q_on_a_lost_machine_resumes_from_its_published_interim_checkpoint(tmp_path):
  logs = []
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=logs.append,
                        results_dir=str(tmp_path / 'results'))
  final = {s.name: s for s in table.stages(['cyclegan_seed0'])}['cyclegan_seed0/final_q']
  root = final.directory
  _fake_checkpoint(os.path.join(root, 'train', 'ckpt'), 3000)
  _write_eval(os.path.join(root, 'eval', 'eval_step_2000.json'), 1, 2, 0)
  assert final.prepare() == []  # it has a checkpoint of its own: nothing adopted
  final.interim()
  interim = table.published('cyclegan_seed0', table1.interim_dir('final_q'))
  _fake_checkpoint(os.path.join(root, 'train', 'ckpt'), 4000)
  final.interim()  # the newer one replaces the older copy
  assert sorted(os.listdir(os.path.join(interim, 'train', 'ckpt'))) == [
      'checkpoint', 'ckpt-4000.data-00000-of-00001', 'ckpt-4000.index']
  with open(os.path.join(interim, table1.INTERIM_NOTE)) as f:
    note = json.load(f)
  assert note['step'] == 4000 and note['note'].startswith('PARTIAL')
  assert not final.done  # an interim copy is never a finished stage

  shutil.rmtree(tmp_path / 'work')  # the machine is lost
  fresh = {s.name: s for s in table.stages(['cyclegan_seed0'])}['cyclegan_seed0/final_q']
  full = table.final_q_steps() / table.scale.final_steps_per_s
  # the plan counts only the steps still to go from the interim copy
  assert fresh.estimate_s == pytest.approx(full * (1 - 4000 / table.final_q_steps()))
  extra = final.prepare()
  assert extra == ['--gin_bindings', 'Replay.min_replay_transitions = 8000']  # 2 per step
  with open(os.path.join(root, 'train', 'ckpt', 'ckpt-4000.index')) as f:
    assert f.read() == 'weights at 4000'
  assert os.path.isfile(os.path.join(root, 'eval', 'eval_step_2000.json'))
  assert any('published interim checkpoint' in m for m in logs)
  assert final.prepare() == []  # adopted once; later resumes use the run's own checkpoints

  generator = table.frozen_generator('cyclegan_seed0')  # published with the joint run
  nets = _trained_q_run(root, 4000, generator)  # it trains (a real checkpoint now), finishes
  _mark(final.marker)  # publishing drops the interim copy
  for seed in table1.EVAL_SEEDS:
    for what in ('real', 'sim'):
      _write_eval(os.path.join(table.row_dir('cyclegan_seed0'), 'eval', f'{what}_seed{seed}.json'),
                  1, 2, seed)
  table1.publish_row(table, 'cyclegan_seed0')
  assert not os.path.exists(interim)
  # The table says which final Q resumed on a new machine, and from which step.
  table.docs_dir = str(tmp_path / 'docs')
  summary = table1.summarize(table)
  assert summary['rows']['cyclegan_seed0']['resumed_from_interim'] == {
      'step': 4000, 'refill_transitions': 8000}
  with open(tmp_path / 'docs' / 'table1.md') as f:
    assert f.read().count('resumed on a new machine from its interim checkpoint at step 4000') == 1
  published = table.published('cyclegan_seed0', 'final_q', 'train', 'ckpt')
  assert os.path.isfile(os.path.join(published, 'ckpt-4000.index'))
  # What a reader evaluates: the Q, not its target networks (run_dir.write_policy_checkpoint),
  # and its frozen G read from the row's published G, which is committed once.
  assert 'q_network' in _checkpoint_keys(published)
  assert 'q_target_1' not in _checkpoint_keys(published)
  assert 'G_sim2real' not in _checkpoint_keys(published)
  from rl_cyclegan import run_dir  # pylint: disable=g-import-not-at-top
  spec = run_dir.read_run_spec(table.published('cyclegan_seed0', 'final_q'))
  assert spec.network_source('G_sim2real') == generator
  restored = run_dir.restore_networks(spec, ['G_sim2real', 'q_network'],
                                      os.path.join(published, 'ckpt-4000'))
  for key, net in nets.items():
    assert all((a.numpy() == b.numpy()).all()
               for a, b in zip(restored[key].variables, net.variables))


def test_a_joint_run_on_a_lost_machine_resumes_from_its_published_interim_checkpoint(tmp_path):
  """A joint run (hours here) gets interim copies too; on adoption its on-policy buffer is
  refilled with as many transitions as it had collected (0.5 per step, table1_joint.gin)."""
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  joint = {s.name: s for s in table.stages(['rl_cyclegan_seed0'])}['rl_cyclegan_seed0/joint']
  # It keeps a weights-only checkpoint beside its full one; the interim copy holds that alone
  # (40% of the size: committable).
  assert 'Checkpointing.weights_copy = True' in joint.argv
  _fake_checkpoint(os.path.join(joint.directory, 'train', 'ckpt'), 6000)
  _fake_checkpoint(os.path.join(joint.directory, 'train', 'weights'), 6000)
  joint.interim()
  interim = table.published('rl_cyclegan_seed0', table1.interim_dir('joint'))
  assert interim.endswith('joint_interim')
  assert not os.path.exists(os.path.join(interim, 'train', 'ckpt'))
  with open(os.path.join(interim, table1.INTERIM_NOTE)) as f:
    note = json.load(f)
  assert note['note'].startswith('PARTIAL: the joint run') and note['weights_only']
  assert 'optimizers then start fresh' in note['note']
  with open(os.path.join(interim, 'scalars.json')) as f:  # its losses so far (joint_criteria)
    assert json.load(f)['source'] == joint.directory
  assert not os.path.exists(table.published('rl_cyclegan_seed0', 'final_q_interim'))

  shutil.rmtree(tmp_path / 'work')  # the machine is lost
  fresh = {s.name: s for s in table.stages(['rl_cyclegan_seed0'])}['rl_cyclegan_seed0/joint']
  assert fresh.estimate_s == pytest.approx(
      (table.joint_steps() - 6000) / table.scale.joint_steps_per_s)
  assert fresh.prepare() == ['--gin_bindings', 'Replay.min_replay_transitions = 3000']
  with open(os.path.join(fresh.directory, 'train', 'weights', 'ckpt-6000.index')) as f:
    assert f.read() == 'weights at 6000'  # the trainer resumes from it (loop.restore_run)
  assert not os.path.exists(os.path.join(fresh.directory, 'train', 'ckpt'))
  # Killed before its first full checkpoint, it resumes from its own newer weights copy.
  _fake_checkpoint(os.path.join(fresh.directory, 'train', 'weights'), 6500)
  assert fresh.prepare() == []
  assert table1._latest_checkpoint(  # pylint: disable=protected-access
      os.path.join(fresh.directory, 'train', 'weights')).endswith('ckpt-6500')

  _mark(fresh.marker)  # the joint run finishes: publishing drops its interim copy
  table1.publish_row(table, 'rl_cyclegan_seed0')
  assert not os.path.exists(interim)
  with open(table.published('rl_cyclegan_seed0', 'joint', table1.ADOPTED_NOTE)) as f:
    adopted = json.load(f)
  assert adopted['step'] == 6000 and adopted['weights_only']


def test_a_full_joint_interim_copy_of_an_older_run_is_still_adopted_whole(tmp_path):
  """Copies published before joint runs kept a weights-only checkpoint hold the full one."""
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  interim = table.published('cyclegan_seed0', table1.interim_dir('joint'))
  _fake_checkpoint(os.path.join(interim, 'train', 'ckpt'), 4000)
  joint = {s.name: s for s in table.stages(['cyclegan_seed0'])}['cyclegan_seed0/joint']
  assert joint.prepare() == ['--gin_bindings', 'Replay.min_replay_transitions = 2000']
  assert table1._latest_checkpoint(  # pylint: disable=protected-access
      os.path.join(joint.directory, 'train', 'ckpt')).endswith('ckpt-4000')
  with open(os.path.join(joint.directory, table1.ADOPTED_NOTE)) as f:
    assert not json.load(f)['weights_only']


def test_the_summary_reports_appendix_a_criteria_of_each_joint_run(tmp_path):
  """A finished joint run's from its published scalars.json and evaluations, a running one's
  from its work dir (marked as training); a malformed file costs only its run's line."""
  logs = []
  table = table1.Table1(str(tmp_path / 'work'), str(tmp_path), table1.TINY, log=logs.append,
                        results_dir=str(tmp_path / 'results' / 'table1'),
                        docs_dir=str(tmp_path / 'docs'))
  def write(run, scalars=None, rate=0.3):
    os.makedirs(os.path.join(run, 'eval'))
    with open(os.path.join(run, 'eval', 'eval_00004000.json'), 'w') as f:
      json.dump({'step': 4000, 'results': {'Q_real/real': {
          'num_successes': int(50 * rate), 'num_episodes': 50, 'success_rate': rate,
          'ci95_low': 0.2, 'ci95_high': 0.4}}}, f)
    if scalars is not None:
      with open(os.path.join(run, 'scalars.json'), 'w') as f:
        f.write(scalars if isinstance(scalars, str) else json.dumps({'scalars': scalars}))
  _mark(table.published('cyclegan_seed0', 'joint', table1.DONE_FILE))
  write(table.published('cyclegan_seed0', 'joint'), {
      'train/losses/cycle': [[s, 1.0 if s < 2000 else 0.2] for s in range(100, 4001, 100)],
      'train/scene/generator/mae': [[4000, 21.5]], 'train/scene/identity/mae': [[4000, 72.5]],
      'train/gradients/G/gan_generator': [[4000, 0.0716]], 'train/gradients/G/cycle': [[4000, 0.5]],
      'train/gradients/G/all': [[4000, 0.52]]})
  running = os.path.join(table.row_dir('rl_cyclegan_seed0'), 'joint')
  write(running, {'train/losses/rl_scene': [[1000, 0.05], [4500, 0.03]],
                  'train/scene/rl_scene_pull/own': [[4000, 0.0135]],
                  'train/scene/rl_scene_pull/identity': [[4000, 0.0188]]}, rate=0.44)
  _mark(table.published('gan', 'joint', table1.DONE_FILE))
  write(table.published('gan', 'joint'), scalars='not json')
  summary = table1.summarize(table)
  criteria = summary['joint_criteria']
  assert set(criteria) == {'cyclegan_seed0', 'rl_cyclegan_seed0'}
  assert criteria['cyclegan_seed0']['cycle'] == {'first': 1.0, 'last': pytest.approx(0.2)}
  assert criteria['cyclegan_seed0']['run_dir'] == 'results/table1/cyclegan_seed0/joint'
  assert criteria['rl_cyclegan_seed0']['label'] == 'RL-CycleGAN s0 (training)'
  assert any('GAN' in m and 'left out' in m and 'scalars.json' in m for m in logs)
  markdown = (tmp_path / 'docs' / 'table1.md').read_text()
  assert "## Appendix A's convergence criteria" in markdown
  assert ('| CycleGAN s0 | 4000 | 21.5 (72.5) | - | 1.000 -> 0.200 | - | - | - | - | '
          '30% (15/50) | - | GAN 0.0716, cycle 0.5, sum 0.52 |') in markdown
  # Its losses are newer than its last evaluation: the evaluation's step is named.
  assert '| RL-CycleGAN s0 (training) | 4500 | - |' in markdown
  assert '| 0.0500 -> 0.0300; paired: 0.0135 (identity 0.0188) |' in markdown
  assert '| 44% (22/50) at 4000 |' in markdown


def test_interim_refill_rates_match_the_training_gins():
  for what, gin_file in (('final_q', 'gin/qtopt_sim_only.gin'), ('joint', 'gin/table1_joint.gin')):
    with open(gin_file) as f:
      values = re.findall(r'^Exploration\.collect_steps_per_train_step\s*=\s*([0-9.]+)',
                          f.read(), re.M)
    assert [float(v) for v in values] == [table1.ENV_STEPS_PER_TRAIN_STEP[what]], gin_file


def test_run_stage_passes_prepares_arguments_and_publishes_interim_copies(tmp_path, monkeypatch):
  monkeypatch.setattr(table1, 'INTERIM_INTERVAL_S', 0.0)
  calls = []
  st = _stage(tmp_path, 'train', "import sys; print('step'); print(sys.argv[1:])")
  st.prepare = lambda: ['--flag=1']
  st.interim = lambda: calls.append(1)
  table1.run_stage(st, str(tmp_path), lambda m: None)
  with open(os.path.join(st.directory, 'table1_stage.log')) as f:
    assert "['--flag=1']" in f.read()
  with open(st.marker) as f:
    assert json.load(f)['argv'][-1] == '--flag=1'
  assert len(calls) == 2  # once per output line here


def _progress_line(step, rate):
  return (f'[train_qtopt 04:22:57] step {step}/32000 loss 0.6852 Q 0.467 target 0.404 std 0.124 '
          f'| {rate:.2f} steps/s (train 2.5/s, env 5.0 steps/s), env steps 22800 | ETA 2h19m\n')


def test_training_stages_are_estimated_at_the_rate_measured_in_the_work_dir(tmp_path):
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(),
                        results_dir=str(tmp_path / 'results'))
  by_name = lambda: {s.name: s for s in table.stages(['cyclegan_seed0', 'real_oracle'])}
  nominal = by_name()['cyclegan_seed0/final_q']
  assert nominal.estimate_s == pytest.approx(
      table.final_q_steps() / table.scale.final_steps_per_s) and not nominal.estimate_note
  # The oracle's final Q has run here at 2 steps/s: 2,000 steps in 1,000 s, in intervals of
  # 200 steps at 1.5 and 3 steps/s (not their median, 3, nor their mean, 2.25), and one
  # interval spanned a SIGSTOP pause, which does not count.
  root = os.path.join(table.row_dir('real_oracle'), 'final_q')
  _fake_checkpoint(os.path.join(root, 'train', 'ckpt'), 12000)
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, 'table1_stage.log'), 'w') as f:
    f.write(''.join(_progress_line(10000 + 200 * i, r)
                    for i, r in enumerate([1.5, 3.0, 0.05] + [3.0, 1.5] * 4)))
    f.write('evaluate (real, test): 50/50 episodes, 30.0% success,  2.03 episodes/s\n')
  stages = by_name()
  oracle = stages['real_oracle/final_q']
  assert oracle.estimate_s == pytest.approx(20000 / 2.0)  # its own steps to go, its own rate
  assert 'at 2.00 steps/s, measured in this work dir' in table.plan(list(stages.values()))
  # Another final Q that has not run here takes the same machine's rate, for all its steps.
  assert stages['cyclegan_seed0/final_q'].estimate_s == pytest.approx(32000 / 2.0)
  # A table that borrows this one's data dir (a Q-network variant) takes its rates too.
  variant = table1.Table1(str(tmp_path / 'variant'), os.getcwd(), q_normalization='layer',
                          results_dir=str(tmp_path / 'results_variant'),
                          data_dir=os.path.join(table.work_dir, 'data'))
  borrowed = {s.name: s for s in variant.stages(['real_oracle'])}['real_oracle/final_q']
  assert borrowed.estimate_s == pytest.approx(32000 / 2.0)
  assert borrowed.estimate_note == f'at 2.00 steps/s, measured in {table.work_dir}'
  # A joint run has no measured rate yet: nominal.
  assert stages['cyclegan_seed0/joint'].estimate_s == pytest.approx(
      table.joint_steps() / table.scale.joint_steps_per_s)
  # Nor does one from a run that just started (fewer than MIN_RATE_LINES progress lines): it
  # is no run's pace. One with that many lines gives its rate to the others.
  started = os.path.join(table.row_dir('gan'), 'joint')
  os.makedirs(started)
  for lines, expected in ((table1.MIN_RATE_LINES - 1, None), (table1.MIN_RATE_LINES, 4.0)):
    with open(os.path.join(started, 'table1_stage.log'), 'w') as f:
      f.write(''.join(_progress_line(200 * (i + 1), 4.0) for i in range(lines)))
    joint = by_name()['cyclegan_seed0/joint']
    assert joint.estimate_s == pytest.approx(
        table.joint_steps() / (expected or table.scale.joint_steps_per_s)), lines


def test_the_grasp_distance_tables_are_pooled_over_seeds_and_shown(tmp_path):
  table = table1.Table1(str(tmp_path / 'work'), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  for row in ('rl_cyclegan_seed0', 'rl_cyclegan_seed1'):
    for seed in table1.EVAL_SEEDS:
      # real: 10 grasps per seed, 4 successes: 3 of 4 within 2 cm, 1 of 6 beyond 7 cm
      _write_eval(table.published(row, 'eval', f'real_seed{seed}.json'), 4, 10, seed,
                  ((3, 0, 0, 1), (1, 0, 0, 5)))
      _write_eval(table.published(row, 'eval', f'sim_seed{seed}.json'), 5, 10, seed)
  rows = table1.summarize(table)['rows']
  assert rows['rl_cyclegan_seed1']['real']['grasp_distance']['successes'] == [9, 0, 0, 3]
  pooled = rows['rl_cyclegan']['real']['grasp_distance']
  assert pooled['successes'] == [18, 0, 0, 6] and pooled['failures'] == [6, 0, 0, 30]
  assert 'grasp_distance' not in rows['rl_cyclegan']['sim']  # none measured, none made up
  markdown = (tmp_path / 'docs' / 'table1.md').read_text()
  assert '| row | world | 0-2 cm | 2-4 cm | 4-7 cm | > 7 cm | within 4 cm |' in markdown
  assert '| RL-CycleGAN (pooled) | real | 18/24 | 0/0 | 0/0 | 6/36 | 40% |' in markdown
  assert '| RL-CycleGAN (seed 1) | real | 9/12 | 0/0 | 0/0 | 3/18 | 40% |' in markdown


def test_scene_outcomes_are_pooled_in_order_and_compared_pair_by_pair(tmp_path):
  """Evaluations with per-scene outcomes: pooled in seed order (eval seeds, then training
  seeds), so that RL-CycleGAN and CycleGAN pair scene by scene in the goal section."""
  table = table1.Table1(str(tmp_path / 'work'), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  n = 10
  for row in ('rl_cyclegan_seed0', 'rl_cyclegan_seed1', 'cyclegan_seed0', 'cyclegan_seed1'):
    for seed in table1.EVAL_SEEDS:
      training_seed = int(row[-1])
      if row.startswith('rl'):  # grasps scenes 0-5; CycleGAN scenes 4-7 (+ 8 on seed 1)
        outcomes = [1] * 6 + [0] * 4
      else:
        outcomes = [0] * 4 + [1] * 4 + [training_seed, 0]
      _write_eval(table.published(row, 'eval', f'real_seed{seed}.json'), sum(outcomes), n,
                  seed, outcomes=outcomes)
      _write_eval(table.published(row, 'eval', f'sim_seed{seed}.json'), 5, n, seed)
  summary = table1.summarize(table)
  rows = summary['rows']
  assert rows['cyclegan_seed1']['real']['outcomes'] == ([0] * 4 + [1] * 5 + [0]) * 3
  assert rows['cyclegan']['real']['outcomes'] == (
      ([0] * 4 + [1] * 4 + [0] * 2) * 3 + ([0] * 4 + [1] * 5 + [0]) * 3)
  assert 'outcomes' not in rows['cyclegan']['sim']  # none measured, none made up
  # Pooled: 60 scenes; only RL-CycleGAN: scenes 0-3 (4 per evaluation, 24); only CycleGAN:
  # scene 6-7 (2 each, 12) and scene 8 on training seed 1 (3).
  paired = policy_eval.mcnemar_exact(rows['rl_cyclegan']['real']['outcomes'],
                                     rows['cyclegan']['real']['outcomes'])
  assert (paired['only_a'], paired['only_b']) == (24, 15)
  text = '\n'.join(table1.goal_markdown(summary))
  assert (f'Paired over the same 60 scenes (the evaluation seeds fix them): only RL-CycleGAN '
          f"grasped in 24, only CycleGAN in 15; exact McNemar p = {paired['p_value']:.3g}."
          in text)
  del rows['cyclegan']['real']['outcomes']  # evaluations from before outcomes were recorded
  assert 'McNemar' not in '\n'.join(table1.goal_markdown(summary))


def test_the_transfer_section_pairs_each_final_q_in_sim_and_real(tmp_path):
  """A final Q on the same scenes in sim (through G) and in real: the difference and McNemar,
  only for rows whose evaluations recorded outcomes in both worlds."""
  table = table1.Table1(str(tmp_path / 'work'), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  sim_outcomes, real_outcomes = [1] * 7 + [0] * 3, [1] * 3 + [0] * 5 + [1] * 2  # per eval seed
  for seed in table1.EVAL_SEEDS:
    _write_eval(table.published('rl_cyclegan_seed0', 'eval', f'real_seed{seed}.json'), 5, 10,
                seed, outcomes=real_outcomes)
    _write_eval(table.published('rl_cyclegan_seed0', 'eval', f'sim_seed{seed}.json'), 7, 10,
                seed, outcomes=sim_outcomes)
    _write_eval(table.published('cyclegan_seed0', 'eval', f'real_seed{seed}.json'), 5, 10,
                seed, outcomes=real_outcomes)
    _write_eval(table.published('cyclegan_seed0', 'eval', f'sim_seed{seed}.json'), 7, 10, seed)
  table1.summarize(table)
  markdown = (tmp_path / 'docs' / 'table1.md').read_text()
  section = markdown.split('## Does the final Q transfer?')[1].split('\n## ')[0]
  # Grasped only in sim: scenes 3-6 (4 per evaluation seed, 12); only in real: 8-9 (6).
  p = policy_eval.mcnemar_exact(real_outcomes * 3, sim_outcomes * 3)['p_value']
  assert (f'| RL-CycleGAN (seed 0 only) | 70.0% (21/30; 52-83%) | 50.0% (15/30; 33-67%) | '
          f'-20.0 | 12 | 6 | {p:.3g} |') in section
  assert 'CycleGAN (seed 0 only)' not in section.replace('RL-CycleGAN', '')  # no sim outcomes


def test_the_swap_test_runs_once_the_partner_g_is_published_and_is_shown(tmp_path):
  """Each headline row's final Q in sim through the other row's G of the same training seed:
  a stage only once that G is published; the section pairs it with the own-G and real columns."""
  table = table1.Table1(str(tmp_path / 'work'), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))

  def swaps(row):
    return {s.name: s for s in table.row_stages(row) if '/eval/swap_sim_' in s.name}

  assert not swaps('rl_cyclegan_seed1') and table.swap_generator('gan') is None
  partner = table.published('cyclegan_seed1', 'generator')
  os.makedirs(partner)
  with open(os.path.join(partner, 'checkpoint'), 'w') as f:
    f.write('model_checkpoint_path: "g-2"\n')
  stages = swaps('rl_cyclegan_seed1')
  assert sorted(stages) == [f'rl_cyclegan_seed1/eval/swap_sim_seed{k}' for k in table1.EVAL_SEEDS]
  argv = stages['rl_cyclegan_seed1/eval/swap_sim_seed0'].argv
  assert f'--generator_checkpoint={partner}' in argv and '--generator_key=G_sim2real' in argv
  assert '--appearance=sim' in argv and '--seed=0' in argv
  assert not swaps('rl_cyclegan_seed0') and not swaps('cyclegan_seed1')  # other seeds' G only

  own, other, real = [1] * 8 + [0] * 2, [1] * 5 + [0] * 5, [1] * 4 + [0] * 5 + [1]
  for seed in table1.EVAL_SEEDS:
    for what, outcomes in (('sim', own), ('swap_sim', other), ('real', real)):
      _write_eval(table.published('rl_cyclegan_seed1', 'eval', f'{what}_seed{seed}.json'),
                  sum(outcomes), 10, seed, outcomes=outcomes)
  rows = table1.summarize(table)['rows']
  assert rows['rl_cyclegan_seed1']['swap_sim']['successes'] == 15
  section = (tmp_path / 'docs' / 'table1.md').read_text().split('## The swap test')[1]
  p_own = policy_eval.mcnemar_exact(other * 3, own * 3)['p_value']
  p_real = policy_eval.mcnemar_exact(other * 3, real * 3)['p_value']
  assert (f"| RL-CycleGAN (seed 1 only) | 80.0% (24/30; 63-90%) | CycleGAN's: 50.0% (15/30; "
          f"33-67%) | "
          f"50.0% (15/30; 33-67%) | {p_own:.3g} | {p_real:.3g} |") in section


def test_composite_worlds_are_measured_for_final_qs_on_a_frozen_g_and_shown(tmp_path):
  """Each final Q trained on G(sim) is also measured in `real` with the background, or the
  objects and robot, from its own G(sim) (and the paired real render as the control); the
  section pairs each with the control on the same scenes."""
  table = table1.Table1(str(tmp_path / 'work'), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))

  def composites(row):
    return {s.name: s for s in table.row_stages(row) if '/eval/composite_' in s.name}

  assert not composites('sim_only') and not composites('real_oracle')  # no G to take from
  stages = composites('rl_cyclegan_fq_seed1')  # a second final Q on a published G has them too
  assert sorted(stages) == sorted(f'rl_cyclegan_fq_seed1/eval/{what}_seed{k}'
                                  for what in table1.COMPOSITE_WORLDS for k in table1.EVAL_SEEDS)
  stages = composites('rl_cyclegan_seed0')
  argv = stages['rl_cyclegan_seed0/eval/composite_background_seed2'].argv
  assert '--appearance=real' in argv and '--generator_key=G_sim2real' in argv
  assert '--translated_regions=background' in argv and '--seed=2' in argv
  assert f'--region_dilation={table1.COMPOSITE_DILATION}' in argv
  assert ('--translated_regions=none' in
          stages['rl_cyclegan_seed0/eval/composite_none_seed0'].argv)
  assert ('--translated_regions=objects,robot' in
          stages['rl_cyclegan_seed0/eval/composite_objects_robot_seed0'].argv)

  control, background, foreground = [1] * 4 + [0] * 6, [1] * 5 + [0] * 5, [1] * 8 + [0] * 2
  for seed in table1.EVAL_SEEDS:
    for what, outcomes in (('real', control), ('sim', foreground), ('composite_none', control),
                           ('composite_background', background),
                           ('composite_objects_robot', foreground)):
      _write_eval(table.published('rl_cyclegan_seed0', 'eval', f'{what}_seed{seed}.json'),
                  sum(outcomes), 10, seed, outcomes=outcomes)
  rows = table1.summarize(table)['rows']
  assert rows['rl_cyclegan_seed0']['composite_objects_robot']['successes'] == 24
  section = (tmp_path / 'docs' / 'table1.md').read_text().split(
      "## Composite worlds: which of G's regions each final Q needs")[1].split('\n## ')[0]
  # Paired on the same 30 scenes (Agresti's matched-pairs interval, by hand): the background
  # from G wins 1 scene of 10 per seed that the control misses (3 of 30, none the other way):
  # d = 0.1, se = sqrt(3 - 9/30) / 30 = 0.0548, 95% half-width 0.107 -> -0.7 to +20.7 points.
  # The objects and robot from G win 4 of 10 per seed (12 of 30): d = 0.4,
  # se = sqrt(12 - 144/30) / 30 = 0.0894, half-width 0.175 -> +22.5 to +57.5.
  assert ('| RL-CycleGAN (seed 0 only) | 40.0% (12/30; 25-58%) | 40.0% (12/30; 25-58%) | '
          '50.0% (15/30; 33-67%) | 80.0% (24/30; 63-90%) | 80.0% (24/30; 63-90%) | '
          '+10.0 (-0.7 to +20.7) | +40.0 (+22.5 to +57.5) |') in section, section
  assert 'on average over the' not in section  # one side has no final Q yet

  # The pooled line: final Qs trained with L_RL-scene on (RL-CycleGAN s0, its second final Q on
  # G s1) against the others (CycleGAN s0, GAN); RL-CycleGAN s1's collapsed tower left out.
  worlds = {  # row: (background, objects and robot), the control as above
      'rl_cyclegan_fq_seed1': (control, [1] * 6 + [0] * 4),  # +0, +20 points
      'cyclegan_seed0': (control, [1] * 5 + [0] * 5),  # +0, +10
      'gan': ([1] * 3 + [0] * 7, control),  # -10, +0
      'rl_cyclegan_seed1': (control, [1] * 9 + [0])}  # +50, but blind: left out
  for row, (back, fore) in worlds.items():
    for seed in table1.EVAL_SEEDS:
      for what, outcomes in (('composite_none', control), ('composite_background', back),
                             ('composite_objects_robot', fore), ('sim', fore)):
        _write_eval(table.published(row, 'eval', f'{what}_seed{seed}.json'),
                    sum(outcomes), 10, seed, outcomes=outcomes)
      _write_eval(table.published(row, 'eval', f'real_seed{seed}.json'), 4, 10, seed,
                  outcomes=control, spread=0.001 if row == 'rl_cyclegan_seed1' else 0.1)
  table1.summarize(table)
  section = (tmp_path / 'docs' / 'table1.md').read_text().split(
      "## Composite worlds: which of G's regions each final Q needs")[1].split('\n## ')[0]
  fore = rs.welch([40.0, 20.0], [10.0, 0.0])
  back = rs.welch([10.0, 0.0], [0.0, -10.0])
  assert (f"- The objects and robot from G, against the control: +30.0 points on average over "
          f"the 2 live final Qs trained with L_RL-scene on, +5.0 over the other 2: +25.0 "
          f"({fore['ci'][0]:+.1f} to {fore['ci'][1]:+.1f}; Welch over final Qs, "
          f"p = {fore['p_value']:.3g}; final Qs on one G are not independent).") in section
  assert (f"- The background from G, against the control: +5.0 points on average over the 2 "
          f"live final Qs trained with L_RL-scene on, -5.0 over the other 2: +10.0 "
          f"({back['ci'][0]:+.1f} to {back['ci'][1]:+.1f}; ") in section


def test_the_goal_section_says_where_the_table_stands(tmp_path):
  """Issue 18's goal: RL-CycleGAN above CycleGAN with non-overlapping pooled intervals, within
  10 points of the oracle; said plainly, with the difference and z, and what is still missing."""
  def measured(k, n=300, seeds=None):
    low, high = policy_eval.wilson_interval(k, n)
    out = {'real': {'successes': k, 'episodes': n, 'success_rate': k / n, 'ci95': [low, high]}}
    return dict(out, seeds=seeds) if seeds else out

  text = '\n'.join(table1.goal_markdown({'rows': {}}))
  assert 'Not measured yet' in text
  # Session 26's joint Q_real figures, as if they were final Qs: against the goal.
  rows = {'rl_cyclegan': measured(113, seeds=[0]), 'cyclegan': measured(136, seeds=[0])}
  text = '\n'.join(table1.goal_markdown({'rows': rows}))
  assert '-7.7 points, two-proportion z = -1.91; the intervals overlap.' in text
  assert '**not met**' in text and 'two training seeds' in text
  assert 'oracle row is not measured' in text
  rows = {'rl_cyclegan': measured(310, n=600, seeds=[0, 1]),
          'cyclegan': measured(220, n=600, seeds=[0, 1]), 'real_oracle': measured(160)}
  text = '\n'.join(table1.goal_markdown({'rows': rows}))
  assert 'pooled over 2 seeds' in text
  assert 'the intervals do not overlap, RL-CycleGAN above.' in text
  assert 'RL-CycleGAN is 1.7 points below it (within 10).' in text
  assert '- Goal: **met**.' in text
  rows['real_oracle'] = measured(200)  # 66.7%: 15.0 points above RL-CycleGAN
  text = '\n'.join(table1.goal_markdown({'rows': rows}))
  assert '15.0 points below it (more than 10).' in text and '**not met**' in text
  swapped = dict(rows, rl_cyclegan=rows['cyclegan'], cyclegan=rows['rl_cyclegan'])
  text = '\n'.join(table1.goal_markdown({'rows': swapped}))  # session 32's case: CycleGAN above
  assert 'the intervals do not overlap, CycleGAN above.' in text and '**not met**' in text
  rows['real_oracle'] = measured(100)  # 33.3%: below RL-CycleGAN (the 1.0 world's case)
  text = '\n'.join(table1.goal_markdown({'rows': rows}))
  assert 'RL-CycleGAN is 18.3 points above it (within 10).' in text
  # The oracle read as a perfect G: CycleGAN (220/600, 36.7%) against it (100/300, 33.3%).
  z = policy_eval.two_proportion_z(220, 600, 100, 300)
  assert ('what a perfect G would give. CycleGAN (pooled over 2 seeds) 36.7% (220/600; '
          f'33-41%) against the oracle (one final Q) 33.3% (100/300; 28-39%): +3.3 points, '
          f'two-proportion z = {z:.2f} (not paired: the two sides have different numbers of '
          'final Qs;') in text


def test_the_goal_section_sets_a_lever_with_seeds_of_its_own_beside_cyclegan():
  """Session 34: the lambda_RL-scene 1 lever against CycleGAN over the lever's training seeds,
  paired by scene, with whether the intervals overlap; beside the goal, which it does not
  decide."""
  def measured(wins, seeds):  # per seed, 100 scenes; the first `k` of each grasped
    outcomes = [x for k in wins for x in [1] * k + [0] * (100 - k)]
    k, n = sum(outcomes), len(outcomes)
    low, high = policy_eval.wilson_interval(k, n)
    return {'real': {'successes': k, 'episodes': n, 'success_rate': k / n, 'ci95': [low, high],
                     'outcomes': outcomes}, 'seeds': seeds}

  rows = {'rl_cyclegan': measured([40, 30], [0, 1]), 'cyclegan': measured([55, 60], [0, 1]),
          'cyclegan_seed0': measured([55], [0]), 'cyclegan_seed1': measured([60], [0]),
          'rl_cyclegan_rlscene1': measured([62], [0])}
  for key in ('cyclegan_seed0', 'cyclegan_seed1'):
    rows[key].pop('seeds')
  lines = [x for x in table1.goal_markdown({'rows': rows}) if 'lambda_RL-scene 1' in x]
  assert lines == [
      "- RL-CycleGAN, lever: lambda_RL-scene 1 (seed 0 only; a variant, not the goal's row) "
      "62.0% (62/100; 52-71%) against CycleGAN (seed 0 only) 55.0% (55/100; 45-64%): +7.0 "
      "points, two-proportion z = 1.00; paired over the same 100 scenes: only RL-CycleGAN "
      "grasped in 7, only CycleGAN in 0, exact McNemar p = 0.0156; the intervals overlap."]
  rows['rl_cyclegan_rlscene1'] = measured([90, 95], [0, 1])  # both seeds: CycleGAN's pooled
  text = '\n'.join(table1.goal_markdown({'rows': rows}))
  assert ('lambda_RL-scene 1 (pooled over 2 seeds; a variant, not the goal\'s row) 92.5% '
          '(185/200;') in text
  assert 'against CycleGAN (pooled over 2 seeds) 57.5% (115/200;' in text
  assert 'only RL-CycleGAN grasped in 70, only CycleGAN in 0' in text
  assert 'the intervals do not overlap, RL-CycleGAN above.' in text.split('lambda_RL')[-1]
  assert '**not met**' in text  # the goal's row is RL-CycleGAN's
  del rows['cyclegan_seed1']  # CycleGAN's seed 1 not measured: no lever line
  assert 'lambda_RL-scene 1' not in '\n'.join(table1.goal_markdown({'rows': rows}))


def test_each_final_q_is_paired_in_real_with_no_g_cyclegan_and_the_row_it_varies():
  oracle = 'real_oracle'  # every G's final Q: against a perfect G
  assert table1.paired_references('cyclegan_seed1') == ['sim_only', oracle]
  assert table1.paired_references('rl_cyclegan_seed1') == ['sim_only', 'cyclegan_seed1', oracle]
  assert table1.paired_references('graspgan') == ['sim_only', 'cyclegan_seed0', oracle]
  assert table1.paired_references('rl_cyclegan_rlscene1_seed1') == [
      'sim_only', 'cyclegan_seed1', 'rl_cyclegan_seed1', oracle]
  assert table1.paired_references('cyclegan_fq_seed0') == [
      'sim_only', 'cyclegan_seed0', oracle]  # its first final Q on the same G is CycleGAN s0
  assert table1.paired_references('rl_cyclegan_fq_seed1') == [
      'sim_only', 'cyclegan_seed1', 'rl_cyclegan_seed1', oracle]
  assert table1.paired_references('randomized_sim') == ['sim_only', 'cyclegan_seed0']  # no G
  for key in ('sim_only', 'random', 'real_oracle', 'cyclegan', 'rl_cyclegan_rlscene1'):
    assert table1.paired_references(key) == [], key  # no reference, or a pooled row

  def real(outcomes):
    k, n = sum(outcomes), len(outcomes)
    return {'real': {'successes': k, 'episodes': n, 'success_rate': k / n,
                     'ci95': list(policy_eval.wilson_interval(k, n)), 'outcomes': outcomes}}

  rows = {'sim_only': real([0, 0, 1, 0, 1, 0]), 'cyclegan_seed0': real([1, 1, 1, 0, 0, 0]),
          'rl_cyclegan_seed0': real([1, 1, 1, 1, 1, 0]),
          'rl_cyclegan_seed1': real([1, 0, 0])}  # other scenes: not paired
  text = '\n'.join(table1.paired_markdown({'rows': rows}, list(rows)))
  assert ('| RL-CycleGAN (seed 0) | 83.3% (5/6; 44-97%) | Sim-Only | 33.3% (2/6; 10-70%) | +50.0 '
          '| 3 | 0 | 0.25 |') in text
  assert '| RL-CycleGAN (seed 0) | 83.3% (5/6; 44-97%) | CycleGAN (seed 0) |' in text
  assert '| CycleGAN (seed 0) | 50.0% (3/6; 19-81%) | Sim-Only |' in text
  assert 'seed 1' not in text and text.count('\n| ') == 4  # header, rule and 3 pairs
  assert table1.paired_markdown({'rows': {'sim_only': rows['sim_only']}}, ['sim_only']) == []


def test_the_gs_properties_are_ranked_against_their_final_qs_success(tmp_path):
  """Each frozen G's figures before any final Q against its live final Qs' success in real
  (the row's and its second final Q's, pooled; a collapsed one left out), with Spearman's
  rho, and the oracle-Q distance plotted."""
  def real(k, spread=0.1):
    low, high = policy_eval.wilson_interval(k, 100)
    return {'successes': k, 'episodes': 100, 'success_rate': k / 100, 'ci95': [low, high],
            'outcomes': [1] * k + [0] * (100 - k), 'embedding_spread': spread}

  def generator(distance, preservation, contrast=None):
    frame = {'generator/object_preservation': preservation}
    if contrast is not None:
      frame['generator/object_contrast_excess'] = contrast
    return {'oracle_q': {'generator': {'action_xy_distance': distance}},
            'generator_report': {'frame': frame}}

  rows = {'cyclegan_seed0': {'real': real(60)}, 'cyclegan_fq_seed0': {'real': real(50)},
          'rl_cyclegan_seed0': {'real': real(40)},
          'rl_cyclegan_seed1': {'real': real(90, spread=0.0001)},  # collapsed: left out
          'rl_cyclegan_fq_seed1': {'real': real(30)}, 'graspgan': {'real': real(20)}}
  generators = {'cyclegan_seed0': generator(0.60, 0.5, 1.0),
                'rl_cyclegan_seed0': generator(0.65, 0.9, 12.0),
                'rl_cyclegan_seed1': generator(0.70, 0.7, 8.0),
                'graspgan': generator(0.75, 0.6, -2.0),
                'gan': generator(0.80, 0.4)}  # no final Q yet
  summary = {'rows': rows, 'generators': generators}
  gens = {key: (real['successes'], live, total)
          for key, _, real, live, total in table1.generator_success(summary)}
  assert gens == {'cyclegan_seed0': (110, 2, 2), 'rl_cyclegan_seed0': (40, 1, 1),
                  'rl_cyclegan_seed1': (30, 1, 2), 'graspgan': (20, 1, 1)}
  text = '\n'.join(table1.predictor_markdown(summary))
  assert ('| CycleGAN (seed 0) | 2 of 2 | 55.0% (110/200; 48-62%) | - | 0.600 | 0.500 | - | - '
          '| 1.0 | - |') in text
  # Object contrast over real ranks them 2 / 4 / 3 / 1 where success does 4 / 3 / 2 / 1.
  assert ('- object contrast over real: with success in real, Spearman rho = +0.40 over 4 Gs'
          in text)  # 1 - 6 * 6 / 60
  # Distances rank the 4 Gs exactly as their success does (in reverse): rho -1, p = 2 / 24.
  assert ('- oracle-Q greedy-move distance: with success in real, Spearman rho = -1.00 over 4 '
          'Gs, exact permutation p = 0.0833.') in text
  assert ('- object preservation: with success in real, Spearman rho = -0.20 over 4 Gs'
          in text)  # 1 - 6 * 12 / 60
  assert 'MAE objects: with' not in text  # not measured: no line
  # With sim figures: each G's real - sim over its live final Qs, ranked too.
  sims = {'cyclegan_seed0': 50, 'cyclegan_fq_seed0': 30, 'rl_cyclegan_seed0': 55,
          'rl_cyclegan_seed1': 90, 'rl_cyclegan_fq_seed1': 60, 'graspgan': 30}
  for key, k in sims.items():
    rows[key]['sim'] = real(k)
  assert table1.generator_transfer(summary) == pytest.approx(
      {'cyclegan_seed0': 0.15, 'rl_cyclegan_seed0': -0.15, 'rl_cyclegan_seed1': -0.30,
       'graspgan': -0.10})  # rl_cyclegan_seed1's collapsed first final Q left out
  text = '\n'.join(table1.predictor_markdown(summary))
  assert '| RL-CycleGAN (seed 1) | 1 of 2 | 30.0% (30/100; 22-40%) | -30.0 | 0.700 |' in text
  # Distances 0.60 / 0.65 / 0.70 / 0.75 against real - sim +15 / -15 / -30 / -10: rho -0.4.
  assert ('with real - sim, rho = -0.40 over 4 Gs, exact permutation p = '
          in text.split('- oracle-Q greedy-move distance:')[1].split('\n')[0])
  figure = table1.render_predictors(summary, str(tmp_path / 'predictors.png'))
  assert figure and os.path.getsize(figure) > 1000
  del generators['graspgan'], generators['rl_cyclegan_seed1']  # 2 Gs: nothing to rank
  assert table1.predictor_markdown(summary) == []
  assert table1.render_predictors(summary, str(tmp_path / 'none.png')) is None
  assert not (tmp_path / 'none.png').exists()


def test_the_table_marks_a_final_q_whose_image_tower_collapsed(tmp_path):
  """Session 32: RL-CycleGAN seed 1's final Q gave every frame the same features (embedding
  spread 0.0000) and scored at the random floor; the table says so beside the figure, per run,
  and for a pooled row how many of its runs."""
  table = table1.Table1(str(tmp_path / 'work'), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  spreads = {'rl_cyclegan_seed0': (0.11, 0.10, 0.12), 'rl_cyclegan_seed1': (0.0, 0.0001, 0.0),
             'cyclegan_seed0': (0.12, 0.12, 0.12)}
  for row, by_seed in spreads.items():
    for seed, spread in zip(table1.EVAL_SEEDS, by_seed):
      _write_eval(table.published(row, 'eval', f'real_seed{seed}.json'), 30, 100, seed,
                  spread=spread)
      _write_eval(table.published(row, 'eval', f'sim_seed{seed}.json'), 30, 100, seed)
  summary = table1.summarize(table)
  rows = summary['rows']
  assert rows['rl_cyclegan_seed0']['real']['embedding_spread'] == pytest.approx(0.11)
  assert rows['rl_cyclegan']['seed_spreads'] == pytest.approx([0.11, 0.0001 / 3])
  assert 'embedding_spread' not in rows['rl_cyclegan']['real']  # no mean of two runs' towers
  markdown = (tmp_path / 'docs' / 'table1.md').read_text()
  assert '| RL-CycleGAN (seed 1) | 30.0% (90/300; 25-35%) | 30.0% (90/300; 25-35%) | - | - | ' \
         '0.0000 **collapsed** | 70% |' in markdown
  assert '| 0.1100 | 70% |' in markdown and '| 1 of 2 collapsed | 70% |' in markdown
  assert '| CycleGAN (seed 0 only) | 30.0% (90/300; 25-35%) |' in markdown
  assert '| - | 0.1200 | 61% |' in markdown  # one seed so far: its own run's spread


def test_the_goal_section_compares_the_joint_runs_own_q_real_pooled_over_seeds():
  """The joint runs' Q_real in `real` (the frozen Gs' figures, there before any final Q): pooled
  over the seeds measured, paired by McNemar only when every evaluation has per-scene outcomes
  of the same seeds."""
  def joint(outcomes=None, k=None, n=None):
    k = sum(outcomes) if outcomes is not None else k
    n = len(outcomes) if outcomes is not None else n
    low, high = policy_eval.wilson_interval(k, n)
    r = {'successes': k, 'episodes': n, 'success_rate': k / n, 'ci95': [low, high]}
    return {'joint_q_real_real': dict(r, outcomes=outcomes) if outcomes is not None else r}

  rl, cg = [1] * 6 + [0] * 4, [0] * 4 + [1] * 4 + [0] * 2
  generators = {'rl_cyclegan_seed0': joint(rl), 'cyclegan_seed0': joint(cg)}
  text = '\n'.join(table1.goal_markdown({'rows': {}, 'generators': generators}))
  assert 'Not measured yet' in text  # no final Qs: the joint line still says what there is
  paired = policy_eval.mcnemar_exact(rl, cg)
  assert ("- The joint runs' own Q_real in `real`: RL-CycleGAN (seed 0 only) 60.0% (6/10; "
          in text)
  assert (f"+20.0 points, two-proportion z = "
          f"{policy_eval.two_proportion_z(6, 10, 4, 10):.2f}; paired over the same 10 scenes: "
          f"only RL-CycleGAN grasped in 4, only CycleGAN in 2, exact McNemar p = "
          f"{paired['p_value']:.3g}." in text)
  generators['rl_cyclegan_seed1'] = joint(k=3, n=10)  # no outcomes recorded: pooled, unpaired
  text = '\n'.join(table1.goal_markdown({'rows': {}, 'generators': generators}))
  assert 'RL-CycleGAN (pooled over 2 seeds) 45.0% (9/20; ' in text
  assert 'CycleGAN (seed 0 only) 40.0% (4/10; ' in text and 'McNemar' not in text
  generators['cyclegan_seed1'] = joint(k=5, n=10)
  text = '\n'.join(table1.goal_markdown({'rows': {}, 'generators': generators}))
  assert '+0.0 points' in text and 'not paired: an evaluation from before' in text
  del generators['cyclegan_seed0'], generators['cyclegan_seed1']
  assert 'joint runs' not in '\n'.join(table1.goal_markdown({'rows': {}, 'generators': generators}))


def test_publishing_replaces_a_report_whole_so_a_second_runner_never_reads_part(tmp_path,
                                                                              monkeypatch):
  """Two runners of a pair publish and summarize at once (session 31: one read the other's
  half-copied oracle_q_report.json and the chain stopped): each copy is a temp file renamed."""
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=lambda m: None,
                        results_dir=str(tmp_path / 'results'))
  src = table.row_dir('cyclegan_seed0')
  os.makedirs(os.path.join(src, 'eval'))
  for path in ('oracle_q_report.json', 'generator_report.json', 'eval/real_seed0.json'):
    with open(os.path.join(src, path), 'w') as f:
      json.dump({'path': path}, f)
  replaced = []
  real_replace = os.replace
  monkeypatch.setattr(os, 'replace', lambda a, b: (replaced.append(b), real_replace(a, b)))
  table1.publish_row(table, 'cyclegan_seed0')
  for path in ('oracle_q_report.json', 'generator_report.json', 'eval/real_seed0.json'):
    dst = table.published('cyclegan_seed0', *path.split('/'))
    assert dst in replaced and json.load(open(dst)) == {'path': path}
  assert not [f for f in os.listdir(table.published('cyclegan_seed0')) if '.tmp' in f]


def test_figure_labels_wrap_to_their_column():
  """The levers' labels are wider than a tile: wrapped by whole words, never over a neighbour."""
  fits = lambda t: len(t) <= 12
  assert table1._wrap_words('RL-CycleGAN, lever: lambda_RL-scene 1', fits) == [
      'RL-CycleGAN,', 'lever:', 'lambda_RL-scene', '1']
  assert table1._wrap_words('CycleGAN s1', fits) == ['CycleGAN s1']
  assert table1._wrap_words('sim x true real', fits) == ['sim x true', 'real']
  assert table1._wrap_words('', fits) == ['']


def test_a_second_final_q_trains_on_the_rows_published_g_with_a_preset_seed(tmp_path):
  """'<row>_fq' (FINAL_Q_REPLICATES): no joint run of its own; the G of '<row>_seed<k>' as
  published (its joint run and report planned first), the final-Q recipe unchanged but for
  the seed, k + 2; sim evaluations through that G."""
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=lambda m: None,
                        results_dir=str(tmp_path / 'results'))
  assert table1.expand_rows(['rl_cyclegan_fq']) == ['rl_cyclegan_fq_seed0', 'rl_cyclegan_fq_seed1']
  names = [st.name for st in table.stages(['rl_cyclegan_fq_seed1'])]
  row = 'rl_cyclegan_fq_seed1'
  assert [n for n in names if not n.startswith('data/')] == [
      'rl_cyclegan_seed1/joint', 'rl_cyclegan_seed1/generator_report', f'{row}/translate',
      f'{row}/final_q'] + [f'{row}/eval/{what}_seed{k}' for k in table1.EVAL_SEEDS
                           for what in ('real', 'sim')] + [
      f'{row}/eval/{what}_seed{k}' for what in table1.COMPOSITE_WORLDS
      for k in table1.EVAL_SEEDS]
  stages = {st.name: st for st in table.stages([row])}
  g = table.published('rl_cyclegan_seed1', 'generator')
  final = stages[f'{row}/final_q'].argv
  assert 'train_eval.seed = 3' in final and 'train_eval.seed = 1' not in final
  assert f"train_eval.generator_checkpoint = '{g}'" in final
  assert f'--generator_checkpoint={g}' in stages[f'{row}/translate'].argv
  parent = {st.name: st for st in table.stages(['rl_cyclegan_seed1'])}
  # The same recipe as the row's own final Q, but for the seed and the run directory.
  strip = lambda argv: [a for a in argv if not a.startswith(('train_eval.seed', '--root_dir'))]  # noqa: E731
  assert strip(final) == strip(parent['rl_cyclegan_seed1/final_q'].argv)
  assert '--generator_key=G_sim2real' in stages[f'{row}/eval/sim_seed0'].argv
  assert table.stages([row], joint_only=True) == []  # nothing of it is a joint run


@pytest.mark.parametrize('row,base,log', [('real_oracle_fq', 'real_oracle', 'real_mix18'),
                                           ('randomized_sim_fq', 'randomized_sim',
                                            'randomized_mix18')])
def test_a_reference_rows_second_final_q_is_its_recipe_with_a_preset_seed(tmp_path, row, base,
                                                                           log):
  """A REFERENCE_REPLICATES row: its recipe's stages but for the seed, 0 + 2 and the run
  directory; the recipe's own scripted log is collected for it alone, once when both run; no G
  anywhere; the between-runs summary reads both final Qs as one recipe's."""
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=lambda m: None,
                        results_dir=str(tmp_path / 'results'))
  assert table1.expand_rows([row]) == [row] and row in table1.all_row_keys()
  assert table1.replicates_of(base) == [row]
  stages = table.stages([row])
  assert [st.name for st in stages] == [f'data/{log}', f'{row}/final_q'] + [
      f'{row}/eval/{what}_seed{k}' for k in table1.EVAL_SEEDS for what in ('real', 'sim')]
  final = stages[1].argv
  first = {st.name: st for st in table.stages([base])}[f'{base}/final_q'].argv
  assert 'train_eval.seed = 2' in final and 'train_eval.seed = 0' in first
  strip = lambda argv: [a for a in argv if not a.startswith(('train_eval.seed', '--root_dir'))]  # noqa: E731
  assert strip(final) == strip(first)
  assert not any('generator' in a for st in stages for a in st.argv)
  assert table1.paired_references(row) == ['sim_only', base]
  assert table.stages([row], joint_only=True) == []
  both = [st.name for st in table.stages([base, row])]
  assert both.count(f'data/{log}') == 1 and not any('mix18' in n and log not in n for n in both)
  runs = table1.final_q_runs({base: {'real': {'success_rate': 0.2}},
                              row: {'real': {'success_rate': 0.4}}}, base)
  assert [(unit, label, real['success_rate']) for unit, label, real in runs] == [
      (0, 'final Q', 0.2), (1, '2nd final Q', 0.4)]


def test_the_perfect_g_line_pools_and_pairs_both_oracle_final_qs():
  """With the oracle's second final Q, CycleGAN's two seeds are paired scene by scene with the
  oracle's two final Qs (seed 0 with the first), as the headline pairs RL-CycleGAN's."""
  def measured(outcomes, seeds=None):
    k, n = sum(outcomes), len(outcomes)
    out = {'real': {'successes': k, 'episodes': n, 'success_rate': k / n,
                    'ci95': list(policy_eval.wilson_interval(k, n)), 'outcomes': outcomes}}
    return dict(out, seeds=seeds) if seeds else out

  cg = [1] * 6 + [0] * 4 + [1] * 7 + [0] * 3  # seed 0 then seed 1, 10 scenes each
  first, second = [0] * 2 + [1] * 8, [1] * 10  # the oracle's final Qs
  rows = {'rl_cyclegan': measured([0] * 20, [0, 1]), 'cyclegan': measured(cg, [0, 1]),
          'real_oracle': measured(first)}
  line = [x for x in table1.goal_markdown({'rows': rows}) if 'perfect G' in x][0]
  assert 'the oracle (one final Q) 80.0% (8/10;' in line and 'not paired' in line
  rows['real_oracle_fq'] = measured(second)
  rows['randomized_sim_fq'] = measured([0] * 10)  # another recipe's replicate: not the oracle's
  line = [x for x in table1.goal_markdown({'rows': rows}) if 'perfect G' in x][0]
  paired = policy_eval.mcnemar_exact(cg, first + second)
  assert (paired['only_a'], paired['only_b']) == (2, 7)
  assert ('against the oracle (both its final Qs pooled) 90.0% (18/20;' in line and
          'only CycleGAN grasped in 2, only the oracle in 7, exact McNemar p = '
          f"{paired['p_value']:.3g}." in line)


def test_the_goal_section_pools_every_final_q_of_each_g_once_all_are_measured(tmp_path):
  table = table1.Table1(str(tmp_path / 'work'), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  wins = {'rl_cyclegan_seed0': 50, 'rl_cyclegan_seed1': 25, 'rl_cyclegan_fq_seed0': 45,
          'rl_cyclegan_fq_seed1': 40, 'cyclegan_seed0': 55, 'cyclegan_seed1': 60,
          'cyclegan_fq_seed0': 50}
  spread = {'rl_cyclegan_seed1': 0.0001}
  scenes = 100
  for row, k in wins.items():
    for seed in table1.EVAL_SEEDS:
      outcomes = [1] * k + [0] * (scenes - k)
      for what in ('real', 'sim'):
        _write_eval(table.published(row, 'eval', f'{what}_seed{seed}.json'), k, scenes, seed,
                    outcomes=outcomes, spread=spread.get(row, 0.05))
  markdown = lambda: (tmp_path / 'docs' / 'table1.md').read_text()  # noqa: E731
  summary = table1.summarize(table)
  assert summary['rows']['rl_cyclegan_fq']['real']['successes'] == 3 * (45 + 40)
  assert summary['rows']['cyclegan_fq']['seeds'] == [0]
  assert 'Over every final Q' not in markdown()  # CycleGAN's second seed-1 final Q is missing
  assert '| RL-CycleGAN, a second final Q on the row\'s G (final-Q seed + 2) (pooled) |' in (
      markdown())
  for seed in table1.EVAL_SEEDS:
    _write_eval(table.published('cyclegan_fq_seed1', 'eval', f'real_seed{seed}.json'), 65, scenes,
                seed, outcomes=[1] * 65 + [0] * 35, spread=0.05)
    _write_eval(table.published('cyclegan_fq_seed1', 'eval', f'sim_seed{seed}.json'), 65, scenes,
                seed)
  table1.summarize(table)
  line = [x for x in markdown().splitlines() if 'Over every final Q of the 2 Gs a side' in x]
  assert len(line) == 1, markdown()
  rl_k, cg_k = 3 * (50 + 25 + 45 + 40), 3 * (55 + 60 + 50 + 65)
  assert f'RL-CycleGAN, 1 of 4 towers collapsed {100 * rl_k / 1200:.1f}% ({rl_k}/1200;' in line[0]
  assert f'CycleGAN, 0 of 4 towers collapsed {100 * cg_k / 1200:.1f}% ({cg_k}/1200;' in line[0]
  # Scene by scene: each side wins the first k of every 100, so only CycleGAN grasped in
  # max(0, cg - rl) scenes of each final-Q pair.
  only_cg = 3 * (5 + 35 + 5 + 25)
  assert f'only RL-CycleGAN grasped in 0, only CycleGAN in {only_cg}' in line[0]


def test_two_runners_never_both_start_a_final_q_on_the_same_free_memory(tmp_path,
                                                                         monkeypatch):
  """MemAvailable does not yet count what a just-started final Q will take: a second runner's
  check waits (and says why) until the first one's stage has had MEMORY_RAMP_S, then reads
  the memory again."""
  logs = []
  first, second = (table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=logs.append,
                                 results_dir=str(tmp_path / 'results')) for _ in range(2))
  final = {st.name: st for st in first.stages(['cyclegan_seed0'])}['cyclegan_seed0/final_q']
  monkeypatch.setattr(table1, 'memory_gb', lambda: (23.0, 20.0))  # room for two, as read
  monkeypatch.setattr(table1, 'MEMORY_POLL_S', 0.01)
  held = first.wait_for_memory(final)
  threading.Timer(0.2, table1._unlock, (held,)).start()  # run()'s release after the ramp
  start = time.time()
  second.wait_for_memory(final).close()
  assert time.time() - start >= 0.2
  assert any('another runner started a memory-bound stage' in m for m in logs), logs
  held.close()
  table1._unlock(held)  # a release after the stage closed it: nothing to do
  # A runner frees the lock once its stage ends, before MEMORY_RAMP_S if the stage is short.
  out = tmp_path / 'work' / 'short'
  short = table1.Stage('short/final_q', [sys.executable, '-c', 'pass'], str(out),
                       str(out / table1.DONE_FILE), 1.0, memory_gb=7.5)
  first.run([short])
  assert short.done
  with open(tmp_path / 'work' / table1.MEMORY_LOCK_FILE) as f:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free (BlockingIOError if still held)


def test_a_final_q_starts_only_when_the_machine_has_its_memory(tmp_path, monkeypatch):
  """Session 32: final-Q-sized jobs beside two joint runs filled the 23 GB machine and all
  stalled for 36 minutes. A runner now waits for a final Q's memory before starting it."""
  logs = []
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=logs.append,
                        results_dir=str(tmp_path / 'results'))
  stages = {st.name: st for st in table.stages(['cyclegan_seed0'])}
  final = stages['cyclegan_seed0/final_q']
  assert final.memory_gb == table1.FULL.final_q_memory_gb > 0
  assert stages['cyclegan_seed0/eval/real_seed0'].memory_gb == 0
  readings = iter([(23.0, 3.0), (23.0, 5.0), (23.0, 4.0), (23.0, 9.0)])
  monkeypatch.setattr(table1, 'memory_gb', lambda: next(readings))
  monkeypatch.setattr(table1, 'MEMORY_POLL_S', 0.01)
  monkeypatch.setattr(table1, 'MEMORY_LOG_S', 0.015)  # a line on the first wait and every 2nd
  table.wait_for_memory(final).close()
  assert next(readings, 'all read') == 'all read'
  need = f'{table1.FULL.final_q_memory_gb:g}'
  waits = [m for m in logs if f'waiting for ~{need} GB of memory' in m]
  assert len(waits) == 2 and '(3.0 of 23.0 GB available;' in waits[0]
  assert '(4.0 of 23.0 GB available;' in waits[1]
  assert logs[-1].startswith('cyclegan_seed0/final_q: 9.0 GB available after')
  # A machine that could never hold it: said once, and started anyway. Unknown: no wait.
  logs.clear()
  monkeypatch.setattr(table1, 'memory_gb', lambda: (6.0, 6.0))
  table.wait_for_memory(final).close()
  assert logs == [f'cyclegan_seed0/final_q: needs ~{need} GB, and this machine has 6.0 GB in '
                  'all; starting anyway']
  monkeypatch.setattr(table1, 'memory_gb', lambda: None)
  table.wait_for_memory(final).close()
  assert table.wait_for_memory(stages['cyclegan_seed0/eval/real_seed0']) is None
  monkeypatch.undo()
  total, available = table1.memory_gb()  # this (Linux) machine's own
  assert total >= available > 0
  # The tiny scale (the smoke test) never waits.
  tiny = table1.Table1(str(tmp_path / 'tiny'), os.getcwd(), table1.TINY, log=logs.append)
  assert {st.name: st for st in tiny.stages(['cyclegan_seed0'])}[
      'cyclegan_seed0/final_q'].memory_gb == 0


def _measured(rate, n=300, spread=0.05):
  k = round(rate * n)
  return {'real': {'successes': k, 'episodes': n, 'success_rate': k / n,
                   'ci95': list(policy_eval.wilson_interval(k, n)), 'embedding_spread': spread}}


def test_between_runs_counts_each_final_q_once_and_tests_recipes_run_by_run(tmp_path):
  """Every final Q of a recipe's Gs is one measurement (its rows and their second final Qs, in
  seed order); Welch's test needs two a side; the section, its JSON and its figure."""
  rows = {'cyclegan_seed0': _measured(0.57), 'cyclegan_seed1': _measured(0.63),
          'cyclegan_fq_seed1': _measured(0.573), 'rl_cyclegan_seed0': _measured(0.497),
          'rl_cyclegan_seed1': _measured(0.247, spread=0.0), 'real_oracle': _measured(0.533),
          'rl_cyclegan_rlscene1_seed0': _measured(0.62)}
  runs = table1.between_runs(rows)
  cg, rl = runs['recipes']['cyclegan'], runs['recipes']['rl_cyclegan']
  assert cg['labels'] == ['s0', 's1', 's1 2nd final Q']
  assert rl['collapsed'] == [False, True]
  assert runs['recipes']['real_oracle']['labels'] == ['final Q']
  assert [(c['a'], c['b']) for c in runs['comparisons']] == [('rl_cyclegan', 'cyclegan')]
  test = runs['comparisons'][0]
  assert test['n_a'] == 2 and test['n_b'] == 3
  assert test['difference'] == pytest.approx(rl['mean'] - cg['mean'])
  assert test['ci'][0] < test['difference'] < test['ci'][1] and test['p_value'] > 0.05
  assert test['runs_for_power'] >= 2
  # Over Gs: each G's final Qs averaged first (CycleGAN s1 has two).
  assert cg['unit_rates'] == pytest.approx([cg['rates'][0], (cg['rates'][1] + cg['rates'][2]) / 2])
  assert test['by_g']['n_a'] == test['by_g']['n_b'] == 2
  assert test['by_g']['difference'] == pytest.approx(sum(rl['unit_rates']) / 2 -
                                                     sum(cg['unit_rates']) / 2)
  rows.update(real_oracle_fq=_measured(0.6), rl_cyclegan_rlscene1_seed1=_measured(0.51))
  runs = table1.between_runs(rows)
  assert runs['recipes']['real_oracle']['labels'] == ['final Q', '2nd final Q']
  assert [(c['a'], c['b']) for c in runs['comparisons']] == list(table1.RUN_COMPARISONS)

  summary = {'rows': {'sim_only': _measured(0.383), **rows}, 'between_runs': runs,
             'runs_figure': 'runs.png'}
  text = '\n'.join(table1.between_runs_markdown(summary))
  assert '| RL-CycleGAN | 2 | s0 49.7%, s1 24.7% (collapsed tower) | 37.2% |' in text
  assert 'Over Gs (2 against 2)' in text  # the oracle's two final Qs: two units
  assert (f"- RL-CycleGAN (2 final Qs, mean 37.2%) against CycleGAN (3, "
          f"{100 * cg['mean']:.1f}%): {100 * test['difference']:+.1f} points") in text
  assert '![each final Q in real](runs.png)' in text
  # Where the spread lies: the G recipes' final Qs grouped by G (the oracle's are not nested).
  comp = runs['components']
  assert comp['recipes'] == ['cyclegan', 'rl_cyclegan', 'rl_cyclegan_rlscene1']
  rate = lambda k: rows[k]['real']['success_rate']  # noqa: E731
  assert comp == {**rs.variance_components([
      [[rate('cyclegan_seed0')], [rate('cyclegan_seed1'), rate('cyclegan_fq_seed1')]],
      [[rate('rl_cyclegan_seed0')], [rate('rl_cyclegan_seed1')]],
      [[rate('rl_cyclegan_rlscene1_seed0')], [rate('rl_cyclegan_rlscene1_seed1')]]]),
                  'recipes': comp['recipes'], 'transfer': comp['transfer']}
  assert comp['transfer']['within_var'] is None  # no sim figures yet
  assert ('over the Gs of CycleGAN, RL-CycleGAN and lambda_RL-scene 1' in text and
          f"differ by an SD of {100 * comp['within_sd']:.1f} points (df 1)" in text)
  json.dumps(runs, allow_nan=False)  # summary.json holds it
  # Real - sim through each final Q's own G: no test before sim is measured for two a side.
  assert runs['recipes']['cyclegan']['transfer'] == [None] * 3
  assert 'transfer' not in runs['recipes']['real_oracle']
  assert not any('transfer' in c for c in runs['comparisons'])
  sims = {'cyclegan_seed0': 0.55, 'cyclegan_seed1': 0.60, 'cyclegan_fq_seed1': 0.62,
          'rl_cyclegan_seed0': 0.61, 'rl_cyclegan_seed1': 0.25,
          'rl_cyclegan_rlscene1_seed0': 0.68, 'rl_cyclegan_rlscene1_seed1': 0.66}
  with_sim = {k: (dict(v, sim=_measured(sims[k])['real']) if k in sims else v)
              for k, v in rows.items()}
  runs = table1.between_runs(with_sim)
  rate = lambda k, what='real': with_sim[k][what]['success_rate']  # noqa: E731
  delta = lambda k: rate(k) - rate(k, 'sim')  # noqa: E731
  assert runs['recipes']['cyclegan']['transfer'] == pytest.approx(
      [delta('cyclegan_seed0'), delta('cyclegan_seed1'), delta('cyclegan_fq_seed1')])
  assert runs['recipes']['rl_cyclegan']['transfer'] == [delta('rl_cyclegan_seed0'), None]
  tests = {(c['a'], c['b']): c for c in runs['comparisons']}
  assert 'transfer' not in tests['rl_cyclegan', 'cyclegan']  # one RL final Q not collapsed
  lever = tests['rl_cyclegan_rlscene1', 'cyclegan']['transfer']
  assert (lever['n_a'], lever['n_b']) == (2, 3)
  assert lever['difference'] == pytest.approx(
      (delta('rl_cyclegan_rlscene1_seed0') + delta('rl_cyclegan_rlscene1_seed1')) / 2 -
      sum(runs['recipes']['cyclegan']['transfer']) / 3)
  text = '\n'.join(table1.between_runs_markdown(dict(summary, between_runs=runs)))
  assert f"| {100 * delta('rl_cyclegan_seed0'):+.1f}, - |" in text
  assert f"Real - sim (2 final Qs, mean {100 * lever['mean_a']:+.1f} points, against 3" in text
  # Its spread between final Qs on one G: CycleGAN s1's two (the only G with two measured).
  within = abs(delta('cyclegan_seed1') - delta('cyclegan_fq_seed1')) / math.sqrt(2)
  assert runs['components']['transfer']['within_sd'] == pytest.approx(within)
  assert f'on one G by an SD of {100 * within:.1f} points (df 1).' in text
  # Its intervals: unpaired without per-scene outcomes, paired by scene with them.
  low, high = runs['recipes']['rl_cyclegan']['transfer_ci95'][0]
  half = policy_eval.Z_95 * math.sqrt(sum(
      r * (1 - r) / 300 for r in (rate('rl_cyclegan_seed0'), rate('rl_cyclegan_seed0', 'sim'))))
  assert (low, high) == pytest.approx((delta('rl_cyclegan_seed0') - half,
                                       delta('rl_cyclegan_seed0') + half))
  assert runs['recipes']['rl_cyclegan']['transfer_ci95'][1] is None  # collapsed
  real, sim = [1] * 200 + [0] * 100, [1] * 180 + [0] * 120  # 20 scenes grasped only in real
  paired = {**with_sim, 'cyclegan_seed0': {
      'real': dict(_measured(2 / 3)['real'], outcomes=real),
      'sim': dict(_measured(0.6)['real'], outcomes=sim)}}
  first = table1.between_runs(paired)['recipes']['cyclegan']
  assert first['transfer'][0] == pytest.approx(20 / 300)
  assert first['transfer_ci95'][0] == pytest.approx(
      list(policy_eval.paired_difference_interval(real, sim)[1:]))
  figure = dict(summary, between_runs=runs, transfer_figure='transfer.png')
  assert "![each final Q's real - sim](transfer.png)" in '\n'.join(
      table1.between_runs_markdown(figure))
  assert table1.render_between_runs(figure, str(tmp_path / 't.png'), 'transfer') is not None
  assert table1.render_between_runs(summary, str(tmp_path / 'u.png'), 'transfer') is None
  assert table1.render_between_runs(summary, str(tmp_path / 'runs.png')) is not None
  assert table1.render_between_runs(
      {'rows': {}, 'between_runs': table1.between_runs({'cyclegan_seed0': _measured(0.5)})},
      str(tmp_path / 'none.png')) is None
  assert not (tmp_path / 'none.png').exists()
  assert table1.between_runs({}) == {} and table1.between_runs_markdown({'rows': {}}) == []
  # The goal section carries the headline comparison run by run.
  rows.update(rl_cyclegan=dict(_measured(0.37), seeds=[0, 1]),
              cyclegan=dict(_measured(0.6), seeds=[0, 1]))
  goal = '\n'.join(table1.goal_markdown({'rows': rows, 'between_runs': runs}))
  assert (f"3 final Qs against 2, {100 * test['difference']:+.1f} points" not in goal and
          f"2 final Qs against 3, {100 * test['difference']:+.1f} points" in goal)
  assert 'Run by run, no difference is shown at the 5% level' in goal
  assert 'Why, run by run' not in goal  # no sim figures: no real - sim test
  transfer = dict(runs['comparisons'][0], transfer=dict(
      runs['comparisons'][0], mean_a=-0.14, mean_b=0.004, p_value=0.035))
  why = '\n'.join(table1.goal_markdown({'rows': rows, 'between_runs': dict(
      runs, comparisons=[transfer])}))
  assert ('RL-CycleGAN -14.0 points over 2 final Qs, CycleGAN +0.4 over 3' in why and
          'leaves open is shown to differ at the 5% level.' in why)
  far = json.loads(json.dumps(runs))  # a copy, then smaller p-values
  far['comparisons'][0].update(p_value=0.01, by_g=dict(far['comparisons'][0]['by_g'],
                                                       p_value=0.02))
  assert 'Run by run, a difference is shown' in '\n'.join(
      table1.goal_markdown({'rows': rows, 'between_runs': far}))


def test_between_runs_of_identical_final_qs_stays_valid_json():
  rows = {f'{base}_seed{k}': _measured(0.5) for base in ('cyclegan', 'rl_cyclegan')
          for k in (0, 1)}
  test = table1.between_runs(rows)['comparisons'][0]
  assert test['difference'] == 0 and test['p_value'] == 1.0 and test['df'] is None
  assert test['runs_for_power'] is None
  json.dumps(test, allow_nan=False)


def test_a_row_pools_every_training_seed_measured_so_far(tmp_path):
  """TRAINING_SEEDS: the headline rows' third seed is pooled once measured; until then the row
  pools the two it has, and a row with one seed measured shows it, whichever it is."""
  table = table1.Table1(str(tmp_path / 'work'), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  wins = {'cyclegan_seed0': 55, 'cyclegan_seed1': 60, 'cyclegan_seed2': 40,
          'rl_cyclegan_seed0': 50, 'rl_cyclegan_seed1': 30, 'rl_cyclegan_rlscene1_seed1': 45}
  for row, k in wins.items():
    for seed in table1.EVAL_SEEDS:
      for what in ('real', 'sim'):
        _write_eval(table.published(row, 'eval', f'{what}_seed{seed}.json'), k, 100, seed,
                    outcomes=[1] * k + [0] * (100 - k), spread=0.05)
  summary = table1.summarize(table)
  rows = summary['rows']
  assert rows['cyclegan']['seeds'] == [0, 1, 2] and rows['rl_cyclegan']['seeds'] == [0, 1]
  assert rows['cyclegan']['real']['successes'] == 3 * (55 + 60 + 40)
  assert rows['cyclegan']['seed_spreads'] == pytest.approx([0.05] * 3)
  assert rows['rl_cyclegan_rlscene1']['seeds'] == [1]  # seed 1 alone: shown as the row
  assert 'rl_cyclegan_seed2' in summary['pending']
  text = (tmp_path / 'docs' / 'table1.md').read_text()
  assert '| CycleGAN (pooled) | 51.7% (465/900;' in text and '0 of 3 collapsed' in text
  assert '| CycleGAN (seed 2) | 40.0% (120/300;' in text
  assert '| RL-CycleGAN, lever: lambda_RL-scene 1 (seed 1 only) | 45.0%' in text
  assert ('- RL-CycleGAN (pooled over 2 seeds) 40.0% (240/600; 36-44%) against CycleGAN '
          '(pooled over 3 seeds) 51.7% (465/900;') in text
  assert 'Paired over the same' not in text  # 600 scenes against 900: not paired
  lever = [x for x in text.splitlines() if x.startswith('- RL-CycleGAN, lever')]
  assert lever and 'CycleGAN (seed 1 only) 60.0% (180/300;' in lever[0]


def test_the_table_is_in_tensorboard_beside_its_runs(tmp_path):
  """summarize writes the table to <work_dir>/tensorboard: its markdown as text, its figures as
  images and each row's success as scalars; again only when a figure changed."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  table = table1.Table1(str(tmp_path / 'work'), str(tmp_path), table1.TINY, log=lambda m: None,
                        results_dir=str(tmp_path / 'results'), docs_dir=str(tmp_path / 'docs'))
  logdir = tmp_path / 'work' / table1.TENSORBOARD_DIR

  def land(row, k):
    for seed in table1.EVAL_SEEDS:
      for what in ('real', 'sim'):
        _write_eval(table.published(row, 'eval', f'{what}_seed{seed}.json'), k, 10, seed,
                    outcomes=[1] * k + [0] * (10 - k), spread=0.05)

  def events():
    out = {}
    for path in sorted(glob.glob(str(logdir / 'events.out.tfevents.*'))):
      for event in tf.compat.v1.train.summary_iterator(path):
        for value in event.summary.value:
          out.setdefault(value.tag, []).append((event.step, value))
    return out

  land('cyclegan_seed0', 6)
  table1.summarize(table)
  first = events()
  assert [step for step, _ in first['table1/real/cyclegan_seed0']] == [1]
  value = first['table1/real/cyclegan_seed0'][0][1]
  assert tf.make_ndarray(value.tensor) == pytest.approx(0.6)
  text = tf.make_ndarray(first['table1/text'][0][1].tensor).item().decode()
  assert text == (tmp_path / 'docs' / 'table1.md').read_text()
  files = len(glob.glob(str(logdir / 'events.out.tfevents.*')))
  table1.summarize(table)  # nothing changed: no new report
  assert len(glob.glob(str(logdir / 'events.out.tfevents.*'))) == files
  land('rl_cyclegan_seed0', 3)
  table1.summarize(table)
  assert [step for step, _ in events()['table1/real/rl_cyclegan_seed0']] == [2]


def test_the_0_75_chain_runs_every_row():
  """docs/launch/table1_real_gap0.75_chain.sh names every row key after its function
  definitions (a row added to ROWS but not to a lane would never run)."""
  with open(os.path.join(os.path.dirname(__file__), '..', 'docs', 'launch',
                         'table1_real_gap0.75_chain.sh')) as f:
    body = f.read().split('\nset -u\n', 1)[1]
  named = set(re.findall(r'[a-z0-9_]+', body))
  missing = [k for k in table1.all_row_keys() if k not in named]
  assert not missing, f'rows no lane of the chain runs: {missing}'


def test_no_two_final_qs_of_a_recipe_share_a_final_q_seed(tmp_path):
  """Read from the stages' argv: each recipe's final Qs (its training seeds' rows and their
  second final Qs) have distinct final-Q seeds; the rows of one training seed share theirs
  across recipes; seeds 0 and 1 keep the seeds their committed runs were trained with."""
  table = table1.Table1(str(tmp_path / 'work'), os.getcwd(), log=lambda m: None,
                        results_dir=str(tmp_path / 'results'))

  def seed_of(row):
    argv = {st.name: st for st in table.stages([row])}[f'{row}/final_q'].argv
    return int([a for a in argv if a.startswith('train_eval.seed = ')][0].split('= ')[1])

  for base in ('cyclegan', 'rl_cyclegan', 'real_oracle', 'randomized_sim'):
    rows = [r for r in table1.all_row_keys()
            if r.split('_seed')[0] in (base, *table1.replicates_of(base))]
    seeds = [seed_of(r) for r in rows]
    assert len(set(seeds)) == len(seeds) > 1, (base, dict(zip(rows, seeds)))
  assert [seed_of(f'cyclegan_seed{k}') for k in (0, 1, 2)] == [0, 1, 12]
  assert [seed_of(f'rl_cyclegan_seed{k}') for k in (0, 1, 2)] == [0, 1, 12]
  assert [seed_of(f'cyclegan_fq_seed{k}') for k in (0, 1)] == [2, 3]
  assert seed_of('real_oracle') == 0 and seed_of('real_oracle_fq') == 2


def test_where_the_spread_lies_waits_for_a_g_with_two_final_qs_then_for_two_gs():
  rows = {'cyclegan_seed0': _measured(0.57), 'rl_cyclegan_seed0': _measured(0.5)}
  summary = {'rows': rows, 'between_runs': table1.between_runs(rows)}
  assert 'Where the spread lies' not in '\n'.join(table1.between_runs_markdown(summary))
  rows = {'cyclegan_seed1': _measured(0.63), 'cyclegan_fq_seed1': _measured(0.57)}
  summary = {'rows': rows, 'between_runs': table1.between_runs(rows)}
  text = '\n'.join(table1.between_runs_markdown(summary))
  assert ('over the Gs of CycleGAN; `run_statistics.variance_components`): final Qs on one G '
          'differ by an SD of 4.2 points (df 1); no recipe has two Gs yet.') in text
