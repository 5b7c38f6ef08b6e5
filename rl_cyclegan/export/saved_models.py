"""SavedModels for robot controllers: generator, Q-function and CEM policy, signatures from specs.

A controller loads these with plain ``tf.saved_model.load`` in a process that cannot import
``rl_cyclegan``; every input is what the camera and the arm give (``specs.env_observation_spec``:
a uint8 image at the render size and a float32 [2] gripper state), every preprocessing step
the networks need (center crop, uint8 -> [-1, 1], optional Sim2Real G) happens inside the graph.

  generator/   (``export_generator``)
    serving_default(image uint8 [B, h, w, 3]) -> {'image': uint8 [B, h, w, 3]}
        G_sim2real at the export size (default: the crop size, see ``export_generator``).
    translate_frame(image uint8 [B, H, W, 3]) -> {'image': uint8 [B, h, w, 3]}
        (only when a render size is given) center crop to (h, w), then G: exactly the image
        the Q-network of a policy with ``image_transform=G`` sees.
  q_function/  (``export_q_function``)
    serving_default(image uint8 [B, H, W, 3], gripper_state float32 [B, 2],
                    action float32 [B, 8]) -> {'q_value': float32 [B]}
    q_values_for_candidates(image uint8 [B, H, W, 3], gripper_state float32 [B, 2],
                            actions float32 [B, N, 8]) -> {'q_values': float32 [B, N]}
        the image tower runs once per image, the head once per candidate (as CEM does).
  policy/      (``export_policy``)
    grasp(image uint8 [B, H, W, 3], gripper_state float32 [B, 2])
        -> {'action': float32 [B, 8], 'q_value': float32 [B]}
        greedy CEM (no exploration), row by row, deterministic: each row's CEM seed is stateless,
        [export seed, sum of that frame's uint8 values], so a frame and gripper state give the
        same action alone or in any batch. A non-finite gripper state or unequal batch sizes
        raise InvalidArgumentError (``check_grasp_inputs``).
    action / get_initial_state / get_train_step / get_metadata: tf_agents PolicySaver signatures
        (TimeStep in, PolicyStep out; exploration variables saved at 0 unless greedy=False).

Q values are probabilities of grasp success, sigmoid(logit). (H, W) is the render size and
(h, w) the crop size (``specs``; CPU default 64x80 / 64x64, paper 512x640 / 472x472).

Each directory also holds ``export_info.json`` (signatures with shapes and dtypes, sizes,
source checkpoint, git commit, versions). Exports are written to ``<export_dir>.tmp-<pid>``
and renamed into place when complete; an existing ``export_dir`` is moved aside only then
(see ``_write_atomically``).

Caveat for callers: TensorFlow converts *NumPy* inputs of a signature to the declared dtype
with NumPy casting rules (a float32 image in [0, 1] becomes all zeros, 300 wraps to 44) before
the graph runs; only ``tf.Tensor`` inputs of the wrong dtype are rejected. Controllers should
check ``frame.dtype == np.uint8`` themselves (docs/export.md).
"""

import datetime
import json
import os
import re
import shutil
import subprocess
from typing import Callable, Dict, Optional, Sequence

import tensorflow as tf

from rl_cyclegan import specs
from rl_cyclegan.data import preprocessing

EXPORT_INFO = 'export_info.json'
GENERATOR, Q_FUNCTION, POLICY = 'generator', 'q_function', 'policy'
EXPORT_KINDS = (GENERATOR, Q_FUNCTION, POLICY)
DEFAULT_GENERATOR_KEY = 'G_sim2real'  # RLCycleGANLearner.checkpoint_items, train_qtopt
DEFAULT_Q_NETWORK_KEY = 'q_network'  # QTOptLearner.checkpoint_items
DEFAULT_GRASP_SEED = 0

_REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ------------------------------------------------------------------------------ helpers


def _size(size, what):
  return specs._check_size(size, what)  # pylint: disable=protected-access


def _image_spec(size):
  h, w = size
  return tf.TensorSpec([None, h, w, specs.IMAGE_CHANNELS], tf.uint8, name='image')


def _gripper_spec():
  return tf.TensorSpec([None, specs.GRIPPER_STATE_DIM], tf.float32, name='gripper_state')


def _call_transform(transform, images):
  """``image_transform`` on float images; Keras models with training=False (as CEMPolicy)."""
  if isinstance(transform, tf.keras.layers.Layer):
    return transform(images, training=False)
  return transform(images)


def _model_image(image, crop_size, image_transform=None):
  """uint8 [B, H, W, 3] -> center crop -> float32 [B, h, w, 3] in [-1, 1] (-> transform)."""
  image = preprocessing.center_crop(image, crop_size)  # [B, h, w, 3] uint8
  image = specs.to_float_image(image)  # [B, h, w, 3] float32 in [-1, 1]
  if image_transform is not None:
    image = tf.cast(_call_transform(image_transform, image), tf.float32)  # [B, h, w, 3]
  return image


def _spec_dict(spec):
  return {'shape': [None if d is None else int(d) for d in spec.shape.as_list()],
          'dtype': spec.dtype.name}


def _signature_key(name):
  """The keyword a loaded signature takes for input ``name`` (TF sanitizes '0/observation/image'
  to 'arg_0_observation_image')."""
  key = re.sub(r'[^A-Za-z0-9_]', '_', name)
  return key if key[:1].isalpha() else 'arg_' + key


def describe_signature(concrete_fn) -> dict:
  """{'inputs': {name: {shape, dtype}}, 'outputs': {name: {shape, dtype}}} of a signature."""
  if not hasattr(concrete_fn, 'structured_outputs'):  # a tf.function with an input_signature
    concrete_fn = concrete_fn.get_concrete_function()
  args, kwargs = concrete_fn.structured_input_signature
  inputs = {_signature_key(spec.name): _spec_dict(spec) for spec in args}
  inputs.update({_signature_key(key): _spec_dict(spec) for key, spec in kwargs.items()})
  outputs = {name: _spec_dict(spec) for name, spec in concrete_fn.structured_outputs.items()}
  return {'inputs': inputs, 'outputs': outputs}


def format_signature(name: str, description: dict) -> str:
  """'grasp(image uint8 [None, 64, 80, 3], ...) -> {action: float32 [None, 8]}'."""
  def fmt(items):
    return ', '.join(f'{k} {v["dtype"]} {v["shape"]}' for k, v in items.items())
  return f'{name}({fmt(description["inputs"])}) -> {{{fmt(description["outputs"])}}}'


def git_commit() -> Optional[str]:
  """The rl_cyclegan checkout's HEAD commit ('+dirty' if modified), or None outside git."""
  try:
    commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=_REPO_DIR, capture_output=True,
                            text=True, timeout=10, check=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                           cwd=_REPO_DIR, capture_output=True, text=True, timeout=10,
                           check=True).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None
  return commit + ('+dirty' if dirty else '') if commit else None


def package_version() -> str:
  """rl_cyclegan's version: installed metadata, else ``__version__``, else 'unversioned'."""
  try:
    from importlib import metadata  # pylint: disable=g-import-not-at-top
    return metadata.version('rl_cyclegan')
  except Exception:  # pylint: disable=broad-except  # not installed as a distribution
    import rl_cyclegan  # pylint: disable=g-import-not-at-top
    return str(getattr(rl_cyclegan, '__version__', 'unversioned'))


def _versions():
  versions = {'rl_cyclegan': package_version(), 'tensorflow': tf.__version__}
  try:
    import tf_agents  # pylint: disable=g-import-not-at-top
    versions['tf_agents'] = tf_agents.__version__
  except (ImportError, AttributeError):
    pass
  return versions


def _write_atomically(export_dir: str, write: Callable[[str], dict], info: dict) -> dict:
  """Runs ``write(tmp_dir)`` (-> {signature name: concrete fn}), adds export_info.json, renames.

  The SavedModel is written to ``<export_dir>.tmp-<pid>``; if ``write`` raises, the temporary
  directory is removed and ``export_dir`` is untouched. When it is complete, an existing
  ``export_dir`` is renamed to ``<export_dir>.old-<pid>``, the new one renamed into place and
  the old one deleted. Between the two renames (microseconds) ``export_dir`` does not exist; a
  crash exactly there leaves the old export in ``<export_dir>.old-<pid>``. If the second rename
  fails the old export is moved back.

  Returns the export info written.
  """
  export_dir = os.path.abspath(export_dir)
  os.makedirs(os.path.dirname(export_dir), exist_ok=True)
  tmp_dir = f'{export_dir}.tmp-{os.getpid()}'
  if os.path.exists(tmp_dir):
    shutil.rmtree(tmp_dir)
  try:
    signatures = write(tmp_dir)
    info = dict(info)
    info['signatures'] = {name: describe_signature(fn) for name, fn in signatures.items()}
    info.setdefault('created', datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec='seconds'))
    info.setdefault('git_commit', git_commit())
    info.setdefault('versions', _versions())
    with open(os.path.join(tmp_dir, EXPORT_INFO), 'w') as f:
      json.dump(info, f, indent=2, sort_keys=True)
      f.write('\n')
  except BaseException:
    shutil.rmtree(tmp_dir, ignore_errors=True)
    raise
  old_dir = None
  if os.path.exists(export_dir):
    old_dir = f'{export_dir}.old-{os.getpid()}'
    if os.path.exists(old_dir):
      shutil.rmtree(old_dir)
    os.rename(export_dir, old_dir)
  try:
    os.rename(tmp_dir, export_dir)
  except BaseException:
    if old_dir is not None:
      os.rename(old_dir, export_dir)
    shutil.rmtree(tmp_dir, ignore_errors=True)
    raise
  if old_dir is not None:
    shutil.rmtree(old_dir, ignore_errors=True)
  return info


def _base_info(kind, render_size=None, crop_size=None, source_checkpoint=None, extra=None):
  info = {'kind': kind, 'render_size': list(render_size) if render_size else None,
          'crop_size': list(crop_size) if crop_size else None,
          'source_checkpoint': source_checkpoint,
          'observation_spec': {k: _spec_dict(v) for k, v in specs.env_observation_spec(
              render_size or specs.DEFAULT_RENDER_SIZE).items()} if render_size else None,
          'action_spec': _spec_dict(specs.action_spec()),
          'action_names': list(specs.ACTION_NAMES)}
  info.update(extra or {})
  return info


def read_export_info(export_dir: str) -> dict:
  with open(os.path.join(export_dir, EXPORT_INFO)) as f:
    return json.load(f)


# ------------------------------------------------------------------------------ generator


class _GeneratorModule(tf.Module):
  """Holds G and the uint8 -> uint8 serving functions."""

  def __init__(self, generator, image_size, render_size=None):
    super().__init__(name='exported_generator')
    self.generator = generator
    self.image_size = image_size

    def translate(image):  # [B, h, w, 3] uint8
      x = specs.to_float_image(image)  # [B, h, w, 3] in [-1, 1]
      y = _call_transform(generator, x)  # [B, h, w, 3] in [-1, 1]
      return {'image': specs.to_uint8_image(y)}  # [B, h, w, 3] uint8

    self.serving_default = tf.function(translate, input_signature=[_image_spec(image_size)])
    self.translate_frame = None
    if render_size is not None and tuple(render_size) != tuple(image_size):

      def translate_frame(image):  # [B, H, W, 3] uint8 at the render size
        return translate(preprocessing.center_crop(image, image_size))  # [B, h, w, 3]

      self.translate_frame = tf.function(translate_frame,
                                         input_signature=[_image_spec(render_size)])

  def signatures(self):
    signatures = {'serving_default': self.serving_default.get_concrete_function()}
    if self.translate_frame is not None:
      signatures['translate_frame'] = self.translate_frame.get_concrete_function()
    return signatures


def export_generator(generator,
                     image_size: Sequence[int],
                     export_dir: str,
                     render_size: Optional[Sequence[int]] = None,
                     source_checkpoint: Optional[str] = None,
                     extra_info: Optional[dict] = None) -> dict:
  """Exports the Sim2Real generator G as uint8 -> uint8 signatures (see the module docstring).

  Which size: G is fully convolutional, so it runs at any size, but it was trained on
  crop-size images (random crops of the render, paper Appendix A) and its instance norm takes
  statistics over the whole input. Run on a full render-size frame, the statistics span more
  of the scene than in training and the centre of the output differs from G applied to the
  center crop. Pass ``image_size=crop_size`` (the default of ``export_from_checkpoint``) to
  reproduce the training input exactly; with ``render_size`` as well, ``translate_frame``
  does the center crop in the graph, as the policy does. ``image_size=render_size`` exports
  the full-frame translation (for viewing), with no ``translate_frame``.

  Args:
    generator: a built ``UNetGenerator`` (or any Keras model on float [B, h, w, 3] in
      [-1, 1]).
    image_size: (h, w) of serving_default's input and output.
    export_dir: destination directory (written atomically).
    render_size: optional (H, W) camera frame size; adds ``translate_frame``.
    source_checkpoint: recorded in export_info.json.
    extra_info: more fields for export_info.json.

  Returns:
    the export info dict (also in ``export_dir/export_info.json``).
  """
  image_size = _size(image_size, 'image_size')
  if render_size is not None:
    render_size = _size(render_size, 'render_size')
    if image_size[0] > render_size[0] or image_size[1] > render_size[1]:
      raise ValueError(f'generator image_size {image_size} is larger than render_size '
                       f'{render_size}')
  module = _GeneratorModule(generator, image_size, render_size)

  def write(path):
    signatures = module.signatures()
    tf.saved_model.save(module, path, signatures=signatures)
    return signatures

  info = _base_info(GENERATOR, render_size, image_size, source_checkpoint,
                    dict(generator_image_size=list(image_size), **(extra_info or {})))
  return _write_atomically(export_dir, write, info)


# ------------------------------------------------------------------------------ Q-function


class _QFunctionModule(tf.Module):
  """Holds the Q-network (and optional image transform) and the Q serving functions."""

  def __init__(self, q_network, render_size, crop_size, image_transform=None):
    super().__init__(name='exported_q_function')
    self.q_network = q_network
    if image_transform is not None:
      self.image_transform = image_transform

    def embed(image):  # [B, H, W, 3] uint8 -> [B, e_h, e_w, C]
      model_image = _model_image(image, crop_size, image_transform)  # [B, h, w, 3]
      return q_network.embed_image(model_image, training=False)

    def q_value(image, gripper_state, action):
      embedding = embed(image)  # [B, e_h, e_w, C]
      logits = q_network.logits_from_embedding(
          embedding, gripper_state, action[:, None, :], training=False)  # [B, 1]
      return {'q_value': tf.sigmoid(logits[:, 0])}  # [B]

    def q_values_for_candidates(image, gripper_state, actions):
      embedding = embed(image)  # [B, e_h, e_w, C], once per image
      logits = q_network.logits_from_embedding(
          embedding, gripper_state, actions, training=False)  # [B, N]
      return {'q_values': tf.sigmoid(logits)}  # [B, N]

    action = tf.TensorSpec([None, specs.ACTION_DIM], tf.float32, name='action')
    actions = tf.TensorSpec([None, None, specs.ACTION_DIM], tf.float32, name='actions')
    self.q_value = tf.function(
        q_value, input_signature=[_image_spec(render_size), _gripper_spec(), action])
    self.q_values_for_candidates = tf.function(
        q_values_for_candidates,
        input_signature=[_image_spec(render_size), _gripper_spec(), actions])

  def signatures(self):
    return {'serving_default': self.q_value.get_concrete_function(),
            'q_values_for_candidates': self.q_values_for_candidates.get_concrete_function()}


def _check_sizes(render_size, crop_size):
  render_size = _size(render_size, 'render_size')
  crop_size = _size(crop_size, 'crop_size')
  if crop_size[0] > render_size[0] or crop_size[1] > render_size[1]:
    raise ValueError(f'crop_size {crop_size} is larger than render_size {render_size}')
  return render_size, crop_size


def export_q_function(q_network,
                      render_size: Sequence[int],
                      crop_size: Sequence[int],
                      export_dir: str,
                      image_transform: Optional[Callable] = None,
                      source_checkpoint: Optional[str] = None,
                      extra_info: Optional[dict] = None) -> dict:
  """Exports Q(s, a) = sigmoid(logit) on env observations (see the module docstring).

  Args:
    q_network: e.g. a ``GraspingQNetwork`` (``embed_image``, ``logits_from_embedding``) at
      ``crop_size``.
    render_size: (H, W) of the signatures' uint8 image input.
    crop_size: (h, w) center crop the network sees.
    export_dir: destination directory (written atomically).
    image_transform: optional frozen G applied to the float crop before Q (as in
      ``CEMPolicy``); None for a Q that sees real images as they are.
    source_checkpoint, extra_info: recorded in export_info.json.

  Returns:
    the export info dict.
  """
  render_size, crop_size = _check_sizes(render_size, crop_size)
  if hasattr(q_network, 'create_variables'):
    q_network.create_variables()
  module = _QFunctionModule(q_network, render_size, crop_size, image_transform)

  def write(path):
    signatures = module.signatures()
    tf.saved_model.save(module, path, signatures=signatures)
    return signatures

  info = _base_info(Q_FUNCTION, render_size, crop_size, source_checkpoint,
                    dict(image_transform=image_transform is not None, **(extra_info or {})))
  return _write_atomically(export_dir, write, info)


# ------------------------------------------------------------------------------ policy


def grasp_seed(image, seed: int = DEFAULT_GRASP_SEED):
  """Per-row stateless CEM seeds int64 [B, 2]: [seed, sum of that row's uint8 values]."""
  batch = tf.shape(image, out_type=tf.int64)[0]
  return tf.stack([tf.fill([batch], tf.constant(int(seed), tf.int64)),
                   tf.reduce_sum(tf.cast(image, tf.int64), axis=[1, 2, 3])], axis=1)


def check_grasp_inputs(image, gripper_state):
  """In-graph checks of the ``grasp`` inputs: equal batch sizes, a finite gripper state.

  A failed check raises InvalidArgumentError with the message below instead of returning an
  action (a NaN gripper state would otherwise give an ordinary-looking action with q = nan).
  """
  same_batch = tf.debugging.assert_equal(
      tf.shape(image)[0], tf.shape(gripper_state)[0],
      message='grasp: image and gripper_state must have the same batch size B (one gripper '
      'state per frame)')
  with tf.control_dependencies([same_batch]):
    return tf.debugging.assert_all_finite(
        gripper_state, 'grasp: gripper_state has a NaN or Inf value (check the arm\'s state '
        'reading); no action is returned')


def greedy_grasp(cem_policy, image, gripper_state, seed: int = DEFAULT_GRASP_SEED) -> dict:
  """The exported ``grasp`` computation: greedy CEM, row by row (usable in process).

  Every row is planned alone with its own stateless seed (``grasp_seed``), so a row's action
  depends only on that row's frame and gripper state: the same as a batch of one. Inputs are
  checked first (``check_grasp_inputs``).

  Returns {'action': float32 [B, 8], 'q_value': float32 [B]} (Q of the chosen action).
  """
  gripper_state = check_grasp_inputs(image, gripper_state)

  def plan_row(row):
    frame, state, row_seed = row
    observation = {'image': frame[None], 'gripper_state': state[None]}
    action, logit = cem_policy._cem(observation, row_seed)  # pylint: disable=protected-access
    return action[0], logit[0]

  actions, logits = tf.map_fn(plan_row, (image, gripper_state, grasp_seed(image, seed)),
                              fn_output_signature=(tf.float32, tf.float32))
  return {'action': actions, 'q_value': tf.sigmoid(logits)}  # [B, 8], [B]


def export_policy(cem_policy,
                  export_dir: str,
                  greedy: bool = True,
                  seed: int = DEFAULT_GRASP_SEED,
                  source_checkpoint: Optional[str] = None,
                  extra_info: Optional[dict] = None) -> dict:
  """Exports a ``policies.CEMPolicy`` with tf_agents PolicySaver plus a ``grasp`` signature.

  Args:
    cem_policy: the policy (its image_transform, allowed modes and CEM settings are kept).
    export_dir: destination directory (written atomically).
    greedy: save the PolicySaver ``action`` signature with exploration epsilon = noise_std = 0
      (the policy's own values are restored afterwards); False keeps its exploration. The
      ``grasp`` signature is always greedy.
    seed: first element of ``grasp``'s stateless CEM seed (``grasp_seed``).
    source_checkpoint, extra_info: recorded in export_info.json.

  Returns:
    the export info dict.
  """
  from tf_agents.policies import policy_saver  # pylint: disable=g-import-not-at-top
  render_size, crop_size = cem_policy.render_size, cem_policy.crop_size

  grasp = tf.function(
      lambda image, gripper_state: greedy_grasp(cem_policy, image, gripper_state, seed),
      input_signature=[_image_spec(render_size), _gripper_spec()])

  def write(path):
    saved_exploration = (float(cem_policy.epsilon.numpy()), float(cem_policy.noise_std.numpy()))
    if greedy:
      cem_policy.set_exploration(0.0, 0.0)
    try:
      saver = policy_saver.PolicySaver(cem_policy, batch_size=None)
      grasp_concrete = grasp.get_concrete_function()
      saver.register_concrete_function('grasp', grasp)
      saver.signatures['grasp'] = grasp_concrete
      saver.save(path)
    finally:
      cem_policy.set_exploration(*saved_exploration)
    return {'grasp': grasp_concrete, 'action': saver.signatures['action']}

  info = _base_info(POLICY, render_size, crop_size, source_checkpoint, dict(
      greedy=bool(greedy), grasp_seed=int(seed),
      image_transform=cem_policy.image_transform is not None,
      allowed_modes=None if cem_policy.allowed_modes is None else list(cem_policy.allowed_modes),
      mode_names=list(specs.MODE_NAMES),
      cem=dict(num_samples=cem_policy._num_samples,  # pylint: disable=protected-access
               num_iterations=cem_policy._num_iterations,  # pylint: disable=protected-access
               num_elites=cem_policy._num_elites),  # pylint: disable=protected-access
      **(extra_info or {})))
  return _write_atomically(export_dir, write, info)


# ------------------------------------------------------------------------------ checkpoints


def export_from_checkpoint(root_dir: str,
                           export_dir: str,
                           what: Optional[Sequence[str]] = None,
                           gin_file: Optional[str] = None,
                           gin_bindings: Sequence[str] = (),
                           checkpoint_path: Optional[str] = None,
                           q_network_key: Optional[str] = None,
                           generator_key: str = DEFAULT_GENERATOR_KEY,
                           render_size: Optional[Sequence[int]] = None,
                           crop_size: Optional[Sequence[int]] = None,
                           action_mode: Optional[str] = None,
                           policy_uses_generator: bool = False,
                           seed: int = DEFAULT_GRASP_SEED) -> Dict[str, dict]:
  """Exports ``what`` from a training run: ``<export_dir>/{generator,q_function,policy}``.

  ``what`` None: the Q-function and the policy, and the generator when the run saved one.

  The run is read through the run-directory contract (``evaluation.load_run_policy``,
  ``rl_cyclegan/run_dir.py``): its sizes, action mode, allowed CEM modes and networks come
  from its run_spec.json (older runs: inferred from their operative config), restored from
  ``checkpoint_path`` or its newest readable checkpoint. Q is the run's policy Q
  ('q_network'; 'Q_real' for an RL-CycleGAN run) unless ``q_network_key`` names another, G
  is ``generator_key`` ('G_sim2real'). Every network must match the checkpoint exactly.
  ``render_size`` / ``crop_size`` / ``action_mode`` may be given only to check them: a value
  that disagrees with the run is a ValueError. The policy and Q-function see camera images
  directly (a real robot); ``policy_uses_generator=True`` puts G in front of Q in both (for
  sim-like images, as train_qtopt's final-Q phase does).

  Returns:
    {kind: export info} for each exported kind; the info has 'export_dir'.
  """
  from rl_cyclegan import policies  # pylint: disable=g-import-not-at-top
  from rl_cyclegan import run_dir  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.train import evaluation  # pylint: disable=g-import-not-at-top

  if what is not None:
    what = tuple(what)
    unknown = [w for w in what if w not in EXPORT_KINDS]
    if unknown or not what:
      raise ValueError(f'what must name some of {EXPORT_KINDS}, got {what!r}')
  loaded = evaluation.load_run_policy(
      root_dir, render_size=render_size, gin_file=gin_file, gin_bindings=gin_bindings,
      q_network_key=q_network_key, checkpoint_path=checkpoint_path, action_mode=action_mode,
      seed=seed)
  spec, checkpoint_path, policy = loaded.spec, loaded.checkpoint, loaded.policy
  evaluation.check_agrees('crop_size', crop_size, spec.crop_size, spec)
  render_size, crop_size = spec.render_size, spec.crop_size
  if what is None:  # everything the run has: G only when it saved one
    what = (((GENERATOR,) if generator_key in spec.networks else ()) + (Q_FUNCTION, POLICY))
  source = dict(source_checkpoint=os.path.abspath(checkpoint_path),
                extra_info={'run_spec': spec.source, 'gin_config': loaded.config and
                            os.path.abspath(loaded.config), 'gin_bindings': list(gin_bindings)})

  generator = None
  if GENERATOR in what or policy_uses_generator:
    if generator_key not in spec.networks:
      spec = run_dir.with_network(spec, generator_key, 'UNetGenerator')
    generator = run_dir.restore_networks(spec, [generator_key], checkpoint_path)[generator_key]
    generator.trainable = False
  results = {}
  if GENERATOR in what:
    path = os.path.join(export_dir, GENERATOR)
    results[GENERATOR] = dict(export_generator(generator, crop_size, path, render_size,
                                               **source), export_dir=path)
  if Q_FUNCTION in what or POLICY in what:
    if policy_uses_generator:
      policy = policies.CEMPolicy(policy.q_network, render_size=render_size,
                                  crop_size=crop_size, image_transform=generator,
                                  allowed_modes=policy.allowed_modes, seed=seed)
    if Q_FUNCTION in what:
      path = os.path.join(export_dir, Q_FUNCTION)
      results[Q_FUNCTION] = dict(export_q_function(
          policy.q_network, render_size, crop_size, path, image_transform=policy.image_transform,
          **source), export_dir=path)
    if POLICY in what:
      path = os.path.join(export_dir, POLICY)
      results[POLICY] = dict(export_policy(policy, path, seed=seed, **source), export_dir=path)
  return results
