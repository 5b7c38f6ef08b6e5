"""Tests for rl_cyclegan/networks/layers.py."""

import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan.networks import layers


def _top_singular_value(conv_layer):
  kernel = np.asarray(getattr(conv_layer.kernel, '_variable', conv_layer.kernel).numpy())
  return np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]


# ------------------------------------------------------------------------------------ crop


def test_crop_to_match_drops_first_row_and_column():
  x = tf.reshape(tf.range(9, dtype=tf.float32), [1, 3, 3, 1])  # rows [0 1 2] [3 4 5] [6 7 8]
  ref = tf.zeros([1, 2, 2, 5])
  out = layers.crop_to_match(x, ref)
  # First row (0 1 2) and first column (0 3 6) dropped: [[4, 5], [7, 8]].
  np.testing.assert_array_equal(out.numpy()[0, :, :, 0], [[4., 5.], [7., 8.]])


def test_crop_to_match_one_dimension_and_equal_sizes():
  x = tf.reshape(tf.range(6, dtype=tf.float32), [1, 3, 2, 1])  # [0 1] [2 3] [4 5]
  out = layers.crop_to_match(x, tf.zeros([1, 2, 2, 1]))
  np.testing.assert_array_equal(out.numpy()[0, :, :, 0], [[2., 3.], [4., 5.]])
  same = layers.crop_to_match(x, tf.zeros([1, 3, 2, 1]))
  np.testing.assert_array_equal(same.numpy(), x.numpy())


def test_crop_to_match_paper_sizes_60_vs_59():
  x = tf.random.normal([1, 60, 60, 2])
  out = layers.crop_to_match(x, tf.zeros([1, 59, 59, 2]))
  assert out.shape == (1, 59, 59, 2)
  np.testing.assert_array_equal(out.numpy(), x.numpy()[:, 1:, 1:, :])


@pytest.mark.parametrize('x_hw,ref_hw', [((4, 4), (2, 2)), ((3, 3), (4, 3)), ((5, 3), (3, 3))])
def test_crop_to_match_rejects_other_differences(x_hw, ref_hw):
  with pytest.raises(ValueError, match='crop_to_match.*exceed it by one'):
    layers.crop_to_match(tf.zeros([1, *x_hw, 1]), tf.zeros([1, *ref_hw, 1]))


def test_crop_to_match_dynamic_shapes():
  fn = tf.function(layers.crop_to_match, input_signature=[
      tf.TensorSpec([None, None, None, 1]), tf.TensorSpec([None, None, None, 1])])
  x = tf.reshape(tf.range(9, dtype=tf.float32), [1, 3, 3, 1])
  np.testing.assert_array_equal(fn(x, tf.zeros([1, 2, 2, 1])).numpy()[0, :, :, 0],
                                [[4., 5.], [7., 8.]])
  with pytest.raises(tf.errors.InvalidArgumentError, match='exceeds ref'):
    fn(tf.zeros([1, 5, 5, 1]), tf.zeros([1, 2, 2, 1]))


# ------------------------------------------------------------------------------ upsample


def test_upsample_nearest_2x_worked_example():
  x = tf.constant([[1., 2.], [3., 4.]])[None, :, :, None]  # [1, 2, 2, 1]
  out = layers.upsample_nearest_2x(x).numpy()[0, :, :, 0]
  np.testing.assert_array_equal(out, [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])


def test_upsample_matches_tf_image_resize_nearest():
  x = tf.random.normal([2, 5, 3, 4])
  expected = tf.image.resize(x, [10, 6], method='nearest')
  np.testing.assert_array_equal(layers.upsample_nearest_2x(x).numpy(), expected.numpy())


# ----------------------------------------------------------------------------- instance norm


def test_instance_norm_normalizes_per_image_and_channel():
  rng = np.random.default_rng(0)
  scale = rng.uniform(1.0, 5.0, size=[3, 1, 1, 4])  # var >> epsilon
  offset = rng.uniform(-10, 10, size=[3, 1, 1, 4])
  x = (rng.normal(size=[3, 8, 6, 4]) * scale + offset).astype(np.float32)
  norm = layers.instance_norm(epsilon=1e-3)
  out = norm(x).numpy()
  np.testing.assert_allclose(out.mean(axis=(1, 2)), 0.0, atol=1e-4)
  np.testing.assert_allclose(out.std(axis=(1, 2)), 1.0, atol=1e-3)
  # NumPy reference with gamma = 1, beta = 0 at initialization.
  mean = x.mean(axis=(1, 2), keepdims=True)
  var = x.var(axis=(1, 2), keepdims=True)
  np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-3), atol=1e-4)
  assert len(norm.trainable_variables) == 2  # gamma [4], beta [4]
  assert sum(int(np.prod(v.shape)) for v in norm.trainable_variables) == 8


def test_instance_norm_float32_under_bf16(bf16_policy):
  del bf16_policy
  x = tf.cast(tf.random.normal([2, 8, 8, 3]) * 3.0 + 2.0, tf.bfloat16)
  out = layers.instance_norm()(x)
  assert out.dtype == tf.float32
  np.testing.assert_allclose(out.numpy().mean(axis=(1, 2)), 0.0, atol=1e-3)


# ------------------------------------------------------------------------- spectral norm


def test_sn_conv_normalizes_top_singular_value_in_training():
  # N(0, 1) kernel [3 * 3 * 4, 8]: sigma ~ sqrt(36) + sqrt(8) ~ 8.8, well away from 1.
  sn = layers.sn_conv(8, 3, power_iterations=2,
                      kernel_initializer=tf.keras.initializers.RandomNormal(stddev=1.0, seed=0))
  x = tf.random.normal([2, 8, 8, 4])
  sn(x, training=False)  # builds; no normalization at inference
  assert _top_singular_value(sn.layer) > 5.0

  step = tf.function(lambda x: sn(x, training=True))
  for _ in range(15):  # 30 power iterations in total
    step(x)
  np.testing.assert_allclose(_top_singular_value(sn.layer), 1.0, atol=1e-2)

  kernel_before = sn.layer.kernel.numpy()
  sn(x, training=False)
  np.testing.assert_array_equal(sn.layer.kernel.numpy(), kernel_before)


def test_sn_conv_variables_and_shapes():
  sn = layers.sn_conv(5, 3, strides=2, use_bias=True)
  y = sn(tf.zeros([2, 9, 7, 4]))
  assert y.shape == (2, 5, 4, 5)  # ceil(9 / 2), ceil(7 / 2)
  assert sum(int(np.prod(v.shape)) for v in sn.trainable_variables) == 3 * 3 * 4 * 5 + 5
  assert sum(int(np.prod(v.shape)) for v in sn.non_trainable_variables) == 5  # sn_u [1, 5]


def test_sn_conv_keeps_float32_kernel_precision_under_bf16(bf16_policy):
  """tfa's wrapper would round the master kernel to bfloat16 on every training call."""
  del bf16_policy
  sn = layers.sn_conv(8, 3, power_iterations=2,
                      kernel_initializer=tf.keras.initializers.RandomNormal(stddev=1.0, seed=0))
  x = tf.random.normal([2, 8, 8, 4])
  step = tf.function(lambda x: sn(x, training=True))
  for _ in range(15):
    y = step(x)
  assert y.dtype == tf.bfloat16
  kernel = sn.layer.kernel._variable.numpy()  # float32 master copy
  assert kernel.dtype == np.float32
  rounded = kernel.astype(tf.bfloat16.as_numpy_dtype).astype(np.float32)
  assert np.mean(rounded == kernel) < 0.5
  np.testing.assert_allclose(_top_singular_value(sn.layer), 1.0, atol=1e-2)


# ---------------------------------------------------------------------------- conv block


def test_sn_conv_block_instance_norm_drops_bias():
  block = layers.SNConvBlock(6, 3, strides=2, use_instance_norm=True)
  y = block(tf.random.normal([2, 9, 9, 4]), training=True)
  assert y.shape == (2, 5, 5, 6)
  assert np.all(y.numpy() >= 0.0)  # ReLU
  # kernel (no bias) + gamma + beta.
  assert sum(int(np.prod(v.shape)) for v in block.trainable_variables) == 3 * 3 * 4 * 6 + 2 * 6

  leaky = layers.SNConvBlock(6, 3, use_instance_norm=False, activation='leaky_relu')
  y = leaky(tf.random.normal([2, 9, 9, 4]))
  assert np.any(y.numpy() < 0.0)
  assert sum(int(np.prod(v.shape)) for v in leaky.trainable_variables) == 3 * 3 * 4 * 6 + 6


def test_conv_output_size():
  assert layers.conv_output_size(472, [2] * 6) == 8
  assert layers.conv_output_size(59, 2) == 30
  assert layers.conv_output_size(64, [2, 3]) == 11


def test_sn_conv_accepts_new_spatial_sizes_after_build():
  """The tfa wrapper pins the first input's H, W; ours stays fully convolutional."""
  sn = layers.sn_conv(4, 3)
  assert sn(tf.zeros([1, 8, 8, 2])).shape == (1, 8, 8, 4)
  assert sn(tf.zeros([2, 5, 7, 2]), training=True).shape == (2, 5, 7, 4)
  with pytest.raises(ValueError):
    sn(tf.zeros([1, 8, 8, 3]))  # channel count stays fixed
