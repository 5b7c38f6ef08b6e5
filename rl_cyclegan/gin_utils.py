"""Gin flags and parsing shared by the training binaries.

Gin files and bindings are parsed before anything is built, so an unknown configurable or
parameter fails at once, naming the binding. ``include`` lines are resolved against the
project's gin/ directory and the directory of each --gin_file.
"""
import argparse
import logging
import os
import sys
import tokenize
from typing import Callable, Optional, Sequence

import gin
from gin import config_parser

from rl_cyclegan import lifecycle

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIN_DIR = os.path.join(REPO, 'gin')


class _DropGinPathProbes(logging.Filter):
  """gin 0.5 logs 'ERROR ... Path not found' for every search path it tries before the one that
  has an included file; those are probes, not errors."""

  def filter(self, record):
    return not str(record.msg).startswith('Path not found')


class _LiteralDelegate(config_parser.ParserDelegate):
  """Parses references and macros to their names (syntax checks register nothing)."""

  def configurable_reference(self, scoped_configurable_name, evaluate):
    return scoped_configurable_name

  def macro(self, macro_name):
    return macro_name


def check_syntax(text: str, source: str) -> None:
  """Raises ValueError naming ``source`` and the line when ``text`` is not valid gin syntax
  (gin itself raises a bare tokenizer error that names neither)."""
  try:
    for _ in config_parser.ConfigParser(text, _LiteralDelegate()):
      pass
  except SyntaxError as e:
    raise ValueError(f'{source} line {e.lineno}: {e.msg}: {(e.text or "").strip()!r}') from None
  except tokenize.TokenError as e:
    line = e.args[1][0] - 1 if len(e.args) > 1 else '?'
    raise ValueError(f'{source}: {e.args[0]} (an unclosed bracket or quote; it starts at or '
                     f'before line {line})') from None


def parse_gin(gin_files: Sequence[str], gin_bindings: Sequence[str],
              skip_unknown: bool = False, finalize: bool = True) -> None:
  """Parses ``gin_files`` then ``gin_bindings``; raises ValueError naming a missing file.

  ``skip_unknown``: ignore bindings of configurables this process does not know (reading
  another binary's operative config for its network settings).
  """
  for path in gin_files:
    if not os.path.isfile(path):
      raise ValueError(f'gin file {path!r} does not exist')
  search_paths = [GIN_DIR] + [os.path.dirname(os.path.abspath(p)) for p in gin_files]
  for path in dict.fromkeys(search_paths):
    gin.add_config_file_search_path(path)
  for path in gin_files:
    with open(path) as f:
      check_syntax(f.read(), f'gin file {path!r}')
  for binding in gin_bindings:
    check_syntax(binding, f'--gin_bindings {binding!r}')
  probe_filter = _DropGinPathProbes()
  logging.getLogger().addFilter(probe_filter)
  try:
    gin.parse_config_files_and_bindings(list(gin_files), list(gin_bindings),
                                        finalize_config=finalize, skip_unknown=skip_unknown)
  finally:
    logging.getLogger().removeFilter(probe_filter)


def run_training_binary(doc: str, train_eval: Callable[[str], object],
                        example_binding: str, argv: Optional[Sequence[str]] = None,
                        process_root_dir: Optional[Callable[[str], str]] = None) -> int:
  """Parses --root_dir / --gin_file / --gin_bindings, then calls ``train_eval(root_dir)``.

  ``process_root_dir`` (after gin is parsed, before anything else): maps --root_dir to this
  process's own run directory (a multi-worker run's non-chief workers keep theirs under it).

  The run directory is locked for the run (``lifecycle.directory_lock``: run.lock with the
  pid and host). Returns the process exit code: 2 for a gin config error (printed, naming the
  binding), 3 when another live process owns the run directory (printed, naming it), 130
  when interrupted (SIGINT / SIGTERM) after the loop saved its checkpoint.
  """
  parser = argparse.ArgumentParser(description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--root_dir', required=True, help='run directory (resumed if it exists)')
  parser.add_argument('--gin_file', action='append', default=[], help='repeatable')
  parser.add_argument('--gin_bindings', action='append', default=[],
                      help=f'repeatable, e.g. {example_binding!r}')
  args = parser.parse_args(argv)
  try:
    parse_gin(args.gin_file, args.gin_bindings)
  except (ValueError, TypeError, SyntaxError, IOError) as e:
    print(f'gin config error: {e}', file=sys.stderr)
    return 2
  root_dir = process_root_dir(args.root_dir) if process_root_dir else args.root_dir
  try:
    with lifecycle.directory_lock(root_dir):  # one owner per run directory
      train_eval(root_dir)
  except lifecycle.LockHeld as e:
    print(f'error: {e}', file=sys.stderr)
    return 3
  except (KeyboardInterrupt, lifecycle.Terminate):
    # The loop saved a checkpoint and flushed the collected episodes before re-raising.
    print(f'interrupted: checkpoint saved under {root_dir}; run the same command again to '
          'resume', file=sys.stderr)
    return 130
  return 0
