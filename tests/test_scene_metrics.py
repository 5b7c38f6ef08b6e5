"""Tests of the paired-render scene metrics with hand-worked small arrays."""

import math

import numpy as np
import pytest

from rl_cyclegan.evaluation import scene_metrics as sm


def scene(n=2, h=16, w=16, seed=0):
  """Grey tray with texture noise, one bright 4x4 object per image, a dark 'robot' bar.

  Returns (images uint8 [n, h, w, 3], object mask [n, h, w], robot mask [n, h, w]).
  """
  rng = np.random.default_rng(seed)
  images = np.full((n, h, w, 3), 100.0) + rng.normal(0, 2, (n, h, w, 3))
  objects = np.zeros((n, h, w), bool)
  robot = np.zeros((n, h, w), bool)
  for i in range(n):
    top, left = 4 + i, 8 - i
    objects[i, top:top + 4, left:left + 4] = True
    robot[i, 0:3, 2:5] = True
  images[objects] = [220.0, 60.0, 40.0]
  images[robot] = [20.0, 20.0, 20.0]
  return np.clip(images, 0, 255).astype(np.uint8), objects, robot


def test_identical_images_give_zero_error_and_capped_psnr():
  images, objects, robot = scene()
  m = sm.scene_preservation_metrics(images, images, {'objects': objects, 'robot': robot})
  assert m['mae'] == m['mae_objects'] == m['mae_robot'] == 0.0
  assert m['psnr'] == m['psnr_objects'] == m['psnr_robot'] == sm.PSNR_CAP == 100.0
  assert m['edge_corr_objects'] == pytest.approx(1.0)
  assert m['edge_corr_robot'] == pytest.approx(1.0)
  assert m['object_preservation'] == 1.0
  assert m['object_contrast_excess'] == m['robot_contrast_excess'] == 0.0


def test_contrast_excess_is_how_much_more_g_sets_a_region_off_than_real():
  real, objects, robot = scene()
  real = real.astype(np.float64)
  c_real, valid = sm.local_contrast(real, objects)
  pixels = objects & valid
  # Objects drawn twice as far from their surround: the excess is the real contrast again.
  louder = real.copy()
  surround = real[~(objects | robot)].mean(0)  # the tray's mean colour
  louder[objects] = surround + 2.0 * (real[objects] - surround)
  c_louder, _ = sm.local_contrast(louder, objects)
  m = sm.scene_preservation_metrics(louder, real, {'objects': objects, 'robot': robot})
  assert m['object_contrast_excess'] == pytest.approx((c_louder - c_real)[pixels].mean())
  assert m['object_contrast_excess'] > 0.8 * c_real[pixels].mean() > 50.0
  assert m['robot_contrast_excess'] == pytest.approx(0.0, abs=1.0)  # only near the objects
  # Objects painted over with the tray: all their real contrast is missing.
  faded = real.copy()
  faded[objects] = surround
  assert sm.contrast_excess(faded, real, objects) < -0.8 * c_real[pixels].mean()
  # An offset of the whole image leaves every region's contrast as it was.
  assert sm.contrast_excess(real + 25.0, real, objects) == pytest.approx(0.0, abs=1e-9)
  assert sm.contrast_excess(real + 25.0, real, robot) == pytest.approx(0.0, abs=1e-9)
  assert math.isnan(sm.contrast_excess(real, real, np.ones_like(objects)))  # no surround


def test_mae_and_psnr_hand_worked():
  a = np.zeros((1, 2, 2, 3))
  b = np.zeros((1, 2, 2, 3))
  b[0, 0, 0] = [30.0, 30.0, 30.0]  # one pixel off by 30 in every channel
  mask = np.array([[[True, False], [False, False]]])
  # MAE over 4 pixels x 3 channels: 90 / 12 = 7.5; MSE = 900 * 3 / 12 = 225.
  assert sm.mean_absolute_error(a, b) == pytest.approx(7.5)
  assert sm.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 225.0))
  # Restricted to the differing pixel: MAE 30, MSE 900.
  assert sm.mean_absolute_error(a, b, mask) == pytest.approx(30.0)
  assert sm.psnr(a, b, mask) == pytest.approx(10 * math.log10(255**2 / 900.0))
  assert math.isnan(sm.mean_absolute_error(a, b, np.zeros((1, 2, 2), bool)))


def test_missing_object_drops_preservation_and_structure():
  real, objects, robot = scene()
  generated = real.copy()
  generated[0][objects[0]] = 100  # object 0 painted over with the tray colour
  masks = {'objects': objects, 'robot': robot}
  full = sm.scene_preservation_metrics(real, real, masks)
  m = sm.scene_preservation_metrics(generated, real, masks)
  # Image 0 loses all 16 of its object pixels, image 1 keeps its 16: 16 / 32 preserved.
  assert m['object_preservation'] == pytest.approx(0.5)
  assert full['object_preservation'] == 1.0
  assert m['edge_corr_objects'] < 0.75 * full['edge_corr_objects']
  # Image 0's object pixels are off by (120 + 40 + 60) / 3, image 1's by 0: pooled 36.67.
  assert m['mae_objects'] == pytest.approx((120 + 40 + 60) / 3 / 2)
  assert m['mae_robot'] == 0.0  # the robot is untouched
  assert m['mae_background'] == 0.0  # nor is the tray around them


def test_background_error_is_the_rest_of_the_image():
  """mae_background covers the pixels that are neither object nor robot, and only those."""
  real, objects, robot = scene()
  masks = {'objects': objects, 'robot': robot}
  generated = real.astype(np.float64)
  rest = ~(objects | robot)
  generated[rest] += 12.0  # the tray repainted, objects and robot kept
  m = sm.scene_preservation_metrics(generated, real, masks)
  assert m['mae_background'] == pytest.approx(12.0)
  assert m['psnr_background'] == pytest.approx(10 * math.log10(255**2 / 144.0))
  assert m['mae_objects'] == m['mae_robot'] == 0.0
  assert m['mae'] == pytest.approx(12.0 * rest.mean())


def test_global_colour_shift_keeps_structure_and_objects():
  real, objects, robot = scene()
  # A global style change: per-channel gain and offset (a "colour grading").
  shifted = np.clip(real * np.array([0.7, 0.8, 1.2]) + np.array([60.0, 40.0, -10.0]), 0, 255)
  m = sm.scene_preservation_metrics(shifted, real, {'objects': objects, 'robot': robot})
  # The tray (~100 grey) moves by (30 + 20 + 10) / 3 = 20 on average.
  assert m['mae'] > 15.0  # pixel error is large ...
  assert m['edge_corr_objects'] > 0.95  # ... but the structure is kept
  assert m['object_preservation'] == 1.0
  # A gain shared by the channels plus any offset gives exactly 1 (Pearson is affine
  # invariant and the offset has no gradient).
  grey = np.clip(real * 0.5 + 60.0, 0, 255)
  assert sm.edge_correlation(grey, real, objects) == pytest.approx(1.0)


def test_local_contrast_hand_worked():
  # 1 x 3 x 3 image, object pixel in the middle (value 200), background 100 around it.
  image = np.full((1, 3, 3, 3), 100.0)
  image[0, 1, 1] = 200.0
  mask = np.zeros((1, 3, 3), bool)
  mask[0, 1, 1] = True
  contrast, valid = sm.local_contrast(image, mask, background_radius=1)
  assert valid.all()
  assert contrast[0, 1, 1] == pytest.approx(100.0)  # |200 - mean of 8 neighbours (100)|
  assert contrast[0, 0, 0] == pytest.approx(0.0)  # a background pixel vs its background
  # Inside a big object no background is within the radius: excluded.
  mask = np.ones((1, 3, 3), bool)
  _, valid = sm.local_contrast(image, mask, background_radius=1)
  assert not valid.any()


def test_contrast_gradient_hand_worked_and_against_finite_differences():
  # The 3 x 3 image above: the object pixel rises by 1/3 per channel, each of its 8 neighbours
  # lowers the contrast by 1/8 of that through the local mean.
  image = np.full((1, 3, 3, 3), 100.0)
  image[0, 1, 1] = 200.0
  mask = np.zeros((1, 3, 3), bool)
  mask[0, 1, 1] = True
  grad = sm.contrast_gradient(image, mask, background_radius=1)
  np.testing.assert_allclose(grad[0, 1, 1], 1.0 / 3.0)
  neighbours = np.ones((3, 3), bool)
  neighbours[1, 1] = False
  np.testing.assert_allclose(grad[0][neighbours], -1.0 / 24.0)
  # Any image and region: the first-order change of the region's mean contrast along a random
  # direction (central differences), pooled over images as contrast_excess pools them.
  rng = np.random.default_rng(3)
  images = rng.uniform(0, 255, size=(2, 12, 14, 3))
  real, objects, _ = scene(n=2, h=12, w=14)
  objects[1, :, :6] = True  # a region that touches the border, and pixels with no surround
  _, valid = sm.local_contrast(images, objects, background_radius=3)
  assert (objects & ~valid).any()  # the region's pixels without a surround are left out
  mean_contrast = lambda i: sm.local_contrast(i, objects, 3)[0][objects & valid].mean()
  grad = sm.contrast_gradient(images, objects, background_radius=3)
  for seed in range(3):
    v = np.random.default_rng(seed).normal(size=images.shape)
    eps = 1e-5
    numeric = (mean_contrast(images + eps * v) - mean_contrast(images - eps * v)) / (2 * eps)
    assert float((grad * v).sum()) == pytest.approx(numeric, rel=1e-5)
  # A push that draws the objects louder than real raises it; a fade lowers it.
  grad = sm.contrast_gradient(real, objects)
  louder = np.where(objects[..., None], 2.0 * real.astype(float) - 100.0, real)
  assert float((grad * (louder - real)).sum()) > 0 > float((grad * (100.0 - louder)).sum())
  # No pixel of the region has a surround: no gradient.
  assert not sm.contrast_gradient(real, np.ones_like(objects)).any()


def test_amplify_contrast_multiplies_the_regions_local_contrast():
  real, objects, robot = scene(n=2)
  same = sm.amplify_contrast(real, objects, 1.0)
  assert same.dtype == np.uint8
  np.testing.assert_array_equal(same, real)
  # Float images, no clipping: every object pixel's contrast doubles, the rest is kept.
  image = real.astype(np.float64) * 0.5 + 60.0
  louder = sm.amplify_contrast(image, objects, 2.0)
  np.testing.assert_array_equal(louder[~objects], image[~objects])
  before, valid = sm.local_contrast(image, objects)
  after, _ = sm.local_contrast(louder, objects)
  pixels = objects & valid
  np.testing.assert_allclose(after[pixels], 2.0 * before[pixels], rtol=1e-9)
  assert sm.contrast_excess(louder, image, objects) == pytest.approx(before[pixels].mean())
  # Gain 0 paints the region with its surround's mean colour: no contrast left.
  assert sm.local_contrast(sm.amplify_contrast(image, objects, 0.0), objects)[0][
      pixels].max() == pytest.approx(0.0, abs=1e-9)
  # uint8 stays in [0, 255]; the robot is another region.
  clipped = sm.amplify_contrast(real, objects, 5.0)
  assert clipped.dtype == np.uint8 and clipped.max() == 255 and clipped.min() == 0
  np.testing.assert_array_equal(sm.amplify_contrast(real, robot, 1.5)[~robot], real[~robot])
  with pytest.raises(ValueError, match='gain must be a finite number >= 0, got -1'):
    sm.amplify_contrast(real, objects, -1.0)


def test_box_sum_matches_brute_force():
  x = np.random.default_rng(0).normal(size=(2, 5, 7))
  r = 2
  expected = np.zeros_like(x)
  for i in range(5):
    for j in range(7):
      expected[:, i, j] = x[:, max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].sum((1, 2))
  box_sum = sm._box_sum  # pylint: disable=protected-access
  np.testing.assert_allclose(box_sum(x, r), expected, atol=1e-9)


def test_dilate():
  mask = np.zeros((1, 5, 5), bool)
  mask[0, 2, 2] = True
  assert sm.dilate(mask, 1).sum() == 9
  assert sm.dilate(mask, 0).sum() == 1


def test_evaluate_generator_identity_and_generator():
  real, objects, robot = scene(n=3)
  sim = np.clip(real.astype(np.int32) + 40, 0, 255).astype(np.uint8)
  paired = {'sim': sim, 'real': real, 'object_mask': objects, 'robot_mask': robot}

  def perfect(x):  # knows the true real render (batch by batch)
    del x
    return next(batches)

  batches = iter([real[:2] / 127.5 - 1.0, real[2:] / 127.5 - 1.0])
  m = sm.evaluate_generator(perfect, paired, batch_size=2)
  assert m['generator/mae'] == pytest.approx(0.0, abs=1e-9)
  assert m['generator/psnr'] == sm.PSNR_CAP
  assert m['identity/mae'] > 30.0
  assert set(k.split('/', 1)[1] for k in m) == {
      'mae', 'psnr', 'mae_objects', 'psnr_objects', 'mae_robot', 'psnr_robot',
      'mae_background', 'psnr_background', 'edge_corr_objects', 'edge_corr_robot',
      'object_preservation', 'object_contrast_excess', 'robot_contrast_excess'}
  only_identity = sm.evaluate_generator(None, paired)
  assert all(k.startswith('identity/') for k in only_identity)


def test_bad_shapes_are_named():
  images, objects, robot = scene()
  with pytest.raises(ValueError, match='objects mask'):
    sm.scene_preservation_metrics(images, images, {'objects': objects[:1], 'robot': robot})
  with pytest.raises(ValueError, match="'objects' and 'robot'"):
    sm.scene_preservation_metrics(images, images, {'robot': robot})
