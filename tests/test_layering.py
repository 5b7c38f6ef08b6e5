"""Imports go downward only, and there is no import cycle (function-local imports included).

The layers, lowest first (BUILD.md "Layers"):
  0 base        specs, fileio, seeds, progress, lifecycle, checkpoints, cem, qtopt (the target
                value), losses, perf, hardware, plotting, gin_utils
  1 networks    rl_cyclegan/networks
  2 learners    rl_cyclegan/learners
  3 envs, data  rl_cyclegan/envs, rl_cyclegan/data
  4 actors, replay, evaluation
                rl_cyclegan/actors (policies, rollout, collect, reverb_actor),
                rl_cyclegan/replay (buffers, reverb_tables),
                rl_cyclegan/evaluation (policy_eval, scene_metrics, paired_set,
                segmentation_set, summaries), run_dir
  5 runner, pipelines
                rl_cyclegan/train (loop, runner, distributed, benchmark_actors),
                rl_cyclegan/pipelines (train_qtopt,
                train_rl_cyclegan, table1, generator_report), configurables, benchmark, demo
  6 export      rl_cyclegan/export
  7 tools       rl_cyclegan/cli, tools/

The same check from the command line: python tests/test_layering.py
"""

import ast
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = 'rl_cyclegan'

LAYERS = (
    ('base', ('specs', 'fileio', 'seeds', 'progress', 'lifecycle', 'checkpoints', 'cem',
              'qtopt', 'losses', 'perf', 'hardware', 'plotting', 'gin_utils')),
    ('networks', ('networks',)),
    ('learners', ('learners',)),
    ('envs/data', ('envs', 'data')),
    ('actors/replay/evaluation', ('actors', 'replay', 'evaluation', 'run_dir')),
    ('runner/pipelines', ('train', 'pipelines', 'configurables', 'benchmark',
                          'demo')),
    ('export', ('export',)),
    ('tools', ('cli',)),
)


def layer_of(module: str):
  """(index, name) of a module 'rl_cyclegan.x.y'; None for the package roots."""
  relative = module[len(PACKAGE) + 1:]
  best = None
  for index, (name, prefixes) in enumerate(LAYERS):
    for prefix in prefixes:
      if relative == prefix or relative.startswith(prefix + '.'):
        if best is None or len(prefix) > best[2]:
          best = (index, name, len(prefix))
  return None if best is None else best[:2]


def modules():
  """{module name: path} of every module in the package."""
  out = {}
  for directory, _, files in os.walk(os.path.join(REPO, PACKAGE)):
    for f in files:
      if f.endswith('.py'):
        path = os.path.join(directory, f)
        name = os.path.relpath(path, REPO)[:-3].replace(os.sep, '.')
        out[name[:-len('.__init__')] if name.endswith('.__init__') else name] = path
  return out


def import_graph():
  """{module: {imported package modules}}, function-local imports included."""
  known = modules()
  graph = {}
  for name, path in known.items():
    with open(path) as f:
      tree = ast.parse(f.read(), path)
    targets = set()
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        targets.update(a.name for a in node.names if a.name.split('.')[0] == PACKAGE)
      elif isinstance(node, ast.ImportFrom) and node.module and (
          node.module.split('.')[0] == PACKAGE):
        for a in node.names:
          full = f'{node.module}.{a.name}'
          targets.add(full if full in known else node.module)
    graph[name] = {t for t in targets if t in known and t != name}
  return graph


def violations(graph=None):
  """(unplaced modules, upward imports, cycles) of ``graph`` (default: the package's)."""
  graph = import_graph() if graph is None else graph
  unplaced = sorted(m for m in graph if m != PACKAGE and layer_of(m) is None
                    and not m.endswith(('.train', '.pipelines', '.export', '.networks',
                                        '.learners', '.envs', '.data')))
  upward = []
  for source, targets in sorted(graph.items()):
    ls = layer_of(source)
    for target in sorted(targets):
      lt = layer_of(target)
      if ls is not None and lt is not None and lt[0] > ls[0]:
        upward.append(f'{source} ({ls[1]}) imports {target} ({lt[1]})')
  cycles = []
  state = {}

  def visit(node, stack):
    state[node] = 1
    stack.append(node)
    for nxt in sorted(graph[node]):
      if state.get(nxt) == 1:
        cycles.append(' -> '.join(stack[stack.index(nxt):] + [nxt]))
      elif nxt not in state:
        visit(nxt, stack)
    stack.pop()
    state[node] = 2

  for node in sorted(graph):
    if node not in state:
      visit(node, [])
  return unplaced, upward, cycles


def test_every_module_has_a_layer():
  unplaced, _, _ = violations()
  assert not unplaced, f'modules without a layer (add them to LAYERS): {unplaced}'


def test_no_module_imports_upward():
  _, upward, _ = violations()
  assert not upward, 'upward imports:\n' + '\n'.join(upward)


def test_no_import_cycle():
  _, _, cycles = violations()
  assert not cycles, 'import cycles:\n' + '\n'.join(cycles)


def test_the_checker_sees_an_unplaced_module_an_upward_import_and_a_cycle():
  graph = {'rl_cyclegan.specs': {'rl_cyclegan.train.loop'},  # base -> runner: upward
           'rl_cyclegan.train.loop': {'rl_cyclegan.pipelines.train_qtopt'},
           'rl_cyclegan.pipelines.train_qtopt': {'rl_cyclegan.train.loop'},  # a same-layer cycle
           'rl_cyclegan.newthing': set()}
  unplaced, upward, cycles = violations(graph)
  assert unplaced == ['rl_cyclegan.newthing']
  assert upward == ['rl_cyclegan.specs (base) imports rl_cyclegan.train.loop (runner/pipelines)']
  assert len(cycles) == 1 and 'rl_cyclegan.pipelines.train_qtopt -> rl_cyclegan.train.loop' in cycles[0]
  assert layer_of('rl_cyclegan.networks.layers')[1] == 'networks'
  assert layer_of('rl_cyclegan.train') == (5, 'runner/pipelines')  # the package itself
  assert layer_of('rl_cyclegan.trainer') is None  # a prefix only matches whole names


if __name__ == '__main__':
  found = violations()
  for title, items in zip(('unplaced modules', 'upward imports', 'import cycles'), found):
    print(f'{title}: {len(items)}')
    for item in items:
      print(f'  {item}')
  sys.exit(1 if any(found) else 0)
