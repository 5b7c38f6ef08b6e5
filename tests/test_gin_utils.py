"""The shared training-binary helper: gin parsing, includes, exit codes."""
import logging

import gin
import pytest

from rl_cyclegan import configurables  # noqa: F401
from rl_cyclegan import gin_utils
from rl_cyclegan.train import loop


def test_includes_resolve_from_the_gin_dir_without_error_logs(tmp_path, caplog):
  config = tmp_path / 'mine.gin'
  config.write_text("include 'networks_small.gin'\nUNetGenerator.kernel_size = 5\n")
  with caplog.at_level(logging.ERROR):
    gin_utils.parse_gin([str(config)], ['UNetGenerator.power_iterations = 2'])
  assert gin.query_parameter('UNetGenerator.filters') == (16, 32, 64, 128)  # from the include
  assert gin.query_parameter('UNetGenerator.kernel_size') == 5
  assert gin.query_parameter('UNetGenerator.power_iterations') == 2
  assert not [r for r in caplog.records if 'Path not found' in r.getMessage()]


def test_missing_gin_file_is_named(tmp_path):
  with pytest.raises(ValueError, match='nope.gin'):
    gin_utils.parse_gin([str(tmp_path / 'nope.gin')], [])


def test_exit_codes(tmp_path, capsys):
  calls = []

  def ok(root_dir):
    calls.append(root_dir)

  def interrupted(root_dir):
    raise loop.Terminate()

  root = str(tmp_path / 'run')
  assert gin_utils.run_training_binary('doc', ok, 'x = 1', ['--root_dir', root]) == 0
  assert calls == [root]
  gin.clear_config()  # parsing finalizes (locks) the config, as once per process in a binary
  assert gin_utils.run_training_binary(
      'doc', ok, 'x = 1', ['--root_dir', root, '--gin_bindings', 'UNetGenerator.filterz = 1']) == 2
  assert 'filterz' in capsys.readouterr().err
  gin.clear_config()
  assert gin_utils.run_training_binary('doc', interrupted, 'x = 1', ['--root_dir', root]) == 130
  assert 'run the same command again to resume' in capsys.readouterr().err


@pytest.mark.parametrize('text, message', [
    ('train_eval.num_train_steps = (3', 'unclosed bracket or quote; it starts at or before line 1'),
    ('Environment.num_envs = 1\ntrain_eval.batch_size = 4 4\n', 'line 2'),
])
def test_gin_syntax_errors_name_the_file_or_binding_and_line(tmp_path, capsys, text, message):
  path = tmp_path / 'bad.gin'
  path.write_text(text)
  root = tmp_path / 'run'
  with pytest.raises(ValueError, match=message) as info:
    gin_utils.parse_gin([str(path)], [])
  assert str(path) in str(info.value)
  first_line = text.splitlines()[0]
  with pytest.raises(ValueError, match='--gin_bindings') as info:
    gin_utils.parse_gin([], [first_line] if '(' in first_line else text.splitlines()[1:])
  assert gin_utils.run_training_binary('doc', lambda r: None, 'x.y = 1',
                                       ['--root_dir', str(root), '--gin_file', str(path)]) == 2
  assert 'gin config error' in capsys.readouterr().err and not root.exists()


def test_a_run_stopped_by_a_bad_setting_leaves_no_directory(tmp_path):
  root = tmp_path / 'run'

  def train_eval(root_dir):
    raise TypeError("train_eval.num_train_steps = 'abc': expected an integer >= 0")

  with pytest.raises(TypeError, match='num_train_steps'):
    gin_utils.run_training_binary('doc', train_eval, 'x.y = 1', ['--root_dir', str(root)])
  assert not root.exists()
