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
    # The Table 1 joint runs' networks (gin/table1_joint.gin): the small G, F, D with the
    # spatial Q-network, whose CEM targets score 16x16 cells.
    'spatial': StepConfig('spatial', 'networks_spatial.gin', (64, 64), 8, 10),
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
  gin_utils.parse_gin([os.path.join(GIN_DIR, config.gin_file)], [])
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
  # use float32 on a CPU without native bf16, or where bf16 measures slower.
  if not cpu.native_bf16:
    bf16_note = ('bf16 forced: no native bf16 on this CPU, so training with '
                 'mixed_precision=True would fall back to f32')
  else:
    speedup = hardware.measure_bf16_speedup()
    uses = ('bf16' if speedup >= hardware.BF16_MIN_SPEEDUP else
            'f32 (bf16 not faster here; bf16 rows are forced)')
    bf16_note = (f'native bf16; a bf16 conv measured {speedup:.2f}x the speed of f32 in this '
                 f'process, so mixed_precision=True trains in {uses}')
    print(f'bf16: {bf16_note}')
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
                         steps: int = 20, bindings: Sequence[str] = ()) -> dict:
  """Times ``QTOptLearner.train_step`` on a fixed random sim batch (Sim-Only: no real batch).

  ``done_fraction`` of the transitions are terminal (1/5 in 5-step ``auto_descend`` episodes).
  FLOPs are counted only with ``skip_terminal_targets=False``: skipping puts the target
  networks and CEM under a ``tf.cond``, which the counter does not expand.
  """
  if not 0.0 <= done_fraction <= 1.0:
    raise ValueError(f'done_fraction must be in [0, 1], got {done_fraction}')
  gin.clear_config()
  gin_utils.parse_gin([os.path.join(GIN_DIR, gin_file)],
                      [f'QTOptCritic.skip_terminal_targets = {skip_terminal_targets}',
                       *bindings])
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


NORMALIZATION_VARIANTS = {  # name -> GraspingQNetwork bindings (normalization, normalize_head)
    'none': (None, False), 'layer': ('layer', False), 'batch': ('batch', False),
    'layer_all': ('layer', True), 'batch_all': ('batch', True)}


def run_normalizations(gin_file: str = 'networks_spatial.gin',
                       crop_size: Sequence[int] = (64, 64), batch: int = 32,
                       done_fraction: float = 0.2, steps: int = 20,
                       variants: Sequence[str] = tuple(NORMALIZATION_VARIANTS)) -> List[dict]:
  """Prints ms/step of the QT-Opt step (terminal targets skipped, as training runs) with each
  Q-network normalization of ``NORMALIZATION_VARIANTS`` ('_all': the head's convs too), and
  each one's time against the first variant's, measured in this process."""
  print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPUs; QT-Opt step, {gin_file}, crop '
        f'{"x".join(map(str, crop_size))}, batch {batch}, {100 * done_fraction:.0f}% terminal')
  peak = perf.matmul_peak_gflops(tf.float32)
  rows = []
  for name in variants:
    normalization, head = NORMALIZATION_VARIANTS[name]
    row = benchmark_qtopt_step(gin_file, crop_size, batch, done_fraction, True, peak, steps,
                               [f'GraspingQNetwork.normalization = {normalization!r}',
                                f'GraspingQNetwork.normalize_head = {head}'])
    row['normalization'] = name
    rows.append(row)
    line = (f'  {name:9s}: {row["ms_per_step"]:8.1f} ms/step, '
            f'{1e3 / row["ms_per_step"]:5.2f} steps/s')
    if len(rows) > 1:
      line += f', {row["ms_per_step"] / rows[0]["ms_per_step"]:.2f}x the time of {variants[0]}'
    print(line, flush=True)
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


# --- Peak memory of the joint step (tools/benchmark.py --memory) ------------------------------

# The networks whose activations gradient checkpointing drops (their ``recompute_grad``).
RECOMPUTE_CONFIGURABLES = ('UNetGenerator', 'MultiScaleDiscriminator', 'GraspingQNetwork')


def _rss_gb() -> float:
  """This process's resident set size now, GB."""
  with open('/proc/self/statm') as f:
    return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 1e9


def _step_gb(row) -> float:
  return row['step_peak_tensor_gb'] - row['tensors_between_steps_gb']


# The CPU allocator that keeps statistics (peak tensor bytes). Without it TensorFlow had none on
# an AMD EPYC (session 18: "Cannot reset memory stats for device 'CPU:0'") and had them on a
# Xeon, so run_memory sets it for every row: every machine measures the same allocator.
ALLOCATOR_ENV = {'TF_CPU_ALLOCATOR_USE_BFC': 'true'}


def memory_child_command(**args) -> list:
  """The command that measures one memory row in a fresh process (env: ALLOCATOR_ENV)."""
  import json  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  return [sys.executable, '-m', 'rl_cyclegan.cli.benchmark', '--memory_child', json.dumps(args)]


def memory_step(crop: int, batch_per_domain: int, recompute: bool, precision: str, steps: int,
                gin_file: str = 'networks_paper.gin') -> dict:
  """In this process: the joint step of ``gin_file``'s networks at crop x crop, with
  ``recompute_grad`` on G, F, D_X, D_Y and both Qs or on none; returns ms/step and RSS."""
  gin.clear_config()
  gin_utils.parse_gin([os.path.join(GIN_DIR, gin_file)],
                      [f'{c}.recompute_grad = {recompute}' for c in RECOMPUTE_CONFIGURABLES])
  tf.random.set_seed(0)
  crop_size = (crop, crop)
  learner = learner_lib.RLCycleGANLearner(
      crop_size=crop_size, mixed_precision='force' if precision == 'bf16' else False)
  sim = random_batch(batch_per_domain, crop_size, 1)
  real = random_batch(batch_per_domain, crop_size, 2)
  built_gb = _rss_gb()
  step = lambda: learner.train_step(sim, real).total
  step().numpy()  # traces
  # TensorFlow's own count of the bytes its CPU allocator holds (tensors: activations kept
  # for the backward pass, gradients, workspaces), without the process's code and graphs.
  try:
    tf.config.experimental.reset_memory_stats('CPU:0')
  except ValueError as e:
    raise RuntimeError(
        f'TensorFlow keeps no CPU allocator statistics in this process ({e}); start it with '
        f'{ALLOCATOR_ENV} set (run_memory does this for every row)') from e
  held_gb = tf.config.experimental.get_memory_info('CPU:0')['current'] / 1e9  # variables
  timing = perf.time_calls(step, steps=steps, warmup=0)
  step_peak_gb = tf.config.experimental.get_memory_info('CPU:0')['peak'] / 1e9
  return {'crop': crop, 'batch': f'{batch_per_domain}+{batch_per_domain}',
          'recompute_grad': recompute, 'precision': precision,
          'compute_dtype': learner.compute_dtype, 'rss_built_gb': built_gb,
          'peak_rss_gb': _max_rss_gb(), 'step_peak_tensor_gb': step_peak_gb,
          'tensors_between_steps_gb': held_gb,
          'ms_per_step': 1e3 * timing['median_s'],
          'pixels_per_step': 2 * batch_per_domain * crop * crop}


def run_memory(crops: Sequence[int] = (64, 128, 256), batch_per_domain: int = 1,
               recompute: Sequence[bool] = (False, True), precision: str = 'f32',
               steps: int = 2, gin_file: str = 'networks_paper.gin') -> List[dict]:
  """Peak RSS and step time of the joint step per (crop, recompute_grad), each in its own
  process (peak RSS only grows within one), then the ratios measured in this run: time per
  pixel against the smallest crop, and recompute_grad's memory and time against none."""
  import json  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, CPU {hardware.cpu_info().describe()}')
  print(f'Joint step, {gin_file}, batch {batch_per_domain}+{batch_per_domain}, {precision}, '
        f'{steps} timed steps; each row in a fresh process', flush=True)
  rows = []
  for crop in crops:
    for on in recompute:
      args = dict(crop=int(crop), batch_per_domain=batch_per_domain, recompute=bool(on),
                  precision=precision, steps=steps, gin_file=gin_file)
      proc = subprocess.run(memory_child_command(**args), capture_output=True, text=True,
                            check=False, env=dict(os.environ, **ALLOCATOR_ENV))
      label = f'  crop {crop:4d} recompute_grad={str(bool(on)):5s}'
      if proc.returncode != 0:
        reason = ('killed by SIGKILL: out of memory?' if proc.returncode == -9 else
                  proc.stderr.strip().splitlines()[-1:] or ['?'])
        print(f'{label}: FAILED (exit {proc.returncode}): {reason}', flush=True)
        rows.append(dict(args, failed=proc.returncode))
        continue
      row = json.loads(proc.stdout.strip().splitlines()[-1])
      rows.append(row)
      print(f'{label}: {row["ms_per_step"]:9.1f} ms/step, '
            f'{1e3 * row["ms_per_step"] / row["pixels_per_step"]:7.1f} s per Mpixel, '
            f'peak RSS {row["peak_rss_gb"]:5.2f} GB (after building {row["rss_built_gb"]:.2f} '
            f'GB), tensors at most {row["step_peak_tensor_gb"]:.2f} GB in a step '
            f'({row["tensors_between_steps_gb"]:.2f} GB between steps: variables, optimizer '
            f'slots), computing in {row["compute_dtype"]}',
            flush=True)
  done = [r for r in rows if 'failed' not in r]
  for on in recompute:
    same = [r for r in done if r['recompute_grad'] == bool(on)]
    if len(same) > 1:
      base = same[0]['ms_per_step'] / same[0]['pixels_per_step']
      print(f'  recompute_grad={on}: time per pixel relative to crop {same[0]["crop"]}: ' +
            ', '.join(f'{r["crop"]}: {r["ms_per_step"] / r["pixels_per_step"] / base:.2f}'
                      for r in same[1:]))
  for crop in crops:
    pair = {r['recompute_grad']: r for r in done if r['crop'] == crop}
    if len(pair) == 2:
      on, off = pair[True], pair[False]
      print(f'  crop {crop}: recompute_grad uses {on["peak_rss_gb"] / off["peak_rss_gb"]:.2f}x '
            f'the peak RSS ({on["peak_rss_gb"] - off["peak_rss_gb"]:+.2f} GB), '
            f'{on["step_peak_tensor_gb"] / off["step_peak_tensor_gb"]:.2f}x the peak tensor '
            f'bytes ({_step_gb(on) / _step_gb(off):.2f}x of those a step adds) and '
            f'{on["ms_per_step"] / off["ms_per_step"]:.2f}x the step time')
  return rows


# --- Per-op profile of the joint step (tools/benchmark.py --profile) --------------------------


def kernel_family(kernel: str) -> str:
  """The graph op type a CPU kernel implements: '_MklNativeFusedConv2D' -> 'Conv2D',
  '_MklNativeConv2DBackpropFilterWithBias' -> 'Conv2DBackpropFilter', '_MklMatMul' ->
  'MatMul'."""
  name = kernel
  for prefix in ('_Mkl', 'Native', 'Fused'):
    if name.startswith(prefix):
      name = name[len(prefix):]
  return name[:-len('WithBias')] if name.endswith('WithBias') else name


def run_profile(config_names: Sequence[str] = ('small',), precisions: Sequence[str] = ('f32',),
                steps: int = 5, batch_per_domain: int = None, top: int = 15,
                logdir: str = '/tmp/rl_cyclegan_profile') -> List[dict]:
  """Prints where the joint step's time goes: the ``top`` kernels by time per step (TF
  profiler, ``perf.op_profile``), and for each conv / matmul family its achieved GFLOP/s and
  the fraction of the same-precision matmul peak measured in this process.

  Kernels run one at a time (inter-op parallelism 1, set here before TensorFlow starts), each
  with all intra-op threads, so a family's GFLOP / kernel time compares with the whole-machine
  matmul peak. Must run before any TensorFlow op in the process.
  """
  tf.config.threading.set_inter_op_parallelism_threads(1)
  print(f'TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, CPU {hardware.cpu_info().describe()}')
  dtypes = {'f32': tf.float32, 'bf16': tf.bfloat16}
  rows = []
  for name in config_names:
    config = CONFIGS[name]
    if batch_per_domain:
      config = dataclasses.replace(config, batch_per_domain=batch_per_domain)
    for precision in precisions:
      gin.clear_config()
      gin_utils.parse_gin([os.path.join(GIN_DIR, config.gin_file)], [])
      tf.random.set_seed(0)
      learner = learner_lib.RLCycleGANLearner(
          crop_size=config.crop_size, mixed_precision='force' if precision == 'bf16' else False)
      sim = random_batch(config.batch_per_domain, config.crop_size, 1)
      real = random_batch(config.batch_per_domain, config.crop_size, 2)
      flops = perf.concrete_flops(learner._train_step_fn, sim, real)  # pylint: disable=protected-access
      step = lambda: learner.train_step(sim, real).total  # pylint: disable=cell-var-from-loop
      step().numpy()
      wall = perf.time_calls(step, steps=steps, warmup=1)['median_s']
      peak = perf.matmul_peak_gflops(dtypes[precision])
      ops = perf.op_profile(step, steps, os.path.join(logdir, f'{name}_{precision}'))
      op_ms = sum(o['ms_per_step'] for o in ops.values())
      print(f'{name} {precision} crop {"x".join(map(str, config.crop_size))} batch '
            f'{config.batch_per_domain}+{config.batch_per_domain}: {1e3 * wall:.1f} ms/step wall '
            f'(inter-op parallelism 1), {op_ms:.1f} ms/step in kernels, {precision} matmul peak '
            f'{peak:.0f} GFLOP/s', flush=True)
      for kernel, o in list(ops.items())[:top]:
        print(f'    {kernel:40s} {o["ms_per_step"]:9.1f} ms/step {100 * o["share"]:5.1f}% '
              f'{o["calls_per_step"]:6.0f} calls/step')
      families = {}
      for kernel, o in ops.items():
        families.setdefault(kernel_family(kernel), []).append(o['ms_per_step'])
      for family in sorted(flops, key=lambda f: -flops[f]):
        ms = sum(families.get(family, []))
        if ms and flops[family]:
          gflops = flops[family] / (ms / 1e3) / 1e9
          print(f'    {family:28s} {flops[family] / 1e9:8.2f} GFLOP/step in {ms:8.1f} ms = '
                f'{gflops:6.1f} GFLOP/s = {100 * gflops / peak:5.1f}% of the {precision} peak')
      rows.append({'config': name, 'precision': precision, 'wall_ms': 1e3 * wall,
                   'peak_gflops': peak, 'ops': ops, 'flops': flops})
  return rows
