"""tools/benchmark_qtopt.py's step timer on a tiny batch (figures themselves are not asserted)."""
import pytest

from rl_cyclegan import benchmark


def test_qtopt_step_rows_with_and_without_skipping():
  static = benchmark.benchmark_qtopt_step('networks_small.gin', (32, 32), 5, 0.4, False,
                                          peak_gflops=100.0, steps=1)
  skipping = benchmark.benchmark_qtopt_step('networks_small.gin', (32, 32), 5, 0.4, True,
                                            peak_gflops=100.0, steps=1)
  assert static['gflop_per_step'] > 0 and static['ms_per_step'] > 0
  assert skipping['gflop_per_step'] == 0 and skipping['ms_per_step'] > 0  # not counted
  assert static['skip_terminal_targets'] is False and skipping['skip_terminal_targets'] is True
  assert static['transitions_per_s'] == pytest.approx(5e3 / static['ms_per_step'])


def test_bad_done_fraction_is_named():
  with pytest.raises(ValueError, match='done_fraction'):
    benchmark.benchmark_qtopt_step('networks_small.gin', (32, 32), 4, 1.5, True, 1.0)


def test_final_q_rows_compare_the_cached_g_with_sim_only():
  rows = benchmark.run_final_q('networks_small.gin', (32, 32), (32, 40), batch=4, episodes=3,
                               steps=1)
  assert [r['name'] for r in rows] == ['sim_only', 'final_q_cached_g', 'final_q_g_every_step']
  assert rows[0]['relative_to_sim_only'] == 1.0
  assert all(r['ms_per_step'] > 0 for r in rows)


@pytest.mark.slow  # ~2 min: traces the joint step twice (CI runs it, .ci/run)
def test_memory_row_runs_the_joint_step_with_gradient_checkpointing_bound(monkeypatch):
  import json  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  args = dict(crop=32, batch_per_domain=1, recompute=True, precision='f32', steps=1,
              gin_file='networks_small.gin')
  # As run_memory measures a row: a fresh process with the allocator that keeps statistics.
  proc = subprocess.run(benchmark.memory_child_command(**args), capture_output=True, text=True,
                        check=False, env=dict(os.environ, **benchmark.ALLOCATOR_ENV))
  assert proc.returncode == 0, proc.stderr[-3000:]
  row = json.loads(proc.stdout.strip().splitlines()[-1])
  assert row['recompute_grad'] is True and row['compute_dtype'] == 'float32'
  assert row['pixels_per_step'] == 2 * 32 * 32 and row['ms_per_step'] > 0
  assert row['peak_rss_gb'] >= row['rss_built_gb'] > 0 and row['step_peak_tensor_gb'] > 0
  # In a process without allocator statistics, the error says how to get them.
  import gin  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def no_stats(device):
    raise ValueError(f"Cannot reset memory stats for device '{device}'")

  monkeypatch.setattr(tf.config.experimental, 'reset_memory_stats', no_stats)
  with pytest.raises(RuntimeError, match=r"no CPU allocator statistics .*Cannot reset.*"
                                         r"TF_CPU_ALLOCATOR_USE_BFC"):
    benchmark.memory_step(**args)
  for name in benchmark.RECOMPUTE_CONFIGURABLES:
    assert gin.query_parameter(f'{name}.recompute_grad') is True
  gin.clear_config()


def test_memory_flags_are_checked():
  from rl_cyclegan.cli import benchmark as cli  # pylint: disable=g-import-not-at-top
  with pytest.raises(SystemExit):
    cli.main(['--memory', '--recompute=maybe'])
  with pytest.raises(SystemExit):
    cli.main(['--memory', '--precisions=f32,bf16'])


def test_kernel_families_name_the_graph_op_a_onednn_kernel_implements():
  assert benchmark.kernel_family('_MklNativeFusedConv2D') == 'Conv2D'
  assert benchmark.kernel_family('_MklNativeConv2DBackpropFilterWithBias') == (
      'Conv2DBackpropFilter')
  assert benchmark.kernel_family('_MklNativeConv2DBackpropInput') == 'Conv2DBackpropInput'
  assert benchmark.kernel_family('_MklMatMul') == 'MatMul'
  assert benchmark.kernel_family('Conv2D') == 'Conv2D'  # Eigen's kernel keeps the graph name


def test_op_profile_times_the_kernels_that_ran(tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from rl_cyclegan import perf  # pylint: disable=g-import-not-at-top
  images = tf.random.uniform([4, 32, 32, 8])
  kernel = tf.random.uniform([3, 3, 8, 16])

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      tape.watch(kernel)
      loss = tf.reduce_sum(tf.nn.relu(tf.nn.conv2d(images, kernel, 1, 'SAME')))
    return tape.gradient(loss, kernel)

  step()
  ops = perf.op_profile(step, 2, str(tmp_path))
  families = {benchmark.kernel_family(k) for k in ops}
  assert {'Conv2D', 'Conv2DBackpropFilter', 'Relu', 'ReluGrad'} <= families
  assert all(o['calls_per_step'] == 1 for k, o in ops.items()
             if benchmark.kernel_family(k) in ('Conv2D', 'Conv2DBackpropFilter'))
  assert abs(sum(o['share'] for o in ops.values()) - 1) < 1e-6


def test_normalization_rows_build_each_variant_and_unknown_ones_are_named(capsys, monkeypatch):
  built = []
  real_step = benchmark.benchmark_qtopt_step

  def step(*args, **kwargs):
    row = real_step(*args, **kwargs)
    import gin  # pylint: disable=g-import-not-at-top
    built.append((gin.query_parameter('GraspingQNetwork.normalization'),
                  gin.query_parameter('GraspingQNetwork.normalize_head')))
    return row

  monkeypatch.setattr(benchmark, 'benchmark_qtopt_step', step)
  monkeypatch.setattr(benchmark.perf, 'matmul_peak_gflops', lambda dtype: 100.0)
  rows = benchmark.run_normalizations('networks_small.gin', (32, 32), batch=4, steps=1,
                                      variants=('none', 'layer', 'batch_all'))
  assert [r['normalization'] for r in rows] == ['none', 'layer', 'batch_all']
  assert built == [(None, False), ('layer', False), ('batch', True)]
  assert 'x the time of none' in capsys.readouterr().out
  from rl_cyclegan.cli import benchmark_qtopt as cli  # pylint: disable=g-import-not-at-top
  with pytest.raises(SystemExit):
    cli.main(['--normalizations=none,group'])
  assert 'unknown group; valid: none, layer, batch, layer_all, batch_all' in (
      capsys.readouterr().err)
