"""Ad hoc (session 22): does a Q's greedy action depend on the image, checkpoint by checkpoint?

For each checkpoint of a train_qtopt run: the oracle-Q agreement measure of the generator
report (pipelines/generator_report.oracle_q_agreement) between each held-out state's render
and another state's render at the same gripper height (np.roll by one, as the report's
'other_state' chance row). A Q that reads the scene moves its greedy (dx, dy) when the scene
changes; a Q that ignores the image does not (the real_gap 1.0 oracle: 0.003 max steps).
Usage:
  python results/table1/diagnostics/image_dependence.py <run_dir> <paired_set.npz> sim|real \
      [<checkpoint prefix> ...]   (default: the run's newest checkpoint)
The paired set must be rendered in the run's world (tools/make_paired_set.py --gin_bindings).
Prints one JSON line per checkpoint.
"""
import json
import sys

import numpy as np

from rl_cyclegan import configurables  # noqa: F401  (registers the configurables)
from rl_cyclegan.evaluation import paired_set, policy_eval
from rl_cyclegan.pipelines import generator_report

run, pairs, appearance, checkpoints = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
data = paired_set.load_paired_set(pairs)
frames = np.asarray(data[appearance])
height = np.asarray(data['gripper_height'])
other = np.roll(np.arange(len(frames)), 1)
for checkpoint in checkpoints or [None]:
  loaded = policy_eval.load_run_policy(run, render_size=frames.shape[1:3],
                                       checkpoint_path=checkpoint, seed=0)
  out = generator_report.oracle_q_agreement(loaded.policy, frames[other], frames, height)
  print(json.dumps({'run': run, 'checkpoint': loaded.checkpoint, 'paired_set': pairs,
                    'appearance': appearance, **out}), flush=True)
