"""Ad hoc (session 23): where in the image tower does a Q-network's collapse happen?

For each checkpoint of a train_qtopt run, layer by layer through ``GraspingQNetwork``'s image
tower on the center crops of the held-out paired states: the share of channels that are zero
on every state and cell ('dead'), the mean over cells and channels of the standard deviation
across states ('spread'), the mean absolute activation ('scale'), their ratio spread / scale
('relative spread', comparable across layers and architectures), and each conv's kernel norm;
last, the embedding the head sees ('embedding': after the spatial network's CoordConv
projection). In a normalized tower a conv's own row is before its norm and ReLU: read the
'_relu' rows for dead channels.
Usage:
  python results/table1/diagnostics/layer_stats.py <run_dir> <paired_set.npz> sim|real \
      [<checkpoint prefix> ...]   (default: the run's newest checkpoint)
Prints one JSON line per checkpoint.
"""
import json
import sys

import numpy as np
import tensorflow as tf

from rl_cyclegan import configurables  # noqa: F401  (registers the configurables)
from rl_cyclegan.evaluation import paired_set, policy_eval
from rl_cyclegan.pipelines.generator_report import center_window

run, pairs, appearance, checkpoints = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
frames = np.asarray(paired_set.load_paired_set(pairs)[appearance])
for checkpoint in checkpoints or [None]:
  loaded = policy_eval.load_run_policy(run, render_size=frames.shape[1:3],
                                       checkpoint_path=checkpoint, seed=0)
  q = loaded.policy.q_network
  rows, cols = center_window(frames.shape[1], frames.shape[2], q.crop_size)
  x = tf.constant(frames[:, rows, cols].astype(np.float32) / 127.5 - 1.0)
  layers = []
  for layer in q._tower:  # pylint: disable=protected-access
    x = layer(x, training=False)
    if isinstance(layer, tf.keras.layers.MaxPool2D):
      continue
    a = x.numpy()  # [N, h, w, c]
    scale = float(np.mean(np.abs(a)))
    spread = float(np.mean(a.std(axis=0)))
    entry = {'layer': layer.name, 'dead': float(np.mean(a.max(axis=(0, 1, 2)) <= 0)),
             'spread': spread, 'scale': scale,
             'relative_spread': spread / scale if scale > 0 else 0.0}
    if isinstance(layer, tf.keras.layers.Conv2D):
      entry['kernel_norm'] = float(tf.norm(layer.kernel))
    layers.append(entry)
  # The embedding the head sees (after the CoordConv projection of the spatial network).
  a = q.embed_image(tf.constant(frames[:, rows, cols].astype(np.float32) / 127.5 - 1.0)
                    ).numpy()[..., :q.feature_channels]
  scale, spread = float(np.mean(np.abs(a))), float(np.mean(a.std(axis=0)))
  layers.append({'layer': 'embedding', 'dead': float(np.mean(a.max(axis=(0, 1, 2)) <= 0)),
                 'spread': spread, 'scale': scale,
                 'relative_spread': spread / scale if scale > 0 else 0.0})
  print(json.dumps({'run': run, 'checkpoint': loaded.checkpoint, 'paired_set': pairs,
                    'appearance': appearance, 'layers': layers}), flush=True)
