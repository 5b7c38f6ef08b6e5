"""Tests of the frozen-G translation cache (data/translation.py), the sim-to-real env
(envs/sim2real.py) and CEMPolicy's frame_transform: every path sees the same pixels as G
applied on the fly, within one uint8 level (1/255 on the [-1, 1] scale)."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from rl_cyclegan.actors import policies
from rl_cyclegan import specs
from rl_cyclegan.data import episodes as episodes_lib
from rl_cyclegan.data import translation
from rl_cyclegan.envs import sim2real
from rl_cyclegan.networks import generator as generator_lib

RENDER, CROP = (32, 40), (32, 32)


def _generator(seed):
  tf.random.set_seed(seed)
  g = generator_lib.UNetGenerator(filters=(8, 16), name='G_sim2real')
  g(tf.zeros([1, *CROP, 3]), training=False)
  return g


def _log_dir(path, shards=2, per_shard=2):
  os.makedirs(path, exist_ok=True)
  for s in range(shards):
    name = episodes_lib.shard_name(s, shards)
    with episodes_lib.EpisodeWriter(os.path.join(path, name)) as writer:
      for j in range(per_shard):
        writer.write(episodes_lib.synthetic_episode(3, RENDER, seed=10 * s + j))
  return str(path)


def _episodes(directory):
  out = []
  for name in sorted(os.listdir(directory)):
    if name.endswith('.tfrecord'):
      out.extend(episodes_lib.read_episodes(os.path.join(directory, name), RENDER))
  return out


def test_translator_matches_g_on_the_fly_within_one_level():
  g = _generator(0)
  frames = np.random.default_rng(0).integers(0, 256, (5, *RENDER, 3), dtype=np.uint8)
  got = translation.FrameTranslator(g).translate(frames, batch_size=2)  # [5, H, W, 3] uint8
  want = g(specs.to_float_image(frames), training=False).numpy()  # float [-1, 1]
  assert got.dtype == np.uint8 and got.shape == frames.shape
  err = np.abs(got.astype(np.float32) / 127.5 - 1.0 - want)
  assert err.max() <= translation.UINT8_TOLERANCE + 1e-6
  assert err.mean() > 0  # rounding happened: the test compares different computations


def test_cache_equals_g_on_the_fly_resumes_and_is_invalidated_by_another_g(tmp_path):
  source = _log_dir(tmp_path / 'log')
  out = str(tmp_path / 'cache')
  g1, g2 = _generator(1), _generator(2)
  t1, t2 = translation.FrameTranslator(g1), translation.FrameTranslator(g2)
  assert t1.fingerprint != t2.fingerprint
  lines = []
  pattern = translation.translate_episode_dir(t1, source, out, RENDER, log=lines.append)
  assert pattern == os.path.join(out, '*.tfrecord')
  raw, cached = _episodes(source), _episodes(out)
  assert len(cached) == len(raw) == 4
  for a, b in zip(raw, cached):
    want = g1(specs.to_float_image(np.asarray(a.images)), training=False).numpy()
    got = np.asarray(b.images).astype(np.float32) / 127.5 - 1.0
    assert np.abs(got - want).max() <= translation.UINT8_TOLERANCE + 1e-6
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.rewards, b.rewards)
  with open(os.path.join(out, translation.SUMMARY_FILE)) as f:
    assert json.load(f)['episodes'] == 4

  # Complete and current: nothing is redone.
  lines.clear()
  translation.translate_episode_dir(t1, source, out, RENDER, log=lines.append)
  assert not any('translating' in line for line in lines)

  # A killed run (summary missing, one shard missing) redoes only the missing shard.
  os.remove(os.path.join(out, translation.SUMMARY_FILE))
  os.remove(os.path.join(out, episodes_lib.shard_name(1, 2)))
  translation.translate_episode_dir(t1, source, out, RENDER, log=lines.append)
  assert any('translating 1 of 2 shards' in line for line in lines)
  assert len(_episodes(out)) == 4

  # The cache of G1 is never read for G2, and translating with G2 redoes it.
  with pytest.raises(ValueError, match='stale cache'):
    translation.check_translated_dir(out, t2.fingerprint)
  lines.clear()
  translation.translate_episode_dir(t2, source, out, RENDER, log=lines.append)
  assert any('deleting' in line for line in lines)
  assert translation.check_translated_dir(out, t2.fingerprint)
  with pytest.raises(ValueError, match='stale cache'):
    translation.check_translated_dir(out, t1.fingerprint)
  first = np.asarray(_episodes(out)[0].images).astype(np.float32) / 127.5 - 1.0
  want = g2(specs.to_float_image(np.asarray(raw[0].images)), training=False).numpy()
  assert np.abs(first - want).max() <= translation.UINT8_TOLERANCE + 1e-6


def test_incomplete_cache_is_refused(tmp_path):
  with pytest.raises(ValueError, match='not complete'):
    translation.check_translated_dir(str(tmp_path), 'abc')


class _ImageEnv(py_environment.PyEnvironment):
  """Two steps of fixed random images."""

  def __init__(self):
    super().__init__()
    rng = np.random.default_rng(3)
    self.frames = rng.integers(0, 256, (3, *RENDER, 3), dtype=np.uint8)
    self._t = 0
    self.episode_success = True

  def observation_spec(self):
    return {'image': array_spec.ArraySpec((*RENDER, 3), np.uint8),
            'gripper_state': array_spec.ArraySpec((2,), np.float32)}

  def action_spec(self):
    return array_spec.ArraySpec((8,), np.float32)

  def _obs(self):
    return {'image': self.frames[self._t], 'gripper_state': np.zeros(2, np.float32)}

  def _reset(self):
    self._t = 0
    return ts.restart(self._obs())

  def _step(self, action):
    self._t += 1
    return ts.termination(self._obs(), 1.0) if self._t == 2 else ts.transition(self._obs(), 0.0)


def test_sim2real_env_translates_every_frame_once_and_forwards_the_rest():
  g = _generator(4)
  translator = translation.FrameTranslator(g)
  inner = _ImageEnv()
  env = sim2real.Sim2RealEnv(inner, translator)
  first = env.reset()
  np.testing.assert_array_equal(first.observation['image'],
                                translator.translate(inner.frames[:1])[0])
  step = env.step(np.zeros(8, np.float32))
  np.testing.assert_array_equal(step.observation['image'],
                                translator.translate(inner.frames[1:2])[0])
  assert env.episode_success is True  # forwarded


class _MeanQ(tf.Module):
  """Q whose best dx is the mean of the image: CEM's action reveals what the policy saw."""

  def embed_image(self, image, training=False):
    return tf.reduce_mean(image, axis=[1, 2, 3], keepdims=True)  # [B, 1, 1, 1]

  def logits_from_embedding(self, embedding, gripper_state, actions, training=False):
    continuous, _ = policies.decode_action_tf(actions)  # [B, N, 4]
    return -tf.square(continuous[..., 0] - embedding[:, :, 0, 0])  # [B, N]


def test_policy_frame_transform_acts_on_the_translated_frame():
  g = _generator(5)
  translator = translation.FrameTranslator(g)
  frames = np.random.default_rng(6).integers(0, 256, (2, *RENDER, 3), dtype=np.uint8)
  obs = {'image': frames, 'gripper_state': np.zeros((2, 2), np.float32)}
  with_transform = policies.CEMPolicy(_MeanQ(), render_size=RENDER, crop_size=CROP,
                                      frame_transform=translator, seed=0)
  plain = policies.CEMPolicy(_MeanQ(), render_size=RENDER, crop_size=CROP, seed=0)
  a = with_transform.greedy_action(obs).numpy()  # [2, 8]
  b = plain.greedy_action(dict(obs, image=translator.translate(frames))).numpy()
  c = plain.greedy_action(obs).numpy()
  np.testing.assert_allclose(a, b, atol=1e-6)
  assert not np.allclose(a[:, 0], c[:, 0], atol=1e-3)  # the raw frames give another action


def test_dilate_grows_a_mask_by_whole_pixels_8_connected():
  mask = np.zeros((5, 6), bool)
  mask[2, 2] = True
  np.testing.assert_array_equal(sim2real.dilate(mask, 0), mask)
  one = sim2real.dilate(mask, 1)
  assert one.sum() == 9 and one[1:4, 1:4].all()  # the 3x3 square around the pixel
  two = sim2real.dilate(mask, 2)
  assert two.sum() == 25 and two[0:5, 0:5].all()  # the 5x5 square; column 5 stays out
  assert not two[:, 5].any()


def test_composite_env_takes_each_region_from_its_source():
  """The real render with the chosen regions from G(sim render) of the same state, by the
  simulator's segmentation: no region is the paired real render, all three are G(sim)."""
  from rl_cyclegan.envs import grasping  # pylint: disable=g-import-not-at-top
  g = _generator(7)
  translator = translation.FrameTranslator(g)
  env = grasping.GraspingEnv(appearance='real', object_split='test', render_size=RENDER,
                             seed=4)
  try:
    composites = {}
    for regions in [(), ('background',), ('objects', 'robot'), sim2real.REGIONS]:
      wrapped = sim2real.CompositeEnv(env, translator, regions)
      if not composites:
        first = wrapped.reset()
        assert first.observation['image'].shape == (*RENDER, 3)
      composites[regions] = wrapped.composite()
    paired = env.render_paired(('sim', 'real'))
    masks = env.region_masks(paired['segmentation'])
    assert masks['objects'].any() and masks['robot'].any() and masks['background'].any()
    # The three regions partition the image.
    np.testing.assert_array_equal(
        masks['objects'].astype(int) + masks['robot'] + masks['background'], 1)
    translated = translator.translate(paired['sim'][None])[0]
    assert np.abs(translated.astype(int) - paired['real']).mean() > 1  # a test with teeth
    np.testing.assert_array_equal(composites[()], paired['real'])
    np.testing.assert_array_equal(composites[sim2real.REGIONS], translated)
    background = masks['background']
    np.testing.assert_array_equal(composites[('background',)][background],
                                  translated[background])
    np.testing.assert_array_equal(composites[('background',)][~background],
                                  paired['real'][~background])
    np.testing.assert_array_equal(composites[('objects', 'robot')][~background],
                                  translated[~background])
    np.testing.assert_array_equal(composites[('objects', 'robot')][background],
                                  paired['real'][background])
    # Dilation moves the ring around the objects and the robot out of the background.
    grown = sim2real.CompositeEnv(env, translator, ('background',), dilation=2)
    grown_masks = grown.masks(paired['segmentation'])
    assert grown_masks['background'].sum() < background.sum()
    assert not (grown_masks['background'] & ~background).any()
    np.testing.assert_array_equal(
        grown_masks['objects'],
        sim2real.dilate(masks['objects'], 2))
    ring = background & ~grown_masks['background']
    np.testing.assert_array_equal(grown.composite()[ring], paired['real'][ring])
    # real_transform changes the real render first, given the exact (undilated) masks.
    seen = []

    def paint_objects(image, region_masks):
      seen.append(region_masks)
      return np.where(region_masks['objects'][..., None], 255, image).astype(np.uint8)

    # ring_only: G's pixels only in the ring the dilation adds around the exact shapes.
    ring_world = sim2real.CompositeEnv(env, translator, ('objects', 'robot'), dilation=2,
                                       ring_only=True).composite()
    shapes = masks['objects'] | masks['robot']
    ring = (grown_masks['objects'] | grown_masks['robot']) & ~shapes
    assert ring.sum() > 20
    np.testing.assert_array_equal(ring_world[ring], translated[ring])
    np.testing.assert_array_equal(ring_world[~ring], paired['real'][~ring])
    painted = sim2real.CompositeEnv(env, translator, ('robot',), dilation=2,
                                    real_transform=paint_objects).composite()
    np.testing.assert_array_equal(seen[0]['objects'], masks['objects'])
    objects, robot = masks['objects'], grown_masks['robot']
    assert (painted[objects & ~robot] == 255).all()
    np.testing.assert_array_equal(painted[robot], translated[robot])
    rest = ~objects & ~robot
    np.testing.assert_array_equal(painted[rest], paired['real'][rest])
  finally:
    env.close()


def test_match_segment_colours_takes_each_segments_statistics_and_keeps_its_pattern():
  rng = np.random.default_rng(3)
  image = rng.integers(60, 190, (6, 8, 3)).astype(np.uint8)
  reference = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8)
  reference[:3] = rng.integers(100, 140, (3, 8, 3))  # a quieter segment
  reference[3:] = rng.integers(70, 180, (3, 8, 3))  # a louder one, no clipping either
  segments = np.zeros((6, 8), int)
  segments[:3, :4] = 5
  segments[3:, 2:7] = 2
  image[3:, 7] = 77  # outside every segment
  image[:3, :4] = np.linspace([60, 70, 80], [190, 180, 170], 12).reshape(3, 4, 3)  # a shading ramp
  out = sim2real.match_segment_colours(image, reference, segments)
  assert out.dtype == np.uint8 and out.shape == image.shape
  np.testing.assert_array_equal(out[segments == 0], image[segments == 0])
  for label in (5, 2):
    where = segments == label
    # Each segment's own mean and spread per channel (rounding: half a level).
    np.testing.assert_allclose(out[where].mean(0), reference[where].mean(0), atol=0.5)
    np.testing.assert_allclose(out[where].std(0), reference[where].std(0), atol=0.5)
    for c in range(3):  # the image's pattern, only rescaled
      assert np.corrcoef(out[where][:, c], image[where][:, c])[0, 1] > 0.99
  # A flat segment takes the reference's mean.
  flat = np.full_like(image, 90)
  out = sim2real.match_segment_colours(flat, reference, segments)
  np.testing.assert_allclose(out[segments == 5].astype(float).mean(0),
                             np.rint(reference[segments == 5].mean(0)), atol=1e-9)
  # Where the reference's spread would clip, the spread gives way and the mean holds.
  loud = reference.copy()
  loud[:3] = np.where(rng.random((3, 8, 1)) < 0.5, 230, 255)  # mean ~242, SD ~12
  out = sim2real.match_segment_colours(image, loud, segments)
  where = segments == 5
  np.testing.assert_allclose(out[where].mean(0), loud[where].mean(0), atol=0.5)
  spread = out[where].astype(float).std(0)
  assert (spread < loud[where].std(0) - 2).all() and (spread > 1).all()
  with pytest.raises(ValueError, match=r'image \[6, 8, 3\], reference \[6, 7, 3\]'):
    sim2real.match_segment_colours(image, reference[:, :7], segments)


def test_composite_env_colours_each_object_body_from_g_and_keeps_the_real_shapes():
  """colour_regions: the real render's pixels of each object body (and the robot) in G's
  colours for that body; the other regions as before."""
  from rl_cyclegan.envs import grasping  # pylint: disable=g-import-not-at-top
  translator = translation.FrameTranslator(_generator(7))
  env = grasping.GraspingEnv(appearance='real', object_split='test', render_size=RENDER,
                             seed=4)
  try:
    wrapped = sim2real.CompositeEnv(env, translator, ('background',),
                                    colour_regions=('objects', 'robot'))
    wrapped.reset()
    assert wrapped.colour_regions == ('objects', 'robot')
    image = wrapped.composite()
    paired = env.render_paired(('sim', 'real'))
    masks = env.region_masks(paired['segmentation'])
    translated = translator.translate(paired['sim'][None])[0]
    # With ring_only: G's ring around the shapes, their insides recoloured as above.
    ringed = sim2real.CompositeEnv(env, translator, ('objects', 'robot'), dilation=2,
                                   ring_only=True, colour_regions=('objects', 'robot'))
    ringed = ringed.composite()
    shapes = masks['objects'] | masks['robot']
    np.testing.assert_array_equal(ringed[shapes], image[shapes])
    ring = sim2real.dilate(shapes, 2) & ~shapes
    np.testing.assert_array_equal(ringed[ring], translated[ring])
    np.testing.assert_array_equal(ringed[~ring & ~shapes], paired['real'][~ring & ~shapes])
    background = masks['background']
    np.testing.assert_array_equal(image[background], translated[background])
    bodies = np.unique(paired['segmentation'][masks['objects']])
    assert len(bodies) >= 2  # per body, not the objects as one
    for where in [paired['segmentation'] == b for b in bodies] + [masks['robot']]:
      assert where.sum() >= 4
      real, g, out = (x[where].astype(float) for x in (paired['real'], translated, image))
      assert np.abs(real.mean(0) - g.mean(0)).max() > 2  # a test with teeth
      np.testing.assert_allclose(out.mean(0), g.mean(0), atol=0.5)  # the spread gives way
      for c in range(3):
        if real[:, c].std() > 1 and g[:, c].std() > 1:
          assert np.corrcoef(out[:, c], real[:, c])[0, 1] > 0.95
  finally:
    env.close()


def test_composite_env_refuses_bad_settings_naming_them():
  inner = _ImageEnv()
  with pytest.raises(ValueError, match=r"unknown regions \['sky'\]; valid: objects, robot"):
    sim2real.CompositeEnv(inner, None, ('sky',))
  with pytest.raises(ValueError, match='no frame_transform'):
    sim2real.CompositeEnv(inner, None, ('background',))
  with pytest.raises(ValueError, match='no frame_transform'):
    sim2real.CompositeEnv(inner, None, (), colour_regions=('objects',))
  with pytest.raises(ValueError, match=r"unknown regions \['sky'\]"):
    sim2real.CompositeEnv(inner, None, (), colour_regions=('sky',))
  for bad in [dict(translated=('objects',)), dict(translated=('background',), dilation=2),
              dict(translated=(), dilation=2)]:
    with pytest.raises(ValueError, match='ring_only takes the ring that dilation grows'):
      sim2real.CompositeEnv(inner, object(), ring_only=True, **bad)
  with pytest.raises(ValueError, match=r"regions \['robot'\] are both translated and colour"):
    sim2real.CompositeEnv(inner, object(), ('robot',), colour_regions=('robot', 'objects'))
  with pytest.raises(TypeError, match='has no render_paired'):  # allowed with ring_only
    sim2real.CompositeEnv(inner, object(), ('robot',), dilation=1, ring_only=True,
                          colour_regions=('robot', 'objects'))
  with pytest.raises(ValueError, match='dilation must be a whole number'):
    sim2real.CompositeEnv(inner, None, (), dilation=-1)
  with pytest.raises(TypeError, match='_ImageEnv has no render_paired'):
    sim2real.CompositeEnv(inner, None, ())
