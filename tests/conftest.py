"""Shared test setup: quiet TF, small thread pools, clean gin state around every test."""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import gin  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()
