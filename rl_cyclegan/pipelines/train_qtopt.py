"""QT-Opt train/eval loop: one Q-function from on-policy sim and/or off-policy real episodes.

The baselines of paper Tables 1-3 and the final-Q phase of RL-CycleGAN (Section 4):

  Sim-Only / Randomized-Sim   appearance 'sim' / 'randomized', sim_fraction 1, collection on
  Real-Only                   real_episode_dir, sim_fraction 0, no collection
  Sim+Real (Appendix A)       both, sim_fraction 0.5 ("equal parts"), real_loss_weight
  final Q of RL-CycleGAN      + generator_checkpoint: a frozen Sim2Real G on the sim images,
                              not on real images. translate_frames (default): G translates
                              each whole frame once (data/translation.py): the sim log into a
                              cached copy under root_dir/translated_sim_log, every rendered sim
                              frame in the sim-to-real env (envs/sim2real.py), and the replay
                              stores G's output, so a train step costs what Sim-Only's costs.
                              translate_frames=False: G on the crops in every train step
                              (QTOptLearner(image_transform=G)) and action (CEMPolicy).

The loop (collection, train steps, summaries, evaluation, checkpoints, snapshots, SIGTERM)
is runner.py's; the run directory's layout is run_dir.py's. Shared settings are runner.py's
gin groups (Environment.*, Replay.*, Exploration.*, Evaluation.*, Checkpointing.*); this
module adds the learner, the frozen G of the final-Q phase and its evaluation policies
(greedy CEM per appearance in ``eval_appearances``).
"""

import dataclasses
import hashlib
import os
from typing import Optional, Sequence

import gin
import numpy as np
import tensorflow as tf

from rl_cyclegan import run_dir
from rl_cyclegan import specs
from rl_cyclegan.data import translation
from rl_cyclegan.learners import qtopt as qtopt_lib
from rl_cyclegan.train import loop
from rl_cyclegan.replay import buffers as replay_lib
from rl_cyclegan.train import runner

TRANSLATED_SIM_LOG_SUBDIR = 'translated_sim_log'  # G(sim log), made once per generator
_log = loop.make_logger('train_qtopt')


def replay_digest(replay: replay_lib.TransitionReplay) -> str:
  """Order-independent digest of every transition in ``replay`` (for resume checks)."""
  data = replay.gather_all()
  leaves = replay_lib._leaves(data)  # pylint: disable=protected-access
  rows = []
  for i in range(replay.num_transitions):
    h = hashlib.sha1()
    for leaf in leaves:
      h.update(np.ascontiguousarray(leaf[i]).tobytes())
    rows.append(h.hexdigest())
  return hashlib.sha1(''.join(sorted(rows)).encode()).hexdigest()


def load_frozen_generator(path: str, key: str = 'G_sim2real', crop_size=specs.DEFAULT_CROP_SIZE):
  """The frozen G (``trainable = False``, called with ``training=False``) from ``path``: a run
  directory (built per its run spec) or a checkpoint prefix / directory (a UNetGenerator
  built from gin at ``crop_size``); ``run_dir.restore_network``.

  Raises FileNotFoundError / ValueError naming the checkpoint and what was expected.
  """
  generator = run_dir.restore_network(path, key, crop_size, cls='UNetGenerator')
  generator.trainable = False
  return generator


def collection_parts(settings: runner.Settings, generator_checkpoint: Optional[str],
                     generator_checkpoint_key: str = 'G_sim2real', translate_frames: bool = True):
  """(G, frame translator, per-crop transform, make_env) of collection and evaluation.

  Without ``generator_checkpoint`` only ``make_env`` (the Environment's) is set. With it (the
  final-Q phase) G is loaded frozen; ``translate_frames``: G translates whole sim frames in the
  sim-to-real env (Fig. 6) and the policy sees no transform; else the policy applies G to its
  crops. The learner and every actor process (``run_actor``) build theirs here.
  """
  from rl_cyclegan.envs import sim2real  # pylint: disable=g-import-not-at-top
  env = settings.environment
  generator = translator = None
  if generator_checkpoint:
    generator = load_frozen_generator(generator_checkpoint, generator_checkpoint_key,
                                      env.crop_size)
    if translate_frames:
      translator = translation.FrameTranslator(generator)
    _log(f'frozen Sim2Real generator from {generator_checkpoint} (final-Q phase), applied '
         f'{"once per whole frame, cached" if translator else "to the crops in every step"}')
  # With cached translation the learner never sees G: its inputs are G's output already.
  crop_transform = generator if translator is None else None  # per-crop G (older runs)

  def make_env(appearance, object_split, seed):
    e = env.make_env(appearance, object_split, seed)
    if translator is not None and appearance != 'real':  # Fig. 6's sim-to-real environment
      e = sim2real.Sim2RealEnv(e, translator)
    return e

  return generator, translator, crop_transform, make_env


def run_actor(reverb_address: str, actor_id: int, seed: int = 0,
              return_discount: Optional[float] = None, max_episodes: Optional[int] = None,
              log=_log) -> int:
  """One QT-Opt actor process (actors/reverb_actor.py) configured by the parsed gin.

  Gin holds what the learner's run holds (the learner writes it to
  ``<root_dir>/actors/actor.gin``): the shared groups (Environment, Exploration, ...), the
  networks, and ``train_eval.generator_checkpoint`` / ``translate_frames`` of the final Q.
  ``return_discount``: the learner's (set when its replay stores Monte Carlo returns).
  Returns the episodes inserted.
  """
  from rl_cyclegan.actors import policies  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.actors import reverb_actor  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.networks import q_network as q_network_lib  # pylint: disable=g-import-not-at-top
  settings = runner.Settings()
  env, x = settings.environment, settings.exploration
  bound = gin.get_bindings('train_eval')
  _, _, crop_transform, make_env = collection_parts(
      settings, bound.get('generator_checkpoint'),
      bound.get('generator_checkpoint_key', 'G_sim2real'), bound.get('translate_frames', True))
  q_network = q_network_lib.GraspingQNetwork(crop_size=env.crop_size, name='Q')
  q_network.create_variables()
  env_seeds, policy_seed = reverb_actor.actor_seeds(seed, actor_id, env.num_envs)
  policy = policies.CEMPolicy(q_network, render_size=env.render_size, crop_size=env.crop_size,
                              image_transform=crop_transform,
                              allowed_modes=env.allowed_modes, seed=policy_seed)
  envs = [make_env(env.appearance, 'train', s) for s in env_seeds]
  actor = None
  try:
    actor = reverb_actor.ReverbActor(
        reverb_address, envs, policy, x.at, actor_id, seed, env.render_size,
        return_discount=return_discount, pull_interval=settings.actors.pull_interval, log=log,
        make_env=lambda i: make_env(env.appearance, 'train', env_seeds[i]))
    return actor.run(max_episodes)
  finally:
    for e in (actor.envs if actor is not None else envs):  # with any replaced env
      e.close()


@gin.configurable(denylist=['root_dir'])
def train_eval(
    root_dir: str,
    num_train_steps: int = 20_000,
    batch_size: int = 32,  # transitions per step (paper: 8 real + 8 sim)
    sim_fraction: float = 1.0,  # sim share of a batch: 1 Sim-Only, 0 Real-Only, 0.5 App. A
    real_loss_weight: float = qtopt_lib.PAPER_REAL_LOSS_WEIGHT_SMALL,  # lambda_RL-real, App. A
    eval_appearances: Sequence[str] = ('sim', 'real'),
    # ---- Final-Q phase: a frozen Sim2Real generator G on the sim images.
    generator_checkpoint: Optional[str] = None,  # a run directory or a checkpoint
    generator_checkpoint_key: str = 'G_sim2real',
    translate_frames: bool = True,  # G once per whole frame, cached (False: per crop, per step)
    # Warm start of the Q-network (online and both targets) from another QT-Opt run's
    # checkpoint (a prefix or a train/ckpt directory; key 'q_network'), at a fresh start only.
    # Not in QT-Opt: Table 1's critics'-start lever fine-tunes the Sim-Only Q on the real log.
    init_checkpoint: Optional[str] = None,
    seed: int = 0,
    settings: Optional[runner.Settings] = None,  # None: every group from gin
    replay_digests: bool = False):  # tests: return digests of the sim replay at start / end
  """Trains one QT-Opt Q-function; see the module docstring. Returns a dict of run facts.

  Shared settings (environment, replay, exploration, evaluation, checkpointing) are the gin
  groups of runner.py; learner settings are QTOptLearner.* / QTOptCritic.*.

  Raises:
    ValueError / TypeError naming the setting for inconsistent or mistyped arguments,
    EpisodeFormatError naming the file for a bad episode directory, and ValueError naming
    the checkpoint file when the latest checkpoint cannot be restored into this configuration.
  """
  settings = settings or runner.Settings()
  env = settings.environment
  check_steps = runner.check_steps
  check_steps('train_eval.num_train_steps', num_train_steps)
  if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
    raise TypeError(f'train_eval.batch_size = {batch_size!r}: expected an integer >= 1')
  from rl_cyclegan.envs import appearance as appearance_lib  # pylint: disable=g-import-not-at-top
  eval_appearances = runner.check_names('train_eval.eval_appearances', eval_appearances,
                                        appearance_lib.APPEARANCE_NAMES)
  runner.check_data(settings, sim_fraction, needs_real=False, owner='train_eval')
  os.makedirs(root_dir, exist_ok=True)

  # ------------------------------------------------------------------ G, learner
  generator, translator, crop_transform, make_env = collection_parts(
      settings, generator_checkpoint, generator_checkpoint_key, translate_frames)
  if generator is not None:
    if translator is not None and settings.replay.sim_episode_dir:
      cached = translation.translate_episode_dir(
          translator, settings.replay.sim_episode_dir,
          os.path.join(root_dir, TRANSLATED_SIM_LOG_SUBDIR), env.render_size,
          generator_name=generator_checkpoint, log=_log)
      settings = dataclasses.replace(settings, replay=dataclasses.replace(
          settings.replay, sim_episode_dir=cached))
  learner = qtopt_lib.QTOptLearner(crop_size=env.crop_size, real_loss_weight=real_loss_weight,
                                   image_transform=crop_transform,
                                   allowed_modes=env.allowed_modes)

  def train_step(sampler, step, context):
    del step, context
    sim_batch, real_batch = sampler.sample(training=True, with_returns=learner.needs_returns)
    returns = {}
    if learner.needs_returns:  # (batch, returns) pairs
      if sim_batch is not None:
        sim_batch, returns['sim_returns'] = sim_batch
      if real_batch is not None:
        real_batch, returns['real_returns'] = real_batch
    return learner.train_step(sim_batch, real_batch, **returns)

  def write_summaries(info, step):
    del step
    loop.write_loss_info(info, lambda f: f'loss/{f}' if f.startswith(('loss', 'td'))
                         else f'q/{f}')
    tf.summary.scalar('train/learning_rate', float(learner.critic.optimizer.learning_rate.numpy()))

  def digest(name):
    return lambda result, context: result.update({
        f'sim_replay_digest_{name}': replay_digest(context.collection.replay),
        f'sim_replay_transitions_{name}': context.collection.replay.num_transitions})

  def fresh_start():
    _log(f'Q-network (online and targets) initialized from '
         f'{learner.critic.initialize_from(init_checkpoint)}')

  pipeline = runner.Pipeline(
      name='train_qtopt', learner=learner, train_step=train_step,
      fresh_start=fresh_start if init_checkpoint else None,
      write_summaries=write_summaries,
      progress_head=lambda info: (f'loss {float(info.loss):.4f} Q {float(info.mean_q):.3f} '
                                  f'target {float(info.target_q):.3f} std '
                                  f'{float(info.q_std):.3f}'),
      # Q is trained on G(sim): sim-like appearances go through G, 'real' images do not.
      eval_policies={a: (a, learner.q_network, crop_transform if a != 'real' else None)
                     for a in eval_appearances},
      run_spec=dict(kind='qtopt', policy_q_key='q_network',
                    generator_key=generator_checkpoint_key if generator is not None else None,
                    generator_input=(('frames' if translator is not None else 'crops')
                                     if generator is not None else None)),
      collect_network=learner.q_network, collect_transform=crop_transform,
      snapshot_network=learner.q_network, sim_fraction=sim_fraction, batch_size=batch_size,
      # QTOptCritic.mc_return_weight > 0: every replay also stores discounted returns-to-go.
      return_discount=learner.critic.gamma if learner.needs_returns else None,
      extra_items={generator_checkpoint_key: generator} if generator is not None else {},
      make_env=make_env,
      # What an actor process (run_actor) needs beyond the gin groups to rebuild make_env and
      # the collection policy.
      actor_bindings=(f'train_eval.generator_checkpoint = {generator_checkpoint!r}',
                      f'train_eval.generator_checkpoint_key = {generator_checkpoint_key!r}',
                      f'train_eval.translate_frames = {translate_frames!r}'))
  if replay_digests and sim_fraction > 0:
    pipeline.on_open, pipeline.on_finish = digest('start'), digest('end')
  return runner.run(root_dir, pipeline, settings, num_train_steps, seed, _log)
