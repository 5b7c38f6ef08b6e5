"""Tests of rl_cyclegan/evaluation/loss_direction.py: where each term of eq. 6 pushes G(x)."""

import numpy as np
import pytest
import tensorflow as tf

from rl_cyclegan import losses
from rl_cyclegan import specs
from rl_cyclegan.evaluation import loss_direction as ld
from rl_cyclegan.evaluation import rl_scene_pull as pull_lib
from rl_cyclegan.evaluation import scene_metrics as sm
from rl_cyclegan.learners import rl_cyclegan as learner_lib

import test_rl_cyclegan_learner  # noqa: E402  (tests/ is on sys.path under pytest)
import test_rl_scene_pull  # noqa: E402


def _paired(n=3, h=8, w=10, seed=0):
  rng = np.random.default_rng(seed)
  sim = rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)
  real = rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)
  objects = np.zeros((n, h, w), bool)
  objects[:, 2:4, 3:6] = True
  robot = np.zeros((n, h, w), bool)
  robot[:, 0:2, :] = True
  g_x = rng.uniform(-1, 1, size=(n, h, w, 3)).astype(np.float32)
  return sim, real, objects, robot, g_x, rng.uniform(0.1, 0.3, size=n)


_FakeQ = test_rl_scene_pull._FakeQ  # pylint: disable=protected-access


def test_regions_partition_the_image_and_objects_win_over_the_robot():
  _, _, objects, robot, _, _ = _paired()
  robot[:, 2, 3] = True  # a pixel in both masks counts as an object pixel
  masks = ld.region_masks(objects, robot)
  total = sum(m.astype(int) for m in masks.values())
  assert (total == 1).all()
  assert masks['objects'][:, 2, 3].all() and not masks['robot'][:, 2, 3].any()


def test_a_loss_toward_real_points_at_real_and_one_toward_sim_at_sim():
  sim, real, objects, robot, g_x, _ = _paired()
  y = specs.to_float_image(real)
  x = specs.to_float_image(sim)
  out = ld.loss_directions(
      lambda g: {'to_real': tf.reduce_sum(tf.square(g - y)),
                 'to_sim': 3.0 * tf.reduce_mean(tf.square(g - x))},
      g_x, sim, real, objects, robot)
  for region in ld.REGIONS:
    assert out[f'to_real/{region}/toward_real'] == pytest.approx(1.0, abs=1e-5)
    assert out[f'to_sim/{region}/toward_sim'] == pytest.approx(1.0, abs=1e-5)
    assert out[f'to_real/{region}/toward_sim'] < 0.9
  # The shares are each region's part of the squared gradient: here of |real - G(x)|^2.
  masks = ld.region_masks(objects, robot)
  diff = np.square(y.numpy() - g_x).sum(-1)
  for region, mask in masks.items():
    assert out[f'to_real/{region}/share'] == pytest.approx(diff[mask].sum() / diff.sum(),
                                                           rel=1e-4)
  assert sum(out[f'to_sim/{r}/share'] for r in ld.REGIONS) == pytest.approx(1.0)
  # The norm is the gradient's: 2 |G(x) - y| for the sum of squares.
  assert out['to_real/norm'] == pytest.approx(2 * np.sqrt(diff.sum()), rel=1e-4)
  # 'all' is the sum of the terms.
  assert set(k.split('/')[0] for k in out) == {'to_real', 'to_sim', 'all'}


def test_a_loss_on_the_objects_only_pushes_nowhere_else():
  sim, real, objects, robot, g_x, _ = _paired()
  mask = tf.constant(objects[..., None], tf.float32)
  out = ld.loss_directions(lambda g: {'obj': tf.reduce_sum(tf.square(g * mask))}, g_x, sim,
                           real, objects, robot)
  assert out['obj/objects/share'] == pytest.approx(1.0)
  assert out['obj/robot/share'] == 0.0 and out['obj/background/share'] == 0.0
  assert np.isnan(out['obj/background/toward_real'])
  # Toward zero: the cosine with real - G(x) is the cosine of -G(x) with it, by hand.
  y = specs.to_float_image(real).numpy()
  a, b = -g_x[objects].ravel(), (y - g_x)[objects].ravel()
  expected = np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b)
  assert out['obj/objects/toward_real'] == pytest.approx(expected, rel=1e-4)


def test_contrast_fields_are_the_first_order_change_of_the_regions_contrast():
  sim, real, objects, robot, g_x, _ = _paired(h=12, w=14)
  mask = tf.constant(objects[..., None], tf.float32)
  # 'louder' scales the object pixels away from 0 (~their surround's mean): objects louder.

  def terms(g):
    return {'louder': -0.5 * tf.reduce_sum(tf.square(g * mask)),
            'fit': 0.3 * tf.reduce_sum(tf.square(g - 0.2))}

  out = ld.loss_directions(terms, g_x, sim, real, objects, robot)
  assert out['louder/objects/contrast_change'] > 0
  assert out['louder/objects/toward_contrast'] > 0
  masks = ld.region_masks(objects, robot)

  def levels(g, region):  # the region's mean contrast in levels of 255, as contrast_excess's
    contrast, valid = sm.local_contrast((g + 1.0) * 127.5, masks[region], 3)
    return contrast[masks[region] & valid].mean()

  pushes = {'louder': np.where(objects[..., None], g_x, 0.0),
            'fit': -0.6 * (g_x - 0.2)}
  eps, g = 1e-5, g_x.astype(np.float64)
  for name, push in pushes.items():
    for region in ld.CONTRAST_REGIONS:
      numeric = (levels(g + eps * push, region) - levels(g - eps * push, region)) / (2 * eps)
      assert out[f'{name}/{region}/contrast_change'] == pytest.approx(numeric, rel=1e-4,
                                                                      abs=1e-6)
  for region in ld.CONTRAST_REGIONS:  # linear in the push: the terms add up to 'all'
    assert out[f'all/{region}/contrast_change'] == pytest.approx(
        out[f'louder/{region}/contrast_change'] + out[f'fit/{region}/contrast_change'],
        rel=1e-6)
  assert 'louder/background/contrast_change' not in out


def test_generator_terms_match_eq4_and_eq2_and_vanish_where_they_should():
  sim, real, objects, robot, _, height = _paired(seed=1)
  x = specs.to_float_image(sim)
  identity = lambda i: i  # pylint: disable=unnecessary-lambda-assignment
  q = _FakeQ(3.0)
  # One critic for both and F = identity: at G(x) = x every q of the sim triple is equal.
  terms = ld.generator_terms(sim, height, f=identity, q_sim=q, q_real=q, actions_per_state=4,
                             include=('cycle', 'rl_scene'))
  out = ld.loss_directions(terms, x, sim, real, objects, robot)
  assert out['rl_scene/norm'] == 0.0 and out['cycle/norm'] == 0.0
  assert 'gan_generator/norm' not in out  # no D_Y given
  # Away from x, the cycle half (F = identity) pushes straight back to the sim image.
  g = 0.5 * x + 0.2
  out = ld.loss_directions(terms, g, sim, real, objects, robot)
  for region in ld.REGIONS:
    assert out[f'cycle/{region}/toward_sim'] == pytest.approx(1.0, abs=1e-5)
  # The RL-scene term is lambda times the sim triple of rl_scene_pull at the same actions.
  g_fn = lambda i: 0.8 * i + 0.1  # pylint: disable=unnecessary-lambda-assignment
  f_fn = lambda i: 0.9 * i - 0.05  # pylint: disable=unnecessary-lambda-assignment
  q_sim, q_real = _FakeQ(3.0), _FakeQ(-1.0)
  terms = ld.generator_terms(sim, height, f=f_fn, q_sim=q_sim, q_real=q_real,
                             rl_scene_weight=7.0, cycle_weight=2.0, actions_per_state=6,
                             seed=3, include=('cycle', 'rl_scene'))
  values = terms(g_fn(x))
  pull = pull_lib.rl_scene_pull(q_sim, q_real, g_fn, f_fn, sim, real, height,
                                actions_per_state=6, seed=3)
  assert float(values['rl_scene']) == pytest.approx(7.0 * pull['own_sim'], rel=1e-5)
  assert float(values['cycle']) == pytest.approx(
      2.0 * np.mean(np.square(f_fn(g_fn(x)).numpy() - x.numpy())), rel=1e-5)


def test_the_gan_term_follows_d_y_and_its_weight():
  sim, real, objects, robot, g_x, height = _paired()
  d_y = lambda i: [tf.reduce_sum(i, axis=-1, keepdims=True)]  # pylint: disable=unnecessary-lambda-assignment
  gan = ('gan_generator',)
  one = ld.loss_directions(ld.generator_terms(sim, height, d_y=d_y, include=gan), g_x, sim,
                           real, objects, robot)
  two = ld.loss_directions(ld.generator_terms(sim, height, d_y=d_y, gan_weight=2.0,
                                              include=gan), g_x, sim, real, objects, robot)
  assert set(k.split('/')[0] for k in one) == {'gan_generator', 'all'}
  assert two['gan_generator/norm'] == pytest.approx(2 * one['gan_generator/norm'], rel=1e-5)
  # -log sigmoid(sum of channels) falls as every channel rises: the push is +1 on every
  # channel, scaled by 1 - sigmoid(logit) per pixel.
  logit = g_x.sum(-1)
  push = np.repeat((1 - 1 / (1 + np.exp(-logit)))[..., None], 3, -1) / logit.size
  y = specs.to_float_image(real).numpy()
  mask = objects
  expected = np.dot(push[mask].ravel(), (y - g_x)[mask].ravel()) / (
      np.linalg.norm(push[mask]) * np.linalg.norm((y - g_x)[mask]))
  assert one['gan_generator/objects/toward_real'] == pytest.approx(expected, rel=1e-4)


def test_mismatched_shapes_name_what_was_expected():
  sim, real, objects, robot, g_x, _ = _paired()
  with pytest.raises(ValueError, match='expected the same'):
    ld.loss_directions(lambda g: {'a': tf.reduce_sum(g)}, g_x[:2], sim, real, objects, robot)
  with pytest.raises(ValueError, match='objects mask'):
    ld.loss_directions(lambda g: {'a': tf.reduce_sum(g)}, g_x, sim, real, objects[:, :4],
                       robot[:, :4])


def test_colour_cosines_compare_region_mean_colours():
  sim, real, objects, robot, g_x, _ = _paired(n=4)
  y = specs.to_float_image(real).numpy()
  shift = tf.constant([0.3, -0.2, 0.1])  # a loss whose push is one colour everywhere
  out = ld.loss_directions(lambda g: {'tint': -tf.reduce_sum(g * shift)}, g_x, sim, real,
                           objects, robot)
  masks = ld.region_masks(objects, robot)
  for region, mask in masks.items():
    means = np.stack([(y - g_x)[i][mask[i]].mean(0) for i in range(4)]).ravel()
    push = np.tile([0.3, -0.2, 0.1], 4)
    expected = np.dot(push, means) / np.linalg.norm(push) / np.linalg.norm(means)
    assert out[f'tint/{region}/colour_toward_real'] == pytest.approx(expected, rel=1e-4)
    assert out[f'tint/{region}/colour_norm'] == pytest.approx(np.linalg.norm(push), rel=1e-5)
  # A loss toward the real render moves every region's colour toward it too.
  out = ld.loss_directions(lambda g: {'r': tf.reduce_sum(tf.square(g - y))}, g_x, sim, real,
                           objects, robot)
  for region in ld.REGIONS:
    assert out[f'r/{region}/colour_toward_real'] == pytest.approx(1.0, abs=1e-5)


def test_a_term_without_its_networks_is_an_error_that_names_them():
  sim, _, _, _, _, height = _paired()
  with pytest.raises(ValueError, match="'rl_scene' needs q_sim, q_real"):
    ld.generator_terms(sim, height, f=lambda i: i, include=('cycle', 'rl_scene'))
  with pytest.raises(ValueError, match="unknown term 'rl'"):
    ld.generator_terms(sim, height, include=('rl',))


@pytest.mark.parametrize('flags, expected', [
    ({}, {'gan_generator', 'cycle', 'rl_scene'}),
    ({'use_rl_scene': False}, {'gan_generator', 'cycle'}),  # CycleGAN
    ({'use_real2sim': False, 'use_cycle': False, 'use_rl_scene': False},
     {'gan_generator'}),  # the GAN ablation
])
def test_learner_terms_are_the_terms_the_learner_trains_g_with(flags, expected):
  learner = learner_lib.RLCycleGANLearner(crop_size=(16, 16), rl_scene_weight=3.0,
                                          gan_weight=0.5,
                                          **test_rl_cyclegan_learner.TINY_NETS, **flags)
  sim, real, objects, robot, _, height = _paired(h=16, w=16)
  x = specs.to_float_image(sim)
  g_x = learner.generator_g(x, training=False)
  values = ld.learner_terms(learner, sim, height)(g_x)
  assert set(values) == expected
  assert float(values['gan_generator']) == pytest.approx(
      0.5 * float(losses.gan_generator_loss(learner.discriminator_y(g_x, training=False))),
      rel=1e-5)
  if 'rl_scene' in expected:
    pull = pull_lib.rl_scene_pull(
        learner.critic_sim.network, learner.critic_real.network,
        lambda i: learner.generator_g(i, training=False),
        lambda i: learner.generator_f(i, training=False), sim, real, height)
    assert float(values['rl_scene']) == pytest.approx(3.0 * pull['own_sim'], rel=1e-4)
  out = ld.loss_directions(ld.learner_terms(learner, sim, height), g_x, sim, real, objects,
                           robot)
  assert {k.split('/')[0] for k in out} == expected | {'all'}
  assert ld.learner_preconditioners(learner) is None  # no step taken yet


@pytest.mark.usefixtures('eager_train_steps')
@pytest.mark.parametrize('per_loss', [False, True])
def test_learner_preconditioners_are_g_s_own_adam_for_each_term(per_loss):
  learner = learner_lib.RLCycleGANLearner(
      crop_size=(32, 32), generator_optimizer_per_loss=per_loss,
      **test_rl_cyclegan_learner.TINY_NETS)
  learner.train_step(test_rl_cyclegan_learner.make_batch(1),
                     test_rl_cyclegan_learner.make_batch(2))
  scales = ld.learner_preconditioners(learner)
  assert set(scales) == {'gan_generator', 'cycle', 'rl_scene'}
  name = learner.generator_g.name
  for term, values in scales.items():
    optimizer = learner.optimizers[f'{name}/{term}' if per_loss else name]
    expected = ld.adam_preconditioner(optimizer, learner.generator_g.trainable_variables)
    for a, b in zip(values, expected):
      np.testing.assert_array_equal(a.numpy(), b.numpy())
  # One Adam: every term the same scales; one per loss: each term its own.
  same = all(np.array_equal(a.numpy(), b.numpy())
             for a, b in zip(scales['gan_generator'], scales['rl_scene']))
  assert same != per_loss


def _linear_generator(seed=0):
  """A 1x1 conv G (3 -> 3 channels, with bias): G(x) is linear in its weights."""
  generator = tf.keras.Sequential([tf.keras.layers.Conv2D(3, 1, name='mix')], name='G_lin')
  generator.build([None, 8, 10, 3])
  rng = np.random.default_rng(seed)
  generator.set_weights([rng.normal(0, 0.5, (1, 1, 3, 3)).astype(np.float32),
                         rng.normal(0, 0.1, 3).astype(np.float32)])
  return generator


def test_step_directions_are_the_first_order_change_of_g_x_under_a_weight_step():
  sim, real, objects, robot, _, _ = _paired()
  x, y = specs.to_float_image(sim), specs.to_float_image(real)
  generator = _linear_generator()
  terms = lambda g: {'fit': 0.5 * tf.reduce_sum(tf.square(g - y)),  # pylint: disable=unnecessary-lambda-assignment
                     'shrink': 0.1 * tf.reduce_sum(tf.square(g))}
  out = ld.step_directions(generator, x, terms, sim, real, objects, robot)
  # By hand: a step of epsilon down the gradient of 'fit', (G' - G) / epsilon.
  before = generator(x).numpy()
  with tf.GradientTape() as tape:
    loss = terms(generator(x))['fit']
  grads = tape.gradient(loss, generator.trainable_variables)
  epsilon = 1e-3
  weights = [v.numpy() for v in generator.trainable_variables]
  generator.set_weights([w - epsilon * g.numpy() for w, g in zip(weights, grads)])
  change = (generator(x).numpy() - before) / epsilon
  generator.set_weights(weights)
  assert out['fit/norm'] == pytest.approx(np.linalg.norm(change), rel=1e-3)
  # -J J^T (G - y) has a non-negative inner product with y - G in the whole image.
  whole = ld.direction_stats({'c': change}, before, sim, real, objects, robot)
  assert whole['c/background/toward_real'] == pytest.approx(out['fit/background/toward_real'],
                                                           abs=1e-3)
  assert np.dot(change.ravel(), (y.numpy() - before).ravel()) > 0
  # Linear in the term: the changes add up to 'all'.
  assert out['all/norm'] <= out['fit/norm'] + out['shrink/norm'] + 1e-6
  # A preconditioner scales each weight's step: 2 everywhere doubles the change, 0 stops it.
  ones = [tf.ones_like(v) for v in generator.trainable_variables]
  twice = ld.step_directions(generator, x, terms, sim, real, objects, robot,
                             preconditioner=[2.0 * o for o in ones])
  assert twice['fit/norm'] == pytest.approx(2 * out['fit/norm'], rel=1e-5)
  still = ld.step_directions(generator, x, terms, sim, real, objects, robot,
                             preconditioner=[0.0 * o for o in ones])
  assert still['fit/norm'] == 0.0
  with pytest.raises(ValueError, match="1 preconditioner tensors for term 'fit', for the 2"):
    ld.step_directions(generator, x, terms, sim, real, objects, robot, preconditioner=ones[:1])
  # One preconditioner per term (one Adam per loss): each term's change scales with its own.
  per_term = ld.step_directions(generator, x, terms, sim, real, objects, robot,
                                preconditioner={'fit': ones, 'shrink': [3.0 * o for o in ones]})
  assert per_term['fit/norm'] == pytest.approx(out['fit/norm'], rel=1e-5)
  assert per_term['shrink/norm'] == pytest.approx(3 * out['shrink/norm'], rel=1e-5)
  with pytest.raises(ValueError, match=r"no preconditioner for terms \['shrink'\]"):
    ld.step_directions(generator, x, terms, sim, real, objects, robot,
                       preconditioner={'fit': ones})


def test_adam_preconditioner_is_adams_scaling_of_the_newest_gradient():
  variable = tf.Variable([1.0, -2.0, 3.0])
  adam = tf.keras.optimizers.Adam(learning_rate=1e-4, beta_1=0.1, beta_2=0.999)
  adam.build([variable])
  with pytest.raises(ValueError, match='has taken no step'):
    ld.adam_preconditioner(adam, [variable])
  gradient = tf.constant([0.5, -0.02, 4.0])
  adam.apply_gradients([(gradient, variable)])
  # After one step v_hat = g^2, so Adam scales a gradient by 1 / (|g| + epsilon).
  (p,) = ld.adam_preconditioner(adam, [variable])
  np.testing.assert_allclose(p.numpy(), 1 / (np.abs(gradient.numpy()) + adam.epsilon), rtol=1e-4)
  adam.apply_gradients([(2.0 * gradient, variable)])  # v_hat = (0.999 g^2 + 4 g^2) / (1 + 0.999)
  (p,) = ld.adam_preconditioner(adam, [variable])
  v_hat = (0.999 * 0.001 + 0.001 * 4.0) / (1 - 0.999 ** 2) * gradient.numpy() ** 2
  np.testing.assert_allclose(p.numpy(), 1 / (np.sqrt(v_hat) + adam.epsilon), rtol=1e-4)
