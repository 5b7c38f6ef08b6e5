"""Tests for rl_cyclegan/networks/generator.py (U-Net, paper Fig. 5)."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan.networks import generator
from rl_cyclegan.networks import layers

SMALL = generator.small_config()  # filters (16, 32, 64, 128)


@pytest.fixture(scope='module')
def small_generator():
  return generator.UNetGenerator(**SMALL)


def _num_params(variables):
  return sum(int(np.prod(v.shape)) for v in variables)


def expected_param_counts(filters, kernel_size=3, output_kernel_size=3, channels=3):
  """(trainable, non-trainable) from the architecture formula.

  Encoder level i: conv k x k, f_{i-1} -> f_i (f_{-1} = 3), no bias; instance norm 2 f_i.
  Decoder level i (i < L - 1): conv k x k, f_{i+1} -> f_i, no bias; instance norm 2 f_i.
  Output: conv k_o x k_o, f_0 -> 3, with bias.
  Non-trainable: one spectral-norm vector u [1, C_out] per conv.
  """
  k2 = kernel_size ** 2
  ins = (channels,) + tuple(filters[:-1])
  trainable = sum(k2 * c_in * f + 2 * f for c_in, f in zip(ins, filters))
  trainable += sum(k2 * filters[i + 1] * filters[i] + 2 * filters[i]
                   for i in range(len(filters) - 1))
  trainable += output_kernel_size ** 2 * filters[0] * channels + channels
  non_trainable = sum(filters) + sum(filters[:-1]) + channels
  return trainable, non_trainable


@pytest.mark.parametrize('height,width', [(48, 48), (64, 64), (64, 80), (63, 63), (59, 59)])
def test_output_shape_and_range(small_generator, height, width):
  images = tf.random.uniform([2, height, width, 3], -1.0, 1.0)
  out = small_generator(images, training=False)
  assert out.shape == (2, height, width, 3)
  assert out.dtype == tf.float32
  assert np.all(np.abs(out.numpy()) <= 1.0)
  assert np.all(np.isfinite(out.numpy()))


def test_paper_size_472_crops_twice():
  """Default depth (7 levels): 472 -> 236 -> 118 -> 59 -> 30 -> 15 -> 8, two odd levels."""
  filters = (8, 8, 16, 16, 16, 16, 16)  # paper depth, small widths
  assert len(filters) == len(generator.UNetGenerator().down_blocks)
  sizes = [472]
  for _ in filters[1:]:
    sizes.append(layers.conv_output_size(sizes[-1], 2))
  assert sizes == [472, 236, 118, 59, 30, 15, 8]
  assert sum(2 * sizes[i + 1] != sizes[i] for i in range(len(sizes) - 1)) == 2  # crops
  net = generator.UNetGenerator(filters=filters)
  out = net(tf.random.uniform([1, 472, 472, 3], -1.0, 1.0))
  assert out.shape == (1, 472, 472, 3)


def test_unknown_batch_and_training_in_tf_function(small_generator):
  fn = tf.function(lambda x: small_generator(x, training=True),
                   input_signature=[tf.TensorSpec([None, 64, 64, 3], tf.float32)])
  for batch in (1, 3):
    assert fn(tf.random.uniform([batch, 64, 64, 3], -1, 1)).shape == (batch, 64, 64, 3)
  # Fully convolutional: unknown spatial size too (dynamic crop_to_match).
  fn2 = tf.function(lambda x: small_generator(x, training=False),
                    input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
  assert fn2(tf.zeros([2, 59, 63, 3])).shape == (2, 59, 63, 3)


@pytest.mark.parametrize('kwargs', [SMALL, dict(filters=(4, 8, 12), kernel_size=5,
                                                 output_kernel_size=7)])
def test_variable_counts(kwargs):
  net = generator.UNetGenerator(**kwargs)
  net(tf.zeros([1, 16, 16, 3]))
  trainable, non_trainable = expected_param_counts(
      kwargs['filters'], kwargs.get('kernel_size', 3), kwargs.get('output_kernel_size', 3))
  assert _num_params(net.trainable_variables) == trainable
  assert _num_params(net.non_trainable_variables) == non_trainable
  # 2 convs per level except the bottom one, plus the output conv; each has a kernel + u.
  num_convs = 2 * len(kwargs['filters'])
  assert len([v for v in net.variables if 'kernel' in v.name]) == num_convs


def test_paper_default_variable_count():
  net = generator.UNetGenerator()
  net(tf.zeros([1, 8, 8, 3]))
  trainable, _ = expected_param_counts((64, 128, 256, 512, 512, 512, 512))
  assert _num_params(net.trainable_variables) == trainable


def test_every_conv_spectral_normalized_and_norm_except_output(small_generator):
  small_generator(tf.zeros([1, 16, 16, 3]))
  convs = [m for m in small_generator.submodules if isinstance(m, tf.keras.layers.Conv2D)]
  wrapped = [m.layer for m in small_generator.submodules
             if isinstance(m, layers.SpectralNormalization)]
  assert len(convs) == 2 * len(SMALL['filters'])
  assert set(map(id, convs)) == set(map(id, wrapped))
  blocks = small_generator.down_blocks + small_generator.up_blocks
  assert all(isinstance(b.norm, tf.keras.layers.GroupNormalization) for b in blocks)
  norms = [m for m in small_generator.submodules
           if isinstance(m, tf.keras.layers.GroupNormalization)]
  assert len(norms) == len(convs) - 1  # none on the output conv
  assert small_generator.output_conv.layer.use_bias


def test_skip_connections_reach_output():
  """Changing one input pixel changes the output there through the full-resolution skip."""
  net = generator.UNetGenerator(filters=(8, 8, 8))
  x = tf.random.uniform([1, 32, 32, 3], -1, 1, seed=0)
  base = net(x).numpy()
  x2 = tf.tensor_scatter_nd_update(x, [[0, 5, 5, 0]], [0.9])
  diff = np.abs(net(x2).numpy() - base).max(axis=-1)[0]  # [32, 32]
  assert diff[5, 5] > 0.0
  assert diff[31, 31] < diff[5, 5]


def test_image_size_and_dtype_errors():
  net = generator.UNetGenerator(filters=(4, 8), image_size=(64, 64))
  assert net(tf.zeros([1, 64, 64, 3])).shape == (1, 64, 64, 3)
  with pytest.raises(ValueError, match=r'\[64, 64, 3\].*TensorSpec'):
    net(tf.zeros([1, 48, 48, 3]))
  with pytest.raises(ValueError, match=r'dtype float32.*TensorSpec.*got uint8'):
    net(tf.zeros([1, 64, 64, 3], tf.uint8))
  free = generator.UNetGenerator(filters=(4, 8))
  with pytest.raises(ValueError, match=r'\[None, None, 3\]'):
    free(tf.zeros([1, 32, 32, 4]))
  with pytest.raises(ValueError, match='rank 4'):
    free(tf.zeros([32, 32, 3]))


def test_bf16_policy_float32_outputs_close_to_float32(bf16_policy):
  del bf16_policy
  net16 = generator.UNetGenerator(**SMALL)
  x = tf.random.uniform([2, 32, 32, 3], -1, 1)
  out16 = tf.function(lambda x: net16(x, training=True))(x)
  assert out16.dtype == tf.float32
  assert all(v.dtype == tf.float32 for v in net16.variables)
  assert net16.down_blocks[0].conv.layer.compute_dtype == 'bfloat16'
  # The same weights under float32 give nearly the same images.
  tf.keras.mixed_precision.set_global_policy('float32')
  net32 = generator.UNetGenerator(**SMALL)
  net32(x)
  net32.set_weights(net16.get_weights())
  out16 = net16(x, training=False).numpy()
  out32 = net32(x, training=False).numpy()
  np.testing.assert_allclose(out16, out32, atol=0.1)
  assert np.mean(np.abs(out16 - out32)) < 0.02


def test_overfits_one_batch():
  """A few Adam steps on a fixed target lower the L1 loss."""
  net = generator.UNetGenerator(filters=(8, 16))
  x = tf.random.uniform([2, 16, 16, 3], -1, 1, seed=1)
  target = -x  # invert colours
  opt = tf.keras.optimizers.Adam(1e-2)

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.abs(net(x, training=True) - target))
    grads = tape.gradient(loss, net.trainable_variables)
    opt.apply_gradients(zip(grads, net.trainable_variables))
    return loss

  first = float(step())
  for _ in range(30):
    last = float(step())
  assert last < 0.6 * first


def test_gin_configurable():
  gin.parse_config(['UNetGenerator.filters = (4, 8)', 'UNetGenerator.image_size = (16, 16)'])
  net = generator.UNetGenerator()
  assert len(net.down_blocks) == 2
  assert net.image_spec.shape == (16, 16, 3)


# ----------------------------------------------------------------------------- mask head


def test_no_mask_head_by_default_keeps_the_variables():
  """num_mask_classes = 0 (default): the variables of the generator before the head existed,
  so existing checkpoints restore unchanged."""
  plain = generator.UNetGenerator(**SMALL)
  zero = generator.UNetGenerator(num_mask_classes=0, **SMALL)
  for net in (plain, zero):
    net(tf.zeros([1, 16, 16, 3]))
  trainable, non_trainable = expected_param_counts(SMALL['filters'])
  assert _num_params(zero.trainable_variables) == trainable
  assert _num_params(zero.non_trainable_variables) == non_trainable
  assert [v.name for v in zero.variables] == [v.name for v in plain.variables]
  assert not [v for v in zero.variables if 'mask' in v.name]
  with pytest.raises(ValueError, match='num_mask_classes'):
    zero.call_with_mask(tf.zeros([1, 16, 16, 3]))
  with pytest.raises(ValueError, match='num_mask_classes'):
    generator.UNetGenerator(num_mask_classes=-1)


@pytest.mark.parametrize('height,width', [(32, 32), (32, 40), (59, 59)])
def test_mask_head_shapes_variables_and_same_image(height, width):
  filters = (8, 16, 16)
  net = generator.UNetGenerator(filters=filters, num_mask_classes=4)
  images = tf.random.uniform([2, height, width, 3], -1.0, 1.0, seed=1)
  image_only = net(images)  # the first call creates the head's variables too
  trainable, non_trainable = expected_param_counts(filters)
  # Head: a plain 3 x 3 conv f_0 -> 4 with bias, no spectral-norm vector.
  assert _num_params(net.trainable_variables) == trainable + 9 * filters[0] * 4 + 4
  assert _num_params(net.non_trainable_variables) == non_trainable
  image, logits = net.call_with_mask(images)
  assert image.shape == (2, height, width, 3) and logits.shape == (2, height, width, 4)
  assert logits.dtype == tf.float32
  np.testing.assert_array_equal(image.numpy(), image_only.numpy())  # the head is a side branch


def test_mask_head_in_tf_function_with_unknown_batch_and_bfloat16():
  previous = tf.keras.mixed_precision.global_policy()
  tf.keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    net = generator.UNetGenerator(filters=(8, 16), num_mask_classes=3)
  finally:
    tf.keras.mixed_precision.set_global_policy(previous)
  fn = tf.function(lambda x: net.call_with_mask(x, training=True),
                   input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
  for batch in (1, 3):
    image, logits = fn(tf.random.uniform([batch, 32, 32, 3], -1, 1))
    assert image.shape == (batch, 32, 32, 3) and logits.shape == (batch, 32, 32, 3)
    assert image.dtype == tf.float32 and logits.dtype == tf.float32
  assert all(v.dtype == tf.float32 for v in net.variables)
