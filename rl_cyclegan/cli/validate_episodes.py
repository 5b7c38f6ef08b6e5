r"""Checks every record of every episode file in a directory and prints a report.

  python tools/validate_episodes.py --episode_dir=DIR [--image_size=64x80]

Exit code 0 when every file and record is good, 1 otherwise (bad files and records are named
in the report with the reason), 2 on bad flags. See docs/episode_format.md.
"""
import argparse
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan.data import episodes  # noqa: E402
from rl_cyclegan.cli import parse_size  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--episode_dir', required=True, help='directory of TFRecord episode files')
  parser.add_argument('--image_size', type=parse_size, default=None,
                      help='expected image (render) size HxW, e.g. 64x80 or 512x640')
  parser.add_argument('--pattern', default='*.tfrecord*', help='file glob inside episode_dir')
  args = parser.parse_args(argv)
  report = episodes.validate_directory(args.episode_dir, args.image_size, pattern=args.pattern)
  print(report)
  return 0 if report.ok else 1
