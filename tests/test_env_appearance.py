"""Appearances: paired renders, stability of 'real', variation of 'randomized', the gap knob."""

import colorsys

import numpy as np
import pytest

from rl_cyclegan.envs import appearance
from rl_cyclegan.envs import grasping

SIZE = (48, 60)
# Mean absolute sim-vs-real pixel difference at real_gap=1, measured at 48x48 over 6 seeds:
# 85.4 .. 85.9 (on 0..255). real_gap=0.5 gave 30.7 and real_gap=0 gave 0.5.
MIN_SIM_REAL_DIFF = 50.0


def test_unknown_appearance_lists_valid_names():
  with pytest.raises(ValueError, match="'sim', 'real', 'randomized'"):
    grasping.GraspingEnv(appearance='photoreal')
  with pytest.raises(ValueError, match='real_gap'):
    appearance.make_appearance('real', real_gap=1.5)


def test_paired_render_is_aligned_different_and_does_not_disturb_episode():
  env = grasping.GraspingEnv(appearance='sim', render_size=SIZE, seed=2)
  twin = grasping.GraspingEnv(appearance='sim', render_size=SIZE, seed=2)
  env.reset()
  twin.reset()
  out = env.render_paired(('sim', 'real', 'randomized'))
  for name in ('sim', 'real', 'randomized'):
    assert out[name].shape == SIZE + (3,) and out[name].dtype == np.uint8
  seg = out['segmentation']
  assert seg.shape == SIZE
  # Robot, tray and all objects are in view.
  assert {env._kuka_uid, env._tray_uid} | set(env._object_uids) <= set(np.unique(seg))
  # Geometry is shared: rendering real first gives the same segmentation and depth.
  again = env.render_paired(('real', 'sim'))
  np.testing.assert_array_equal(again['segmentation'], seg)
  np.testing.assert_array_equal(again['depth'], out['depth'])
  np.testing.assert_array_equal(again['sim'], out['sim'])
  diff = np.abs(out['sim'].astype(np.float32) - out['real'].astype(np.float32)).mean()
  assert diff > MIN_SIM_REAL_DIFF, diff
  # The episode goes on exactly as in the twin that never rendered paired images.
  action = np.array([0.5, -0.5, 0, 0, 1, 0, 0, 0], np.float32)
  np.testing.assert_array_equal(env.step(action).observation['image'],
                                twin.step(action).observation['image'])


def test_real_is_fixed_across_instances_and_hard():
  a = grasping.GraspingEnv(appearance='real', render_size=SIZE, seed=5)
  b = grasping.GraspingEnv(appearance='real', render_size=SIZE, seed=5)
  np.testing.assert_array_equal(a.reset().observation['image'], b.reset().observation['image'])
  # Same state, paired render from a sim env: identical 'real' pixels (noise keyed by seed).
  c = grasping.GraspingEnv(appearance='sim', render_size=SIZE, seed=5)
  d = grasping.GraspingEnv(appearance='randomized', render_size=SIZE, seed=5)
  c.reset()
  d.reset()
  np.testing.assert_array_equal(c.render_paired(('real',))['real'],
                                d.render_paired(('real',))['real'])


def test_real_gap_knob_scales_the_difference():
  env = grasping.GraspingEnv(appearance='sim', render_size=SIZE, seed=0)
  env.reset()
  sim = env.render().astype(np.float32)
  diffs = []
  for gap in (0.0, 0.5, 1.0):
    env._paired_appearances['real'] = appearance.make_appearance('real', real_gap=gap)
    diffs.append(np.abs(env.render_paired(('real',))['real'] - sim).mean())
  assert diffs[0] < 2.0 and diffs[0] < diffs[1] < diffs[2], diffs


def test_a_gin_binding_moves_every_real_render_of_the_process_to_another_world():
  """RealAppearance.real_gap (gin) sets the world of envs that do not name one, paired
  renders included; explicit appearance_kwargs still win; sim is untouched."""
  import gin  # pylint: disable=g-import-not-at-top

  def first_images(**kwargs):
    env = grasping.GraspingEnv(render_size=SIZE, seed=3, **kwargs)
    image = env.reset().observation['image']
    return image, env.render_paired(('real',))['real']

  half, _ = first_images(appearance='real', appearance_kwargs={'real_gap': 0.5})
  default, _ = first_images(appearance='real')
  sim, paired_default = first_images(appearance='sim')
  with gin.unlock_config():
    gin.bind_parameter('RealAppearance.real_gap', 0.5)
  try:
    bound, _ = first_images(appearance='real')
    _, paired_bound = first_images(appearance='sim')
    explicit, _ = first_images(appearance='real', appearance_kwargs={'real_gap': 1.0})
    sim_bound, _ = first_images(appearance='sim')
  finally:
    gin.clear_config()
  np.testing.assert_array_equal(bound, half)
  np.testing.assert_array_equal(explicit, default)
  np.testing.assert_array_equal(sim_bound, sim)
  assert np.abs(paired_bound.astype(int) - paired_default.astype(int)).mean() > 5.0
  assert np.abs(half.astype(int) - default.astype(int)).mean() > 5.0


def test_randomized_varies_across_episodes_and_excludes_real_palette():
  env = grasping.GraspingEnv(appearance='randomized', render_size=SIZE, seed=0, num_objects=2)
  first = env.reset().observation['image'].astype(np.float32)
  second = env.reset().observation['image'].astype(np.float32)
  assert np.abs(first - second).mean() > 10.0
  look = appearance.RandomizedAppearance()
  rng = np.random.default_rng(0)
  for _ in range(20):
    look.new_episode(rng)
    for rgb in look._draw['object_colors']:
      assert colorsys.rgb_to_hsv(*rgb)[1] >= 0.55 - 1e-6  # real's palette is <= 0.45
  real = appearance.RealAppearance()
  assert all(colorsys.rgb_to_hsv(*rgb)[1] <= 0.45 + 1e-6 for rgb in real._palette)
  real_textures = set(real._texture_paths.values())
  assert not real_textures & set(look._texture_choices)
