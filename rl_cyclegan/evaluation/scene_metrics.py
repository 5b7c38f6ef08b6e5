"""How well a Sim2Real generator keeps the scene, measured on paired renders (evaluation only).

Paper Section 4: a sim-to-real model "may produce very realistic images, but in the process may
remove some of the objects"; RL-CycleGAN's RL-scene loss exists to stop that. Our pseudo-real
world renders the same state in both appearances (``paired_set.py``), so G(x) can be compared
with the true real render of x. All functions take images in [0, 255] units (uint8 or float)
of shape [N, h, w, 3] and boolean masks [N, h, w]; they are NumPy only.

Metrics (``scene_preservation_metrics``; every mean is pooled over all masked pixels of all
images unless stated otherwise; a region with no pixels gives NaN):

  mae[_objects|_robot|_background]
                         mean |G(x) - real(x)| over pixels and the 3 channels, in [0, 255]:
                         all pixels, the object pixels, the robot's, or the rest (neither
                         object nor robot: tray, table and floor). Together they say where
                         G's errors lie.
  psnr[_objects|_robot|_background]
                         10 log10(255^2 / MSE), MSE pooled like the MAE; capped at PSNR_CAP
                         (100 dB), so identical images give 100.0 instead of inf.
  edge_corr_objects,     structure that ignores global color style: per image, the Pearson
  edge_corr_robot        correlation between the color gradient magnitudes
                         sqrt(sum_c |Sobel I_c|^2) (c = R, G, B) of G(x) and of real(x), over
                         the mask dilated by ``edge_dilation`` pixels (so an object's outline is
                         included from both sides); the mean over images whose region has at
                         least MIN_EDGE_PIXELS pixels and non-constant gradients in both images.
                         Exactly invariant to a global offset and a gain shared by the
                         channels (score 1.0), nearly so to per-channel gains (color grading);
                         a removed object leaves a flat region and scores ~0. Color rather than
                         luma gradients, so a red object on a grey tray of equal luma still has
                         an edge.
  object_preservation    of the object pixels that stand out from their local background in
                         the true real render, the fraction that also stand out in G(x).
                         Contrast of pixel p in image I: mean over channels of
                         |I(p) - B_I(p)|, where B_I(p) is the mean color of the non-object
                         pixels in the (2 r + 1)^2 window around p (r = ``background_radius``)
                         in the same image I. p "stands out" when its contrast exceeds
                         ``contrast_threshold`` (default 20 / 255). Object pixels with no
                         non-object pixel in their window are left out. Score =
                         #{p: stands out in real(x) and in G(x)} / #{p: stands out in real(x)}.
                         Relative by construction, so a global color shift keeps it at 1,
                         while painting an object over with the background drops it to 0.
  object_contrast_excess, the other side of object_preservation, which is a recall: how much
  robot_contrast_excess  more (> 0) or less (< 0) G(x) sets the region off from its surround
                         than real(x) does at the same pixel. The mean over the region's pixels
                         (with a non-region pixel in their window) of the contrast above, in
                         G(x) minus in real(x), in levels of 255; for the robot, against its
                         non-robot surround. An offset shared by the whole image leaves it at
                         0. At real_gap 0.75 the Gs trained with L_RL-scene drew the objects
                         9.2 levels over real, the others 0.6 (docs/results.md, "Session 41").

The identity baseline (the sim image itself scored against real(x)) is what "doing nothing"
gets; ``evaluate_generator`` reports both under 'generator/...' and 'identity/...'.

Reading them (measured on a 32-state 64x64 paired set, seed 0): identity scores MAE ~83,
PSNR ~9 dB, edge_corr_objects ~0.34, object_preservation 1.0 (sim keeps every object). The
edge correlations measure structural fidelity to the real render, texture and sensor noise
included, not object presence: the true real render with its objects painted over by the
local background still scores edge_corr_objects ~0.38 (but object_preservation 0.0). Object
presence is object_preservation's job; it is a recall, so a generator that adds
high-frequency noise everywhere can inflate it: read it together with mae_objects and
edge_corr_objects. Only ~half of the real render's object pixels stand out at the default
threshold (the real palette is muted), so the score is about those pixels.
"""

import math
from typing import Callable, Dict, Mapping, Optional

import numpy as np

PSNR_CAP = 100.0  # dB; the PSNR of identical images
MIN_EDGE_PIXELS = 4


def _as_float(images):
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f'images must be [N, h, w, 3] in [0, 255], got shape {images.shape}')
  return images.astype(np.float64)


def _check_mask(mask, images, what='mask'):
  if mask is None:
    return np.ones(images.shape[:3], bool)
  mask = np.asarray(mask, bool)
  if mask.shape != images.shape[:3]:
    raise ValueError(f'{what} must be [N, h, w] = {list(images.shape[:3])}, got {mask.shape}')
  return mask


def mean_absolute_error(a, b, mask=None) -> float:
  """Mean |a - b| over the masked pixels (all images pooled) and channels, [0, 255] units.

  a, b: [N, h, w, 3]; mask: bool [N, h, w] or None (all pixels). NaN for an empty mask.
  """
  a, b = _as_float(a), _as_float(b)
  mask = _check_mask(mask, a)
  if not mask.any():
    return float('nan')
  return float(np.abs(a - b)[mask].mean())


def psnr(a, b, mask=None, max_value=255.0, cap=PSNR_CAP) -> float:
  """10 log10(max_value^2 / MSE) with the MSE pooled over masked pixels; at most ``cap`` dB.

  NaN for an empty mask; identical images give ``cap``.
  """
  a, b = _as_float(a), _as_float(b)
  mask = _check_mask(mask, a)
  if not mask.any():
    return float('nan')
  mse = float(np.square(a - b)[mask].mean())
  if mse <= 0.0:
    return float(cap)
  return float(min(cap, 10.0 * math.log10(max_value**2 / mse)))


def dilate(mask, radius=1):
  """Binary dilation of bool [N, h, w] by a (2 radius + 1)^2 square."""
  mask = np.asarray(mask, bool)
  if radius <= 0:
    return mask
  h, w = mask.shape[-2:]
  padded = np.pad(mask, [(0, 0), (radius, radius), (radius, radius)])
  out = np.zeros_like(mask)
  for dy in range(2 * radius + 1):
    for dx in range(2 * radius + 1):
      out |= padded[:, dy:dy + h, dx:dx + w]
  return out


def gradient_magnitude(images):
  """Color Sobel gradient magnitude sqrt(sum_c gx_c^2 + gy_c^2) of [N, h, w, 3] -> [N, h, w].

  Borders use edge padding (replicated pixels), so the image border is not an edge.
  """
  p = np.pad(_as_float(images), [(0, 0), (1, 1), (1, 1), (0, 0)], mode='edge')
  gx = ((p[:, :-2, 2:] + 2 * p[:, 1:-1, 2:] + p[:, 2:, 2:]) -
        (p[:, :-2, :-2] + 2 * p[:, 1:-1, :-2] + p[:, 2:, :-2]))  # [N, h, w, 3]
  gy = ((p[:, 2:, :-2] + 2 * p[:, 2:, 1:-1] + p[:, 2:, 2:]) -
        (p[:, :-2, :-2] + 2 * p[:, :-2, 1:-1] + p[:, :-2, 2:]))  # [N, h, w, 3]
  return np.sqrt(np.sum(gx * gx + gy * gy, axis=-1))


def edge_correlation(a, b, mask=None, dilation=1) -> float:
  """Mean over images of corr(|grad a|, |grad b|) (color Sobel) inside the dilated mask.

  Images with fewer than MIN_EDGE_PIXELS region pixels or constant gradients in either image
  are skipped; NaN if every image is skipped.
  """
  a, b = _as_float(a), _as_float(b)
  mask = dilate(_check_mask(mask, a), dilation)
  ga, gb = gradient_magnitude(a), gradient_magnitude(b)
  values = []
  for i in range(a.shape[0]):
    m = mask[i]
    if m.sum() < MIN_EDGE_PIXELS:
      continue
    x, y = ga[i][m], gb[i][m]
    x, y = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)))
    if denominator <= 1e-12:
      continue
    values.append(float(np.dot(x, y)) / denominator)
  return float(np.mean(values)) if values else float('nan')


def _box_sum(x, radius):
  """Sum of x [N, h, w, ...] over the (2 radius + 1)^2 window around every pixel (zero padded)."""
  h, w = x.shape[1:3]
  pad = [(0, 0), (radius + 1, radius), (radius + 1, radius)] + [(0, 0)] * (x.ndim - 3)
  c = np.pad(x, pad).cumsum(1).cumsum(2)  # integral image with a leading zero row/column
  k = 2 * radius + 1
  return (c[:, k:k + h, k:k + w] - c[:, :h, k:k + w] - c[:, k:k + h, :w] + c[:, :h, :w])


def _local_background(images, mask, background_radius):
  """(B: the mean colour of the non-mask pixels in each pixel's window, float [N, h, w, 3];
  their count, float [N, h, w]) for float images [N, h, w, 3] and a bool mask [N, h, w]."""
  background = (~mask).astype(np.float64)  # [N, h, w]
  count = _box_sum(background, background_radius)  # [N, h, w]
  total = _box_sum(images * background[..., None], background_radius)  # [N, h, w, 3]
  return total / np.maximum(count, 1.0)[..., None], count


def local_contrast(images, object_mask, background_radius=3):
  """Per-pixel contrast against the local non-object background.

  Returns (contrast float [N, h, w] = mean_c |I(p) - B(p)|, valid bool [N, h, w]: the window
  around p holds at least one non-object pixel).
  """
  images = _as_float(images)
  object_mask = _check_mask(object_mask, images, 'object_mask')
  mean, count = _local_background(images, object_mask, background_radius)
  return np.abs(images - mean).mean(-1), count > 0.5


def _paired_contrast(generated, true_real, mask, background_radius):
  """(contrast in generated, contrast in true_real, the mask's pixels with a surround)."""
  generated, true_real = _as_float(generated), _as_float(true_real)
  mask = _check_mask(mask, true_real)
  c_true, valid = local_contrast(true_real, mask, background_radius)
  c_gen, _ = local_contrast(generated, mask, background_radius)
  return c_gen, c_true, mask & valid


def _preservation(c_gen, c_true, pixels, contrast_threshold) -> float:
  reference = pixels & (c_true > contrast_threshold)
  if not reference.any():
    return float('nan')
  return float((reference & (c_gen > contrast_threshold)).sum() / reference.sum())


def _excess(c_gen, c_true, pixels) -> float:
  return float((c_gen - c_true)[pixels].mean()) if pixels.any() else float('nan')


def contrast_gradient(images, mask, background_radius=3) -> np.ndarray:
  """The gradient, with respect to ``images``, of the region's mean local contrast: the mean
  over the pixels of ``mask`` with a non-mask pixel in their window of ``local_contrast``
  (all images pooled, as ``contrast_excess`` pools them). float64 [N, h, w, 3], in contrast
  units per image unit (any image scale; the contrast is linear in it). The direction that
  sets the region off from its surround fastest: a push on the images raises the region's
  contrast to first order by its dot product with this (``loss_direction``). Non-zero on the
  region's pixels (+/- 1/3 per channel over the pixel count) and on their non-mask surround
  (minus what each surround pixel adds to the local means B(p)). Where I(p) = B(p) exactly, the
  sign is taken as 0. Zero everywhere if no pixel of the mask has a surround."""
  images = _as_float(images)
  mask = _check_mask(mask, images)
  local_mean, count = _local_background(images, mask, background_radius)
  pixels = mask & (count > 0.5)
  n = pixels.sum()
  if n == 0:
    return np.zeros_like(images)
  background = (~mask).astype(np.float64)  # [N, h, w]
  # d|I(p) - B(p)| / dI(p) = s(p); / dI(q) = -s(p) / count(p) for each surround pixel q in p's
  # window, and p in q's window when q is in p's (the window is symmetric).
  sign = np.sign(images - local_mean) * pixels[..., None]  # [N, h, w, 3]
  spread = _box_sum(sign / np.maximum(count, 1.0)[..., None], background_radius)
  return (sign - background[..., None] * spread) / (3.0 * n)


def amplify_contrast(images, mask, gain: float, background_radius=3) -> np.ndarray:
  """``images`` with the pixels of ``mask`` set off from their surround ``gain`` times as much:
  I'(p) = B(p) + gain (I(p) - B(p)), B(p) the mean colour of the non-mask pixels in p's window
  (``local_contrast``'s), so each such pixel's local contrast is multiplied by ``gain`` (before
  clipping to [0, 255]). Pixels outside the mask, and mask pixels with no surround, are kept.
  An intervention for evaluation (``sim2real.CompositeEnv``'s ``real_transform``): a real
  render whose objects are drawn as loudly as a G draws them. Returns the dtype it was given
  (uint8 rounded)."""
  if not np.isfinite(gain) or gain < 0:
    raise ValueError(f'amplify_contrast: gain must be a finite number >= 0, got {gain!r}')
  dtype = np.asarray(images).dtype
  images = _as_float(images)
  mask = _check_mask(mask, images)
  local_mean, count = _local_background(images, mask, background_radius)
  pixels = (mask & (count > 0.5))[..., None]
  out = np.clip(np.where(pixels, local_mean + gain * (images - local_mean), images), 0, 255)
  return np.rint(out).astype(np.uint8) if dtype == np.uint8 else out.astype(dtype)


def object_preservation(generated, true_real, object_mask, contrast_threshold=20.0,
                        background_radius=3) -> float:
  """Fraction of object pixels standing out in true_real that also stand out in generated.

  See the module docstring. NaN if no object pixel stands out in true_real.
  """
  return _preservation(*_paired_contrast(generated, true_real, object_mask, background_radius),
                       contrast_threshold)


def contrast_excess(generated, true_real, mask, background_radius=3) -> float:
  """Mean over the pixels of ``mask`` of their local contrast (against the non-mask pixels
  around them, ``local_contrast``) in generated minus in true_real: > 0 where generated sets the
  region off more than the real render does. See the module docstring. NaN if no pixel of the
  mask has a non-mask pixel in its window."""
  return _excess(*_paired_contrast(generated, true_real, mask, background_radius))


def scene_preservation_metrics(generated_real, true_real, segmentation_masks: Mapping,
                               contrast_threshold=20.0, background_radius=3,
                               edge_dilation=1) -> Dict[str, float]:
  """All metrics of the module docstring for images [N, h, w, 3] in [0, 255].

  Args:
    generated_real: G(x) (or any candidate, e.g. x itself for the identity baseline).
    true_real: the real render of the same states.
    segmentation_masks: {'objects': bool [N, h, w], 'robot': bool [N, h, w]}; a paired set
      dict (with 'object_mask' and 'robot_mask') works as well.
    contrast_threshold, background_radius: object_preservation parameters (the radius also
      of the contrast excesses).
    edge_dilation: pixels by which masks grow for the edge correlations.

  Returns:
    {'mae', 'psnr', 'mae_objects', 'psnr_objects', 'mae_robot', 'psnr_robot',
     'mae_background', 'psnr_background', 'edge_corr_objects', 'edge_corr_robot',
     'object_preservation', 'object_contrast_excess', 'robot_contrast_excess'} as floats.
  """
  objects = segmentation_masks.get('objects', segmentation_masks.get('object_mask'))
  robot = segmentation_masks.get('robot', segmentation_masks.get('robot_mask'))
  if objects is None or robot is None:
    raise ValueError("segmentation_masks needs 'objects' and 'robot' (or 'object_mask' and "
                     "'robot_mask') boolean [N, h, w] masks, got keys "
                     f'{sorted(segmentation_masks)}')
  generated_real, true_real = _as_float(generated_real), _as_float(true_real)
  if generated_real.shape != true_real.shape:
    raise ValueError(f'generated_real {generated_real.shape} and true_real {true_real.shape} '
                     'must have the same shape')
  objects = _check_mask(objects, true_real, 'objects mask')
  robot = _check_mask(robot, true_real, 'robot mask')
  background = ~(objects | robot)
  object_contrast = _paired_contrast(generated_real, true_real, objects, background_radius)
  return {
      'mae': mean_absolute_error(generated_real, true_real),
      'psnr': psnr(generated_real, true_real),
      'mae_objects': mean_absolute_error(generated_real, true_real, objects),
      'psnr_objects': psnr(generated_real, true_real, objects),
      'mae_robot': mean_absolute_error(generated_real, true_real, robot),
      'psnr_robot': psnr(generated_real, true_real, robot),
      'mae_background': mean_absolute_error(generated_real, true_real, background),
      'psnr_background': psnr(generated_real, true_real, background),
      'edge_corr_objects': edge_correlation(generated_real, true_real, objects, edge_dilation),
      'edge_corr_robot': edge_correlation(generated_real, true_real, robot, edge_dilation),
      'object_preservation': _preservation(*object_contrast, contrast_threshold),
      'object_contrast_excess': _excess(*object_contrast),
      'robot_contrast_excess': contrast_excess(generated_real, true_real, robot,
                                               background_radius),
  }


def float_to_pixels(images):
  """float [-1, 1] -> float64 [0, 255] (clipped, not rounded)."""
  return (np.clip(np.asarray(images, np.float64), -1.0, 1.0) + 1.0) * 127.5


def evaluate_generator(generator_fn: Optional[Callable], paired_set: Mapping,
                       batch_size: int = 16, **metric_kwargs) -> Dict[str, float]:
  """Scores G(sim) and the identity baseline (sim) against the paired real renders.

  Args:
    generator_fn: float32 [B, h, w, 3] in [-1, 1] -> [B, h, w, 3] in [-1, 1] (tf or numpy),
      e.g. ``lambda x: learner.generator_g(x, training=False)``. None: identity only.
    paired_set: a dict from ``paired_set.make_paired_set`` / ``load_paired_set``.
    batch_size: images per generator call.
    **metric_kwargs: passed to ``scene_preservation_metrics``.

  Returns:
    {'generator/<metric>': ..., 'identity/<metric>': ...} (no 'generator/' keys when
    generator_fn is None).
  """
  sim = np.asarray(paired_set['sim'])  # [N, h, w, 3] uint8
  real = np.asarray(paired_set['real'])  # [N, h, w, 3] uint8
  masks = {'objects': paired_set['object_mask'], 'robot': paired_set['robot_mask']}
  results = {f'identity/{k}': v for k, v in
             scene_preservation_metrics(sim, real, masks, **metric_kwargs).items()}
  if generator_fn is not None:
    outputs = []
    for start in range(0, sim.shape[0], batch_size):
      x = sim[start:start + batch_size].astype(np.float32) / 127.5 - 1.0  # [B, h, w, 3]
      g_x = generator_fn(x)
      g_x = np.asarray(g_x.numpy() if hasattr(g_x, 'numpy') else g_x)
      if g_x.shape != x.shape:
        raise ValueError(f'generator_fn returned shape {g_x.shape} for input {x.shape}')
      outputs.append(float_to_pixels(g_x))
    generated = np.concatenate(outputs)  # [N, h, w, 3] in [0, 255]
    results.update({f'generator/{k}': v for k, v in
                    scene_preservation_metrics(generated, real, masks, **metric_kwargs).items()})
  return results
