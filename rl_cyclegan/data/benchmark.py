"""Throughput of the transition input pipeline (``dataset.transition_dataset``).

Writes synthetic episodes (smooth images with sensor noise, PNG, 8 steps each) to a temporary
directory and measures steady-state transitions/s of training batches (random crops, shuffling,
float conversion) at the CPU size (64x64 crops of 64x80 renders) and the paper's size (472x472
crops of 512x640, Appendix A), against an assumed train-step consumption rate:

  CPU scale:   one batch of 8 real transitions per 0.26 s step (FACTS.md: a single 4-level
               U-Net step at 64x64, batch 8, is ~260 ms; the joint RL-CycleGAN step trains two
               generators, discriminators and Q-networks, so it is slower and eats less).
  paper scale: the same step scaled by the pixel count (472^2 / 64^2 ~ 54x slower on this CPU).
"""

import os
import shutil
import tempfile
import time

import numpy as np

from rl_cyclegan.data import dataset
from rl_cyclegan.data import episodes

CPU_CASE = ((64, 80), (64, 64))
PAPER_CASE = ((512, 640), (472, 472))
ASSUMED_STEP_SECONDS_64 = 0.26  # FACTS.md: U-Net step at 64x64, batch 8
ASSUMED_REAL_BATCH = 8  # paper Appendix A: 8 real + 8 simulated images per batch


def write_synthetic(directory, render_size, num_episodes, num_shards, num_steps=8, seed=0):
  """Writes ``num_episodes`` synthetic episodes into ``num_shards`` shards; returns bytes."""
  per_shard = int(np.ceil(num_episodes / num_shards))
  total = 0
  for shard in range(num_shards):
    path = os.path.join(directory, episodes.shard_name(shard, num_shards))
    with episodes.EpisodeWriter(path) as writer:
      for j in range(min(per_shard, num_episodes - shard * per_shard)):
        writer.write(episodes.synthetic_episode(num_steps, render_size,
                                                seed=seed + shard * per_shard + j))
    total += os.path.getsize(path)
  return total


def measure(file_pattern, crop_size, batch_size=8, seconds=5.0, warmup_batches=5,
            shuffle_buffer=dataset.DEFAULT_SHUFFLE_BUFFER, render_size=None):
  """Steady-state transitions/s of training batches (after ``warmup_batches``)."""
  ds = dataset.transition_dataset(file_pattern, crop_size=crop_size, batch_size=batch_size,
                                  training=True, shuffle_buffer=shuffle_buffer,
                                  expected_render_size=render_size)
  iterator = iter(ds)
  for _ in range(warmup_batches):
    next(iterator)
  start = time.perf_counter()
  batches = 0
  while time.perf_counter() - start < seconds:
    batch = next(iterator)
    batches += 1
  _ = batch.observation['image'].numpy()
  return batches * batch_size / (time.perf_counter() - start)


def run(seconds=5.0, batch_size=8, cases=(CPU_CASE, PAPER_CASE), print_fn=print):
  """Measures every (render_size, crop_size) case; returns a list of result dicts."""
  results = []
  for render_size, crop_size in cases:
    big = render_size[0] * render_size[1] > 100_000
    num_episodes, num_shards = (16, 4) if big else (200, 8)
    shuffle_buffer = 64 if big else dataset.DEFAULT_SHUFFLE_BUFFER  # 64 x 1.3 MB at 472
    directory = tempfile.mkdtemp(prefix='rl_cyclegan_bench_')
    try:
      start = time.perf_counter()
      size = write_synthetic(directory, render_size, num_episodes, num_shards)
      write_seconds = time.perf_counter() - start
      rate = measure(directory, crop_size, batch_size, seconds, shuffle_buffer=shuffle_buffer,
                     render_size=render_size)
    finally:
      shutil.rmtree(directory, ignore_errors=True)
    pixels = crop_size[0] * crop_size[1] / 64**2
    need = ASSUMED_REAL_BATCH / (ASSUMED_STEP_SECONDS_64 * pixels)
    result = dict(render_size=render_size, crop_size=crop_size, transitions_per_second=rate,
                  assumed_consumption=need, headroom=rate / need,
                  episodes=num_episodes, bytes_per_episode=size / num_episodes,
                  write_episodes_per_second=num_episodes / write_seconds,
                  shuffle_buffer=shuffle_buffer)
    results.append(result)
    print_fn(f'{render_size[0]}x{render_size[1]} -> {crop_size[0]}x{crop_size[1]} crops, '
             f'batch {batch_size}: {rate:8.1f} transitions/s; assumed train-step consumption '
             f'{need:6.2f} transitions/s -> {rate / need:7.1f}x headroom '
             f'(PNG {size / num_episodes / 1024:.0f} KiB/episode, writing '
             f'{num_episodes / write_seconds:.1f} episodes/s, shuffle buffer {shuffle_buffer})')
  return results
