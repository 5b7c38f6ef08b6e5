"""Restoring networks from a checkpoint written by another run (warm starts, frozen G, export).

``restore(objects, path, what)`` takes a checkpoint prefix or a directory with a "checkpoint"
index (the newest checkpoint is used), restores ``{key: trackable}`` from it and fails with an
error naming the file, the keys and what was expected. With ``exact=True`` the variables under
each key must match the built network both ways (``check_matches``).
"""

import os
import tempfile
from typing import Mapping

import tensorflow as tf


def resolve(path: str) -> str:
  """The checkpoint prefix at ``path`` (itself, or the newest in a directory), or ''."""
  prefix = tf.train.latest_checkpoint(path) if tf.io.gfile.isdir(path) else path
  return prefix if prefix and tf.io.gfile.exists(prefix + '.index') else ''


def _checkpoint_shapes(checkpoint_path, key):
  """{variable path under key/: shape} of a checkpoint, optimizer slots left out."""
  prefix = key.rstrip('/') + '/'
  return {name[len(prefix):]: tuple(shape)
          for name, shape in tf.train.list_variables(checkpoint_path)
          if name.startswith(prefix) and '.OPTIMIZER_SLOT' not in name
          and '.ATTRIBUTES/VARIABLE_VALUE' in name}


def _object_shapes(obj, key):
  """{variable path: shape} as ``tf.train.Checkpoint(**{key: obj})`` would save it."""
  with tempfile.TemporaryDirectory() as tmp:
    path = tf.train.Checkpoint(**{key: obj}).write(os.path.join(tmp, 'probe'))
    return _checkpoint_shapes(path, key)


def check_matches(obj, key, checkpoint_path, what, config=None):
  """Raises ValueError unless the checkpoint's variables under ``key`` match ``obj`` exactly.

  ``assert_existing_objects_matched`` misses a checkpoint with *more* layers than the built
  network (e.g. a 4-level G restored into a 3-level one restores its first levels and ignores
  the rest); this compares the full variable lists and shapes both ways. ``config`` names
  where the built network's settings came from, for the message.
  """
  stored = _checkpoint_shapes(checkpoint_path, key)
  if not stored:
    keys = sorted({n.split('/')[0] for n, _ in tf.train.list_variables(checkpoint_path)})
    raise ValueError(f'checkpoint {checkpoint_path!r} holds no {what} under key {key!r}; keys '
                     f'there: {keys}')
  built = _object_shapes(obj, key)
  missing = sorted(set(built) - set(stored))
  extra = sorted(set(stored) - set(built))
  wrong = sorted(n for n in set(built) & set(stored) if built[n] != stored[n])
  if missing or extra or wrong:
    strip = lambda n: n.replace('/.ATTRIBUTES/VARIABLE_VALUE', '')  # noqa: E731
    parts = []
    if wrong:
      parts.append('shape mismatch: ' + '; '.join(
          f'{strip(n)} checkpoint {list(stored[n])} vs configured {list(built[n])}'
          for n in wrong[:5]))
    if missing:
      parts.append(f'{len(missing)} variables of the configured {what} are not in the '
                   f'checkpoint, e.g. ' + ', '.join(strip(n) for n in missing[:3]))
    if extra:
      parts.append(f'{len(extra)} checkpoint variables under {key!r} are not in the '
                   f'configured {what}, e.g. ' + ', '.join(strip(n) for n in extra[:3]))
    source = f' built from {config}' if config else ''
    raise ValueError(f'checkpoint {checkpoint_path!r} key {key!r} does not match the {what}'
                     f'{source}: ' + '; '.join(parts) + '.')


def restore(objects: Mapping[str, tf.Module], path: str, what: str, exact: bool = False,
            config=None) -> str:
  """Restores ``objects`` (checkpoint key -> built network) from ``path``; returns the prefix.

  Other objects in the checkpoint (optimizers, targets, counters) are ignored. Raises
  FileNotFoundError when there is no checkpoint at ``path``, and ValueError naming the file
  when it holds no compatible objects under those keys (e.g. other network widths). With
  ``exact`` every network's variables must match the checkpoint's both ways (``config`` names
  where the networks' settings came from, for that message).
  """
  keys = ', '.join(repr(k) for k in objects)
  prefix = resolve(path)
  if not prefix:
    raise FileNotFoundError(
        f'{what}: no checkpoint at {path!r} (expected a tf.train.Checkpoint prefix or a '
        f'directory with a "checkpoint" index file, holding {keys})')
  if exact:
    for key, obj in objects.items():
      check_matches(obj, key, prefix, what, config)
  try:
    status = tf.train.Checkpoint(**objects).restore(prefix)
    status.expect_partial()
    status.assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as e:
    raise ValueError(f'{what}: checkpoint {prefix!r} has nothing compatible under {keys} with '
                     f'the networks built from gin: {type(e).__name__}: {str(e)[:1500]}') from e
  return prefix
