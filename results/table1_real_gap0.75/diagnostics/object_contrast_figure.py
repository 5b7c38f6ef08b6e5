"""Ad hoc (session 42): how loudly each G draws the objects along its joint training.

Reads the object_contrast.py outputs beside this script (the published Gs at 10,000 steps, the
long lever's G at 10,000, 14,000 and 20,000, and the Gs of the full joint checkpoints found in
git history at 1,000-7,000 steps) and draws each G's object contrast over the true real render
(levels of 255, 64 held-out paired states) against its joint train step. Usage:
  python results/table1_real_gap0.75/diagnostics/object_contrast_figure.py \
      docs/table1_real_gap0.75_object_contrast.png
"""
import json
import os
import sys

from rl_cyclegan import plotting

HERE = os.path.dirname(os.path.abspath(__file__))
# (series label, [(file beside this script, key without 'G(x) ', joint step)]).
SERIES = (
    ('RL-CycleGAN s0', [('object_contrast_git_checkpoints.json',
                         'rl_cyclegan_seed0_step1000@joint/train/ckpt', 1000),
                        ('object_contrast_git_checkpoints.json',
                         'rl_cyclegan_seed0_step4000@joint/train/ckpt', 4000),
                        ('object_contrast.json', 'rl_cyclegan_seed0', 10000)]),
    ('RL-CycleGAN, joint training twice as long (own run, seed 0)', [
        ('object_contrast_long_step10000.json', 'rl_cyclegan_long@joint_interim/train/weights',
         10000),
        ('object_contrast_long_step14000.json', 'rl_cyclegan_long@joint_interim/train/weights',
         14000),
        ('object_contrast_long.json', 'rl_cyclegan_long', 20000)]),
    ('RL-CycleGAN, lambda_RL-scene 1 (s0)', [
        ('object_contrast_git_checkpoints.json',
         'rl_cyclegan_rlscene1_step4000@joint/train/ckpt', 4000),
        ('object_contrast.json', 'rl_cyclegan_rlscene1_seed0', 10000)]),
    ("RL-CycleGAN, critics' start", [
        ('object_contrast_git_checkpoints.json',
         'rl_cyclegan_real_critic_step4000@joint/train/ckpt', 4000),
        ('object_contrast.json', 'rl_cyclegan_real_critic', 10000)]),
    ('CycleGAN s0', [('object_contrast_git_checkpoints.json',
                      'cyclegan_seed0_step1000@joint/train/ckpt', 1000),
                     ('object_contrast_git_checkpoints.json',
                      'cyclegan_seed0_step4000@joint/train/ckpt', 4000),
                     ('object_contrast.json', 'cyclegan_seed0', 10000)]),
    ('GAN', [('object_contrast_git_checkpoints.json', 'gan_step7000@joint/train/ckpt', 7000),
             ('object_contrast.json', 'gan', 10000)]),
)


def main(out):
  cache = {}

  def excess(name, key):
    if name not in cache:
      with open(os.path.join(HERE, name)) as f:
        cache[name] = json.load(f)
    try:
      return cache[name][f'G(x) {key}']['object_contrast_excess_over_real']
    except KeyError as e:
      raise KeyError(f'{name}: no G(x) {key!r} (run object_contrast.py for it)') from e

  series = [(label, [(step, excess(name, key), excess(name, key), excess(name, key))
                     for name, key, step in points]) for label, points in SERIES]
  plotting.line_chart(
      series, out, title='object contrast over the true real render, 64 held-out paired states '
      '(levels of 255; sim itself: +66.6)', x_label='joint train step',
      y_label='levels', y_range=(-10.0, 30.0), x_range=(0.0, 21000.0),
      hlines=[('the real render (0)', 0.0)], size=(900, 440), side_by_side=False,
      x_ticks=[(x, f'{x:,}') for x in range(0, 20001, 5000)])
  print(out)


if __name__ == '__main__':
  main(sys.argv[1])
