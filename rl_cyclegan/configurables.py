"""Imports every module that registers gin configurables.

Binaries and the gin test import this before parsing gin files, so an unknown configurable or
parameter in a gin file fails at parse time, naming the binding, before any work starts.
"""
# pylint: disable=unused-import
from rl_cyclegan.envs import scripted  # noqa: F401
from rl_cyclegan.envs import grasping  # noqa: F401
from rl_cyclegan.learners import critic  # noqa: F401
from rl_cyclegan.learners import rl_cyclegan  # noqa: F401
from rl_cyclegan.networks import discriminator  # noqa: F401
from rl_cyclegan.networks import generator  # noqa: F401
from rl_cyclegan.networks import q_network  # noqa: F401
from rl_cyclegan.actors import policies  # noqa: F401
from rl_cyclegan.learners import qtopt  # noqa: F401
from rl_cyclegan.pipelines import train_qtopt  # noqa: F401
from rl_cyclegan.pipelines import train_rl_cyclegan  # noqa: F401
from rl_cyclegan.train import runner  # noqa: F401
