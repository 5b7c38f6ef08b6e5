"""Ad hoc (session 20): how visible are the objects in sim, in the true real render and in G(x)?

On the held-out paired states: per-pixel local contrast (scene_metrics.local_contrast, the
measure behind object_preservation) of object pixels, the share of object pixels standing out
(> 20 levels), and per object (>= 3 visible pixels) the share with half its pixels standing
out. Usage:
  python results/table1/diagnostics/object_contrast.py <paired_set.npz> [<row> ...]
"""
import json
import sys

import numpy as np

from rl_cyclegan.cli import generator_report as _cli  # noqa: F401  (registers configurables)
from rl_cyclegan import run_dir
from rl_cyclegan.data import translation
from rl_cyclegan.evaluation import paired_set, policy_eval, scene_metrics
from rl_cyclegan.pipelines import train_qtopt

THRESHOLD = 20.0


def visibility(images, objects, segmentation):
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
  return {'median_object_contrast': float(np.median(contrast[pixels])),
          'object_pixels_standing_out': float(standing.sum() / pixels.sum()),
          'objects': int(len(per_object)),
          'objects_half_standing_out': float((per_object >= 0.5).mean()),
          'objects_not_standing_out': float((per_object == 0).mean())}


pairs, rows = sys.argv[1], sys.argv[2:]
data = paired_set.load_paired_set(pairs)
sim, real = np.asarray(data['sim']), np.asarray(data['real'])
objects = np.asarray(data['object_mask']).astype(bool)
segmentation = np.asarray(data['segmentation'])
out = {'paired_set': pairs, 'threshold': THRESHOLD, 'states': int(len(sim)),
       'sim': visibility(sim, objects, segmentation),
       'real': visibility(real, objects, segmentation)}
for row in rows:
  policy_eval.parse_run_config(f'results/table1/{row}/joint')
  crop = tuple(run_dir.read_run_spec(f'results/table1/{row}/joint').crop_size)
  g = train_qtopt.load_frozen_generator(f'results/table1/{row}/generator', 'G_sim2real', crop)
  out[f'G(x) {row}'] = visibility(translation.FrameTranslator(g).translate(sim), objects,
                                  segmentation)
print(json.dumps(out, indent=1))
