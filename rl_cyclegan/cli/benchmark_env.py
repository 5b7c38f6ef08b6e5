"""Prints GraspingEnv throughput. Example: tools/benchmark_env.py --episodes=20 --appearance=real"""

import argparse

from rl_cyclegan.envs import benchmark


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--episodes', type=int, default=20)
  parser.add_argument('--appearance', default='sim', choices=('sim', 'real', 'randomized'))
  parser.add_argument('--height', type=int, default=64)
  parser.add_argument('--width', type=int, default=80)
  parser.add_argument('--action_mode', default='auto_descend', choices=('auto_descend', 'full'))
  parser.add_argument('--num_objects', type=int, default=5)
  parser.add_argument('--policy', default='scripted', choices=('scripted', 'random'))
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args(argv)
  benchmark.benchmark_env(num_episodes=args.episodes, appearance=args.appearance,
                          render_size=(args.height, args.width), action_mode=args.action_mode,
                          num_objects=args.num_objects, policy=args.policy, seed=args.seed)
