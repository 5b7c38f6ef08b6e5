"""One frozen generator's report for Table 1 (tools/generator_report.py): scene metrics on whole
held-out paired frames, seen as the final Q sees them (center crop of G(frame)) and as the joint
training saw them (G(center crop)), and the Figure 4 states. Evaluation only."""

import os
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from rl_cyclegan import checkpoints
from rl_cyclegan import fileio
from rl_cyclegan.data import translation
from rl_cyclegan.evaluation import paired_set as paired_set_lib
from rl_cyclegan.evaluation import scene_metrics
from rl_cyclegan.pipelines import train_qtopt


def center_window(h, w, crop_size):
  ch, cw = crop_size
  top, left = (h - ch) // 2, (w - cw) // 2
  return slice(top, top + ch), slice(left, left + cw)


def report(run_dir: str, paired_path: str, crop_size: Sequence[int], key: str = 'G_sim2real',
           generator_dir: Optional[str] = None, figure_path: Optional[str] = None,
           figure_states: int = 4, oracle_dir: Optional[str] = None,
           generator_checkpoint: Optional[str] = None) -> dict:
  """The report dict; also writes G alone to ``generator_dir`` and the figure states.

  G is restored from ``run_dir``'s newest checkpoint, or from ``generator_checkpoint`` (G alone,
  as ``generator_dir`` holds it: the published copy, once the joint run's directory is gone;
  it is built from the gin config in force, so parse the joint run's operative config first).

  ``oracle_dir``: a QT-Opt run trained in `real` (Table 1's real-trained oracle): adds
  ``oracle_q`` (``oracle_q_agreement`` for G(x); as baselines, for x itself and, as the
  chance level, for the real render of another state at this state's gripper height).
  """
  ckpt_dir = generator_checkpoint or os.path.join(run_dir, 'train', 'ckpt')
  generator = train_qtopt.load_frozen_generator(ckpt_dir, key, crop_size)
  checkpoint = checkpoints.resolve(ckpt_dir)
  step = int(checkpoint.rsplit('-', 1)[-1])  # ckpt-<step> or g-<step>
  data = paired_set_lib.load_paired_set(paired_path)
  sim, real = np.asarray(data['sim']), np.asarray(data['real'])  # [N, H, W, 3] uint8
  h, w = sim.shape[1:3]
  if (h, w) == tuple(crop_size):
    raise ValueError(f'paired set {paired_path!r} holds {h}x{w} crops, the crop size itself: '
                     'make it with --crop_size equal to the render size (whole frames)')
  rows, cols = center_window(h, w, crop_size)
  translator = translation.FrameTranslator(generator)
  frame_view = translator.translate(sim)[:, rows, cols]  # [N, h, w, 3] uint8: the final Q's view
  cropped = {k: np.ascontiguousarray(np.asarray(data[k])[:, rows, cols])
             for k in ('sim', 'real', 'object_mask', 'robot_mask')}
  crop_view = translator.translate(cropped['sim'])  # G on the crop: the joint training's view

  masks = {'objects': cropped['object_mask'], 'robot': cropped['robot_mask']}
  identity = scene_metrics.scene_preservation_metrics(cropped['sim'], cropped['real'], masks)

  def metrics(generated):  # as scene_metrics.evaluate_generator reports them
    out = {f'identity/{k}': v for k, v in identity.items()}
    out.update({f'generator/{k}': v for k, v in scene_metrics.scene_preservation_metrics(
        generated, cropped['real'], masks).items()})
    return out

  out = {'run_dir': run_dir, 'generator_checkpoint': checkpoint, 'step': step,
         'generator_fingerprint': translator.fingerprint,
         'paired_set': paired_path, 'num_states': int(len(sim)),
         'frame': metrics(frame_view), 'crop': metrics(crop_view),
         'frame_vs_crop': translation.frame_vs_crop_difference(generator, sim, real, crop_size)}
  if oracle_dir:
    from rl_cyclegan.evaluation import policy_eval  # pylint: disable=g-import-not-at-top
    policy = policy_eval.load_policy_from_checkpoint(oracle_dir, render_size=(h, w), seed=0)
    whole = translator.translate(sim)
    height = np.asarray(data['gripper_height'])
    # Chance: each state's real render against another state's, at the same gripper height
    # (only the image differs, as between G(x) and real(x)).
    other = np.roll(np.arange(len(real)), 1)
    out['oracle_q'] = {'oracle': oracle_dir,
                       'generator': oracle_q_agreement(policy, whole, real, height),
                       'identity': oracle_q_agreement(policy, sim, real, height),
                       'other_state': oracle_q_agreement(policy, real[other], real, height)}
  if generator_dir:
    ckpt = tf.train.Checkpoint(**{key: generator})
    _ = ckpt.save_counter
    ckpt.write(os.path.join(generator_dir, f'g-{step}'))
    fileio.write_text_atomic(os.path.join(generator_dir, 'checkpoint'),
                             f'model_checkpoint_path: "g-{step}"\n'
                             f'all_model_checkpoint_paths: "g-{step}"\n')
  if figure_path and figure_states > 0:
    n = min(figure_states, len(sim))
    fileio.write_atomic(figure_path, lambda f: np.savez_compressed(
        f, sim=cropped['sim'][:n], generated=frame_view[:n], real=cropped['real'][:n]),
                        mode='wb')
  return out



def oracle_q_agreement(policy, generated, real, gripper_height) -> dict:
  """Does G keep what the task needs? A Q trained in `real` (the oracle) judges G(x) and real(x).

  Only this world allows it: ``generated`` and ``real`` are whole uint8 frames [N, H, W, 3] of
  the same states (G(x) and the true real render); ``gripper_height`` [N] in metres (the
  gripper is open in these states). Returns the mean |q(G(x)) - q(real(x))| of the oracle's
  greedy CEM values, the same at the action the oracle picks on real(x), and the mean distance
  between the two greedy actions' (dx, dy) moves (in units of the max step; the same CEM seed
  for both), with that distance per state (``action_xy_distances``, in the states' order, so
  that two generators can be compared state by state) and its standard error over the states.
  """
  n = len(real)
  gripper = np.stack([np.zeros(n), np.asarray(gripper_height)], -1).astype(np.float32)

  def greedy(frames):
    action, value = policy.greedy_with_value({'image': tf.constant(frames),
                                              'gripper_state': tf.constant(gripper)})
    return action.numpy(), value.numpy()

  a_gen, v_gen = greedy(generated)
  a_real, v_real = greedy(real)
  q_net = policy.q_network
  rows, cols = center_window(real.shape[1], real.shape[2], q_net.crop_size)

  def q_at(frames, actions):
    image = tf.constant(frames[:, rows, cols].astype(np.float32) / 127.5 - 1.0)
    logits, _ = q_net(({'image': image, 'gripper_state': tf.constant(gripper)},
                       tf.constant(actions)), training=False)
    return tf.sigmoid(logits).numpy()

  distances = np.linalg.norm(a_gen[:, :2] - a_real[:, :2], axis=-1)  # [N]
  return {'value_abs_diff': float(np.mean(np.abs(v_gen - v_real))),
          'q_abs_diff_at_real_action': float(np.mean(np.abs(
              q_at(generated, a_real) - q_at(real, a_real)))),
          'action_xy_distance': float(np.mean(distances)),
          'action_xy_distance_se': float(np.std(distances, ddof=1) / np.sqrt(n)) if n > 1 else
                                   float('nan'),
          'action_xy_distances': [round(float(d), 5) for d in distances],
          'mean_value_real': float(np.mean(v_real)), 'num_states': int(n)}
