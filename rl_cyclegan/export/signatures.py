"""The serving signatures of the exports (saved_models.py): tf.Modules whose tf.functions take
what a camera and an arm give (uint8 frames at the render size, float32 gripper states) and do
every preprocessing step in the graph; plus the greedy CEM grasp and its input checks.

Packaging (temporary directory, export_info.json, atomic rename) is in package.py.
"""

import re

import tensorflow as tf

from rl_cyclegan import specs
from rl_cyclegan.data import preprocessing

DEFAULT_GRASP_SEED = 0


def check_size(size, what):
  return specs._check_size(size, what)  # pylint: disable=protected-access


def image_spec(size):
  h, w = size
  return tf.TensorSpec([None, h, w, specs.IMAGE_CHANNELS], tf.uint8, name='image')


def gripper_spec():
  return tf.TensorSpec([None, specs.GRIPPER_STATE_DIM], tf.float32, name='gripper_state')


def call_transform(transform, images):
  """``image_transform`` on float images; Keras models with training=False (as CEMPolicy)."""
  if isinstance(transform, tf.keras.layers.Layer):
    return transform(images, training=False)
  return transform(images)


def model_image(image, crop_size, image_transform=None):
  """uint8 [B, H, W, 3] -> center crop -> float32 [B, h, w, 3] in [-1, 1] (-> transform)."""
  image = preprocessing.center_crop(image, crop_size)  # [B, h, w, 3] uint8
  image = specs.to_float_image(image)  # [B, h, w, 3] float32 in [-1, 1]
  if image_transform is not None:
    image = tf.cast(call_transform(image_transform, image), tf.float32)  # [B, h, w, 3]
  return image


def spec_dict(spec):
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
  inputs = {_signature_key(spec.name): spec_dict(spec) for spec in args}
  inputs.update({_signature_key(key): spec_dict(spec) for key, spec in kwargs.items()})
  outputs = {name: spec_dict(spec) for name, spec in concrete_fn.structured_outputs.items()}
  return {'inputs': inputs, 'outputs': outputs}


def format_signature(name: str, description: dict) -> str:
  """'grasp(image uint8 [None, 64, 80, 3], ...) -> {action: float32 [None, 8]}'."""
  def fmt(items):
    return ', '.join(f'{k} {v["dtype"]} {v["shape"]}' for k, v in items.items())
  return f'{name}({fmt(description["inputs"])}) -> {{{fmt(description["outputs"])}}}'


class GeneratorModule(tf.Module):
  """Holds G and the uint8 -> uint8 serving functions."""

  def __init__(self, generator, image_size, render_size=None):
    super().__init__(name='exported_generator')
    self.generator = generator
    self.image_size = image_size

    def translate(image):  # [B, h, w, 3] uint8
      x = specs.to_float_image(image)  # [B, h, w, 3] in [-1, 1]
      y = call_transform(generator, x)  # [B, h, w, 3] in [-1, 1]
      return {'image': specs.to_uint8_image(y)}  # [B, h, w, 3] uint8

    self.serving_default = tf.function(translate, input_signature=[image_spec(image_size)])
    self.translate_frame = None
    if render_size is not None and tuple(render_size) != tuple(image_size):

      def translate_frame(image):  # [B, H, W, 3] uint8 at the render size
        return translate(preprocessing.center_crop(image, image_size))  # [B, h, w, 3]

      self.translate_frame = tf.function(translate_frame,
                                         input_signature=[image_spec(render_size)])

  def signatures(self):
    signatures = {'serving_default': self.serving_default.get_concrete_function()}
    if self.translate_frame is not None:
      signatures['translate_frame'] = self.translate_frame.get_concrete_function()
    return signatures


class QFunctionModule(tf.Module):
  """Holds the Q-network (and optional image transform) and the Q serving functions."""

  def __init__(self, q_network, render_size, crop_size, image_transform=None):
    super().__init__(name='exported_q_function')
    self.q_network = q_network
    if image_transform is not None:
      self.image_transform = image_transform

    def embed(image):  # [B, H, W, 3] uint8 -> [B, e_h, e_w, C]
      images = model_image(image, crop_size, image_transform)  # [B, h, w, 3]
      return q_network.embed_image(images, training=False)

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
        q_value, input_signature=[image_spec(render_size), gripper_spec(), action])
    self.q_values_for_candidates = tf.function(
        q_values_for_candidates,
        input_signature=[image_spec(render_size), gripper_spec(), actions])

  def signatures(self):
    return {'serving_default': self.q_value.get_concrete_function(),
            'q_values_for_candidates': self.q_values_for_candidates.get_concrete_function()}


def check_sizes(render_size, crop_size):
  render_size = check_size(render_size, 'render_size')
  crop_size = check_size(crop_size, 'crop_size')
  if crop_size[0] > render_size[0] or crop_size[1] > render_size[1]:
    raise ValueError(f'crop_size {crop_size} is larger than render_size {render_size}')
  return render_size, crop_size


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
