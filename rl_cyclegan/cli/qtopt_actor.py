r"""A QT-Opt actor process: its own envs and CEM policy, episodes into the learner's Reverb table.

The learner starts these itself with Actors.num_local_actors (train/distributed.py). On another
machine, point one at the learner's server (Actors.reverb_port) with the learner's gin, which it
writes to <root_dir>/actors/actor.gin:

  python tools/qtopt_actor.py --reverb_address=learner-host:8000 --actor_id=7 \
      --gin_file=/runs/qtopt/actors/actor.gin

The actor pulls the learner's weights (TF-Agents' ReverbVariableContainer), runs one episode
per env per round and inserts each finished episode's transitions, until the server goes away
(the learner finished or died). See rl_cyclegan/actors/reverb_actor.py.
"""
import argparse
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan import configurables  # noqa: E402,F401  (registers the configurables)
from rl_cyclegan import gin_utils  # noqa: E402
from rl_cyclegan.pipelines import train_qtopt  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--reverb_address', required=True, help='host:port of the learner')
  parser.add_argument('--actor_id', required=True, type=int,
                      help='distinct per actor: derives its env, episode and policy seeds')
  parser.add_argument('--seed', default=0, type=int, help='the run seed (train_eval.seed)')
  parser.add_argument('--return_discount', default=None, type=float,
                      help='set when the learner stores Monte Carlo returns (its gamma)')
  parser.add_argument('--max_episodes', default=None, type=int, help='default: until the '
                      'server goes away')
  parser.add_argument('--threads', default=1, type=int,
                      help='TensorFlow intra/inter-op threads (actors share the machine)')
  parser.add_argument('--gin_file', action='append', default=[], help='repeatable')
  parser.add_argument('--gin_bindings', action='append', default=[], help='repeatable')
  args = parser.parse_args(argv)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(args.threads)
  tf.config.threading.set_inter_op_parallelism_threads(args.threads)
  try:
    gin_utils.parse_gin(args.gin_file, args.gin_bindings)
  except (ValueError, TypeError, SyntaxError, IOError) as e:
    print(f'gin config error: {e}', file=sys.stderr)
    return 2
  log = train_qtopt.loop.make_logger(f'qtopt_actor-{args.actor_id}')
  train_qtopt.run_actor(args.reverb_address, args.actor_id, args.seed,
                        return_discount=args.return_discount, max_episodes=args.max_episodes,
                        log=log)
  return 0


if __name__ == '__main__':
  sys.exit(main())
