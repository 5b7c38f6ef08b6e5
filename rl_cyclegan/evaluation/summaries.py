"""TensorBoard summaries for RL-CycleGAN and the Q mode-collapse monitor (paper Appendix A).

Appendix A: training has converged when "the simulation-to-real images look realistic, the
cycled images look reasonable with a reasonably low L_cyc, both Q_sim and Q_real perform well
along with a reasonably low L_RL-scene", and RL-CycleGAN "might experience a particular mode of
collapse, where Q outputs incorrect, uniform Q-values that give a spuriously low L_RL-scene".
This module writes what a reader needs to check those conditions:

  losses/<field>, q/<field>     every LossInfo field (``write_loss_summaries``)
  images/sim2real               rows = examples; columns x | G(x) | F(G(x)) [| true real(x)]
  images/real2sim               rows = examples; columns y | F(y) | G(F(y))
  scene/<generator|identity>/<metric>   paired-render metrics (``scene_metrics.py``)
  <name>/text, <name>/<figure>, <name>/<scalar>   a results report (``write_report``: Table 1)

and ``QCollapseMonitor`` flags the collapse. Every writer uses the default summary writer
(``with writer.as_default():``) unless ``writer`` is given.
"""

import contextlib
import logging
import math
import sys
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from rl_cyclegan import specs

# LossInfo fields written under q/ (the rest go under losses/).
_Q_PREFIXES = ('q_', 'target_q')


def _writer_scope(writer):
  return writer.as_default() if writer is not None else contextlib.nullcontext()


def _finite_scalar(value):
  value = float(np.asarray(value))
  return value if math.isfinite(value) else None


def loss_summary_tag(field: str) -> str:
  """'q_std' -> 'q/q_std', 'cycle' -> 'losses/cycle'."""
  return f'q/{field}' if field.startswith(_Q_PREFIXES) else f'losses/{field}'


def write_loss_summaries(loss_info, step, writer=None):
  """Writes every field of a LossInfo namedtuple as a scalar (losses/... or q/...).

  Non-finite values are skipped: the learner reports NaN for the Q-values an ablation does not
  compute (e.g. q_x_double without F), which would only break TensorBoard's plots.
  Returns the {tag: value} written.
  """
  written = {}
  with _writer_scope(writer):
    for field, value in zip(loss_info._fields, loss_info):
      value = _finite_scalar(value)
      if value is None:
        continue
      tag = loss_summary_tag(field)
      tf.summary.scalar(tag, value, step=step)
      written[tag] = value
  return written


def _to_uint8(images):
  images = tf.convert_to_tensor(images)
  if images.dtype == tf.uint8:
    return images
  return specs.to_uint8_image(images)  # float [-1, 1] -> uint8


def image_grid(columns: Sequence, padding: int = 1, pad_value: int = 255):
  """One uint8 image [rows * (h + p) - p, cols * (w + p) - p, 3] from image columns.

  Args:
    columns: a list of [B, h, w, 3] tensors (uint8, or float in [-1, 1]); the i-th row of the
      grid shows example i, the j-th column the j-th tensor (e.g. x | G(x) | F(G(x))).
    padding: p, pixels of ``pad_value`` between cells.
    pad_value: uint8 value of the padding.
  """
  if not columns:
    raise ValueError('image_grid needs at least one column')
  columns = [_to_uint8(c) for c in columns]
  shape = columns[0].shape
  for j, c in enumerate(columns):
    if c.shape.rank != 4 or c.shape != shape:
      raise ValueError(f'image_grid: column {j} has shape {c.shape.as_list()}, expected '
                       f'{shape.as_list()} like column 0 ([B, h, w, 3])')
  rows, h, w = int(shape[0]), int(shape[1]), int(shape[2])
  grid = np.full([rows * (h + padding) - padding, len(columns) * (w + padding) - padding, 3],
                 pad_value, np.uint8)
  for j, c in enumerate(columns):
    c = c.numpy()
    for i in range(rows):
      top, left = i * (h + padding), j * (w + padding)
      grid[top:top + h, left:left + w] = c[i]
  return grid


def _call(network, images):
  return network(images, training=False)


def write_cyclegan_images(learner, sim_images, real_images, step, paired_real=None,
                          max_images=4, writer=None):
  """Writes the sim->real and real->sim image grids (float [-1, 1] shown as uint8).

  Args:
    learner: has ``generator_g`` (sim->real) and ``generator_f`` (real->sim, None in the GAN
      ablation), called with ``training=False``.
    sim_images: x, [B, h, w, 3] float [-1, 1] (or uint8).
    real_images: y, [B, h, w, 3] float [-1, 1] (or uint8); ignored without F.
    step: summary step.
    paired_real: optional true real renders of x (paired set, evaluation only), [B, h, w, 3],
      shown as the last column of the sim grid.
    max_images: rows per grid.

  Returns the {tag: grid uint8 [H, W, 3]} written: 'images/sim2real' (x | G(x) | F(G(x)) |
  true real(x)) and, when F exists, 'images/real2sim' (y | F(y) | G(F(y))).
  """
  def prepare(images):
    images = tf.convert_to_tensor(images)[:max_images]
    if images.dtype == tf.uint8:
      images = specs.to_float_image(images)
    return tf.cast(images, tf.float32)

  x = prepare(sim_images)  # [b, h, w, 3]
  g, f = learner.generator_g, learner.generator_f
  g_x = _call(g, x)  # [b, h, w, 3]
  sim_columns = [x, g_x]
  if f is not None:
    sim_columns.append(_call(f, g_x))  # F(G(x))
  if paired_real is not None:
    sim_columns.append(prepare(paired_real))
  grids = {'images/sim2real': image_grid(sim_columns)}
  if f is not None:
    y = prepare(real_images)  # [b, h, w, 3]
    f_y = _call(f, y)
    grids['images/real2sim'] = image_grid([y, f_y, _call(g, f_y)])
  with _writer_scope(writer):
    for tag, grid in grids.items():
      tf.summary.image(tag, grid[None], step=step, max_outputs=1)
  return grids


def write_scene_metrics(metrics, step, prefix='scene', writer=None):
  """Writes {name: value} (e.g. from scene_metrics.evaluate_generator) as prefix/name scalars.

  Non-finite values (a metric with no pixels to measure) are skipped. Returns {tag: value}.
  """
  written = {}
  with _writer_scope(writer):
    for name, value in sorted(metrics.items()):
      value = _finite_scalar(value)
      if value is None:
        continue
      tag = f'{prefix}/{name}' if prefix else name
      tf.summary.scalar(tag, value, step=step)
      written[tag] = value
  return written


_APPENDIX_A = (
    'Paper Appendix A: "Depending on the relative loss weights, lambda, RL-CycleGAN might '
    'experience a particular mode of collapse, where Q outputs incorrect, uniform Q-values that '
    'give a spuriously low L_RL-scene. This mode collapse can be caught by monitoring '
    'performance of Q during training and tuning lambda appropriately." Check Q_sim/Q_real '
    'grasp success in the simulator and consider a lower rl_scene_weight (Table 5 uses 10).')


class QCollapseMonitor:
  """Flags Appendix A's mode collapse: uniform Q-values with a spuriously small L_RL-scene.

  ``update`` counts consecutive checks with ``loss_info.q_std < min_q_std`` and
  ``loss_info.rl_scene < max_rl_scene``. After ``patience`` such checks in a row it returns True
  and logs a warning banner; it keeps returning True while the condition holds and repeats the
  banner every ``patience`` checks. A healthy check resets the count (logged as a recovery).

  An untrained Q-network is uniform too (measured: q_std ~ 1e-4 in the first steps of the
  default 64x64 learner), so the monitor is armed only once Q has been healthy
  (q_std >= min_q_std) at some check, or from ``min_step`` on (to also catch a Q that never
  spreads its values). Before ``warmup_steps`` it is not armed at all: in the first steps a
  Q-network's spread moves by itself (a fresh or warm-started Q passes q_std >= min_q_std once,
  then dips below it while the learner settles: a false alarm in the first 30 steps of
  ``make demo``).

  q_std is the std of all Q-values (probabilities in [0, 1]) of the six Section-4 images in a
  batch. Uniform Q-values make L_RL-scene small by themselves: each of the six Q vectors
  appears in two of eq. 4's six MSE terms and (a - b)^2 <= 2 (a - m)^2 + 2 (b - m)^2, so
  L_RL-scene <= 24 q_std^2 (2.4e-3 at q_std = 0.01). The default ``max_rl_scene`` (0.01) is
  therefore a loose guard; the decisive test is q_std.
  """

  def __init__(self, min_q_std: float = 0.01, patience: int = 10, max_rl_scene: float = 0.01,
               min_step: int = 10000, logger: Optional[logging.Logger] = None,
               warmup_steps: int = 1000):
    """Args:
      min_q_std: q_std below this is "uniform" (Q-values are probabilities in [0, 1]).
      patience: consecutive suspicious checks before the alarm.
      max_rl_scene: L_RL-scene (unweighted) below this is "small" (see the class docstring).
      min_step: train step from which the monitor is armed even if Q was never healthy.
      logger: where the banner goes (default: this module's logger).
      warmup_steps: train steps before the monitor may arm at all.
    """
    if patience < 1:
      raise ValueError(f'patience must be >= 1, got {patience}')
    self.min_q_std = float(min_q_std)
    self.patience = int(patience)
    self.max_rl_scene = float(max_rl_scene)
    self.min_step = int(min_step)
    self.warmup_steps = int(warmup_steps)
    self.consecutive = 0
    self.collapsed = False
    self.seen_healthy = False
    self._logger = logger or logging.getLogger(__name__)

  def update(self, loss_info, step) -> bool:
    """Checks one LossInfo; True while the collapse has held for >= patience checks."""
    step = int(np.asarray(step))
    q_std = float(np.asarray(loss_info.q_std))
    rl_scene = float(np.asarray(loss_info.rl_scene))
    if step < self.warmup_steps:
      return False
    if math.isfinite(q_std) and q_std >= self.min_q_std:
      self.seen_healthy = True
    armed = self.seen_healthy or step >= self.min_step
    suspicious = (armed and math.isfinite(q_std) and q_std < self.min_q_std
                  and rl_scene < self.max_rl_scene)
    if not suspicious:
      if self.collapsed:
        self._logger.warning('Q mode collapse over at step %d: q_std=%.4g, rl_scene=%.4g',
                             step, q_std, rl_scene)
      self.consecutive = 0
      self.collapsed = False
      return False
    self.consecutive += 1
    if self.consecutive >= self.patience:
      self.collapsed = True
      if (self.consecutive - self.patience) % self.patience == 0:
        self._logger.warning(self._banner(loss_info, step, q_std, rl_scene))
    return self.collapsed

  def _banner(self, loss_info, step, q_std, rl_scene):
    fields = ', '.join(f'{k}={float(np.asarray(getattr(loss_info, k))):.4g}'
                       for k in ('q_x', 'q_x_prime', 'q_y', 'target_q_sim', 'target_q_real',
                                 'rl_sim', 'rl_real')
                       if hasattr(loss_info, k))
    line = '!' * 100
    return (f'\n{line}\n!!! Q MODE COLLAPSE SUSPECTED at step {step}: q_std={q_std:.4g} < '
            f'{self.min_q_std:g} and rl_scene={rl_scene:.4g} < {self.max_rl_scene:g} for '
            f'{self.consecutive} consecutive checks (patience {self.patience}).\n'
            f'!!! {fields}\n!!! {_APPENDIX_A}\n{line}')


class _RecordingHandler(logging.Handler):
  """Keeps the messages of a logger (the collapse banners, written as text summaries)."""

  def __init__(self):
    super().__init__()
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


def collapse_logger():
  """A private logger: the monitor's banners go to stderr and to a recording handler."""
  logger = logging.Logger('rl_cyclegan.q_collapse')  # not registered: no shared handlers
  recorder = _RecordingHandler()
  logger.addHandler(recorder)
  logger.addHandler(logging.StreamHandler(sys.stderr))
  return logger, recorder


# ----------------------------------------------------------------------------- exporting scalars

SCALARS_FILE = 'scalars.json'


def _float32(value) -> float:
  """A float32 summary value as the shortest float that reads back as the same float32 (its
  float64 value would print 17 digits where 8 or fewer hold all it has)."""
  return float(str(np.float32(value)))


def read_scalars(log_dir: str) -> dict:
  """{tag: [[step, value], ...]} of every scalar in the event files under ``log_dir``
  (summaries store float32: each value is written with the digits its float32 holds)."""
  import glob  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  out = {}
  for path in sorted(glob.glob(os.path.join(log_dir, '**', 'events.out.tfevents.*'),
                               recursive=True)):
    prefix = os.path.relpath(os.path.dirname(path), log_dir).replace(os.sep, '/')
    prefix = '' if prefix == '.' else prefix + '/'
    try:
      for event in tf.compat.v1.train.summary_iterator(path):
        for v in event.summary.value:
          if v.HasField('simple_value'):
            value = _float32(v.simple_value)
          elif v.HasField('tensor') and not v.tensor.tensor_shape.dim and (
              v.metadata.plugin_data.plugin_name in ('scalars', '')):
            value = _float32(tf.make_ndarray(v.tensor))
          else:
            continue
          out.setdefault(prefix + v.tag, []).append([int(event.step), value])
    except tf.errors.DataLossError:
      pass  # the last record of a killed writer: the rest of the file is read
  return {tag: sorted(points) for tag, points in out.items()}


def export_scalars(run_dir: str, path: str, max_points: int = 400) -> dict:
  """Writes the run's TensorBoard scalars, at most ``max_points`` per tag (evenly thinned,
  the last point kept), as JSON to ``path``: a small file to commit when the event files
  stay on the training machine. Returns {tag: number of points written}."""
  from rl_cyclegan import fileio  # pylint: disable=g-import-not-at-top
  scalars = read_scalars(run_dir)
  thinned = {}
  for tag, points in scalars.items():
    stride = max(1, math.ceil((len(points) - 1) / max(1, max_points - 1)))
    kept = points[:-1][::stride] + [points[-1]] if len(points) > max_points else points
    thinned[tag] = kept
  fileio.write_json_atomic(path, {'source': run_dir, 'max_points': max_points,
                                  'scalars': thinned})
  return {tag: len(points) for tag, points in thinned.items()}


def write_report(logdir: str, name: str, step: int, markdown: str,
                 figures: Sequence = (), scalars: Optional[dict] = None) -> str:
  """A results report for TensorBoard: ``markdown`` (its Text dashboard renders the tables) as
  ``<name>/text``, each PNG of ``figures`` [(tag, path)] as ``<name>/<tag>`` and each
  ``scalars`` {tag: value} as ``<name>/<tag>``, at ``step``, in a new event file under
  ``logdir``. A figure that cannot be read is a ValueError naming it. Returns ``logdir``."""
  images = []
  for tag, path in figures:
    try:
      images.append((tag, tf.io.decode_png(tf.io.read_file(path), channels=3)))
    except (tf.errors.OpError, ValueError) as e:
      raise ValueError(f'write_report: figure {tag!r} at {path!r} is not a readable PNG: '
                       f'{e}') from e
  writer = tf.summary.create_file_writer(logdir)
  with writer.as_default():
    tf.summary.text(f'{name}/text', markdown, step=step)
    for tag, image in images:
      tf.summary.image(f'{name}/{tag}', image[None], step=step)
    for tag, value in (scalars or {}).items():
      value = _finite_scalar(value)
      if value is not None:
        tf.summary.scalar(f'{name}/{tag}', value, step=step)
  writer.close()
  return logdir
