"""The CPU this process runs on, and the precision the learners build their networks in.

The paper trains in bfloat16 (Appendix A). On a CPU with native bf16 arithmetic (x86
AVX512_BF16 or AMX-BF16, aarch64 BF16) TensorFlow's mixed_bfloat16 is faster than float32
(../shared/FACTS.md: 1.3-1.5x for conv nets on an AVX512_BF16 Xeon). Without it bf16 has no
fast kernels: the joint train step was measured 6x slower than float32 (an AMD EPYC Zen 3,
``tools/benchmark.py --configs=small --steps=20``: f32 667 ms/step, bf16 4,093 ms/step).

* ``cpu_info``: the CPU model and its native bf16 flags, from /proc/cpuinfo (or given text).
* ``measure_bf16_speedup``: float32 time / bfloat16 time of a conv like the networks', measured
  once per process (~0.5 s).
* ``dtype_policy_name``: the Keras dtype policy for a learner's ``mixed_precision`` setting:
  False -> float32; True -> mixed_bfloat16 where the CPU has native bf16 flags AND bf16 measures
  faster than float32 here, else float32 with one warning saying which; 'force' ->
  mixed_bfloat16 on any CPU.

Flags alone are not enough. AVX512_BF16 without AMX (an Intel Xeon whose VM shows avx512_bf16
and avx512_fp16 but no amx flags; session 14) runs oneDNN's bf16 kernels (avx512_core_bf16),
yet on an idle machine a 2048^3 matmul ran at 145 GFLOP/s in bf16 against 250 in float32, and
an 8x64x64x64 3x3 conv at 137 against 190: VDPBF16PS issues once per cycle where float32 FMAs
issue twice, so bf16 has no more peak than float32 there and loses to its conversions.
"""

import dataclasses
import functools
import logging
import os
import platform
import time
from typing import Callable, Optional, Tuple

CPUINFO_PATH = '/proc/cpuinfo'
# x86 /proc/cpuinfo "flags" that mean native bf16 arithmetic (oneDNN uses them for bf16 matmuls
# and convolutions): AVX512_BF16 (Cooper Lake, Zen 4, Sapphire Rapids) and AMX-BF16 (Sapphire
# Rapids and later).
X86_BF16_FLAGS = ('avx512_bf16', 'amx_bf16')
# aarch64 /proc/cpuinfo "Features" (Armv8.6 BF16: Neoverse V1/N2, Graviton 3).
AARCH64_BF16_FLAGS = ('bf16',)

MIXED_PRECISION_VALUES = (False, True, 'force')
MIXED_PRECISION_HELP = ("False (float32), True (the paper's bfloat16 where the CPU has native "
                        "bf16 arithmetic and bf16 measures faster, float32 otherwise) or "
                        "'force' (bfloat16 on any CPU)")
BF16_POLICY = 'mixed_bfloat16'
# mixed_precision=True builds in bf16 only if bf16 measures at least this much faster.
BF16_MIN_SPEEDUP = 1.05


@dataclasses.dataclass(frozen=True)
class CpuInfo:
  """What /proc/cpuinfo says about the first CPU."""
  model: str  # e.g. 'Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz'
  arch: str  # 'x86', 'aarch64' or 'unknown' (no flags / Features line)
  bf16_flags: Tuple[str, ...]  # the native bf16 flags found (empty: none)

  @property
  def native_bf16(self) -> bool:
    return bool(self.bf16_flags)

  @property
  def expected_flags(self) -> Tuple[str, ...]:
    """The flags that would mean native bf16 on this architecture."""
    return AARCH64_BF16_FLAGS if self.arch == 'aarch64' else X86_BF16_FLAGS

  def describe(self) -> str:
    """One line: the model and its bf16 support, e.g. for the benchmark's header."""
    if self.native_bf16:
      return f'{self.model}: native bf16 ({", ".join(self.bf16_flags)})'
    return f'{self.model}: no native bf16 (none of {", ".join(self.expected_flags)})'


def _fields(cpuinfo_text: str) -> dict:
  """The first value of each 'key : value' line (the first processor's block)."""
  fields = {}
  for line in cpuinfo_text.splitlines():
    key, sep, value = line.partition(':')
    if sep:
      fields.setdefault(key.strip().lower(), value.strip())
  return fields


def cpu_info(cpuinfo_text: Optional[str] = None) -> CpuInfo:
  """The CPU model and its native bf16 flags.

  Args:
    cpuinfo_text: the text of /proc/cpuinfo; None reads it (no file, e.g. not Linux: an
      unknown CPU without native bf16).
  """
  if cpuinfo_text is None:
    try:
      with open(CPUINFO_PATH) as f:
        cpuinfo_text = f.read()
    except OSError:
      cpuinfo_text = ''
  fields = _fields(cpuinfo_text)
  if 'flags' in fields:
    arch, flags, wanted = 'x86', fields['flags'].split(), X86_BF16_FLAGS
  elif 'features' in fields:
    arch, flags, wanted = 'aarch64', fields['features'].split(), AARCH64_BF16_FLAGS
  else:
    arch, flags, wanted = 'unknown', [], ()
  model = fields.get('model name') or fields.get('hardware')
  if not model and 'cpu implementer' in fields:  # aarch64 kernels often give no model name
    model = (f'aarch64 CPU implementer {fields["cpu implementer"]} '
             f'part {fields.get("cpu part", "?")}')
  model = model or platform.processor() or platform.machine() or 'unknown CPU'
  return CpuInfo(model=model, arch=arch, bf16_flags=tuple(f for f in wanted if f in flags))


def check_mixed_precision(mixed_precision, binding: str):
  """Raises ValueError naming the gin binding unless the value is False, True or 'force'."""
  if not (isinstance(mixed_precision, bool) or mixed_precision == 'force'):
    raise ValueError(f'{binding} = {mixed_precision!r}: expected {MIXED_PRECISION_HELP}')


@functools.lru_cache(maxsize=None)
def measure_bf16_speedup(repeats: int = 5) -> float:
  """float32 time / bfloat16 time of a convolution like the networks' (input 8 x 64 x 64 x 64,
  3x3 kernel, 64 filters; forward and both gradients), best of ``repeats`` interleaved calls
  each; > 1 means bf16 is faster. Measured once per process (~0.5 s)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  @tf.function
  def conv_step(x, k):
    with tf.GradientTape() as tape:
      tape.watch([x, k])
      y = tf.nn.conv2d(x, k, 1, 'SAME')
    return tape.gradient(y, [x, k])

  rng = tf.random.Generator.from_seed(0)
  x, k = rng.uniform([8, 64, 64, 64]), rng.uniform([3, 3, 64, 64])  # like a U-Net level
  args = {dt: (tf.cast(x, dt), tf.cast(k, dt)) for dt in (tf.float32, tf.bfloat16)}
  best = {}
  for dt, (x, k) in args.items():
    [g.numpy() for g in conv_step(x, k)]  # trace and warm up
  for _ in range(repeats):
    for dt, (x, k) in args.items():
      start = time.perf_counter()
      [g.numpy() for g in conv_step(x, k)]
      best[dt] = min(best.get(dt, float('inf')), time.perf_counter() - start)
  return best[tf.float32] / best[tf.bfloat16]


def dtype_policy_name(mixed_precision, binding: str, cpu: Optional[CpuInfo] = None,
                      logger: Optional[logging.Logger] = None,
                      bf16_speedup: Optional[Callable[[], float]] = None) -> Optional[str]:
  """The Keras dtype policy to build networks under: 'mixed_bfloat16', or None for float32.

  Args:
    mixed_precision: False, True or 'force' (``MIXED_PRECISION_HELP``).
    binding: the gin binding that set it (e.g. 'QTOptLearner.mixed_precision'), named in the
      error and the warning.
    cpu: the CPU (default: ``cpu_info()``); read only for True.
    logger: where the fallback warning goes (default: this module's logger).
    bf16_speedup: returns float32 time / bf16 time (default ``measure_bf16_speedup``); called
      only for True on a CPU with native bf16 flags.
  """
  check_mixed_precision(mixed_precision, binding)
  if mixed_precision == 'force':
    return BF16_POLICY
  if not mixed_precision:
    return None
  cpu = cpu or cpu_info()
  logger = logger or logging.getLogger(__name__)
  if not cpu.native_bf16:
    logger.warning(
        '%s = True asks for bfloat16, but this CPU (%s) has no native bf16 arithmetic (none of '
        'the flags %s in %s), where bf16 runs several times slower than float32 (measured 6x on '
        "an AMD EPYC Zen 3). Building in float32 instead. To use bf16 anyway bind %s = 'force'.",
        binding, cpu.model, ', '.join(cpu.expected_flags), CPUINFO_PATH, binding)
    return None
  speedup = (bf16_speedup or measure_bf16_speedup)()
  if speedup < BF16_MIN_SPEEDUP:
    logger.warning(
        '%s = True asks for bfloat16. This CPU (%s) has native bf16 (%s), but a bf16 convolution '
        'measured %.2fx the speed of float32 here (below %.2fx; e.g. AVX512_BF16 without AMX '
        "has no more peak than float32). Building in float32 instead. To use bf16 anyway bind "
        "%s = 'force'.", binding, cpu.model, ', '.join(cpu.bf16_flags), speedup,
        BF16_MIN_SPEEDUP, binding)
    return None
  return BF16_POLICY


# ------------------------------------------------------------ other processes while measuring

# MachineShare.note calls the machine shared above this fraction of its CPU time used by others.
SHARED_THRESHOLD = 0.05


def _busy_cpu_seconds() -> Optional[float]:
  """CPU seconds every process has used since boot (Linux /proc/stat: user, nice, system, irq,
  softirq and steal; not idle or iowait), or None where there is no /proc/stat."""
  try:
    with open('/proc/stat') as f:
      fields = f.readline().split()
  except OSError:
    return None
  if not fields or fields[0] != 'cpu':
    return None
  ticks = [int(x) for x in fields[1:9]]
  return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf('SC_CLK_TCK')


def _own_cpu_seconds() -> float:
  """CPU seconds of this process and of its children that it has waited for."""
  t = os.times()
  return t.user + t.system + t.children_user + t.children_system


class MachineShare:
  """The share of the machine's CPU time that other processes used since construction.

  A benchmark's rates are only lower bounds on a machine that other work shares; this says
  which case a figure is, from what was measured instead of from a guess. Own time is this
  process's and its waited-for children's (os.times), so a child that is still running when
  ``other_fraction`` is read counts as another process.
  """

  def __init__(self):
    self._wall = time.monotonic()
    self._busy = _busy_cpu_seconds()
    self._own = _own_cpu_seconds()

  def other_fraction(self) -> Optional[float]:
    """Other processes' CPU seconds / (wall seconds x cores) since construction; None without
    /proc/stat."""
    busy, own, wall = _busy_cpu_seconds(), _own_cpu_seconds(), time.monotonic() - self._wall
    if busy is None or self._busy is None or wall <= 0:
      return None
    other = (busy - self._busy) - (own - self._own)
    return max(0.0, other / (wall * (os.cpu_count() or 1)))

  def note(self) -> str:
    """One line for a benchmark's output: the cores, and how much other processes used."""
    fraction, cores = self.other_fraction(), os.cpu_count()
    if fraction is None:
      return f'machine: {cores} cores; what other processes used is unknown (no /proc/stat)'
    if fraction > SHARED_THRESHOLD:
      return (f'machine: {cores} cores, shared: other processes used {fraction:.0%} of its CPU '
              'time while this ran; rates are lower bounds')
    return (f'machine: {cores} cores, other processes used {fraction:.0%} of its CPU time while '
            'this ran')
