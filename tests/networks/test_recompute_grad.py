"""Gradient checkpointing (``recompute_grad``) of G / F, D and Q: the same outputs, gradients,
spectral-norm updates and optimizer steps as without it, and the backward pass really
recomputes the forward convolutions."""

import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan import specs
from rl_cyclegan.networks import discriminator
from rl_cyclegan.networks import generator
from rl_cyclegan.networks import q_network

IMAGE = [2, 15, 17, 3]  # odd sizes: the U-Net's crop_to_match runs inside a segment
SMALL_Q = dict(stem_filters=4, tower_filters=(4, 4), state_action_fc_units=(8,),
               merged_filters=(4,), final_filters=(4,), fc_units=(8,))


def _images():
  return tf.random.stateless_uniform(IMAGE, [1, 2], -1.0, 1.0)


def _generator(recompute):
  return generator.UNetGenerator(filters=(4, 8, 8), num_mask_classes=2,
                                 recompute_grad=recompute)


def _discriminator(recompute):
  return discriminator.MultiScaleDiscriminator(filters=(4, 8), num_scales=2,
                                               recompute_grad=recompute)


def _q(recompute):
  return q_network.GraspingQNetwork(crop_size=IMAGE[1:3], recompute_grad=recompute, **SMALL_Q)


def _g_loss(net):
  image, mask = net.call_with_mask(_images(), training=True)
  return tf.reduce_sum(image ** 2) + tf.reduce_sum(mask ** 2)


def _d_loss(net):
  return sum(tf.reduce_sum(tf.square(logits)) for logits in net(_images(), training=True))


def _q_inputs():
  observation = {'image': _images(), 'gripper_state': tf.constant([[0.0, 1.0], [1.0, 0.0]])}
  action = tf.random.stateless_uniform([2, specs.ACTION_DIM], [3, 4], -1.0, 1.0)
  return observation, action


def _q_loss(net):
  logits, _ = net(_q_inputs(), training=True)
  return tf.reduce_sum(logits ** 2)


CASES = {'generator': (_generator, _g_loss), 'discriminator': (_discriminator, _d_loss),
         'q_network': (_q, _q_loss)}


def _build(name, make, recompute):
  tf.keras.utils.set_random_seed(7)
  net = make(recompute)
  if name == 'q_network':
    net.create_variables()
  else:
    net.call_with_mask(_images()) if name == 'generator' else net(_images())
  return net


def _train(name, recompute, use_function, steps=2):
  """Two SGD steps; returns (losses, gradients of the last step, every variable after)."""
  make, loss_fn = CASES[name]
  net = _build(name, make, recompute)
  optimizer = tf.keras.optimizers.SGD(0.1)

  def step():
    with tf.GradientTape() as tape:
      loss = loss_fn(net)
    grads = tape.gradient(loss, net.trainable_variables)
    optimizer.apply_gradients(zip(grads, net.trainable_variables))
    return loss, grads

  if use_function:
    step = tf.function(step)
  losses = []
  for _ in range(steps):
    loss, grads = step()
    losses.append(float(loss))
  return losses, [g.numpy() for g in grads], [v.numpy() for v in net.variables]


@pytest.mark.parametrize('use_function', [False, True], ids=['eager', 'tf_function'])
@pytest.mark.parametrize('name', sorted(CASES))
def test_recompute_grad_changes_nothing_but_memory(name, use_function):
  plain = _train(name, False, use_function)
  recomputed = _train(name, True, use_function)
  np.testing.assert_allclose(recomputed[0], plain[0], rtol=1e-6)
  for a, b in zip(recomputed[1] + recomputed[2], plain[1] + plain[2]):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)  # incl. the spectral-norm u


def _forward_convs_in_gradient_graph(name, recompute):
  make, loss_fn = CASES[name]
  net = _build(name, make, recompute)

  @tf.function
  def grads():
    with tf.GradientTape() as tape:
      loss = loss_fn(net)
    return tape.gradient(loss, net.trainable_variables)

  graph = grads.get_concrete_function().graph.as_graph_def()
  nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
  return sum(n.op == 'Conv2D' for n in nodes)


@pytest.mark.parametrize('name', sorted(CASES))
def test_recompute_grad_runs_the_forward_convolutions_again_in_the_backward_pass(name):
  assert (_forward_convs_in_gradient_graph(name, True) >
          _forward_convs_in_gradient_graph(name, False))


def test_inference_and_first_call_are_unchanged():
  """Inference calls take the plain path; the first (building) call too."""
  outputs = {}
  for recompute in (False, True):
    tf.keras.utils.set_random_seed(3)
    net = _generator(recompute)
    first = net(_images(), training=True)  # builds: no kernels to normalize yet
    outputs[recompute] = first, net(_images())
  for a, b in zip(outputs[True], outputs[False]):
    np.testing.assert_allclose(a, b, rtol=1e-6)
