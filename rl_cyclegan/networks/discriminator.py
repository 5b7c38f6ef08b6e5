"""Multi-scale patch discriminator for D_X and D_Y (paper Appendix A; after GraspGAN).

"The discriminator is a smaller convolutional neural network that operates on three scales of
the input image." Scale s sees the image average-pooled s times (2x2, stride 2, 'same'), i.e.
at 1, 1/2, 1/4 resolution, and has its own conv stack:

  x_s = avgpool^s(x)                                     [B, ceil(H / 2^s), ceil(W / 2^s), 3]
  h   = leaky_relu(sn_conv(f_j, k, stride 2)(h))  for each f_j in filters
  logits_s = sn_conv(1, output_kernel_size, stride 1)(h)    [B, ceil(H / 2^(s+L)), ..., 1]

All convs are spectrally normalized ('same' padding, with bias); there is no normalization
layer. Each logit judges one patch (real = high).
"""

import functools
from typing import List, Optional, Sequence

import gin
import tensorflow as tf

from rl_cyclegan import specs
from rl_cyclegan.networks import layers


def small_config():
  """Small CPU setting (64x64 crops): logit maps 8x8, 4x4, 2x2; ~0.13 M parameters."""
  return dict(filters=(16, 32, 64))


@gin.configurable
class MultiScaleDiscriminator(tf.keras.Model):
  """Patch discriminator at ``num_scales`` scales: [B, H, W, 3] -> list of [B, h_s, w_s, 1].

  Fully convolutional (any H, W, unknown batch). Under ``mixed_bfloat16`` the convs run in
  bfloat16 and the logits are returned as float32.
  """

  @layers.records_config
  def __init__(self,
               filters: Sequence[int] = (64, 128, 256, 512),
               kernel_size: int = 4,
               output_kernel_size: int = 3,
               num_scales: int = 3,
               leaky_relu_alpha: float = 0.2,
               power_iterations: int = 1,
               image_size: Optional[Sequence[int]] = None,
               recompute_grad: bool = False,
               name: str = 'multiscale_discriminator'):
    """Creates the discriminator.

    Args:
      filters: widths of the stride-2 convs of each scale's stack. Small CPU setting:
        (16, 32, 64).
      kernel_size: kernel of the stride-2 convs.
      output_kernel_size: kernel of the final 1-channel (logit) conv.
      num_scales: number of scales (paper: 3 = full, 1/2, 1/4).
      leaky_relu_alpha: LeakyReLU negative slope.
      power_iterations: spectral-norm power-method steps per training call.
      image_size: optional (height, width); when set, inputs of another size raise ValueError.
      recompute_grad: gradient checkpointing (``layers.checkpointed``) of each conv block in
        training calls: the power iteration runs first, and the backward pass recomputes each
        block's conv output instead of keeping it. Same values and variables.
      name: model name.
    """
    super().__init__(name=name, autocast=False)  # inputs are checked against the spec first
    if num_scales < 1:
      raise ValueError(f'num_scales must be >= 1, got {num_scales}')
    self._num_scales = int(num_scales)
    self.recompute_grad = bool(recompute_grad)
    if image_size is None:
      self.image_spec = tf.TensorSpec([None, None, specs.IMAGE_CHANNELS], tf.float32, 'image')
    else:
      h, w = specs._check_size(image_size, 'image_size')  # pylint: disable=protected-access
      self.image_spec = tf.TensorSpec([h, w, specs.IMAGE_CHANNELS], tf.float32, 'image')
    self.scale_stacks = []
    for s in range(self._num_scales):
      stack = [
          layers.SNConvBlock(
              f, kernel_size, strides=2, use_instance_norm=False, activation='leaky_relu',
              leaky_relu_alpha=leaky_relu_alpha, power_iterations=power_iterations,
              name=f'scale{s}_conv{j}') for j, f in enumerate(filters)]
      stack.append(
          layers.sn_conv(1, output_kernel_size, use_bias=True,
                         power_iterations=power_iterations, name=f'scale{s}_logits'))
      self.scale_stacks.append(stack)

  def call(self, images, training=False) -> List[tf.Tensor]:
    """Scores images patch-wise at every scale.

    Args:
      images: float32 [B, H, W, 3] in [-1, 1].
      training: True runs the spectral-norm power iteration (and updates the kernels).

    Returns:
      List of ``num_scales`` float32 logit maps; entry s is
      [B, ceil(H / 2^(s + L)), ceil(W / 2^(s + L)), 1] with L = len(filters).
    """
    specs.check_tensor(images, self.image_spec, f'{self.name} input images')
    recompute = bool(self.recompute_grad and training and layers.normalize_spectral(self))
    training = training and not recompute  # recompute: the kernels are normalized already

    def block(x, layer):
      return layer(x, training=training)  # [B, h', w', f_j] ... [B, h_s, w_s, 1]

    x = tf.cast(images, self.compute_dtype)  # [B, H, W, 3]
    outputs = []
    for s, stack in enumerate(self.scale_stacks):
      if s > 0:
        x = tf.nn.avg_pool2d(x, 2, 2, 'SAME')  # [B, ceil(H_{s-1} / 2), ceil(W_{s-1} / 2), 3]
      h = x
      for layer in stack:
        h = layers.checkpointed(functools.partial(block, layer=layer), recompute)(h)
      outputs.append(tf.cast(h, tf.float32))  # [B, h_s, w_s, 1]
    return outputs
