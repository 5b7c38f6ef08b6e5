r"""Plots grasp success against train step from training runs' eval/eval_<step>.json files.

  python tools/plot_curves.py --run='Sim-Only=results/sim_only' --run='Randomized-Sim=runs/rand' \
      --floor='random=0.25' --floor='scripted=0.37' --output=docs/qtopt_curves.png

Each run gives one series per evaluated appearance, with the 95% Wilson intervals as bars.
Written with Pillow (rl_cyclegan/plotting.py), atomically.
"""
import argparse
import sys

from rl_cyclegan import plotting


def _pair(text, what):
  if '=' not in text:
    raise argparse.ArgumentTypeError(f'{what} must be LABEL=VALUE, got {text!r}')
  label, value = text.split('=', 1)
  return label, value


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--run', action='append', required=True,
                      type=lambda t: _pair(t, '--run'), help='LABEL=RUN_DIR (repeatable)')
  parser.add_argument('--floor', action='append', default=[],
                      type=lambda t: _pair(t, '--floor'), help='LABEL=RATE, e.g. random=0.25')
  parser.add_argument('--appearance', action='append', default=None,
                      help='only these appearances (repeatable; default: all evaluated)')
  parser.add_argument('--title', default='')
  parser.add_argument('--output', required=True, help='PNG path')
  args = parser.parse_args(argv)
  try:
    floors = [(label, float(value)) for label, value in args.floor]
  except ValueError as e:
    parser.error(f'--floor: {e}')
  try:
    path = plotting.success_curves(args.run, args.output, title=args.title, floors=floors,
                                   appearances=args.appearance)
  except (FileNotFoundError, ValueError) as e:
    print(f'plot_curves: {e}', file=sys.stderr)
    return 2
  print(f'wrote {path}')
  return 0
