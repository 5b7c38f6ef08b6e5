"""Tests of Appendix A's convergence criteria of a joint run (evaluation/convergence.py)."""

import json
import os

import pytest
import tensorflow as tf

from rl_cyclegan import run_dir
from rl_cyclegan.evaluation import convergence
from rl_cyclegan.evaluation import summaries
from rl_cyclegan.learners import rl_cyclegan as learner_lib
from rl_cyclegan.pipelines import train_rl_cyclegan


def _loss_info(**values):
  return learner_lib.LossInfo(**{f: values.get(f, 0.5) for f in learner_lib.LossInfo._fields})


def _eval_record(step, rates, episodes=50):
  return {'step': step, 'env_steps': step // 2, 'results': {
      name: {'num_successes': int(rate * episodes), 'num_episodes': episodes,
             'success_rate': int(rate * episodes) / episodes, 'ci95_low': 0.1,
             'ci95_high': 0.9} for name, rate in rates.items()}}


def _write_run(root, steps=range(100, 3001, 100), collapse_at=()):
  """A joint run's files as the pipeline writes them: train/ events from the summaries helpers,
  eval/eval_<step>.json records of train_rl_cyclegan.EVAL_POLICIES."""
  writer = tf.summary.create_file_writer(os.path.join(root, run_dir.TRAIN_SUBDIR))
  with writer.as_default():
    for step in steps:
      summaries.write_loss_summaries(
          _loss_info(cycle=1.0 if step <= 1000 else 0.25, rl_scene=0.08 if step <= 1000 else 0.02,
                    q_std=0.3), step)
      tf.summary.scalar('q/collapse_suspected', float(step in collapse_at), step=step)
      if step % 1000 == 0:  # as train_rl_cyclegan writes the learner's loss_gradient_norms
        summaries.write_scene_metrics({'G/rl_scene': step / 1e4, 'G/cycle': 0.6, 'G/all': 0.8,
                                       'D_Y/gan_discriminator': 0.5}, step, prefix='gradients')
        summaries.write_scene_metrics({'generator/mae': 30.0 - step / 1000,
                                       'identity/mae': 72.5,
                                       'generator/object_preservation': 0.9,
                                       'rl_scene_pull/own': 0.02 - step / 1e6,
                                       'rl_scene_pull/identity': 0.03}, step)
  writer.close()
  os.makedirs(os.path.join(root, 'eval'))
  for step, rate in ((1000, 0.2), (3000, 0.4)):
    with open(os.path.join(root, 'eval', f'eval_{step:08d}.json'), 'w') as f:
      json.dump(_eval_record(step, {name: rate for name in train_rl_cyclegan.EVAL_POLICIES}), f)


def test_the_criteria_at_the_last_step_beside_the_first_window(tmp_path):
  _write_run(str(tmp_path), collapse_at=(500,))
  c = convergence.read_joint_criteria(str(tmp_path), window_steps=1000)
  assert c['step'] == 3000 and c['window_steps'] == 1000
  assert c['cycle'] == {'first': pytest.approx(1.0), 'last': pytest.approx(0.25)}
  assert c['rl_scene'] == {'first': pytest.approx(0.08), 'last': pytest.approx(0.02)}
  assert c['q_std']['last'] == pytest.approx(0.3)
  assert c['collapse_suspected'] is False  # it fired at step 500, not in the last window
  assert (c['mae_generator'], c['mae_identity'], c['scene_step']) == (
      pytest.approx(27.0), pytest.approx(72.5), 3000)
  assert c['object_preservation'] == pytest.approx(0.9)
  assert (c['rl_scene_own'], c['rl_scene_identity']) == (pytest.approx(0.017),
                                                         pytest.approx(0.03))
  assert c['g_gradient_norms'] == {'rl_scene': pytest.approx(0.3), 'cycle': pytest.approx(0.6),
                                   'all': pytest.approx(0.8)}  # the last window's, G's only
  for key in ('q_sim_in_sim', 'q_real_on_g_sim', 'q_real_in_real'):
    assert c[key] == {'successes': 20, 'episodes': 50, 'success_rate': 0.4, 'ci95': [0.1, 0.9],
                      'step': 3000}


def test_a_collapse_in_the_last_window_is_reported(tmp_path):
  _write_run(str(tmp_path), collapse_at=(2900,))
  assert convergence.read_joint_criteria(str(tmp_path))['collapse_suspected'] is True


def test_the_exported_scalars_give_the_same_criteria_as_the_event_files(tmp_path):
  """results/ holds scalars.json, not the event files (summaries.export_scalars)."""
  _write_run(str(tmp_path / 'run'))
  published = tmp_path / 'published'
  os.makedirs(published)
  os.rename(tmp_path / 'run' / 'eval', published / 'eval')
  summaries.export_scalars(str(tmp_path / 'run'), str(published / summaries.SCALARS_FILE))
  os.rename(published / 'eval', tmp_path / 'run' / 'eval')
  os.symlink(tmp_path / 'run' / 'eval', published / 'eval')
  assert (convergence.read_joint_criteria(str(published)) ==
          convergence.read_joint_criteria(str(tmp_path / 'run')))


def test_what_a_run_did_not_write_or_compute_is_left_out(tmp_path):
  assert convergence.joint_criteria({}, {}) == {}
  cyclegan = convergence.joint_criteria({  # no RL-scene loss: the learner reports 0
      'train/losses/cycle': [[100, 0.3], [200, 0.2]],
      'train/losses/rl_scene': [[100, 0.0], [200, 0.0]]}, {})
  assert 'cycle' in cyclegan and 'rl_scene' not in cyclegan
  only_evals = convergence.joint_criteria({}, {2000: _eval_record(2000, {'Q_real/real': 0.3})})
  assert set(only_evals) == {'step', 'window_steps', 'q_real_in_real'}  # no losses, no scenes


def test_the_evaluations_read_are_the_ones_the_joint_run_makes():
  assert {name for _, name in convergence.EVALUATIONS} == set(train_rl_cyclegan.EVAL_POLICIES)
  assert {tag.split('/', 2)[2] for _, tag, _ in convergence.WINDOWED} <= set(
      learner_lib.LossInfo._fields)


def test_the_gradient_norms_read_are_gs_rows_of_table5():
  assert {key for key, _ in convergence.G_GRADIENTS} == {
      row for row, nets in learner_lib.TABLE5.items() if 'G' in nets} | {'all'}
  assert all(tag == f'train/gradients/G/{key}' for key, tag in convergence.G_GRADIENTS)


def test_a_malformed_file_is_named(tmp_path):
  os.makedirs(tmp_path / 'eval')
  (tmp_path / 'eval' / 'eval_00001000.json').write_text('{"results": {}}')
  with pytest.raises(ValueError, match='eval_00001000.json'):
    convergence.read_joint_criteria(str(tmp_path))
  (tmp_path / 'eval' / 'eval_00001000.json').unlink()
  (tmp_path / summaries.SCALARS_FILE).write_text('[1, 2]')
  with pytest.raises(ValueError, match='scalars.json'):
    convergence.read_joint_criteria(str(tmp_path))
