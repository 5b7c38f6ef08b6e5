"""Atomic file writes (no TensorFlow import, so light tools and worker processes can use it).

A file is written under a temporary name in its own directory and then renamed over the
target, so a reader never sees a partial file: an interrupted write leaves the old file (or no
file) plus a ``<name>.tmp-<pid>`` that is removed when the write fails in-process. The marker
is ``episodes.TMP_MARKER``, which episode globs skip.
"""

import json
import os
from typing import Callable, IO

TMP_MARKER = '.tmp-'


def write_atomic(path: str, write: Callable[[IO], object], mode: str = 'w') -> str:
  """Calls ``write(f)`` on ``<path>.tmp-<pid>`` opened with ``mode`` ('w' or 'wb'), then
  renames it to ``path`` (creating the directory). Returns ``path``."""
  if mode not in ('w', 'wb'):
    raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  tmp = f'{path}{TMP_MARKER}{os.getpid()}'
  try:
    with open(tmp, mode) as f:
      write(f)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return path


def write_text_atomic(path: str, text: str) -> str:
  """Writes ``text`` to ``path`` atomically (creating its directory); returns ``path``."""
  return write_atomic(path, lambda f: f.write(text))


def pid_alive(pid) -> bool:
  """Whether a process with this pid exists (on this host)."""
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


def remove_stale_temp_files(directory):
  """Removes ``*.tmp-<pid>`` files in ``directory`` whose writer process no longer exists.
  Returns their names."""
  removed = []
  for name in os.listdir(directory):
    head, marker, pid = name.rpartition(TMP_MARKER)
    if not marker or not pid.isdigit() or not head:
      continue
    if int(pid) != os.getpid() and not pid_alive(int(pid)):
      os.remove(os.path.join(directory, name))
      removed.append(name)
  return removed


def _flat(value) -> bool:
  """Whether ``value`` is a scalar or a list of scalars (one line of JSON)."""
  if isinstance(value, (list, tuple)):
    return not any(isinstance(v, (list, tuple, dict)) for v in value)
  return not isinstance(value, dict)


def dumps_json(data, indent: int = 0) -> str:
  """``data`` as key-sorted JSON indented by two spaces per level, except that a list of
  scalars, or of lists of scalars (per-episode outcomes, [step, value] curves), stays on one
  line: the same JSON as ``json.dumps(data, indent=2, sort_keys=True)``, in a third of the
  lines and about half the bytes."""
  inner = '  ' * (indent + 1)
  if isinstance(data, dict) and data:
    items = (f'{inner}{json.dumps(k if isinstance(k, str) else json.dumps(k))}: '
             f'{dumps_json(data[k], indent + 1)}' for k in sorted(data))
  elif isinstance(data, (list, tuple)) and not all(_flat(v) for v in data):
    items = (f'{inner}{dumps_json(v, indent + 1)}' for v in data)
  else:
    return json.dumps(data, sort_keys=True)
  opening, closing = ('{', '}') if isinstance(data, dict) else ('[', ']')
  return f'{opening}\n' + ',\n'.join(items) + f'\n{"  " * indent}{closing}'


def write_json_atomic(path: str, data) -> str:
  """``data`` as ``dumps_json`` text with a final newline, written atomically."""
  return write_text_atomic(path, dumps_json(data) + '\n')
