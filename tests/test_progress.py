"""Tests for rl_cyclegan/progress.py: progress lines, their rate and ETA, on a fake clock."""
import io
import math
import re

import pytest
import tqdm.std

from rl_cyclegan import progress


class _Clock:

  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    return self.now


@pytest.fixture
def clock(monkeypatch):
  fake = _Clock()
  monkeypatch.setattr(tqdm.std, 'time', fake)  # tqdm reads its clock through this name
  return fake


def _eta_seconds(line):
  minutes, seconds = re.search(r'ETA (\d+):(\d+)', line).groups()
  return 60 * int(minutes) + int(seconds)


def _run(clock, bar, units, seconds_per_unit):
  for _ in range(units):
    clock.now += seconds_per_unit
    bar.update(1)


def test_lines_count_and_end_with_the_total(clock):
  stream = io.StringIO()
  bar = progress.Progress(20, 'collect', interval=5.0, stream=stream)
  _run(clock, bar, 20, 1.0)
  lines = stream.getvalue().splitlines()
  assert re.match(r'collect: 5/20 episodes, +1.00 episodes/s, ETA 00:15$', lines[0]), lines
  assert lines[-1].startswith('collect: 20/20 episodes'), lines  # the end, whatever the interval
  assert len(lines) == 4, lines  # one line per interval (5 s, at 1 episode/s: 5 or 6 episodes)


def test_successes_are_counted_from_episodes(clock):
  class Episode:
    def __init__(self, success):
      self.metadata = {'success': success}

  stream = io.StringIO()
  bar = progress.Progress(4, 'evaluate', interval=0.5, stream=stream)
  for success in (1, 0, 1, 1):
    clock.now += 1.0
    bar(Episode(success))
  assert bar.successes == 3 and bar.done == 4
  assert '4/4 episodes, 75.0% success' in stream.getvalue().splitlines()[-1]


def test_eta_follows_the_recent_rate_after_a_pause(clock):
  stream = io.StringIO()
  bar = progress.Progress(1000, 'collect', interval=5.0, stream=stream)
  _run(clock, bar, 100, 1.0)  # 1 episode/s
  clock.now += 3600.0  # an hour stopped (SIGSTOP, a shared machine)
  _run(clock, bar, 60, 1.0)  # 1 episode/s again, for a minute
  line = stream.getvalue().splitlines()[-1]
  assert re.match(r'collect: 1[56]\d/1000 episodes, +1.00 episodes/s', line), line
  # At the rate since the start (~160 episodes in 3,760 s) the ETA would be ~6 h; at the
  # recent rate it is ~840 s.
  assert abs(_eta_seconds(line) - 840) < 30, line
  _run(clock, bar, 140, 1.0)
  assert bar.rate == pytest.approx(300 / 3900.0, rel=0.01)  # the mean since the start


def test_resumed_work_counts_only_new_units_in_the_rate(clock):
  stream = io.StringIO()
  bar = progress.Progress(100, 'collect', interval=5.0, stream=stream, initial=60)
  _run(clock, bar, 20, 2.0)  # 0.5 episodes/s
  line = stream.getvalue().splitlines()[-1]
  done = int(re.match(r'collect: (\d+)/100', line).group(1))
  assert 60 < done <= 80 and '0.50 episodes/s' in line, line
  assert abs(_eta_seconds(line) - 2 * (100 - done)) <= 1, line


def test_recent_rate_is_the_median_of_the_last_intervals():
  recent = progress.RecentRate(window=3)
  assert recent.rate == 0 and math.isinf(recent.eta_seconds(10))
  assert recent.add(0, 100.0) == 0  # the first line starts the clock
  for t, count in ((110.0, 10), (1110.0, 20), (1120.0, 30)):  # 1/s, then a pause, then 1/s
    recent.add(count, t)
  assert recent.rate == pytest.approx(1.0)
  for t, count in ((1130.0, 50), (1140.0, 70)):  # 2/s for two intervals: the window's majority
    recent.add(count, t)
  assert recent.rate == pytest.approx(2.0) and recent.eta_seconds(30) == pytest.approx(15.0)


def test_format_seconds():
  assert progress.format_seconds(65) == '1m05s'
  assert progress.format_seconds(3700) == '1h01m'
  assert progress.format_seconds(-3) == '0m00s'
  assert progress.format_seconds(math.inf) == '?' and progress.format_seconds(math.nan) == '?'
