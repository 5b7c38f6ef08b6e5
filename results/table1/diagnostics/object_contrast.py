"""Ad hoc (session 20; session 41: any table, the robot, excess over real): how visible are the
objects (and the robot) in sim, in the true real render and in G(x)?

On the held-out paired states: per-pixel local contrast (scene_metrics.local_contrast, the
measure behind object_preservation) of object pixels, the share of object pixels standing out
(> 20 levels), and per object (>= 3 visible pixels) the share with half its pixels standing
out. Since session 41 also, per image, the mean over object (robot) pixels of its contrast
minus the true real render's at the same pixel ("excess over real", in levels of 255), and the
same for the robot's pixels against their non-robot surround (scene_metrics.contrast_excess,
which generator reports carry since then). Usage:
  python results/table1/diagnostics/object_contrast.py <paired_set.npz> [--results_dir=DIR] \
      [<row> ...]
DIR: the table's results (default results/table1); each row's G is DIR/<row>/generator, or,
given as <row>@<subdir>, DIR/<row>/<subdir> (e.g. a running joint run's interim copy:
rl_cyclegan_long@joint_interim/train/weights; the run's config is then read from
DIR/<row>/joint, or joint_interim while it trains).
"""
import json
import os
import sys

import numpy as np

from rl_cyclegan.cli import generator_report as _cli  # noqa: F401  (registers configurables)
from rl_cyclegan import run_dir
from rl_cyclegan.data import translation
from rl_cyclegan.evaluation import paired_set, policy_eval, scene_metrics
from rl_cyclegan.pipelines import train_qtopt

THRESHOLD = 20.0


def visibility(images, objects, segmentation, robot, real=None):
  contrast, valid = scene_metrics.local_contrast(images.astype(np.float32), objects)
  pixels = objects & valid
  standing = (contrast > THRESHOLD) & pixels
  per_object = []
  for i in range(len(images)):
    for oid in np.unique(segmentation[i][objects[i]]):
      mask = (segmentation[i] == oid) & pixels[i]
      if mask.sum() >= 3:
        per_object.append(float(standing[i][mask].mean()))
  per_object = np.array(per_object)
  robot_contrast, robot_valid = scene_metrics.local_contrast(images.astype(np.float32), robot)
  out = {'median_object_contrast': float(np.median(contrast[pixels])),
         'object_pixels_standing_out': float(standing.sum() / pixels.sum()),
         'objects': int(len(per_object)),
         'objects_half_standing_out': float((per_object >= 0.5).mean()),
         'objects_not_standing_out': float((per_object == 0).mean()),
         'median_robot_contrast': float(np.median(robot_contrast[robot & robot_valid]))}
  if real is not None:  # paired, pixel by pixel, against the true real render
    out['object_contrast_excess_over_real'] = scene_metrics.contrast_excess(images, real, objects)
    out['robot_contrast_excess_over_real'] = scene_metrics.contrast_excess(images, real, robot)
  return out


args = sys.argv[1:]
results_dir = 'results/table1'
for a in [a for a in args if a.startswith('--results_dir=')]:
  results_dir = a.split('=', 1)[1]
  args.remove(a)
pairs, rows = args[0], args[1:]
data = paired_set.load_paired_set(pairs)
sim, real = np.asarray(data['sim']), np.asarray(data['real'])
objects = np.asarray(data['object_mask']).astype(bool)
robot = np.asarray(data['robot_mask']).astype(bool)
segmentation = np.asarray(data['segmentation'])
out = {'paired_set': pairs, 'results_dir': results_dir, 'threshold': THRESHOLD,
       'states': int(len(sim)), 'sim': visibility(sim, objects, segmentation, robot, real),
       'real': visibility(real, objects, segmentation, robot, real)}
for name in rows:
  row, _, subdir = name.partition('@')
  joint = next(d for d in (f'{results_dir}/{row}/joint', f'{results_dir}/{row}/joint_interim')
               if os.path.isdir(d))
  policy_eval.parse_run_config(joint)
  crop = tuple(run_dir.read_run_spec(joint).crop_size)
  g = train_qtopt.load_frozen_generator(f'{results_dir}/{row}/{subdir or "generator"}',
                                        'G_sim2real', crop)
  out[f'G(x) {name}'] = visibility(translation.FrameTranslator(g).translate(sim), objects,
                                  segmentation, robot, real)
print(json.dumps(out, indent=1))
