"""Atomic writes: the complete file appears under its name, partial ones never do."""

import json
import os

import pytest

from rl_cyclegan import fileio
from rl_cyclegan.data import episodes


def test_write_json_atomic_creates_directory_and_round_trips(tmp_path):
  path = str(tmp_path / 'a' / 'b' / 'result.json')
  assert fileio.write_json_atomic(path, {'b': 1, 'a': [1.5, 'x']}) == path
  with open(path) as f:
    text = f.read()
  assert json.loads(text) == {'b': 1, 'a': [1.5, 'x']}
  assert text.index('"a"') < text.index('"b"') and text.endswith('\n')  # sorted, newline
  assert os.listdir(tmp_path / 'a' / 'b') == ['result.json']  # no temporary left


def test_failed_write_keeps_old_file_and_removes_temporary(tmp_path):
  path = str(tmp_path / 'result.json')
  fileio.write_json_atomic(path, {'old': True})
  with pytest.raises(TypeError):
    fileio.write_json_atomic(path, {'bad': object()})  # not JSON serializable
  with open(path) as f:
    assert json.load(f) == {'old': True}
  with pytest.raises(TypeError):
    fileio.write_text_atomic(path, 123)  # f.write(int) raises after the temporary is opened
  assert sorted(os.listdir(tmp_path)) == ['result.json']


def test_episode_listing_skips_a_file_left_by_an_interrupted_atomic_write(tmp_path):
  (tmp_path / 'episodes-00000.tfrecord').write_bytes(b'')
  (tmp_path / f'episodes-00001.tfrecord{fileio.TMP_MARKER}123').write_bytes(b'')
  assert [os.path.basename(p) for p in episodes.list_episode_files(tmp_path)] == [
      'episodes-00000.tfrecord']


def test_dumps_json_is_the_indented_json_with_scalar_lists_on_one_line():
  data = {'z': {'outcomes': [1, 0, 1], 'curve': [[0, 0.5], [100, 0.25]], 'empty': [], 'none': {}},
          'a': [{'x': 1}, 2], 'b': (1, 'two', None, True, float('nan')), 'nested': [[[1]]],
          'steps': {10: 'ten', 3: 'three'}}
  text = fileio.dumps_json(data)
  reference = json.dumps(data, indent=2, sort_keys=True)
  assert json.dumps(json.loads(text)) == json.dumps(json.loads(reference))  # same JSON, order
  lines = text.splitlines()
  assert '    "outcomes": [1, 0, 1]' in lines  # a scalar list on one line
  assert '    "curve": [[0, 0.5], [100, 0.25]],' in lines  # so is a list of [step, value]
  assert '  "b": [1, "two", null, true, NaN],' in lines
  assert '    {' in lines and '      "x": 1' in lines  # a list holding a dict is indented
  assert '    [[1]]' in lines  # three levels deep: the inner two lists are one line
  assert '    "3": "three",' in lines and '    "10": "ten"' in lines  # keys as json sorts them
  assert '    "empty": [],' in lines and '    "none": {},' in lines
  assert len(lines) < len(reference.splitlines()) / 2
