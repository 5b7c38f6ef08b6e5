"""Tests for rl_cyclegan/networks/q_network.py (QT-Opt grasping Q-function)."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan import specs
from rl_cyclegan.networks import layers
from rl_cyclegan.networks import q_network

SMALL = q_network.small_config()
DEFAULTS = dict(stem_filters=64, stem_kernel_size=6, stem_strides=2, stem_pool_size=3,
                tower_filters=(64,) * 6, tower_kernel_size=5, tower_pool_size=3,
                state_action_fc_units=(256,), merged_filters=(64,) * 6, merged_kernel_size=3,
                merged_pool_size=2, final_filters=(64,) * 3, final_kernel_size=3,
                fc_units=(64, 64))

# Spatial variant: 16x16 embedding with coordinate channels, spatial-softmax keypoints in
# the state-action branch, 1x1 head convs and a global max over cells.
SPATIAL = dict(SMALL, stem_pool_size=2, tower_pool_size=1, coord_channels=True,
               num_keypoints=4, merged_kernel_size=1, merged_pool_size=1, final_filters=(),
               head_pooling='global_max')


@pytest.fixture(scope='module')
def small_q():
  net = q_network.GraspingQNetwork(crop_size=(64, 64), **SMALL)
  net.create_variables()
  return net


def _inputs(batch, height=64, width=64, seed=0):
  rng = np.random.default_rng(seed)
  observation = {
      'image': tf.constant(rng.uniform(-1, 1, [batch, height, width, 3]), tf.float32),
      'gripper_state': tf.constant(rng.uniform(0, 1, [batch, 2]), tf.float32),
  }
  action = tf.constant(rng.uniform(-1, 1, [batch, 8]), tf.float32)
  return observation, action


def _num_params(variables):
  return sum(int(np.prod(v.shape)) for v in variables)


def expected_param_count(crop_size, cfg):
  """Parameter count from the architecture formula (all convs / FCs with bias)."""
  cfg = dict(DEFAULTS, **cfg)
  h, w = crop_size
  total = 0
  c_in = 3

  def conv(k, c_in, c_out):
    return k * k * c_in * c_out + c_out

  total += conv(cfg['stem_kernel_size'], c_in, cfg['stem_filters'])
  c_in = cfg['stem_filters']
  for f in cfg['tower_filters']:
    total += conv(cfg['tower_kernel_size'], c_in, f)
    c_in = f
  embedding_channels = c_in
  units_in = specs.GRIPPER_STATE_DIM + specs.ACTION_DIM
  for u in tuple(cfg['state_action_fc_units']) + (embedding_channels,):
    total += units_in * u + u
    units_in = u
  for f in cfg['merged_filters']:
    total += conv(cfg['merged_kernel_size'], c_in, f)
    c_in = f
  for f in cfg['final_filters']:
    total += conv(cfg['final_kernel_size'], c_in, f)
    c_in = f
  # Spatial size at the flatten: stride-s conv, then three 'same' max pools.
  strides = [cfg['stem_strides'], cfg['stem_pool_size'], cfg['tower_pool_size'],
             cfg['merged_pool_size']]
  units_in = layers.conv_output_size(h, strides) * layers.conv_output_size(w, strides) * c_in
  for u in tuple(cfg['fc_units']) + (1,):
    total += units_in * u + u
    units_in = u
  return total


@pytest.mark.parametrize('height,width', [(48, 48), (64, 64), (64, 80), (63, 63), (59, 59),
                                          (472, 472)])
def test_output_shapes(height, width):
  net = q_network.GraspingQNetwork(crop_size=(height, width), **SMALL)
  batch = 1 if height == 472 else 2
  observation, action = _inputs(batch, height, width)
  logits, state = net((observation, action))
  assert logits.shape == (batch,)
  assert logits.dtype == tf.float32
  assert state == ()
  assert _num_params(net.variables) == expected_param_count((height, width), SMALL)


def test_paper_default_variable_counts():
  for crop in [(64, 64), (472, 472)]:
    net = q_network.GraspingQNetwork(crop_size=crop)
    net.create_variables()
    assert _num_params(net.trainable_variables) == expected_param_count(crop, {})
  assert not net.non_trainable_variables  # no batch norm


def test_create_variables_and_copy(small_q):
  output_spec = small_q.create_variables()
  assert output_spec == tf.TensorSpec([], tf.float32)
  assert small_q.input_tensor_spec == (specs.model_observation_spec((64, 64)),
                                       specs.action_spec())
  target = small_q.copy(name='target_q')
  target.create_variables()
  assert target.name == 'target_q'
  assert len(target.variables) == len(small_q.variables)
  assert [v.shape for v in target.variables] == [v.shape for v in small_q.variables]
  assert not {id(v) for v in target.variables} & {id(v) for v in small_q.variables}
  observation, action = _inputs(3)
  assert not np.allclose(target((observation, action))[0], small_q((observation, action))[0])
  for t, s in zip(target.variables, small_q.variables):
    t.assign(s)
  np.testing.assert_allclose(target((observation, action))[0].numpy(),
                             small_q((observation, action))[0].numpy(), rtol=1e-6)
  # Constructor overrides go through copy() as well.
  wider = small_q.copy(name='wider', fc_units=(48,))
  wider.create_variables()
  assert _num_params(wider.variables) == expected_param_count((64, 64),
                                                              dict(SMALL, fc_units=(48,)))


def test_embedding_reuse_matches_call(small_q):
  observation, _ = _inputs(2)
  actions = tf.random.uniform([2, 5, 8], -1, 1, seed=5)  # [B, N, 8]
  embedding = small_q.embed_image(observation['image'])
  assert embedding.shape == (2, 4, 4, SMALL['tower_filters'][-1])  # 64 -> 32 -> 11 -> 4
  assert embedding.dtype == tf.float32
  logits = small_q.logits_from_embedding(embedding, observation['gripper_state'], actions)
  assert logits.shape == (2, 5)
  for n in range(5):
    per_action, _ = small_q((observation, actions[:, n]))  # [B]
    np.testing.assert_allclose(logits[:, n].numpy(), per_action.numpy(), rtol=1e-5, atol=1e-5)
  # The logits depend on the embedding passed in (it is used, not recomputed).
  zeroed = small_q.logits_from_embedding(tf.zeros_like(embedding),
                                         observation['gripper_state'], actions)
  assert not np.allclose(zeroed.numpy(), logits.numpy())
  # And on the action.
  assert np.std(logits.numpy(), axis=1).min() > 0.0


def test_cem_style_tf_function_unknown_batch_and_n(small_q):
  @tf.function(input_signature=[tf.TensorSpec([None, 64, 64, 3], tf.float32),
                                tf.TensorSpec([None, 2], tf.float32),
                                tf.TensorSpec([None, None, 8], tf.float32)])
  def score(image, gripper_state, actions):
    embedding = small_q.embed_image(image)  # [B, 4, 4, C], once per state
    return small_q.logits_from_embedding(embedding, gripper_state, actions)  # [B, N]

  observation, _ = _inputs(3)
  out = score(observation['image'], observation['gripper_state'], tf.zeros([3, 64, 8]))
  assert out.shape == (3, 64)
  out = score(observation['image'][:1], observation['gripper_state'][:1], tf.zeros([1, 7, 8]))
  assert out.shape == (1, 7)


def test_call_unknown_batch_and_training_gradients(small_q):
  observation_spec, action_spec = small_q.input_tensor_spec
  batched = tf.nest.map_structure(
      lambda s: tf.TensorSpec([None] + s.shape.as_list(), s.dtype), (observation_spec,
                                                                     action_spec))

  @tf.function(input_signature=[batched])
  def grads(inputs):
    with tf.GradientTape() as tape:
      logits, _ = small_q(inputs, training=True)
      loss = tf.reduce_mean(logits ** 2)
    return logits, tape.gradient(loss, small_q.trainable_variables)

  for batch in (1, 4):
    logits, gradients = grads(_inputs(batch))
    assert logits.shape == (batch,)
    assert all(g is not None for g in gradients)


def test_q_values_are_sigmoid_of_logits(small_q):
  observation, action = _inputs(3)
  q = small_q.q_values(observation, action)
  logits, _ = small_q((observation, action))
  assert q.shape == (3,)
  np.testing.assert_allclose(q.numpy(), 1.0 / (1.0 + np.exp(-logits.numpy())), rtol=1e-6)
  assert np.all((q.numpy() > 0) & (q.numpy() < 1))


def test_bad_inputs_name_the_spec(small_q):
  observation, action = _inputs(2)
  with pytest.raises(ValueError, match=r'action.*\[batch\] \+ \[8\].*TensorSpec'):
    small_q((observation, action[:, :7]))
  with pytest.raises(ValueError, match=r'image.*dtype float32.*TensorSpec.*got uint8'):
    small_q((dict(observation, image=tf.zeros([2, 64, 64, 3], tf.uint8)), action))
  with pytest.raises(ValueError, match=r'image.*\[64, 64, 3\].*TensorSpec'):
    small_q((dict(observation, image=tf.zeros([2, 48, 48, 3])), action))
  with pytest.raises(ValueError, match=r'gripper_state.*\[2\].*TensorSpec'):
    small_q((dict(observation, gripper_state=tf.zeros([2, 3])), action))
  with pytest.raises(ValueError, match='observation must be a dict'):
    small_q(({'image': observation['image']}, action))
  with pytest.raises(ValueError, match=r'actions \[B, N, 8\].*rank 3'):
    small_q.logits_from_embedding(small_q.embed_image(observation['image']),
                                  observation['gripper_state'], action)
  with pytest.raises(ValueError, match=r'image.*dtype float32'):
    small_q.embed_image(tf.zeros([2, 64, 64, 3], tf.uint8))


def test_bf16_policy_float32_outputs_close_to_float32(bf16_policy):
  del bf16_policy
  net16 = q_network.GraspingQNetwork(crop_size=(64, 64), **SMALL)
  net16.create_variables()
  assert all(v.dtype == tf.float32 for v in net16.variables)
  observation, action = _inputs(4)
  logits16, _ = tf.function(lambda i: net16(i, training=True))((observation, action))
  assert logits16.dtype == tf.float32
  embedding = net16.embed_image(observation['image'])
  assert embedding.dtype == tf.float32
  many = net16.logits_from_embedding(embedding, observation['gripper_state'],
                                     tf.stack([action, action], axis=1))
  assert many.dtype == tf.float32
  assert net16.q_values(observation, action).dtype == tf.float32
  tf.keras.mixed_precision.set_global_policy('float32')
  net32 = q_network.GraspingQNetwork(crop_size=(64, 64), **SMALL)
  net32.create_variables()
  for v32, v16 in zip(net32.variables, net16.variables):
    v32.assign(v16)
  logits32, _ = net32((observation, action))
  np.testing.assert_allclose(logits16.numpy(), logits32.numpy(), atol=0.05)


@pytest.mark.parametrize('normalization', [None, 'layer', 'batch'])
@pytest.mark.parametrize('cfg', [SMALL, SPATIAL], ids=['small', 'spatial'])
def test_overfits_one_batch(cfg, normalization):
  """A few Adam steps on fixed labels lower the cross-entropy (Q = sigmoid(logit))."""
  net = q_network.GraspingQNetwork(crop_size=(32, 32), normalization=normalization, **cfg)
  observation, action = _inputs(8, 32, 32, seed=7)
  labels = tf.constant([1., 0., 1., 1., 0., 0., 1., 0.])
  opt = tf.keras.optimizers.Adam(3e-3)
  net.create_variables()

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      logits, _ = net((observation, action), training=True)
      loss = tf.reduce_mean(
          tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
    grads = tape.gradient(loss, net.trainable_variables)
    opt.apply_gradients(zip(grads, net.trainable_variables))
    return loss

  first = float(step())
  for _ in range(60):
    last = float(step())
  assert last < 0.5 * first


def test_gin_binding_survives_copy():
  gin.parse_config(['GraspingQNetwork.fc_units = (16,)',
                    'GraspingQNetwork.stem_filters = 8'])
  net = q_network.GraspingQNetwork(crop_size=(32, 32), tower_filters=(8,),
                                   state_action_fc_units=(8,), merged_filters=(8,),
                                   final_filters=(8,))
  target = net.copy(name='target')
  cfg = dict(stem_filters=8, tower_filters=(8,), state_action_fc_units=(8,),
             merged_filters=(8,), final_filters=(8,), fc_units=(16,))
  for n in (net, target):
    n.create_variables()
    assert _num_params(n.variables) == expected_param_count((32, 32), cfg)


def test_spatial_softmax_locates_peaks():
  maps = np.full([2, 4, 6, 2], -30.0, np.float32)
  maps[0, 1, 4, 0] = 30.0  # row 1 of 4, column 4 of 6
  maps[1, 3, 0, 1] = 30.0
  maps[1, :, :, 0] = 0.0  # uniform -> the centre
  out = q_network._spatial_softmax(tf.constant(maps)).numpy()  # [B, 2K] = (x0, y0, x1, y1)
  x_of = lambda col, w: (col + 0.5) / w * 2 - 1
  np.testing.assert_allclose(out[0, :2], [x_of(4, 6), x_of(1, 4)], atol=1e-4)
  np.testing.assert_allclose(out[1, :2], [0.0, 0.0], atol=1e-5)
  np.testing.assert_allclose(out[1, 2:], [x_of(0, 6), x_of(3, 4)], atol=1e-4)


def test_coordinate_maps_span_the_grid():
  grid = q_network._coordinate_maps(3, 2, 4).numpy()  # [B, h, w, 2]
  assert grid.shape == (3, 2, 4, 2)
  np.testing.assert_allclose(grid[0, 0, :, 0], [-0.75, -0.25, 0.25, 0.75])  # x by column
  np.testing.assert_allclose(grid[0, :, 0, 1], [-0.5, 0.5])  # y by row


def test_spatial_variant_embedding_and_logits():
  net = q_network.GraspingQNetwork(crop_size=(64, 64), **SPATIAL)
  net.create_variables()
  observation, _ = _inputs(2)
  actions = tf.random.uniform([2, 5, 8], -1, 1, seed=3)
  embedding = net.embed_image(observation['image'])
  c, k = SMALL['tower_filters'][-1], SPATIAL['num_keypoints']
  assert embedding.shape == (2, 16, 16, c + 2 * k)  # 64 -> 32 -> 16, no tower pool
  keypoints = embedding[:, :, :, c:].numpy()
  assert np.all(np.abs(keypoints) <= 1.0)
  np.testing.assert_allclose(keypoints, np.broadcast_to(keypoints[:, :1, :1], keypoints.shape))
  logits = net.logits_from_embedding(embedding, observation['gripper_state'], actions)
  for n in range(5):
    per_action, _ = net((observation, actions[:, n]))
    np.testing.assert_allclose(logits[:, n].numpy(), per_action.numpy(), rtol=1e-5, atol=1e-5)
  # The keypoints reach the logits through the state-action branch.
  moved = tf.concat([embedding[..., :c], embedding[..., c:] * 0.0 + 0.9], -1)
  assert not np.allclose(
      net.logits_from_embedding(moved, observation['gripper_state'], actions).numpy(),
      logits.numpy())
  assert np.std(logits.numpy(), axis=1).min() > 0.0
  # A copy (target network) has the same variables.
  target = net.copy(name='target')
  target.create_variables()
  assert _num_params(target.variables) == _num_params(net.variables)


@pytest.mark.parametrize('kwargs,match', [(dict(head_pooling='mean'), 'head_pooling'),
                                          (dict(num_keypoints=-1), 'num_keypoints')])
def test_spatial_options_validated(kwargs, match):
  with pytest.raises(ValueError, match=match):
    q_network.GraspingQNetwork(crop_size=(64, 64), **dict(SMALL, **kwargs))


def _normalized_filters(cfg, normalize_head):
  """Sum of the widths of the convs that ``normalization`` follows (tower, and head)."""
  cfg = dict(DEFAULTS, **cfg)
  tower = cfg['stem_filters'] + sum(cfg['tower_filters'])
  tower += cfg['tower_filters'][-1] if cfg.get('coord_channels') else 0  # CoordConv projection
  return tower + (sum(cfg['merged_filters']) + sum(cfg['final_filters'])) * normalize_head


@pytest.mark.parametrize('normalize_head', [False, True], ids=['tower', 'all'])
@pytest.mark.parametrize('normalization', ['layer', 'batch'])
@pytest.mark.parametrize('cfg', [SMALL, SPATIAL], ids=['small', 'spatial'])
def test_normalized_network_variables_copy_and_embedding_reuse(cfg, normalization,
                                                               normalize_head):
  plain = q_network.GraspingQNetwork(crop_size=(64, 64), **cfg)
  net = q_network.GraspingQNetwork(crop_size=(64, 64), normalization=normalization,
                                   normalize_head=normalize_head, **cfg)
  for n in (plain, net):
    n.create_variables()
  assert plain.normalization is None and net.normalization == normalization
  filters = _normalized_filters(cfg, normalize_head)
  # Each normalized conv drops its bias (the norm's beta replaces it) and adds gamma and beta;
  # batch norm adds a moving mean and variance per channel, not trained.
  assert _num_params(net.trainable_variables) == _num_params(plain.trainable_variables) + filters
  moving = _num_params(net.variables) - _num_params(net.trainable_variables)
  assert moving == (2 * filters if normalization == 'batch' else 0)
  target = net.copy(name='target')
  target.create_variables()
  assert _num_params(target.variables) == _num_params(net.variables)
  observation, action = _inputs(3)
  embedding = net.embed_image(observation['image'])
  reused = net.logits_from_embedding(embedding, observation['gripper_state'], action[:, None])
  logits, _ = net((observation, action))
  np.testing.assert_allclose(reused[:, 0].numpy(), logits.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('normalization,ratio', [(None, 0.125), ('layer', 1.0)])
def test_layer_norm_keeps_the_tower_output_when_its_weights_shrink(normalization, ratio):
  """The collapse mode of docs/results.md ("Session 22"): without normalization the image
  tower's output follows its weights' scale (ReLU convs with zero biases at initialization are
  homogeneous: halving the 3 kernels of the small tower scales it by 1/8); normalized, it does
  not."""
  net = q_network.GraspingQNetwork(crop_size=(64, 64), normalization=normalization, **SMALL)
  net.create_variables()
  image = _inputs(4)[0]['image']
  before = net.embed_image(image).numpy()
  kernels = [layer.kernel for layer in net._tower if isinstance(layer, tf.keras.layers.Conv2D)]
  assert len(kernels) == 3
  for kernel in kernels:
    kernel.assign(kernel * 0.5)
  after = net.embed_image(image).numpy()
  np.testing.assert_allclose(np.linalg.norm(after) / np.linalg.norm(before), ratio, rtol=0.02)


def test_layer_norm_treats_each_image_alone_and_batch_norm_uses_the_batch():
  images = _inputs(4)[0]['image']
  layer_net = q_network.GraspingQNetwork(crop_size=(64, 64), normalization='layer', **SMALL)
  alone = layer_net.embed_image(images[:1], training=True).numpy()
  np.testing.assert_allclose(layer_net.embed_image(images, training=True)[:1].numpy(), alone,
                             rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(layer_net.embed_image(images[:1], training=False).numpy(), alone,
                             rtol=1e-4, atol=1e-5)  # training and inference: one function

  batch_net = q_network.GraspingQNetwork(crop_size=(64, 64), normalization='batch', **SMALL)
  batch_net.create_variables()
  moving_mean = batch_net.get_layer('stem_conv_norm').moving_mean
  assert np.all(moving_mean.numpy() == 0.0)
  alone = batch_net.embed_image(images[:1], training=True).numpy()
  in_batch = batch_net.embed_image(images, training=True)[:1].numpy()
  assert not np.allclose(alone, in_batch, atol=1e-3)  # batch statistics
  assert np.any(moving_mean.numpy() != 0.0)  # training calls update the moving statistics
  inference_alone = batch_net.embed_image(images[:1], training=False).numpy()
  np.testing.assert_allclose(batch_net.embed_image(images, training=False)[:1].numpy(),
                             inference_alone, rtol=1e-4, atol=1e-5)
  assert batch_net.embed_image(images, training=False).numpy().std() > 0.0


@pytest.mark.parametrize('kwargs,match', [
    (dict(normalization='group'), r"normalization must be one of \(None, 'layer', 'batch'\)"),
    (dict(normalization='batch', recompute_grad=True), 'recompute_grad')])
def test_normalization_validated(kwargs, match):
  with pytest.raises(ValueError, match=match):
    q_network.GraspingQNetwork(crop_size=(64, 64), **dict(SMALL, **kwargs))


def test_normalization_from_gin_survives_copy():
  gin.parse_config(["GraspingQNetwork.normalization = 'layer'"])
  net = q_network.GraspingQNetwork(crop_size=(32, 32), **SMALL)
  target = net.copy(name='target')
  assert net.normalization == target.normalization == 'layer'
  assert layers.constructor_config(net)['normalization'] == 'layer'
