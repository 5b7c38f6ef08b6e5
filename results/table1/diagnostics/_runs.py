"""Shared by the diagnostics scripts here: each checkpoint's Q-network and the center crops it
sees of the held-out paired states, from ``<run_dir> <paired_set.npz> sim|real
[<checkpoint prefix> ...]`` (default: the run's newest checkpoint)."""
import numpy as np
import tensorflow as tf

from rl_cyclegan import configurables  # noqa: F401  (registers the configurables)
from rl_cyclegan.evaluation import paired_set, policy_eval
from rl_cyclegan.pipelines.generator_report import center_window


def q_networks_on_paired_states(argv):
  """Yields (header dict for the output line, the restored Q-network, float32 crops [N, h, w, 3]
  in [-1, 1]) per checkpoint named in ``argv`` (sys.argv[1:])."""
  run, pairs, appearance, checkpoints = argv[0], argv[1], argv[2], argv[3:]
  frames = np.asarray(paired_set.load_paired_set(pairs)[appearance])
  for checkpoint in checkpoints or [None]:
    loaded = policy_eval.load_run_policy(run, render_size=frames.shape[1:3],
                                         checkpoint_path=checkpoint, seed=0)
    q = loaded.policy.q_network
    rows, cols = center_window(frames.shape[1], frames.shape[2], q.crop_size)
    image = tf.constant(frames[:, rows, cols].astype(np.float32) / 127.5 - 1.0)
    yield ({'run': run, 'checkpoint': loaded.checkpoint, 'paired_set': pairs,
            'appearance': appearance}, q, image)
