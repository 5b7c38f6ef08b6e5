"""U-Net generator for Sim2Real G and Real2Sim F (paper Appendix A, Fig. 5; after GraspGAN).

Architecture (L = len(filters), every conv spectrally normalized, 'same' padding):

  encoder  e_0 = block(filters[0], stride 1)(x)                 [B, H, W, f_0]
           e_i = block(filters[i], stride 2)(e_{i-1})           [B, ceil(H_{i-1}/2), ..., f_i]
  decoder  d_{L-1} = e_{L-1}
           d_{i} = crop_to_match(block(filters[i], stride 1)(up2x(d_{i+1})), e_i) + e_i
  output   y = tanh(sn_conv(3, stride 1)(d_0))                   [B, H, W, 3] in [-1, 1]

``block`` = SN conv -> instance norm -> ReLU; the output conv has no instance norm (Fig. 5
caption). ``up2x`` is nearest-neighbour 2x upsampling. Encoder outputs are ADDED to the
decoder features; when a level has an odd size s, ceil(s / 2) upsampled is s + 1 and the first
row/column is dropped (``layers.crop_to_match``).

The figure's exact per-block numbers are not in the text version of the paper. The defaults
(seven levels, 64 -> 512 filters, 3x3 kernels) reproduce the caption's property "in two cases
the first row and column are dropped" at the paper's 472x472 crops: 472 -> 236 -> 118 -> 59 ->
30 -> 15 -> 8, so the decoder crops 60 -> 59 and 16 -> 15.

Optional mask head (GraspGAN, Bousmalis et al. 2018: G also predicts the semantic segmentation
of its simulated input as an auxiliary task, which keeps it from deleting or adding objects):
with ``num_mask_classes`` = C > 0,

  mask     m = conv(C, stride 1)(d_0)                            [B, H, W, C] logits

a plain conv with bias from the last decoder features, next to the image output (ours: the
head's exact form is not given; it is not spectrally normalized because its output never
reaches a discriminator). ``call`` still returns the image only; ``call_with_mask`` returns
(image, mask logits). With C = 0 (the default) the network and its variables are exactly those
without a head, so checkpoints of either kind restore unchanged.

Memory (ours): with ``recompute_grad`` each encoder level and each decoder level (upsample,
block, crop, skip addition) is a gradient-checkpointed segment (``layers.checkpointed``): the
backward pass recomputes its convolution and instance-norm intermediates instead of keeping
them, and only the level outputs stay in memory. The spectral-norm power iteration runs once
before the segments, so outputs, gradients and kernel updates equal those without it.
"""

import functools
from typing import Optional, Sequence

import gin
import tensorflow as tf

from rl_cyclegan import specs
from rl_cyclegan.networks import layers


def small_config():
  """Small CPU setting (64x64 crops): 4 levels, 64 -> 8 at the bottom, ~0.2 M parameters."""
  return dict(filters=(16, 32, 64, 128))


@gin.configurable
class UNetGenerator(tf.keras.Model):
  """U-Net image-to-image generator: float32 [B, H, W, 3] in [-1, 1] -> same shape in [-1, 1].

  Fully convolutional: any H, W >= 1 and any (unknown) batch size. Under a ``mixed_bfloat16``
  global policy the variables are float32, the convolutions run in bfloat16, instance norm
  and the final tanh in float32, and the output is float32.
  """

  @layers.records_config
  def __init__(self,
               filters: Sequence[int] = (64, 128, 256, 512, 512, 512, 512),
               kernel_size: int = 3,
               output_kernel_size: int = 3,
               activation: str = 'relu',
               power_iterations: int = 1,
               norm_epsilon: float = 1e-3,
               image_size: Optional[Sequence[int]] = None,
               num_mask_classes: int = 0,
               recompute_grad: bool = False,
               name: str = 'unet_generator'):
    """Creates the generator.

    Args:
      filters: encoder widths per level; level 0 is a stride-1 conv at full resolution, each
        further level a stride-2 conv (len(filters) - 1 halvings). The decoder mirrors them.
        Small CPU setting: (16, 32, 64, 128).
      kernel_size: kernel of every encoder / decoder conv.
      output_kernel_size: kernel of the final 3-channel conv.
      activation: 'relu' or 'leaky_relu' after each instance norm.
      power_iterations: spectral-norm power-method steps per training call.
      norm_epsilon: instance-norm epsilon.
      image_size: optional (height, width); when set, inputs of another size raise ValueError.
      num_mask_classes: C > 0 adds the GraspGAN mask head (C segmentation logits per pixel,
        a conv of ``output_kernel_size``; its variables are created on the first call); 0
        (default) has no head and no extra variables.
      recompute_grad: gradient checkpointing of each level in training calls (see the module
        docstring): less memory for about one more forward pass. Same values and variables.
      name: model name.
    """
    super().__init__(name=name, autocast=False)  # inputs are checked against the spec first
    if not filters:
      raise ValueError('filters must name at least one level')
    self._filters = tuple(int(f) for f in filters)
    if image_size is None:
      self.image_spec = tf.TensorSpec([None, None, specs.IMAGE_CHANNELS], tf.float32, 'image')
    else:
      h, w = specs._check_size(image_size, 'image_size')  # pylint: disable=protected-access
      self.image_spec = tf.TensorSpec([h, w, specs.IMAGE_CHANNELS], tf.float32, 'image')

    def block(f, strides, block_name):
      return layers.SNConvBlock(
          f, kernel_size, strides=strides, use_instance_norm=True, activation=activation,
          power_iterations=power_iterations, norm_epsilon=norm_epsilon, name=block_name)

    self.down_blocks = [
        block(f, 1 if i == 0 else 2, f'down_{i}') for i, f in enumerate(self._filters)]
    # up_blocks[i] maps level i + 1 (upsampled) to level i.
    self.up_blocks = [block(f, 1, f'up_{i}') for i, f in enumerate(self._filters[:-1])]
    self.output_conv = layers.sn_conv(
        specs.IMAGE_CHANNELS, output_kernel_size, use_bias=True,
        power_iterations=power_iterations, name='output')
    if num_mask_classes < 0:
      raise ValueError(f'num_mask_classes must be >= 0, got {num_mask_classes}')
    self.num_mask_classes = int(num_mask_classes)
    self.recompute_grad = bool(recompute_grad)
    if self.num_mask_classes:  # no attribute at all without a head: checkpoint keys unchanged
      self.mask_conv = tf.keras.layers.Conv2D(
          self.num_mask_classes, output_kernel_size, padding='same', use_bias=True,
          name='mask')

  def _segments(self, images, training):
    """Checks ``images``; returns (recompute, training for the layers). With
    ``recompute_grad`` (training calls, once built) every kernel's power iteration runs now
    and the layers are called with ``training=False``, so that the checkpointed levels are
    pure."""
    specs.check_tensor(images, self.image_spec, f'{self.name} input images')
    recompute = bool(self.recompute_grad and training and layers.normalize_spectral(self))
    return recompute, training and not recompute

  def _features(self, images, training, recompute):
    """The last decoder features d_0, [B, H, W, f_0] in the compute dtype."""

    def down(x, block):
      return block(x, training=training)  # [B, H_i, W_i, f_i]

    def up(x, skip, block):
      x = layers.upsample_nearest_2x(x)  # [B, 2 H_{i+1}, 2 W_{i+1}, f_{i+1}]
      x = block(x, training=training)  # [B, 2 H_{i+1}, 2 W_{i+1}, f_i]
      return layers.crop_to_match(x, skip) + skip  # [B, H_i, W_i, f_i]

    x = tf.cast(images, self.compute_dtype)  # [B, H, W, 3]
    skips = []
    for block in self.down_blocks:
      x = layers.checkpointed(functools.partial(down, block=block), recompute)(x)
      skips.append(x)
    for i in reversed(range(len(self.up_blocks))):
      x = layers.checkpointed(functools.partial(up, block=self.up_blocks[i]), recompute)(
          x, skips[i])
    if self.num_mask_classes and not self.mask_conv.built:
      self.mask_conv(x)  # once: the head's variables (named <G>/mask/...) exist after any call
    return x

  def _image(self, features, training):
    x = self.output_conv(features, training=training)  # [B, H, W, 3]
    return tf.tanh(tf.cast(x, tf.float32))  # [B, H, W, 3] float32

  def call(self, images, training=False):
    """Translates images.

    Args:
      images: float32 [B, H, W, 3] in [-1, 1].
      training: True runs the spectral-norm power iteration (and updates the kernels).

    Returns:
      float32 [B, H, W, 3] in [-1, 1].
    """
    recompute, training = self._segments(images, training)
    return self._image(self._features(images, training, recompute), training)

  def call_with_mask(self, images, training=False):
    """Translates images and predicts their segmentation (needs ``num_mask_classes`` > 0).

    Args:
      images: float32 [B, H, W, 3] in [-1, 1].
      training: as in ``call``.

    Returns:
      (float32 [B, H, W, 3] in [-1, 1], float32 [B, H, W, num_mask_classes] mask logits).

    Raises:
      ValueError: the generator has no mask head (``num_mask_classes`` = 0).
    """
    if not self.num_mask_classes:
      raise ValueError(f'{self.name}: call_with_mask needs a mask head; build the generator '
                       'with num_mask_classes > 0 (e.g. UNetGenerator.num_mask_classes = 4)')
    recompute, training = self._segments(images, training)
    features = self._features(images, training, recompute)  # [B, H, W, f_0]
    logits = self.mask_conv(features)  # [B, H, W, C]
    return self._image(features, training), tf.cast(logits, tf.float32)
