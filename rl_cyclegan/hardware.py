"""The CPU this process runs on, and the precision the learners build their networks in.

The paper trains in bfloat16 (Appendix A). On a CPU with native bf16 arithmetic (x86
AVX512_BF16 or AMX-BF16, aarch64 BF16) TensorFlow's mixed_bfloat16 is faster than float32
(../shared/FACTS.md: 1.3-1.5x for conv nets on an AVX512_BF16 Xeon). Without it bf16 has no
fast kernels: the joint train step was measured 6x slower than float32 (an AMD EPYC Zen 3,
``tools/benchmark.py --configs=small --steps=20``: f32 667 ms/step, bf16 4,093 ms/step).

* ``cpu_info``: the CPU model and its native bf16 flags, from /proc/cpuinfo (or given text).
* ``dtype_policy_name``: the Keras dtype policy for a learner's ``mixed_precision`` setting:
  False -> float32; True -> mixed_bfloat16 where the CPU has native bf16, else float32 with
  one warning; 'force' -> mixed_bfloat16 on any CPU.
"""

import dataclasses
import logging
import platform
from typing import Optional, Tuple

CPUINFO_PATH = '/proc/cpuinfo'
# x86 /proc/cpuinfo "flags" that mean native bf16 arithmetic (oneDNN uses them for bf16 matmuls
# and convolutions): AVX512_BF16 (Cooper Lake, Zen 4, Sapphire Rapids) and AMX-BF16 (Sapphire
# Rapids and later).
X86_BF16_FLAGS = ('avx512_bf16', 'amx_bf16')
# aarch64 /proc/cpuinfo "Features" (Armv8.6 BF16: Neoverse V1/N2, Graviton 3).
AARCH64_BF16_FLAGS = ('bf16',)

MIXED_PRECISION_VALUES = (False, True, 'force')
MIXED_PRECISION_HELP = ("False (float32), True (the paper's bfloat16 where the CPU has native "
                        "bf16 arithmetic, float32 otherwise) or 'force' (bfloat16 on any CPU)")
BF16_POLICY = 'mixed_bfloat16'


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


def dtype_policy_name(mixed_precision, binding: str, cpu: Optional[CpuInfo] = None,
                      logger: Optional[logging.Logger] = None) -> Optional[str]:
  """The Keras dtype policy to build networks under: 'mixed_bfloat16', or None for float32.

  Args:
    mixed_precision: False, True or 'force' (``MIXED_PRECISION_HELP``).
    binding: the gin binding that set it (e.g. 'QTOptLearner.mixed_precision'), named in the
      error and the warning.
    cpu: the CPU (default: ``cpu_info()``); read only for True.
    logger: where the fallback warning goes (default: this module's logger).
  """
  check_mixed_precision(mixed_precision, binding)
  if mixed_precision == 'force':
    return BF16_POLICY
  if not mixed_precision:
    return None
  cpu = cpu or cpu_info()
  if cpu.native_bf16:
    return BF16_POLICY
  (logger or logging.getLogger(__name__)).warning(
      '%s = True asks for bfloat16, but this CPU (%s) has no native bf16 arithmetic (none of '
      'the flags %s in %s), where bf16 runs several times slower than float32 (measured 6x on '
      "an AMD EPYC Zen 3). Building in float32 instead. To use bf16 anyway bind %s = 'force'.",
      binding, cpu.model, ', '.join(cpu.expected_flags), CPUINFO_PATH, binding)
  return None
