"""The simulation-to-real environment of paper Fig. 6: the simulator seen through a frozen G.

"Images from a simulator are transformed by Sim2Real generator G and then passed to Q_real to
generate an action. In this way, on-policy (w.r.t Q_real) episodes are generated in the
simulation-to-real environment" (Appendix A). ``Sim2RealEnv`` wraps a GraspingEnv and replaces
every observed image by ``frame_transform(image)`` (``data.translation.FrameTranslator``: G on
the whole frame, rounded to uint8), so each rendered frame is translated exactly once: the
episode recorded from it, the replay and the policy all see G's output. Everything else
(seeding, success, grasp distance, paired renders) is the wrapped env's.

``CompositeEnv`` (ours, a diagnostic; evaluation only) shows a policy the real render of each
state with some regions (objects, robot, background) taken from G(sim render) of the same
state, pixel-aligned: which of G's regions a final Q trained on G(sim) depends on to succeed.
"""

from typing import Callable, Optional, Sequence

import numpy as np
from tf_agents.environments import wrappers


class Sim2RealEnv(wrappers.PyEnvironmentBaseWrapper):
  """A PyEnvironment whose observation images are ``frame_transform`` of the wrapped env's."""

  def __init__(self, env, frame_transform: Callable):
    """``frame_transform``: an object with ``translate(uint8 [N, H, W, 3]) -> uint8``."""
    super().__init__(env)
    self._frame_transform = frame_transform

  def _translate(self, time_step):
    observation = dict(time_step.observation)
    image = np.asarray(observation['image'])
    observation['image'] = self._frame_transform.translate(image[None])[0]  # [H, W, 3] uint8
    return time_step._replace(observation=observation)

  def _reset(self):
    return self._translate(self._env.reset())

  def _step(self, action):
    return self._translate(self._env.step(action))


REGIONS = ('objects', 'robot', 'background')


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
  """Boolean [H, W] ``mask`` grown by ``pixels`` (8-connected: a square structuring element)."""
  out = np.asarray(mask, bool)
  for _ in range(pixels):
    padded = np.pad(out, 1)
    h, w = out.shape
    out = np.any([padded[i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=0)
  return out


def match_segment_colours(image: np.ndarray, reference: np.ndarray,
                          segments: np.ndarray) -> np.ndarray:
  """uint8 [H, W, 3] ``image`` with each segment's colour statistics taken from ``reference``.

  ``segments``: int [H, W] labels, 0 left alone. In each labelled segment and colour channel
  the image's pixels are mapped affinely so that their mean becomes that of ``reference``'s
  pixels in the same segment, and their standard deviation too as far as the uint8 range
  allows (the spread is cut where it would clip, so the mean is always the reference's; a
  segment flat in ``image`` takes the reference's mean). The segment's outline and its pattern
  of shading stay the image's; only its colours and their spread come from the reference.
  """
  image = np.asarray(image)
  reference = np.asarray(reference)
  segments = np.asarray(segments)
  if image.shape != reference.shape or image.shape[:2] != segments.shape or image.ndim != 3:
    raise ValueError(f'match_segment_colours: image {list(image.shape)}, reference '
                     f'{list(reference.shape)}, segments {list(segments.shape)}; expected '
                     '[H, W, 3], [H, W, 3] and [H, W]')
  out = image.astype(np.float32)
  for label in np.unique(segments[segments != 0]):
    where = segments == label
    pixels, target = out[where], reference[where].astype(np.float32)  # [n, 3]
    centred, mean = pixels - pixels.mean(axis=0), target.mean(axis=0)
    spread = pixels.std(axis=0)
    scale = np.divide(target.std(axis=0), spread, out=np.zeros_like(spread), where=spread > 0)
    for bound, extreme in ((255 - mean, centred.max(axis=0)), (mean, -centred.min(axis=0))):
      scale = np.minimum(scale, np.divide(bound, extreme, out=np.full_like(scale, np.inf),
                                          where=extreme > 0))
    out[where] = centred * scale + mean
  return np.clip(np.rint(out), 0, 255).astype(np.uint8)


class CompositeEnv(wrappers.PyEnvironmentBaseWrapper):
  """Observation images: the real render with the ``translated`` regions from G(sim render).

  Each frame is rendered twice with ``render_paired(('sim', 'real'))`` (same state, camera and
  geometry; the real noise is drawn from ``render_paired``'s stream keyed by seed, episode and
  step), the sim render goes through ``frame_transform`` (G on the whole frame, as the final
  Q's training images did), and the pixels of the ``translated`` regions (``REGIONS``, split by
  the simulator's segmentation: ``GraspingEnv.region_masks``) are taken from G's frame, the
  rest from the real render. No regions: the paired real render itself (the control), all
  three: G(sim) itself. Evaluation only: the segmentation is privileged.

  G draws an object a pixel or two beyond its sim mask (the colour halos of a translated
  object), so with exact masks 'background' from G carries the objects' outlines.
  ``dilation`` grows the objects' and then the robot's masks by that many pixels (8-connected)
  before the rest is called background: the ring around an object goes with the object.

  ``real_transform`` changes the real render first, given the simulator's exact (undilated)
  region masks: an intervention on the real world, e.g. its objects drawn as loudly as a G
  draws them (``scene_metrics.amplify_contrast``; ``tools/evaluate.py
  --object_contrast_gain``).

  ``ring_only``: of the translated objects and robot, only the ring that ``dilation`` adds
  around their exact masks comes from G (its halo and fringes), their insides stay real
  (``tools/evaluate.py --translated_ring_only``).

  ``colour_regions`` keep the real render's shapes in those regions but take their colours from
  G's frame (``match_segment_colours`` per segment of the exact masks: each object body on its
  own, the robot, the background): whether what a final Q needs from G there is G's colours or
  G's drawing (outlines, fringes, shading). Applied after ``real_transform``, before the
  ``translated`` regions; a region cannot be in both, except with ``ring_only``: G's ring around
  the region's real shape, its inside in G's colours.
  """

  def __init__(self, env, frame_transform, translated: Sequence[str] = (), dilation: int = 0,
               real_transform: Optional[Callable[[np.ndarray, dict], np.ndarray]] = None,
               colour_regions: Sequence[str] = (), ring_only: bool = False):
    """``env``: a GraspingEnv (``render_paired``, ``region_masks``); ``frame_transform``:
    ``translate(uint8 [N, H, W, 3]) -> uint8`` (``translation.FrameTranslator``), or None
    when no region is translated; ``dilation``: pixels (>= 0); ``real_transform``:
    ``(real uint8 [H, W, 3], region_masks) -> uint8 [H, W, 3]``, or None;
    ``colour_regions``: regions whose colours come from G's frame; ``ring_only``: see above."""
    super().__init__(env)
    if int(dilation) != dilation or dilation < 0:
      raise ValueError(f'CompositeEnv: dilation must be a whole number of pixels >= 0, got '
                       f'{dilation!r}')
    unknown = sorted((set(translated) | set(colour_regions)) - set(REGIONS))
    if unknown:
      raise ValueError(f'CompositeEnv: unknown regions {unknown}; valid: {", ".join(REGIONS)}')
    both = sorted(set(translated) & set(colour_regions))
    if both and not ring_only:
      raise ValueError(f'CompositeEnv: regions {both} are both translated and colour-matched; '
                       'a region is one or the other (or, with ring_only, its ring from G and '
                       'its inside recoloured)')
    if (translated or colour_regions) and frame_transform is None:
      raise ValueError(f'CompositeEnv: regions {list(translated) + list(colour_regions)} are to '
                       'come from G(sim), but no frame_transform (G) was given')
    if ring_only and not (dilation and translated and 'background' not in translated):
      raise ValueError(f'CompositeEnv: ring_only takes the ring that dilation grows around '
                       f'translated objects or robot; got dilation {dilation} and regions '
                       f'{list(translated)} (a dilation > 0 and objects and/or robot needed)')
    for method in ('render_paired', 'region_masks'):
      if not callable(getattr(env, method, None)):
        raise TypeError(f'CompositeEnv wraps a GraspingEnv; {type(env).__name__} has no '
                        f'{method}()')
    self._frame_transform = frame_transform
    self._translated = tuple(translated)
    self._dilation = int(dilation)
    self._real_transform = real_transform
    self._colour_regions = tuple(colour_regions)
    self._ring_only = bool(ring_only)

  @property
  def translated_regions(self):
    return self._translated

  @property
  def colour_regions(self):
    return self._colour_regions

  def masks(self, segmentation) -> dict:
    """``region_masks`` of ``segmentation`` with the objects' and robot's masks dilated."""
    return self._grown(self._env.region_masks(segmentation))

  def _grown(self, masks: dict) -> dict:
    """Exact region masks with the objects' and robot's dilated by ``dilation``."""
    if self._dilation:
      objects = dilate(masks['objects'], self._dilation)
      robot = dilate(masks['robot'], self._dilation) & ~objects
      masks = {'objects': objects, 'robot': robot, 'background': ~(objects | robot)}
    return masks

  def composite(self) -> np.ndarray:
    """The current state's composite image, uint8 [H, W, 3]."""
    paired = self._env.render_paired(('sim', 'real'))
    image = paired['real']
    if not (self._real_transform or self._translated or self._colour_regions):
      return image
    exact = self._env.region_masks(paired['segmentation'])
    if self._real_transform is not None:
      image = self._real_transform(image, exact)
    if self._translated or self._colour_regions:
      translated = self._frame_transform.translate(paired['sim'][None])[0]
    if self._colour_regions:
      image = match_segment_colours(image, translated,
                                    self._segments(paired['segmentation'], exact))
    if self._translated:
      masks = self._grown(exact)
      take = np.any([masks[r] for r in self._translated], axis=0)
      if self._ring_only:
        take &= ~np.any([exact[r] for r in self._translated], axis=0)
      image = np.where(take[..., None], translated, image)
    return image

  def _segments(self, segmentation, exact: dict) -> np.ndarray:
    """int [H, W] labels of ``colour_regions``: each object body (its segmentation id) apart,
    the robot and the background one label each; 0 elsewhere."""
    segmentation = np.asarray(segmentation)
    labels = np.zeros(segmentation.shape, np.int64)
    top = int(segmentation.max(initial=0)) + 1  # labels above every body id
    for k, region in enumerate(self._colour_regions):
      if region == 'objects':
        labels[exact['objects']] = segmentation[exact['objects']] + 1  # ids may be 0
      else:
        labels[exact[region]] = top + 1 + k
    return labels

  def _observe(self, time_step):
    observation = dict(time_step.observation)
    observation['image'] = self.composite()
    return time_step._replace(observation=observation)

  def _reset(self):
    return self._observe(self._env.reset())

  def _step(self, action):
    return self._observe(self._env.step(action))
