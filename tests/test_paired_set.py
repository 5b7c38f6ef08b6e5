"""Tests of the held-out paired sim/real render set (evaluation only)."""

import os

import numpy as np
import pytest

from rl_cyclegan.envs import grasping
from rl_cyclegan.evaluation import paired_set
from rl_cyclegan.evaluation import scene_metrics


@pytest.fixture(scope='module')
def small_set():
  # 4 states at 32x40 -> 32x32, two per episode (steps 0 and 2, 4, ...).
  return paired_set.make_paired_set(4, render_size=(32, 40), crop_size=(32, 32), seed=3,
                                    steps_per_state=2)


def test_shapes_dtypes_and_pairing(small_set):
  d = small_set
  assert d['sim'].shape == d['real'].shape == (4, 32, 32, 3)
  assert d['sim'].dtype == d['real'].dtype == np.uint8
  assert d['segmentation'].shape == d['object_mask'].shape == d['robot_mask'].shape == (4, 32, 32)
  assert d['object_mask'].dtype == np.bool_
  # Sim and real are different appearances of the same states.
  assert scene_metrics.mean_absolute_error(d['sim'], d['real']) > 10.0
  # Objects and robot are disjoint, and visible in most states.
  assert not (d['object_mask'] & d['robot_mask']).any()
  assert (d['object_mask'].sum((1, 2)) > 0).mean() >= 0.75
  assert (d['robot_mask'].sum((1, 2)) > 0).mean() >= 0.75
  # States vary: the gripper is not at one height.
  assert np.ptp(d['gripper_height']) > 0.05
  meta = paired_set.metadata(d)
  assert meta['render_size'] == [32, 40] and meta['crop_size'] == [32, 32]
  assert meta['object_split'] == 'test'


def test_segmentation_is_identical_across_appearances():
  env = grasping.GraspingEnv(appearance='sim', object_split='test', render_size=(32, 40), seed=5)
  try:
    env.reset()
    a = env.render_paired(('sim', 'real'))
    b = env.render_paired(('real', 'sim'))  # segmentation from the real render this time
    np.testing.assert_array_equal(a['segmentation'], b['segmentation'])
    ids = paired_set.body_ids(env)
    objects, robot = paired_set.masks_from_segmentation(a['segmentation'], ids['robot'],
                                                        ids['objects'])
    assert objects.any() and robot.any()
  finally:
    env.close()


def test_same_seed_same_set(small_set):
  again = paired_set.make_paired_set(4, render_size=(32, 40), crop_size=(32, 32), seed=3,
                                     steps_per_state=2)
  for key in ('sim', 'real', 'segmentation', 'object_mask'):
    np.testing.assert_array_equal(again[key], small_set[key])


def test_save_load_roundtrip(small_set, tmp_path):
  path = str(tmp_path / 'sub' / 'paired.npz')
  paired_set.save_paired_set(path, small_set)
  assert [f for f in os.listdir(tmp_path / 'sub')] == ['paired.npz']  # no temp file left
  loaded = paired_set.load_paired_set(path)
  assert set(loaded) == set(small_set)
  for key, value in small_set.items():
    np.testing.assert_array_equal(loaded[key], value)
    assert loaded[key].dtype == np.asarray(value).dtype
  assert paired_set.metadata(loaded) == paired_set.metadata(small_set)


def test_corrupt_and_malformed_files_are_named(small_set, tmp_path):
  bad = tmp_path / 'corrupt.npz'
  bad.write_bytes(b'not a zip file at all')
  with pytest.raises(ValueError, match='corrupt.npz'):
    paired_set.load_paired_set(str(bad))
  truncated = tmp_path / 'truncated.npz'
  paired_set.save_paired_set(str(truncated), small_set)
  truncated.write_bytes(truncated.read_bytes()[:1000])
  with pytest.raises(ValueError, match='truncated.npz'):
    paired_set.load_paired_set(str(truncated))
  wrong = dict(small_set, real=small_set['real'][:2])
  with pytest.raises(ValueError, match="'real' has shape"):
    paired_set.save_paired_set(str(tmp_path / 'wrong.npz'), wrong)
  missing = {k: v for k, v in small_set.items() if k != 'robot_mask'}
  np.savez(str(tmp_path / 'missing.npz'), **missing)
  with pytest.raises(ValueError, match=r"missing.npz.*robot_mask"):
    paired_set.load_paired_set(str(tmp_path / 'missing.npz'))
