"""The simulation-to-real environment of paper Fig. 6: the simulator seen through a frozen G.

"Images from a simulator are transformed by Sim2Real generator G and then passed to Q_real to
generate an action. In this way, on-policy (w.r.t Q_real) episodes are generated in the
simulation-to-real environment" (Appendix A). ``Sim2RealEnv`` wraps a GraspingEnv and replaces
every observed image by ``frame_transform(image)`` (``data.translation.FrameTranslator``: G on
the whole frame, rounded to uint8), so each rendered frame is translated exactly once: the
episode recorded from it, the replay and the policy all see G's output. Everything else
(seeding, success, grasp distance, paired renders) is the wrapped env's.
"""

from typing import Callable

import numpy as np
from tf_agents.environments import wrappers


class Sim2RealEnv(wrappers.PyEnvironmentBaseWrapper):
  """A PyEnvironment whose observation images are ``frame_transform`` of the wrapped env's."""

  def __init__(self, env, frame_transform: Callable):
    """``frame_transform``: an object with ``translate(uint8 [N, H, W, 3]) -> uint8``."""
    super().__init__(env)
    self._frame_transform = frame_transform

  def _translate(self, time_step):
    observation = dict(time_step.observation)
    image = np.asarray(observation['image'])
    observation['image'] = self._frame_transform.translate(image[None])[0]  # [H, W, 3] uint8
    return time_step._replace(observation=observation)

  def _reset(self):
    return self._translate(self._env.reset())

  def _step(self, action):
    return self._translate(self._env.step(action))
