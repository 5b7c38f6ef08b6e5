"""Ad hoc (session 39): what the composite worlds of composite_worlds.py look like.

For 3 held-out paired states (test objects) and each G listed: the true real render | the
real render with the background (tray, table, floor) from G(sim) | the real render with the
objects and robot from G(sim) | G(sim) | the sim render; masks from the simulator's
segmentation, objects' and robot's grown by 2 pixels, as in composite_worlds.py.
Usage: PYTHONPATH=. python results/table1_real_gap0.75/diagnostics/composite_figure.py \
    ../runs/table1_gap075/data/paired_full.npz docs/table1_real_gap0.75_composites.png
"""
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

from rl_cyclegan import plotting
from rl_cyclegan.data import translation
from rl_cyclegan.envs import sim2real
from rl_cyclegan.evaluation import paired_set, summaries
from rl_cyclegan.pipelines import train_qtopt

TABLE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATORS = (('CycleGAN s1', 'cyclegan_seed1'), ('RL-CycleGAN s0', 'rl_cyclegan_seed0'),
              ('lambda_RL-scene 1, s1', 'rl_cyclegan_rlscene1_seed1'))
STATES = (0, 1, 2)
DILATION = 2
COLUMNS = ('real', 'background from G', 'objects, robot from G', 'G(sim)', 'sim')
SCALE = 2


def main(paired_path, out):
  data = paired_set.load_paired_set(paired_path)
  sim, real = np.asarray(data['sim'])[list(STATES)], np.asarray(data['real'])[list(STATES)]
  fg = [sim2real.dilate(np.asarray(data['object_mask'])[s] | np.asarray(data['robot_mask'])[s],
                        DILATION)[..., None] for s in STATES]
  blocks = []
  for label, row in GENERATORS:
    # The final Q's run holds its frozen G and the spec that builds it.
    g = train_qtopt.load_frozen_generator(os.path.join(TABLE, row, 'final_q'))
    g_sim = translation.FrameTranslator(g).translate(sim)
    columns = [real, np.where(fg, real, g_sim), np.where(fg, g_sim, real), g_sim, sim]
    grid = summaries.image_grid([np.asarray(c) for c in columns])
    blocks.append((label, grid))
  width = blocks[0][1].shape[1] * SCALE
  font = plotting._font(12)  # pylint: disable=protected-access
  header, label_h = 18, 18
  height = header + sum(label_h + b.shape[0] * SCALE + 6 for _, b in blocks)
  canvas = Image.new('RGB', (width, height), 'white')
  draw = ImageDraw.Draw(canvas)
  cell = width // len(COLUMNS)
  for j, name in enumerate(COLUMNS):
    draw.text((j * cell + 4, 2), name, fill='black', font=font)
  top = header
  for label, grid in blocks:
    draw.text((4, top + 2), f'G: {label}', fill='black', font=font)
    top += label_h
    image = Image.fromarray(grid).resize((grid.shape[1] * SCALE, grid.shape[0] * SCALE),
                                         Image.NEAREST)
    canvas.paste(image, (0, top))
    top += image.height + 6
  canvas.quantize(colors=256).save(out, optimize=True)  # a palette PNG: small in the repo
  print(out)


if __name__ == '__main__':
  main(*sys.argv[1:3])
