"""Progress lines with rate and ETA for long work (collection, evaluation, training), via tqdm.

Runs here log to files (nohup, the Table 1 runner's stage logs), so progress is a line per
interval rather than a redrawn bar: tqdm does the counting, rate and ETA, ``_LineStream``
turns each of its refreshes into one plain line.

  Progress        counted work: 'label: 40/100 episodes[, 55.0% success], 2.10 episodes/s,
                  ETA 00:28'; callable on an episode (counts successes), as rollout expects
  format_seconds  65 -> '1m05s', 3700 -> '1h01m'
  make_logger     '[name HH:MM:SS] message' lines on stderr
"""

import math
import re
import sys
import time
from typing import Callable, Optional

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


class Progress:
  """Progress of ``total`` units of work: a line at most every ``interval`` seconds and at the
  end, with done / total, the rate since the start (``initial`` units were done before it,
  e.g. by a run that was killed) and the ETA at that rate.

  Calling it with an episode (``rollout.run_episodes``' progress protocol) counts one unit and
  the episode's success.
  """

  def __init__(self, total: int, label: str = 'episodes', interval: float = 5.0,
               stream=None, initial: int = 0, unit: str = 'episodes'):
    self.successes = 0
    self._count_successes = False
    self._bar = tqdm.tqdm(
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
