"""tools/benchmark_qtopt.py's step timer on a tiny batch (figures themselves are not asserted)."""
import pytest

from rl_cyclegan import benchmark


def test_qtopt_step_rows_with_and_without_skipping():
  static = benchmark.benchmark_qtopt_step('networks_small.gin', (32, 32), 5, 0.4, False,
                                          peak_gflops=100.0, steps=1)
  skipping = benchmark.benchmark_qtopt_step('networks_small.gin', (32, 32), 5, 0.4, True,
                                            peak_gflops=100.0, steps=1)
  assert static['gflop_per_step'] > 0 and static['ms_per_step'] > 0
  assert skipping['gflop_per_step'] == 0 and skipping['ms_per_step'] > 0  # not counted
  assert static['skip_terminal_targets'] is False and skipping['skip_terminal_targets'] is True
  assert static['transitions_per_s'] == pytest.approx(5e3 / static['ms_per_step'])


def test_bad_done_fraction_is_named():
  with pytest.raises(ValueError, match='done_fraction'):
    benchmark.benchmark_qtopt_step('networks_small.gin', (32, 32), 4, 1.5, True, 1.0)


def test_final_q_rows_compare_the_cached_g_with_sim_only():
  rows = benchmark.run_final_q('networks_small.gin', (32, 32), (32, 40), batch=4, episodes=3,
                               steps=1)
  assert [r['name'] for r in rows] == ['sim_only', 'final_q_cached_g', 'final_q_g_every_step']
  assert rows[0]['relative_to_sim_only'] == 1.0
  assert all(r['ms_per_step'] > 0 for r in rows)
