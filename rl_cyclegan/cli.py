"""Small command-line helpers shared by the binaries in tools/."""
import argparse


def parse_size(text: str):
  """'64x80' -> (64, 80); an argparse type for --render_size / --crop_size / --image_size."""
  try:
    height, width = (int(v) for v in text.lower().split('x'))
    if height > 0 and width > 0:
      return height, width
  except ValueError:
    pass
  raise argparse.ArgumentTypeError(f'expected HxW with positive ints (e.g. 64x80), got {text!r}')


def parse_range(text: str):
  """'0,1' -> (0.0, 1.0); an argparse type for a (low, high) pair such as --noise_scale."""
  try:
    low, high = (float(v) for v in text.split(','))
    return low, high
  except ValueError:
    pass
  raise argparse.ArgumentTypeError(f"expected 'low,high' (two numbers, e.g. 0,1), got {text!r}")
