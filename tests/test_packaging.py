"""pyproject.toml against the checkout: packages, one console script per tools/*.py, thin tools."""
import glob
import importlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tomllib

import pytest
import setuptools

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(REPO, 'tools', '*.py')))
# A cheap tool to run for real (argparse and Pillow only).
CHEAP_TOOL = 'plot_curves'


def _pyproject():
  with open(os.path.join(REPO, 'pyproject.toml'), 'rb') as f:
    return tomllib.load(f)


def _scripts():
  return _pyproject()['project']['scripts']


def _target(entry_point):
  """'pkg.mod:func' -> the callable."""
  module, _, attr = entry_point.partition(':')
  return getattr(importlib.import_module(module), attr)


def _load_tool(name):
  spec = importlib.util.spec_from_file_location(f'tools_{name}',
                                                os.path.join(REPO, 'tools', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_project_metadata():
  project = _pyproject()['project']
  assert project['name'] == 'rl_cyclegan' and project['version'] == '0.1.0'
  assert project['requires-python'] == '>=3.11'
  # One pin list: the dependencies are read from requirements.txt, not repeated here.
  assert 'dependencies' not in project and project['dynamic'] == ['dependencies']
  assert _pyproject()['tool']['setuptools']['dynamic']['dependencies'] == {
      'file': ['requirements.txt']}


def test_every_package_directory_is_found():
  on_disk = {os.path.relpath(os.path.dirname(p), REPO).replace(os.sep, '.')
             for p in glob.glob(os.path.join(REPO, 'rl_cyclegan', '**', '*.py'), recursive=True)}
  find = _pyproject()['tool']['setuptools']['packages']['find']
  found = set(setuptools.find_packages(REPO, include=find['include']))
  missing_init = sorted(d for d in on_disk if d not in found)
  assert not missing_init, f'directories with modules but no __init__.py: {missing_init}'
  assert found == on_disk
  assert {'rl_cyclegan.cli', 'rl_cyclegan.data', 'rl_cyclegan.envs', 'rl_cyclegan.export',
          'rl_cyclegan.learners', 'rl_cyclegan.networks', 'rl_cyclegan.pipelines',
          'rl_cyclegan.train'} <= found


def test_one_console_script_per_tool_and_no_others():
  assert len(TOOLS) >= 18, TOOLS
  expected = {f'rl-cyclegan-{n.replace("_", "-")}': f'rl_cyclegan.cli.{n}:main' for n in TOOLS}
  assert _scripts() == expected


@pytest.mark.parametrize('name', TOOLS)
def test_tool_is_a_thin_entry_point_to_its_console_script(name):
  path = os.path.join(REPO, 'tools', f'{name}.py')
  with open(path) as f:
    source = f.read()
  assert 'sys.path' not in source, f'{path} edits sys.path; the package is installed instead'
  assert len(source.splitlines()) <= 15, f'{path} is not a thin entry point'
  target = _target(_scripts()[f'rl-cyclegan-{name.replace("_", "-")}'])
  assert callable(target)
  assert _load_tool(name).main is target  # python tools/<name>.py runs the console script's code


@pytest.mark.parametrize('name', TOOLS)
def test_help_exits_zero(name, capsys):
  with pytest.raises(SystemExit) as exit_info:
    _target(_scripts()[f'rl-cyclegan-{name.replace("_", "-")}'])(['--help'])
  assert exit_info.value.code == 0
  assert 'usage:' in capsys.readouterr().out


def test_cheap_tool_runs_as_a_script_and_as_its_main(tmp_path):
  run = tmp_path / 'run'
  os.makedirs(run / 'eval')
  with open(run / 'eval' / 'eval_00000010.json', 'w') as f:
    json.dump({'step': 10, 'results': {'sim': {'success_rate': 0.5, 'ci95_low': 0.3,
                                               'ci95_high': 0.7}}}, f)
  out = tmp_path / 'curves.png'
  env = dict(os.environ, PYTHONPATH=REPO)
  proc = subprocess.run([sys.executable, os.path.join(REPO, 'tools', f'{CHEAP_TOOL}.py'),
                         f'--run=A={run}', f'--output={out}'],
                        capture_output=True, text=True, env=env, timeout=600, check=False)
  assert proc.returncode == 0, proc.stderr
  assert out.exists() and f'wrote {out}' in proc.stdout
  # The same code in-process, through the console script's target: a bad flag exits 2.
  with pytest.raises(SystemExit) as exit_info:
    _target(_scripts()['rl-cyclegan-plot-curves'])([f'--run=A={run}'])
  assert exit_info.value.code == 2


def test_tool_refuses_another_checkouts_package(tmp_path):
  """A venv shared by two checkouts: tools/x.py of one must not run the other's code."""
  os.makedirs(tmp_path / 'other' / 'tools')
  tool = tmp_path / 'other' / 'tools' / f'{CHEAP_TOOL}.py'
  shutil.copy(os.path.join(REPO, 'tools', f'{CHEAP_TOOL}.py'), tool)
  env = dict(os.environ, PYTHONPATH=REPO)
  proc = subprocess.run([sys.executable, str(tool), '--help'], capture_output=True, text=True,
                        env=env, timeout=600, check=False)
  assert proc.returncode == 2 and 'usage:' not in proc.stdout
  assert str(tmp_path / 'other') in proc.stderr and REPO in proc.stderr


def _installed_here():
  """The installed rl_cyclegan distribution if it is this checkout, editable; else None."""
  try:
    dist = importlib.metadata.distribution('rl_cyclegan')
  except importlib.metadata.PackageNotFoundError:
    return None
  direct_url = json.loads(dist.read_text('direct_url.json') or '{}')
  if direct_url.get('url', f'file://{REPO}') != f'file://{REPO}':
    return None  # installed from another checkout (pip without build isolation records none)
  return dist


def test_installed_console_scripts_match_pyproject():
  dist = _installed_here()
  if dist is None:
    pytest.skip('this checkout is not pip-installed (make setup installs it)')
  installed = {ep.name: ep.value for ep in dist.entry_points if ep.group == 'console_scripts'}
  assert installed == _scripts(), 'pyproject.toml changed since the install: run make setup'
