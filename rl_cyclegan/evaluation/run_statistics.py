"""Run-level statistics: each trained policy is one measurement.

A success rate's Wilson interval (``policy_eval.wilson_interval``) counts episodes: it says how
well 300 episodes measure *one* trained policy. Two policies trained by the same recipe with
different seeds differ by more than that (a second final Q on the same frozen G moved 5.7 and
16.0 points in Table 1, docs/results.md). Whether one recipe beats another is a question about
training runs, and the number of runs, not of episodes, limits the answer.

Following Colas, Sigaud and Oudeyer (2018), "How many random seeds? Statistical power analysis
in deep reinforcement learning experiments", each run's success rate is one sample:

- ``welch``: Welch's t-test and the 95% interval of the difference of two recipes' mean rates,
  with the Welch-Satterthwaite degrees of freedom (unequal variances and run counts);
- ``runs_for_power``: how many runs per recipe a Welch test needs to detect a given difference
  at given run-to-run standard deviations (the t-shift approximation of their Section 4.2);
- ``scene_sd``: the standard deviation a rate would have from its episodes alone (binomial), to
  set beside the run-to-run one;
- ``variance_components``: where the run-to-run spread lies when runs are nested (several
  final Qs on each frozen G): between runs of one unit, and between units beyond that (the
  one-way random-effects ANOVA estimates, pooled over recipes).

Student's t comes from tensorflow_probability (``student_t_cdf``, ``student_t_quantile``, in
float64; SciPy is not in the pinned stack).
"""

import math
from typing import Optional, Sequence

import tensorflow as tf
import tensorflow_probability as tfp

ALPHA = 0.05  # two-sided
POWER = 0.8
MAX_RUNS = 1000  # runs_for_power gives up (None) beyond this many runs per recipe


def _student_t(df: float):
  return tfp.distributions.StudentT(df=tf.constant(float(df), tf.float64),
                                    loc=tf.constant(0.0, tf.float64),
                                    scale=tf.constant(1.0, tf.float64))


def student_t_cdf(t: float, df: float) -> float:
  """P(T <= t) for Student's t with ``df`` > 0 degrees of freedom (not necessarily whole)."""
  if not df > 0:
    raise ValueError(f'student_t_cdf: degrees of freedom must be > 0, got {df}')
  return float(_student_t(df).cdf(tf.constant(float(t), tf.float64)))


def student_t_quantile(q: float, df: float) -> float:
  """The t with P(T <= t) = q."""
  if not 0.0 < q < 1.0:
    raise ValueError(f'student_t_quantile: q must be in (0, 1), got {q}')
  if not df > 0:
    raise ValueError(f'student_t_quantile: degrees of freedom must be > 0, got {df}')
  return float(_student_t(df).quantile(tf.constant(float(q), tf.float64)))


def mean_sd(values: Sequence[float]) -> tuple:
  """The mean and the sample standard deviation (n - 1; 0.0 for one value)."""
  values = [float(v) for v in values]
  if not values:
    raise ValueError('mean_sd: no values')
  mean = sum(values) / len(values)
  if len(values) == 1:
    return mean, 0.0
  return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def scene_sd(rate: float, episodes: int) -> float:
  """The standard deviation of a success rate from its ``episodes`` alone (binomial)."""
  return math.sqrt(rate * (1.0 - rate) / episodes)


def _welch_df(var_a: float, n_a: int, var_b: float, n_b: int) -> float:
  """The Welch-Satterthwaite degrees of freedom (inf when both variances are 0)."""
  sa, sb = var_a / n_a, var_b / n_b
  denominator = sa * sa / (n_a - 1) + sb * sb / (n_b - 1)
  return (sa + sb) ** 2 / denominator if denominator > 0 else math.inf


def welch(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA) -> dict:
  """Welch's t-test of mean(a) - mean(b), each value one run's success rate.

  Returns the means, standard deviations and run counts, ``difference``, its standard error
  ``se``, the Welch-Satterthwaite ``df``, ``t``, the two-sided ``p_value`` and the
  ``1 - alpha`` interval ``ci`` of the difference. Each side needs at least two runs: one run
  says nothing about run-to-run spread.
  """
  if len(a) < 2 or len(b) < 2:
    raise ValueError(f'welch needs at least 2 runs a side to estimate their spread; got '
                     f'{len(a)} and {len(b)}')
  (mean_a, sd_a), (mean_b, sd_b) = mean_sd(a), mean_sd(b)
  difference = mean_a - mean_b
  se = math.sqrt(sd_a ** 2 / len(a) + sd_b ** 2 / len(b))
  df = _welch_df(sd_a ** 2, len(a), sd_b ** 2, len(b))
  out = {'mean_a': mean_a, 'mean_b': mean_b, 'sd_a': sd_a, 'sd_b': sd_b, 'n_a': len(a),
         'n_b': len(b), 'difference': difference, 'se': se, 'df': df}
  if se == 0.0:  # identical runs on both sides: no spread to test against
    return {**out, 't': math.inf if difference else 0.0,
            'p_value': 0.0 if difference else 1.0, 'ci': [difference, difference]}
  t = difference / se
  half = student_t_quantile(1.0 - alpha / 2.0, df) * se
  return {**out, 't': t, 'p_value': 2.0 * (1.0 - student_t_cdf(abs(t), df)),
          'ci': [difference - half, difference + half]}


def welch_power(difference: float, sd_a: float, sd_b: float, runs: int,
                alpha: float = ALPHA) -> float:
  """The power of a two-sided Welch test on ``runs`` runs per recipe, when the true difference
  of mean rates is ``difference`` and the runs' standard deviations are ``sd_a`` and ``sd_b``:
  P(|T| > t_crit) approximated as P(T' > t_crit - |difference| / se) with T' central t
  (Colas et al. 2018, Section 4.2)."""
  if runs < 2:
    raise ValueError(f'welch_power needs at least 2 runs per recipe, got {runs}')
  se = math.sqrt((sd_a ** 2 + sd_b ** 2) / runs)
  if se == 0.0:
    return 1.0 if difference else 0.0
  df = _welch_df(sd_a ** 2, runs, sd_b ** 2, runs)
  critical = student_t_quantile(1.0 - alpha / 2.0, df)
  return 1.0 - student_t_cdf(critical - abs(difference) / se, df)


def runs_for_power(difference: float, sd_a: float, sd_b: float, power: float = POWER,
                   alpha: float = ALPHA) -> Optional[int]:
  """The fewest runs per recipe (at least 2) whose Welch test detects ``difference`` with
  ``power``; None if more than MAX_RUNS would be needed (a difference of 0 never is).

  Found by bisection on ``welch_power(runs) >= power``, which holds from some run count on:
  with more runs the shift t_crit - |difference| / se falls (t_crit falls as df grows, se
  falls), and power = 1 - cdf(shift, df) rises wherever shift < 0, since there a longer-tailed
  t (lower df) has more mass below it too. Power at shift >= 0 is at most 1/2, so for
  ``power`` > 1/2 the condition is monotone in runs. (A linear scan took ~20 ms of Student's t
  per count, ~50 s for a summary's six tests; bisection takes ~11 counts.)
  """
  if not 0.5 < power < 1.0:
    raise ValueError(f'runs_for_power: power must be in (0.5, 1), got {power}')

  def enough(runs):
    return welch_power(difference, sd_a, sd_b, runs, alpha) >= power

  if enough(2):
    return 2
  if not enough(MAX_RUNS):
    return None
  low, high = 2, MAX_RUNS  # not enough at low, enough at high
  while high - low > 1:
    mid = (low + high) // 2
    if enough(mid):
      high = mid
    else:
      low = mid
  return high


def variance_components(recipes: Sequence[Sequence[Sequence[float]]]) -> dict:
  """Where the spread between runs lies, when each recipe's runs are grouped in units (a
  frozen G and the final Qs trained on it): ``recipes`` holds, per recipe, per unit, its runs'
  rates. The one-way random-effects ANOVA estimates, pooled over recipes so that each recipe
  keeps its own mean:

  - ``within_var``: the variance between runs of one unit, pooled over every unit with two
    runs or more (``within_df`` = the sum of their runs less one); None without such a unit;
  - ``between_var``: the variance of the units' true means beyond that, from each recipe with
    two units or more: the variance of its unit means less ``within_var`` times the mean of
    1 / (runs per unit), pooled with weights units - 1 (``between_df``). An unbiased estimate
    that can come out negative when the units differ less than their runs do (kept as is;
    ``between_sd`` is its square root clipped at 0); None without within_var or such a recipe.
  """
  within_ss, within_df, between, between_df = 0.0, 0, 0.0, 0
  for units in recipes:
    for runs in units:
      if not runs:
        raise ValueError('variance_components: a unit without runs')
      if len(runs) > 1:
        mean = sum(runs) / len(runs)
        within_ss += sum((x - mean) ** 2 for x in runs)
        within_df += len(runs) - 1
  within_var = within_ss / within_df if within_df else None
  for units in recipes:
    if len(units) > 1 and within_var is not None:
      means = [sum(runs) / len(runs) for runs in units]
      excess = mean_sd(means)[1] ** 2 - within_var * sum(1 / len(r) for r in units) / len(units)
      between += excess * (len(units) - 1)
      between_df += len(units) - 1
  between_var = between / between_df if between_df else None
  return {'within_var': within_var, 'within_df': within_df,
          'within_sd': None if within_var is None else math.sqrt(within_var),
          'between_var': between_var, 'between_df': between_df,
          'between_sd': None if between_var is None else math.sqrt(max(0.0, between_var))}
