"""Every file in gin/ parses and binds against the registered configurables."""
import glob
import os

import gin
import pytest

import rl_cyclegan.configurables  # noqa: F401  (registers every configurable)

GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'gin')
GIN_FILES = sorted(glob.glob(os.path.join(GIN_DIR, '*.gin')))


def test_there_are_gin_files():
  assert len(GIN_FILES) >= 2


@pytest.mark.parametrize('path', GIN_FILES, ids=os.path.basename)
def test_gin_file_parses_and_binds(path):
  gin.clear_config()
  gin.add_config_file_search_path(GIN_DIR)
  gin.parse_config_file(path)  # raises on unknown configurables / parameters
  gin.finalize()


def test_unknown_parameter_fails_naming_the_binding():
  gin.clear_config()
  with pytest.raises(ValueError, match='UNetGenerator.filterz'):
    gin.parse_config('UNetGenerator.filterz = (8,)')
