"""Shared test setup: quiet TF, small thread pools, clean gin state around every test."""
import contextlib
import glob
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
def _seed_random_streams():
  """Every test starts from the same Python, NumPy and TF seeds, as tf.test.TestCase's setUp
  does, so a test's fresh weights do not depend on which tests pytest-xdist ran before it in the
  same worker (one CI run drew a fresh Q init that failed a threshold; session 33)."""
  tf.keras.utils.set_random_seed(0)


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


@pytest.fixture
def eager_train_steps(request):
  """Runs tf.functions (train steps, CEM) eagerly, except in the tests marked ``traced``.

  Most joint-step tests check what one step does (which networks change, which values it
  reports, which errors it raises); the step's code is the same eagerly and as a tf.function, and
  tracing the joint step costs ~20 s at these sizes against ~1.5 s for an eager step (AMD EPYC,
  session 18). The tests marked ``traced`` run it as training does: a tf.function, every loss on,
  over several steps, in bf16 and under MirroredStrategy.
  """
  tf.config.run_functions_eagerly(request.node.get_closest_marker('traced') is None)
  yield
  tf.config.run_functions_eagerly(False)


@contextlib.contextmanager
def _eagerly():
  tf.config.run_functions_eagerly(True)
  try:
    yield
  finally:
    tf.config.run_functions_eagerly(False)


@pytest.fixture
def eagerly():
  """``with eagerly(): ...`` runs tf.functions eagerly inside the block.

  For the second half of a traced test whose tf.functions are already covered by its first half,
  e.g. a resumed run: a new learner would trace its step again (~10-20 s) to test what resuming
  does.
  """
  return _eagerly


@pytest.fixture
def mirrored_strategy():
  """The process's one MirroredStrategy over the two logical CPUs (see loop.make_strategy)."""
  from rl_cyclegan.train import loop  # pylint: disable=g-import-not-at-top
  strategy = loop.make_strategy('mirrored')
  assert strategy.num_replicas_in_sync == 2, strategy.extended.worker_devices
  return strategy


def _summary_tags(logdir):
  """{tag: plugin name} of every summary in a directory's event files."""
  out = {}
  for path in glob.glob(os.path.join(logdir, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        out[v.tag] = v.metadata.plugin_data.plugin_name
  return out


@pytest.fixture
def summary_tags():
  """``summary_tags(logdir)``: {tag: plugin name} of the summaries written there."""
  return _summary_tags


@pytest.fixture
def summary_scalars():
  """``summary_scalars(logdir, tag)``: {step: value} of one scalar summary written there."""

  def read(logdir, tag):
    out = {}
    for path in glob.glob(os.path.join(logdir, 'events.out.tfevents.*')):
      for event in tf.compat.v1.train.summary_iterator(path):
        for v in event.summary.value:
          if v.tag == tag:
            out[event.step] = float(tf.make_ndarray(v.tensor))
    return out

  return read
