"""The command-line binaries, one module per tool, and the helpers they share.

Each ``rl_cyclegan/cli/<name>.py`` has the flags and ``main(argv=None)`` of one binary; it runs as
the console script ``rl-cyclegan-<name>`` (pyproject.toml) and as ``python tools/<name>.py``, a
few-line entry point that calls ``check_checkout`` and then the same ``main``.
"""
import argparse
import json
import os
import sys

# The checkout: the package is installed in editable mode (``make setup``) and reads gin/ and
# runs tools/ from here.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def check_checkout(tool_file: str) -> None:
  """Exits (status 2) when ``tools/<name>.py`` would run another checkout's ``rl_cyclegan``.

  One venv can serve several checkouts (git worktrees); the editable install points at one of
  them, so ``python tools/x.py`` in another would silently run that one's code.
  """
  tool_repo = os.path.dirname(os.path.dirname(os.path.abspath(tool_file)))
  if not os.path.samefile(tool_repo, REPO):
    print(f'{tool_file} belongs to the checkout {tool_repo}, but rl_cyclegan was imported from '
          f'{REPO}: set PYTHONPATH={tool_repo}, or install that checkout (`make setup` there)',
          file=sys.stderr)
    sys.exit(2)


def parse_size(text: str):
  """'64x80' -> (64, 80); an argparse type for --render_size / --crop_size / --image_size."""
  try:
    height, width = (int(v) for v in text.lower().split('x'))
    if height > 0 and width > 0:
      return height, width
  except ValueError:
    pass
  raise argparse.ArgumentTypeError(f'expected HxW with positive ints (e.g. 64x80), got {text!r}')


def parse_json_object(text: str):
  """'{"real_gap": 0.5}' -> {'real_gap': 0.5}; an argparse type for keyword-argument flags."""
  try:
    value = json.loads(text)
  except json.JSONDecodeError as e:
    raise argparse.ArgumentTypeError(f'expected a JSON object, got {text!r} ({e})') from None
  if not isinstance(value, dict):
    raise argparse.ArgumentTypeError(f'expected a JSON object ({{"name": value}}), got {text!r}')
  return value


def parse_range(text: str):
  """'0,1' -> (0.0, 1.0); an argparse type for a (low, high) pair such as --noise_scale."""
  try:
    low, high = (float(v) for v in text.split(','))
    return low, high
  except ValueError:
    pass
  raise argparse.ArgumentTypeError(f"expected 'low,high' (two numbers, e.g. 0,1), got {text!r}")
