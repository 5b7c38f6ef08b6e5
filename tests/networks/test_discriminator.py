"""Tests for rl_cyclegan/networks/discriminator.py (multi-scale patch discriminator)."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan.networks import discriminator
from rl_cyclegan.networks import layers

SMALL = discriminator.small_config()  # filters (16, 32, 64)


@pytest.fixture(scope='module')
def small_discriminator():
  return discriminator.MultiScaleDiscriminator(**SMALL)


def _num_params(variables):
  return sum(int(np.prod(v.shape)) for v in variables)


def expected_logit_sizes(height, width, num_layers, num_scales=3):
  """Scale s: s 2x2 'same' average pools, then num_layers stride-2 'same' convs."""
  return [(layers.conv_output_size(height, [2] * (s + num_layers)),
           layers.conv_output_size(width, [2] * (s + num_layers))) for s in range(num_scales)]


def expected_param_counts(filters, kernel_size=4, output_kernel_size=3, num_scales=3):
  """(trainable, non-trainable): per scale, convs k x k with bias, then a 1-channel conv.

  Non-trainable: a spectral-norm vector u [1, C_out] per conv.
  """
  ins = (3,) + tuple(filters)
  per_scale = sum(kernel_size ** 2 * c_in * f + f for c_in, f in zip(ins, filters))
  per_scale += output_kernel_size ** 2 * filters[-1] + 1
  return num_scales * per_scale, num_scales * (sum(filters) + 1)


@pytest.mark.parametrize('height,width', [(48, 48), (64, 64), (64, 80), (63, 63), (59, 59),
                                          (472, 472)])
def test_output_shapes(small_discriminator, height, width):
  batch = 1 if height == 472 else 2
  outputs = small_discriminator(tf.random.uniform([batch, height, width, 3], -1, 1))
  assert isinstance(outputs, list) and len(outputs) == 3
  sizes = expected_logit_sizes(height, width, len(SMALL['filters']))
  for out, (h, w) in zip(outputs, sizes):
    assert out.shape == (batch, h, w, 1)
    assert out.dtype == tf.float32
  if height == 64 and width == 64:
    assert sizes == [(8, 8), (4, 4), (2, 2)]


def test_unknown_batch_in_tf_function_training(small_discriminator):
  fn = tf.function(lambda x: small_discriminator(x, training=True),
                   input_signature=[tf.TensorSpec([None, 64, 80, 3], tf.float32)])
  for batch in (1, 3):
    outputs = fn(tf.random.uniform([batch, 64, 80, 3], -1, 1))
    assert [o.shape.as_list() for o in outputs] == [[batch, 8, 10, 1], [batch, 4, 5, 1],
                                                     [batch, 2, 3, 1]]


@pytest.mark.parametrize('kwargs', [SMALL, dict(filters=(4, 8), kernel_size=3,
                                                 output_kernel_size=1, num_scales=2)])
def test_variable_counts(kwargs):
  net = discriminator.MultiScaleDiscriminator(**kwargs)
  outputs = net(tf.zeros([1, 32, 32, 3]))
  assert len(outputs) == kwargs.get('num_scales', 3)
  trainable, non_trainable = expected_param_counts(
      kwargs['filters'], kwargs.get('kernel_size', 4), kwargs.get('output_kernel_size', 3),
      kwargs.get('num_scales', 3))
  assert _num_params(net.trainable_variables) == trainable
  assert _num_params(net.non_trainable_variables) == non_trainable


def test_paper_default_variable_count():
  net = discriminator.MultiScaleDiscriminator()
  net(tf.zeros([1, 16, 16, 3]))
  assert _num_params(net.trainable_variables) == expected_param_counts((64, 128, 256, 512))[0]


def test_every_conv_spectral_normalized(small_discriminator):
  small_discriminator(tf.zeros([1, 16, 16, 3]))
  convs = [m for m in small_discriminator.submodules if isinstance(m, tf.keras.layers.Conv2D)]
  wrapped = [m.layer for m in small_discriminator.submodules
             if isinstance(m, layers.SpectralNormalization)]
  assert len(convs) == 3 * (len(SMALL['filters']) + 1)
  assert set(map(id, convs)) == set(map(id, wrapped))


def test_coarse_scales_see_the_average_pooled_image(small_discriminator):
  """x and nearest-upsampled avgpool(x) have the same 2x2 average pools: scales 1, 2 agree."""
  x = tf.random.uniform([2, 32, 32, 3], -1, 1, seed=2)
  pooled = tf.nn.avg_pool2d(x, 2, 2, 'SAME')  # [2, 16, 16, 3]
  x_blocky = layers.upsample_nearest_2x(pooled)  # [2, 32, 32, 3]
  out = small_discriminator(x)
  out_blocky = small_discriminator(x_blocky)
  assert np.abs(out[0].numpy() - out_blocky[0].numpy()).max() > 1e-4  # full scale differs
  for s in (1, 2):
    np.testing.assert_allclose(out[s].numpy(), out_blocky[s].numpy(), atol=1e-5)


def test_scales_have_separate_weights(small_discriminator):
  small_discriminator(tf.zeros([1, 16, 16, 3]))
  kernels = [stack[0].conv.layer.kernel for stack in small_discriminator.scale_stacks]
  assert len({id(k) for k in kernels}) == 3
  assert not np.allclose(kernels[0].numpy(), kernels[1].numpy())


def test_bad_inputs_name_the_spec():
  net = discriminator.MultiScaleDiscriminator(filters=(4,), image_size=(32, 32))
  assert len(net(tf.zeros([1, 32, 32, 3]))) == 3
  with pytest.raises(ValueError, match=r'\[32, 32, 3\].*TensorSpec'):
    net(tf.zeros([1, 16, 16, 3]))
  with pytest.raises(ValueError, match=r'dtype float32.*TensorSpec.*got uint8'):
    net(tf.zeros([1, 32, 32, 3], tf.uint8))
  with pytest.raises(ValueError, match=r'\[32, 32, 3\]'):
    net(tf.zeros([1, 32, 32, 1]))
  with pytest.raises(ValueError, match='num_scales'):
    discriminator.MultiScaleDiscriminator(num_scales=0)


def test_bf16_policy_float32_outputs(bf16_policy):
  del bf16_policy
  net = discriminator.MultiScaleDiscriminator(**SMALL)
  outputs = tf.function(lambda x: net(x, training=True))(tf.random.uniform([2, 32, 32, 3]))
  assert [o.dtype for o in outputs] == [tf.float32] * 3
  assert all(v.dtype == tf.float32 for v in net.variables)
  assert all(np.all(np.isfinite(o.numpy())) for o in outputs)


def test_overfits_real_vs_fake():
  """A few Adam steps separate two fixed batches (logistic loss)."""
  net = discriminator.MultiScaleDiscriminator(filters=(8, 16))
  real = tf.random.uniform([2, 16, 16, 3], 0, 1, seed=3)
  fake = tf.random.uniform([2, 16, 16, 3], -1, 0, seed=4)
  opt = tf.keras.optimizers.Adam(1e-2)
  bce = tf.keras.losses.BinaryCrossentropy(from_logits=True)

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      loss = 0.0
      for r, f in zip(net(real, training=True), net(fake, training=True)):
        loss += bce(tf.ones_like(r), r) + bce(tf.zeros_like(f), f)
    grads = tape.gradient(loss, net.trainable_variables)
    opt.apply_gradients(zip(grads, net.trainable_variables))
    return loss

  first = float(step())
  for _ in range(20):
    last = float(step())
  assert last < 0.5 * first


def test_gin_configurable():
  gin.parse_config(['MultiScaleDiscriminator.num_scales = 2',
                    'MultiScaleDiscriminator.filters = (4,)'])
  outputs = discriminator.MultiScaleDiscriminator()(tf.zeros([1, 16, 16, 3]))
  assert [o.shape.as_list() for o in outputs] == [[1, 8, 8, 1], [1, 4, 4, 1]]
