"""Packaging of an export directory: the SavedModel is written to a temporary directory, its
``export_info.json`` (signatures, sizes, source checkpoint, git commit, versions) added, and the
directory renamed into place only when complete (``write_atomically``).
"""

import datetime
import json
import os
import shutil
import subprocess
from typing import Callable, Optional

import tensorflow as tf

from rl_cyclegan import specs
from rl_cyclegan.export import signatures

EXPORT_INFO = 'export_info.json'
_REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def git_commit() -> Optional[str]:
  """The rl_cyclegan checkout's HEAD commit ('+dirty' if modified), or None outside git."""
  try:
    commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=_REPO_DIR, capture_output=True,
                            text=True, timeout=10, check=True).stdout.strip()
    dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                           cwd=_REPO_DIR, capture_output=True, text=True, timeout=10,
                           check=True).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None
  return commit + ('+dirty' if dirty else '') if commit else None


def package_version() -> str:
  """rl_cyclegan's version: installed metadata, else ``__version__``, else 'unversioned'."""
  try:
    from importlib import metadata  # pylint: disable=g-import-not-at-top
    return metadata.version('rl_cyclegan')
  except Exception:  # pylint: disable=broad-except  # not installed as a distribution
    import rl_cyclegan  # pylint: disable=g-import-not-at-top
    return str(getattr(rl_cyclegan, '__version__', 'unversioned'))


def _versions():
  versions = {'rl_cyclegan': package_version(), 'tensorflow': tf.__version__}
  try:
    import tf_agents  # pylint: disable=g-import-not-at-top
    versions['tf_agents'] = tf_agents.__version__
  except (ImportError, AttributeError):
    pass
  return versions


def write_atomically(export_dir: str, write: Callable[[str], dict], info: dict) -> dict:
  """Runs ``write(tmp_dir)`` (-> {signature name: concrete fn}), adds export_info.json, renames.

  The SavedModel is written to ``<export_dir>.tmp-<pid>``; if ``write`` raises, the temporary
  directory is removed and ``export_dir`` is untouched. When it is complete, an existing
  ``export_dir`` is renamed to ``<export_dir>.old-<pid>``, the new one renamed into place and
  the old one deleted. Between the two renames (microseconds) ``export_dir`` does not exist; a
  crash exactly there leaves the old export in ``<export_dir>.old-<pid>``. If the second rename
  fails the old export is moved back.

  Returns the export info written.
  """
  export_dir = os.path.abspath(export_dir)
  os.makedirs(os.path.dirname(export_dir), exist_ok=True)
  tmp_dir = f'{export_dir}.tmp-{os.getpid()}'
  if os.path.exists(tmp_dir):
    shutil.rmtree(tmp_dir)
  try:
    functions = write(tmp_dir)
    info = dict(info)
    info['signatures'] = {name: signatures.describe_signature(fn)
                          for name, fn in functions.items()}
    info.setdefault('created', datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec='seconds'))
    info.setdefault('git_commit', git_commit())
    info.setdefault('versions', _versions())
    with open(os.path.join(tmp_dir, EXPORT_INFO), 'w') as f:
      json.dump(info, f, indent=2, sort_keys=True)
      f.write('\n')
  except BaseException:
    shutil.rmtree(tmp_dir, ignore_errors=True)
    raise
  old_dir = None
  if os.path.exists(export_dir):
    old_dir = f'{export_dir}.old-{os.getpid()}'
    if os.path.exists(old_dir):
      shutil.rmtree(old_dir)
    os.rename(export_dir, old_dir)
  try:
    os.rename(tmp_dir, export_dir)
  except BaseException:
    if old_dir is not None:
      os.rename(old_dir, export_dir)
    shutil.rmtree(tmp_dir, ignore_errors=True)
    raise
  if old_dir is not None:
    shutil.rmtree(old_dir, ignore_errors=True)
  return info


def base_info(kind, render_size=None, crop_size=None, source_checkpoint=None, extra=None):
  info = {'kind': kind, 'render_size': list(render_size) if render_size else None,
          'crop_size': list(crop_size) if crop_size else None,
          'source_checkpoint': source_checkpoint,
          'observation_spec': {k: signatures.spec_dict(v) for k, v in specs.env_observation_spec(
              render_size or specs.DEFAULT_RENDER_SIZE).items()} if render_size else None,
          'action_spec': signatures.spec_dict(specs.action_spec()),
          'action_names': list(specs.ACTION_NAMES)}
  info.update(extra or {})
  return info


def read_export_info(export_dir: str) -> dict:
  with open(os.path.join(export_dir, EXPORT_INFO)) as f:
    return json.load(f)
