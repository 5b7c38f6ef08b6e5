r"""Picks a run's best Q-network snapshot by grasp success on validation episodes.

train_qtopt keeps a Q-network snapshot every ``Checkpointing.snapshot_interval`` steps
(``RUN/train/snapshots/q-<step>``). This tool evaluates each on the same validation episodes
(by default *training* objects, so that the unseen test objects stay unseen until the final
figure) and writes a table and the pick:

  python tools/select_checkpoint.py --run_dir=runs/sim_only --num_episodes=100
  python tools/evaluate.py --checkpoint_dir=runs/sim_only \
      --checkpoint_path=runs/sim_only/train/snapshots/q-<best step>   # then test objects

The JSON (default RUN/selection.json) is rewritten atomically after every snapshot; rerunning
with the same settings skips the snapshots already measured (an interrupted selection
resumes). The pick is the highest success rate, the later step on ties.
"""
import argparse
import json
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan.cli import parse_size  # noqa: E402
from rl_cyclegan import fileio  # noqa: E402
from rl_cyclegan.evaluation import policy_eval  # noqa: E402
from rl_cyclegan import progress  # noqa: E402
from rl_cyclegan import run_dir as run_dir_lib  # noqa: E402

SETTINGS = ('appearance', 'object_split', 'num_episodes', 'seed', 'render_size', 'action_mode',
            'gin_bindings')


def select(run_dir, appearance='sim', object_split='train', num_episodes=100, seed=1000,
           num_envs=4, render_size=None, action_mode=None,
           gin_bindings=(), output_json=None, min_step=0, log=print):
  """Evaluates every snapshot of ``run_dir`` (step >= min_step); returns the selection dict.

  Sizes and modes are the run's (run_spec.json); ``render_size`` / ``action_mode`` given here
  must agree with them.
  """
  import gin  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.actors import policies  # pylint: disable=g-import-not-at-top
  spec = run_dir_lib.read_run_spec(run_dir)
  policy_eval.check_agrees('render_size', render_size, spec.render_size, spec)
  policy_eval.check_agrees('action_mode', action_mode, spec.action_mode, spec)
  render_size, action_mode = spec.render_size, spec.action_mode
  snapshots = [(s, p) for s, p in run_dir_lib.list_snapshots(run_dir) if s >= min_step]
  if not snapshots:
    raise FileNotFoundError(
        f'no Q-network snapshots under {os.path.join(run_dir, run_dir_lib.SNAPSHOT_SUBDIR)!r} with '
        f'step >= {min_step} (train_qtopt writes them every Checkpointing.snapshot_interval '
        'steps)')
  output_json = output_json or os.path.join(run_dir, 'selection.json')
  settings = dict(appearance=appearance, object_split=object_split,
                  num_episodes=int(num_episodes), seed=int(seed),
                  render_size=[int(s) for s in render_size], action_mode=action_mode,
                  gin_bindings=list(gin_bindings))
  done = {}
  if os.path.isfile(output_json):
    with open(output_json) as f:
      previous = json.load(f)
    if {k: previous.get(k) for k in SETTINGS} == settings:
      done = {c['step']: c for c in previous.get('candidates', [])}
    else:
      log(f'{output_json} was written with other settings; measuring every snapshot again')
  todo = [(s, p) for s, p in snapshots if s not in done]
  log(f'{len(snapshots)} snapshots, {len(snapshots) - len(todo)} already measured; '
      f'{num_episodes} episodes each in {appearance} on {object_split} objects (seed {seed})')

  def make_env(**kwargs):
    return policy_eval.default_make_env(render_size=render_size, action_mode=action_mode,
                                       **kwargs)

  start = time.time()
  for k, (step, prefix) in enumerate(todo):
    gin.clear_config()
    policy = policy_eval.load_policy_from_checkpoint(
        run_dir, gin_bindings=gin_bindings, checkpoint_path=prefix,
        q_network_key='q_network', seed=seed)  # snapshots hold the Q-network as q_network
    result = policy_eval.evaluate(
        policies.greedy_action_fn(policy, name='qtopt'), make_env, num_episodes=num_episodes,
        num_envs=num_envs, appearance=appearance, object_split=object_split, seed=seed,
        progress_interval=1e9)
    done[step] = {'step': step, 'checkpoint_path': prefix,
                  **{key: result[key] for key in ('success_rate', 'ci95_low', 'ci95_high',
                                                  'num_successes', 'num_episodes')}}
    elapsed = time.time() - start
    eta = elapsed / (k + 1) * (len(todo) - k - 1)
    log(f'step {step}: {policy_eval.format_result(result)} | {k + 1}/{len(todo)} '
        f'({elapsed / (k + 1):.0f}s each, ETA {progress.format_seconds(eta)})')
    _write(output_json, settings, done)
  return _write(output_json, settings, done)


def _write(path, settings, done):
  candidates = [done[s] for s in sorted(done)]
  best = max(candidates, key=lambda c: (c['success_rate'], c['step']))
  selection = dict(settings, candidates=candidates, best=best)
  fileio.write_json_atomic(path, selection)
  return selection


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--run_dir', required=True, help='a train_qtopt root_dir')
  parser.add_argument('--appearance', default='sim')
  parser.add_argument('--object_split', default='train',
                      help="'train' (default: keeps the test objects unseen) or 'test'")
  parser.add_argument('--num_episodes', type=int, default=100)
  parser.add_argument('--seed', type=int, default=1000,
                      help='validation scene seed (the reporting evaluations use 0, 1, 2)')
  parser.add_argument('--num_envs', type=int, default=4)
  parser.add_argument('--min_step', type=int, default=0, help='skip earlier snapshots')
  parser.add_argument('--render_size', type=parse_size, default=None,
                      help="the run's (run_spec.json); a different value is an error")
  parser.add_argument('--action_mode', default=None,
                      help="the run's; a different value is an error")
  parser.add_argument('--gin_bindings', action='append', default=[])
  parser.add_argument('--output_json', default=None, help='default: RUN_DIR/selection.json')
  args = parser.parse_args(argv)
  if args.num_episodes < 1:
    parser.error('--num_episodes must be >= 1')
  try:
    selection = select(args.run_dir, args.appearance, args.object_split, args.num_episodes,
                       args.seed, args.num_envs, args.render_size, args.action_mode,
                       args.gin_bindings, args.output_json, args.min_step)
  except (FileNotFoundError, ValueError) as e:
    parser.error(str(e))
  best = selection['best']
  print(f"best: step {best['step']} ({100 * best['success_rate']:.1f}%, 95% CI "
        f"{100 * best['ci95_low']:.1f}-{100 * best['ci95_high']:.1f}%): "
        f"{best['checkpoint_path']}")
  return 0
