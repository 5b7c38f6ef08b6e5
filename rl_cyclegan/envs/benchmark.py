"""Throughput of GraspingEnv: steps/s, episodes/s per core, time in rendering vs physics."""

import time

import numpy as np

from rl_cyclegan.envs import grasping
from rl_cyclegan.envs import scripted


def benchmark_env(num_episodes=20, appearance='sim', render_size=(64, 80),
                  action_mode='auto_descend', num_objects=5, policy='scripted', seed=0,
                  print_fn=print):
  """Runs ``num_episodes`` episodes in one process (one core) and prints/returns figures.

  Time shares come from the env's own timers: 'physics' (all stepSimulation calls, including
  the settling in reset), 'render' (getCameraImage + post-processing); the rest is Python
  overhead (IK, policy, object loading, tf_agents time steps).
  """
  t0 = time.perf_counter()
  env = grasping.GraspingEnv(appearance=appearance, render_size=render_size,
                             action_mode=action_mode, num_objects=num_objects, seed=seed)
  construct_s = time.perf_counter() - t0
  if policy == 'scripted':
    pol = scripted.ScriptedGraspPolicy(env, seed=seed)
  elif policy == 'random':
    pol = scripted.RandomPolicy(env, seed=seed)
  else:
    raise ValueError(f"policy must be 'scripted' or 'random', got {policy!r}")
  steps, successes, reset_times, step_times = 0, 0, [], []
  start = time.perf_counter()
  for _ in range(num_episodes):
    t = time.perf_counter()
    time_step = env.reset()
    reset_times.append(time.perf_counter() - t)
    pol.reset()
    while not time_step.is_last():
      action = pol.action(time_step)
      t = time.perf_counter()
      time_step = env.step(action)
      step_times.append(time.perf_counter() - t)
      steps += 1
    successes += env.episode_success
  wall = time.perf_counter() - start
  timers = env.timers
  env.close()
  result = {
      'construct_ms': 1e3 * construct_s,
      'reset_ms_median': 1e3 * float(np.median(reset_times)),
      'step_ms_median': 1e3 * float(np.median(step_times)),
      'step_ms_mean': 1e3 * float(np.mean(step_times)),
      'steps_per_s': steps / wall,
      'episodes_per_s': num_episodes / wall,
      'physics_share': timers['physics'] / wall,
      'render_share': timers['render'] / wall,
      'success_rate': successes / num_episodes,
      'episodes': num_episodes,
      'steps': steps,
  }
  print_fn(f'GraspingEnv benchmark: {num_episodes} episodes, appearance={appearance}, '
           f'render_size={tuple(render_size)}, action_mode={action_mode}, policy={policy}, '
           f'num_objects={num_objects}')
  print_fn(f"  construct {result['construct_ms']:.0f} ms; reset median "
           f"{result['reset_ms_median']:.1f} ms; step median {result['step_ms_median']:.1f} ms "
           f"(mean {result['step_ms_mean']:.1f} ms, includes the final grasp+lift step)")
  print_fn(f"  {result['steps_per_s']:.1f} env steps/s, {result['episodes_per_s']:.2f} "
           f"episodes/s on one core")
  print_fn(f"  time share: physics {100 * result['physics_share']:.0f}%, rendering "
           f"{100 * result['render_share']:.0f}%, other (IK, policy, loading) "
           f"{100 * (1 - result['physics_share'] - result['render_share']):.0f}%")
  print_fn(f"  success rate {result['success_rate']:.2f} ({successes}/{num_episodes})")
  return result
