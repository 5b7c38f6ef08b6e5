"""Run-level statistics (rl_cyclegan/evaluation/run_statistics.py)."""

import math

import numpy as np
import pytest

from rl_cyclegan.evaluation import run_statistics as rs


@pytest.mark.parametrize('df', [1.0, 2.5, 3.0, 10.0, 57.3])
def test_student_t_matches_tensorflow_probability(df):
  tfp = pytest.importorskip('tensorflow_probability')
  dist = tfp.distributions.StudentT(df=df, loc=0.0, scale=1.0)
  for t in (-6.0, -1.3, 0.0, 0.4, 2.0, 9.0):
    assert rs.student_t_cdf(t, df) == pytest.approx(float(dist.cdf(t)), abs=1e-6)
  for q in (0.025, 0.5, 0.9, 0.975):
    assert rs.student_t_quantile(q, df) == pytest.approx(float(dist.quantile(q)), rel=1e-5,
                                                         abs=1e-6)


def test_student_t_textbook_quantiles():
  # Two-sided 95% critical values of the t table; df -> inf gives the normal's 1.96.
  assert rs.student_t_quantile(0.975, 1) == pytest.approx(12.7062, abs=1e-4)
  assert rs.student_t_quantile(0.975, 10) == pytest.approx(2.2281, abs=1e-4)
  assert rs.student_t_quantile(0.975, 1e7) == pytest.approx(1.95996, abs=1e-4)


def test_welch_on_a_worked_example():
  # The first worked example of Wikipedia's "Welch's t-test": t = -2.46, df = 24.99, p = 0.021.
  a = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
  b = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
  out = rs.welch(a, b)
  assert out['t'] == pytest.approx(-2.46, abs=0.005)
  assert out['df'] == pytest.approx(24.99, abs=0.01)
  assert out['p_value'] == pytest.approx(0.021, abs=0.0005)
  low, high = out['ci']
  assert low < out['difference'] < high < 0  # the interval excludes 0 where p < 0.05
  assert (low + high) / 2 == pytest.approx(out['difference'])


def test_welch_interval_contains_zero_exactly_when_p_is_large():
  for a, b in (([0.57, 0.63, 0.573], [0.497, 0.247, 0.407]), ([0.62, 0.51], [0.57, 0.63])):
    out = rs.welch(a, b)
    assert (out['ci'][0] > 0 or out['ci'][1] < 0) == (out['p_value'] < 0.05)


def test_welch_needs_two_runs_a_side():
  with pytest.raises(ValueError, match='at least 2 runs a side.*1 and 2'):
    rs.welch([0.5], [0.4, 0.6])


def test_runs_for_power_is_the_smallest_sufficient_count():
  n = rs.runs_for_power(0.05, 0.04, 0.06)
  assert rs.welch_power(0.05, 0.04, 0.06, n) >= rs.POWER
  assert n == 2 or rs.welch_power(0.05, 0.04, 0.06, n - 1) < rs.POWER
  # Many runs: the normal approximation n = (z_a/2 + z_b)^2 (sd_a^2 + sd_b^2) / d^2 = 62.8.
  normal = (1.959964 + 0.841621) ** 2 * 2 / 0.5 ** 2
  assert math.ceil(normal) <= rs.runs_for_power(0.5, 1.0, 1.0) <= math.ceil(normal) + 2
  assert rs.runs_for_power(0.0, 0.1, 0.1) is None  # no difference: no count detects it


def test_runs_for_power_bisection_matches_a_linear_scan():
  def scan(d, sd_a, sd_b):  # the definition: the first count whose power suffices
    return next(n for n in range(2, rs.MAX_RUNS + 1) if rs.welch_power(d, sd_a, sd_b, n) >= 0.8)

  for case in ((0.3, 0.05, 0.05), (0.05, 0.04, 0.06), (0.125, 0.093, 0.03), (0.1, 0.15, 0.01),
               (0.07, 0.093, 0.093)):
    assert rs.runs_for_power(*case) == scan(*case), case


def test_runs_for_power_refuses_a_power_it_cannot_bisect():
  with pytest.raises(ValueError, match=r'power must be in \(0.5, 1\), got 0.4'):
    rs.runs_for_power(0.1, 0.1, 0.1, power=0.4)


def test_scene_sd_and_mean_sd():
  assert rs.scene_sd(0.5, 300) == pytest.approx(math.sqrt(0.25 / 300))
  assert rs.mean_sd([0.2, 0.4]) == pytest.approx((0.3, math.sqrt(0.02)))
  assert rs.mean_sd([0.7]) == (0.7, 0.0)


def test_bad_arguments_name_the_value():
  with pytest.raises(ValueError, match='q must be in'):
    rs.student_t_quantile(1.0, 3)
  with pytest.raises(ValueError, match='must be > 0, got 0'):
    rs.student_t_cdf(1.0, 0)


def test_variance_components_by_hand():
  # Two recipes: units of 2, 2 runs and 1, 2 runs. Within: SS 2 + 8 + 0.5 over df 1 + 1 + 1.
  out = rs.variance_components([[[1.0, 3.0], [5.0, 9.0]], [[4.0], [2.0, 3.0]]])
  assert out['within_df'] == 3 and out['within_var'] == pytest.approx(3.5)
  # Unit means 2, 7 (variance 12.5, less 3.5 / 2) and 4, 2.5 (1.125, less 3.5 * 0.75).
  assert out['between_df'] == 2
  assert out['between_var'] == pytest.approx(((12.5 - 1.75) + (1.125 - 2.625)) / 2)
  assert out['between_sd'] == pytest.approx(math.sqrt(out['between_var']))
  low = rs.variance_components([[[0.0, 4.0], [2.0, 2.1]]])  # units closer than their runs
  assert low['between_var'] < 0 and low['between_sd'] == 0.0
  none = rs.variance_components([[[0.5], [0.6]]])  # no unit with two runs: no within spread
  assert none['within_var'] is None and none['between_var'] is None
  with pytest.raises(ValueError, match='a unit without runs'):
    rs.variance_components([[[]]])


def test_variance_components_recover_the_simulated_spreads():
  rng = np.random.default_rng(0)
  sd_unit, sd_run = 0.05, 0.12
  recipes = []
  for recipe_mean in (0.3, 0.6):  # each recipe its own mean, which must not count as spread
    units = recipe_mean + sd_unit * rng.standard_normal(400)
    recipes.append([list(m + sd_run * rng.standard_normal(int(rng.integers(1, 4))))
                    for m in units])
  out = rs.variance_components(recipes)
  assert out['within_sd'] == pytest.approx(sd_run, rel=0.08)
  assert out['between_sd'] == pytest.approx(sd_unit, rel=0.25)
