"""One-off migration (session 40; run as `PYTHONPATH=. python results/table1_real_gap0.75/diagnostics/migrate_final_q.py results/table1_real_gap0.75 results/table1`): committed final Qs on a frozen G keep G beside them once.

For each results/<table>/<row>/final_q whose checkpoint holds G_sim2real and whose G row's
generator/ is published: cut it again with run_dir.write_policy_checkpoint(network_sources=
{G_sim2real: that generator}) (which checks the G is identical), then restore the new copy
and check every Q and G variable equals the old copy's.
"""
import glob, os, shutil, sys, tempfile
import numpy as np
import tensorflow as tf
from rl_cyclegan import run_dir
from rl_cyclegan.pipelines import table1

def keys(prefix):
  return {n.split('/')[0] for n, _ in tf.train.list_variables(prefix)}

for results in sys.argv[1:]:
  table = table1.Table1('/tmp/unused_work', os.getcwd(), log=print, results_dir=results)
  for final in sorted(glob.glob(os.path.join(results, '*', 'final_q'))):
    row = os.path.basename(os.path.dirname(final))
    prefix = run_dir.latest_checkpoint(run_dir.checkpoint_dir(final))
    if prefix is None or 'G_sim2real' not in keys(prefix):
      continue
    generator = table.frozen_generator(row)
    if not generator or not os.path.isfile(os.path.join(generator, 'checkpoint')):
      print(f'{row}: no published G ({generator}); left whole'); continue
    before = os.path.getsize(prefix + '.data-00000-of-00001')
    tmp = tempfile.mkdtemp()
    old = os.path.join(tmp, 'final_q')
    shutil.copytree(final, old)
    spec_old = run_dir.read_run_spec(old)
    nets_old = run_dir.restore_networks(spec_old, ['q_network', 'G_sim2real'],
                                        run_dir.latest_checkpoint(run_dir.checkpoint_dir(old)))
    new_prefix = run_dir.write_policy_checkpoint(old, final, {'G_sim2real': generator})
    spec_new = run_dir.read_run_spec(final)
    nets_new = run_dir.restore_networks(spec_new, ['q_network', 'G_sim2real'], new_prefix)
    for k in nets_old:
      for a, b in zip(nets_old[k].variables, nets_new[k].variables):
        assert a.name == b.name and np.array_equal(a.numpy(), b.numpy()), (row, k, a.name)
    assert 'G_sim2real' not in keys(new_prefix)
    after = os.path.getsize(new_prefix + '.data-00000-of-00001')
    print(f'{row}: {before/1e6:.2f} -> {after/1e6:.2f} MB; G from {spec_new.network_sources}')
    shutil.rmtree(tmp)
