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
(see ``package.write_atomically``).

Caveat for callers: TensorFlow converts *NumPy* inputs of a signature to the declared dtype
with NumPy casting rules (a float32 image in [0, 1] becomes all zeros, 300 wraps to 44) before
the graph runs; only ``tf.Tensor`` inputs of the wrong dtype are rejected. Controllers should
check ``frame.dtype == np.uint8`` themselves (docs/export.md).
"""

import os
from typing import Callable, Dict, Optional, Sequence

import tensorflow as tf

from rl_cyclegan import specs
from rl_cyclegan.export import package
from rl_cyclegan.export import signatures

EXPORT_INFO = package.EXPORT_INFO
read_export_info = package.read_export_info
GENERATOR, Q_FUNCTION, POLICY = 'generator', 'q_function', 'policy'
EXPORT_KINDS = (GENERATOR, Q_FUNCTION, POLICY)
DEFAULT_GENERATOR_KEY = 'G_sim2real'  # RLCycleGANLearner.checkpoint_items, train_qtopt
DEFAULT_Q_NETWORK_KEY = 'q_network'  # QTOptLearner.checkpoint_items
DEFAULT_GRASP_SEED = signatures.DEFAULT_GRASP_SEED


# ------------------------------------------------------------------------------ generator


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
  image_size = signatures.check_size(image_size, 'image_size')
  if render_size is not None:
    render_size = signatures.check_size(render_size, 'render_size')
    if image_size[0] > render_size[0] or image_size[1] > render_size[1]:
      raise ValueError(f'generator image_size {image_size} is larger than render_size '
                       f'{render_size}')
  module = signatures.GeneratorModule(generator, image_size, render_size)

  def write(path):
    functions = module.signatures()
    tf.saved_model.save(module, path, signatures=functions)
    return functions

  info = package.base_info(GENERATOR, render_size, image_size, source_checkpoint,
                    dict(generator_image_size=list(image_size), **(extra_info or {})))
  return package.write_atomically(export_dir, write, info)


# ------------------------------------------------------------------------------ Q-function


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
  render_size, crop_size = signatures.check_sizes(render_size, crop_size)
  if hasattr(q_network, 'create_variables'):
    q_network.create_variables()
  module = signatures.QFunctionModule(q_network, render_size, crop_size, image_transform)

  def write(path):
    functions = module.signatures()
    tf.saved_model.save(module, path, signatures=functions)
    return functions

  info = package.base_info(Q_FUNCTION, render_size, crop_size, source_checkpoint,
                    dict(image_transform=image_transform is not None, **(extra_info or {})))
  return package.write_atomically(export_dir, write, info)


# ------------------------------------------------------------------------------ policy


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
      lambda image, gripper_state: signatures.greedy_grasp(cem_policy, image, gripper_state, seed),
      input_signature=[signatures.image_spec(render_size), signatures.gripper_spec()])

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

  info = package.base_info(POLICY, render_size, crop_size, source_checkpoint, dict(
      greedy=bool(greedy), grasp_seed=int(seed),
      image_transform=cem_policy.image_transform is not None,
      allowed_modes=None if cem_policy.allowed_modes is None else list(cem_policy.allowed_modes),
      mode_names=list(specs.MODE_NAMES),
      cem=dict(num_samples=cem_policy._num_samples,  # pylint: disable=protected-access
               num_iterations=cem_policy._num_iterations,  # pylint: disable=protected-access
               num_elites=cem_policy._num_elites),  # pylint: disable=protected-access
      **(extra_info or {})))
  return package.write_atomically(export_dir, write, info)


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

  The run is read through the run-directory contract (``policy_eval.load_run_policy``,
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
  from rl_cyclegan.actors import policies  # pylint: disable=g-import-not-at-top
  from rl_cyclegan import run_dir  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.evaluation import policy_eval  # pylint: disable=g-import-not-at-top

  if what is not None:
    what = tuple(what)
    unknown = [w for w in what if w not in EXPORT_KINDS]
    if unknown or not what:
      raise ValueError(f'what must name some of {EXPORT_KINDS}, got {what!r}')
  loaded = policy_eval.load_run_policy(
      root_dir, render_size=render_size, gin_file=gin_file, gin_bindings=gin_bindings,
      q_network_key=q_network_key, checkpoint_path=checkpoint_path, action_mode=action_mode,
      seed=seed)
  spec, checkpoint_path, policy = loaded.spec, loaded.checkpoint, loaded.policy
  policy_eval.check_agrees('crop_size', crop_size, spec.crop_size, spec)
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
