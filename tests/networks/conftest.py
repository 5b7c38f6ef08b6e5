"""Fixtures shared by the network tests."""
import pytest
import tensorflow as tf


@pytest.fixture
def bf16_policy():
  """Builds networks under the global 'mixed_bfloat16' policy; restores float32 afterwards."""
  tf.keras.mixed_precision.set_global_policy('mixed_bfloat16')
  yield
  tf.keras.mixed_precision.set_global_policy('float32')
