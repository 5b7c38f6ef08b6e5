"""Learning-curve images from eval JSON files."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from rl_cyclegan import plotting


def _write_eval(run_dir, step, rates):
  os.makedirs(os.path.join(run_dir, 'eval'), exist_ok=True)
  results = {a: {'success_rate': r, 'ci95_low': r - 0.1, 'ci95_high': r + 0.1}
             for a, r in rates.items()}
  with open(os.path.join(run_dir, 'eval', f'eval_{step:08d}.json'), 'w') as f:
    json.dump({'step': step, 'results': results}, f)


def test_curves_are_read_in_step_order_and_drawn(tmp_path):
  run = str(tmp_path / 'run')
  _write_eval(run, 2000, {'sim': 0.5, 'real': 0.2})
  _write_eval(run, 1000, {'sim': 0.3, 'real': 0.1})
  curves = plotting.read_eval_curves(run)
  assert [p[:2] for p in curves['sim']] == [(1000.0, 0.3), (2000.0, 0.5)]
  assert [p[:2] for p in curves['real']] == [(1000.0, 0.1), (2000.0, 0.2)]
  path = str(tmp_path / 'curves.png')
  plotting.success_curves([('Sim-Only', run)], path, floors=[('random', 0.25)])
  image = np.asarray(Image.open(path))
  assert image.shape == (440, 720, 3)
  # Both series' colours appear (lines and markers were drawn), not just the white canvas.
  for color in plotting.COLORS[:2]:
    assert np.any(np.all(image == color, axis=-1)), color
  assert [n for n in os.listdir(tmp_path) if '.tmp-' in n] == []


def test_missing_or_malformed_eval_files_name_the_path(tmp_path):
  with pytest.raises(FileNotFoundError, match='no eval'):
    plotting.read_eval_curves(str(tmp_path))
  os.makedirs(tmp_path / 'eval')
  (tmp_path / 'eval' / 'eval_00000001.json').write_text('{"step": 1}')
  with pytest.raises(ValueError, match='eval_00000001.json'):
    plotting.read_eval_curves(str(tmp_path))


def test_more_series_than_colours_is_an_error_naming_them(tmp_path):
  series = [(f'run{i}', [(0.0, 0.5, 0.4, 0.6)]) for i in range(len(plotting.COLORS) + 1)]
  with pytest.raises(ValueError, match='run8'):
    plotting.line_chart(series, str(tmp_path / 'x.png'))
  assert os.listdir(tmp_path) == []
  plotting.line_chart(series[:-1], str(tmp_path / 'x.png'))  # one colour each: drawn
  assert os.listdir(tmp_path) == ['x.png']


def test_long_legend_labels_widen_the_image_and_are_drawn_whole(tmp_path):
  short = [('a', [(0.0, 0.5, 0.4, 0.6), (1.0, 0.6, 0.5, 0.7)])]
  long_name = 'Sim-Only, separate buffers, batch 64 in sim'
  path = str(tmp_path / 'x.png')
  plotting.line_chart(short, path)
  assert Image.open(path).size == (720, 440)
  plotting.line_chart([(long_name, short[0][1])], path)
  image = np.asarray(Image.open(path))
  font = plotting._font()
  assert image.shape[1] >= 720 - 190 + font.getlength(f'o {long_name}') + 16
  # The label's colour is drawn past the default 720 px canvas: it is not clipped.
  cols = np.nonzero(np.any(np.all(image == plotting.COLORS[0], axis=-1), axis=0))[0]
  assert cols.max() > 720 - 10


def test_more_runs_than_colours_are_drawn_one_panel_each_on_shared_axes(tmp_path):
  series = [(f'run{i}', [(1000.0 * (i + 1), 0.1 * i, 0.05 * i, 0.15 * i)]) for i in range(10)]
  path = str(tmp_path / 'panels.png')
  plotting.small_multiples(series, path, title='ten runs', columns=3, panel_size=(300, 200),
                           hlines=[('floor', 0.25), ('oracle', 0.5)])
  image = np.asarray(Image.open(path))
  # 4 rows of 3 panels under a header of the title and the 2 reference lines' legend.
  assert image.shape == (30 + 16 * 2 + 4 * 200, 3 * 300, 3)
  # Every panel draws its one run in the first colour; the 12th cell (none) stays white.
  blue = np.all(image == plotting.COLORS[0], axis=-1)
  head = 30 + 32
  for i in range(10):
    r, c = divmod(i, 3)
    assert blue[head + 200 * r:head + 200 * (r + 1), 300 * c:300 * (c + 1)].any(), i
  assert (image[head + 600:, 600:] == 255).all()
  with pytest.raises(ValueError, match='no series'):
    plotting.small_multiples([], str(tmp_path / 'none.png'))
  assert not os.path.exists(tmp_path / 'none.png')


def test_a_dot_plot_leaves_its_points_unjoined_under_category_ticks(tmp_path):
  """connect=False draws a series' points without the line between them (several measurements
  of one thing), and x_ticks replaces the numbered ticks."""
  series = [('runs', [(0.0, 0.2, 0.15, 0.25), (1.0, 0.8, 0.75, 0.85)])]
  kwargs = dict(x_range=(-0.5, 1.5), side_by_side=False, x_ticks=[(0.0, 'CycleGAN'),
                                                                  (1.0, 'oracle')])
  joined, dots = str(tmp_path / 'joined.png'), str(tmp_path / 'dots.png')
  plotting.line_chart(series, joined, **kwargs)
  plotting.line_chart(series, dots, connect=False, **kwargs)

  def coloured_in_middle(path):  # the series' colour halfway between its two points
    image = np.asarray(Image.open(path))
    mask = np.all(image == plotting.COLORS[0], axis=-1)
    cols = np.nonzero(mask.any(axis=0))[0]
    plot_cols = cols[cols < image.shape[1] - 200]  # not the legend
    middle = (plot_cols.min() + plot_cols.max()) // 2
    return mask[:, middle - 2:middle + 3].any()

  assert coloured_in_middle(joined) and not coloured_in_middle(dots)
  numbered = str(tmp_path / 'numbered.png')
  plotting.line_chart(series, numbered, connect=False, **{**kwargs, 'x_ticks': None})
  assert not np.array_equal(np.asarray(Image.open(numbered)), np.asarray(Image.open(dots)))
