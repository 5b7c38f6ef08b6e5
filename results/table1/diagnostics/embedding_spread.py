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
  image = tf.constant(frames[:, rows, cols].astype(np.float32) / 127.5 - 1.0)
  channels = q.embed_image(image).numpy()[..., :q._feature_channels]  # [N, h, w, C]  pylint: disable=protected-access
  print(json.dumps({
      'run': run, 'checkpoint': loaded.checkpoint, 'paired_set': pairs, 'appearance': appearance,
      'spread': float(np.mean(channels.std(axis=0))), 'mean': float(channels.mean()),
      'dead_channels': float(np.mean(channels.max(axis=(0, 1, 2)) <= 0)),
      'shape': list(channels.shape)}), flush=True)
