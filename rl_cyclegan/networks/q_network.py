"""Grasping Q-function after QT-Opt (Kalashnikov et al. 2018), as a tf_agents ``Network``.

  image [B, H, W, 3] in [-1, 1]
    -> conv(stem_filters, stem_kernel_size, stride stem_strides) -> maxpool(stem_pool_size)
    -> conv(f, tower_kernel_size) for f in tower_filters -> maxpool(tower_pool_size)
    = embedding [B, h, w, C]                                         (``embed_image``)
  [gripper_state, action] [B, N, 10]
    -> FC(u) for u in state_action_fc_units -> linear FC(C)          [B, N, C]
  embedding (tiled N times) + state-action features (tiled over h, w)  [B * N, h, w, C]
    -> conv(f, merged_kernel_size) for f in merged_filters -> maxpool(merged_pool_size)
    -> conv(f, final_kernel_size) for f in final_filters -> flatten
    -> FC(u) for u in fc_units -> FC(1) = logit                      [B, N]
  Q = sigmoid(logit)                                                   (``q_values``)

All convs 'same' padded with ReLU; pooling is max pooling with stride = pool size ('same').
Defaults are QT-Opt's widths (64-channel convs, 6 + 6 + 3 of them, FC 256 -> 64 for the
state-action branch and FC 64, 64 at the head).

Normalization (``normalization``): none by default, as every run of this project so far.
QT-Opt puts batch norm between each conv and its ReLU; ``'batch'`` does that (synchronized
across replicas under tf.distribute; moving statistics in inference calls, so CEM and the
target networks read them). ``'layer'`` normalizes each conv's output per image over (h, w, C)
instead (``GroupNormalization(groups=1)``, Wu & He 2018): no batch statistics, so a call on a
batch mixing domains or CEM candidates treats each image alone, and training and inference
compute the same function. Either way the convs' output scale no longer follows their weights:
a collapsed tower (docs/results.md, Table 1, "Session 22") had let its stem's output grow ~10x
and lost its next conv to dead ReLUs; a normalized conv's pre-activations stay centred.
Only the image tower's convs (with the CoordConv projection) are normalized unless
``normalize_head`` (QT-Opt: every conv):
the head runs once per CEM candidate, and normalizing it made the spatial network's QT-Opt step
1.2x (batch) and 2.6x (layer) as long; the tower alone 1.2x and 1.1x
(``tools/benchmark_qtopt.py --normalizations``).

The image tower does not depend on the action, so CEM calls ``embed_image`` once per state and
``logits_from_embedding`` with all N candidate actions; only the layers after the merge run
N times.

Spatial options (ours, not QT-Opt's; all off by default, gin/networks_spatial.gin turns them
on for small CPU images, where a 4x4 merge grid is ~19 cm of tray per cell):
  * ``coord_channels``: CoordConv (Liu et al. 2018): (x, y) maps of each cell joined to the
    tower output, then a 1x1 conv back to C channels, so the head knows where a cell is;
  * ``num_keypoints`` = K: spatial softmax (Levine et al. 2016) over K 1x1-conv maps of the
    tower output; the K expected image positions (e.g. of the gripper) join
    [gripper_state, action] in the state-action branch. The embedding then carries them as
    2K extra channels, tiled over h, w ([B, h, w, C + 2K]); callers treat it as opaque;
  * ``head_pooling='global_max'``: max over the head's cells instead of flatten, i.e. "is
    there a cell where this action ends on something graspable".

Memory (ours): with ``recompute_grad`` the layers up to and including each max pool form a
gradient-checkpointed segment (``layers.checkpointed``) in training calls: the backward pass
recomputes the convolutions' outputs (the stem conv's is 9x the size of the pooled one)
instead of keeping them. Same values, gradients and variables.
"""

import functools
from typing import Optional, Sequence, Tuple

import gin
import tensorflow as tf
from tf_agents.networks import network

from rl_cyclegan import specs
from rl_cyclegan.networks import layers


def small_config():
  """Small CPU setting (64x64 crops): embedding [B, 4, 4, 32], ~0.09 M parameters."""
  return dict(
      stem_filters=32, tower_filters=(32, 32), state_action_fc_units=(64,),
      merged_filters=(32, 32), final_filters=(32,), fc_units=(32,))


NORMALIZATIONS = (None, 'layer', 'batch')


def _conv(filters, kernel_size, strides, name, normalization=None):
  """A 'same' conv and its ReLU, as a list of layers: [conv(relu)] without normalization (the
  layer names of every earlier checkpoint), [conv(no bias), norm, relu] with it."""
  if normalization is None:
    return [tf.keras.layers.Conv2D(filters, kernel_size, strides=strides, padding='same',
                                   activation='relu', name=name)]
  conv = tf.keras.layers.Conv2D(filters, kernel_size, strides=strides, padding='same',
                                use_bias=False, name=name)  # the norm's beta is the bias
  if normalization == 'layer':
    norm = tf.keras.layers.GroupNormalization(groups=1, epsilon=1e-3, name=f'{name}_norm')
  else:  # 'batch'
    norm = tf.keras.layers.BatchNormalization(epsilon=1e-3, synchronized=True,
                                              name=f'{name}_norm')
  return [conv, norm, tf.keras.layers.ReLU(name=f'{name}_relu')]


def _pool(pool_size, name):
  return tf.keras.layers.MaxPool2D(pool_size, strides=pool_size, padding='same', name=name)


def _coordinate_maps(batch_size, height, width):
  """float32 [B, h, w, 2]: x (column) and y (row) of each cell centre, in [-1, 1]."""
  ys = (tf.range(height, dtype=tf.float32) + 0.5) / height * 2.0 - 1.0  # [h]
  xs = (tf.range(width, dtype=tf.float32) + 0.5) / width * 2.0 - 1.0  # [w]
  grid = tf.stack(tf.meshgrid(xs, ys), axis=-1)  # [h, w, 2] = (x, y)
  return tf.tile(grid[None], tf.stack([batch_size, 1, 1, 1]))


def _spatial_softmax(maps):
  """float32 maps [B, h, w, K] -> expected (x, y) in [-1, 1] of each softmax, [B, 2K]."""
  shape = tf.shape(maps)
  h, w, k = maps.shape[1], maps.shape[2], maps.shape[3]
  probs = tf.nn.softmax(tf.reshape(tf.transpose(maps, [0, 3, 1, 2]), [shape[0], k, h * w]))
  coords = tf.reshape(_coordinate_maps(1, h, w)[0], [h * w, 2])  # [h * w, 2]
  expected = tf.einsum('bkp,pc->bkc', probs, coords)  # [B, K, 2]
  return tf.reshape(expected, [shape[0], 2 * k])


@gin.configurable
class GraspingQNetwork(network.Network):
  """Q(s, a) for grasping. Inputs ``(observation, action)`` per ``specs``.

  ``input_tensor_spec`` = (``specs.model_observation_spec(crop_size)``, ``specs.action_spec()``).
  ``call`` returns float32 logits [B]; Q = sigmoid(logits). Under ``mixed_bfloat16`` the
  variables are float32, the layers compute in bfloat16, and the embedding and logits are
  returned as float32.
  """

  @layers.records_config
  def __init__(self,
               crop_size: Sequence[int] = specs.DEFAULT_CROP_SIZE,
               stem_filters: int = 64,
               stem_kernel_size: int = 6,
               stem_strides: int = 2,
               stem_pool_size: int = 3,
               tower_filters: Sequence[int] = (64,) * 6,
               tower_kernel_size: int = 5,
               tower_pool_size: int = 3,
               state_action_fc_units: Sequence[int] = (256,),
               merged_filters: Sequence[int] = (64,) * 6,
               merged_kernel_size: int = 3,
               merged_pool_size: int = 2,
               final_filters: Sequence[int] = (64,) * 3,
               final_kernel_size: int = 3,
               fc_units: Sequence[int] = (64, 64),
               coord_channels: bool = False,
               num_keypoints: int = 0,
               head_pooling: str = 'flatten',
               recompute_grad: bool = False,
               normalization: Optional[str] = None,
               normalize_head: bool = False,
               name: str = 'GraspingQNetwork'):
    """Creates the network.

    Args:
      crop_size: (height, width) of the image the network consumes (specs: 64x64 CPU default,
        472x472 in the paper).
      stem_filters: width of the first conv.
      stem_kernel_size: kernel of the first conv.
      stem_strides: stride of the first conv.
      stem_pool_size: max-pool size (= stride) after the first conv.
      tower_filters: widths of the convs before the merge; the last one (or stem_filters if
        empty) is the embedding width C.
      tower_kernel_size: kernel of those convs.
      tower_pool_size: max-pool size (= stride) ending the image tower.
      state_action_fc_units: hidden FC widths (ReLU) for [gripper_state, action]; a linear FC
        to width C follows.
      merged_filters: conv widths after the merge.
      merged_kernel_size: their kernel.
      merged_pool_size: max-pool size (= stride) after them.
      final_filters: conv widths after that pool.
      final_kernel_size: their kernel.
      fc_units: hidden FC widths (ReLU) of the head before the 1-unit logit layer.
      coord_channels: append (x, y) coordinate maps in [-1, 1] to the image tower's output
        and project back to C channels with a 1x1 conv (CoordConv, Liu et al. 2018), so the
        layers after the merge know where each cell is. Not in QT-Opt.
      num_keypoints: K > 0 adds a spatial softmax (Levine et al. 2016) over K 1x1-conv maps of
        the tower output; the K expected (x, y) image positions join [gripper_state, action]
        in the state-action branch. Not in QT-Opt.
      head_pooling: 'flatten' (QT-Opt) or 'global_max' (max over the head's spatial cells).
      recompute_grad: gradient checkpointing of the conv stacks in training calls (see the
        module docstring): less memory for about one more forward pass of them.
      normalization: None (no normalization layer), 'layer' (per-image normalization after
        each conv) or 'batch' (QT-Opt's batch norm after each conv); see the module
        docstring. 'batch' cannot be combined with recompute_grad (the recomputed forward pass
        would update the moving statistics twice).
      normalize_head: also normalize the convs after the merge (QT-Opt); by default only the
        image tower's (stem, tower convs and the CoordConv projection).
      name: network name.
    """
    crop_size = specs._check_size(crop_size, 'crop_size')  # pylint: disable=protected-access
    observation_spec = specs.model_observation_spec(crop_size)
    super().__init__(
        input_tensor_spec=(observation_spec, specs.action_spec()), state_spec=(), name=name)
    self._crop_size = crop_size
    self._observation_spec = observation_spec
    self._action_spec = specs.action_spec()
    self._feature_channels = int(tower_filters[-1]) if tower_filters else int(stem_filters)
    if head_pooling not in ('flatten', 'global_max'):
      raise ValueError(f"head_pooling must be 'flatten' or 'global_max', got {head_pooling!r}")
    if normalization not in NORMALIZATIONS:
      raise ValueError(f'normalization must be one of {NORMALIZATIONS}, got {normalization!r}')
    if normalization == 'batch' and recompute_grad:
      raise ValueError("normalization='batch' cannot be combined with recompute_grad=True: "
                       'the recomputed forward pass would update the moving statistics twice')
    if num_keypoints < 0:
      raise ValueError(f'num_keypoints must be >= 0, got {num_keypoints}')
    self._coord_channels = bool(coord_channels)
    self._num_keypoints = int(num_keypoints)
    self._head_pooling = head_pooling
    self._recompute_grad = bool(recompute_grad)
    self._normalization = normalization
    self._normalize_head = bool(normalize_head)
    # The embedding packs the spatial features [h, w, C] and, with keypoints, their 2K
    # coordinates tiled over h, w: [h, w, C + 2K]. Callers treat it as opaque.
    self._embedding_channels = self._feature_channels + 2 * self._num_keypoints

    conv = functools.partial(_conv, normalization=normalization)
    self._tower = conv(stem_filters, stem_kernel_size, stem_strides, 'stem_conv')
    self._tower.append(_pool(stem_pool_size, 'stem_pool'))
    for i, f in enumerate(tower_filters):
      self._tower += conv(f, tower_kernel_size, 1, f'tower_conv{i}')
    self._tower.append(_pool(tower_pool_size, 'tower_pool'))
    # The CoordConv projection is part of the image tower (normalized with it). The conv keeps
    # its attribute (the checkpoint key of every earlier run); the norm and ReLU follow it.
    projection = (conv(self._feature_channels, 1, 1, 'coord_projection')
                  if self._coord_channels else [None])
    self._coord_projection, self._coord_projection_norm = projection[0], projection[1:]
    self._keypoint_conv = (
        tf.keras.layers.Conv2D(self._num_keypoints, 1, name='keypoint_conv')
        if self._num_keypoints else None)

    self._state_action_fc = [tf.keras.layers.Dense(u, activation='relu', name=f'sa_fc{i}')
                             for i, u in enumerate(state_action_fc_units)]
    self._state_action_fc.append(
        tf.keras.layers.Dense(self._feature_channels, name='sa_projection'))

    head_conv = conv if normalize_head else _conv
    self._head = []
    for i, f in enumerate(merged_filters):
      self._head += head_conv(f, merged_kernel_size, 1, f'merged_conv{i}')
    self._head.append(_pool(merged_pool_size, 'merged_pool'))
    for i, f in enumerate(final_filters):
      self._head += head_conv(f, final_kernel_size, 1, f'final_conv{i}')
    self._fc = [tf.keras.layers.Dense(u, activation='relu', name=f'fc{i}')
                for i, u in enumerate(fc_units)]
    self._fc.append(tf.keras.layers.Dense(1, name='logit'))

  @property
  def crop_size(self) -> Tuple[int, int]:
    return self._crop_size

  @property
  def normalization(self) -> Optional[str]:
    """None, 'layer' or 'batch' (the constructor argument)."""
    return self._normalization

  @property
  def feature_channels(self) -> int:
    """C: the embedding's first C channels are the tower's features (then any keypoints)."""
    return self._feature_channels

  def _check_image(self, image):
    specs.check_tensor(image, self._observation_spec['image'],
                       f'{self.name} observation["image"]')

  def _check_inputs(self, inputs):
    if not isinstance(inputs, (tuple, list)) or len(inputs) != 2:
      raise ValueError(f'{self.name}: inputs must be (observation, action) per spec '
                       f'{self.input_tensor_spec}, got {type(inputs).__name__}')
    observation, action = inputs
    if not isinstance(observation, dict) or not {'image', 'gripper_state'} <= set(observation):
      raise ValueError(f'{self.name}: observation must be a dict with keys image, '
                       f'gripper_state per spec {self._observation_spec}, got {observation!r}')
    self._check_image(observation['image'])
    specs.check_tensor(observation['gripper_state'], self._observation_spec['gripper_state'],
                       f'{self.name} observation["gripper_state"]')
    specs.check_tensor(action, self._action_spec, f'{self.name} action')

  def __call__(self, inputs, *args, **kwargs):
    # Our checks first: they name the spec; tf_agents' own check follows in super().
    self._check_inputs(inputs)
    return super().__call__(inputs, *args, **kwargs)

  def _run_stack(self, stack, x, training):
    """Applies the conv / pool layers ``stack`` to x; with ``recompute_grad`` (training calls)
    each run of layers ending at a max pool is one checkpointed segment."""

    def segment(x, part):
      for layer in part:
        x = layer(x, training=training)  # [B, h_i, w_i, c_i]
      return x

    recompute = self._recompute_grad and bool(training)
    start = 0
    for end, layer in enumerate(stack, 1):
      if end == len(stack) or isinstance(layer, tf.keras.layers.MaxPool2D):
        x = layers.checkpointed(functools.partial(segment, part=stack[start:end]), recompute)(x)
        start = end
    return x

  def embed_image(self, image, training=False):
    """Image tower: float32 [B, H, W, 3] in [-1, 1] -> float32 embedding [B, h, w, C]."""
    self._check_image(image)
    x = self._run_stack(self._tower, image, training)  # [B, h, w, C]
    features = x  # [B, h, w, C]
    if self._coord_projection is not None:
      coords = tf.cast(_coordinate_maps(tf.shape(x)[0], x.shape[1], x.shape[2]), x.dtype)
      x = tf.concat([x, coords], -1)  # [B, h, w, C + 2]
      x = self._coord_projection(x)  # [B, h, w, C]
      for layer in self._coord_projection_norm:
        x = layer(x, training=training)
    x = tf.cast(x, tf.float32)
    if self._keypoint_conv is not None:
      keypoints = _spatial_softmax(
          tf.cast(self._keypoint_conv(features), tf.float32))  # [B, 2K]
      cells = tf.stack([1, tf.shape(x)[1], tf.shape(x)[2], 1])
      tiled = tf.tile(keypoints[:, None, None, :], cells)  # [B, h, w, 2K]
      x = tf.concat([x, tiled], -1)  # [B, h, w, C + 2K]
    return x

  def logits_from_embedding(self, embedding, gripper_state, actions, training=False):
    """Logits for N candidate actions per state, reusing the image embedding.

    Args:
      embedding: [B, h, w, C] from ``embed_image``.
      gripper_state: float32 [B, 2].
      actions: float32 [B, N, 8].
      training: passed to the layers.

    Returns:
      float32 logits [B, N].
    """
    specs.check_tensor(gripper_state, self._observation_spec['gripper_state'],
                       f'{self.name} gripper_state')
    specs.check_tensor(actions, self._action_spec, f'{self.name} actions [B, N, 8]',
                       batch_dims=2)
    if embedding.shape.rank != 4 or embedding.shape[-1] != self._embedding_channels:
      raise ValueError(f'{self.name}: embedding must be [B, h, w, {self._embedding_channels}] '
                       f'(from embed_image), got {embedding.shape}')
    batch_and_n = tf.shape(actions)[:2]  # [2] = (B, N)
    n = batch_and_n[1]
    gripper = tf.tile(gripper_state[:, None, :], tf.stack([1, n, 1]))  # [B, N, 2]
    parts = [gripper, actions]  # [B, N, 2], [B, N, 8]
    if self._num_keypoints:
      keypoints = embedding[:, 0, 0, self._feature_channels:]  # [B, 2K]
      parts.append(tf.tile(keypoints[:, None, :], tf.stack([1, n, 1])))  # [B, N, 2K]
      embedding = embedding[..., :self._feature_channels]  # [B, h, w, C]
    x = tf.concat(parts, axis=-1)  # [B, N, 10 (+ 2K)]
    for layer in self._state_action_fc:
      x = layer(x, training=training)  # [B, N, u] ... [B, N, C]
    compute_dtype = x.dtype
    emb = tf.cast(embedding, compute_dtype)[:, None]  # [B, 1, h, w, C]
    merged = emb + x[:, :, None, None, :]  # [B, N, h, w, C]
    hwc = [d if d is not None else tf.shape(embedding)[i + 1]
           for i, d in enumerate(embedding.shape[1:])]
    x = tf.reshape(merged, [-1] + hwc)  # [B * N, h, w, C]
    x = self._run_stack(self._head, x, training)  # [B * N, h_f, w_f, c_f]
    if not x.shape[1:].is_fully_defined():
      raise ValueError(f'{self.name}: the head needs a static spatial size; image spec '
                       f'{self._observation_spec["image"]}, got features {x.shape}')
    if self._head_pooling == 'global_max':
      x = tf.reduce_max(x, axis=[1, 2])  # [B * N, c_f]
    else:
      x = tf.reshape(x, [-1, x.shape[1:].num_elements()])  # [B * N, h_f * w_f * c_f]
    for layer in self._fc:
      x = layer(x, training=training)  # [B * N, u] ... [B * N, 1]
    return tf.reshape(tf.cast(x, tf.float32), batch_and_n)  # [B, N]

  def call(self, inputs, step_type=None, network_state=(), training=False):
    """(observation, action [B, 8]) -> (logits [B] float32, network_state)."""
    del step_type  # unused
    observation, action = inputs
    embedding = self.embed_image(observation['image'], training=training)  # [B, h, w, C]
    logits = self.logits_from_embedding(
        embedding, observation['gripper_state'], action[:, None, :], training=training)  # [B, 1]
    return logits[:, 0], network_state  # [B]

  def q_values(self, observation, action, training=False):
    """Q = sigmoid(logits): float32 probabilities [B] of grasp success."""
    logits, _ = self((observation, action), training=training)  # [B]
    return tf.sigmoid(logits)
