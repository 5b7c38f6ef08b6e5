"""Ad hoc (session 17): each Q's greedy-action spread across states in its own training domain
(another state's image at the same gripper height), the in-domain counterpart of the report's
'other_state' (real) chance level."""
import sys, json
import numpy as np
from rl_cyclegan.cli import generator_report as _cli  # noqa (registers configurables)
from rl_cyclegan import run_dir
from rl_cyclegan.evaluation import policy_eval, paired_set
from rl_cyclegan.data import translation
from rl_cyclegan.pipelines import generator_report, train_qtopt

row, q_dir, domain = sys.argv[1:4]
policy_eval.parse_run_config(f'results/table1/{row}/joint')
crop = tuple(run_dir.read_run_spec(f'results/table1/{row}/joint').crop_size)
g = train_qtopt.load_frozen_generator(f'results/table1/{row}/generator', 'G_sim2real', crop)
data = paired_set.load_paired_set('/work/runs/table1/data/paired_full.npz')
sim, real, h = np.asarray(data['sim']), np.asarray(data['real']), np.asarray(data['gripper_height'])
policy = policy_eval.load_policy_from_checkpoint(q_dir, render_size=sim.shape[1:3], seed=0)
x = translation.FrameTranslator(g).translate(sim) if domain == 'G' else sim
other = np.roll(np.arange(len(x)), 1)
r = generator_report.oracle_q_agreement(policy, x[other], x, h)
print(json.dumps({'row': row, 'q': q_dir, 'domain': domain, **r}))
