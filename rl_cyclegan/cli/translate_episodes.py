r"""Translates every image of an episode directory with a frozen Sim2Real G, once (a cache).

  python tools/translate_episodes.py --generator_checkpoint=RUN/train/ckpt \
      --gin_file=gin/table1_final_q.gin --source=data/sim_mix18 \
      --output_dir=FINAL_Q_RUN/translated_sim_log [--render_size=64x80 --crop_size=64x64]

The output holds one shard per source shard (same name, written atomically), translation.json
(G's fingerprint and the source, written first) and summary.json (written last). Re-running
resumes; a cache made by another G or from another source is deleted and made again.
tools/train_qtopt.py makes the same cache itself (train_eval.translate_frames) and refuses one
made by another G. See rl_cyclegan/data/translation.py.
"""
import argparse
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan import configurables  # noqa: E402,F401  (registers the configurables)
from rl_cyclegan import gin_utils  # noqa: E402
from rl_cyclegan.cli import parse_size  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--generator_checkpoint', required=True,
                      help='checkpoint prefix or directory holding G under --generator_key')
  parser.add_argument('--generator_key', default='G_sim2real')
  parser.add_argument('--gin_file', action='append', default=[],
                      help="the generator's run config (UNetGenerator widths)")
  parser.add_argument('--gin_bindings', action='append', default=[])
  parser.add_argument('--source', required=True, help='episode directory or glob')
  parser.add_argument('--output_dir', required=True)
  parser.add_argument('--render_size', type=parse_size, default=(64, 80), help='HxW')
  parser.add_argument('--crop_size', type=parse_size, default=(64, 64), help='HxW')
  args = parser.parse_args(argv)
  try:
    gin_utils.parse_gin(args.gin_file, args.gin_bindings, skip_unknown=True)
  except (ValueError, TypeError, SyntaxError, IOError) as e:
    parser.error(f'gin config error: {e}')
  from rl_cyclegan.data import translation  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.pipelines import train_qtopt  # pylint: disable=g-import-not-at-top
  try:
    generator = train_qtopt.load_frozen_generator(args.generator_checkpoint,
                                                  args.generator_key, args.crop_size)
  except (FileNotFoundError, ValueError) as e:
    parser.error(str(e))
  translation.translate_episode_dir(
      translation.FrameTranslator(generator), args.source, args.output_dir, args.render_size,
      generator_name=args.generator_checkpoint,
      log=lambda m: print(f'[translate] {m}', file=sys.stderr, flush=True))
  return 0
