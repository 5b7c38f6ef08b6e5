"""The main job: collect a pseudo-real log, train RL-CycleGAN, train the final Q with G frozen,
evaluate, export. About 15 minutes on 2 CPU cores; re-running resumes where it stopped.

  python tools/demo.py --root_dir=runs/demo
"""
import argparse
import dataclasses

from rl_cyclegan import demo


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--root_dir', default='runs/demo')
  defaults = demo.DemoConfig()
  for field in dataclasses.fields(demo.DemoConfig):
    parser.add_argument(f'--{field.name}', type=type(getattr(defaults, field.name)),
                        default=getattr(defaults, field.name))
  args = parser.parse_args(argv)
  config = demo.DemoConfig(**{f.name: getattr(args, f.name)
                              for f in dataclasses.fields(demo.DemoConfig)})
  demo.run(args.root_dir, config)
