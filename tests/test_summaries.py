"""Tests of the TensorBoard helpers and the Q mode-collapse monitor (paper Appendix A)."""

import functools
import glob
import logging
import os
import types

import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan.learners import rl_cyclegan as learner_lib
from rl_cyclegan.networks import discriminator as discriminator_lib
from rl_cyclegan.networks import generator as generator_lib
from rl_cyclegan.networks import q_network as q_network_lib
from rl_cyclegan.evaluation import summaries


def read_events(logdir):
  """{tag: [(step, value)]}: scalars as floats, images as (width, height, png bytes...)."""
  out = {}
  for path in sorted(glob.glob(os.path.join(logdir, 'events.out.tfevents.*'))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        out.setdefault(v.tag, []).append(
            (event.step, v.metadata.plugin_data.plugin_name, tf.make_ndarray(v.tensor)))
  return out


def loss_info(q_std=0.2, rl_scene=0.05, **overrides):
  values = {f: 0.5 for f in learner_lib.LossInfo._fields}
  values.update(q_std=q_std, rl_scene=rl_scene, **overrides)
  return learner_lib.LossInfo(**values)


def test_write_loss_summaries_groups_every_field(tmp_path):
  info = loss_info(q_x_double=float('nan'))  # as the GAN ablation reports it
  writer = tf.summary.create_file_writer(str(tmp_path))
  written = summaries.write_loss_summaries(info, step=7, writer=writer)
  writer.flush()
  events = read_events(str(tmp_path))
  expected = {('q/' if f.startswith(('q_', 'target_q')) else 'losses/') + f
              for f in learner_lib.LossInfo._fields} - {'q/q_x_double'}
  assert set(written) == expected
  assert set(events) == expected
  assert {'losses/cycle', 'losses/rl_scene', 'q/q_std', 'q/target_q_sim'} <= set(events)
  step, plugin, value = events['q/q_std'][0]
  assert (step, plugin, float(value)) == (7, 'scalars', pytest.approx(0.2))


def test_image_grid_layout_and_content():
  b, h, w = 2, 3, 4
  x = np.zeros((b, h, w, 3), np.uint8)
  y = np.full((b, h, w, 3), 100, np.uint8)
  y[1] = 200
  z = -np.ones((b, h, w, 3), np.float32)  # float [-1, 1] -> 0
  z[0] = 1.0  # -> 255
  grid = summaries.image_grid([x, y, z], padding=1, pad_value=7)
  assert grid.dtype == np.uint8
  assert grid.shape == (b * (h + 1) - 1, 3 * (w + 1) - 1, 3)
  # Row i = example i, column j = tensor j; cell (i, j) starts at (i * 4, j * 5).
  assert (grid[0:3, 0:4] == 0).all()
  assert (grid[0:3, 5:9] == 100).all() and (grid[4:7, 5:9] == 200).all()
  assert (grid[0:3, 10:14] == 255).all() and (grid[4:7, 10:14] == 0).all()
  assert (grid[3, :] == 7).all() and (grid[:, 4] == 7).all()  # padding
  with pytest.raises(ValueError, match='column 1'):
    summaries.image_grid([x, y[:1]])


TINY_NETS = dict(
    generator_fn=functools.partial(generator_lib.UNetGenerator, filters=(8, 16)),
    discriminator_fn=functools.partial(discriminator_lib.MultiScaleDiscriminator,
                                       filters=(8, 16)),
    q_network_fn=functools.partial(
        q_network_lib.GraspingQNetwork, stem_filters=8, tower_filters=(8,),
        state_action_fc_units=(16,), merged_filters=(8,), final_filters=(8,), fc_units=(8,)),
)


def test_write_cyclegan_images_with_a_learner(tmp_path):
  tf.random.set_seed(0)
  learner = learner_lib.RLCycleGANLearner(crop_size=(32, 32), **TINY_NETS)
  rng = np.random.default_rng(0)
  sim = rng.uniform(-1, 1, (6, 32, 32, 3)).astype(np.float32)
  real = rng.uniform(-1, 1, (6, 32, 32, 3)).astype(np.float32)
  paired = rng.integers(0, 256, (6, 32, 32, 3)).astype(np.uint8)
  writer = tf.summary.create_file_writer(str(tmp_path))
  grids = summaries.write_cyclegan_images(learner, sim, real, step=3, paired_real=paired,
                                          max_images=4, writer=writer)
  writer.flush()
  # sim2real: x | G(x) | F(G(x)) | true real(x); real2sim: y | F(y) | G(F(y)); 4 rows.
  assert grids['images/sim2real'].shape == (4 * 33 - 1, 4 * 33 - 1, 3)
  assert grids['images/real2sim'].shape == (4 * 33 - 1, 3 * 33 - 1, 3)
  np.testing.assert_array_equal(grids['images/sim2real'][:32, 3 * 33:], paired[0])
  events = read_events(str(tmp_path))
  for tag in ('images/sim2real', 'images/real2sim'):
    step, plugin, value = events[tag][0]
    assert (step, plugin) == (3, 'images')
    assert value[2][:4] == b'\x89PNG'  # [width, height, png]


def test_write_cyclegan_images_gan_ablation_has_no_f():
  identity = types.SimpleNamespace(
      generator_g=lambda x, training: x * 0.5, generator_f=None)
  sim = np.zeros((2, 8, 8, 3), np.uint8)
  grids = summaries.write_cyclegan_images(identity, sim, sim, step=0)
  assert set(grids) == {'images/sim2real'}
  assert grids['images/sim2real'].shape == (2 * 9 - 1, 2 * 9 - 1, 3)  # x | G(x)


def test_write_scene_metrics(tmp_path):
  writer = tf.summary.create_file_writer(str(tmp_path))
  written = summaries.write_scene_metrics(
      {'generator/mae': 12.5, 'identity/mae': 80.0, 'generator/edge_corr_robot': float('nan')},
      step=5, writer=writer)
  writer.flush()
  events = read_events(str(tmp_path))
  assert set(written) == set(events) == {'scene/generator/mae', 'scene/identity/mae'}
  assert float(events['scene/generator/mae'][0][2]) == 12.5


def test_q_collapse_monitor_fires_only_after_patience(caplog):
  monitor = summaries.QCollapseMonitor(min_q_std=0.01, patience=3, min_step=100,
                                       warmup_steps=0)
  # Untrained Q before min_step: uniform but not armed.
  assert not any(monitor.update(loss_info(q_std=1e-4, rl_scene=1e-7), s) for s in range(5))
  # Healthy Q: never fires, and arms the monitor.
  assert not any(monitor.update(loss_info(q_std=0.2, rl_scene=0.02), s) for s in range(5, 10))
  with caplog.at_level(logging.WARNING):
    fired = [monitor.update(loss_info(q_std=0.001, rl_scene=1e-5), s) for s in range(10, 15)]
  assert fired == [False, False, True, True, True]
  banners = [r for r in caplog.records if 'Q MODE COLLAPSE' in r.getMessage()]
  assert len(banners) == 1  # repeated every `patience` checks, not every check
  assert 'q_std=0.001' in banners[0].getMessage() and 'Appendix A' in banners[0].getMessage()
  # Recovery resets the count.
  assert not monitor.update(loss_info(q_std=0.1, rl_scene=0.01), 15)
  assert monitor.consecutive == 0
  assert not monitor.update(loss_info(q_std=0.001, rl_scene=1e-5), 16)


def test_q_collapse_monitor_ignores_low_spread_with_large_rl_scene():
  monitor = summaries.QCollapseMonitor(min_q_std=0.01, patience=2, max_rl_scene=0.01,
                                       min_step=0, warmup_steps=0)
  assert not any(monitor.update(loss_info(q_std=0.005, rl_scene=0.5), s) for s in range(5))
  assert [monitor.update(loss_info(q_std=0.005, rl_scene=1e-4), s) for s in range(2)] == [
      False, True]


def test_q_collapse_monitor_is_not_armed_during_warmup():
  """make demo's false alarm: Q's spread passes min_q_std once, then dips while it settles."""
  monitor = summaries.QCollapseMonitor(min_q_std=0.01, patience=2, min_step=10_000,
                                       warmup_steps=30)
  assert not monitor.update(loss_info(q_std=0.05, rl_scene=0.02), 1)  # healthy at first
  assert not any(monitor.update(loss_info(q_std=0.001, rl_scene=1e-5), s) for s in range(2, 30))
  assert not monitor.seen_healthy  # the early spread does not arm it
  assert not monitor.update(loss_info(q_std=0.05, rl_scene=0.02), 30)  # healthy after warmup
  assert [monitor.update(loss_info(q_std=0.001, rl_scene=1e-5), s) for s in (31, 32)] == [
      False, True]


def test_export_scalars_thins_each_tag_and_keeps_its_last_point(tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.evaluation import summaries as summaries_lib  # pylint: disable=g-import-not-at-top
  for sub, tag, n in (('train', 'losses/total', 50), ('eval', 'success_rate/real', 3)):
    writer = tf.summary.create_file_writer(str(tmp_path / sub))
    with writer.as_default():
      for step in range(n):
        tf.summary.scalar(tag, 0.5 * step, step=step)
    writer.close()
  counts = summaries_lib.export_scalars(str(tmp_path), str(tmp_path / 'scalars.json'),
                                        max_points=10)
  assert counts == {'train/losses/total': 10, 'eval/success_rate/real': 3}
  with open(tmp_path / 'scalars.json') as f:
    scalars = json.load(f)['scalars']
  assert scalars['train/losses/total'][0] == [0, 0.0]
  assert scalars['train/losses/total'][-1] == [49, 24.5]  # the last point is always kept
  assert scalars['eval/success_rate/real'] == [[0, 0.0], [1, 0.5], [2, 1.0]]


def test_scalars_are_read_with_the_digits_their_float32_holds(tmp_path):
  from rl_cyclegan.evaluation import summaries as summaries_lib  # pylint: disable=g-import-not-at-top
  values = [0.1, 0.23119935393333435, 1e-9, 123456789.0, float('-inf')]
  writer = tf.summary.create_file_writer(str(tmp_path))
  with writer.as_default():
    for step, value in enumerate(values):
      tf.summary.scalar('x', value, step=step)
  writer.close()
  read = [v for _, v in summaries_lib.read_scalars(str(tmp_path))['x']]
  assert np.array_equal(np.float32(read), np.float32(values))  # what the summary stored
  assert read[:4] == [0.1, 0.23119935, 1e-9, 123456790.0]  # not 0.10000000149011612


def test_a_report_with_an_unreadable_figure_names_it_and_writes_nothing(tmp_path):
  bad = tmp_path / 'curves.png'
  bad.write_text('not a png')
  with pytest.raises(ValueError, match=r"figure 'curves' at .*curves.png.* is not a readable PNG"):
    summaries.write_report(str(tmp_path / 'tb'), 'table1', 1, '# t', [('curves', str(bad))])
  assert not (tmp_path / 'tb').exists()
