"""Tests of the labelled sim frames for GraspGAN's mask loss (evaluation/segmentation_set.py)."""

import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan.envs import grasping
from rl_cyclegan.evaluation import segmentation_set

RENDER = (32, 40)


@pytest.fixture(scope='module')
def recorded_set():
  """A 6-state set at 32x40, with every env made and every render_paired call recorded."""
  made, renders, renders_objects = [], [], []
  original_init = grasping.GraspingEnv.__init__
  original_render = grasping.GraspingEnv.render_paired

  def init(self, *args, **kwargs):
    made.append(kwargs)
    original_init(self, *args, **kwargs)

  def render_paired(self, appearances=('sim', 'real')):
    renders.append(tuple(appearances))
    out = original_render(self, appearances)
    urdfs, ids = self._urdfs, self._object_ids  # pylint: disable=protected-access
    renders_objects.append(tuple(urdfs[i] for i in ids))
    return out

  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(grasping.GraspingEnv, '__init__', init)
    patch.setattr(grasping.GraspingEnv, 'render_paired', render_paired)
    data = segmentation_set.make_segmentation_set(6, render_size=RENDER, seed=3,
                                                  steps_per_state=1, num_objects=3)
  return data, made, renders, renders_objects


def test_labels_from_segmentation_hand_worked():
  ids = {'robot': 1, 'objects': (5, 7), 'tray': 3, 'table': 2, 'plane': 0}
  seg = np.array([[-1, 0, 1, 2],
                  [3, 5, 7, 4]], np.int32)  # nothing, plane, robot, table / tray, obj, obj, ?
  expected = np.array([[0, 0, 2, 0],
                       [1, 3, 3, 0]], np.uint8)
  np.testing.assert_array_equal(segmentation_set.labels_from_segmentation(seg, ids), expected)


def test_only_sim_renders_of_training_objects(recorded_set):
  data, made, renders, objects = recorded_set  # objects: the URDFs in the scene per render
  assert len(made) == 1
  assert made[0]['appearance'] == 'sim' and made[0]['object_split'] == 'train'
  assert renders == [('sim',)] * 6  # never a 'real' render
  assert sorted(data) == ['episode', 'images', 'labels', 'metadata', 'step']
  train = set(grasping.object_urdfs('train'))
  assert all(set(o) <= train for o in objects)
  assert not set().union(*objects) & set(grasping.object_urdfs('test'))
  meta = segmentation_set.metadata(data)
  assert meta['object_split'] == 'train' and meta['appearance'] == 'sim'
  assert meta['classes'] == ['background', 'tray', 'robot', 'objects']


def test_images_are_the_sim_observations(recorded_set):
  """The first frame equals the observation of a fresh 'sim' env with the same seed."""
  data = recorded_set[0]
  env = grasping.GraspingEnv(appearance='sim', object_split='train', render_size=RENDER,
                             seed=3, num_objects=3)
  try:
    first = env.reset().observation['image']
  finally:
    env.close()
  np.testing.assert_array_equal(data['images'][0], first)


def test_shapes_and_all_four_classes(recorded_set):
  data = recorded_set[0]
  assert data['images'].shape == (6, *RENDER, 3) and data['images'].dtype == np.uint8
  assert data['labels'].shape == (6, *RENDER) and data['labels'].dtype == np.uint8
  assert set(np.unique(data['labels'])) == {0, 1, 2, 3}
  # Robot and objects are visible in most frames (the tray and background in all).
  for cls, share in ((segmentation_set.ROBOT, 0.75), (segmentation_set.OBJECTS, 0.75),
                     (segmentation_set.TRAY, 1.0), (segmentation_set.BACKGROUND, 1.0)):
    assert ((data['labels'] == cls).sum((1, 2)) > 0).mean() >= share, cls
  np.testing.assert_array_equal(data['step'][:3], [0, 1, 2])


def test_save_load_roundtrip_and_errors_name_the_file(recorded_set, tmp_path):
  data = recorded_set[0]
  path = str(tmp_path / 'seg.npz')
  segmentation_set.save_segmentation_set(path, data)
  loaded = segmentation_set.load_segmentation_set(path, render_size=RENDER)
  for key in ('images', 'labels', 'episode', 'step'):
    np.testing.assert_array_equal(loaded[key], data[key])
  with pytest.raises(ValueError, match=r'seg\.npz.*32x40 frames.*\(64, 80\)'):
    segmentation_set.load_segmentation_set(path, render_size=(64, 80))

  bad = dict(data, labels=data['labels'][:, :-1])
  np.savez(str(tmp_path / 'bad.npz'), **bad)
  with pytest.raises(ValueError, match=r"bad\.npz.*'labels' has shape"):
    segmentation_set.load_segmentation_set(str(tmp_path / 'bad.npz'))
  with_real = dict(data, real=data['images'])
  np.savez(str(tmp_path / 'real.npz'), **with_real)
  with pytest.raises(ValueError, match=r"real\.npz.*unexpected arrays \['real'\]"):
    segmentation_set.load_segmentation_set(str(tmp_path / 'real.npz'))
  with pytest.raises(ValueError, match='class 7'):
    segmentation_set.validate_segmentation_set(dict(data, labels=data['labels'] * 0 + 7))
  (tmp_path / 'junk.npz').write_bytes(b'not a zip')
  with pytest.raises(ValueError, match=r'junk\.npz'):
    segmentation_set.load_segmentation_set(str(tmp_path / 'junk.npz'))


def test_sampler_crops_frame_and_labels_alike():
  """Labels encode their pixel's position, so a crop's labels tell where it was taken."""
  n, h, w = 3, 6, 9
  rows, cols = np.mgrid[0:h, 0:w]
  labels = np.broadcast_to(((rows + cols) % 4).astype(np.uint8), (n, h, w)).copy()
  images = np.zeros((n, h, w, 3), np.uint8)
  images[..., 0] = rows * 20  # the image encodes the row, the label (row + col) % 4
  images[..., 1] = cols * 20
  data = {'images': images, 'labels': labels, 'episode': np.zeros(n, np.int32),
          'step': np.zeros(n, np.int32)}
  sampler = segmentation_set.SegmentationSampler(data, (4, 5), batch_size=16, seed=0)
  crop_images, crop_labels = sampler.sample()
  assert crop_images.shape == (16, 4, 5, 3) and crop_images.dtype == tf.float32
  assert crop_labels.shape == (16, 4, 5) and crop_labels.dtype == tf.int32
  pixels = np.rint((crop_images.numpy() + 1.0) * 127.5).astype(int)  # back to uint8 values
  r, c = pixels[..., 0] // 20, pixels[..., 1] // 20
  np.testing.assert_array_equal(crop_labels.numpy(), (r + c) % 4)
  tops = r[:, 0, 0]
  assert len(set(tops)) > 1  # random offsets
  again = segmentation_set.SegmentationSampler(data, (4, 5), batch_size=16, seed=0).sample()
  np.testing.assert_array_equal(again[1].numpy(), crop_labels.numpy())  # reproducible
  with pytest.raises(ValueError, match='larger than the segmentation frames'):
    segmentation_set.SegmentationSampler(data, (8, 5), batch_size=2)
