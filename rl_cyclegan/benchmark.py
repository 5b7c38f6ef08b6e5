"""Benchmark of the joint RL-CycleGAN train step (issue: core model).

For each config (network gin file, crop size, batch) and precision, builds the learner, traces
the step once, counts the step's conv/matmul FLOPs from the traced graph, times a few steps and
prints ms/step, images/s, achieved GFLOP/s and that as a fraction of a matmul peak measured in
the same process for the same precision. The counted FLOPs omit elementwise work (norms,
activations, Adam), so the achieved figure is a lower bound.

The header names the CPU and whether it has native bf16 arithmetic (``hardware.cpu_info``).
bf16 rows always run in bf16 (``mixed_precision='force'``), also where training would fall
back to float32: measuring that slowdown is the point there, and the row says so.
"""

import dataclasses
import os
import time
from typing import List, Sequence

import gin
import numpy as np
import tensorflow as tf

from rl_cyclegan import gin_utils
from rl_cyclegan import hardware
from rl_cyclegan import perf
from rl_cyclegan import specs
from rl_cyclegan.learners import qtopt as qtopt_learner
from rl_cyclegan.learners import rl_cyclegan as learner_lib

GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'gin')


@dataclasses.dataclass(frozen=True)
class StepConfig:
  name: str
  gin_file: str
  crop_size: Sequence[int]
  batch_per_domain: int
  steps: int


CONFIGS = {
    'small': StepConfig('small', 'networks_small.gin', (64, 64), 8, 10),
    'paper': StepConfig('paper', 'networks_paper.gin', specs.PAPER_CROP_SIZE, 8, 2),
}


def random_batch(batch: int, crop_size: Sequence[int], seed: int) -> specs.Transition:
  rng = np.random.default_rng(seed)

  def obs():
    return {'image': tf.constant(rng.uniform(-1, 1, (batch, *crop_size, 3)), tf.float32),
            'gripper_state': tf.constant(rng.uniform(0, 1, (batch, 2)), tf.float32)}

  action = specs.encode_action(rng.uniform(-1, 1, (batch, 4)), rng.integers(0, 4, batch))
  reward = tf.constant(rng.integers(0, 2, batch), tf.float32)
  return specs.Transition(obs(), action, reward, obs(), reward)


def benchmark_step(config: StepConfig, mixed_precision: bool, peak_gflops: float,
                   steps: int = None) -> dict:
  """Builds, traces and times the joint step for one config and precision."""
  gin.clear_config()
  gin.parse_config_file(os.path.join(GIN_DIR, config.gin_file))
  tf.random.set_seed(0)
  learner = learner_lib.RLCycleGANLearner(crop_size=config.crop_size,
                                          mixed_precision='force' if mixed_precision else False)
  sim = random_batch(config.batch_per_domain, config.crop_size, 1)
  real = random_batch(config.batch_per_domain, config.crop_size, 2)
  start = time.perf_counter()
  flops_by_op = perf.concrete_flops(learner._train_step_fn, sim, real)  # pylint: disable=protected-access
  trace_s = time.perf_counter() - start
  flops = sum(flops_by_op.values())
  timing = perf.time_calls(lambda: learner.train_step(sim, real).total,
                           steps=steps or config.steps, warmup=1)
  step_s = timing['median_s']
  gflops = flops / step_s / 1e9
  return {
      'config': config.name,
      'precision': 'bf16' if learner.compute_dtype == 'bfloat16' else 'f32',
      'crop': 'x'.join(map(str, config.crop_size)),
      'batch': f'{config.batch_per_domain}+{config.batch_per_domain}',
      'trace_s': trace_s, 'first_step_s': timing['warmup_s'], 'ms_per_step': 1e3 * step_s,
      'images_per_s': 2 * config.batch_per_domain / step_s,
      'gflop_per_step': flops / 1e9, 'gflops': gflops,
      'peak_gflops': peak_gflops, 'fraction_of_peak': gflops / peak_gflops,
  }


def _max_rss_gb() -> float:
  import resource  # pylint: disable=g-import-not-at-top
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def run(config_names: Sequence[str] = ('small', 'paper'),
        precisions: Sequence[str] = ('f32', 'bf16'), steps: int = None,
        batch_per_domain: int = None) -> List[dict]:
  """Runs the benchmark and prints one line per (config, precision).

  ``batch_per_domain`` overrides the configs' batch (8 + 8). The paper config at 8 + 8 needs
  about 40 GB in float32 (measured: 6.5 GB at 1 + 1, 11.4 GB at 2 + 2), more than a 24 GB
  machine has; pass a smaller batch there.
  """
  cpu = hardware.cpu_info()
  print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPUs; '
        f'intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or "auto"}')
  print(f'CPU {cpu.describe()}')
  # What a bf16 row ran as: forced bf16 everywhere; training with mixed_precision=True would
  # use float32 on a CPU without native bf16.
  bf16_note = ('native bf16' if cpu.native_bf16 else
               'bf16 forced: no native bf16 on this CPU, so training with mixed_precision=True '
               'would fall back to f32')
  dtypes = {'f32': tf.float32, 'bf16': tf.bfloat16}
  rows = []
  for name in config_names:
    if name not in CONFIGS:
      raise ValueError(f'unknown benchmark config {name!r}; expected one of {sorted(CONFIGS)}')
    for precision in precisions:
      if precision not in dtypes:
        raise ValueError(f'unknown precision {precision!r}; expected f32 or bf16')
      # The peak is measured right before each row, so both see the same machine load.
      peak = perf.matmul_peak_gflops(dtypes[precision])
      config = CONFIGS[name]
      if batch_per_domain:
        config = dataclasses.replace(config, batch_per_domain=batch_per_domain)
      row = benchmark_step(config, precision == 'bf16', peak, steps)
      row['native_bf16'] = cpu.native_bf16
      rows.append(row)
      note = f' [{bf16_note}]' if precision == 'bf16' else ''
      print(f'  {row["config"]:5s} {row["precision"]:4s} crop {row["crop"]} batch {row["batch"]}: '
            f'{row["ms_per_step"]:9.1f} ms/step, {row["images_per_s"]:7.1f} images/s, '
            f'{row["gflop_per_step"]:8.2f} GFLOP/step, {row["gflops"]:6.1f} GFLOP/s = '
            f'{100 * row["fraction_of_peak"]:5.1f}% of {precision} matmul peak '
            f'({row["peak_gflops"]:.0f} GFLOP/s) '
            f'(trace {row["trace_s"]:.1f} s, first step {row["first_step_s"]:.1f} s, '
            f'peak RSS so far {_max_rss_gb():.1f} GB){note}', flush=True)
  return rows


# --- QT-Opt train step (tools/benchmark_qtopt.py) ------------------------------------------------


def benchmark_qtopt_step(gin_file: str, crop_size: Sequence[int], batch: int,
                         done_fraction: float, skip_terminal_targets: bool, peak_gflops: float,
                         steps: int = 20) -> dict:
  """Times ``QTOptLearner.train_step`` on a fixed random sim batch (Sim-Only: no real batch).

  ``done_fraction`` of the transitions are terminal (1/5 in 5-step ``auto_descend`` episodes).
  FLOPs are counted only with ``skip_terminal_targets=False``: skipping puts the target
  networks and CEM under a ``tf.cond``, which the counter does not expand.
  """
  if not 0.0 <= done_fraction <= 1.0:
    raise ValueError(f'done_fraction must be in [0, 1], got {done_fraction}')
  gin.clear_config()
  gin_utils.parse_gin([os.path.join(GIN_DIR, gin_file)],
                      [f'QTOptCritic.skip_terminal_targets = {skip_terminal_targets}'])
  tf.random.set_seed(0)
  learner = qtopt_learner.QTOptLearner(crop_size=crop_size)
  sim = random_batch(batch, crop_size, 1)
  num_done = int(round(done_fraction * batch))
  done = tf.constant(np.arange(batch) < num_done, tf.float32)
  sim = sim._replace(done=done, reward=sim.reward * done)
  flops = 0
  if not skip_terminal_targets:
    flops = sum(perf.concrete_flops(learner._train_step_fn, sim, None).values())  # pylint: disable=protected-access
  timing = perf.time_calls(lambda: learner.train_step(sim).loss, steps=steps, warmup=2)
  step_s = timing['median_s']
  return {'batch': batch, 'crop': 'x'.join(map(str, crop_size)), 'done_fraction': done_fraction,
          'skip_terminal_targets': skip_terminal_targets, 'ms_per_step': 1e3 * step_s,
          'transitions_per_s': batch / step_s, 'gflop_per_step': flops / 1e9,
          'gflops': flops / step_s / 1e9, 'peak_gflops': peak_gflops}


def run_qtopt(gin_file: str = 'networks_spatial.gin', crop_size: Sequence[int] = (64, 64),
              batches: Sequence[int] = (32, 64), done_fraction: float = 0.2,
              steps: int = 20) -> List[dict]:
  """Prints ms/step of the QT-Opt step per batch, skipping terminal targets or not, and the
  speed-up of skipping, both measured in this process."""
  print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPUs; QT-Opt step, {gin_file}, crop '
        f'{"x".join(map(str, crop_size))}, {100 * done_fraction:.0f}% terminal transitions')
  rows = []
  for batch in batches:
    peak = perf.matmul_peak_gflops(tf.float32)
    pair = [benchmark_qtopt_step(gin_file, crop_size, batch, done_fraction, skip, peak, steps)
            for skip in (False, True)]
    for row in pair:
      line = (f'  batch {batch:4d} skip_terminal_targets={str(row["skip_terminal_targets"]):5s}: '
              f'{row["ms_per_step"]:8.1f} ms/step, {row["transitions_per_s"]:7.1f} '
              'transitions/s')
      if row['gflop_per_step']:
        line += (f', {row["gflop_per_step"]:.2f} GFLOP/step, {row["gflops"]:.1f} GFLOP/s = '
                 f'{100 * row["gflops"] / peak:.1f}% of the f32 matmul peak ({peak:.0f} GFLOP/s)')
      print(line, flush=True)
    print(f'  batch {batch:4d}: skipping terminal targets is '
          f'{pair[0]["ms_per_step"] / pair[1]["ms_per_step"]:.2f}x faster', flush=True)
    rows.extend(pair)
  return rows


def run_final_q(gin_file: str = 'networks_spatial.gin', crop_size: Sequence[int] = (64, 64),
                render_size: Sequence[int] = specs.DEFAULT_RENDER_SIZE, batch: int = 32,
                episodes: int = 200, steps: int = 30) -> List[dict]:
  """Train steps/s (replay sample + train step) of Sim-Only, of the final Q with the cached G
  (translated frames in the replay) and of the final Q with G in every step, in one process.

  The cached path should cost what Sim-Only costs (issue 18: within 10%). Also prints how fast
  G translates whole frames once (the cost the cache moves out of the train step).
  """
  from rl_cyclegan.data import episodes as episodes_lib  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.data import translation  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.networks import generator as generator_lib  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.replay import buffers as replay_lib  # pylint: disable=g-import-not-at-top
  gin.clear_config()
  gin_utils.parse_gin([os.path.join(GIN_DIR, gin_file)], [])
  print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPUs; final-Q step, {gin_file}, render '
        f'{"x".join(map(str, render_size))}, crop {"x".join(map(str, crop_size))}, batch {batch}, '
        f'{episodes} synthetic 5-step episodes per replay')
  tf.random.set_seed(0)
  generator = generator_lib.UNetGenerator(name='G_sim2real')
  generator(tf.zeros([1, *crop_size, 3]), training=False)
  raw = [episodes_lib.synthetic_episode(5, render_size, seed=i) for i in range(episodes)]
  translator = translation.FrameTranslator(generator)
  start = time.perf_counter()
  translated = [translation.translate_episode(translator, e) for e in raw]
  seconds = time.perf_counter() - start
  frames = sum(len(e.images) for e in raw)
  print(f'  translating once: {frames} frames in {seconds:.1f}s = {frames / seconds:.0f} '
        'frames/s (episode by episode, as the cache does)')

  def replay_of(eps):
    replay = replay_lib.TransitionReplay(render_size, 10 * episodes * 5, name='bench')
    replay_lib.refill(replay, eps)
    return replay

  steps_fns = {}
  for name, eps, transform in (('sim_only', raw, None), ('final_q_cached_g', translated, None),
                               ('final_q_g_every_step', raw, generator)):
    replay = replay_of(eps)
    learner = qtopt_learner.QTOptLearner(crop_size=crop_size, image_transform=transform)
    steps_fns[name] = (lambda replay=replay, learner=learner: float(
        learner.train_step(replay.sample(batch, crop_size, training=True)).loss))
    for _ in range(2):  # trace and warm up
      steps_fns[name]()
  # Round robin (one step of each in turn), so a load change on the machine hits all alike.
  times = {name: [] for name in steps_fns}
  for _ in range(steps):
    for name, fn in steps_fns.items():
      t0 = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - t0)
  rows = [{'name': name, 'ms_per_step': 1e3 * float(np.median(t)),
           'steps_per_s': 1.0 / float(np.median(t))} for name, t in times.items()]
  base = rows[0]['steps_per_s']
  for row in rows:
    row['relative_to_sim_only'] = row['steps_per_s'] / base
    print(f'  {row["name"]:22s} {row["ms_per_step"]:7.1f} ms/step  {row["steps_per_s"]:6.2f} '
          f'steps/s  {100 * row["relative_to_sim_only"]:5.1f}% of Sim-Only', flush=True)
  return rows
