r"""Evaluates grasp success on unseen (test) objects; prints the rate with a 95% Wilson interval.

  # A PolicySaver SavedModel (e.g. exported by training):
  python tools/evaluate.py --saved_model=/tmp/run/policy --appearance=real --num_episodes=100
  # A training run directory (gin config + latest checkpoint under train/ckpt):
  python tools/evaluate.py --checkpoint_dir=/tmp/run --appearance=real [--gin_file=...]
  # One kept snapshot of that run (tools/select_checkpoint.py picks one):
  python tools/evaluate.py --checkpoint_dir=/tmp/run \
      --checkpoint_path=/tmp/run/train/snapshots/q-24000
  # Which of G's regions a final Q needs (sim2real.CompositeEnv): the real render with the
  # background (tray, table, floor) taken from G(sim render); 'none' is the control
  python tools/evaluate.py --checkpoint_dir=/tmp/final_q --generator_key=G_sim2real \
      --appearance=real --translated_regions=background
  # ... or the real render with its objects drawn 1.5x as far from their surround
  python tools/evaluate.py --checkpoint_dir=/tmp/final_q --generator_key=G_sim2real \
      --appearance=real --translated_regions=none --object_contrast_gain=1.5
  # ... or only G's 2-pixel ring around the real objects and robot (G's halo and fringes)
  python tools/evaluate.py --checkpoint_dir=/tmp/final_q --generator_key=G_sim2real \
      --appearance=real --translated_regions=objects,robot --region_dilation=2 \
      --translated_ring_only
  # ... or the real render with its objects and robot in G's colours (shapes and shading real)
  python tools/evaluate.py --checkpoint_dir=/tmp/final_q --generator_key=G_sim2real \
      --appearance=real --translated_regions=none --colour_from_g=objects,robot
  # The floors:
  python tools/evaluate.py --policy=random --num_episodes=100 --output_json=/tmp/random.json

Prints e.g. 'grasp success: 73.5% (95% CI 64.1-81.2%, n=100) in real on test objects' and, with
--output_json, writes the result dict atomically. See rl_cyclegan/evaluation/policy_eval.py.
"""
import argparse
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan import fileio  # noqa: E402
from rl_cyclegan import specs  # noqa: E402
from rl_cyclegan.evaluation import policy_eval  # noqa: E402
from rl_cyclegan.cli import parse_size  # noqa: E402


def _saved_model_render_size(saved):
  """(H, W) of the image input of a PolicySaver SavedModel's action signature, or None."""
  try:
    inputs = saved.signatures['action'].structured_input_signature[1]
  except (AttributeError, KeyError, IndexError):
    return None
  for name, spec in inputs.items():
    # Keys are nest paths, sanitized: '0/observation/image' -> 'arg_0_observation_image'.
    if name.replace('/', '_').endswith('observation_image') and spec.shape.rank == 4:
      return tuple(int(d) for d in spec.shape[1:3])
  return None


def build_action_fn(args, parser):
  """The batched action function for --saved_model / --checkpoint_dir / --policy."""
  from rl_cyclegan.actors import policies  # pylint: disable=g-import-not-at-top
  sources = [bool(args.saved_model), bool(args.checkpoint_dir), bool(args.policy)]
  if sum(sources) != 1:
    parser.error('give exactly one of --saved_model, --checkpoint_dir, --policy')
  if args.checkpoint_path and not args.checkpoint_dir:
    parser.error('--checkpoint_path needs --checkpoint_dir (the run whose gin config builds '
                 'the network)')
  if args.generator_checkpoint and not (args.checkpoint_dir and args.generator_key):
    parser.error('--generator_checkpoint needs --checkpoint_dir and --generator_key (the run '
                 "whose Q sees the images, and G's checkpoint key)")
  if args.policy:
    if args.policy not in policies.SCRIPTED_POLICY_NAMES:
      parser.error(f'unknown --policy {args.policy!r}; valid: '
                   f'{", ".join(policies.SCRIPTED_POLICY_NAMES)}')
    args.render_size = args.render_size or specs.DEFAULT_RENDER_SIZE
    return policies.scripted_action_fn(args.policy)
  if args.saved_model:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    if not os.path.isfile(os.path.join(args.saved_model, 'saved_model.pb')):
      parser.error(f'--saved_model {args.saved_model!r} has no saved_model.pb')
    saved = tf.saved_model.load(args.saved_model)
    size = _saved_model_render_size(saved)
    args.render_size = args.render_size or size or specs.DEFAULT_RENDER_SIZE
    if size is not None and tuple(size) != tuple(args.render_size):
      parser.error(f'the SavedModel expects images of {size[0]}x{size[1]} but '
                   f'--render_size={args.render_size[0]}x{args.render_size[1]}')
    if not args.explore and not policies.set_saved_model_exploration(saved, 0.0, 0.0):
      print('note: the SavedModel has no exploration variables; evaluating it as saved',
            file=sys.stderr)
    return policies.policy_action_fn(saved, name='saved_model')
  try:  # the run's sizes and modes come from the run (run_spec.json); flags only check them
    loaded = policy_eval.load_run_policy(
        args.checkpoint_dir, render_size=args.render_size, gin_file=args.gin_file,
        gin_bindings=args.gin_bindings, q_network_key=args.q_network_key,
        generator_key=args.generator_key, checkpoint_path=args.checkpoint_path,
        action_mode=args.action_mode, seed=args.seed,
        generator_checkpoint=args.generator_checkpoint,
        generator_in_policy=args.translated_regions is None)
  except (FileNotFoundError, ValueError) as e:
    parser.error(str(e))
  args.render_size, args.action_mode = loaded.spec.render_size, loaded.spec.action_mode
  args.run_config, args.cem_policy = loaded.config, loaded.policy
  args.translator = loaded.translator
  return policies.greedy_action_fn(loaded.policy, name='qtopt')


def parse_gin_bindings(bindings, parser):
  """Binds --gin_bindings for a SavedModel or scripted policy (a run's evaluation binds them
  after the run's own config, in ``policy_eval.parse_run_config``)."""
  import gin  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.envs import grasping  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  for binding in bindings:
    try:
      gin.parse_config(binding)
    except (ValueError, SyntaxError) as e:
      parser.error(f'--gin_bindings {binding!r}: {e}')


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--saved_model', default=None, help='PolicySaver SavedModel directory')
  parser.add_argument('--checkpoint_dir', default=None,
                      help='training root dir (operative_config.gin, train/ckpt)')
  parser.add_argument('--checkpoint_path', default=None,
                      help='with --checkpoint_dir: this checkpoint (a prefix, e.g. '
                      'RUN/train/snapshots/q-24000) instead of the latest under train/ckpt')
  parser.add_argument('--policy', default=None, help="'scripted' or 'random' (floors)")
  parser.add_argument('--gin_file', default=None,
                      help="with --checkpoint_dir: instead of the run's operative_config.gin")
  parser.add_argument('--gin_bindings', action='append', default=[],
                      help='e.g. "RealAppearance.real_gap = 0.75" (another pseudo-real world); '
                      "with --checkpoint_dir: after the run's config")
  parser.add_argument('--q_network_key', default=None,
                      help="with --checkpoint_dir: the Q-network's checkpoint key (default: the "
                      "run's policy Q, 'q_network' or an RL-CycleGAN run's 'Q_real')")
  parser.add_argument('--generator_key', default=None,
                      help='with --checkpoint_dir: checkpoint key of a frozen Sim2Real '
                      'generator to apply before Q (train_qtopt: G_sim2real); use it for '
                      'sim-like appearances, not for --appearance=real')
  parser.add_argument('--generator_checkpoint', default=None,
                      help='with --generator_key: take that G from this checkpoint (prefix or '
                      "directory, e.g. another Table 1 row's results/.../generator) instead "
                      "of the run's own: a final Q under another generator")
  parser.add_argument('--translated_regions', default=None,
                      help="with --checkpoint_dir, --generator_key and --appearance=real: "
                      "the real render with these regions (comma-separated: objects, robot, "
                      "background) taken from G's translation of the same state's sim render "
                      "(sim2real.CompositeEnv; 'none': the paired real render, the control)")
  parser.add_argument('--region_dilation', type=int, default=0,
                      help='with --translated_regions: grow the objects\' and robot\'s masks by '
                      "this many pixels, so that G's halo around an object goes with the object")
  parser.add_argument('--object_contrast_gain', type=float, default=None,
                      help='with --translated_regions: draw the real render\'s object pixels '
                      'this many times as far from their local surround '
                      '(scene_metrics.amplify_contrast): objects as loud as a G draws them')
  parser.add_argument('--translated_ring_only', action='store_true',
                      help='with --translated_regions of objects and/or robot and '
                      '--region_dilation: take only the ring the dilation adds around them from '
                      "G (its halo and fringes); their insides stay real")
  parser.add_argument('--colour_from_g', default=None,
                      help="with --translated_regions: these regions (comma-separated: "
                      "objects, robot, background) keep the real render's shapes and shading "
                      "but take their colours from G's translation (per object body, "
                      'sim2real.match_segment_colours): G\'s colours without its drawing')
  parser.add_argument('--explore', action='store_true',
                      help='keep a SavedModel\'s exploration (default: greedy)')
  parser.add_argument('--appearance', default='sim', help="'sim', 'real' or 'randomized'")
  parser.add_argument('--num_episodes', type=int, default=100)
  parser.add_argument('--num_envs', type=int, default=4, help='lockstep envs (policy batch)')
  parser.add_argument('--object_split', default='test', help="'test' (unseen) or 'train'")
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--render_size', type=parse_size, default=None,
                      help="HxW (paper: 512x640); with --checkpoint_dir: the run's (a different "
                      'value is an error), else the SavedModel\'s or 64x80')
  parser.add_argument('--action_mode', default=None,
                      help="'auto_descend' or 'full'; with --checkpoint_dir: the run's (a "
                      "different value is an error), else 'auto_descend'")
  parser.add_argument('--max_steps', type=int, default=None, help="default: the env's")
  parser.add_argument('--progress_interval', type=float, default=5.0, help='seconds')
  parser.add_argument('--output_json', default=None)
  args = parser.parse_args(argv)

  from rl_cyclegan.envs import appearance as appearance_lib  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.envs import grasping  # pylint: disable=g-import-not-at-top
  for flag, value, valid in (('appearance', args.appearance, appearance_lib.APPEARANCE_NAMES),
                             ('object_split', args.object_split, grasping.OBJECT_SPLITS),
                             ('action_mode', args.action_mode, grasping.ACTION_MODES)):
    if value is not None and value not in valid:
      parser.error(f'unknown --{flag} {value!r}; valid: {", ".join(valid)}')
  if args.num_episodes < 1 or args.num_envs < 1:
    parser.error('--num_episodes and --num_envs must be >= 1')

  regions = None
  colour = []
  if args.object_contrast_gain is not None and args.translated_regions is None:
    parser.error(f'--object_contrast_gain={args.object_contrast_gain} changes the real render '
                 'of --translated_regions; give that too (\'none\': the real render alone)')
  if args.object_contrast_gain is not None and not args.object_contrast_gain >= 0:
    parser.error(f'--object_contrast_gain must be >= 0, got {args.object_contrast_gain}')
  if args.colour_from_g is not None and args.translated_regions is None:
    parser.error(f'--colour_from_g={args.colour_from_g} recolours the real render of '
                 '--translated_regions; give that too (\'none\': the real render alone)')
  if args.translated_ring_only and not (
      args.region_dilation > 0 and args.translated_regions not in (None, 'none') and
      'background' not in args.translated_regions):
    parser.error('--translated_ring_only takes the ring --region_dilation grows around the '
                 'objects and/or robot of --translated_regions; give both (a dilation > 0, '
                 f'no background), got --translated_regions={args.translated_regions} '
                 f'--region_dilation={args.region_dilation}')
  if args.region_dilation and args.translated_regions is None:
    parser.error(f'--region_dilation={args.region_dilation} grows the masks of '
                 '--translated_regions; give that too (or drop --region_dilation)')
  if args.translated_regions is not None:
    from rl_cyclegan.envs import sim2real  # pylint: disable=g-import-not-at-top
    if not (args.checkpoint_dir and args.generator_key and args.appearance == 'real'):
      parser.error('--translated_regions needs --checkpoint_dir, --generator_key (the G whose '
                   'regions are shown) and --appearance=real')
    regions = [] if args.translated_regions == 'none' else [
        r.strip() for r in args.translated_regions.split(',')]
    unknown = [r for r in regions if r not in sim2real.REGIONS]
    if args.region_dilation < 0:
      parser.error(f'--region_dilation must be >= 0, got {args.region_dilation}')
    colour = [] if args.colour_from_g is None else [
        r.strip() for r in args.colour_from_g.split(',')]
    if set(colour) - set(sim2real.REGIONS) or (args.colour_from_g is not None and not colour):
      parser.error(f'--colour_from_g {args.colour_from_g!r}: expected a comma-separated '
                   f'subset of {", ".join(sim2real.REGIONS)}')
    if set(colour) & set(regions) and not args.translated_ring_only:
      parser.error(f'--colour_from_g {args.colour_from_g!r} and --translated_regions '
                   f'{args.translated_regions!r} share {sorted(set(colour) & set(regions))}; '
                   'a region is recoloured or translated, not both (except with '
                   '--translated_ring_only: the ring from G, the inside recoloured)')
    if unknown or not (regions or args.translated_regions == 'none'):
      parser.error(f'--translated_regions {args.translated_regions!r}: expected \'none\' or '
                   f'a comma-separated subset of {", ".join(sim2real.REGIONS)}')

  args.run_config = args.cem_policy = args.translator = None
  action_fn = build_action_fn(args, parser)
  recorder = None
  if args.cem_policy is not None:  # a run's Q: does it still use the image?
    action_fn = recorder = policy_eval.FrameRecorder(action_fn)
  args.action_mode = args.action_mode or 'auto_descend'
  if not args.checkpoint_dir:
    parse_gin_bindings(args.gin_bindings, parser)
  note = policy_eval.other_world_note(args.run_config, args.appearance)
  if note:
    print(note, file=sys.stderr)

  louder = None
  if args.object_contrast_gain is not None:
    from rl_cyclegan.evaluation import scene_metrics  # pylint: disable=g-import-not-at-top

    def louder(image, masks):
      return scene_metrics.amplify_contrast(image[None], masks['objects'][None],
                                            args.object_contrast_gain)[0]

  def make_env(**kwargs):
    env = policy_eval.default_make_env(render_size=args.render_size,
                                      action_mode=args.action_mode,
                                      max_steps=args.max_steps, **kwargs)
    if regions is not None:
      env = sim2real.CompositeEnv(env, args.translator, regions, args.region_dilation,
                                  real_transform=louder, colour_regions=colour,
                                  ring_only=args.translated_ring_only)
    return env

  result = policy_eval.evaluate(
      action_fn, make_env, num_episodes=args.num_episodes, num_envs=args.num_envs,
      appearance=args.appearance, object_split=args.object_split, seed=args.seed,
      progress_interval=args.progress_interval)
  result.update(render_size=list(args.render_size), action_mode=args.action_mode,
                source=args.saved_model or args.checkpoint_dir or args.policy)
  if args.generator_checkpoint:
    result['generator_checkpoint'] = args.generator_checkpoint
  if regions is not None:
    result.update(translated_regions=regions, region_dilation=args.region_dilation)
    if args.object_contrast_gain is not None:
      result['object_contrast_gain'] = args.object_contrast_gain
    if colour:
      result['colour_from_g'] = colour
    if args.translated_ring_only:
      result['translated_ring_only'] = True
  if args.appearance == 'real':  # which pseudo-real world the rate was measured in
    result['world'] = appearance_lib.configured_real_world()
  print(policy_eval.format_result(result))
  if regions is not None:
    print(f'composite: the real render with {", ".join(regions) or "no region"} from '
          f'{args.generator_key}(sim render) of the same state'
          + (' (only the ring around them)' if args.translated_ring_only else '')
          + (f'; {", ".join(colour)} in its colours' if colour else ''))
  image_use = recorder.image_use(args.cem_policy) if recorder is not None else {}
  if image_use:
    result.update(image_use)
    print(f'image use: {policy_eval.FrameRecorder.format(image_use)} over the first '
          f'{recorder.num_frames} frames (both near 0 would mean that the Q ignores the image)')
  if result.get('grasp_distance'):
    print(policy_eval.format_grasp_distances(result['grasp_distance']))
  if args.output_json:
    fileio.write_json_atomic(args.output_json, result)
  return 0
