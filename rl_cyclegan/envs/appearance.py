"""Appearances of one grasping scene: 'sim', 'real' (pseudo-real) and 'randomized'.

The geometry, the camera and the physics never change with the appearance; only colors,
textures, lighting and image post-processing do. So two appearances of one state are
pixel-aligned (identical depth and segmentation), which ``GraspingEnv.render_paired`` uses.

* ``sim`` -- what "Sim-Only" sees: flat colors (orange robot, grey tray/table/floor, bright
  saturated object colors from a fixed per-object hue), ambient-heavy light, no shadows, no
  textures, no noise.
* ``real`` -- the stand-in for reality in every experiment. Fixed by ``real_seed`` (default
  2020) and never changes between runs: procedurally generated textures (brushed metal tray,
  wood table, concrete floor; numpy, written once to a temp dir), a silver robot with a black
  gripper, object colors from a muted palette (HSV saturation in [0.15, 0.45], value in
  [0.45, 0.85]), a warm directional light with shadows, color grading (channel mix, gamma,
  raised blacks, vignette), Gaussian blur and sensor noise. ``real_gap`` in [0, 1] (default
  1.0, strong) scales the distance from sim: every color and texture is
  ``lerp(sim, real, real_gap)``; light coefficients, grading, blur sigma and noise std are
  scaled by it; shadows are on for ``real_gap >= 0.25``. ``real_gap=0`` renders like sim.
  The defaults are gin-configurable: ``RealAppearance.real_gap = 0.75`` moves every 'real'
  render of a process (training, evaluation, paired renders) to another pseudo-real world;
  explicit ``appearance_kwargs`` override it. Collection workers are separate processes: give
  them ``tools/collect.py --appearance_kwargs``.
* ``randomized`` -- domain randomization (the "Randomized Sim" baseline). Each episode draws:
  floor/table/tray surfaces from the pybullet_data texture images (tinted) or flat colors;
  robot, gripper, object and surface colors with HSV saturation in [0.55, 1] and value in
  [0.35, 1]; light direction (upper hemisphere), color (each channel in [0.85, 1]), ambient
  [0.4, 0.9], diffuse [0.1, 0.6], specular [0, 0.3], shadows on with p = 0.5; no grading,
  blur or noise. These ranges exclude the real look: real's textures are procedural (not in
  the pybullet_data set), real's object palette has saturation <= 0.45, real's robot is
  unsaturated silver/black, and real's post-processing is never applied.
"""

import collections
import colorsys
import hashlib
import os
import tempfile

import gin
import numpy as np
import pybullet_data

from rl_cyclegan import fileio

APPEARANCE_NAMES = ('sim', 'real', 'randomized')

Scene = collections.namedtuple(
    'Scene', ['client', 'plane', 'table', 'tray', 'robot', 'objects', 'object_ids'])

# Robot link indices of kuka_with_gripper2.sdf: 0..6 arm links, 7.. gripper. -1 is the base.
_GRIPPER_FIRST_LINK = 7

# pybullet_data images used by 'randomized' (the real look uses none of them).
RANDOMIZED_TEXTURES = ('checker_blue.png', 'checker_grid.jpg', 'tex256.png', 'uvmap.png',
                       'colors16.png', 'cube.png', 'duckCM.png', 'table/table.png',
                       'tray/tray.jpg')


def _hsv(h, s, v):
  return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), np.float64)


def _sim_object_color(object_id):
  # Golden-ratio hues: neighbouring ids get well separated bright colors.
  return _hsv(0.61803398875 * object_id + 0.05, 0.9, 0.95)


class Appearance:
  """Base class: colors/textures of a scene, light for getCameraImage, post-processing."""

  name = None

  def __init__(self):
    self._textures = {}  # (client id, path) -> texture id

  def forget_textures(self):
    """Drops cached texture ids (call after the pybullet world was reset)."""
    self._textures = {}

  def new_episode(self, rng):
    """Called at every env reset with the env's appearance generator."""
    del rng

  def colors(self, scene):
    """Returns {'plane'|'table'|'tray'|'arm'|'gripper'|'base': (rgb, texture path or None),
    'objects': [rgb per object]}."""
    raise NotImplementedError

  def light_kwargs(self):
    raise NotImplementedError

  def postprocess(self, rgb, rng):
    del rng
    return rgb

  def _texture(self, client, path):
    key = (client._client, path)  # pylint: disable=protected-access
    if key not in self._textures:
      if not os.path.exists(path):
        raise FileNotFoundError(f'Missing texture image {path!r}')
      self._textures[key] = client.loadTexture(path)
    return self._textures[key]

  def apply(self, scene):
    """Sets colors and textures of every body in ``scene`` (a ``Scene``)."""
    p = scene.client
    looks = self.colors(scene)

    def paint(uid, link, rgb, texture):
      kwargs = dict(rgbaColor=list(np.clip(rgb, 0, 1)) + [1.0])
      kwargs['textureUniqueId'] = self._texture(p, texture) if texture else -1
      p.changeVisualShape(uid, link, **kwargs)

    for part in ('plane', 'table', 'tray'):
      rgb, texture = looks[part]
      paint(getattr(scene, part), -1, rgb, texture)
    num_links = p.getNumJoints(scene.robot)
    paint(scene.robot, -1, *looks['base'])
    for link in range(num_links):
      paint(scene.robot, link, *(looks['arm'] if link < _GRIPPER_FIRST_LINK
                                 else looks['gripper']))
    for uid, rgb in zip(scene.objects, looks['objects']):
      paint(uid, -1, rgb, None)


class SimAppearance(Appearance):
  """Plain simulator look: flat colors, simple light, no shadows, no noise."""

  name = 'sim'
  PLANE = (0.85, 0.85, 0.85)
  TABLE = (0.62, 0.62, 0.62)
  TRAY = (0.72, 0.74, 0.78)
  ARM = (1.0, 0.5, 0.05)
  GRIPPER = (0.3, 0.3, 0.3)
  BASE = (0.25, 0.25, 0.25)
  LIGHT = dict(lightDirection=(0.4, -0.3, 1.0), lightColor=(1.0, 1.0, 1.0),
               lightAmbientCoeff=0.7, lightDiffuseCoeff=0.35, lightSpecularCoeff=0.0,
               shadow=0)

  def colors(self, scene):
    return {'plane': (self.PLANE, None), 'table': (self.TABLE, None), 'tray': (self.TRAY, None),
            'arm': (self.ARM, None), 'gripper': (self.GRIPPER, None),
            'base': (self.BASE, None),
            'objects': [_sim_object_color(i) for i in scene.object_ids]}

  def light_kwargs(self):
    return dict(self.LIGHT)


def _smooth_noise(rng, size, cells):
  """Value noise in [0, 1]: a random [cells, cells] grid bilinearly upsampled to size^2."""
  grid = rng.random((cells + 1, cells + 1))
  x = np.linspace(0, cells, size, endpoint=False)
  i = x.astype(int)
  f = x - i
  f = f * f * (3 - 2 * f)  # smoothstep
  rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]  # [size, cells+1]
  return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _real_texture_images(seed, size=256):
  """Procedural texture patterns (float RGB in [0, 1], [size, size, 3]) of the real look."""
  rng = np.random.default_rng(seed)
  out = {}
  # Concrete floor: blotches + grain, warm grey.
  base = 0.6 * _smooth_noise(rng, size, 6) + 0.3 * _smooth_noise(rng, size, 24) + \
      0.1 * rng.random((size, size))
  out['plane'] = np.array([0.58, 0.55, 0.50]) * (0.75 + 0.5 * base)[..., None]
  # Wood table: warped stripes, two browns.
  yy, xx = np.mgrid[0:size, 0:size] / size
  warp = _smooth_noise(rng, size, 4)
  rings = 0.5 + 0.5 * np.sin(2 * np.pi * (14 * yy + 3.0 * warp + 0.3 * xx))
  grain = 0.15 * rng.random((size, 1)) * np.ones((1, size))
  t = np.clip(rings * 0.8 + grain, 0, 1)[..., None]
  out['table'] = (1 - t) * np.array([0.42, 0.27, 0.15]) + t * np.array([0.66, 0.48, 0.30])
  # Brushed metal tray: blue-grey with streaks along one axis and dents.
  streaks = rng.random((1, size)) * np.ones((size, 1))
  streaks = 0.5 * streaks + 0.5 * np.roll(streaks, 1, axis=1)
  dents = _smooth_noise(rng, size, 8)
  shade = 0.75 + 0.2 * streaks + 0.15 * dents
  out['tray'] = np.array([0.52, 0.56, 0.62]) * shade[..., None]
  return {k: np.clip(v, 0, 1) for k, v in out.items()}


def _texture_dir():
  path = os.path.join(tempfile.gettempdir(), 'rl_cyclegan_textures')
  os.makedirs(path, exist_ok=True)
  return path


def _write_png(path, image):
  """Writes float RGB [0, 1] as PNG unless an identical file exists (atomic)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if os.path.exists(path):
    return path
  pixels = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
  return fileio.write_atomic(path, lambda f: pixels.save(f, format='PNG'), mode='wb')


def _gaussian_blur(image, sigma):
  """Separable Gaussian blur of float [H, W, C] with edge padding (numpy)."""
  if sigma <= 0.05:
    return image
  radius = max(1, int(np.ceil(2.5 * sigma)))
  x = np.arange(-radius, radius + 1)
  k = np.exp(-0.5 * (x / sigma)**2)
  k /= k.sum()
  padded = np.pad(image, ((radius, radius), (0, 0), (0, 0)), mode='edge')
  image = sum(w * padded[i:i + image.shape[0]] for i, w in enumerate(k))
  padded = np.pad(image, ((0, 0), (radius, radius), (0, 0)), mode='edge')
  return sum(w * padded[:, i:i + image.shape[1]] for i, w in enumerate(k))


DEFAULT_REAL_GAP = 1.0  # the project's pseudo-real world
DEFAULT_REAL_SEED = 2020


def configured_real_world():
  """{'real_gap', 'real_seed'} of a 'real' render in this process: gin's bindings of
  ``RealAppearance`` (e.g. from ``--gin_bindings``), else the defaults."""
  world = {}
  for name, default in (('real_gap', DEFAULT_REAL_GAP), ('real_seed', DEFAULT_REAL_SEED)):
    try:
      world[name] = gin.query_parameter(f'RealAppearance.{name}')
    except ValueError:  # not bound
      world[name] = default
  return world


@gin.configurable
class RealAppearance(Appearance):
  """The pseudo-real world; see the module docstring. Deterministic given ``real_seed``."""

  name = 'real'
  ARM = (0.80, 0.80, 0.83)
  GRIPPER = (0.10, 0.10, 0.11)
  BASE = (0.16, 0.16, 0.17)
  # Light at real_gap = 1 (from the side, warm, with shadows).
  LIGHT = dict(lightDirection=(-0.9, 0.9, 1.2), lightColor=(1.0, 0.9, 0.76),
               lightAmbientCoeff=0.45, lightDiffuseCoeff=0.7, lightSpecularCoeff=0.25)
  # Color grading at real_gap = 1: out = M @ rgb, then gamma, raised blacks, vignette.
  GRADE = np.array([[0.92, 0.10, 0.02], [0.04, 0.88, 0.10], [0.02, 0.16, 0.78]])
  GAMMA = 1.15
  BLACK_LIFT = 0.05
  VIGNETTE = 0.35
  BLUR_SIGMA = 0.8  # px at 80 px width; scaled with the render width
  NOISE_STD = 8.0 / 255.0

  def __init__(self, real_gap=DEFAULT_REAL_GAP, real_seed=DEFAULT_REAL_SEED):
    super().__init__()
    if not 0.0 <= real_gap <= 1.0:
      raise ValueError(f'real_gap must lie in [0, 1], got {real_gap}')
    self.real_gap = float(real_gap)
    self.real_seed = int(real_seed)
    rng = np.random.default_rng([self.real_seed, 1])
    # Muted palette: one color per object id, fixed by real_seed.
    self._palette = [_hsv(h, s, v) for h, s, v in zip(
        rng.random(1000), rng.uniform(0.15, 0.45, 1000), rng.uniform(0.45, 0.85, 1000))]
    g = self.real_gap
    tag = hashlib.sha1(f'{self.real_seed}-{g:.4f}-v1'.encode()).hexdigest()[:12]
    sim = SimAppearance()
    flat = {'plane': sim.PLANE, 'table': sim.TABLE, 'tray': sim.TRAY}
    self._texture_paths = {}
    for part, image in _real_texture_images(self.real_seed).items():
      blended = (1 - g) * np.array(flat[part]) + g * image
      self._texture_paths[part] = _write_png(
          os.path.join(_texture_dir(), f'real_{part}_{tag}.png'), blended)
    lerp = lambda a, b: tuple((1 - g) * np.array(a, np.float64) + g * np.array(b, np.float64))
    self._arm, self._gripper, self._base = (lerp(sim.ARM, self.ARM), lerp(sim.GRIPPER,
                                                                          self.GRIPPER),
                                            lerp(sim.BASE, self.BASE))
    self._light = {k: (list(lerp(sim.LIGHT[k], v)) if isinstance(v, tuple) else
                       float((1 - g) * sim.LIGHT[k] + g * v)) for k, v in self.LIGHT.items()}
    self._light['shadow'] = int(g >= 0.25)
    self._grade = (1 - g) * np.eye(3) + g * self.GRADE
    self._sim = sim

  def colors(self, scene):
    g = self.real_gap
    white = np.ones(3)
    return {'plane': (white, self._texture_paths['plane']),
            'table': (white, self._texture_paths['table']),
            'tray': (white, self._texture_paths['tray']),
            'arm': (self._arm, None), 'gripper': (self._gripper, None),
            'base': (self._base, None),
            'objects': [(1 - g) * _sim_object_color(i) + g * self._palette[i]
                        for i in scene.object_ids]}

  def light_kwargs(self):
    return dict(self._light)

  def postprocess(self, rgb, rng):
    g = self.real_gap
    if g <= 0:
      return rgb
    h, w, _ = rgb.shape
    x = rgb.astype(np.float32) / 255.0
    x = x @ self._grade.T.astype(np.float32)
    x = np.clip(x, 0, 1)**(1 + g * (self.GAMMA - 1))
    x = self.BLACK_LIFT * g + (1 - self.BLACK_LIFT * g) * x
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((yy - (h - 1) / 2) / (h / 2))**2 + ((xx - (w - 1) / 2) / (w / 2))**2
    x *= (1 - self.VIGNETTE * g * np.clip(r2 / 2, 0, 1))[..., None].astype(np.float32)
    x = _gaussian_blur(x, g * self.BLUR_SIGMA * w / 80.0)
    x = x + rng.normal(0.0, g * self.NOISE_STD, x.shape).astype(np.float32)
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


class RandomizedAppearance(Appearance):
  """Domain randomization; a new draw every episode (see the module docstring)."""

  name = 'randomized'
  SATURATION = (0.55, 1.0)
  VALUE = (0.35, 1.0)
  TEXTURE_PROBABILITY = 0.7

  def __init__(self):
    super().__init__()
    root = pybullet_data.getDataPath()
    self._texture_choices = []
    for rel in RANDOMIZED_TEXTURES:
      path = os.path.join(root, rel)
      if not os.path.exists(path):
        raise FileNotFoundError(f'Missing pybullet asset {path!r} (texture for randomized)')
      self._texture_choices.append(path)
    self._draw = None
    self.new_episode(np.random.default_rng(0))

  def _color(self, rng):
    return _hsv(rng.random(), rng.uniform(*self.SATURATION), rng.uniform(*self.VALUE))

  def new_episode(self, rng):
    draw = {}
    for part in ('plane', 'table', 'tray'):
      texture = (self._texture_choices[rng.integers(len(self._texture_choices))]
                 if rng.random() < self.TEXTURE_PROBABILITY else None)
      draw[part] = (self._color(rng), texture)
    for part in ('arm', 'gripper', 'base'):
      draw[part] = (self._color(rng), None)
    draw['object_colors'] = [self._color(rng) for _ in range(64)]
    direction = (rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(0.5, 1.5))
    draw['light'] = dict(lightDirection=direction,
                         lightColor=tuple(rng.uniform(0.85, 1.0, 3)),
                         lightAmbientCoeff=rng.uniform(0.4, 0.9),
                         lightDiffuseCoeff=rng.uniform(0.1, 0.6),
                         lightSpecularCoeff=rng.uniform(0.0, 0.3),
                         shadow=int(rng.random() < 0.5))
    self._draw = draw

  def colors(self, scene):
    looks = {k: self._draw[k] for k in ('plane', 'table', 'tray', 'arm', 'gripper', 'base')}
    n = len(self._draw['object_colors'])
    looks['objects'] = [self._draw['object_colors'][k % n] for k in range(len(scene.objects))]
    return looks

  def light_kwargs(self):
    return dict(self._draw['light'])


def make_appearance(name, **kwargs):
  """Returns a new Appearance. kwargs go to the class (e.g. real_gap, real_seed for 'real')."""
  classes = {'sim': SimAppearance, 'real': RealAppearance, 'randomized': RandomizedAppearance}
  if name not in classes:
    raise ValueError(f'Unknown appearance {name!r}; valid names: {APPEARANCE_NAMES}')
  if kwargs and name != 'real':
    raise ValueError(f'appearance {name!r} takes no arguments, got {sorted(kwargs)}')
  return classes[name](**kwargs)
