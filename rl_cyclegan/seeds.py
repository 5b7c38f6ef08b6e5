"""Deterministic seeds derived from integers: every scene, episode and policy seed comes from here.

Streams of a training run (``derive_seed(seed, STREAM, index)``) are named in train/loop.py;
episode j of an evaluation uses ``derive_seed(seed, j)``; collection shard i uses
``derive_seed(seed, i)`` and its episode j ``derive_seed(shard_seed, j)``; Reverb actor
processes use the streams named in actors/reverb_actor.py (per actor id and incarnation).
"""

import numpy as np


def derive_seed(*entropy) -> int:
  """Deterministic 31-bit seed from integers (np.random.SeedSequence)."""
  return int(np.random.SeedSequence([int(e) for e in entropy]).generate_state(1)[0] & 0x7FFFFFFF)
