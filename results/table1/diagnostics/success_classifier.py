"""Ad hoc (session 21): does the image carry the grasp outcome as well in `real` as in `sim`?

The Table 1 logs (`data/sim_mix18`, `data/real_mix18`, `data/randomized_mix18`) are collected
with the same seed and the same scripted policy, which acts on the simulator's state: episode i
of each log is the same episode (same objects, actions and outcome), rendered in another
appearance. That makes a matched test of what a Q-function can learn from the pixels:
train the recipe's Q-network (gin/networks_spatial.gin) as a supervised classifier of the last
step's reward (the image before the last action, the gripper state, the last action -> grasp
success), on the same episodes of each log, and compare the held-out AUC (the script checks
that the logs' actions and outcomes match). The same classifier on grey images says what the
gripper state and the last action alone tell.

If real's AUC is near sim's, the real images carry the outcome, and a Q trained in real that
stays near ~30% (the oracle row) fails at learning, not for lack of information. If real's
AUC is far below, the world hides what the task needs at this resolution.

Usage:
  python results/table1/diagnostics/success_classifier.py --output=<json> \
      sim=<work>/data/sim_mix18 real=<work>/data/real_mix18 [--train=3000 --test=1000 --epochs=15]
Each log: the first train + test episodes of the shards that every log has (a log still being
collected can be used), in shard order; test = the last `test` of them.
"""
import argparse
import glob
import json
import os
import time

import numpy as np
import tensorflow as tf

from rl_cyclegan import gin_utils
from rl_cyclegan import specs
from rl_cyclegan.data import episodes as episodes_lib
from rl_cyclegan.data import preprocessing
from rl_cyclegan.networks import q_network as q_network_lib


def _shards(log_dir):
  """{shard index: path} of the log's complete shards."""
  paths = glob.glob(os.path.join(log_dir, 'episodes-*.tfrecord'))
  return {int(os.path.basename(p).split('-')[1]): p for p in paths}


def last_steps(log_dir, count, shard_indices):
  """(images uint8 [N,H,W,3], gripper [N,2], actions [N,8], labels [N], episode ids) of the
  last step of the first ``count`` episodes of the given shards of the log."""
  images, grippers, actions, labels, ids = [], [], [], [], []
  shards = _shards(log_dir)
  for index in shard_indices:
    for ep in episodes_lib.read_episodes(shards[index]):
      t = len(ep.actions) - 1
      images.append(ep.images[t])
      grippers.append(ep.gripper_states[t])
      actions.append(ep.actions[t])
      labels.append(float(np.ravel(ep.rewards)[t] > 0))
      ids.append(ep.metadata['episode_id'])
      if len(labels) == count:
        return (np.stack(images), np.stack(grippers).astype(np.float32),
                np.stack(actions).astype(np.float32), np.asarray(labels, np.float32), ids)
  raise ValueError(f'{log_dir}: only {len(labels)} episodes in the shards every log has '
                   f'({len(shard_indices)}), expected {count}')


def auc(scores, labels):
  """Area under the ROC curve (rank statistic; ties get the mean rank)."""
  order = np.argsort(scores, kind='mergesort')
  ranks = np.empty(len(scores))
  sorted_scores = scores[order]
  i = 0
  while i < len(scores):
    j = i
    while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
      j += 1
    ranks[order[i:j + 1]] = (i + j) / 2.0 + 1
    i = j + 1
  positives = labels > 0.5
  n_pos, n_neg = positives.sum(), (~positives).sum()
  return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def train_and_test(data, train, epochs, batch_size, seed):
  """Held-out AUC after each epoch, and the training AUC at the end."""
  tf.keras.utils.set_random_seed(seed)
  images, grippers, actions, labels, _ = data
  crop = specs.DEFAULT_CROP_SIZE
  net = q_network_lib.GraspingQNetwork(crop_size=crop, name='Q')
  optimizer = tf.keras.optimizers.Adam(1e-3)

  def observation(index, training):
    image = preprocessing.to_model_image(tf.constant(images[index]))
    image = tf.stack([preprocessing.crop(im, crop, training, seed=[seed, int(i)])
                      for i, im in zip(index, tf.unstack(image))])
    return {'image': image, 'gripper_state': tf.constant(grippers[index])}

  @tf.function
  def step(obs, act, y):
    with tf.GradientTape() as tape:
      logits, _ = net((obs, act), training=True)
      loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits))
    grads = tape.gradient(loss, net.trainable_variables)
    optimizer.apply_gradients(zip(grads, net.trainable_variables))
    return loss

  def scores(index):
    out = []
    for k in range(0, len(index), 256):
      part = index[k:k + 256]
      out.append(net((observation(part, False), tf.constant(actions[part])))[0].numpy())
    return np.concatenate(out)

  rng = np.random.default_rng(seed)
  train_index, test_index = np.arange(train), np.arange(train, len(labels))
  curve = []
  for epoch in range(epochs):
    losses = []
    for k in range(0, train - batch_size + 1, batch_size):
      part = rng.choice(train_index, batch_size, replace=False)
      losses.append(float(step(observation(part, True), tf.constant(actions[part]),
                               tf.constant(labels[part]))))
    curve.append({'epoch': epoch + 1, 'train_loss': float(np.mean(losses)),
                  'test_auc': auc(scores(test_index), labels[test_index])})
    print(json.dumps(curve[-1]), flush=True)
  return {'curve': curve, 'train_auc': auc(scores(train_index), labels[train_index])}


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('logs', nargs='+', help='name=<log dir>')
  parser.add_argument('--train', type=int, default=3000)
  parser.add_argument('--test', type=int, default=1000)
  parser.add_argument('--epochs', type=int, default=15)
  parser.add_argument('--batch_size', type=int, default=32)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--no_blind', action='store_true', help='skip the no-image classifier')
  parser.add_argument('--output', required=True)
  args = parser.parse_args()
  gin_utils.parse_gin(['gin/networks_spatial.gin'], [], skip_unknown=True)
  out = {'train_episodes': args.train, 'test_episodes': args.test, 'epochs': args.epochs,
         'seed': args.seed, 'network': 'gin/networks_spatial.gin', 'logs': {}}
  logs = dict(spec.split('=', 1) for spec in args.logs)
  common = sorted(set.intersection(*(set(_shards(d)) for d in logs.values())))
  loaded = {name: last_steps(d, args.train + args.test, common) for name, d in logs.items()}
  first = next(iter(loaded.values()))
  for name, data in loaded.items():
    same = np.mean([a == b for a, b in zip(data[4], first[4])])
    start = time.time()
    result = train_and_test(data, args.train, args.epochs, args.batch_size, args.seed)
    result.update(
        log=logs[name],
        success_rate_test=float(data[3][args.train:].mean()),
        same_episode_ids_as_first=float(same),
        same_labels_as_first=float(np.mean(data[3] == first[3])),
        same_actions_as_first=float(np.mean(np.all(np.isclose(data[2], first[2]), axis=1))),
        seconds=time.time() - start)
    out['logs'][name] = result
    print(name, json.dumps({k: v for k, v in result.items() if k != 'curve'}), flush=True)
  # For scale: the same classifier without the image (every pixel grey), i.e. what the gripper
  # state and the last action alone say about the outcome.
  if not args.no_blind:
    blind = (np.full_like(first[0], 128),) + tuple(first[1:])
    out['logs']['no image'] = train_and_test(blind, args.train, args.epochs, args.batch_size,
                                             args.seed)
    print('no image', out['logs']['no image']['train_auc'], flush=True)
  with open(args.output, 'w') as f:
    json.dump(out, f, indent=1)


if __name__ == '__main__':
  main()
