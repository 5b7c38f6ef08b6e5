r"""How well a joint run's frozen G keeps the scene, on held-out paired renders (evaluation only).

  python tools/generator_report.py --run_dir=RUN --paired_set=paired_full.npz \
      --output_json=RUN/../generator_report.json [--figure_states=4]
  python tools/generator_report.py --run_dir=results/table1/ROW/joint \
      --generator_checkpoint=results/table1/ROW/generator --paired_set=paired_full.npz \
      --oracle_run_dir=results/table1/real_oracle/final_q --figure_states=0 \
      --output_json=ROW/oracle_q_report.json

--paired_set holds whole frames (tools/make_paired_set.py --crop_size equal to the render
size). Reports the scene metrics (rl_cyclegan/evaluation/scene_metrics.py) of the center crop of
G(frame), what the final Q sees ('frame'), and of G(center crop), what the joint training saw
('crop'), the identity baseline, and how far the two differ (translation.frame_vs_crop_difference).
Also writes G alone as a checkpoint (RUN/../generator/) and the Figure 4 states
(RUN/../figure_states.npz: sim, G(x), true real). --oracle_run_dir adds the oracle-Q
agreement (generator_report.oracle_q_agreement). --generator_checkpoint restores G alone from
a published copy (the RUN/../generator/ that this tool writes), with --run_dir giving only the
run's gin config: a joint run's directory need not outlive its G. G is then not written again.
"""
import argparse
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan import configurables  # noqa: E402,F401  (registers the configurables)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--run_dir', required=True,
                      help='a train_rl_cyclegan root_dir (or, with --generator_checkpoint, any '
                      'directory holding its operative_config.gin, e.g. the published joint/)')
  parser.add_argument('--generator_checkpoint', default=None,
                      help='restore G from this checkpoint directory or prefix (G alone, as '
                      'RUN/../generator/ holds it) instead of the run\'s newest checkpoint')
  parser.add_argument('--paired_set', required=True, help='.npz of whole paired frames')
  parser.add_argument('--output_json', required=True)
  parser.add_argument('--figure_states', type=int, default=4)
  parser.add_argument('--generator_key', default='G_sim2real')
  parser.add_argument('--oracle_run_dir', default=None,
                      help='a Q trained in real (train_qtopt run): also report how its values '
                      'and greedy actions on G(x) agree with those on the true real(x)')
  args = parser.parse_args(argv)
  # As evaluation reads a run: its sizes from its run spec (older runs: inferred from their
  # config) and only its env, CEM and network bindings, so that a run recorded by older code
  # (training settings since renamed, e.g. train_rl_cyclegan.action_mode) still reads.
  from rl_cyclegan import run_dir  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.evaluation import policy_eval  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.pipelines import generator_report  # pylint: disable=g-import-not-at-top
  try:
    crop = tuple(run_dir.read_run_spec(args.run_dir).crop_size)
    if policy_eval.parse_run_config(args.run_dir) is None:
      raise FileNotFoundError(f'no operative_config.gin in {args.run_dir!r}')
  except (ValueError, TypeError, SyntaxError, OSError) as e:
    parser.error(f'gin config of {args.run_dir!r}: {e}')
  out_dir = os.path.dirname(os.path.abspath(args.output_json))
  try:
    report = generator_report.report(
        args.run_dir, args.paired_set, crop, args.generator_key,
        generator_dir=None if args.generator_checkpoint else os.path.join(out_dir, 'generator'),
        figure_path=os.path.join(out_dir, 'figure_states.npz'),
        figure_states=args.figure_states, oracle_dir=args.oracle_run_dir,
        generator_checkpoint=args.generator_checkpoint)
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
  if 'oracle_q' in report:
    labels = {'generator': 'G(x)', 'identity': 'sim x', 'other_state': 'another real(x\')'}
    for what, r in ((k, report['oracle_q'][k]) for k in labels):
      print(f"oracle Q on {labels[what]} vs real(x): mean "
            f"|value diff| {r['value_abs_diff']:.3f}, |Q diff| at the real action "
            f"{r['q_abs_diff_at_real_action']:.3f}, greedy (dx, dy) distance "
            f"{r['action_xy_distance']:.3f} ± {r['action_xy_distance_se']:.3f} (SE)")
  return 0
