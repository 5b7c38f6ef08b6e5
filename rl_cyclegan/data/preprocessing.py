"""Image preprocessing between episode files (uint8, render size) and networks (float, crop size).

Paper, Appendix A: images are 512x640; training uses random 472x472 crops, evaluation the center
472x472 crop. The CPU default is 64x64 crops of 64x80 renders (specs.DEFAULT_*_SIZE).

Choice for transitions: s and s' are cropped independently (as QT-Opt's input pipeline does);
a transition's two images generally get different offsets. Crops keep the uint8 dtype so that
shuffle buffers stay small; ``to_model_image`` converts to float32 [-1, 1] afterwards.
"""

from typing import Sequence

import tensorflow as tf

from rl_cyclegan import specs


def _crop_hw(crop_size):
  return specs._check_size(crop_size, 'crop_size')  # pylint: disable=protected-access


def _check_fits(image, crop_h, crop_w):
  """Raises ValueError (static shapes) or adds an assertion (dynamic shapes) if the crop is too big.

  Returns the image (with an assertion dependency when the size is not known statically).
  """
  shape = image.shape
  if shape.rank is not None and shape.rank < 3:
    raise ValueError(f'image must be [..., H, W, C], got shape {shape.as_list()}')
  h, w = (shape[-3], shape[-2]) if shape.rank is not None else (None, None)
  if h is not None and w is not None:
    if crop_h > h or crop_w > w:
      raise ValueError(f'crop size {crop_h}x{crop_w} is larger than the image size {h}x{w}')
    return image
  dynamic = tf.shape(image)
  assertion = tf.debugging.Assert(
      tf.logical_and(crop_h <= dynamic[-3], crop_w <= dynamic[-2]),
      [f'crop size {crop_h}x{crop_w} is larger than the image size; image shape '
       '[..., H, W, C] =', dynamic])
  with tf.control_dependencies([assertion]):
    return tf.identity(image)


def center_crop(image, crop_size: Sequence[int]):
  """The exact center crop of ``image`` [..., H, W, C] -> [..., h, w, C] (any dtype).

  Offsets are (H - h) // 2 and (W - w) // 2 (for odd margins the extra row/column is at the
  bottom/right).
  """
  crop_h, crop_w = _crop_hw(crop_size)
  image = tf.convert_to_tensor(image)
  image = _check_fits(image, crop_h, crop_w)
  shape = tf.shape(image)
  top = (shape[-3] - crop_h) // 2
  left = (shape[-2] - crop_w) // 2
  cropped = image[..., top:top + crop_h, left:left + crop_w, :]
  return tf.ensure_shape(cropped, image.shape[:-3].concatenate([crop_h, crop_w, image.shape[-1]]))


def spread_crops(image, crop_size: Sequence[int], num_crops: int):
  """``num_crops`` crops of ``image`` [B, H, W, C] at evenly spaced offsets -> [num_crops * B, ...].

  The offsets run evenly from the top-left to the bottom-right corner of the free margin
  (rounded to whole pixels; on a 64x80 image with 64x64 crops: left = 0, 4, 8, 12, 16 for 5
  crops). ``num_crops`` = 1 is the center crop. Crop k of example b is row k * B + b. Used for
  test-time averaging over the offsets that training's random crops cover.
  """
  crop_h, crop_w = _crop_hw(crop_size)
  if int(num_crops) < 1:
    raise ValueError(f'num_crops must be >= 1, got {num_crops}')
  image = tf.convert_to_tensor(image)
  if image.shape.rank != 4 or not image.shape[1:3].is_fully_defined():
    raise ValueError(f'spread_crops expects [B, H, W, C] with a static H, W, got {image.shape}')
  image = _check_fits(image, crop_h, crop_w)
  if int(num_crops) == 1:
    return center_crop(image, crop_size)
  margin_h, margin_w = image.shape[1] - crop_h, image.shape[2] - crop_w
  crops = []
  for k in range(int(num_crops)):
    top = int(round(k * margin_h / (num_crops - 1)))
    left = int(round(k * margin_w / (num_crops - 1)))
    crops.append(image[:, top:top + crop_h, left:left + crop_w, :])
  return tf.concat(crops, axis=0)  # [num_crops * B, h, w, C]


def random_crop(image, crop_size: Sequence[int], seed=None):
  """A uniformly random crop of ``image`` [H, W, C] or [B, H, W, C] (independent per example).

  Args:
    image: any dtype; [H, W, C] or [B, H, W, C].
    crop_size: (h, w), at most the image size (else ValueError naming both sizes).
    seed: None (stateful random op), an int, or a shape-[2] int tensor for a stateless,
      reproducible crop (``tf.image.stateless_random_crop``). For [B, ...] inputs each example
      gets its own offset (with a seed, derived from it).
  """
  crop_h, crop_w = _crop_hw(crop_size)
  image = tf.convert_to_tensor(image)
  image = _check_fits(image, crop_h, crop_w)
  rank = image.shape.rank
  if rank == 4:
    batch = tf.shape(image)[0]
    if seed is None:
      seeds = tf.random.uniform([batch, 2], maxval=2**31 - 1, dtype=tf.int32)
    else:
      seeds = tf.random.experimental.stateless_split(_as_seed(seed), num=batch)
    return tf.map_fn(lambda args: random_crop(args[0], crop_size, seed=args[1]), (image, seeds),
                     fn_output_signature=tf.TensorSpec(
                         [crop_h, crop_w, image.shape[-1]], image.dtype))
  if rank != 3:
    raise ValueError(f'random_crop expects [H, W, C] or [B, H, W, C], got {image.shape}')
  size = [crop_h, crop_w, tf.shape(image)[-1]]
  if seed is None:
    cropped = tf.image.random_crop(image, size)
  else:
    cropped = tf.image.stateless_random_crop(image, size, seed=_as_seed(seed))
  return tf.ensure_shape(cropped, [crop_h, crop_w, image.shape[-1]])


def _as_seed(seed):
  if isinstance(seed, int):
    return tf.constant([seed, 0], tf.int64)
  return tf.cast(seed, tf.int64)


def crop(image, crop_size, training, seed=None):
  """Random crop for training, center crop for evaluation (paper, Appendix A)."""
  return random_crop(image, crop_size, seed) if training else center_crop(image, crop_size)


def to_model_image(image):
  """uint8 [0, 255] -> float32 [-1, 1] (specs.to_float_image)."""
  return specs.to_float_image(image)
