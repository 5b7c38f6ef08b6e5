"""Ad hoc (session 38): where each loss of eq. 6 pushes G's output, against where real(x) lies.

At real_gap 0.75 the RL-CycleGAN Gs leave the tray and floor further from the true real render
(MAE 12.4-14.6) than the CycleGAN Gs (8.7-9.5), and their final Qs lose ~14 points more from sim
to real (docs/results.md, "Session 37"). Which term of eq. 6 does that? For each joint run, at
each checkpoint it keeps, with its own D_Y, F, Q_sim and Q_real:
``rl_cyclegan.evaluation.loss_direction`` on the center crops of the held-out paired states
(sim render x, true real render y of the same states, object and robot masks): for each
weighted term that updates G (lambda_GAN L_GAN, lambda_cycle L_cycle's sim half,
lambda_RL-scene L_RL-scene's sim triple) and for their sum, the share of the pixel gradient in
each region and the cosine of its push with y - G(x) and with x - G(x); in two views, the
pixel gradient (``loss_direction``) and the change of G(x) under one step on G's weights
scaled by the run's own Adam (``weight_step``). One adversarial
snapshot is noisy (D_Y moves every step), so every checkpoint the run keeps is measured (the
table1 joint runs keep steps 8,000, 9,000 and 10,000).

A run that trains without L_RL-scene (CycleGAN, GraspGAN-style) still has critics: its
RL-scene term is measured at lambda 10 as ``rl_scene_off`` (what the term would do there) and
left out of 'all'. The GAN ablation has no F, so only its GAN term is measured. A run with one
Adam per Table 5 row (``RLCycleGANLearner.generator_optimizer_per_loss``, session 39) steps each
term with its own Adam: its ``adam_root_v_hat`` is L_GAN's own, and each term's is listed under
``adam_root_v_hat_per_term``.
Usage:
  python results/table1_real_gap0.75/diagnostics/loss_direction.py <paired_set.npz> \
      <joint_run_dir> [<joint_run_dir> ...]
Prints one JSON line per joint run and checkpoint (saved beside this script as
loss_direction.jsonl). The table of docs/results.md, "Session 38" (means over each run's
checkpoints):
  python results/table1_real_gap0.75/diagnostics/loss_direction.py --summarize \
      results/table1_real_gap0.75/diagnostics/loss_direction.jsonl
Since session 42 each line also holds each term's contrast fields (``loss_direction``:
``contrast_change``, ``toward_contrast`` for the objects and the robot): does a term draw them
louder? The summary adds their table for the lines that have them.
With ``--fresh_adam`` (session 42) each line also holds ``weight_step_fresh_adam``: the
change of G(x) under the first step of a fresh Adam (m_hat = g, v_hat = g^2: lr sign(g) per
weight), what a joint run resumed from its weights alone (``Checkpointing.weights_copy``)
takes first, against ``weight_step`` under the run's restored Adam (both to first order and
without beta_1's momentum, 0.1 here):
  python results/table1_real_gap0.75/diagnostics/loss_direction.py <paired_set.npz> \
      <joint_run_dir> --fresh_adam > <out.jsonl>
  python results/table1_real_gap0.75/diagnostics/loss_direction.py --summarize_restart <out.jsonl>
"""
import collections
import json
import os
import sys

import numpy as np
import tensorflow as tf

from rl_cyclegan import configurables  # noqa: F401  (registers the configurables)
from rl_cyclegan import checkpoints
from rl_cyclegan import run_dir
from rl_cyclegan.learners import critic as critic_lib
from rl_cyclegan.evaluation import loss_direction, paired_set
from rl_cyclegan.pipelines.generator_report import center_window

TABLE5_RL_SCENE_WEIGHT = 10.0


def _name(run_path):
  """'<work dir>/<row>/joint' -> '<row>'."""
  return os.path.basename(os.path.dirname(run_path.rstrip('/')))


def summarize(path):
  """Markdown tables from the JSON lines at ``path``, one per view (``loss_direction``: the
  pixel gradient; ``weight_step``: the change of G(x) under an Adam-scaled weight step): per
  run and term, the mean over the run's checkpoints of the push's norm, that norm over the
  norm of G's whole push ('all'), and on the background (tray, table, floor) the term's share
  of its push, the colour cosine with real(x) - G(x) and the colour push's norm."""
  runs = collections.OrderedDict()
  with open(path) as f:
    for line in f:
      record = json.loads(line)
      runs.setdefault(record['run'], []).append(record)  # a copy of a run: its own group
  for view in ('loss_direction', 'weight_step'):
    print(f'\n{view}:\n')
    print('| joint run (steps) | term | push norm | norm / G\'s whole push | '
          'on the background: share of the term | colour toward real | colour push |')
    print('|---|---|---|---|---|---|---|')
    for path, records in runs.items():
      run = _name(path)
      measured = [r[view] for r in records if view in r]
      if not measured:
        continue
      steps = sorted(int(r['checkpoint'].rsplit('-', 1)[1]) for r in records if view in r)
      mean = lambda key, measured=measured: float(np.mean([m[key] for m in measured]))
      terms = sorted({k.split('/')[0] for k in measured[0]}, key=lambda t: (t == 'all', t))
      for term in terms:
        relative = mean(f'{term}/norm') / mean('all/norm')
        print(f'| {run} ({", ".join(f"{s // 1000}k" for s in steps)}) | {term} | '
              f'{mean(f"{term}/norm"):.3g} | {relative:.2f} | '
              f'{mean(f"{term}/background/share"):.2f} | '
              f'{mean(f"{term}/background/colour_toward_real"):+.2f} | '
              f'{mean(f"{term}/background/colour_norm"):.2g} |')
    contrast = [(path, [r[view] for r in records if view in r]) for path, records in runs.items()]
    contrast = [(path, m) for path, m in contrast if m and 'all/objects/contrast_change' in m[0]]
    if contrast:  # since session 42
      print(f'\n{view}, how loudly G draws the objects and the robot (first-order change of '
            'their mean local contrast, levels of 255 per unit push; mean over checkpoints):\n')
      print('| joint run | term | objects: contrast change | cos with its gradient | '
            'robot: contrast change | cos with its gradient |')
      print('|---|---|---|---|---|---|')
      for path, measured in contrast:
        mean = lambda key, measured=measured: float(np.mean([m[key] for m in measured]))
        terms = sorted({k.split('/')[0] for k in measured[0]}, key=lambda t: (t == 'all', t))
        for term in terms:
          print(f'| {_name(path)} | {term} | '
                f'{mean(f"{term}/objects/contrast_change"):+.3g} | '
                f'{mean(f"{term}/objects/toward_contrast"):+.3f} | '
                f'{mean(f"{term}/robot/contrast_change"):+.3g} | '
                f'{mean(f"{term}/robot/toward_contrast"):+.3f} |')


  print('\nG\'s Adam: the root of its bias-corrected second moments, median over G\'s weights '
        '(the larger, the smaller every loss\'s step):\n')
  print('| joint run (steps) | root v_hat, median | L_GAN\'s weight step (norm of G(x)\'s change) |')
  print('|---|---|---|')
  for path, records in runs.items():
    run = _name(path)
    if 'adam_root_v_hat' in records[0]:
      steps = sorted(int(r['checkpoint'].rsplit('-', 1)[1]) for r in records)
      print(f'| {run} ({", ".join(f"{s // 1000}k" for s in steps)}) | '
            f'{np.mean([r["adam_root_v_hat"]["median"] for r in records]):.2g} | '
            f'{np.mean([r["weight_step"]["gan_generator/norm"] for r in records]):.3g} |')
  per_loss = [(p, r) for p, r in runs.items() if 'adam_root_v_hat_per_term' in r[0]]
  if per_loss:
    print('\nRuns with one Adam per loss: each term\'s own Adam, root v_hat (median):\n')
    print('| joint run | term | root v_hat, median | its weight step (norm of G(x)\'s change) |')
    print('|---|---|---|---|')
    for path, records in per_loss:
      for term in records[0]['adam_root_v_hat_per_term']:
        print(f'| {_name(path)} | {term} | '
              f'{np.mean([r["adam_root_v_hat_per_term"][term]["median"] for r in records]):.2g}'
              f' | {np.mean([r["weight_step"][f"{term}/norm"] for r in records]):.3g} |')


def main(argv):
  if argv[0] == '--summarize':
    summarize(argv[1])
    return
  if argv[0] == '--summarize_restart':
    summarize_restart(argv[1])
    return
  fresh_adam = '--fresh_adam' in argv
  pairs, *joint_runs = [a for a in argv if a != '--fresh_adam']
  data = paired_set.load_paired_set(pairs)
  for joint in joint_runs:
    spec = run_dir.read_run_spec(joint)
    for prefix in tf.train.get_checkpoint_state(
        run_dir.checkpoint_dir(joint)).all_model_checkpoint_paths:
      measure(data, pairs, joint, spec, prefix, fresh_adam)


def _fresh_adam_preconditioner(generator, x, terms_fn, epsilon, per_loss):
  """1 / (|g| + epsilon) per weight of G: the scaling of a fresh Adam's first step (bias
  corrected, m_hat = g and v_hat = g^2), g the gradient of the sum of the terms (one Adam on G)
  or, with one Adam per loss, each term's own."""
  variables = generator.trainable_variables
  with tf.GradientTape(persistent=True) as tape:
    terms = dict(terms_fn(generator(x, training=False)))
    total = tf.add_n(list(terms.values()))

  def scale(loss):
    return [1.0 / (tf.abs(g) + epsilon) if g is not None else tf.zeros_like(v)
            for v, g in zip(variables, tape.gradient(loss, variables))]

  out = {name: scale(term) for name, term in terms.items()} if per_loss else scale(total)
  del tape
  return out


def summarize_restart(path):
  """The ``--fresh_adam`` lines at ``path``: G(x)'s change under one step of the restored Adam
  against one of a fresh Adam (what a run resumed from its weights alone takes first)."""
  print('| joint run | checkpoint | change of G(x): restored Adam | fresh Adam | ratio | '
        'objects\' contrast change: restored / fresh | background toward real: restored / '
        'fresh |')
  print('|---|---|---|---|---|---|---|')
  with open(path) as f:
    for line in f:
      record = json.loads(line)
      if 'weight_step_fresh_adam' not in record:
        continue
      old, new = record['weight_step'], record['weight_step_fresh_adam']
      print(f"| {_name(record['run'])} | {record['checkpoint'].rsplit('-', 1)[1]} | "
            f"{old['all/norm']:.3g} | {new['all/norm']:.3g} | "
            f"{new['all/norm'] / old['all/norm']:.2f} | "
            f"{old['all/objects/contrast_change']:+.3g} / "
            f"{new['all/objects/contrast_change']:+.3g} | "
            f"{old['all/background/toward_real']:+.3f} / "
            f"{new['all/background/toward_real']:+.3f} |")


def measure(data, pairs, joint, spec, prefix, fresh_adam=False):
  """Prints the JSON line of one joint run's checkpoint ``prefix``."""
  gin = run_dir.parse_gin_bindings(os.path.join(joint, 'operative_config.gin'))
  flag = lambda name: bool(gin.get(f'RLCycleGANLearner.{name}', True))
  weight = lambda name: float(gin[f'RLCycleGANLearner.{name}'])
  keys = ['G_sim2real', 'D_Y_real', 'Q_sim', 'Q_real'] + (
      ['F_real2sim'] if 'F_real2sim' in spec.networks else [])
  nets = run_dir.restore_networks(spec, keys, prefix)
  rows, cols = center_window(*data['sim'].shape[1:3], spec.crop_size)
  crops = {k: np.asarray(data[k])[:, rows, cols] for k in
           ('sim', 'real', 'object_mask', 'robot_mask')}
  x = crops['sim'].astype(np.float32) / 127.5 - 1.0
  g_x = nets['G_sim2real'](x, training=False)
  f = nets.get('F_real2sim')
  on = {'gan_generator': flag('use_gan'), 'cycle': flag('use_cycle') and f is not None,
        'rl_scene': flag('use_rl_scene') and f is not None}

  def terms(include, rl_scene_weight):
    return loss_direction.generator_terms(
        crops['sim'], data['gripper_height'],
        d_y=lambda i: nets['D_Y_real'](i, training=False),
        f=None if f is None else (lambda i: f(i, training=False)),
        q_sim=nets['Q_sim'], q_real=nets['Q_real'], gan_weight=weight('gan_weight'),
        cycle_weight=weight('cycle_weight'), rl_scene_weight=rl_scene_weight,
        gan_loss_type=gin.get('RLCycleGANLearner.gan_loss_type', 'non_saturating'),
        include=include)

  def directions(terms_fn):
    return loss_direction.loss_directions(terms_fn, g_x, crops['sim'], crops['real'],
                                          crops['object_mask'], crops['robot_mask'])

  # G's own Adam, restored: its second moments scale each weight's step (weight_step view).
  # A run with one Adam per Table 5 row (generator_optimizer_per_loss) has one per term.
  per_loss = bool(gin.get('RLCycleGANLearner.generator_optimizer_per_loss', False))
  variables = nets['G_sim2real'].trainable_variables
  adams = {}
  for term in ([t for t, v in on.items() if v] if per_loss else [None]):
    suffix = '' if term is None else f'_{term}'
    adams[term] = critic_lib.build_optimizer(critic_lib.make_adam(
        weight('learning_rate'), weight('beta_1'), weight('beta_2'),
        name=f'G_sim2real_adam{suffix}'), variables)
    checkpoints.restore({f'G_sim2real_optimizer{suffix}': adams[term]}, prefix,
                        f'G\'s Adam{suffix}')
  preconditioners = {term: loss_direction.adam_preconditioner(adam, variables)
                     for term, adam in adams.items()}
  preconditioner = preconditioners[None] if None in preconditioners else preconditioners
  adam = next(iter(adams.values()))

  def steps(terms_fn):
    return loss_direction.step_directions(
        nets['G_sim2real'], x, terms_fn, crops['sim'], crops['real'], crops['object_mask'],
        crops['robot_mask'], preconditioner=preconditioner)

  trained = terms([t for t, v in on.items() if v], weight('rl_scene_weight'))
  measured = {'loss_direction': directions(trained), 'weight_step': steps(trained)}
  if fresh_adam:  # the first step of a restarted Adam: m_hat = g, v_hat = g^2
    measured['weight_step_fresh_adam'] = loss_direction.step_directions(
        nets['G_sim2real'], x, trained, crops['sim'], crops['real'], crops['object_mask'],
        crops['robot_mask'], preconditioner=_fresh_adam_preconditioner(
            nets['G_sim2real'], x, trained, adam.epsilon, per_loss))
  if not on['rl_scene'] and f is not None:  # what the unused term would do: not in 'all'
    off = terms(['rl_scene'], TABLE5_RL_SCENE_WEIGHT)
    for view, measure_fn in (('loss_direction', directions), ('weight_step', steps)):
      measured[view].update({k.replace('rl_scene/', 'rl_scene_off/'): v
                             for k, v in measure_fn(off).items() if k.startswith('rl_scene/')})
  def root_v_hat(term):
    root = np.concatenate([(1.0 / p.numpy() - adams[term].epsilon).ravel()
                           for p in preconditioners[term]])
    return {'median': float(np.median(root)), 'mean': float(np.mean(root))}

  per_term = {} if None in adams else {
      'adam_root_v_hat_per_term': {term: root_v_hat(term) for term in adams}}
  print(json.dumps({'run': joint, 'checkpoint': prefix, 'paired_set': pairs,
                    'states': len(crops['sim']), 'adam_iterations': int(adam.iterations),
                    # one Adam per loss: L_GAN's own (the figure comparable with CycleGAN's)
                    'adam_root_v_hat': root_v_hat(None if None in adams else 'gan_generator'),
                    **per_term, **measured}), flush=True)


if __name__ == '__main__':
  main(sys.argv[1:])
