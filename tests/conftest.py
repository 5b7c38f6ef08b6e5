"""Shared test setup: quiet TF, small thread pools, clean gin state around every test."""
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import gin  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPU devices, so tf.distribute.MirroredStrategy can be tested on one machine.
# Must happen before TF initializes its devices, i.e. before any test runs an op.
_cpus = tf.config.list_physical_devices('CPU')
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


@pytest.fixture
def mirrored_strategy():
  """The process's one MirroredStrategy over the two logical CPUs (see loop.make_strategy)."""
  from rl_cyclegan.train import loop  # pylint: disable=g-import-not-at-top
  strategy = loop.make_strategy('mirrored')
  assert strategy.num_replicas_in_sync == 2, strategy.extended.worker_devices
  return strategy
