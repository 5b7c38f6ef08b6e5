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

from _runs import q_networks_on_paired_states



def stats(name, a):
  """The measures of one layer's output a [N, h, w, c] over the N states."""
  scale, spread = float(np.mean(np.abs(a))), float(np.mean(a.std(axis=0)))
  return {'layer': name, 'dead': float(np.mean(a.max(axis=(0, 1, 2)) <= 0)), 'spread': spread,
          'scale': scale, 'relative_spread': spread / scale if scale > 0 else 0.0}


for header, q, image in q_networks_on_paired_states(sys.argv[1:]):
  x = image
  layers = []
  for layer in q._tower:  # pylint: disable=protected-access
    x = layer(x, training=False)
    if isinstance(layer, tf.keras.layers.MaxPool2D):
      continue
    entry = stats(layer.name, x.numpy())
    if isinstance(layer, tf.keras.layers.Conv2D):
      entry['kernel_norm'] = float(tf.norm(layer.kernel))
    layers.append(entry)
  # The embedding the head sees (after the CoordConv projection of the spatial network).
  layers.append(stats('embedding', q.embed_image(image).numpy()[..., :q.feature_channels]))
  print(json.dumps({**header, 'layers': layers}), flush=True)
