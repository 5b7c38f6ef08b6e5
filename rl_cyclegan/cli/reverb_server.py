r"""The Reverb server of distributed QT-Opt collection, as its own process.

The learner starts it with Actors.separate_server = True (train/distributed.py): it outlives a
killed learner, so the restarted learner finds every insert. It restores the newest checkpoint
in --checkpoint_dir, serves until SIGTERM, then writes a checkpoint. Its gin is the learner's
<root_dir>/actors/actor.gin (sizes, capacity, the Q-network whose weights it holds).

  python tools/reverb_server.py --checkpoint_dir=runs/x/replay/reverb --port=8000 \
      --gin_file=runs/x/actors/actor.gin
"""
import argparse
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

from rl_cyclegan import configurables  # noqa: E402,F401  (registers the configurables)
from rl_cyclegan import gin_utils  # noqa: E402
from rl_cyclegan.networks import q_network as q_network_lib  # noqa: E402
from rl_cyclegan.train import distributed  # noqa: E402
from rl_cyclegan.train import loop  # noqa: E402
from rl_cyclegan.train import runner  # noqa: E402


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--checkpoint_dir', required=True)
  parser.add_argument('--port', required=True, type=int)
  parser.add_argument('--return_discount', default=None, type=float,
                      help='set when the learner stores Monte Carlo returns (its gamma)')
  parser.add_argument('--gin_file', action='append', default=[], help='repeatable')
  parser.add_argument('--gin_bindings', action='append', default=[], help='repeatable')
  args = parser.parse_args(argv)
  try:
    gin_utils.parse_gin(args.gin_file, args.gin_bindings)
  except (ValueError, TypeError, SyntaxError, IOError) as e:
    print(f'gin config error: {e}', file=sys.stderr)
    return 2
  settings = runner.Settings()
  q_network = q_network_lib.GraspingQNetwork(crop_size=settings.environment.crop_size, name='Q')
  q_network.create_variables()  # the variable table's signature: the learner's Q-network
  distributed.serve(args.checkpoint_dir, settings, q_network.variables, args.port,
                    args.return_discount, log=loop.make_logger('reverb_server'))
  return 0


if __name__ == '__main__':
  sys.exit(main())
