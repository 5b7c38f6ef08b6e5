"""Performance helpers shared by the benchmarks: matmul peak, graph FLOP counts, timing.

Benchmarks report achieved GFLOP/s as a fraction of a matmul peak measured in the same process,
so figures from a loaded machine stay comparable (both numerator and denominator see the load).
"""

import time
from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf

# Ops whose FLOPs dominate conv nets; everything else (elementwise, norms) is not counted, so
# the reported GFLOP/s is a lower bound on the work actually done.
_COUNTED_OPS = ('Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'MatMul',
                'BatchMatMulV2', 'BatchMatMulV3', 'DepthwiseConv2dNative')


def matmul_peak_gflops(dtype=tf.float32, n: int = 2048, repeats: int = 10) -> float:
  """Best-of GFLOP/s of an n x n matmul in ``dtype`` (2 n^3 FLOPs each)."""
  a = tf.random.uniform([n, n], dtype=tf.float32)
  a = tf.cast(a, dtype)
  matmul = tf.function(lambda x: tf.matmul(x, x))
  matmul(a).numpy()  # trace + warm up
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a).numpy()
    best = min(best, time.perf_counter() - start)
  return 2.0 * n ** 3 / best / 1e9


def _op_flops(op) -> int:
  """2 * multiply-accumulates of a conv / matmul op from its static shapes (0 if unknown)."""
  try:
    if op.type == 'Conv2D':
      out = op.outputs[0].shape.as_list()
      kernel = op.inputs[1].shape.as_list()  # [kh, kw, cin, cout]
      return 2 * int(np.prod(out)) * kernel[0] * kernel[1] * kernel[2]
    if op.type == 'DepthwiseConv2dNative':
      out = op.outputs[0].shape.as_list()
      kernel = op.inputs[1].shape.as_list()
      return 2 * int(np.prod(out)) * kernel[0] * kernel[1]
    if op.type == 'Conv2DBackpropInput':
      grad_out = op.inputs[2].shape.as_list()  # [B, oh, ow, cout]
      kernel = op.inputs[1].shape.as_list()
      return 2 * int(np.prod(grad_out)) * kernel[0] * kernel[1] * kernel[2]
    if op.type == 'Conv2DBackpropFilter':
      grad_out = op.inputs[2].shape.as_list()
      kernel_shape = op.outputs[0].shape.as_list()
      return 2 * int(np.prod(grad_out)) * kernel_shape[0] * kernel_shape[1] * kernel_shape[2]
    if op.type == 'MatMul':
      a = op.inputs[0].shape.as_list()
      out = op.outputs[0].shape.as_list()
      k = a[0] if op.get_attr('transpose_a') else a[1]
      return 2 * int(np.prod(out)) * k
    if op.type in ('BatchMatMulV2', 'BatchMatMulV3'):
      a = op.inputs[0].shape.as_list()
      out = op.outputs[0].shape.as_list()
      k = a[-2] if op.get_attr('adj_x') else a[-1]
      return 2 * int(np.prod(out)) * k
  except (TypeError, ValueError):  # unknown static dims
    return 0
  return 0


def _live_ops(graph):
  """Ops that run: those reachable backwards from the graph's outputs and stateful ops.

  TF prunes a function body to what its outputs and side effects need before running it; the
  gradient tape, for instance, builds filter gradients that nothing consumes. Counting only live
  ops keeps the FLOP figure to work that is actually done.
  """
  sinks = [t.op for t in graph.outputs]
  sinks += [op for op in graph.get_operations()
            if op._is_stateful and op.type not in ('VarHandleOp', 'Placeholder')]  # pylint: disable=protected-access
  live, stack = set(), list(sinks)
  while stack:
    op = stack.pop()
    if op in live:
      continue
    live.add(op)
    stack.extend(t.op for t in op.inputs)
    stack.extend(op.control_inputs)
  return live


def graph_flops(graph, _seen=None) -> Dict[str, int]:
  """FLOPs of the live conv/matmul ops in ``graph`` and the functions it calls, by op type.

  Follows function-call ops (PartitionedCall, StatefulPartitionedCall); If/While branches are
  not expanded, so keep counted work outside tf.cond / tf.while_loop.
  """
  seen = set() if _seen is None else _seen
  totals: Dict[str, int] = {}
  for op in _live_ops(graph):
    if op.type in _COUNTED_OPS:
      totals[op.type] = totals.get(op.type, 0) + _op_flops(op)
    elif op.type in ('PartitionedCall', 'StatefulPartitionedCall'):
      fname = op.get_attr('f').name
      if fname in seen:
        continue
      seen.add(fname)
      func = graph._get_function(fname)  # pylint: disable=protected-access
      if func is not None and hasattr(func, 'graph'):
        for k, v in graph_flops(func.graph, seen).items():
          totals[k] = totals.get(k, 0) + v
  return totals


def concrete_flops(tf_function, *args) -> Dict[str, int]:
  """FLOPs by op type of one call of ``tf_function`` traced with ``args``."""
  return graph_flops(tf_function.get_concrete_function(*args).graph)


def time_calls(fn: Callable[[], object], steps: int, warmup: int = 1,
               sync: Optional[Callable[[object], object]] = None) -> Dict[str, float]:
  """Times ``steps`` calls of ``fn`` after ``warmup`` calls. Returns seconds stats."""
  sync = sync or (lambda out: tf.nest.map_structure(
      lambda t: t.numpy() if hasattr(t, 'numpy') else t, out))
  start = time.perf_counter()
  for _ in range(warmup):
    sync(fn())
  first = time.perf_counter() - start
  times = []
  for _ in range(steps):
    t0 = time.perf_counter()
    sync(fn())
    times.append(time.perf_counter() - t0)
  return {'warmup_s': first, 'median_s': float(np.median(times)), 'min_s': float(np.min(times)),
          'mean_s': float(np.mean(times))}


def op_profile(fn: Callable[[], object], steps: int, logdir: str) -> Dict[str, Dict[str, float]]:
  """Per-op-type time of ``steps`` calls of ``fn`` (traced and warmed up already), from the
  TensorFlow profiler's host trace (``tf.profiler.experimental``, written under ``logdir``).

  Returns {op type: {'ms_per_step', 'calls_per_step', 'share'}}: the kernel time summed over
  TF's compute threads (ops that run in parallel on the inter-op pool both count), per step,
  and its share of all ops' time. Op types are the kernels that ran, e.g. ``_MklNativeConv2D``
  (oneDNN) against ``Conv2D`` (Eigen), so a path that misses oneDNN shows by name.
  """
  import glob  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-import-not-at-top
  tf.profiler.experimental.start(logdir)
  try:
    for _ in range(steps):
      tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, 'numpy') else t, fn())
  finally:
    tf.profiler.experimental.stop()
  files = sorted(glob.glob(os.path.join(logdir, 'plugins', 'profile', '*', '*.xplane.pb')),
                 key=os.path.getmtime)
  if not files:
    raise FileNotFoundError(f'the profiler wrote no *.xplane.pb under {logdir!r}')
  space = xplane_pb2.XSpace()
  with open(files[-1], 'rb') as f:
    space.ParseFromString(f.read())
  totals, calls = {}, {}
  for plane in space.planes:
    if not plane.name.startswith('/host:CPU'):
      continue
    for line in plane.lines:
      if not line.name.startswith('tf_'):  # TF's compute threads, not the Python thread
        continue
      for event in line.events:
        name = plane.event_metadata[event.metadata_id].name  # '<op name>:<op type>'
        if name.count(':') != 1:  # e.g. ExecutorState::Process, MemoryAllocation
          continue
        op_type = name.split(':')[1]
        totals[op_type] = totals.get(op_type, 0.0) + event.duration_ps * 1e-9  # ms
        calls[op_type] = calls.get(op_type, 0) + 1
  everything = sum(totals.values()) or 1.0
  return {t: {'ms_per_step': ms / steps, 'calls_per_step': calls[t] / steps,
              'share': ms / everything}
          for t, ms in sorted(totals.items(), key=lambda kv: -kv[1])}
