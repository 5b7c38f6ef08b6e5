"""Learning-curve images with Pillow only (the pinned stack has no matplotlib).

``success_curves(runs, path)`` draws grasp success against train step for several runs and
appearances from the ``eval/eval_<step>.json`` files training writes, with the 95% Wilson
intervals as bands and the floors as dashed lines. ``tools/plot_curves.py`` is its binary.
"""

import glob
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

from PIL import Image, ImageDraw, ImageFont

from rl_cyclegan import fileio

# Distinguishable on white: the Okabe-Ito palette without its yellow (too light on white),
# plus Dark2's violet, so eight series (four runs x two appearances) get eight colours.
COLORS = ((0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (230, 159, 0),
          (86, 180, 233), (0, 0, 0), (117, 112, 179))

Point = Tuple[float, float, float, float]  # x, y, y_low, y_high


def _font(size: int = 12):
  """Pillow's bundled TrueType font (Pillow >= 10.1 with FreeType), else its bitmap font.

  The bitmap font's space is one pixel wide ('grasp success' reads 'graspsuccess').
  """
  try:
    return ImageFont.load_default(size=size)
  except (TypeError, ImportError, OSError):  # older Pillow or no FreeType
    return ImageFont.load_default()


def read_eval_curves(run_dir: str) -> Dict[str, List[Point]]:
  """{appearance: [(step, success, ci_low, ci_high), ...]} from ``run_dir/eval/eval_*.json``.

  Raises FileNotFoundError naming the directory when it holds no evaluation files.
  """
  paths = sorted(glob.glob(os.path.join(run_dir, 'eval', 'eval_*.json')))
  if not paths:
    raise FileNotFoundError(f'{run_dir!r}: no eval/eval_<step>.json files (written by '
                            'tools/train_qtopt.py at every evaluation)')
  curves: Dict[str, List[Point]] = {}
  for path in paths:
    with open(path) as f:
      data = json.load(f)
    try:
      step = float(data['step'])
      for appearance, r in data['results'].items():
        curves.setdefault(appearance, []).append(
            (step, r['success_rate'], r['ci95_low'], r['ci95_high']))
    except (KeyError, TypeError) as e:
      raise ValueError(f'{path}: expected {{"step", "results": {{appearance: {{success_rate, '
                       f'ci95_low, ci95_high}}}}}}, missing {e}') from e
  return {k: sorted(v) for k, v in curves.items()}


def line_chart(series: Sequence[Tuple[str, Sequence[Point]]], path: str, title: str = '',
               x_label: str = 'train step', y_label: str = 'grasp success',
               y_range: Tuple[float, float] = (0.0, 1.0),
               hlines: Sequence[Tuple[str, float]] = (), size=(720, 440),
               x_range: Optional[Tuple[float, float]] = None, x_format: str = ',.0f',
               side_by_side: bool = True,
               x_ticks: Optional[Sequence[Tuple[float, str]]] = None,
               connect: bool = True) -> str:
  """Draws labelled series (points with error bands) and dashed reference lines to ``path``.

  The x axis spans ``x_range``, by default 0 to the largest x (train steps); its ticks are
  formatted with ``x_format``. A series of one point is a labelled point (a scatter plot:
  pass ``side_by_side=False``, which draws each point at its own x rather than setting series
  evaluated at the same steps a few pixels apart). ``x_ticks`` [(x, label)] replaces the
  numbered ticks (categories on x); without ``connect`` a series' points are not joined (a dot
  plot: several measurements of one thing).

  Each series gets its own colour; more series than ``COLORS`` is a ValueError. The image is
  ``size`` or wider: the legend column grows to fit its longest label.

  The image is written to a temporary name and renamed. Returns ``path``.
  """
  image = _line_chart_image(series, title, x_label, y_label, y_range, hlines, size, x_range,
                            x_format, side_by_side, x_ticks=x_ticks, connect=connect)
  return fileio.write_atomic(path, lambda f: image.save(f, format='PNG'), mode='wb')


def small_multiples(series: Sequence[Tuple[str, Sequence[Point]]], path: str, title: str = '',
                    columns: int = 3, panel_size=(520, 300), **kwargs) -> str:
  """One ``line_chart`` panel per series, in a grid of ``columns``, on shared axes (x from 0
  to the largest x of any series unless ``x_range`` is given), under ``title``: for more runs
  than one chart has colours. ``kwargs``: line_chart's (hlines, labels, ranges).
  Written like line_chart; returns ``path``."""
  if not series:
    raise ValueError(f'small_multiples: no series to draw to {path!r}')
  xs = [p[0] for _, points in series for p in points] or [1.0]
  kwargs.setdefault('x_range', (0.0, max(max(xs), 1.0)))
  hlines = kwargs.get('hlines', ())
  panels = [_line_chart_image([(name, points)], title=name, y_label='', size=panel_size,
                              legend=False, **kwargs) for name, points in series]
  width, height = panel_size
  rows = -(-len(panels) // columns)
  head = 30 + 16 * len(hlines)  # the title, then the reference lines' legend, once
  image = Image.new('RGB', (width * min(columns, len(panels)), head + rows * height), 'white')
  draw = ImageDraw.Draw(image)
  draw.text((8, 6), title, fill='black', font=_font(14))
  for j, (name, _) in enumerate(hlines):
    draw.text((8, 28 + 16 * j), f'-- {name}', fill=(120, 120, 120), font=_font())
  for i, panel in enumerate(panels):
    image.paste(panel, ((i % columns) * width, head + (i // columns) * height))
  return fileio.write_atomic(path, lambda f: image.save(f, format='PNG'), mode='wb')


def _line_chart_image(series, title='', x_label='train step', y_label='grasp success',
                      y_range=(0.0, 1.0), hlines=(), size=(720, 440), x_range=None,
                      x_format=',.0f', side_by_side=True, legend=True, x_ticks=None,
                      connect=True) -> Image.Image:
  """``line_chart``'s drawing, as an image; without ``legend`` no legend column (a panel of
  ``small_multiples``, whose title names its one series)."""
  if len(series) > len(COLORS):
    raise ValueError(f'{len(series)} series ({", ".join(n for n, _ in series)}) but '
                     f'{len(COLORS)} distinguishable colours: plot fewer runs or appearances')
  font = _font()
  entries = [f'-- {name}' for name, _ in hlines] + [f'o {name}' for name, _ in series]
  # The legend column is as wide as its longest entry; the plot keeps size[0] - 254 px.
  right = max([190] + [int(font.getlength(t)) + 16 for t in entries]) if legend else 36
  left, top, bottom = 64, 34, 46
  width, height = size[0] - 190 + right if legend else size[0], size[1]
  plot_w, plot_h = width - left - right, height - top - bottom
  image = Image.new('RGB', (width, height), 'white')
  draw = ImageDraw.Draw(image)
  xs = [p[0] for _, points in series for p in points] or [0.0, 1.0]
  x_min, x_max = x_range or (0.0, max(max(xs), 1.0))
  y_min, y_max = y_range

  def to_px(x, y):
    px = left + (x - x_min) / (x_max - x_min) * plot_w
    py = top + (1.0 - (min(max(y, y_min), y_max) - y_min) / (y_max - y_min)) * plot_h
    return px, py

  # Grid and axes.
  for i in range(6):
    y = y_min + (y_max - y_min) * i / 5
    _, py = to_px(0, y)
    draw.line([(left, py), (left + plot_w, py)], fill=(225, 225, 225))
    draw.text((8, py - 6), f'{100 * y:.0f}%' if y_max <= 1.0 else f'{y:g}', fill='black',
              font=font)
  if x_ticks is None:
    x_ticks = [(x, format(x, x_format)) for x in
               (x_min + (x_max - x_min) * i / 5 for i in range(6))]
  for x, text in x_ticks:
    px, _ = to_px(x, y_min)
    draw.line([(px, top), (px, top + plot_h)], fill=(235, 235, 235))
    draw.text((px - (14 if len(text) < 8 else font.getlength(text) / 2), top + plot_h + 6),
              text, fill='black', font=font)
  draw.rectangle([left, top, left + plot_w, top + plot_h], outline='black')
  draw.text((left + plot_w // 2 - 30, height - 20), x_label, fill='black', font=font)
  draw.text((8, 10), f'{y_label}   {title}', fill='black', font=font)

  legend_y = top
  for j, (name, value) in enumerate(hlines):
    color = (120, 120, 120)
    _, py = to_px(0, value)
    for x0 in range(left, left + plot_w, 12):
      draw.line([(x0, py), (min(x0 + 6, left + plot_w), py)], fill=color, width=1)
    if legend:
      draw.text((left + plot_w + 8, legend_y), f'-- {name}', fill=color, font=font)
    legend_y += 16
  def dodge(j):  # series evaluated at the same steps stand side by side, 5 px apart
    return 5.0 * (j - (len(series) - 1) / 2.0) if side_by_side else 0.0

  for j, (name, points) in enumerate(series):  # every error bar first: none hides a point
    band = tuple(int(255 - 0.25 * (255 - c)) for c in COLORS[j])
    for x, _, lo, hi in points:
      (px, plo), (_, phi) = to_px(x, lo), to_px(x, hi)
      draw.line([(px + dodge(j), plo), (px + dodge(j), phi)], fill=band, width=5)
  for j, (name, points) in enumerate(series):
    color = COLORS[j]
    pts = [(px + dodge(j), py) for px, py in (to_px(x, y) for x, y, _, _ in points)]
    if connect and len(pts) > 1:
      draw.line(pts, fill=color, width=2)
    for px, py in pts:
      draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=color)
    if legend:
      draw.text((left + plot_w + 8, legend_y), f'o {name}', fill=color, font=font)
    legend_y += 16
  return image


def success_curves(runs: Sequence[Tuple[str, str]], path: str, title: str = '',
                   floors: Sequence[Tuple[str, float]] = (),
                   appearances: Optional[Sequence[str]] = None) -> str:
  """Success vs train step for ``runs`` = [(label, run_dir)], one series per appearance."""
  series = []
  for label, run_dir in runs:
    for appearance, points in sorted(read_eval_curves(run_dir).items()):
      if appearances is None or appearance in appearances:
        series.append((f'{label} in {appearance}', points))
  return line_chart(series, path, title=title, hlines=floors)
