"""Small building blocks shared by the generator and discriminator.

* ``SpectralNormalization`` / ``sn_conv``: spectrally normalized ``Conv2D`` (Miyato et al. 2018),
  the ``tensorflow_addons`` wrapper (the native Keras one fails inside ``tf.function`` with
  ``training=True`` on TF 2.15), with the power iteration done in float32 on the float32
  variables so that ``mixed_bfloat16`` does not round the master kernel to bfloat16.
* ``instance_norm``: ``GroupNormalization(groups=-1)`` == instance normalization (Ulyanov et
  al. 2016), computed in float32 under any global policy.
* ``upsample_nearest_2x``: nearest-neighbour 2x upsampling via ``tf.repeat`` (XLA-friendly).
* ``crop_to_match``: drops the first row / column when a decoder feature map is one larger
  than the skip connection (paper Fig. 5 caption).
* ``SNConvBlock``: SN conv -> optional instance norm -> optional activation.
* ``checkpointed`` / ``normalize_spectral``: gradient checkpointing of pure segments
  (``tf.recompute_grad``), with the spectral-norm power iteration run before them.
* ``records_config``: a network's constructor arguments (after gin) kept as JSON, so a run
  directory can record how to rebuild it without gin (``rl_cyclegan/run_dir.py``).
"""

import functools
import inspect
import json
from typing import Callable, Optional, Sequence, Union

import tensorflow as tf
import tensorflow_addons as tfa


def _float_variable(variable):
  """The underlying (float32) variable of a Keras ``AutoCastVariable``; else ``variable``.

  Under ``mixed_bfloat16`` Keras wraps float32 variables in ``AutoCastVariable``, which reads
  as bfloat16 inside a layer's ``call``. Reading the wrapped variable keeps full precision.
  """
  return getattr(variable, '_variable', variable)


def _jsonable(value):
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, (bool, int, float, str)) or value is None:
    return value
  if hasattr(value, 'item'):  # NumPy scalars
    return value.item()
  raise TypeError(f'constructor argument {value!r} of type {type(value).__name__} cannot be '
                  'recorded as JSON')


def records_config(init):
  """Decorates a network's ``__init__``: ``self.constructor_config`` is then every argument
  it was built with (gin-supplied ones and defaults included), JSON-compatible, so that
  ``type(net)(**net.constructor_config)`` builds the same network without gin.

  Stored as a JSON string: a string attribute is not tracked by tf.train.Checkpoint, so the
  checkpoint layout does not change.
  """
  signature = inspect.signature(init)

  @functools.wraps(init)
  def wrapper(self, *args, **kwargs):
    bound = signature.bind(self, *args, **kwargs)
    bound.apply_defaults()
    init(self, *args, **kwargs)
    config = {k: _jsonable(v) for k, v in list(bound.arguments.items())[1:]}
    self._constructor_config_json = json.dumps(config, sort_keys=True)

  wrapper.__signature__ = signature  # TF-Agents' Network checks __init__ for *args
  return wrapper


def constructor_config(network) -> Optional[dict]:
  """The arguments ``network`` was built with (``records_config``), or None."""
  text = getattr(network, '_constructor_config_json', None)
  return json.loads(text) if text else None


@tf.keras.utils.register_keras_serializable(package='rl_cyclegan')
class SpectralNormalization(tfa.layers.SpectralNormalization):
  """``tfa.layers.SpectralNormalization`` with a float32 power iteration.

  Behaviour is that of the tfa wrapper: with ``training=True`` each call runs
  ``power_iterations`` steps of the power method on the kernel reshaped to
  ``[k * k * C_in, C_out]``, estimates its top singular value sigma and *assigns*
  ``kernel / sigma`` back to the wrapped layer's kernel; with ``training=False`` the current
  kernel is used as is.

  The tfa version reads the kernel through the layer's autocast scope, so under the
  ``mixed_bfloat16`` policy the assigned float32 kernel gets rounded to bfloat16 on every
  training call (small optimizer updates would then be lost). This subclass reads and writes
  the float32 variables directly.

  The tfa wrapper also pins its input spec to the first input's spatial size; here only the
  rank and the channel count are fixed, so wrapped convs stay fully convolutional.
  """

  def build(self, input_shape):
    super().build(input_shape)
    input_shape = tf.TensorShape(input_shape)
    self.input_spec = tf.keras.layers.InputSpec(
        ndim=input_shape.rank, axes={-1: input_shape[-1]})

  def normalize_weights(self):
    w_var = _float_variable(self.w)  # float32 [k, k, C_in, C_out]
    u_var = _float_variable(self.u)  # float32 [1, C_out]
    w = tf.reshape(tf.cast(w_var.read_value(), tf.float32), [-1, self.w_shape[-1]])  # [K, C_out]
    u = tf.cast(u_var.read_value(), tf.float32)  # [1, C_out]
    with tf.name_scope('spectral_normalize'):
      for _ in range(self.power_iterations):
        v = tf.math.l2_normalize(tf.matmul(u, w, transpose_b=True))  # [1, K]
        u = tf.math.l2_normalize(tf.matmul(v, w))  # [1, C_out]
      u = tf.stop_gradient(u)
      v = tf.stop_gradient(v)
      sigma = tf.matmul(tf.matmul(v, w), u, transpose_b=True)  # [1, 1]
      u_var.assign(tf.cast(u, u_var.dtype))
      w_var.assign(tf.cast(tf.reshape(w / sigma, self.w_shape), w_var.dtype))


def normalize_spectral(model: tf.Module) -> bool:
  """Runs the training-time power iteration of every spectrally normalized layer of ``model``
  now (what ``training=True`` does inside each layer's call), so the layers can then be called
  with ``training=False`` as pure functions (``checkpointed``). Returns False, doing nothing,
  while any of them is not built yet (its first call builds it)."""
  wrappers = [m for m in model.submodules if isinstance(m, SpectralNormalization)]
  if not all(w.built for w in wrappers):
    return False
  for w in wrappers:
    w.normalize_weights()
  return True


def checkpointed(fn: Callable, enabled: bool) -> Callable:
  """``fn``, or with ``enabled`` ``tf.recompute_grad(fn)``: gradient checkpointing (Chen et
  al. 2016, "Training deep nets with sublinear memory cost").

  The activations inside ``fn`` are not kept for the backward pass; they are recomputed from
  its inputs when its output's gradient arrives (TF adds that data dependency), so only the
  segments' inputs and outputs stay in memory, for about one more forward pass of compute.
  Gradients are those of ``fn`` itself. ``fn`` must be a pure function of its tensor inputs
  and the variables it reads: nothing may be assigned inside it (run ``normalize_spectral``
  first and call spectrally normalized layers with ``training=False``).
  """
  return tf.recompute_grad(fn) if enabled else fn


def sn_conv(filters: int,
            kernel_size: int,
            strides: int = 1,
            padding: str = 'same',
            use_bias: bool = True,
            power_iterations: int = 1,
            kernel_initializer='glorot_uniform',
            name: Optional[str] = None) -> SpectralNormalization:
  """A spectrally normalized ``Conv2D`` (tfa wrapper; see ``SpectralNormalization``).

  Variables: kernel [k, k, C_in, filters] and bias [filters] (if ``use_bias``) trainable;
  power-iteration vector ``sn_u`` [1, filters] non-trainable.

  Args:
    filters: output channels.
    kernel_size: square kernel size.
    strides: square stride.
    padding: 'same' (output size ceil(in / stride)) or 'valid'.
    use_bias: whether the conv has a bias (redundant before instance norm).
    power_iterations: power-method steps per training call.
    kernel_initializer: Keras initializer for the kernel.
    name: layer name.

  Returns:
    A layer mapping [B, H, W, C_in] -> [B, H', W', filters].
  """
  conv = tf.keras.layers.Conv2D(
      filters, kernel_size, strides=strides, padding=padding, use_bias=use_bias,
      kernel_initializer=kernel_initializer, name=None if name is None else name + '_conv')
  return SpectralNormalization(conv, power_iterations=power_iterations, name=name)


def instance_norm(epsilon: float = 1e-3, name: Optional[str] = None) -> tf.keras.layers.Layer:
  """Instance normalization: per image and channel, over H and W, with learned scale/offset.

  ``GroupNormalization(groups=-1)`` (one group per channel) is instance normalization. The
  layer is pinned to float32 (like batch norm under mixed precision): it casts bf16 inputs to
  float32, so the moments are exact, and returns float32 [B, H, W, C].

  Args:
    epsilon: added to the variance.
    name: layer name.
  """
  return tf.keras.layers.GroupNormalization(
      groups=-1, axis=-1, epsilon=epsilon, dtype='float32', name=name)


def upsample_nearest_2x(x: tf.Tensor) -> tf.Tensor:
  """Nearest-neighbour 2x upsampling: [B, H, W, C] -> [B, 2H, 2W, C] via ``tf.repeat``."""
  x = tf.repeat(x, 2, axis=1)  # [B, 2H, W, C]
  return tf.repeat(x, 2, axis=2)  # [B, 2H, 2W, C]


def crop_to_match(x: tf.Tensor, ref: tf.Tensor) -> tf.Tensor:
  """Crops ``x`` [B, H, W, C] to the spatial size of ``ref`` [B, h, w, C'] (h, w <= H, W).

  Paper Fig. 5: "the first row and column are dropped during addition to match sizes". When
  an odd size s is halved with 'same' padding to ceil(s / 2) and upsampled back, the result
  is s + 1; the FIRST row (and/or column) is dropped: ``x[:, H - h:, W - w:, :]``.

  Example: x of height 60 (= 2 * 30, from 59 -> 30 -> upsampled) and ref of height 59:
  rows 1..59 of x are kept, row 0 is dropped.

  Args:
    x: [B, H, W, C] tensor, H - h and W - w each in {0, 1}.
    ref: [B, h, w, C'] tensor whose spatial size is matched.

  Returns:
    [B, h, w, C] tensor.

  Raises:
    ValueError: if the static sizes differ by anything other than 0 or 1 per dimension
      (checked at run time with ``tf.debugging`` when sizes are only known dynamically).
  """
  x_hw = x.shape[1:3]
  ref_hw = ref.shape[1:3]
  if x_hw.is_fully_defined() and ref_hw.is_fully_defined():
    dh = x_hw[0] - ref_hw[0]
    dw = x_hw[1] - ref_hw[1]
    if dh not in (0, 1) or dw not in (0, 1):
      raise ValueError(
          f'crop_to_match: x spatial size {x_hw.as_list()} must equal the reference size '
          f'{ref_hw.as_list()} or exceed it by one row/column (paper Fig. 5); got difference '
          f'({dh}, {dw}). x shape {x.shape.as_list()}, ref shape {ref.shape.as_list()}.')
    if dh == 0 and dw == 0:
      return x
    return x[:, dh:, dw:, :]
  diff = tf.shape(x)[1:3] - tf.shape(ref)[1:3]  # [2]
  with tf.control_dependencies([
      tf.debugging.assert_greater_equal(diff, 0, message='crop_to_match: x smaller than ref'),
      tf.debugging.assert_less_equal(diff, 1, message='crop_to_match: x exceeds ref by > 1'),
  ]):
    return tf.identity(x[:, diff[0]:, diff[1]:, :])


def activation_fn(activation: Optional[str], leaky_relu_alpha: float = 0.2):
  """'relu' | 'leaky_relu' | None (identity) -> callable."""
  if activation is None or activation == 'linear':
    return tf.identity
  if activation == 'relu':
    return tf.nn.relu
  if activation == 'leaky_relu':
    return lambda x: tf.nn.leaky_relu(x, alpha=leaky_relu_alpha)
  raise ValueError(f"activation must be 'relu', 'leaky_relu' or None, got {activation!r}")


class SNConvBlock(tf.keras.layers.Layer):
  """SN conv -> instance norm (optional) -> activation (optional).

  [B, H, W, C_in] -> [B, ceil(H / strides), ceil(W / strides), filters] ('same' padding), in
  the layer's compute dtype. The conv has no bias when instance norm follows (it would be
  removed by the normalization).
  """

  def __init__(self,
               filters: int,
               kernel_size: int = 3,
               strides: int = 1,
               use_instance_norm: bool = True,
               activation: Optional[str] = 'relu',
               leaky_relu_alpha: float = 0.2,
               power_iterations: int = 1,
               norm_epsilon: float = 1e-3,
               name: Optional[str] = None):
    """Creates the block.

    Args:
      filters: output channels.
      kernel_size: square kernel size.
      strides: square stride.
      use_instance_norm: add instance normalization after the conv.
      activation: 'relu', 'leaky_relu' or None.
      leaky_relu_alpha: negative slope when activation == 'leaky_relu'.
      power_iterations: spectral-norm power-method steps per training call.
      norm_epsilon: instance-norm epsilon.
      name: layer name.
    """
    super().__init__(name=name)
    self.conv = sn_conv(filters, kernel_size, strides=strides, use_bias=not use_instance_norm,
                        power_iterations=power_iterations, name='sn')
    self.norm = instance_norm(norm_epsilon, name='instance_norm') if use_instance_norm else None
    self._activation = activation_fn(activation, leaky_relu_alpha)

  def call(self, x, training=False):
    x = self.conv(x, training=training)  # [B, H', W', F]
    if self.norm is not None:
      x = tf.cast(self.norm(x), self.compute_dtype)  # [B, H', W', F]
    return self._activation(x)


def conv_output_size(size: int, strides: Union[int, Sequence[int]]) -> int:
  """Spatial size after 'same'-padded strided ops: ceil(size / s) per stride, in order."""
  if isinstance(strides, int):
    strides = [strides]
  for s in strides:
    size = -(-size // s)
  return size
