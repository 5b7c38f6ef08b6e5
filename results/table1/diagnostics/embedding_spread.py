"""Ad hoc (session 22): does a Q's image tower still tell states apart, checkpoint by checkpoint?

For each checkpoint of a train_qtopt run, the image embedding (``GraspingQNetwork.embed_image``,
the tower's output before the merge, its C conv channels) of the center crops of the held-out
paired states: the mean over cells and channels of its standard deviation across the states
('spread': near 0 when the tower outputs the same features for every image), its mean, and the
share of channels that are zero on every state and cell ('dead'). Usage:
  python results/table1/diagnostics/embedding_spread.py <run_dir> <paired_set.npz> sim|real \
      [<checkpoint prefix> ...]   (default: the run's newest checkpoint)
The paired set must be rendered in the run's world. Prints one JSON line per checkpoint.
"""
import json
import sys

import numpy as np

from _runs import q_networks_on_paired_states

for header, q, image in q_networks_on_paired_states(sys.argv[1:]):
  channels = q.embed_image(image).numpy()[..., :q.feature_channels]  # [N, h, w, C]
  print(json.dumps({
      **header,
      'spread': float(np.mean(channels.std(axis=0))), 'mean': float(channels.mean()),
      'dead_channels': float(np.mean(channels.max(axis=(0, 1, 2)) <= 0)),
      'shape': list(channels.shape)}), flush=True)
