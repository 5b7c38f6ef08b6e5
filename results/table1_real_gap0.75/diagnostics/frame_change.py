"""Ad hoc (session 27; python results/table1_real_gap0.75/diagnostics/frame_change.py, output
frame_change.txt beside it): does G change more between consecutive frames of an episode than the
sim render does? Frame-to-frame mean |I_t - I_{t+1}| (uint8 levels) over the first episodes
of the sim log and of each row's translated copy (the same episodes through its G)."""
import numpy as np
from rl_cyclegan.data import episodes as ep

SHARDS = 3
def temporal(path):
  diffs, stills = [], []
  for e in ep.read_episodes(path):
    frames = np.asarray(e.images, np.float32)
    d = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    diffs.append(d)
  return np.concatenate(diffs)

base = '/work/runs/table1_gap075'
for name, d in [('sim', f'{base}/data/sim_mix18'),
                ('CycleGAN G', f'{base}/cyclegan_seed0/final_q/translated_sim_log'),
                ('RL-CycleGAN G', f'{base}/rl_cyclegan_seed0/final_q/translated_sim_log')]:
  vals = np.concatenate([temporal(f'{d}/episodes-{i:05d}-of-00180.tfrecord') for i in range(SHARDS)])
  print(f'{name}: mean frame-to-frame change {vals.mean():.2f} levels (median {np.median(vals):.2f}, n={len(vals)})')
