r"""Exports SavedModels for robot controllers from a training run (rl_cyclegan/export).

  python tools/export.py --root_dir=runs/qtopt_sim --export_dir=/tmp/export \
      [--what=generator,q_function,policy] [--gin_file=...] [--gin_bindings='...']
  # a joint RL-CycleGAN run: its policy Q is Q_real (from its run_spec.json), G is exported too
  python tools/export.py --root_dir=runs/rl_cyclegan --export_dir=/tmp/export

Writes <export_dir>/generator, <export_dir>/q_function, <export_dir>/policy (each atomically,
with export_info.json) and prints each path and its signatures. The SavedModels load with plain
tf.saved_model.load, without rl_cyclegan or tf_agents; see docs/export.md.
"""
import argparse
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan.export import saved_models  # noqa: E402
from rl_cyclegan.export import signatures  # noqa: E402
from rl_cyclegan.cli import parse_size  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--root_dir', required=True,
                      help='training run (operative_config.gin, train/ckpt)')
  parser.add_argument('--export_dir', required=True, help='output directory')
  parser.add_argument('--what', default=None,
                      help='comma-separated subset of generator,q_function,policy (default: '
                      'q_function,policy, plus generator when the run saved one)')
  parser.add_argument('--gin_file', default=None,
                      help="instead of the run's operative_config.gin")
  parser.add_argument('--gin_bindings', action='append', default=[])
  parser.add_argument('--checkpoint_path', default=None,
                      help='a checkpoint prefix (default: the latest in root_dir/train/ckpt)')
  parser.add_argument('--q_network_key', default=None,
                      help="checkpoint key of Q (default: the run's policy Q: 'q_network' for "
                      "QT-Opt runs, 'Q_real' for the joint RL-CycleGAN learner)")
  parser.add_argument('--generator_key', default=saved_models.DEFAULT_GENERATOR_KEY,
                      help='checkpoint key of the Sim2Real generator G')
  parser.add_argument('--render_size', type=parse_size, default=None,
                      help="HxW camera frame: the run's (run_spec.json); a different value is an "
                      'error')
  parser.add_argument('--crop_size', type=parse_size, default=None,
                      help="hxw: the run's; a different value is an error")
  parser.add_argument('--action_mode', default=None,
                      help="'auto_descend' or 'full': the run's; a different value is an error")
  parser.add_argument('--policy_uses_generator', action='store_true',
                      help='put G in front of Q in policy and q_function (sim-like cameras)')
  parser.add_argument('--seed', type=int, default=saved_models.DEFAULT_GRASP_SEED,
                      help="first element of the grasp signature's stateless CEM seed")
  args = parser.parse_args(argv)
  what = args.what and tuple(w.strip() for w in args.what.split(',') if w.strip())
  bad = [w for w in what or () if w not in saved_models.EXPORT_KINDS]
  if bad or what == ():
    parser.error(f'--what must list some of {",".join(saved_models.EXPORT_KINDS)}, got '
                 f'{args.what!r}')
  try:
    results = saved_models.export_from_checkpoint(
        args.root_dir, args.export_dir, what=what, gin_file=args.gin_file,
        gin_bindings=args.gin_bindings, checkpoint_path=args.checkpoint_path,
        q_network_key=args.q_network_key, generator_key=args.generator_key,
        render_size=args.render_size, crop_size=args.crop_size, action_mode=args.action_mode,
        policy_uses_generator=args.policy_uses_generator, seed=args.seed)
  except (FileNotFoundError, ValueError) as e:
    parser.error(str(e))
  for kind, info in results.items():
    print(f'{kind}: {info["export_dir"]}  (from {info["source_checkpoint"]})')
    for name, description in info['signatures'].items():
      print(f'  {signatures.format_signature(name, description)}')
  return 0
