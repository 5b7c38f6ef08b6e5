"""Progress lines with rate and ETA for long work (collection, evaluation, training), via tqdm.

Runs here log to files (nohup, the Table 1 runner's stage logs), so progress is a line per
interval rather than a redrawn bar: tqdm does the counting, rate and ETA, ``_LineStream``
turns each of its refreshes into one plain line.

  Progress        counted work: 'label: 40/100 episodes[, 55.0% success], 2.10 episodes/s,
                  ETA 00:28' (recent rate); callable on an episode (counts successes), as
                  rollout expects
  RecentRate      the median rate of the last intervals between progress lines, for ETAs that
                  a pause or a resumed run's catch-up does not distort
  format_seconds  65 -> '1m05s', 3700 -> '1h01m'
  make_logger     '[name HH:MM:SS] message' lines on stderr
"""

import collections
import math
import re
import sys
import time
from typing import Callable, Optional

import numpy as np
import tqdm


def format_seconds(seconds) -> str:
  """65 -> '1m05s', 3700 -> '1h01m'; '?' when unknown (inf or nan)."""
  if not math.isfinite(seconds):
    return '?'
  seconds = int(max(0, seconds))
  return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m' if seconds >= 3600 else (
      f'{seconds // 60}m{seconds % 60:02d}s')


def make_logger(name: str) -> Callable[[str], None]:
  """A function printing '[name HH:MM:SS] message' to stderr."""
  def log(message):
    print(f'[{name} {time.strftime("%H:%M:%S")}] {message}', file=sys.stderr, flush=True)
  return log


_ESCAPES = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')  # tqdm's cursor moves for nested bars


class _LineStream:
  """A file for tqdm that writes each refresh as one line (no carriage returns)."""

  def __init__(self, stream):
    self._stream = stream

  def write(self, text):
    text = _ESCAPES.sub('', text).replace('\r', '').strip('\n')
    if text.strip():
      self._stream.write(text + '\n')

  def flush(self):
    self._stream.flush()


class RecentRate:
  """Units per second over the last ``window`` intervals between progress lines: the median of
  their rates, not the average since the start. One slow interval (a stopped process) or a
  resumed run's fast catch-up then does not set the ETA for hours; a lasting change of speed
  (a machine shared for a while) takes over after about ``window / 2`` lines."""

  def __init__(self, window: int = 9):
    self._rates = collections.deque(maxlen=int(window))
    self._last = None  # (time, count) of the last line

  def add(self, count: float, now: float) -> float:
    """Records a line at ``now`` with ``count`` units done; returns the interval's rate (0 for
    the first line, which only starts the clock)."""
    rate = 0.0
    if self._last is not None and now > self._last[0]:
      rate = (count - self._last[1]) / (now - self._last[0])
      self._rates.append(rate)
    self._last = (now, count)
    return rate

  @property
  def rate(self) -> float:
    """The median recent rate (0 before any interval)."""
    return float(np.median(self._rates)) if self._rates else 0.0

  def eta_seconds(self, remaining: float) -> float:
    """Seconds for ``remaining`` units at the median recent rate (inf before any)."""
    return remaining / self.rate if self.rate > 0 else float('inf')


class _Bar(tqdm.tqdm):
  """tqdm whose printed rate and ETA are ``RecentRate``'s over its lines."""

  def __init__(self, *args, **kwargs):
    self.recent = RecentRate()
    super().__init__(*args, **kwargs)
    self.recent.add(self.n, self._time())  # starts the clock at the start (or the resume)
    self._line_n = self.n

  @property
  def format_dict(self):
    values = super().format_dict
    if self._line_n is not None and self.n != self._line_n:  # None: still in tqdm's __init__
      self._line_n = self.n
      self.recent.add(self.n, self._time())
    if self.recent.rate > 0:
      values['rate'] = self.recent.rate
    return values

  _line_n = None


class Progress:
  """Progress of ``total`` units of work: a line at most every ``interval`` seconds and at the
  end, with done / total, the recent rate (``RecentRate``; ``initial`` units were done before
  the start, e.g. by a run that was killed) and the ETA at that rate.

  Calling it with an episode (``rollout.run_episodes``' progress protocol) counts one unit and
  the episode's success.
  """

  def __init__(self, total: int, label: str = 'episodes', interval: float = 5.0,
               stream=None, initial: int = 0, unit: str = 'episodes'):
    self.successes = 0
    self._count_successes = False
    self._bar = _Bar(
        total=int(total), initial=int(initial), desc=label, unit=f' {unit}',
        file=_LineStream(stream or sys.stderr), mininterval=float(interval),
        delay=float(interval), smoothing=0.0, ascii=True, dynamic_ncols=False,
        bar_format='{desc}: {n}/{total}{unit}{postfix}, {rate_noinv_fmt}, ETA {remaining}')
    self._bar.miniters = 0  # time-based only (tqdm would otherwise learn a step count)

  @property
  def total(self) -> int:
    return self._bar.total

  @property
  def done(self) -> int:
    return self._bar.n

  @property
  def rate(self) -> float:
    """Units per second since the start (0 before any unit)."""
    elapsed = self._bar.format_dict['elapsed']
    return (self._bar.n - self._bar.initial) / elapsed if elapsed > 0 else 0.0

  def update(self, n: int = 1):
    if self._count_successes:
      self._bar.set_postfix_str(
          f'{100.0 * self.successes / max(self.done + n, 1):.1f}% success', refresh=False)
    self._bar.update(n)
    if self._bar.n >= self._bar.total and self._bar.last_print_n != self._bar.n:
      self._bar.refresh()  # the last line, whatever the interval

  def __call__(self, episode=None):
    self._count_successes = True
    if episode is not None and episode.metadata.get('success'):
      self.successes += 1
    self.update(1)

  def line(self) -> str:
    """The current progress line."""
    return str(self._bar)

  def close(self):
    self._bar.close()

  def __del__(self):
    bar = getattr(self, '_bar', None)
    if bar is not None:
      bar.disable = True  # no extra line when garbage-collected
