"""One frozen generator's report for Table 1 (tools/generator_report.py): scene metrics on whole
held-out paired frames, seen as the final Q sees them (center crop of G(frame)) and as the joint
training saw them (G(center crop)), and the Figure 4 states. Evaluation only."""

import os
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from rl_cyclegan import fileio
from rl_cyclegan.data import translation
from rl_cyclegan.train import paired_set as paired_set_lib
from rl_cyclegan.train import scene_metrics
from rl_cyclegan.train import train_qtopt


def center_window(h, w, crop_size):
  ch, cw = crop_size
  top, left = (h - ch) // 2, (w - cw) // 2
  return slice(top, top + ch), slice(left, left + cw)


def report(run_dir: str, paired_path: str, crop_size: Sequence[int], key: str = 'G_sim2real',
           generator_dir: Optional[str] = None, figure_path: Optional[str] = None,
           figure_states: int = 4) -> dict:
  """The report dict; also writes G alone to ``generator_dir`` and the figure states."""
  ckpt_dir = os.path.join(run_dir, 'train', 'ckpt')
  generator = train_qtopt.load_frozen_generator(ckpt_dir, key, crop_size)
  checkpoint = tf.train.latest_checkpoint(ckpt_dir)
  step = int(checkpoint.rsplit('-', 1)[-1])
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

  out = {'run_dir': run_dir, 'step': step, 'generator_fingerprint': translator.fingerprint,
         'paired_set': paired_path, 'num_states': int(len(sim)),
         'frame': metrics(frame_view), 'crop': metrics(crop_view),
         'frame_vs_crop': translation.frame_vs_crop_difference(generator, sim, real, crop_size)}
  if generator_dir:
    ckpt = tf.train.Checkpoint(**{key: generator})
    _ = ckpt.save_counter
    ckpt.write(os.path.join(generator_dir, f'g-{step}'))
    fileio.write_text_atomic(os.path.join(generator_dir, 'checkpoint'),
                             f'model_checkpoint_path: "g-{step}"\n'
                             f'all_model_checkpoint_paths: "g-{step}"\n')
  if figure_path:
    n = min(figure_states, len(sim))
    fileio.write_atomic(figure_path, lambda f: np.savez_compressed(
        f, sim=cropped['sim'][:n], generated=frame_view[:n], real=cropped['real'][:n]),
                        mode='wb')
  return out

