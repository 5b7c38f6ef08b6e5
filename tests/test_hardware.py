"""Tests of rl_cyclegan/hardware.py: native bf16 detection and the precision it selects."""

import itertools
import logging
import math

import pytest

from rl_cyclegan import hardware

# /proc/cpuinfo first-processor blocks, trimmed to the lines the parser reads and a few others.
# AMD EPYC Zen 3: AVX2/FMA, no AVX-512, no BF16 (the machine of issue 21: bf16 6x slower).
EPYC_ZEN3 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx \
fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl \
nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 movbe \
popcnt aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse \
3dnowprefetch osvw topoext ssbd ibrs ibpb stibp vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 \
erms invpcid rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 clzero xsaveerptr \
arat npt nrip_save umip vaes vpclmulqdq rdpid fsrm
bugs\t\t: sysret_ss_attrs null_seg spectre_v1 spectre_v2 spec_store_bypass srso

processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu avx2
"""
# Intel Sapphire Rapids: AVX512_BF16 and AMX-BF16 (and avx512_fp16, which is not bf16).
SAPPHIRE_RAPIDS = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu vme de pse tsc msr pae avx avx2 fma avx512f avx512dq avx512cd avx512bw \
avx512vl avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8 serialize
"""
# AWS Graviton 3 (Neoverse V1): BF16 (and svebf16, which alone would not count).
GRAVITON3 = """processor\t: 0
BogoMIPS\t: 2100.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm \
jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs \
paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x1
CPU part\t: 0xd40
CPU revision\t: 1
"""
# AWS Graviton 2 (Neoverse N1): no BF16.
GRAVITON2 = """processor\t: 0
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm \
lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU part\t: 0xd0c
"""

EPYC = hardware.cpu_info(EPYC_ZEN3)
XEON = hardware.cpu_info(SAPPHIRE_RAPIDS)


@pytest.mark.parametrize('text, model, arch, flags', [
    (EPYC_ZEN3, 'AMD EPYC 7B13', 'x86', ()),
    (SAPPHIRE_RAPIDS, 'Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz', 'x86',
     ('avx512_bf16', 'amx_bf16')),
    (GRAVITON3, 'aarch64 CPU implementer 0x41 part 0xd40', 'aarch64', ('bf16',)),
    (GRAVITON2, 'aarch64 CPU implementer 0x41 part 0xd0c', 'aarch64', ()),
], ids=['epyc_zen3', 'sapphire_rapids', 'graviton3', 'graviton2'])
def test_cpu_info_from_cpuinfo_text(text, model, arch, flags):
  cpu = hardware.cpu_info(text)
  assert (cpu.model, cpu.arch, cpu.bf16_flags) == (model, arch, flags)
  assert cpu.native_bf16 == bool(flags)


def test_cpu_info_without_cpuinfo_is_not_bf16():
  cpu = hardware.cpu_info('')
  assert cpu.arch == 'unknown' and not cpu.native_bf16 and cpu.model


def test_cpu_info_reads_proc_cpuinfo(monkeypatch, tmp_path):
  path = tmp_path / 'cpuinfo'
  path.write_text(SAPPHIRE_RAPIDS)
  monkeypatch.setattr(hardware, 'CPUINFO_PATH', str(path))
  assert hardware.cpu_info() == XEON
  monkeypatch.setattr(hardware, 'CPUINFO_PATH', str(tmp_path / 'missing'))
  assert not hardware.cpu_info().native_bf16


def test_describe_names_the_model_and_the_flags():
  assert XEON.describe() == ('Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz: native bf16 '
                             '(avx512_bf16, amx_bf16)')
  assert EPYC.describe() == 'AMD EPYC 7B13: no native bf16 (none of avx512_bf16, amx_bf16)'


def _never_measured():
  raise AssertionError('the bf16 speed is measured only for True on a CPU with bf16 flags')


def test_dtype_policy_name(caplog):
  binding = 'QTOptLearner.mixed_precision'
  with caplog.at_level(logging.WARNING):
    assert hardware.dtype_policy_name(False, binding, EPYC, bf16_speedup=_never_measured) is None
    assert hardware.dtype_policy_name('force', binding, EPYC,
                                      bf16_speedup=_never_measured) == 'mixed_bfloat16'
    assert hardware.dtype_policy_name(True, binding, XEON,
                                      bf16_speedup=lambda: 1.5) == 'mixed_bfloat16'
    assert not caplog.records
    assert hardware.dtype_policy_name(True, binding, EPYC,
                                      bf16_speedup=_never_measured) is None  # float32
  [record] = caplog.records
  message = record.getMessage()
  assert record.levelno == logging.WARNING
  for part in ('AMD EPYC 7B13', 'avx512_bf16, amx_bf16', 'float32',
               "QTOptLearner.mixed_precision = 'force'"):
    assert part in message


@pytest.mark.parametrize('value', ['bf16', 'True', 1, None, 'FORCE'])
def test_bad_mixed_precision_names_the_binding(value):
  with pytest.raises(ValueError, match=r"RLCycleGANLearner\.mixed_precision = .*expected False "
                                       r"\(float32\), True .* or 'force'"):
    hardware.dtype_policy_name(value, 'RLCycleGANLearner.mixed_precision', EPYC)


def test_native_flags_but_slower_bf16_falls_back_to_float32_naming_the_measurement(caplog):
  binding = 'RLCycleGANLearner.mixed_precision'
  with caplog.at_level(logging.WARNING):
    assert hardware.dtype_policy_name(True, binding, XEON, bf16_speedup=lambda: 0.72) is None
  [record] = caplog.records
  message = record.getMessage()
  for part in ('Platinum 8481C', 'avx512_bf16, amx_bf16', '0.72x the speed of float32',
               "RLCycleGANLearner.mixed_precision = 'force'"):
    assert part in message


def test_bf16_speedup_is_measured_once_per_process():
  hardware.measure_bf16_speedup.cache_clear()
  # One timed call per dtype (training uses 5): emulated bf16 takes ~2 s a call on an AMD EPYC.
  speedup = hardware.measure_bf16_speedup(repeats=1)
  # A ratio of two measured times, nothing more: emulated bf16 on a CPU without it has measured
  # 0.042x (AMD EPYC, CI), so no speed range belongs here (timed assertions are for benchmarks).
  assert math.isfinite(speedup) and speedup > 0
  assert hardware.measure_bf16_speedup(repeats=1) == speedup
  assert hardware.measure_bf16_speedup.cache_info().hits == 1


def _then(start, end):
  """A reading that is ``start`` once, then ``end`` for ever after."""
  return itertools.chain([start], itertools.repeat(end))


def test_machine_share_counts_what_other_processes_used(monkeypatch):
  clock = _then(100.0, 110.0)  # 10 s of wall time
  busy = _then(1000.0, 1012.0)  # the machine: 12 CPU seconds in that time
  own = _then(50.0, 57.0)  # this process and its waited-for children: 7 of them
  monkeypatch.setattr(hardware.time, 'monotonic', lambda: next(clock))
  monkeypatch.setattr(hardware, '_busy_cpu_seconds', lambda: next(busy))
  monkeypatch.setattr(hardware, '_own_cpu_seconds', lambda: next(own))
  monkeypatch.setattr(hardware.os, 'cpu_count', lambda: 2)
  share = hardware.MachineShare()
  assert share.other_fraction() == pytest.approx(5.0 / 20.0)  # 5 of 2 x 10 CPU seconds
  assert share.note() == ('machine: 2 cores, shared: other processes used 25% of its CPU time '
                          'while this ran; rates are lower bounds')


def test_machine_share_of_a_quiet_machine_and_without_proc_stat(monkeypatch):
  clock, busy, own = _then(0.0, 10.0), _then(1000.0, 1000.6), _then(50.0, 50.4)
  monkeypatch.setattr(hardware.time, 'monotonic', lambda: next(clock))
  monkeypatch.setattr(hardware, '_busy_cpu_seconds', lambda: next(busy))
  monkeypatch.setattr(hardware, '_own_cpu_seconds', lambda: next(own))
  monkeypatch.setattr(hardware.os, 'cpu_count', lambda: 2)
  share = hardware.MachineShare()
  assert share.note() == 'machine: 2 cores, other processes used 1% of its CPU time while this ran'
  monkeypatch.setattr(hardware, '_busy_cpu_seconds', lambda: None)  # no /proc/stat
  share = hardware.MachineShare()
  assert share.other_fraction() is None and 'unknown' in share.note()


def test_busy_cpu_seconds_reads_proc_stat():
  first = hardware._busy_cpu_seconds()  # pylint: disable=protected-access
  if first is None:  # not Linux
    assert not hardware.os.path.exists('/proc/stat')
    return
  deadline = hardware.time.perf_counter() + 0.3
  while hardware.time.perf_counter() < deadline:  # keep a core busy
    pass
  assert hardware._busy_cpu_seconds() > first  # pylint: disable=protected-access
