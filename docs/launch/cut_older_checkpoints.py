"""Cuts older committed QT-Opt checkpoints (results/<name>/train/ckpt) to what a reader
evaluates and exports: the policy Q and the train step (``run_dir.write_policy_checkpoint``,
as the Table 1 rows are published since session 33). Run once from the repo, in session 34
(docs/results.md, "Session 34"):

  PYTHONPATH=. .venv/bin/python docs/launch/cut_older_checkpoints.py sim_only_b64 ...

For each run: the cut is written to a temporary directory, every kept variable is checked equal
to the source's, the committed checkpoint is replaced, and the run must still load with
``policy_eval.load_run_policy`` (an older run has no run_spec.json: its spec is inferred from
its operative config, which is parsed first). Not for results/sim_only_ratio2, whose whole
checkpoint the joint runs' critics start from (``train_rl_cyclegan.critic_init_checkpoint``).
"""
import os
import shutil
import sys
import tempfile

import gin
import numpy as np
import tensorflow as tf

from rl_cyclegan import run_dir
from rl_cyclegan.evaluation import policy_eval


def _size(ckpt_dir):
  return sum(os.path.getsize(os.path.join(ckpt_dir, f)) for f in os.listdir(ckpt_dir))


def cut(name):
  src = os.path.join('results', name)
  before = _size(os.path.join(src, 'train', 'ckpt'))
  tmp = tempfile.mkdtemp(prefix=f'cut_{name}_')
  gin.clear_config()
  policy_eval.parse_run_config(src)
  prefix = run_dir.write_policy_checkpoint(src, tmp)
  old = tf.train.load_checkpoint(run_dir.latest_checkpoint(run_dir.checkpoint_dir(src)))
  new = tf.train.load_checkpoint(prefix)
  kept = [n for n, _ in tf.train.list_variables(prefix) if not n.startswith('_CHECKPOINTABLE')]
  total = len(old.get_variable_to_shape_map()) - 1  # without the object graph
  for n in kept:
    if not np.array_equal(old.get_tensor(n), new.get_tensor(n)):
      raise ValueError(f'{src}: variable {n} differs in the cut checkpoint {prefix}')
  ckpt = os.path.join(src, 'train', 'ckpt')
  shutil.rmtree(ckpt)
  shutil.copytree(os.path.join(tmp, 'train', 'ckpt'), ckpt)
  shutil.rmtree(tmp)
  gin.clear_config()
  policy_eval.load_run_policy(src)
  print(f'{name}: {len(kept)} of {total} variables kept, equal; {before} -> {_size(ckpt)} '
        'bytes; loads', flush=True)


if __name__ == '__main__':
  for arg in sys.argv[1:]:
    cut(arg)
