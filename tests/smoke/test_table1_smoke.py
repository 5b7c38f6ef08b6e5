"""`make table1` at a tiny size, end to end through the real binaries, killed and resumed; then
the real-trained oracle and the oracle-Q report of the generator row.

About 5 minutes on 2 cores, so not part of `make test`: .ci/run runs it as its own step
(`python -m pytest tests/smoke`).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _cmd(tmp_path, rows):
  return [sys.executable, os.path.join(REPO, 'tools', 'table1.py'), '--scale=tiny',
          f'--rows={rows}', f'--work_dir={tmp_path / "work"}',
          f'--results_dir={tmp_path / "results"}', f'--docs_dir={tmp_path / "docs"}']


def test_tiny_table1_runs_end_to_end_and_resumes_after_a_kill(tmp_path):
  row = 'rl_cyclegan_seed0'
  joint_log = tmp_path / 'work' / row / 'joint' / 'table1_stage.log'
  # Kill the whole runner (SIGKILL, no cleanup) once the joint stage has started.
  proc = subprocess.Popen(_cmd(tmp_path, row), cwd=REPO, start_new_session=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  while not joint_log.exists() and time.time() < deadline and proc.poll() is None:
    time.sleep(0.5)
  assert joint_log.exists(), 'the joint stage never started'
  time.sleep(3)
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  assert (tmp_path / 'work' / row / 'joint' / 'table1_stage.lock').exists()  # left behind
  assert not (tmp_path / 'work' / row / 'joint' / 'table1_stage.json').exists()

  # The same command resumes: finished data stages are skipped, the dead lock is taken over.
  out = subprocess.run(_cmd(tmp_path, row), cwd=REPO, capture_output=True, text=True,
                       timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  assert 'data/real_log5k                            done' in out.stderr
  with open(tmp_path / 'results' / 'summary.json') as f:
    summary = json.load(f)
  entry = summary['rows'][row]
  assert entry['real']['episodes'] == 3 * 2 and entry['sim']['episodes'] == 3 * 2
  assert entry['joint_q_real_real']['episodes'] == 6
  assert entry['generator_report']['frame']['generator/mae'] > 0
  assert (tmp_path / 'docs' / 'table1.png').exists()
  assert (tmp_path / 'docs' / 'table1.md').read_text().count('RL-CycleGAN') >= 2

  # The published copy evaluates on its own, through its G in sim.
  published = tmp_path / 'results' / row / 'final_q'
  out = subprocess.run(
      [sys.executable, os.path.join(REPO, 'tools', 'evaluate.py'),
       f'--checkpoint_dir={published}', '--appearance=sim', '--generator_key=G_sim2real',
       '--render_size=32x40', '--num_episodes=1', '--num_envs=1'],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  assert 'grasp success' in out.stdout

  # The joint-length lever trains the finished joint run on (2 -> 4 steps at this scale).
  out = subprocess.run(_cmd(tmp_path, 'rl_cyclegan_long') + ['--joint_only'], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  lever = tmp_path / 'work' / 'rl_cyclegan_long' / 'joint'
  assert 'ckpt-2 at train step 2' in (lever / 'table1_stage.log').read_text()  # not retrained
  assert (lever / 'train' / 'ckpt' / 'ckpt-4.index').exists()
  with open(tmp_path / 'results' / 'summary.json') as f:
    lever_entry = json.load(f)['generators']['rl_cyclegan_long']
  assert lever_entry['joint_continued_from'] == {'row': row, 'step': 2}
  assert lever_entry['joint_q_real_real']['episodes'] == 6

  # The real-trained oracle; then, with the joint run's directory gone (a lost machine), the
  # generator row's oracle-Q report is made from the published G, config and oracle alone.
  out = subprocess.run(_cmd(tmp_path, 'real_oracle'), cwd=REPO, capture_output=True, text=True,
                       timeout=900)
  assert out.returncode == 0, out.stderr[-3000:]
  shutil.rmtree(tmp_path / 'work' / row / 'joint')
  both = f'{row},real_oracle'
  out = subprocess.run(_cmd(tmp_path, both), cwd=REPO, capture_output=True, text=True,
                       timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  # Nothing else was run again: only the oracle-Q report and the paired set it alone reads.
  assert 'stage 1/2: data/paired_oracle' in out.stderr
  assert f'stage 2/2: {row}/oracle_q' in out.stderr
  with open(tmp_path / 'results' / 'summary.json') as f:
    summary = json.load(f)
  assert summary['rows']['real_oracle']['real']['episodes'] == 6
  agreement = summary['rows'][row]['oracle_q']
  assert agreement['generator']['num_states'] == 4 and agreement['identity']['num_states'] == 4
  assert '| no G (sim x) |' in (tmp_path / 'docs' / 'table1.md').read_text()

  # A further run has nothing left to do.
  again = subprocess.run(_cmd(tmp_path, both), cwd=REPO, capture_output=True, text=True,
                         timeout=300)
  assert again.returncode == 0 and 'remaining: ~0m00s' in again.stderr
