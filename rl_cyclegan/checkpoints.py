"""Restoring networks from a checkpoint written by another run (warm starts, frozen G).

``restore(objects, path, what)`` takes a checkpoint prefix or a directory with a "checkpoint"
index (the newest checkpoint is used), restores ``{key: trackable}`` from it and fails with an
error naming the file, the keys and what was expected.
"""

from typing import Mapping

import tensorflow as tf


def resolve(path: str) -> str:
  """The checkpoint prefix at ``path`` (itself, or the newest in a directory), or ''."""
  prefix = tf.train.latest_checkpoint(path) if tf.io.gfile.isdir(path) else path
  return prefix if prefix and tf.io.gfile.exists(prefix + '.index') else ''


def restore(objects: Mapping[str, tf.Module], path: str, what: str) -> str:
  """Restores ``objects`` (checkpoint key -> built network) from ``path``; returns the prefix.

  Other objects in the checkpoint (optimizers, targets, counters) are ignored. Raises
  FileNotFoundError when there is no checkpoint at ``path``, and ValueError naming the file
  when it holds no compatible objects under those keys (e.g. other network widths).
  """
  keys = ', '.join(repr(k) for k in objects)
  prefix = resolve(path)
  if not prefix:
    raise FileNotFoundError(
        f'{what}: no checkpoint at {path!r} (expected a tf.train.Checkpoint prefix or a '
        f'directory with a "checkpoint" index file, holding {keys})')
  try:
    status = tf.train.Checkpoint(**objects).restore(prefix)
    status.expect_partial()
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise ValueError(f'{what}: checkpoint {prefix!r} has nothing compatible under {keys} with '
                     f'the networks built from gin: {type(e).__name__}: {str(e)[:1500]}') from e
  return prefix
