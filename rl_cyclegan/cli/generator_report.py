r"""How well a joint run's frozen G keeps the scene, on held-out paired renders (evaluation only).

  python tools/generator_report.py --run_dir=RUN --paired_set=paired_full.npz \
      --output_json=RUN/../generator_report.json [--figure_states=4]

--paired_set holds whole frames (tools/make_paired_set.py --crop_size equal to the render
size). Reports the scene metrics (rl_cyclegan/evaluation/scene_metrics.py) of the center crop of
G(frame), what the final Q sees ('frame'), and of G(center crop), what the joint training saw
('crop'), the identity baseline, and how far the two differ (translation.frame_vs_crop_difference).
Also writes G alone as a checkpoint (RUN/../generator/) and the Figure 4 states
(RUN/../figure_states.npz: sim, G(x), true real). --oracle_run_dir adds the oracle-Q
agreement (generator_report.oracle_q_agreement).
"""
import argparse
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan import configurables  # noqa: E402,F401  (registers the configurables)
from rl_cyclegan import gin_utils  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--run_dir', required=True, help='a train_rl_cyclegan root_dir')
  parser.add_argument('--paired_set', required=True, help='.npz of whole paired frames')
  parser.add_argument('--output_json', required=True)
  parser.add_argument('--figure_states', type=int, default=4)
  parser.add_argument('--generator_key', default='G_sim2real')
  parser.add_argument('--oracle_run_dir', default=None,
                      help='a Q trained in real (train_qtopt run): also report how its values '
                      'and greedy actions on G(x) agree with those on the true real(x)')
  args = parser.parse_args(argv)
  config = os.path.join(args.run_dir, 'operative_config.gin')
  try:
    gin_utils.parse_gin([config], [], skip_unknown=True)
  except (ValueError, TypeError, SyntaxError, IOError) as e:
    parser.error(f'gin config of {args.run_dir!r}: {e}')
  import gin  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.pipelines import generator_report  # pylint: disable=g-import-not-at-top
  crop = tuple(gin.query_parameter('Environment.crop_size'))
  out_dir = os.path.dirname(os.path.abspath(args.output_json))
  try:
    report = generator_report.report(
        args.run_dir, args.paired_set, crop, args.generator_key,
        generator_dir=os.path.join(out_dir, 'generator'),
        figure_path=os.path.join(out_dir, 'figure_states.npz'),
        figure_states=args.figure_states, oracle_dir=args.oracle_run_dir)
  except (FileNotFoundError, ValueError) as e:
    parser.error(str(e))
  from rl_cyclegan import fileio  # pylint: disable=g-import-not-at-top
  fileio.write_json_atomic(args.output_json, report)
  frame = report['frame']
  print(f"G at step {report['step']}: object preservation "
        f"{frame['generator/object_preservation']:.3f} (identity "
        f"{frame['identity/object_preservation']:.3f}), MAE {frame['generator/mae']:.1f} "
        f"(identity {frame['identity/mae']:.1f}), frame vs crop MAE "
        f"{report['frame_vs_crop']['center']['frame_vs_crop_mae']:.2f} levels -> "
        f"{args.output_json}")
  return 0
