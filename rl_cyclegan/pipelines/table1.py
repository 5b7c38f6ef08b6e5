"""Paper Table 1 (Section 6.1) in the pseudo-real world, as resumable stages (``make table1``).

Each generator (GAN, CycleGAN, GraspGAN-style, RL-CycleGAN) is trained jointly with Q_sim and
Q_real (tools/train_rl_cyclegan.py), frozen, and used to train a final Q from simulation alone
with the Sim-Only recipe (gin/table1_final_q.gin = gin/qtopt_sim_only.gin + the frozen G, which
translates every frame once: data/translation.py). Sim-Only, a like-for-like Randomized-Sim and a
real-trained oracle complete the table. Every final Q is measured on the unseen test objects in
`real` (and in `sim`, seen through its G) at fixed evaluation seeds.

A stage is one run of an existing binary (collect, make_paired_set, train_rl_cyclegan,
translate_episodes, train_qtopt, generator_report, evaluate) with its own output directory:

  <work_dir>/data/<log>                       collect.py (resumable shards, summary.json last)
  <work_dir>/<row>/joint                      train_rl_cyclegan.py (resumes from its checkpoint)
  <work_dir>/<row>/final_q/translated_sim_log translate_episodes.py (G's fingerprint checked)
  <work_dir>/<row>/final_q                    train_qtopt.py (resumes from its checkpoint)
  <work_dir>/<row>/generator_report.json      generator_report.py (scene metrics, Figure 4 rows)
  <work_dir>/<row>/eval/<what>_seed<k>.json   evaluate.py (atomic JSON)

A stage is finished when its marker exists: the JSON an evaluation writes, or
``table1_stage.json``, written after the binary exits 0. Re-running skips finished stages and
re-runs the others; the binaries resume from their checkpoints. A stage directory holds a lock
(``table1_stage.lock``: pid and host) while its binary runs; a second runner on the same stage
stops at once, naming the holder; a lock of a dead pid on this host is taken over.

After every row stage, ``publish_row`` copies what a reader needs into
``results/table1/<row>/`` (G alone, the generator report, evaluation JSONs, the final-Q
checkpoint cut to the Q (``run_dir.write_policy_checkpoint``: no target networks or optimizer
state; a frozen G is not copied again but named in its run_spec.json's ``network_sources``: the
row's published G, or its G row's) and its config, the stages' done markers, and each
finished training run's TensorBoard
scalars as ``scalars.json``), ready to commit. A stage whose marker
is there is finished even when the run directory is gone (a lost machine), and the stages
after the joint training read G from there, so a committed G is never trained again.
``summarize`` writes results/table1/summary.json, docs/table1.md and docs/table1.png from the
published rows.

The pseudo-real world is the project's ('real', ``real_gap`` 1.0) unless ``real_gap`` is given:
then every 'real' log is collected, every run trains and every evaluation renders in that world
(``RealAppearance.real_gap``), and its docs are docs/table1_real_gap<G>.md. A world is written
to ``world.json`` in the work and results directories at the first run, and a runner of another
world refuses them, so two worlds' results never mix.

A Q-network variant (``q_normalization``: 'layer' or 'batch', ``GraspingQNetwork.normalization``)
is a table of its own in the same way: every Q-function of it (the joint runs' critics, every
final Q, the oracle's) has that normalization, the Sim-Only row is trained again with it in the
work directory (so the rows compare like with like, and the joint critics start from it), it is
recorded in ``world.json`` beside the world, and its docs are docs/table1[_real_gap<G>]_q<N>.md.
"""

import dataclasses
import fcntl
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from rl_cyclegan import fileio
from rl_cyclegan import lifecycle
from rl_cyclegan import progress
from rl_cyclegan import run_dir
from rl_cyclegan.envs.appearance import DEFAULT_REAL_GAP  # the project's pseudo-real world

DONE_FILE = 'table1_stage.json'
FROZEN_G_KEY = 'G_sim2real'  # the checkpoint key of a final Q's frozen G
WORLD_FILE = 'world.json'
LOCK_FILE = 'table1_stage.lock'
# A data stage (a log shared by many rows) that another runner is collecting is waited for,
# polling its lock this often; a training stage held by another runner is an error.
DATA_LOCK_POLL_S = 30.0
EVAL_SEEDS = (0, 1, 2)
# Rows in table order; a row with two training seeds is reported pooled under its own key.
ROWS = ('sim_only', 'randomized_sim', 'randomized_sim_fq', 'gan', 'cyclegan', 'cyclegan_fq',
        'graspgan', 'rl_cyclegan', 'rl_cyclegan_fq', 'rl_cyclegan_scratch', 'rl_cyclegan_rlscene1',
        'rl_cyclegan_long', 'rl_cyclegan_real_critic', 'rl_cyclegan_adam_per_loss', 'real_oracle',
        'real_oracle_fq', 'random')
GENERATOR_ROWS = {  # row -> gin of its joint training
    'gan': 'gin/table1_gan.gin',
    'cyclegan': 'gin/table1_cyclegan.gin',
    'graspgan': 'gin/table1_graspgan.gin',
    'rl_cyclegan': 'gin/table1_rl_cyclegan.gin',
    # The paper-faithful setting: critics from scratch, no sim log in the joint batches.
    'rl_cyclegan_scratch': 'gin/table1_rl_cyclegan_scratch.gin',
}
# Bindings a row's frozen G needs wherever the final Q's config builds it (the translation and
# the final Q): its joint gin's UNetGenerator settings beyond gin/table1_final_q.gin's. GraspGAN's
# G has a mask head (its auxiliary segmentation task); the head is restored and never used, since
# the final Q takes only the image. A test checks these against the rows' joint gin files.
FROZEN_G_BINDINGS = {'graspgan': ('UNetGenerator.num_mask_classes = 4',)}
# The paper's levers (issue 18: if RL-CycleGAN does not beat CycleGAN, "try the paper's levers
# (lambda_RL-scene, joint-training length, the critics' start). Each is a documented variant,
# and the faithful row stays"): each lever row changes one thing of the RL-CycleGAN row at
# seed 0 (rl_cyclegan_rlscene1 also at seed 1: TRAINING_SEEDS), in a gin file that includes
# gin/table1_rl_cyclegan.gin (which says why). The critics' start from scratch is
# rl_cyclegan_scratch above. Lever rows are run by name, not by --rows=all. A row of ours that a
# measurement of why pointed to is a lever row too, marked as ours in its gin and label.
LEVER_ROWS = {
    'rl_cyclegan_rlscene1': 'gin/table1_rl_cyclegan_rlscene1.gin',  # lambda_RL-scene 1, not 10
    'rl_cyclegan_long': 'gin/table1_rl_cyclegan_long.gin',  # 20,000 joint steps, not 10,000
    # Q_real starts from the Sim-Only Q fine-tuned on the real log (stage <row>/real_critic).
    'rl_cyclegan_real_critic': 'gin/table1_rl_cyclegan_real_critic.gin',
    # Ours, not the paper's (docs/results.md, "Session 38"): G and F keep one Adam per loss,
    # so L_RL-scene's gradient no longer scales the steps of L_GAN and L_cycle.
    'rl_cyclegan_adam_per_loss': 'gin/table1_rl_cyclegan_adam_per_loss.gin',
}
REAL_CRITIC_ROWS = ('rl_cyclegan_real_critic',)
REAL_CRITIC_GIN = 'gin/table1_real_critic.gin'
REAL_CRITIC_STEPS = 4_000  # train_eval.num_train_steps of REAL_CRITIC_GIN (a test checks it)
GENERATOR_ROWS.update(LEVER_ROWS)
# A lever row whose joint run trains another row's finished one on: with no checkpoint of its
# own it starts from a copy of that run (``Table1.continue_joint``), so steps already trained
# are not trained again; its joint steps are this multiple of the table's.
JOINT_CONTINUES = {'rl_cyclegan_long': 'rl_cyclegan_seed0'}
JOINT_STEPS_FACTOR = {'rl_cyclegan_long': 2}
CONTINUED_NOTE = 'continued_from.json'  # in a joint run's directory: whose run it trained on
PAPER_FAITHFUL_ROWS = ('rl_cyclegan_scratch',)  # neither of table1_joint.gin's deviations
# Issue 18: run-to-run spread reaches 22 points. The lambda_RL-scene 1 lever has a second
# training seed too since session 34: at seed 0 it came level with CycleGAN (62.0% against
# 57.0% and 63.0%, paired), the one variant so far whose figure could decide the goal. Its seed
# 1 is rl_cyclegan_seed1 with that one change, as its seed 0 is rl_cyclegan_seed0's; its seed-0
# run kept its results when its key became 'rl_cyclegan_rlscene1_seed0' (docs/results.md,
# "Session 34"). Row -> its training seeds; key '<row>_seed<k>' is training seed k. A row is
# pooled over the seeds measured so far.
# Since session 36 the headline rows have a third training seed: run by run (each final Q one
# measurement, ``between_runs``), two Gs a side did not establish even RL-CycleGAN's 21-point
# deficit (Welch p = 0.096 over final Qs, 0.28 over Gs), and a Welch test at the spreads
# measured needs ~6 a side (docs/results.md, "Session 36").
TRAINING_SEEDS = {'cyclegan': (0, 1, 2), 'rl_cyclegan': (0, 1, 2), 'cyclegan_fq': (0, 1),
                  'rl_cyclegan_fq': (0, 1), 'rl_cyclegan_rlscene1': (0, 1)}
# A second final Q on each headline G (docs/results.md, "Session 33"). With one final Q per G, a
# row's figure mixes its G's effect with its final Q's luck: the final Q's learner collapsed
# (a blind image tower) in 1 of the 0.75 table's 5 final Qs, on a G with which another
# final-Q seed learned (the probe of session 32). Row '<row>_fq' at training seed k: the G of
# '<row>_seed<k>' as published, the same recipe, final-Q seed k + FINAL_Q_REPLICATE_SEED_OFFSET
# (fixed before any of these ran, so no seed is chosen on a result). No joint run of its own.
FINAL_Q_REPLICATES = {'cyclegan_fq': 'cyclegan', 'rl_cyclegan_fq': 'rl_cyclegan'}
FINAL_Q_REPLICATE_SEED_OFFSET = 2
# A first final Q at training seed k >= FINAL_Q_REPLICATE_SEED_OFFSET would share its final-Q
# seed (its training scenes, collection and exploration streams) with the second final Q of
# training seed k - OFFSET: the third training seed's final Qs (session 37, before any ran)
# take k + FIRST_FINAL_Q_SEED_SHIFT instead (``final_q_seed``).
FIRST_FINAL_Q_SEED_SHIFT = 10
# A second final Q of the real-trained oracle (docs/results.md, "Session 35"): the recipe again
# with everything in `real`, final-Q seed 0 + FINAL_Q_REPLICATE_SEED_OFFSET, on the same real log.
# The oracle is the goal's reference and, since sim and real share their physics, what a perfect
# G would give (``_perfect_translator_line``); CycleGAN s1's and the lambda_RL-scene 1 lever's
# final Qs scored above it (paired p = 0.015 and 0.034), and one final Q's luck moved a figure
# by ~6 points. The goal's line keeps the row it named, `real_oracle`.
# And a second final Q of Randomized-Sim (docs/results.md, "Session 37"), the same way on its own
# randomized log: its first final Q's image tower collapsed by step 8,000 (a blind policy at the
# random floor), so that row measured the learner's failure, not domain randomization; a second
# final-Q seed tells whether the recipe learns from randomized images at all.
REFERENCE_REPLICATES = {'real_oracle_fq': 'real_oracle', 'randomized_sim_fq': 'randomized_sim'}


def final_q_seed(base: str, seed: int) -> int:
  """The final Q's ``train_eval.seed`` of row ``base`` at training seed ``seed``: a second
  final Q's (FINAL_Q_REPLICATES, REFERENCE_REPLICATES) is seed + FINAL_Q_REPLICATE_SEED_OFFSET;
  a first final Q's is its training seed, moved by FIRST_FINAL_Q_SEED_SHIFT where that seed
  is a second final Q's. Rows of one training seed share their final-Q seed across recipes
  (common random numbers), and no two final Qs of one recipe share one."""
  if base in FINAL_Q_REPLICATES or base in REFERENCE_REPLICATES:
    return seed + FINAL_Q_REPLICATE_SEED_OFFSET
  return seed + (FIRST_FINAL_Q_SEED_SHIFT if seed >= FINAL_Q_REPLICATE_SEED_OFFSET else 0)


# The rows trained by the Sim-Only recipe in one appearance, without a G: (appearance, log).
APPEARANCE_ROWS = {'sim_only': ('sim', 'sim_mix18'),
                   'randomized_sim': ('randomized', 'randomized_mix18'),
                   'real_oracle': ('real', 'real_mix18')}
# The swap test (docs/results.md, "Session 29"): each headline row's final Q is also measured in
# sim through the other row's G of the same training seed ('swap_sim'), once that G is
# published. A G whose images a Q treats like real ones predicts that Q's figure in real.
SWAP_PARTNERS = {'rl_cyclegan': 'cyclegan', 'cyclegan': 'rl_cyclegan'}
# Composite worlds (docs/results.md, "Session 39"): each final Q on G(sim) is also measured in
# `real` with some regions of every frame taken from its own G's translation of the sim render
# of the same state (sim2real.CompositeEnv; tools/evaluate.py --translated_regions): which of
# G's regions the final Q needs to succeed. 'none' is the control, the paired real render. The
# objects' and robot's masks grow by COMPOSITE_DILATION pixels (G's halo goes with the object).
COMPOSITE_WORLDS = {'composite_none': 'none', 'composite_background': 'background',
                    'composite_objects_robot': 'objects,robot'}
COMPOSITE_DILATION = 2
# The recipes whose G trained with L_RL-scene on (RL-CycleGAN, its paper-faithful row, its
# levers; their second final Qs through FINAL_Q_REPLICATES): the composite section compares
# their final Qs with the other G rows' (docs/results.md, "Session 39", "Session 40").
RL_SCENE_RECIPES = ('rl_cyclegan', 'rl_cyclegan_scratch', *LEVER_ROWS)
# The order the issue asks for: the headline comparison first.
RUN_ORDER = ('sim_only', 'rl_cyclegan_seed0', 'cyclegan_seed0', 'real_oracle', 'random',
             'rl_cyclegan_seed1', 'cyclegan_seed1', 'gan', 'graspgan', 'randomized_sim',
             'rl_cyclegan_scratch', 'rl_cyclegan_fq_seed0', 'cyclegan_fq_seed0',
             'rl_cyclegan_fq_seed1', 'cyclegan_fq_seed1', 'rl_cyclegan_seed2', 'cyclegan_seed2')
ROW_LABELS = {'sim_only': 'Sim-Only', 'randomized_sim': 'Randomized-Sim', 'gan': 'GAN',
              'cyclegan': 'CycleGAN', 'graspgan': 'GraspGAN-style', 'rl_cyclegan': 'RL-CycleGAN',
              'cyclegan_fq': "CycleGAN, a second final Q on the row's G (final-Q seed + 2)",
              'rl_cyclegan_fq': "RL-CycleGAN, a second final Q on the row's G (final-Q seed + 2)",
              'rl_cyclegan_scratch': 'RL-CycleGAN, paper-faithful (from scratch, no sim log)',
              'rl_cyclegan_rlscene1': 'RL-CycleGAN, lever: lambda_RL-scene 1',
              'rl_cyclegan_long': 'RL-CycleGAN, lever: joint training twice as long (seed 0)',
              'rl_cyclegan_real_critic': 'RL-CycleGAN, lever: Q_real starts from the Sim-Only Q '
                                         'fine-tuned on the real log (seed 0)',
              'rl_cyclegan_adam_per_loss': 'RL-CycleGAN, variant (ours): one Adam per loss on G '
                                           'and F (seed 0)',
              'real_oracle': 'Real-trained oracle',
              'real_oracle_fq': 'Real-trained oracle, a second final Q (final-Q seed + 2)',
              'randomized_sim_fq': 'Randomized-Sim, a second final Q (final-Q seed + 2)',
              # The floor: uniformly random moves, no image, on the same evaluation episodes.
              'random': 'Random policy (the floor)'}
PAPER_REAL_ROBOT = {'sim_only': 21, 'randomized_sim': 37, 'gan': 29, 'cyclegan': 61,
                    'graspgan': 63, 'rl_cyclegan': 70,
                    'rl_cyclegan_scratch': 70}  # % (paper Table 1, Robot 1)
SIM_ONLY_RESULTS = 'results/sim_only_ratio2'  # the Sim-Only row as it is (issue 18)
# GraspingQNetwork.normalization values of a Q-network variant (q_network.NORMALIZATIONS but
# None; not imported, so that planning a table needs no TensorFlow).
Q_NORMALIZATIONS = ('layer', 'batch')
FIGURE_STATES = 4
# While a training stage (a final Q or a joint run) trains, its newest checkpoint is copied to
# results/table1/<row>/<what>_interim every INTERIM_INTERVAL_S (committed by hand: a machine
# lost mid-run then costs at most that much training). It is never read as a result; a
# training stage with no checkpoint of its own adopts it (``Table1.adopt_interim``).
INTERIM_INTERVAL_S = 1200.0
# Which of a run's checkpoints (train/<subdir>) its interim copy holds: a final Q's full one
# (1.3 MB: it resumes exactly), a joint run's weights-only one (Checkpointing.weights_copy,
# which its stage turns on): 4.2 MB against the full one's 10.4 MB with Adam's two moments per
# variable (rl_cyclegan_long, session 41), small enough to commit; adopted, its optimizers
# start fresh.
INTERIM_CHECKPOINT = {'final_q': 'ckpt', 'joint': 'weights'}
INTERIM_NOTE = 'interim.json'
ADOPTED_NOTE = 'adopted_interim.json'  # in a run's directory: it resumed from an interim copy
# On adoption the on-policy replay (on the lost machine) is gone: before training resumes it
# is refilled with the restored policy's episodes, up to this many transitions (or as many as
# the run had collected by then, if fewer). The collection ratio counts them, so the run's env
# steps stay the same.
ADOPT_REFILL_TRANSITIONS = 10_000
# Exploration.collect_steps_per_train_step of each training stage's gin (qtopt_sim_only.gin,
# table1_joint.gin; a test checks them): the on-policy transitions a run holds at a step.
ENV_STEPS_PER_TRAIN_STEP = {'final_q': 2.0, 'joint': 0.5}


def interim_dir(what: str) -> str:
  """The results/<row>/ subdirectory of a training stage's interim copy ('final_q', 'joint')."""
  return f'{what}_interim'


def replicates_of(base: str) -> List[str]:
  """The rows that give recipe ``base`` another final Q (FINAL_Q_REPLICATES,
  REFERENCE_REPLICATES)."""
  return [r for r, b in {**FINAL_Q_REPLICATES, **REFERENCE_REPLICATES}.items() if b == base]


@dataclasses.dataclass(frozen=True)
class Scale:
  """Sizes of one table: ``full`` is the issue's protocol, ``tiny`` a seconds-long smoke run."""
  name: str = 'full'
  real_log_episodes: int = 5_000  # the pseudo-real off-policy log of every generator
  sim_log_episodes: int = 18_000  # the scripted logs of the Sim-Only recipe
  episodes_per_shard: int = 100
  eval_episodes: int = 100  # per evaluation seed
  paired_states: int = 64  # held-out paired states of the generator report
  # Held-out paired states of the oracle-Q report only (a set of its own, so the scene
  # figures above stay as committed): 64 gave the greedy-move distance an SE of ~0.06, too
  # wide to resolve a lever 0.085 from the faithful row (docs/results.md, "Session 30").
  oracle_states: int = 256
  joint_steps: Optional[int] = None  # None: the gin files' (10,000)
  final_steps: Optional[int] = None  # None: the gin files' (32,000)
  extra_bindings: Tuple[str, ...] = ()  # every training binary (tiny networks, sizes)
  render_size: Tuple[int, int] = (64, 80)
  crop_size: Tuple[int, int] = (64, 64)
  critic_init: bool = True  # joint critics start from the Sim-Only Q (gin/table1_joint.gin)
  # Rough rates on this project's 2-core machines (measured; others differ): for the plan.
  collect_episodes_per_s: float = 7.4
  joint_steps_per_s: float = 2.0
  final_steps_per_s: float = 5.4
  eval_episodes_per_s: float = 4.0
  # An evaluation's process starting (TF, the run's networks) before its first episode: its
  # stages took 28-31 s where its episodes took ~23 s (session 33's runner log).
  eval_start_s: float = 6.0
  # Resident memory of one final Q (its translated sim log and its replay in RAM): 7.4 GB
  # measured at 0.75 in session 33, and 8.0 GB at its peak while the translated log loads
  # (36 s after start; 6.7-6.9 GB after that, session 35). A runner starts one only when the
  # machine has that much available (``Table1.wait_for_memory``): in session 32 two
  # final-Q-sized probes beside two joint runs filled the 23 GB machine, and all four stalled
  # for 36 minutes.
  final_q_memory_gb: float = 8.0


FULL = Scale()
TINY = Scale(
    name='tiny', real_log_episodes=4, sim_log_episodes=4, episodes_per_shard=2, eval_episodes=2,
    paired_states=4, oracle_states=4, joint_steps=2, final_steps=2, render_size=(32, 40),
    crop_size=(32, 32), critic_init=False, final_q_memory_gb=0.0,
    extra_bindings=(
        'Environment.crop_size = (32, 32)', 'Environment.num_envs = 1',
        'Environment.num_objects = 2', 'Replay.min_replay_transitions = 4',
        'Evaluation.num_eval_episodes = 1',
        'train_rl_cyclegan.batch_per_domain = 2', 'train_eval.batch_size = 4',
        'train_rl_cyclegan.paired_set_num_states = 4',
        'train_rl_cyclegan.segmentation_set_num_states = 4',
        'GraspingQNetwork.stem_filters = 8', 'GraspingQNetwork.tower_filters = (8,)',
        'GraspingQNetwork.state_action_fc_units = (16,)', 'GraspingQNetwork.merged_filters = (8,)',
        'GraspingQNetwork.final_filters = (8,)', 'GraspingQNetwork.fc_units = (8,)',
        'GraspingQNetwork.num_keypoints = 4', 'GraspingQNetwork.stem_pool_size = 1',
        'UNetGenerator.filters = (8, 16)', 'MultiScaleDiscriminator.filters = (8, 16)',
        'GraspingEnv.max_steps = 3', 'GraspingEnv.num_objects = 2'))
SCALES = {'full': FULL, 'tiny': TINY}


@dataclasses.dataclass
class Stage:
  """One resumable step: a command, its output directory and how to tell it is finished."""
  name: str  # e.g. 'rl_cyclegan_seed0/joint'
  argv: List[str]
  directory: str  # holds the lock, the log and (by default) the done marker
  marker: str  # a file that exists only once the stage has finished
  estimate_s: float
  after: Callable[[], None] = lambda: None  # runs once the binary exits 0
  # The same marker in the committed results/table1/<row>/ (publish_row copies it there): a
  # stage that finished on a machine since lost is not run again.
  published: Optional[str] = None
  # The data stages whose output this one reads ('data/sim_mix18', ...): a log is collected
  # only while some unfinished stage still needs it (a lost machine re-collects only those).
  reads: Tuple[str, ...] = ()
  # Runs before the binary; returns extra arguments for it (e.g. ``Table1.adopt_interim``).
  prepare: Callable[[], List[str]] = lambda: []
  # Whether a finished output (the marker, or else the published copy) is still current: one
  # made for an older definition of the stage (e.g. fewer states) is made again.
  current: Callable[[str], bool] = lambda path: True
  # Runs every INTERIM_INTERVAL_S while the binary runs (``Table1.publish_interim``).
  interim: Optional[Callable[[], None]] = None
  estimate_note: str = ''  # where estimate_s comes from, when not the nominal Scale rates
  memory_gb: float = 0.0  # the memory its binary holds, waited for before it starts

  @property
  def done(self) -> bool:
    return any(path and os.path.exists(path) and self.current(path)
               for path in (self.marker, self.published))


def _size(hw):
  return f'{hw[0]}x{hw[1]}'


def _world(real_gap: float, q_normalization: Optional[str] = None) -> dict:
  """The table's world.json: its pseudo-real world and any Q-network variant."""
  world = {'appearance': 'real', 'real_gap': real_gap}
  if q_normalization is not None:
    world['q_normalization'] = q_normalization
  return world


def _holds_runs(directory: str) -> bool:
  """Whether a directory without world.json holds a table's runs (written before world.json
  existed): a row, stage or log directory. Files alone (a runner's log put beside the runs on
  a new machine) do not count."""
  return os.path.isdir(directory) and any(
      entry.is_dir() for entry in os.scandir(directory))


class Table1:
  """Builds the stages of the requested rows and runs them; see the module docstring."""

  def __init__(self, work_dir: str, repo_dir: str, scale: Scale = FULL,
               results_dir: Optional[str] = None, docs_dir: Optional[str] = None,
               critic_init: Optional[str] = None, python: str = sys.executable,
               log: Callable[[str], None] = None, real_gap: Optional[float] = None,
               q_normalization: Optional[str] = None, data_dir: Optional[str] = None):
    if real_gap is not None and not 0.0 <= real_gap <= 1.0:
      raise ValueError(f'real_gap must lie in [0, 1], got {real_gap}')
    if q_normalization is not None and q_normalization not in Q_NORMALIZATIONS:
      raise ValueError(f'q_normalization must be one of {Q_NORMALIZATIONS} (or none), got '
                       f'{q_normalization!r}')
    self.q_normalization = q_normalization
    self.real_gap = None if real_gap is None or real_gap == DEFAULT_REAL_GAP else float(real_gap)
    self.work_dir = os.path.abspath(work_dir)
    # The logs and the paired set (their own world, no Q-network in them): another table's of
    # the same world can serve, e.g. the plain table's for a Q-network variant.
    self.data_dir = os.path.abspath(data_dir or os.path.join(self.work_dir, 'data'))
    self.repo = os.path.abspath(repo_dir)
    self.scale = scale
    self.results_dir = os.path.abspath(results_dir or os.path.join(self.repo, 'results',
                                                                   'table1'))
    self.docs_dir = os.path.abspath(docs_dir or os.path.join(self.repo, 'docs'))
    self.critic_init = os.path.join(self.repo, critic_init or SIM_ONLY_RESULTS, 'train', 'ckpt')
    if q_normalization is not None and critic_init is None:  # this table's own Sim-Only Q
      self.critic_init = self.published('sim_only', 'final_q', 'train', 'ckpt')
    self.python = python
    self._log = log or (lambda m: print(f'[table1 {time.strftime("%H:%M:%S")}] {m}',
                                        file=sys.stderr, flush=True))

  # ------------------------------------------------------------------ paths
  def data(self, name):
    return os.path.join(self.data_dir, name)

  def row_dir(self, row):
    return os.path.join(self.work_dir, row)

  def tool(self, name):
    return [self.python, os.path.join(self.repo, 'tools', f'{name}.py')]

  def gin(self, name):
    return os.path.join(self.repo, name)

  @property
  def world(self) -> dict:
    """The pseudo-real world of this table and its Q-network variant (world.json)."""
    return _world(DEFAULT_REAL_GAP if self.real_gap is None else self.real_gap,
                  self.q_normalization)

  @property
  def doc_name(self) -> str:
    """'table1' in the project's world, 'table1_real_gap0.75' in another; '_qlayer' after it
    for the Q-network variant with layer norm."""
    name = 'table1' if self.real_gap is None else f'table1_real_gap{self.real_gap:g}'
    return name + (f'_q{self.q_normalization}' if self.q_normalization else '')

  @property
  def own_sim_only(self) -> bool:
    """Whether the Sim-Only row trains here (a Q-network variant) rather than being
    results/sim_only_ratio2 as it is."""
    return self.q_normalization is not None

  def _world_bindings(self) -> List[str]:
    """--gin_bindings that put every 'real' render of a binary in this table's world."""
    if self.real_gap is None:
      return []
    return ['--gin_bindings', f'RealAppearance.real_gap = {self.real_gap!r}']

  def check_world(self):
    """Writes world.json to the work and results directories, or raises ValueError if one
    holds another world's runs (a directory without it holds the project's world)."""
    for directory in (self.work_dir, self.results_dir):
      path = os.path.join(directory, WORLD_FILE)
      if os.path.isfile(path):
        found = _read_json(path)
      elif _holds_runs(directory):
        found = _world(DEFAULT_REAL_GAP)  # written before world.json existed
      else:
        found = None
      if found is not None and found != self.world:
        raise ValueError(
            f'{directory} holds the runs of the pseudo-real world {found}, not {self.world}: '
            f'give this world (and Q-network variant) its own --work_dir and --results_dir')
      os.makedirs(directory, exist_ok=True)
      if not os.path.isfile(path):
        fileio.write_json_atomic(path, self.world)
    self._check_data_world()

  def _check_data_world(self):
    """The data directory's world.json (its real logs' world; no Q-network variant): written
    at the first run, and a data directory of another world is refused. One without it takes
    the world of the work directory that holds it (or else the project's)."""
    data_world = _world(self.world['real_gap'])
    path = os.path.join(self.data_dir, WORLD_FILE)
    if os.path.isfile(path):
      found = _read_json(path)
    elif _holds_runs(self.data_dir):
      parent = os.path.join(os.path.dirname(self.data_dir), WORLD_FILE)
      found = (_world(_read_json(parent)['real_gap']) if os.path.isfile(parent)
               else _world(DEFAULT_REAL_GAP))
    else:
      found = None
    if found is not None and found != data_world:
      raise ValueError(f'the data directory {self.data_dir} holds logs of the pseudo-real world '
                       f'{found}, not {data_world}: give this world its own --data_dir')
    os.makedirs(self.data_dir, exist_ok=True)
    if not os.path.isfile(path):
      fileio.write_json_atomic(path, data_world)

  def _bindings(self, prefix, steps, extra):
    out = [f'{prefix}.num_train_steps = {steps}'] if steps is not None else []
    out += list(self.scale.extra_bindings) + list(extra)
    if self.q_normalization is not None:
      out.append(f"GraspingQNetwork.normalization = '{self.q_normalization}'")
    return [a for b in out for a in ('--gin_bindings', b)] + self._world_bindings()

  # ------------------------------------------------------------------ stages
  def _collect(self, name, appearance, episodes, seed) -> Stage:
    out = self.data(name)
    num_shards = -(-episodes // self.scale.episodes_per_shard)
    # Complete shards (partial ones are '<name>.tmp-<pid>'): a resumed collection skips them.
    written = len(glob.glob(os.path.join(out, '*.tfrecord'))) if os.path.isdir(out) else 0
    return Stage(
        f'data/{name}', self.tool('collect') + [
            f'--output_dir={out}', f'--appearance={appearance}', f'--num_episodes={episodes}',
            f'--episodes_per_shard={self.scale.episodes_per_shard}', f'--seed={seed}',
            '--noise_scale=0,1', f'--render_size={_size(self.scale.render_size)}',
            '--progress_interval=60'] + (
                ['--max_steps=3', '--num_objects=2'] if self.scale.name == 'tiny' else []) + (
                [f'--appearance_kwargs={json.dumps({"real_gap": self.real_gap})}']
                if appearance == 'real' and self.real_gap is not None else []),
        out, os.path.join(out, 'summary.json'),
        episodes * max(0.0, 1 - written / num_shards) / self.scale.collect_episodes_per_s)

  def data_stages(self, rows) -> List[Stage]:
    """The logs the requested rows need (each collected once, shared by every row)."""
    s = self.scale
    stages = []
    needs_sim_log = any(r not in (*APPEARANCE_ROWS, *REFERENCE_REPLICATES, 'random')
                        or (r == 'sim_only' and self.own_sim_only) for r in rows)
    if any(r.split('_seed')[0] in GENERATOR_ROWS for r in rows):
      # Seeds: the real log 400; the three Sim-Only-recipe logs share seed 300 (same states
      # in their own appearance; the sim one is results/sim_only_ratio2's log).
      stages.append(self._collect('real_log5k', 'real', s.real_log_episodes, 400))
      paired = self.data('paired_full.npz')
      stages.append(Stage(
          'data/paired_full', self.tool('make_paired_set') + [
              f'--output={paired}', f'--num_states={s.paired_states}',
              f'--render_size={_size(s.render_size)}', f'--crop_size={_size(s.render_size)}',
              '--seed=1000'] + self._world_bindings(), self.data(''), paired, 60.0))
      oracle_set = self.data('paired_oracle.npz')
      stages.append(Stage(
          'data/paired_oracle', self.tool('make_paired_set') + [
              f'--output={oracle_set}', f'--num_states={s.oracle_states}',
              f'--render_size={_size(s.render_size)}', f'--crop_size={_size(s.render_size)}',
              '--seed=2000'] + self._world_bindings(), self.data(''), oracle_set,
          60.0 * s.oracle_states / s.paired_states))
    if needs_sim_log:
      stages.append(self._collect('sim_mix18', 'sim', s.sim_log_episodes, 300))
    for base in ('randomized_sim', 'real_oracle'):  # its own log, shared with its replicate
      if {base, *replicates_of(base)} & set(rows):
        appearance, log = APPEARANCE_ROWS[base]
        stages.append(self._collect(log, appearance, s.sim_log_episodes, 300))
    return stages

  def published(self, row, *parts):
    """Where ``publish_row`` puts a row's file: results/table1/<row>/<parts>."""
    return os.path.join(self.results_dir, row, *parts)

  def _training(self, name, binary, root, gin_files, prefix, steps, bindings, estimate,
                reads=(), total=None, continues=None):
    """A training stage; ``total``: its train steps (default: the table's for ``what``);
    ``continues``: the row whose finished joint run it trains on (``continue_joint``)."""
    argv = self.tool(binary) + [f'--root_dir={root}']
    argv += [a for g in gin_files for a in ('--gin_file', self.gin(g))]
    argv += self._bindings(prefix, steps, bindings)
    row, what = name.split('/', 1)
    stage = Stage(name, argv, root, os.path.join(root, DONE_FILE), estimate,
                  published=self.published(row, what, DONE_FILE), reads=tuple(reads))
    total = total or (self.final_q_steps() if what == 'final_q' else self.joint_steps())
    reached = _checkpoint_step(os.path.join(root, 'train', 'ckpt'))
    if what in ENV_STEPS_PER_TRAIN_STEP:  # hours long: interim copies for a lost machine
      stage.prepare = lambda: (self.adopt_interim(row, root, what) or
                               (self.continue_joint(row, root, continues) if continues else []))
      stage.interim = lambda: self.publish_interim(row, root, what)
      # A resumed run (its own checkpoint, or the interim copy it adopts) has fewer to go.
      reached = max(reached, _checkpoint_step(self.published(row, interim_dir(what), 'train',
                                                             INTERIM_CHECKPOINT[what])))
    if continues:  # or the run it trains on
      reached = max(reached, _checkpoint_step(
          os.path.join(self.row_dir(continues), 'joint', 'train', 'ckpt')))
    stage.estimate_s *= max(0.0, 1.0 - reached / total)
    if what == 'final_q':
      stage.memory_gb = self.scale.final_q_memory_gb
    rate, where = self.measured_rate(what, root)
    if rate:  # this machine's own rate beats the nominal one (machines differ ~3x)
      stage.estimate_s = max(0, total - reached) / rate
      stage.estimate_note = f'at {rate:.2f} steps/s, measured in {where}'
    return stage

  def measured_rate(self, what: str, root: str) -> Tuple[Optional[float], str]:
    """Train steps/s of ``what`` ('final_q' or 'joint') on this machine and where it was
    measured (``_run_rate``): of the stage's own log, or else of the newest log of another such
    stage in this work dir, or else in the work dir that lends its data dir; each with
    MIN_RATE_LINES progress lines or more (a run just started is no run's pace); (None, '')
    if none has run."""
    own = os.path.join(root, 'table1_stage.log')
    lender = os.path.dirname(self.data_dir)
    for directory in dict.fromkeys([self.work_dir, lender]):
      others = sorted(glob.glob(os.path.join(directory, '*', what, 'table1_stage.log')),
                      key=os.path.getmtime, reverse=True)
      for path in [own] * (directory == self.work_dir) + [p for p in others if p != own]:
        rates = _progress_rates(path)
        if len(rates) >= MIN_RATE_LINES:
          return (_run_rate(rates), 'this work dir' if directory == self.work_dir else directory)
    return None, ''

  # ------------------------------------------------------------------ interim checkpoints
  def publish_interim(self, row, root, what='final_q') -> Optional[str]:
    """Copies a running training stage's newest checkpoint (and evaluations) to
    results/<row>/<what>_interim."""
    dst = self.published(row, interim_dir(what))
    subdir = INTERIM_CHECKPOINT[what]
    try:
      prefix = _copy_checkpoint(os.path.join(root, 'train', subdir),
                                os.path.join(dst, 'train', subdir), prune=True)
      if prefix is None:  # none yet (or a run started before it kept a weights-only copy)
        return None
      _copy_files(os.path.join(root, 'eval'), os.path.join(dst, 'eval'))
      _copy_files(root, dst, run_dir.RUN_SPEC)
      _copy_files(root, dst, '.gin')
      _copy_files(root, dst, ADOPTED_NOTE)  # an earlier resume on a new machine
      _publish_scalars(root, dst, finished_only=False)  # its losses so far (joint_criteria)
    except OSError as e:  # e.g. the trainer pruned that checkpoint while it was copied
      self._log(f'  {row}/{what}: interim copy skipped ({e}); the next one retries')
      return None
    step = _step_of(prefix)
    fileio.write_json_atomic(os.path.join(dst, INTERIM_NOTE), {
        'step': step, 'copied': time.strftime('%Y-%m-%dT%H:%M:%S'), 'source': root,
        'weights_only': subdir != 'ckpt',
        'note': f'PARTIAL: the {what} run was still training. Not a result; a {what} stage '
                'with no checkpoint of its own resumes from it (table1.Table1.adopt_interim)' +
                ('; its optimizers then start fresh (this copy holds the weights only).'
                 if subdir != 'ckpt' else '.')})
    self._log(f'  {row}/{what}: interim checkpoint (step {step}) copied to {dst}')
    return prefix

  def adopt_interim(self, row, root, what='final_q') -> List[str]:
    """A training stage with no checkpoint resumes from its published interim one (a lost
    machine).

    Returns the extra binding that refills the on-policy replay before training resumes.
    """
    src = self.published(row, interim_dir(what))
    subdir = next((d for d in ('ckpt', 'weights')  # a full copy (older joint ones too) first
                   if _latest_checkpoint(os.path.join(src, 'train', d))), None)
    own = [_latest_checkpoint(os.path.join(root, 'train', d)) for d in ('ckpt', 'weights')]
    if any(own) or subdir is None:  # it resumes from its own (adopted before, then trained on)
      return []
    interim = _latest_checkpoint(os.path.join(src, 'train', subdir))
    _copy_checkpoint(os.path.dirname(interim), os.path.join(root, 'train', subdir))
    _copy_files(os.path.join(src, 'eval'), os.path.join(root, 'eval'))
    step = _step_of(interim)
    refill = max(64, min(ADOPT_REFILL_TRANSITIONS,
                         int(ENV_STEPS_PER_TRAIN_STEP[what] * step)))
    earlier = os.path.join(src, ADOPTED_NOTE)
    fileio.write_json_atomic(os.path.join(root, ADOPTED_NOTE), {
        'checkpoint': interim, 'step': step, 'refill_transitions': refill,
        'weights_only': subdir != 'ckpt',
        'adopted': time.strftime('%Y-%m-%dT%H:%M:%S'),
        'earlier': _read_json(earlier) if os.path.isfile(earlier) else None})
    self._log(f'  {row}/{what}: no checkpoint in {root}: resuming from the published interim '
              f'checkpoint {interim} (step {step}). Its on-policy replay was on the lost machine: '
              f'refilled with {refill} transitions of the restored policy before training' +
              ('; it holds the weights only, so the optimizers start fresh'
               if subdir != 'ckpt' else ''))
    return ['--gin_bindings', f'Replay.min_replay_transitions = {refill}']

  def continue_joint(self, row, root, source_row) -> List[str]:
    """A lever row's joint run with no checkpoint of its own starts from a copy of
    ``source_row``'s finished joint run (its newest checkpoint, on-policy episodes, evaluations
    and TensorBoard events), which it trains on to its own step count. Without that run in
    this work dir (e.g. a new machine) it trains from step 0: the same recipe, at twice the
    cost. Returns no extra arguments."""
    ckpt = os.path.join(root, 'train', 'ckpt')
    src = os.path.join(self.row_dir(source_row), 'joint')
    if _latest_checkpoint(ckpt) is not None:
      return []
    source_ckpt = _latest_checkpoint(os.path.join(src, 'train', 'ckpt'))
    if not os.path.isfile(os.path.join(src, DONE_FILE)) or source_ckpt is None:
      self._log(f'  {row}/joint: no finished joint run of {source_row} in {src} to train on: '
                'training from step 0')
      return []
    for sub in (run_dir.SIM_REPLAY_SUBDIR, run_dir.EVAL_SUBDIR, run_dir.TRAIN_SUBDIR):
      source_dir = os.path.join(src, sub)
      for f in (sorted(os.listdir(source_dir)) if os.path.isdir(source_dir) else ()):
        if os.path.isfile(os.path.join(source_dir, f)):  # not train/ckpt, copied below
          os.makedirs(os.path.join(root, sub), exist_ok=True)
          _copy_file_atomic(os.path.join(source_dir, f), os.path.join(root, sub, f))
    if os.path.isfile(os.path.join(src, 'paired_set.npz')):
      _copy_file_atomic(os.path.join(src, 'paired_set.npz'), os.path.join(root, 'paired_set.npz'))
    _copy_checkpoint(os.path.dirname(source_ckpt), ckpt)  # its index last: the copy is whole
    step = _step_of(source_ckpt)
    fileio.write_json_atomic(os.path.join(root, CONTINUED_NOTE), {
        'row': source_row, 'run': src, 'checkpoint': source_ckpt, 'step': step,
        'copied': time.strftime('%Y-%m-%dT%H:%M:%S')})
    self._log(f'  {row}/joint: training on the finished joint run of {source_row} from its '
              f'step {step} ({source_ckpt})')
    return []

  def _evaluate(self, row, what, checkpoint_dir, appearance, seed, extra=()) -> Stage:
    """An evaluation of the Q in ``checkpoint_dir``, or of ``extra``'s --policy if None."""
    out = os.path.join(self.row_dir(row), 'eval', f'{what}_seed{seed}.json')
    argv = self.tool('evaluate') + [
        f'--checkpoint_dir={checkpoint_dir}'] * (checkpoint_dir is not None) + [
        f'--appearance={appearance}',
        f'--num_episodes={self.scale.eval_episodes}', f'--seed={seed}',
        f'--render_size={_size(self.scale.render_size)}', f'--output_json={out}',
        '--progress_interval=60'] + list(extra) + self._world_bindings()
    s = self.scale
    return Stage(f'{row}/eval/{what}_seed{seed}', argv, os.path.dirname(out), out,
                 s.eval_start_s + s.eval_episodes / s.eval_episodes_per_s,
                 published=self.published(row, 'eval', os.path.basename(out)))

  def _oracle_q_current(self, path: str) -> bool:
    """An oracle-Q report counts once it covers the table's ``oracle_states`` (reports of the
    64-state generator set, written before session 31, are made again on the oracle's set)."""
    try:
      states = _read_json(path)['oracle_q']['generator']['num_states']
    except (OSError, ValueError, KeyError, TypeError):
      return False
    return states == self.scale.oracle_states

  def oracle_q_dir(self) -> Optional[str]:
    """The finished real-trained oracle's final Q (published copy first), or None."""
    for d in (self.published('real_oracle', 'final_q'),
              os.path.join(self.row_dir('real_oracle'), 'final_q')):
      if os.path.isfile(os.path.join(d, DONE_FILE)):
        return d
    return None

  def final_q_steps(self):
    return self.scale.final_steps if self.scale.final_steps is not None else 32_000

  def joint_steps(self):
    return self.scale.joint_steps if self.scale.joint_steps is not None else 10_000

  def real_critic_steps(self):
    return self.scale.final_steps if self.scale.final_steps is not None else REAL_CRITIC_STEPS

  def row_stages(self, row) -> List[Stage]:
    """Training and evaluation stages of one row ('rl_cyclegan_seed0', 'real_oracle', ...)."""
    base, _, seed = row.partition('_seed')
    seed = int(seed or 0)
    s, rdir = self.scale, self.row_dir(row)
    final_root = os.path.join(rdir, 'final_q')
    final_est = self.final_q_steps() / s.final_steps_per_s
    stages = []
    seed_binding = [f'train_eval.seed = {seed}']
    final_seed = [f'train_eval.seed = {final_q_seed(base, seed)}']
    extra = []
    if base == 'sim_only' and not self.own_sim_only:
      final_root = os.path.join(self.repo, SIM_ONLY_RESULTS)
    elif base == 'random':
      final_root, extra = None, ['--policy=random']
    elif base in APPEARANCE_ROWS or base in REFERENCE_REPLICATES:
      appearance, log = APPEARANCE_ROWS[REFERENCE_REPLICATES.get(base, base)]
      stages.append(self._training(
          f'{row}/final_q', 'train_qtopt', final_root, ['gin/qtopt_sim_only.gin'], 'train_eval',
          s.final_steps, final_seed + [
              f"Environment.appearance = '{appearance}'",
              f"Replay.sim_episode_dir = '{self.data(log)}'",
              f'Environment.render_size = {tuple(s.render_size)}'], final_est,
          reads=[f'data/{log}']))
    elif base in GENERATOR_ROWS:
      joint_root = os.path.join(rdir, 'joint')
      generator = self.frozen_generator(row)
      factor = JOINT_STEPS_FACTOR.get(base, 1)
      joint_extra = []
      if base in REAL_CRITIC_ROWS:  # Q_real's start: the Sim-Only Q fine-tuned on the real log
        stages.append(self._training(
            f'{row}/real_critic', 'train_qtopt', os.path.join(rdir, 'real_critic'),
            [REAL_CRITIC_GIN], 'train_eval', s.final_steps, seed_binding + [
                f"Replay.real_episode_dir = '{self.data('real_log5k')}'",
                f'Environment.render_size = {tuple(s.render_size)}'] + (
                    [f"train_eval.init_checkpoint = '{self.critic_init}'"]
                    if s.critic_init else []),
            self.real_critic_steps() / s.final_steps_per_s, reads=['data/real_log5k'],
            total=self.real_critic_steps()))
        # As G: read from results/, so that a lost machine does not train it again.
        joint_extra.append('train_rl_cyclegan.real_critic_init_checkpoint = '
                           f"'{self.published(row, 'real_critic', 'train', 'ckpt')}'")
      stages.append(self._training(
          f'{row}/joint', 'train_rl_cyclegan', joint_root, [GENERATOR_ROWS[base]],
          'train_rl_cyclegan', s.joint_steps and s.joint_steps * factor, [
              f"Replay.real_episode_dir = '{self.data('real_log5k')}'",
              f'Environment.render_size = {tuple(s.render_size)}',
              f'train_rl_cyclegan.seed = {seed}',
              'Checkpointing.weights_copy = True',  # its interim copy (INTERIM_CHECKPOINT)
          ] + ([] if base in PAPER_FAITHFUL_ROWS else [
                  f"Replay.sim_episode_dir = '{self.data('sim_mix18')}'",
                  (f"train_rl_cyclegan.critic_init_checkpoint = '{self.critic_init}'"
                   if s.critic_init else 'train_rl_cyclegan.critic_init_checkpoint = None')])
          + joint_extra,
          factor * self.joint_steps() / s.joint_steps_per_s + (
              180.0 if base == 'graspgan' else 0.0),
          reads=['data/real_log5k'] + ([] if base in PAPER_FAITHFUL_ROWS else ['data/sim_mix18']),
          total=factor * self.joint_steps(), continues=JOINT_CONTINUES.get(base)))
      report = os.path.join(rdir, 'generator_report.json')
      stages.append(Stage(
          f'{row}/generator_report', self.tool('generator_report') + [
              f'--run_dir={joint_root}', f"--paired_set={self.data('paired_full.npz')}",
              f'--output_json={report}', f'--figure_states={FIGURE_STATES}'],
          rdir, report, 60.0, published=self.published(row, 'generator_report.json'),
          reads=('data/paired_full',)))
      for k in EVAL_SEEDS:  # the joint run's own Q_real, measured in real
        stages.append(self._evaluate(row, 'joint_q_real_real', joint_root, 'real', k,
                                     ['--q_network_key=Q_real']))
      oracle = self.oracle_q_dir()
      if oracle:  # once the oracle exists; G and the joint config as published (no joint run)
        out = os.path.join(rdir, 'oracle_q_report.json')
        stages.append(Stage(
            f'{row}/oracle_q', self.tool('generator_report') + [
                f"--run_dir={self.published(row, 'joint')}", f'--generator_checkpoint={generator}',
                f"--paired_set={self.data('paired_oracle.npz')}", f'--output_json={out}',
                f'--oracle_run_dir={oracle}', '--figure_states=0'], rdir, out,
            60.0 * s.oracle_states / s.paired_states,
            published=self.published(row, 'oracle_q_report.json'),
            reads=('data/paired_oracle',), current=self._oracle_q_current))
      stages += self._final_q_on_frozen_g(row, base, final_root, generator, final_seed)
    elif base in FINAL_Q_REPLICATES:  # the G of another row, as published; no joint run
      stages += self._final_q_on_frozen_g(
          row, FINAL_Q_REPLICATES[base], final_root, self.frozen_generator(row), final_seed)
    else:
      raise ValueError(f'unknown Table 1 row {row!r}; valid: {", ".join(all_row_keys())}')
    if final_root and os.path.isfile(self.published(row, 'final_q', DONE_FILE)):
      # A finished final Q is evaluated from its published copy (the same last checkpoint),
      # so that evaluations added later run on a machine that never trained it.
      final_root = self.published(row, 'final_q')
    sim_extra = [f'--generator_key={FROZEN_G_KEY}'] if uses_frozen_g(base) else []
    for k in EVAL_SEEDS:
      stages.append(self._evaluate(row, 'real', final_root, 'real', k, extra))
      stages.append(self._evaluate(row, 'sim', final_root, 'sim', k, extra + sim_extra))
    partner = self.swap_generator(row)
    for k in EVAL_SEEDS if partner else ():
      stages.append(self._evaluate(row, 'swap_sim', final_root, 'sim', k, extra + sim_extra + [
          f'--generator_checkpoint={partner}']))
    for what, regions in COMPOSITE_WORLDS.items() if uses_frozen_g(base) else ():
      for k in EVAL_SEEDS:
        stages.append(self._evaluate(row, what, final_root, 'real', k, extra + sim_extra + [
            f'--translated_regions={regions}', f'--region_dilation={COMPOSITE_DILATION}']))
    return stages

  def _final_q_on_frozen_g(self, row, g_base, final_root, generator, seed_binding):
    """The translation of the sim log through the frozen G in ``generator`` (a row of kind
    ``g_base``'s), and the final Q trained on it: the Sim-Only recipe on G(sim)."""
    s = self.scale
    cache = os.path.join(final_root, 'translated_sim_log')
    frozen_g = list(FROZEN_G_BINDINGS.get(g_base, ()))
    return [Stage(
        f'{row}/translate', self.tool('translate_episodes') + [
            f'--generator_checkpoint={generator}', f"--source={self.data('sim_mix18')}",
            # The final Q's own config builds G, so both compute the same fingerprint.
            f'--output_dir={cache}', f'--gin_file={self.gin("gin/table1_final_q.gin")}',
            f'--render_size={_size(s.render_size)}', f'--crop_size={_size(s.crop_size)}']
        + [a for b in list(s.extra_bindings) + frozen_g for a in ('--gin_bindings', b)],
        cache, os.path.join(cache, 'summary.json'), s.sim_log_episodes * 5.6 / 250.0,
        # Only the final Q reads the translated log: once it is published (e.g. on a new
        # machine), neither the translation nor the sim log is made again.
        published=self.published(row, 'final_q', DONE_FILE), reads=('data/sim_mix18',)),
        self._training(
            f'{row}/final_q', 'train_qtopt', final_root, ['gin/table1_final_q.gin'],
            'train_eval', s.final_steps, seed_binding + [
                f"Replay.sim_episode_dir = '{self.data('sim_mix18')}'",
                f"train_eval.generator_checkpoint = '{generator}'",
                f'Environment.render_size = {tuple(s.render_size)}'] + frozen_g,
            self.final_q_steps() / s.final_steps_per_s, reads=['data/sim_mix18'])]

  def frozen_generator(self, row: str) -> Optional[str]:
    """The published G (``results/<row or its G's row>/generator``) that ``row``'s final Q
    trains on, or None for a row without one. Downstream stages read G alone from results/
    (the report stage writes it, and it is published at once), so a lost machine costs no
    joint run once G is committed."""
    base, _, seed = row.partition('_seed')
    if base in FINAL_Q_REPLICATES:
      return self.published(f'{FINAL_Q_REPLICATES[base]}_seed{seed or 0}', 'generator')
    return self.published(row, 'generator') if base in GENERATOR_ROWS else None

  def swap_generator(self, row: str) -> Optional[str]:
    """The published G of ``row``'s swap partner (SWAP_PARTNERS, the same training seed), or
    None: not a headline row, or that G is not published yet."""
    base, sep, seed = row.partition('_seed')
    if base not in SWAP_PARTNERS:
      return None
    generator = self.published(SWAP_PARTNERS[base] + sep + seed, 'generator')
    return generator if os.path.isfile(os.path.join(generator, 'checkpoint')) else None

  def stages(self, rows: Sequence[str], joint_only: bool = False) -> List[Stage]:
    """The rows' stages, after the data stages that an unfinished one still reads.

    ``joint_only``: a generator row's joint part only (``is_joint_stage``: the joint run, its
    report, its Q_real in real, the oracle-Q report), so that each joint run can be looked
    at before a final Q is spent on it (issue 18); rows without a joint run have none.
    """
    rows = expand_rows(rows)
    out = []
    if self.own_sim_only and self.scale.critic_init and any(
        r.partition('_seed')[0] in GENERATOR_ROWS
        and r.partition('_seed')[0] not in PAPER_FAITHFUL_ROWS for r in rows):
      # The joint critics start from this table's Sim-Only Q: it trains first.
      if 'sim_only' in rows:
        rows = ['sim_only'] + [r for r in rows if r != 'sim_only']
      else:
        out += [st for st in self.row_stages('sim_only') if st.name == 'sim_only/final_q']
    for row in rows:
      base, _, seed = row.partition('_seed')
      source = JOINT_CONTINUES.get(base)
      if source and not any(st.name == f'{source}/joint' for st in out):
        # The joint run it trains on comes first (listed as done once it is).
        out += [st for st in self.row_stages(source) if st.name == f'{source}/joint']
      if base in FINAL_Q_REPLICATES and not joint_only:  # so do the G it trains on and its report
        g_row = f'{FINAL_Q_REPLICATES[base]}_seed{seed}'
        wanted = (f'{g_row}/joint', f'{g_row}/generator_report')
        names = {st.name for st in out}
        out += [st for st in self.row_stages(g_row) if st.name in wanted and st.name not in names]
      names = {st.name for st in out}
      out += [st for st in self.row_stages(row) if st.name not in names and (
          not joint_only or is_joint_stage(st.name))]
    needed = {d for st in out if not st.done for d in st.reads}
    return [d for d in self.data_stages(rows) if d.name in needed] + out

  # ------------------------------------------------------------------ running
  def plan(self, stages: Sequence[Stage]) -> str:
    lines, total = [], 0.0
    for i, st in enumerate(stages):
      state = 'done' if st.done else f'~{progress.format_seconds(st.estimate_s)}'
      if not st.done:
        total += st.estimate_s
        if st.estimate_note:
          state += f' ({st.estimate_note})'
      lines.append(f'  {i + 1:2d}. {st.name:<42s} {state}')
    lines.append(f'  remaining: ~{progress.format_seconds(total)}; training stages at the rate '
                 'measured in this work dir where one has run, the rest at rates of a 2-core '
                 "machine like this project's (others differ)")
    return '\n'.join(lines)

  def run(self, stages: Sequence[Stage]):
    """Runs every unfinished stage in order. Raises StageError naming a failed stage."""
    for row in dict.fromkeys(st.name.split('/')[0] for st in stages):
      if row != 'data':  # stages an earlier (killed) runner finished, before anything reads them
        publish_row(self, row)
    todo = [st for st in stages if not st.done]
    self._log(f'{len(stages) - len(todo)} of {len(stages)} stages done; plan:\n'
              f'{self.plan(stages)}')
    for i, st in enumerate(todo):
      if st.name.startswith('data/'):
        self._wait_for_other_runner(st)
        if st.done:  # that runner finished it
          continue
      self._log(f'stage {i + 1}/{len(todo)}: {st.name} '
                f'(~{progress.format_seconds(st.estimate_s)}), log '
                f'{os.path.join(st.directory, "table1_stage.log")}')
      held = self.wait_for_memory(st)
      # Other runners' memory-bound stages start once this one has taken its memory.
      release = threading.Timer(MEMORY_RAMP_S, _unlock, (held,)) if held else None
      if release:
        release.daemon = True
        release.start()
      try:
        run_stage(st, self.repo, self._log)
      finally:
        if release:
          release.cancel()
          held.close()
      row = st.name.split('/')[0]
      if row != 'data':
        publish_row(self, row)  # what finished is in results/ at once, ready to commit

  def wait_for_memory(self, stage: 'Stage'):
    """Returns once the machine has ``stage.memory_gb`` available (MemAvailable), logging what
    it waits for when it first waits and every MEMORY_LOG_S after; at once if the stage needs
    no memory to speak of, if /proc/meminfo cannot be read, or if the machine has less in all
    (it could never start: logged, and the stage starts anyway).

    MemAvailable counts memory a stage just started has not taken yet, so two runners starting
    final Qs at once would both see room for theirs. The check is therefore made under the
    work directory's MEMORY_LOCK_FILE, and the lock is returned held (an open file; closing it
    releases it): the caller keeps it until its stage has had MEMORY_RAMP_S to take its memory.
    None when the stage needs none."""
    if stage.memory_gb <= 0:
      return None
    os.makedirs(self.work_dir, exist_ok=True)
    held = open(os.path.join(self.work_dir, MEMORY_LOCK_FILE), 'a')
    waited, told = 0.0, None
    try:
      while True:
        try:
          fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
          why = 'another runner started a memory-bound stage and it is taking its memory'
        else:
          memory = memory_gb()
          if memory is None:
            return held
          total, available = memory
          if total < stage.memory_gb:
            self._log(f'{stage.name}: needs ~{stage.memory_gb:g} GB, and this machine has '
                      f'{total:.1f} GB in all; starting anyway')
            return held
          if available >= stage.memory_gb:
            if told is not None:
              self._log(f'{stage.name}: {available:.1f} GB available after '
                        f'{progress.format_seconds(waited)}; starting')
            return held
          fcntl.flock(held, fcntl.LOCK_UN)
          why = (f'{available:.1f} of {total:.1f} GB available; another training run or test '
                 'suite holds the rest')
        if told is None or waited - told >= MEMORY_LOG_S:
          told = waited
          self._log(f'{stage.name}: waiting for ~{stage.memory_gb:g} GB of memory ({why})')
        time.sleep(MEMORY_POLL_S)
        waited += MEMORY_POLL_S
    except BaseException:
      held.close()
      raise

  def _wait_for_other_runner(self, stage: 'Stage'):
    """Returns once no other live runner holds ``stage``'s lock (e.g. a ``--data_only`` runner
    collecting a log these rows read), logging once what it waits for."""
    told = False
    while True:
      try:
        os.remove(acquire_lock(stage.directory, stage.name))
        return
      except StageError as e:
        if not told:
          self._log(f'{stage.name}: waiting for another runner ({e})')
          told = True
        time.sleep(DATA_LOCK_POLL_S)


MEMORY_POLL_S = 30.0
MEMORY_LOG_S = 600.0
# Held while a runner checks the machine's memory for a memory-bound stage, and for this long
# after starting it (``Table1.wait_for_memory``), so that the next check sees what the stage
# took. A 0.75 final Q held 6.9 GB 16 s after it started and 8.0 GB at 36 s (its translated log
# loading), then 6.7-6.9 GB (session 35, sampled every 20 s): 120 s is ample.
MEMORY_LOCK_FILE = 'memory.lock'
MEMORY_RAMP_S = 120.0


def _unlock(held) -> None:
  """Releases the memory lock ``wait_for_memory`` returned (its stage may have ended and
  closed it already)."""
  try:
    fcntl.flock(held, fcntl.LOCK_UN)
  except (OSError, ValueError):
    pass


def memory_gb() -> Optional[Tuple[float, float]]:
  """(MemTotal, MemAvailable) of this machine in GB from /proc/meminfo, or None (not Linux)."""
  try:
    with open('/proc/meminfo') as f:
      fields = dict(line.split(':', 1) for line in f if ':' in line)
    return tuple(int(fields[k].split()[0]) / 2**20 for k in ('MemTotal', 'MemAvailable'))
  except (OSError, KeyError, ValueError, IndexError):
    return None


def is_joint_stage(name: str) -> bool:
  """Whether a stage is part of a generator row's joint run and what is measured of it alone
  (not of the final Q trained on its G)."""
  row, _, what = name.partition('/')
  return row.partition('_seed')[0] in GENERATOR_ROWS and (
      what in ('real_critic', 'joint', 'generator_report', 'oracle_q') or
      what.startswith('eval/joint_q_real_'))


class StageError(RuntimeError):
  """A stage's binary failed or another runner holds its lock."""




def acquire_lock(directory, name):
  """Creates ``directory/table1_stage.lock`` (pid, host) or raises StageError naming the holder.

  A lock left by a dead process on this host is taken over.
  """
  try:
    return lifecycle.acquire_lock(directory, LOCK_FILE, f'stage {name!r}', {'stage': name})
  except lifecycle.LockHeld as e:
    raise StageError(str(e)) from None


def run_stage(stage: Stage, cwd: str, log: Callable[[str], None]):
  """Runs one stage's binary under its lock, its output appended to table1_stage.log."""
  lock = acquire_lock(stage.directory, stage.name)
  start = time.time()
  try:
    log_path = os.path.join(stage.directory, 'table1_stage.log')
    with open(log_path, 'a') as f:
      f.write(f'\n==== {time.strftime("%Y-%m-%d %H:%M:%S")} {" ".join(stage.argv)}\n')
      f.flush()
      argv = stage.argv + stage.prepare()
      if argv != stage.argv:
        f.write(f'==== with {" ".join(argv[len(stage.argv):])}\n')
      proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, bufsize=1)
      try:
        last_interim = time.time()
        for line in proc.stdout:
          f.write(line)
          f.flush()
          if _interesting(line):
            log(f'  {stage.name}: {line.rstrip()}')
          if stage.interim and time.time() - last_interim > INTERIM_INTERVAL_S:
            stage.interim()
            last_interim = time.time()
        code = proc.wait()
      except BaseException:
        proc.terminate()  # SIGTERM: training binaries save a checkpoint before exiting
        proc.wait()
        if stage.interim:  # that checkpoint goes to results/ too (a lost machine resumes it)
          stage.interim()
        raise
    if code != 0:
      raise StageError(f'stage {stage.name!r} failed with exit code {code}; see {log_path}; '
                       'run the same command again to resume it')
    stage.after()
    if stage.marker == os.path.join(stage.directory, DONE_FILE):
      fileio.write_json_atomic(stage.marker, {'argv': argv, 'seconds': time.time() - start,
                                              'finished': time.strftime('%Y-%m-%dT%H:%M:%S')})
    if not stage.done:
      raise StageError(f'stage {stage.name!r} exited 0 but wrote no {stage.marker}')
    log(f'  {stage.name}: done in {progress.format_seconds(time.time() - start)}')
  finally:
    os.remove(lock)


def _interesting(line):
  """Progress lines worth echoing to the console (the full output is in the stage log)."""
  return any(k in line for k in ('ETA', 'grasp success', 'eval step', 'error', 'Error',
                                 'resumed', 'scene metrics', 'STOPPED'))


def uses_frozen_g(base: str) -> bool:
  """Whether a row's final Q trained on G(sim) (its sim evaluations then go through G)."""
  return base in GENERATOR_ROWS or base in FINAL_Q_REPLICATES


def all_row_keys():
  keys = []
  for row in ROWS:
    keys += [f'{row}_seed{k}' for k in TRAINING_SEEDS[row]] if row in TRAINING_SEEDS else [row]
  return keys


def expand_rows(rows: Sequence[str]) -> List[str]:
  """'cyclegan' -> each of its TRAINING_SEEDS; 'all' -> every row in RUN_ORDER; names
  validated."""
  valid = set(all_row_keys())
  out = []
  for row in rows:
    if row == 'all':
      out += list(RUN_ORDER)
    elif row in TRAINING_SEEDS:
      out += [f'{row}_seed{k}' for k in TRAINING_SEEDS[row]]
    elif row in valid:
      out.append(row)
    else:
      raise ValueError(f'unknown Table 1 row {row!r}; valid: all, '
                       f'{", ".join(sorted(valid | set(TRAINING_SEEDS)))}')
  return list(dict.fromkeys(out))


# ----------------------------------------------------------------------------- results


def _read_json(path):
  with open(path) as f:
    return json.load(f)


_RATE_LINE = re.compile(r'\] step \d+/\d+ .*\| ([0-9.]+) steps/s')  # loop.ProgressLogger
# A progress interval this many times slower than the median one was a pause (SIGSTOP while CI
# ran, a memory wait), not the run's pace; it does not count in a measured rate.
PAUSE_FACTOR = 10.0
MIN_RATE_LINES = 10  # a stage log gives a rate from this many progress lines on


def _progress_rates(log_path, tail_bytes=200_000) -> List[float]:
  """Train steps/s of each progress line in a stage log's tail (a whole run's: a line is
  ~250 bytes), oldest first ([] if none)."""
  try:
    with open(log_path, 'rb') as f:
      f.seek(0, os.SEEK_END)
      f.seek(max(0, f.tell() - tail_bytes))
      text = f.read().decode('utf-8', 'replace')
  except OSError:
    return []
  rates = [float(m.group(1)) for m in _RATE_LINE.finditer(text)]
  return [r for r in rates if r > 0]


def _run_rate(rates: Sequence[float]) -> Optional[float]:
  """A run's train steps/s from its progress lines' rates (equal step intervals): their
  harmonic mean, the steps over the time they took, leaving out pauses (PAUSE_FACTOR). Not the
  newest lines' median: the paper-faithful joint run went from ~1.4 to ~4.8 steps/s within its
  run (the machine's load changed), and the median of its last lines planned a joint run at
  34 min where the 0.75 table's took 2.0-2.6 h (session 34)."""
  if not rates:
    return None
  median = sorted(rates)[len(rates) // 2]
  kept = [r for r in rates if r * PAUSE_FACTOR >= median]
  return len(kept) / sum(1.0 / r for r in kept)


def _latest_checkpoint(ckpt_dir):
  """Prefix of the newest checkpoint named in ``ckpt_dir/checkpoint``, or None."""
  index = os.path.join(ckpt_dir, 'checkpoint')
  if not os.path.isfile(index):
    return None
  with open(index) as f:
    for line in f:
      if line.startswith('model_checkpoint_path:'):
        name = line.split(':', 1)[1].strip().strip('"')
        return os.path.join(ckpt_dir, os.path.basename(name))
  return None


def _step_of(prefix) -> int:
  """The step in a checkpoint prefix '.../ckpt-<step>'."""
  return int(os.path.basename(prefix).rsplit('-', 1)[1])


def _checkpoint_step(ckpt_dir) -> int:
  """The step of the newest checkpoint in ``ckpt_dir``, 0 if there is none."""
  prefix = _latest_checkpoint(ckpt_dir)
  return 0 if prefix is None else _step_of(prefix)


def _copy_file_atomic(src, dst):
  def write(out):
    with open(src, 'rb') as f:
      shutil.copyfileobj(f, out)
  fileio.write_atomic(dst, write, mode='wb')


def _copy_checkpoint(src_dir, dst_dir, prune=False):
  """Copies the newest checkpoint of ``src_dir`` (and an index naming only it) to ``dst_dir``.

  The index is written last, so it never names a checkpoint whose files are incomplete.
  ``prune``: then deletes the other checkpoints in ``dst_dir``.
  """
  prefix = _latest_checkpoint(src_dir)
  if prefix is None:
    return None
  os.makedirs(dst_dir, exist_ok=True)
  name = os.path.basename(prefix)
  for f in os.listdir(src_dir):
    if f.startswith(name + '.'):
      _copy_file_atomic(os.path.join(src_dir, f), os.path.join(dst_dir, f))
  fileio.write_text_atomic(os.path.join(dst_dir, 'checkpoint'),
                           f'model_checkpoint_path: "{name}"\n'
                           f'all_model_checkpoint_paths: "{name}"\n')
  if prune:
    for f in os.listdir(dst_dir):
      if f.startswith('ckpt-') and not f.startswith(name + '.'):
        os.remove(os.path.join(dst_dir, f))
  return os.path.join(dst_dir, name)


def _copy_files(src_dir, dst_dir, suffix='.json'):
  if not os.path.isdir(src_dir):
    return
  os.makedirs(dst_dir, exist_ok=True)
  for f in sorted(os.listdir(src_dir)):
    if f.endswith(suffix):
      _copy_file_atomic(os.path.join(src_dir, f), os.path.join(dst_dir, f))


def _publish_scalars(run, dst, finished_only=True):
  """A finished training stage's TensorBoard scalars as ``dst/scalars.json`` (once), or with
  ``finished_only=False`` a running one's so far (each time)."""
  from rl_cyclegan.evaluation import summaries  # pylint: disable=g-import-not-at-top
  out = os.path.join(dst, summaries.SCALARS_FILE)
  if not finished_only or (os.path.isfile(os.path.join(run, DONE_FILE)) and
                           not os.path.isfile(out)):
    summaries.export_scalars(run, out)


def _publish_q_run(run, dst, generator=None):
  """A finished QT-Opt run's newest checkpoint (its policy Q and frozen G only:
  ``run_dir.write_policy_checkpoint``), config, markers, evaluations and scalars. With
  ``generator`` (the published G it was trained on) the checkpoint holds the Q alone and its
  run spec names that G, so that each G is committed once."""
  sources = {FROZEN_G_KEY: generator} if generator else None
  run_dir.write_policy_checkpoint(run, dst, sources)  # and its run_spec; before the DONE marker
  for suffix in ('.gin', DONE_FILE, ADOPTED_NOTE):
    _copy_files(run, dst, suffix)
  _copy_files(os.path.join(run, 'eval'), os.path.join(dst, 'eval'))
  _publish_scalars(run, dst)


def publish_row(table: Table1, row: str):
  """Copies a finished row's small artifacts into ``results/table1/<row>/`` (idempotent)."""
  src, dst = table.row_dir(row), os.path.join(table.results_dir, row)
  _copy_files(os.path.join(src, 'eval'), os.path.join(dst, 'eval'))
  final = os.path.join(src, 'final_q')
  # Only a finished final Q is published under final_q/ (a partial checkpoint there would look
  # like the result); while it trains, its interim copy is final_q_interim/.
  if os.path.isfile(os.path.join(final, DONE_FILE)):
    shutil.rmtree(os.path.join(dst, interim_dir('final_q')), ignore_errors=True)
    _publish_q_run(final, os.path.join(dst, 'final_q'), table.frozen_generator(row))
  real_critic = os.path.join(src, 'real_critic')  # a lever's Q_real start
  if os.path.isfile(os.path.join(real_critic, DONE_FILE)):
    _publish_q_run(real_critic, os.path.join(dst, 'real_critic'))
  joint = os.path.join(src, 'joint')
  # Likewise only a finished joint run under joint/; a running one's is joint_interim/.
  if os.path.isfile(os.path.join(joint, DONE_FILE)):
    shutil.rmtree(os.path.join(dst, interim_dir('joint')), ignore_errors=True)
    _copy_files(joint, os.path.join(dst, 'joint'), ADOPTED_NOTE)
    _copy_files(joint, os.path.join(dst, 'joint'), CONTINUED_NOTE)
    _copy_files(joint, os.path.join(dst, 'joint'), '.gin')
    _copy_files(joint, os.path.join(dst, 'joint'), DONE_FILE)
    _copy_files(joint, os.path.join(dst, 'joint'), run_dir.RUN_SPEC)
    _copy_files(os.path.join(joint, 'eval'), os.path.join(dst, 'joint', 'eval'))
    _publish_scalars(joint, os.path.join(dst, 'joint'))
    _copy_checkpoint(os.path.join(src, 'generator'), os.path.join(dst, 'generator'))
  for name in ('generator_report.json', 'oracle_q_report.json', 'figure_states.npz'):
    if os.path.isfile(os.path.join(src, name)):
      _copy_file_atomic(os.path.join(src, name), os.path.join(dst, name))


def _pool(results: Sequence[dict]) -> dict:
  from rl_cyclegan.evaluation import policy_eval  # pylint: disable=g-import-not-at-top
  k = sum(int(r['num_successes']) for r in results)
  n = sum(int(r['num_episodes']) for r in results)
  low, high = policy_eval.wilson_interval(k, n)
  out = {'successes': k, 'episodes': n, 'success_rate': k / n if n else float('nan'),
         'ci95': [low, high], 'seeds': [r.get('seed') for r in results]}
  if results and all('outcomes' in r for r in results):  # per scene, in seed order (pairable)
    out['outcomes'] = [int(x) for r in results for x in r['outcomes']]
  spreads = [r.get('embedding_spread') for r in results]
  if results and all(isinstance(x, (int, float)) for x in spreads):  # the Q's image tower
    out['embedding_spread'] = float(sum(spreads) / len(spreads))
  tables = [r.get('grasp_distance') for r in results]
  if tables and all(tables) and all(t['bins_cm'] == tables[0]['bins_cm'] for t in tables):
    out['grasp_distance'] = {  # policy_eval.grasp_distance_table, summed over the seeds
        'bins_cm': tables[0]['bins_cm'],
        **{k: [sum(v) for v in zip(*(t[k] for t in tables))] for k in ('successes', 'failures')}}
  return out


def _pool_pooled(entries: Sequence[dict]) -> dict:
  """``_pool`` over already pooled entries (e.g. a row's training seeds): their counts, per-scene
  outcomes and grasp distances; not their towers' spreads, since a mean of two runs' towers
  says nothing of either."""
  return _pool([{'num_successes': e['successes'], 'num_episodes': e['episodes'],
                 'grasp_distance': e.get('grasp_distance'),
                 **({'outcomes': e['outcomes']} if 'outcomes' in e else {})} for e in entries])


def _pooled_eval(table: Table1, row: str, what: str) -> Optional[dict]:
  """A row's ``what`` evaluation (real, sim, joint_q_real_real) pooled over EVAL_SEEDS; None
  until every seed's file is there."""
  paths = [table.published(row, 'eval', f'{what}_seed{k}.json') for k in EVAL_SEEDS]
  if not all(os.path.isfile(p) for p in paths):
    return None
  results = [_read_json(p) for p in paths]
  for path, r in zip(paths, results):  # tools/evaluate.py records it since session 22
    if 'world' in r and float(r['world'].get('real_gap', -1)) != table.world['real_gap']:
      raise ValueError(f"{path} was measured in the pseudo-real world {r['world']}, but "
                       f"this table's is {table.world} ({WORLD_FILE}); re-measure it with "
                       'the summary\'s "evaluate" command')
  return _pool(results)


def _generator_result(table: Table1, row: str) -> dict:
  """What a generator row's frozen G measured before any final Q: its generator report (scene
  metrics), the oracle-Q agreement, and the joint run's Q_real in `real`; whichever exist."""
  out = {}
  joint_q_real = _pooled_eval(table, row, 'joint_q_real_real')
  if joint_q_real:
    out['joint_q_real_real'] = joint_q_real
  report = table.published(row, 'generator_report.json')
  if os.path.isfile(report):
    out['generator_report'] = _read_json(report)
  oracle = table.published(row, 'oracle_q_report.json')
  if os.path.isfile(oracle):
    out['oracle_q'] = _read_json(oracle).get('oracle_q')
  continued = table.published(row, 'joint', CONTINUED_NOTE)
  if os.path.isfile(continued):  # a lever row's joint run trained another row's on
    note = _read_json(continued)
    out['joint_continued_from'] = {k: note[k] for k in ('row', 'step')}
  return out


def _row_result(table: Table1, row: str) -> Optional[dict]:
  """The measured figures of one finished row (None if an evaluation is missing)."""
  out = {}
  for what in ('real', 'sim'):
    out[what] = _pooled_eval(table, row, what)
    if out[what] is None:
      return None
  for what in ('swap_sim',) + tuple(COMPOSITE_WORLDS):
    pooled = _pooled_eval(table, row, what)
    if pooled:
      out[what] = pooled
  out.update(_generator_result(table, row))
  base = row.partition('_seed')[0]
  # Relative to the checkout that holds results_dir (results/table1), which is not the code's
  # when the runner runs from another worktree (session 17 wrote '../../main/results/...').
  checkout = os.path.dirname(os.path.dirname(table.results_dir))
  rel = os.path.relpath(os.path.join(table.results_dir, row, 'final_q'), checkout)
  if base == 'sim_only' and not table.own_sim_only:
    rel = SIM_ONLY_RESULTS
  source = '--policy=random' if base == 'random' else f'--checkpoint_dir={rel}'
  if base != 'random':
    out['checkpoint_dir'] = rel
  g = f' --generator_key={FROZEN_G_KEY}' if uses_frozen_g(base) else ''
  world = ('' if table.real_gap is None else
           f' --gin_bindings="RealAppearance.real_gap = {table.real_gap!r}"')
  out['evaluate'] = (f'python tools/evaluate.py {source} --appearance=real{world} '
                     f'--num_episodes={table.scale.eval_episodes} --seed=0  # seeds 0 1 2; '
                     f'--appearance=sim{g} for the sim column')
  for what, key in (('final_q', 'resumed_from_interim'), ('joint', 'joint_resumed_from_interim')):
    adopted = table.published(row, what, ADOPTED_NOTE)
    if os.path.isfile(adopted):  # a lost machine: the run resumed from its interim copy
      note = _read_json(adopted)
      out[key] = {k: note[k] for k in ('step', 'refill_transitions')}
  return out


def summarize(table: Table1) -> dict:
  """Writes results/table1/summary.json, docs/table1.md and docs/table1.png; returns summary."""
  rows, pending = {}, []
  for key in all_row_keys():
    result = _row_result(table, key)
    if result is None:
      pending.append(key)
    else:
      rows[key] = result
  for base, training_seeds in TRAINING_SEEDS.items():  # pooled over the seeds measured so far
    measured = [k for k in training_seeds if f'{base}_seed{k}' in rows]
    seeds = [rows[f'{base}_seed{k}'] for k in measured]
    if len(seeds) > 1:
      pooled = {'checkpoint_dir': [s['checkpoint_dir'] for s in seeds],
                'evaluate': seeds[0]['evaluate'], 'seeds': measured}
      for what in ('real', 'sim', 'joint_q_real_real'):
        if all(what in s for s in seeds):
          pooled[what] = _pool_pooled([s[what] for s in seeds])
      spreads = [s['real'].get('embedding_spread') for s in seeds if 'real' in s]
      if len(spreads) == len(seeds) and None not in spreads:  # each run's tower, not a mean
        pooled['seed_spreads'] = spreads
      rows[base] = pooled
    elif seeds:  # one seed so far: the table shows it, marked as such
      rows[base] = dict(seeds[0], seeds=measured)
  checkout = os.path.dirname(os.path.dirname(table.results_dir))
  summary = {'protocol': f'issue 18 / docs/{table.doc_name}.md', 'scale': table.scale.name,
             'world': table.world,
             'summary_file': os.path.relpath(os.path.join(table.results_dir, 'summary.json'),
                                             checkout), 'eval_seeds': list(EVAL_SEEDS),
             'episodes_per_seed': table.scale.eval_episodes, 'rows': rows, 'pending': pending}
  # Each frozen G's own figures, there as soon as its joint run is reported: the issue asks
  # to look at them before a final Q is spent on it (hours later, the row itself lands).
  generators = {key: g for key in all_row_keys() if (g := _generator_result(table, key))}
  if generators:
    summary['generators'] = generators
  criteria = joint_criteria(table)
  if criteria:
    summary['joint_criteria'] = criteria
  for what, key in (('final_q', 'curves'), ('joint', 'joint_curves')):
    name = f'{table.doc_name}_{key}.png'  # beside the markdown
    if render_curves(table, summary, os.path.join(table.docs_dir, name), what) is not None:
      summary[key] = name
  runs = between_runs(rows)
  if runs:
    summary['between_runs'] = runs
    name = f'{table.doc_name}_runs.png'
    if render_between_runs(summary, os.path.join(table.docs_dir, name)) is not None:
      summary['runs_figure'] = name
    name = f'{table.doc_name}_transfer.png'
    if render_between_runs(summary, os.path.join(table.docs_dir, name), 'transfer') is not None:
      summary['transfer_figure'] = name
  name = f'{table.doc_name}_predictors.png'
  if render_predictors(summary, os.path.join(table.docs_dir, name)) is not None:
    summary['predictors'] = name
  fileio.write_json_atomic(os.path.join(table.results_dir, 'summary.json'), summary)
  markdown = table_markdown(summary)
  fileio.write_text_atomic(os.path.join(table.docs_dir, f'{table.doc_name}.md'), markdown)
  figure = os.path.join(table.docs_dir, f'{table.doc_name}.png')
  if render_figure(table, figure) is None and os.path.exists(figure):
    pass  # no generator has a report yet: an older figure stays
  write_tensorboard(table, summary, markdown)
  return summary


TENSORBOARD_DIR = 'tensorboard'  # in the work directory, beside every stage's own run
TENSORBOARD_NOTE = 'last_report.json'  # in it: the figures of the last report written


def write_tensorboard(table: Table1, summary: dict, markdown: str) -> Optional[str]:
  """The table in TensorBoard, under ``<work_dir>/tensorboard`` (so `tensorboard --logdir
  <work_dir>` shows it beside each run's own logs; summaries.write_report): the generated
  markdown under `table1/text`, its figures as images, and each measured row's success in
  real and sim as scalars (`table1/real/<row>`), at step = the number of final Qs measured in
  real (pooled rows not counted).
  A report is written only when those figures changed since the last one (so a re-run adds no
  event file); returns its directory, or None when nothing changed."""
  from rl_cyclegan.evaluation import summaries  # pylint: disable=g-import-not-at-top
  rows = summary['rows']
  scalars = {f'{what}/{key}': rows[key][what]['success_rate'] for key in sorted(rows)
             for what in ('real', 'sim') if 'success_rate' in (rows[key].get(what) or {})}
  logdir = os.path.join(table.work_dir, TENSORBOARD_DIR)
  note = os.path.join(logdir, TENSORBOARD_NOTE)
  if os.path.isfile(note) and _read_json(note) == scalars:
    return None
  names = (('generators', f'{table.doc_name}.png'), ('final_q_curves', summary.get('curves')),
           ('joint_curves', summary.get('joint_curves')), ('runs', summary.get('runs_figure')),
           ('transfer', summary.get('transfer_figure')),
           ('predictors', summary.get('predictors')))
  figures = [(tag, os.path.join(table.docs_dir, name)) for tag, name in names
             if name and os.path.isfile(os.path.join(table.docs_dir, name))]
  step = sum(1 for key in all_row_keys() if 'real' in (rows.get(key) or {}))  # not pooled rows
  summaries.write_report(logdir, 'table1', step, markdown, figures, scalars)
  fileio.write_json_atomic(note, scalars)
  return logdir


def training_curve_dirs(table: Table1, what: str = 'final_q') -> List[Tuple[str, str]]:
  """[(label, run dir with eval/eval_<step>.json)] of every ``what`` run ('final_q' or
  'joint') that has evaluated in this table's world: a finished one's published copy, else
  its run in the work dir (a run still training, labelled so), else its interim copy. The
  project's Sim-Only run counts only in the project's world (its in-training evaluations
  rendered `real` at real_gap 1.0)."""
  return [(label, run) for _, label, run in _training_runs(table, what)]


def _training_runs(table: Table1, what: str) -> List[Tuple[str, str, str]]:
  """``training_curve_dirs`` with each run's row key: [(key, label, run dir)]."""
  out = []
  for key in all_row_keys():
    base = key.partition('_seed')[0]
    if what == 'joint' and base not in GENERATOR_ROWS:
      continue
    label = ROW_LABELS[base] + (f' s{key[-1]}' if '_seed' in key else '')
    published = table.published(key, what)
    # Only a finished stage's copy (its done marker) is the finished run (copies published
    # before session 25 also held a running joint run's evaluations); a running one's work
    # dir is newer than its interim copy, which a lost machine still has.
    candidates = [(published, label)] if os.path.isfile(
        os.path.join(published, DONE_FILE)) else []
    candidates += [(os.path.join(table.row_dir(key), what), f'{label} (training)'),
                   (table.published(key, interim_dir(what)), f'{label} (training)')]
    if base == 'sim_only' and not table.own_sim_only:
      checkout = os.path.dirname(os.path.dirname(table.results_dir))
      candidates = ([(os.path.join(checkout, SIM_ONLY_RESULTS), label)]
                    if table.world['real_gap'] == DEFAULT_REAL_GAP else [])
    for run, name in candidates:
      if glob.glob(os.path.join(run, 'eval', 'eval_*.json')):
        out.append((key, name, run))
        break
  return out


def joint_criteria(table: Table1) -> dict:
  """{row key: Appendix A's convergence criteria of its joint run at its last step, with the
  run's 'label' and 'run_dir'} (evaluation/convergence.py), for every joint run that has
  evaluated: a finished one's published copy, a running one's work dir or interim copy. A
  malformed file costs that run's entry (logged), not the summary."""
  from rl_cyclegan.evaluation import convergence  # pylint: disable=g-import-not-at-top
  out = {}
  for key, label, run in _training_runs(table, 'joint'):
    try:
      criteria = convergence.read_joint_criteria(run)
    except (ValueError, KeyError, TypeError) as e:
      table._log(f'  the convergence criteria of {label} are left out: {run}: {e!r}')  # pylint: disable=protected-access
      continue
    if criteria:
      checkout = os.path.dirname(os.path.dirname(table.results_dir))
      out[key] = dict(criteria, label=label, run_dir=os.path.relpath(run, checkout))
  return out


# The in-training evaluation each learning-curve figure shows: a final Q's greedy policy in
# real; a joint run's Q_real in real (its other evaluations: Q_sim in sim, Q_real on G(sim)).
CURVE_EVALUATIONS = {'final_q': ('real', 'final Qs'), 'joint': ('Q_real/real', "joint runs' Q_real")}


# The rows whose final figure in real is a dashed line on every learning-curve figure: the
# ceiling (a Q trained in real), the baseline the method must beat, and the floor.
REFERENCE_ROWS = ('real_oracle', 'sim_only', 'random')


def reference_lines(summary: dict, keys: Sequence[str] = REFERENCE_ROWS
                    ) -> List[Tuple[str, float]]:
  """(label, success rate in real) of each of ``keys`` the summary has measured."""
  rows = summary['rows']
  return [(f"{ROW_LABELS[key].split(' (')[0]}, final: "
           f"{100 * rows[key]['real']['success_rate']:.1f}% (n={rows[key]['real']['episodes']})",
           rows[key]['real']['success_rate'])
          for key in keys if rows.get(key, {}).get('real')]


# What a frozen G measured before any final Q, read against its final Qs' success in real
# (``predictor_markdown``): (label, path in its ``summary['generators']`` entry, digits shown).
# The oracle-Q distance is the task metric only this world allows (issue 18); the figure plots
# it.
G_PREDICTORS = (
    ('oracle-Q greedy-move distance', ('oracle_q', 'generator', 'action_xy_distance'), 3),
    ('object preservation', ('generator_report', 'frame', 'generator/object_preservation'), 3),
    ('MAE objects', ('generator_report', 'frame', 'generator/mae_objects'), 1),
    ('MAE tray and floor', ('generator_report', 'frame', 'generator/mae_background'), 1),
    ('object contrast over real',
     ('generator_report', 'frame', 'generator/object_contrast_excess'), 1),
    ("joint run's Q_real in real", ('joint_q_real_real', 'success_rate'), 3))


def _lookup(entry: dict, path: Sequence[str]) -> Optional[float]:
  for part in path:
    entry = entry.get(part) if isinstance(entry, dict) else None
  return entry if isinstance(entry, (int, float)) else None


def _g_final_q_rows(rows: dict, key: str) -> List[dict]:
  """The row entries of every final Q on G ``key`` ('<row>_seed<k>' or a row without seeds):
  the row's own, then its second final Q's (FINAL_Q_REPLICATES); {} for one not measured."""
  base, _, seed = key.partition('_seed')
  keys = [key] + [f'{fq}_seed{seed}' for fq, g in FINAL_Q_REPLICATES.items() if g == base]
  return [rows.get(k) or {} for k in keys]


def generator_success(summary: dict) -> List[Tuple[str, dict, dict, int, int]]:
  """[(G's row key, its generator entry, its final Qs' `real` pooled, live final Qs, final
  Qs)] of every frozen G with a final Q whose image tower is alive: the row's own final Q and
  its second one (FINAL_Q_REPLICATES). A collapsed final Q (COLLAPSED_SPREAD) is left out: its
  figure measures its learner's failure, not what G gave it."""
  out = []
  for key, entry in (summary.get('generators') or {}).items():
    finals = [r['real'] for r in _g_final_q_rows(summary['rows'], key) if r.get('real')]
    live = [r for r in finals if r.get('embedding_spread', 1.0) >= COLLAPSED_SPREAD]
    if live:
      out.append((key, entry, _pool_pooled(live), len(live), len(finals)))
  return out


def generator_transfer(summary: dict) -> Dict[str, float]:
  """Each frozen G's real - sim: the mean over its final Qs with a live tower and both figures
  (the row's own and its second final Q) of success in `real` less success in `sim` through the
  G. A final Q's luck in learning the task shows in both and cancels (``between_runs``)."""
  out = {}
  for key in summary.get('generators') or {}:
    gaps = [r['real']['success_rate'] - r['sim']['success_rate']
            for r in _g_final_q_rows(summary['rows'], key) if r.get('real') and r.get('sim')
            and r['real'].get('embedding_spread', 1.0) >= COLLAPSED_SPREAD]
    if gaps:
      out[key] = sum(gaps) / len(gaps)
  return out


def _spearman_words(pairs: Sequence[Tuple[Optional[float], float]]) -> Optional[str]:
  """'rho = <rho> over <n> Gs, exact permutation p = <p>' of the pairs whose x is known, or
  None: fewer than 3, or no spread on a side."""
  from rl_cyclegan.evaluation import policy_eval  # pylint: disable=g-import-not-at-top
  pairs = [(x, y) for x, y in pairs if x is not None]
  try:
    r = policy_eval.spearman_exact(*zip(*pairs)) if len(pairs) >= 3 else None
  except ValueError:  # no spread on a side
    return None
  return r and (f"rho = {r['rho']:+.2f} over {r['n']} Gs, "
                f"{'exact' if r['exact'] else 'sampled'} permutation p = {r['p_value']:.3g}")


def predictor_markdown(summary: dict) -> List[str]:
  """Which property of a frozen G goes with its final Qs' success in real, and with their real
  - sim (``generator_transfer``): each G's figures (``G_PREDICTORS``) and each property's
  Spearman rank correlation over the Gs with each, with its exact permutation p
  (policy_eval.spearman_exact)."""
  gens = generator_success(summary)
  if len(gens) < 3:
    return []
  transfer = generator_transfer(summary)
  body, lines = [], []
  for key, entry, real, live, total in gens:
    values = [(_lookup(entry, path), digits) for _, path, digits in G_PREDICTORS]
    gap = transfer.get(key)
    body.append(f'| {_seed_label(key)} | {live} of {total} | {_pct(real)} | '
                f"{'-' if gap is None else f'{100 * gap:+.1f}'} | " + ' | '.join(
                    '-' if v is None else f'{v:.{digits}f}' for v, digits in values) + ' |')
  for label, path, _ in G_PREDICTORS:
    with_real = _spearman_words([(_lookup(entry, path), real['success_rate'])
                                 for _, entry, real, _, _ in gens])
    with_gap = _spearman_words([(_lookup(entry, path), transfer[key])
                                for key, entry, _, _, _ in gens if key in transfer])
    if with_real:
      lines.append(f'- {label}: with success in real, Spearman {with_real}' + (
          f'; with real - sim, {with_gap}' if with_gap else '') + '.')
  return _section(
      "Which property of G goes with its final Q's success in real?",
      "Each frozen G with a final Q whose image tower is alive: its final Qs' success in "
      "`real` (the row's own and its second final Q, pooled; a collapsed one left out), "
      "against what the G measured before any final Q: the oracle-Q greedy-move distance "
      "(the real-trained oracle's move on G(x) against its move on the true real render; "
      "lower: G keeps what the oracle acts on), the scene metrics of its generator report "
      "(final Q's view), and its joint run's own Q_real in `real`. `real - sim`: the live "
      "final Qs' success in real less their success in sim through the G, where a final Q's "
      "luck in learning the task cancels (\"Between runs\"), so it measures the G alone. A "
      "handful of Gs from different recipes: a rank correlation here says which measure ranks "
      "Gs as the final Q does, not why.",
      ('G', 'final Qs (live of measured)', 'real', 'real - sim (points)') +
      tuple(p[0] for p in G_PREDICTORS),
      body) + lines + ([''] if lines else []) + ([
          f"![oracle-Q distance against success]({summary['predictors']})", '']
          if summary.get('predictors') else [])


def render_predictors(summary: dict, path: str) -> Optional[str]:
  """The oracle-Q greedy-move distance of each G (x) against its final Qs' success in real
  (y, with the 95% interval), one labelled point per G; None (no file) under 3 such Gs."""
  from rl_cyclegan import plotting  # pylint: disable=g-import-not-at-top
  label, path_in, _ = G_PREDICTORS[0]
  series = [(_seed_label(key), [(x, real['success_rate'], *real['ci95'])])
            for key, entry, real, _, _ in generator_success(summary)
            if (x := _lookup(entry, path_in)) is not None][:len(plotting.COLORS)]
  if len(series) < 3:
    return None
  xs = [points[0][0] for _, points in series]
  pad = 0.1 * (max(xs) - min(xs) or 1.0)
  return plotting.line_chart(series, path, title='each frozen G', x_label=f'{label} (lower: '
                             'G keeps what the oracle acts on)', y_label='success in real',
                             hlines=reference_lines(summary), x_format='.3f',
                             x_range=(min(xs) - pad, max(xs) + pad), side_by_side=False)


# Run-level comparisons (``between_runs``; rl_cyclegan/evaluation/run_statistics.py): every
# final Q of a recipe's Gs is one measurement of the recipe. (recipe, its label in the figure).
RUN_RECIPES = (('cyclegan', 'CycleGAN'), ('rl_cyclegan', 'RL-CycleGAN'),
               ('rl_cyclegan_rlscene1', 'lambda_RL-scene 1'), ('real_oracle', 'oracle'),
               ('randomized_sim', 'Randomized-Sim'))
# (a, b): Welch's test of a - b, once both have two final Qs or more: the goal's comparison,
# the lever that came level with it, and CycleGAN against a perfect G (the oracle).
RUN_COMPARISONS = (('rl_cyclegan', 'cyclegan'), ('rl_cyclegan_rlscene1', 'cyclegan'),
                   ('cyclegan', 'real_oracle'))


def final_q_runs(rows: dict, base: str, what: str = 'real') -> List[Tuple[int, str, dict]]:
  """Every final Q of recipe ``base`` measured in ``what`` (`real` or `sim`), as (unit, label,
  its ``what`` entry): each training seed's row, then its second final Q (FINAL_Q_REPLICATES,
  REFERENCE_REPLICATES). ``unit``: the training seed of the G it learned on; a recipe without a
  G (the oracle) has one unit per final Q."""
  replicates = [base] + replicates_of(base)
  runs = []
  for seed in TRAINING_SEEDS.get(base, (None,)):
    for j, row in enumerate(replicates):
      entry = (rows.get(row if seed is None else f'{row}_seed{seed}') or {}).get(what)
      if entry:
        label = ' '.join(x for x in ('' if seed is None else f's{seed}',
                                     '2nd final Q' if j else '') if x)
        runs.append((j if seed is None else seed, label or 'final Q', entry))
  return runs


def _finite(value):
  """JSON has no inf or NaN: None for them."""
  return value if not isinstance(value, float) or math.isfinite(value) else None


def _welch_entry(a: Sequence[float], b: Sequence[float]) -> dict:
  """run_statistics.welch of a - b, with the runs a side for 80% power, JSON-safe."""
  from rl_cyclegan.evaluation import run_statistics as rs  # pylint: disable=g-import-not-at-top
  test = rs.welch(a, b)
  test['runs_for_power'] = rs.runs_for_power(test['difference'], test['sd_a'], test['sd_b'])
  return {**{k: _finite(v) for k, v in test.items()}, 'ci': [_finite(x) for x in test['ci']]}


def _transfer_interval(real: dict, sim: dict) -> Tuple[float, float, float]:
  """A final Q's real rate less its sim rate, with its 95% interval: paired scene by scene
  (``policy_eval.paired_difference_interval``) where both evaluations recorded their
  outcomes on the same scenes, else the unpaired Wald interval (wider)."""
  from rl_cyclegan.evaluation import policy_eval  # pylint: disable=g-import-not-at-top
  a, b = real.get('outcomes'), sim.get('outcomes')
  if a and b and len(a) == len(b):
    return policy_eval.paired_difference_interval(a, b)
  d = real['success_rate'] - sim['success_rate']
  half = policy_eval.Z_95 * math.sqrt(sum(r['success_rate'] * (1 - r['success_rate']) /
                                          r['episodes'] for r in (real, sim)))
  return d, d - half, d + half


def between_runs(rows: dict) -> dict:
  """``summary['between_runs']``: each RUN_RECIPES recipe's final Qs in `real` (labels, rates,
  intervals, which towers collapsed, their mean, the SD between them, the SD one of them has
  from its scenes alone, and ``unit_rates``: the mean of each G's final Qs), and RUN_COMPARISONS's
  Welch tests where both sides have two final Qs or more: over final Qs (the entry's own keys)
  and, where both sides have two units or more, over Gs (``by_g``; final Qs on one G are not
  independent draws of the recipe), each with the runs a side a Welch test would need for 80%
  power at the difference and spreads measured; and ``components``: where the spread lies,
  between final Qs on one G and between Gs beyond that (``run_statistics.variance_components``
  over the recipes with a G); {} before any recipe has a final Q.

  A recipe with a G also gets ``transfer``: each final Q's `real` rate less its `sim` rate
  (through its own G; None where sim is not measured, or where the tower collapsed: a blind
  policy scores the same in both whatever its G). A final Q's luck in learning the task shows
  in both of its figures and cancels in their difference, which is what its G leaves of the
  sim-to-real gap; a comparison of two such recipes gets the Welch test of it (``transfer``).
  """
  from rl_cyclegan.evaluation import run_statistics as rs  # pylint: disable=g-import-not-at-top
  recipes, g_of = {}, {}  # g_of: per recipe with a G, each final Q's G (training seed)
  for base, _ in RUN_RECIPES:
    runs = final_q_runs(rows, base)
    if runs:
      rates = [r['success_rate'] for _, _, r in runs]
      mean, sd = rs.mean_sd(rates)
      units = sorted({u for u, _, _ in runs})
      recipes[base] = {
          'labels': [label for _, label, _ in runs], 'rates': rates,
          'ci95': [r['ci95'] for _, _, r in runs], 'mean': mean, 'sd': sd,
          'collapsed': [isinstance(x := r.get('embedding_spread'), (int, float))
                        and x < COLLAPSED_SPREAD for _, _, r in runs],
          'scene_sd': rs.mean_sd([rs.scene_sd(r['success_rate'], r['episodes'])
                                  for _, _, r in runs])[0],
          'unit_rates': [rs.mean_sd([r['success_rate'] for v, _, r in runs if v == u])[0]
                         for u in units]}
      if base in GENERATOR_ROWS:
        g_of[base] = [u for u, _, _ in runs]
        sim = {label: r for _, label, r in final_q_runs(rows, base, 'sim')}
        intervals = [None if c or label not in sim else _transfer_interval(r, sim[label])
                     for (_, label, r), c in zip(runs, recipes[base]['collapsed'])]
        recipes[base]['transfer'] = [x and x[0] for x in intervals]
        recipes[base]['transfer_ci95'] = [x and list(x[1:]) for x in intervals]
  comparisons = []
  for a, b in RUN_COMPARISONS:
    if min(len(recipes.get(k, {}).get('rates', ())) for k in (a, b)) >= 2:
      entry = {'a': a, 'b': b, **_welch_entry(recipes[a]['rates'], recipes[b]['rates'])}
      if min(len(recipes[k]['unit_rates']) for k in (a, b)) >= 2:
        entry['by_g'] = _welch_entry(recipes[a]['unit_rates'], recipes[b]['unit_rates'])
      ta, tb = ([x for x in recipes[k].get('transfer', ()) if x is not None] for k in (a, b))
      if min(len(ta), len(tb)) >= 2:
        entry['transfer'] = _welch_entry(ta, tb)
      comparisons.append(entry)
  if not recipes:
    return {}

  def nested(values):  # per recipe with a G, per G, its final Qs' values (None left out)
    return [[[x for v, x in zip(g_of[base], recipes[base][values]) if v == u and x is not None]
             for u in sorted(set(g_of[base]))] for base in g_of]

  components = {**rs.variance_components(nested('rates')), 'recipes': list(g_of)}
  transfer = rs.variance_components([[g for g in r if g] for r in nested('transfer')])
  return {'recipes': recipes, 'comparisons': comparisons,
          'components': {**{k: _finite(v) for k, v in components.items()},
                         'transfer': {k: _finite(v) for k, v in transfer.items()}}}


def _welch_words(c: dict, runs: str) -> str:
  """'<difference>, 95% interval <low> to <high> (Welch, df <df>), p = <p>; for 80% power: <n>
  <runs> a side'."""
  from rl_cyclegan.evaluation import run_statistics as rs  # pylint: disable=g-import-not-at-top
  low, high = (f'{100 * x:+.1f}' if x is not None else '?' for x in c['ci'])
  df = f"{c['df']:.1f}" if c['df'] is not None else 'inf'
  need = c['runs_for_power'] or f'more than {rs.MAX_RUNS}'
  return (f"{100 * c['difference']:+.1f} points, 95% interval {low} to {high} (Welch, df {df}), "
          f"p = {c['p_value']:.3g}; for 80% power: {need} {runs} a side")


def between_runs_markdown(summary: dict) -> List[str]:
  """The ``between_runs`` section: a line per recipe, then each Welch comparison."""
  runs = summary.get('between_runs') or {}
  body = []
  for base, r in (runs.get('recipes') or {}).items():
    each = ', '.join(f'{label} {100 * x:.1f}%' + (' (collapsed tower)' if c else '')
                     for label, x, c in zip(r['labels'], r['rates'], r['collapsed']))
    sd = f"{100 * r['sd']:.1f}" if len(r['rates']) > 1 else '-'
    transfer = ', '.join('-' if x is None else f'{100 * x:+.1f}' for x in r.get('transfer') or ())
    body.append(f"| {ROW_LABELS[base]} | {len(r['rates'])} | {each} | {100 * r['mean']:.1f}% | "
                f"{sd} | {100 * r['scene_sd']:.1f} | {transfer or 'no G'} |")
  lines = _section(
      'Between runs: each final Q one measurement',
      'The intervals above count episodes: they say how well 300 episodes measure one final Q. '
      'A second final Q on the same G has moved a figure by up to 16 points, so whether one '
      'recipe beats another is limited by how many final Qs it has, not by episodes. Here each '
      'final Q is one measurement of its recipe (`s<k>`: the G of training seed k; `2nd final '
      "Q`: the same G's second final Q), and two recipes are compared by Welch's t-test on "
      'them (Colas et al. 2018, "How many random seeds?"; '
      '`rl_cyclegan/evaluation/run_statistics.py`). Final Qs on one G share it, so they are not '
      'independent draws of the recipe and the test over final Qs is, if anything, too '
      "confident; the test over Gs takes each G's final Qs' mean as one measurement (the oracle, "
      'with no G: each final Q). `SD from scenes alone`: the SD a final Q\'s figure has from its '
      '300 episodes (binomial); a spread between final Qs above it is the runs\' own. `for 80% '
      'power`: how many a Welch test would need to detect a true difference of the size '
      'measured, at the spreads measured: a plan for more runs, not a test. `real - sim`: each '
      "final Q's figure in `real` less its figure in `sim` through its own G, in the same "
      "order ('-': sim not measured, or a collapsed tower, blind in both): a final Q's luck in "
      'learning the task shows in both and cancels, and what is left is the sim-to-real gap '
      'its G did not close.',
      ('recipe', 'final Qs', 'each in `real`', 'mean', 'SD between final Qs (points)',
       'SD from scenes alone (points)', 'real - sim, each (points)'), body)
  for c in runs.get('comparisons', []) if lines else []:
    line = (f"- {ROW_LABELS[c['a']]} ({c['n_a']} final Qs, mean {100 * c['mean_a']:.1f}%) "
            f"against {ROW_LABELS[c['b']]} ({c['n_b']}, {100 * c['mean_b']:.1f}%): "
            f"{_welch_words(c, 'final Qs')}")
    if 'by_g' in c:
      line += (f". Over Gs ({c['by_g']['n_a']} against {c['by_g']['n_b']}): "
               f"{_welch_words(c['by_g'], 'Gs')}")
    if 'transfer' in c:
      t = c['transfer']
      line += (f". Real - sim ({t['n_a']} final Qs, mean {100 * t['mean_a']:+.1f} points, "
               f"against {t['n_b']}, {100 * t['mean_b']:+.1f}): {_welch_words(t, 'final Qs')}")
    lines.append(line + '.')
  lines += _components_lines(runs.get('components') or {}) if lines else []
  if lines and summary.get('runs_figure'):
    lines += ['', f"![each final Q in real]({summary['runs_figure']})"]
  if lines and summary.get('transfer_figure'):
    lines += ['', f"![each final Q's real - sim]({summary['transfer_figure']})"]
  return lines + ([''] if lines else [])


def _components_lines(c: dict) -> List[str]:
  """The line on where the spread between final Qs lies (``between_runs``'s components), once
  some G has two final Qs."""
  if c.get('within_sd') is None:
    return []
  short = [dict(RUN_RECIPES)[b] for b in c['recipes']]
  names = ' and '.join(x for x in (', '.join(short[:-1]), short[-1]) if x)
  line = (f"- Where the spread lies (one-way random-effects estimates over the Gs of {names}; "
          '`run_statistics.variance_components`): final Qs on one G differ by an SD of '
          f"{100 * c['within_sd']:.1f} points (df {c['within_df']})")
  if c.get('between_var') is None:
    return [line + '; no recipe has two Gs yet.']
  line += (f", and the Gs of one recipe by {100 * c['between_sd']:.1f} points beyond that (df "
           f"{c['between_df']}")
  line += ('; the estimate came out below 0, so Gs differ less than their final Qs do)'
           if c['between_var'] < 0 else ')')
  verdict = ("most of the spread between runs is the final Q's own luck, not the G it learned "
             'on' if c['within_sd'] > c['between_sd'] else
             'the Gs differ more than final Qs on one G do')
  line = f'{line}: {verdict}. With so few degrees of freedom both are rough.'
  t = c.get('transfer') or {}
  if t.get('within_sd') is not None:
    line += (f" Real - sim differs between final Qs on one G by an SD of {100 * t['within_sd']:.1f}"
             f" points (df {t['within_df']}).")
  return [line]


def render_between_runs(summary: dict, path: str, what: str = 'real') -> Optional[str]:
  """A dot plot: each RUN_RECIPES recipe's final Qs with their 95% intervals, side by side in
  one column per recipe; None (no file) before any recipe has two. ``what``: 'real', their
  success in `real`, over the Sim-Only and random rows' lines; or 'transfer', each final Q's
  real less its sim figure through its own G (recipes with a G; a collapsed tower left out),
  over the line of no gap and Sim-Only's own real - sim (the gap with no G at all)."""
  from rl_cyclegan import plotting  # pylint: disable=g-import-not-at-top
  short = dict(RUN_RECIPES)
  recipes = {}
  for base, r in ((summary.get('between_runs') or {}).get('recipes') or {}).items():
    keys = ('rates', 'ci95') if what == 'real' else ('transfer', 'transfer_ci95')
    points = [(x, ci) for x, ci in zip(*(r.get(k) or () for k in keys)) if x is not None]
    if points:
      recipes[base] = points
  if not any(len(points) > 1 for points in recipes.values()):
    return None
  series, ticks = [], []
  for i, (base, points) in enumerate(recipes.items()):
    n, mean = len(points), sum(x for x, _ in points) / len(points)
    series.append((f"{short[base]}: mean {100 * mean:+.1f} points of {n}" if what != 'real' else
                   f"{short[base]}: mean {100 * mean:.1f}% of {n}", [
                       (i + 0.12 * (j - (n - 1) / 2), x, *ci)
                       for j, (x, ci) in enumerate(points)]))
    ticks.append((i, short[base]))
  common = dict(x_label='recipe', x_range=(-0.5, len(series) - 0.5), x_ticks=ticks,
                connect=False, side_by_side=False)
  if what == 'real':
    hlines = reference_lines(summary, [k for k in REFERENCE_ROWS if k not in short])
    return plotting.line_chart(series, path, title='each final Q (95% interval over its 300 '
                               'episodes)', y_label='success in real', hlines=hlines, **common)
  hlines = [('no gap left', 0.0)]
  sim_only = summary['rows'].get('sim_only') or {}
  if sim_only.get('real') and sim_only.get('sim'):
    gap = _transfer_interval(sim_only['real'], sim_only['sim'])[0]
    hlines.append((f'Sim-Only (no G): {100 * gap:+.1f} points', gap))
  return plotting.line_chart(series, path, title='each final Q, real - sim through its own G '
                             '(95% interval, paired by scene)', y_label='real - sim',
                             y_range=(-0.5, 0.5), hlines=hlines, **common)


def render_curves(table: Table1, summary: dict, path: str, what: str = 'final_q') -> Optional[str]:
  """Learning curves: each ``what`` run's in-training success in `real` (a final Q's policy,
  or a joint run's Q_real) against its train step (50 episodes per point, the run's own
  evaluation seed; the table's figures are the 300 episodes of its evaluation stages), with
  the final figures of ``REFERENCE_ROWS`` as reference lines; one panel a run when there are
  more runs than ``plotting.COLORS``. None (and no file) if no such run has evaluated yet."""
  from rl_cyclegan import plotting  # pylint: disable=g-import-not-at-top
  evaluation, runs = CURVE_EVALUATIONS[what]
  series = []
  for label, run in training_curve_dirs(table, what):
    try:
      points = plotting.read_eval_curves(run).get(evaluation)
    except ValueError as e:  # one malformed file costs its curve, not the summary
      table._log(f'  {path}: the curve of {label} is left out: {e}')  # pylint: disable=protected-access
      continue
    if points:
      series.append((label, points))
  if not series:
    return None
  world = ('' if table.world['real_gap'] == DEFAULT_REAL_GAP
           else f", real_gap {table.world['real_gap']:g}")
  title = f'in real{world}: {runs} while training (n=50 per point)'
  if len(series) > len(plotting.COLORS):  # one panel a run: more runs than a chart has colours
    return plotting.small_multiples(series, path, title=f'grasp success {title}',
                                    hlines=reference_lines(summary))
  return plotting.line_chart(series, path, title=title, hlines=reference_lines(summary))


def _pct(r):
  if not r:
    return 'not measured'
  low, high = r['ci95']
  return (f"{100 * r['success_rate']:.1f}% ({r['successes']}/{r['episodes']}; "
          f'{100 * low:.0f}-{100 * high:.0f}%)')


# A final Q whose image tower's embedding spread on its `real` evaluation frames is below this
# is blind: collapsed runs measured 0.0000-0.0019, working ones 0.06-0.13 at their end
# (docs/results.md, "Session 22"; at 0.75 the oracle's was 0.019 already at step 4,000).
# policy_eval.COLLAPSED_SPREAD, without importing TensorFlow (a test checks they agree).
COLLAPSED_SPREAD = 0.005


def _tower(row: dict, one_run: bool) -> str:
  """The image tower column: one run's embedding spread in `real`, marked when collapsed; for
  a row pooled over training seeds, how many of its runs collapsed."""
  if not one_run:
    runs = row.get('seed_spreads') or []
    collapsed = sum(x < COLLAPSED_SPREAD for x in runs)
    return f'{collapsed} of {len(runs)} collapsed' if runs else '-'
  spread = (row.get('real') or {}).get('embedding_spread')
  if spread is None:
    return '-'
  return f'{spread:.4f}' + (' **collapsed**' if spread < COLLAPSED_SPREAD else '')


def _preservation(result: dict) -> str:
  """A row's G's object preservation in the final Q's view, from its generator report."""
  value = ((result.get('generator_report') or {}).get('frame') or {}).get(
      'generator/object_preservation')
  return '-' if value is None else f'{value:.3f}'


def table_markdown(summary: dict) -> str:
  rows = summary['rows']
  generators = summary.get('generators') or {}
  gap = summary.get('world', {}).get('real_gap', DEFAULT_REAL_GAP)
  normalization = summary.get('world', {}).get('q_normalization')
  summary_file = summary.get('summary_file', 'results/table1/summary.json')
  lines = [
      '# Table 1 in the pseudo-real world' + (
          '' if gap == DEFAULT_REAL_GAP else f' at real_gap {gap:g}') + (
          f', Q-networks with {normalization} norm' if normalization else ''), '',
      'Generated by `make table1` (`tools/table1.py`, rl_cyclegan/pipelines/table1.py) from '
      f'`{summary_file}`; do not edit by hand. How each row is made, the '
      'deviations from the paper and the analysis are in docs/results.md ("Table 1").', '',
      *([] if gap == DEFAULT_REAL_GAP else [
          f'A second pseudo-real world, closer to sim: `real_gap` {gap:g} instead of the '
          f"project's {DEFAULT_REAL_GAP:g} (`tools/table1.py --real_gap={gap:g}`). Every real "
          'log, training run and evaluation here renders `real` in it.', '']),
      *([] if not normalization else [
          f"A Q-network variant: every Q-function of this table (the joint runs' critics, every "
          f"final Q, the oracle's) has `GraspingQNetwork.normalization = '{normalization}'` "
          f'(`tools/table1.py --q_normalization={normalization}`), against the collapse of the '
          "image tower (docs/results.md, Table 1). The Sim-Only row is trained again with it, and "
          "the joint critics start from that Sim-Only Q.", '']),
      f"Success on the unseen test objects, {summary['episodes_per_seed']} episodes at each "
      f"evaluation seed {', '.join(map(str, summary['eval_seeds']))}, pooled, with the 95% "
      'Wilson interval. `real`: the final Q in the pseudo-real world. `sim`: in the simulator, '
      'seen through the row\'s G. `joint Q_real`: the joint run\'s own Q_real in `real`.', '',
      "`image tower`: the final Q's embedding spread on the `real` evaluations' frames (its "
      "image features' spread across frames, mean over the evaluation seeds); below "
      f"{COLLAPSED_SPREAD:g} the tower gives every image the same features and the policy is "
      'blind (docs/results.md, "Session 22"): a failure of the final Q\'s learner, which the '
      "row's success then measures along with its G.", '',
      '| row | real | sim | joint Q_real in real | object preservation of G | image tower '
      '| paper (real robot) |',
      '|---|---|---|---|---|---|---|']
  keys = []
  for base in ROWS:
    if base in TRAINING_SEEDS:
      keys += [base] + [f'{base}_seed{k}' for k in TRAINING_SEEDS[base]]
    else:
      keys.append(base)
  for key in keys:
    base = key.partition('_seed')[0]
    label = _row_label(key, rows)
    r = rows.get(key)
    if label is None:
      continue  # the row's own line already is this seed, marked '(seed <k> only)'
    paper = f'{PAPER_REAL_ROBOT[base]}%' if base in PAPER_REAL_ROBOT else '-'
    if r is None:
      g = generators.get(key)
      if base in LEVER_ROWS and not g:
        continue  # a lever not tried (yet): listed under the table
      if g:  # its G is frozen and reported; the final Q is still to come
        lines.append(f"| {label} | final Q not run yet | | {_pct(g.get('joint_q_real_real'))} | "
                     f'{_preservation(g)} | | {paper} |')
      elif key == base or base in rows:  # a seed still to come of a row that has one
        lines.append(f'| {label} | not run yet | | | | | {paper} |')
      continue
    lines.append(f"| {label} | {_pct(r.get('real'))} | {_pct(r.get('sim'))} | "
                 f"{_pct(r.get('joint_q_real_real')) if 'joint_q_real_real' in r else '-'} | "
                 f"{_preservation(r)} | {_tower(r, len(r.get('seeds', [0])) < 2)} | "
                 f'{paper} |')
  lines += ['', 'Re-measure a row: the `evaluate` command of its entry in '
            f'`{summary_file}`.', '']
  lines += [f"Lever rows (issue 18: the paper's levers, and a variant of ours where a measurement "
            f"pointed to one; each a documented variant of the "
            f"RL-CycleGAN row with one change, at seed 0, and at seed 1 where it has a second "
            f"training seed; the gin file says what and why): "
            + '; '.join(f'`{k}` (`{g}`' + ('; no joint run reported yet)' if not any(
                rows.get(r) or generators.get(r) for r in (k, f'{k}_seed0')) else ')')
                        for k, g in LEVER_ROWS.items()) + '.', '']
  for key in LEVER_ROWS:
    cont = (rows.get(key) or generators.get(key) or {}).get('joint_continued_from')
    if cont:
      lines += [f"`{key}`'s joint run trained the finished joint run of `{cont['row']}` on from "
                f"its step {cont['step']} (`table1.JOINT_CONTINUES`).", '']
  if summary.get('curves'):
    lines += ["How each final Q learned: its in-training success in `real` (50 episodes per "
              "point, the run's own evaluation seed), a running one's from its interim copy:",
              '', f"![learning curves]({summary['curves']})", '']
  if summary.get('joint_curves'):
    lines += ["Each joint run's Q_real in `real` while it trained (50 episodes per point):", '',
              f"![joint runs' Q_real]({summary['joint_curves']})", '']
  lines += goal_markdown(summary)
  lines += between_runs_markdown(summary)
  lines += convergence_markdown(summary)
  lines += paired_markdown(summary, keys)
  lines += transfer_markdown(summary, keys)
  lines += swap_markdown(summary, keys)
  lines += composite_markdown(summary, keys)
  lines += generator_error_markdown(summary)
  lines += grasp_distance_markdown(summary, keys)
  lines += oracle_q_markdown(summary)
  lines += predictor_markdown(summary)
  resumed = [(k, what, rows[k][field]) for k in all_row_keys()
             for what, field in (('joint run', 'joint_resumed_from_interim'),
                                 ('final Q', 'resumed_from_interim'))
             if field in rows.get(k, {})]
  for key, what, note in resumed:
    lines.append(f"Note: the {what} of `{key}` was resumed on a new machine from its interim "
                 f"checkpoint at step {note['step']}; its on-policy replay was refilled with "
                 f"{note['refill_transitions']} transitions of the restored policy first "
                 '(docs/results.md, "Table 1").')
  if resumed:
    lines.append('')
  pending = [k for k in summary['pending']  # levers: listed above
             if k.partition('_seed')[0] not in LEVER_ROWS]
  if pending:
    lines += [f"Rows still to run: {', '.join(pending)}.", '']
  return '\n'.join(lines)


# Issue 18's goal: RL-CycleGAN above CycleGAN with non-overlapping pooled intervals, within
# this many points of the real-trained oracle (all in `real`).
GOAL_ORACLE_POINTS = 10.0


def goal_markdown(summary: dict) -> List[str]:
  """Where the table stands against issue 18's goal, from the rows' `real` figures."""
  from rl_cyclegan.evaluation import policy_eval  # pylint: disable=g-import-not-at-top
  rows = summary['rows']
  lines = ['## Against the goal', '',
           'Issue 18: RL-CycleGAN above CycleGAN in `real` with non-overlapping pooled 95% '
           f'intervals, and within {GOAL_ORACLE_POINTS:g} points of the real-trained oracle.', '']
  rl, cg, oracle = (rows.get(k, {}).get('real') for k in ('rl_cyclegan', 'cyclegan',
                                                             'real_oracle'))
  joint = _joint_q_real_goal_lines(summary)
  if not (rl and cg):
    return lines + ['Not measured yet: the RL-CycleGAN and CycleGAN rows need their final Qs.',
                    ''] + (joint and joint + [''])

  def seeds(key):
    return _which_seeds(rows[key].get('seeds', [0]))

  def rate(r):
    return 100.0 * r['successes'] / r['episodes']

  apart = rl['ci95'][0] > cg['ci95'][1]
  z = policy_eval.two_proportion_z(rl['successes'], rl['episodes'], cg['successes'],
                                   cg['episodes'])
  lines.append(f"- RL-CycleGAN ({seeds('rl_cyclegan')}) {_pct(rl)} against CycleGAN "
               f"({seeds('cyclegan')}) {_pct(cg)}: {rate(rl) - rate(cg):+.1f} points, "
               f'two-proportion z = {z:.2f}; {_intervals(rl, cg)}.')
  if len(rl.get('outcomes', [])) == len(cg.get('outcomes', [])) == rl['episodes']:
    paired = policy_eval.mcnemar_exact(rl['outcomes'], cg['outcomes'])
    lines.append(f"- Paired over the same {paired['scenes']} scenes (the evaluation seeds fix "
                 f"them): only RL-CycleGAN grasped in {paired['only_a']}, only CycleGAN in "
                 f"{paired['only_b']}; exact McNemar p = {paired['p_value']:.3g}.")
  near = None
  if oracle:
    gap = rate(oracle) - rate(rl)
    near = gap <= GOAL_ORACLE_POINTS
    where = f'{gap:.1f} points below it' if gap >= 0 else f'{-gap:.1f} points above it'
    lines.append(f'- The real-trained oracle {_pct(oracle)}: RL-CycleGAN is {where} (' + (
        f'within {GOAL_ORACLE_POINTS:g}).' if near else f'more than {GOAL_ORACLE_POINTS:g}).'))
    lines.append(_perfect_translator_line(rows, seeds('cyclegan')))
  lines += (joint + _every_final_q_goal_lines(rows) + _run_level_goal_lines(summary) +
            _lever_goal_lines(rows))
  met = apart and near
  both = all(len(rows[k].get('seeds', [0])) >= 2 for k in ('rl_cyclegan', 'cyclegan'))
  lines += [f"- Goal: **{'met' if met else 'not met'}**" + (
      '' if both else ' (so far: the table asks for both rows pooled over two training seeds '
      'or more)')
            + ('' if oracle else '; the oracle row is not measured yet') + '.', '']
  return lines


def _run_level_goal_lines(summary: dict) -> List[str]:
  """The goal's comparison run by run (``between_runs``): the pooled intervals count episodes,
  and a second final Q on one G has moved a figure by 16 points."""
  from rl_cyclegan.evaluation import run_statistics as rs  # pylint: disable=g-import-not-at-top
  for c in (summary.get('between_runs') or {}).get('comparisons', []):
    if (c['a'], c['b']) == ('rl_cyclegan', 'cyclegan'):
      g = c.get('by_g')
      shown = all(t['p_value'] < rs.ALPHA for t in (c, g) if t)
      return [f"- Run by run (each final Q one measurement, Welch's t-test; \"Between runs\" "
              f"below): {c['n_a']} final Qs against {c['n_b']}, {_welch_words(c, 'final Qs')}"
              + ('' if g is None else f"; over Gs p = {g['p_value']:.3g}") +
              f". Run by run, {'a' if shown else 'no'} difference is shown at the "
              f'{100 * rs.ALPHA:g}% level; the pooled intervals above count episodes, not runs.'
              ] + _transfer_goal_lines(c)
  return []


def _transfer_goal_lines(c: dict) -> List[str]:
  """Where the headline comparison's difference arises: each final Q's real - sim through
  its own G (``between_runs``), which its own luck in learning the task does not move."""
  from rl_cyclegan.evaluation import run_statistics as rs  # pylint: disable=g-import-not-at-top
  t = c.get('transfer')
  if not t:
    return []
  shown = t['p_value'] < rs.ALPHA
  return [f"- Why, run by run: each final Q's success in real less its success in sim through "
          f"its own G (a collapsed tower left out; \"Between runs\"): RL-CycleGAN "
          f"{100 * t['mean_a']:+.1f} points over {t['n_a']} final Qs, CycleGAN "
          f"{100 * t['mean_b']:+.1f} over {t['n_b']}: {_welch_words(t, 'final Qs')}. The "
          f"sim-to-real gap each G leaves open is {'' if shown else 'not '}shown to differ at "
          f'the {100 * rs.ALPHA:g}% level.']


def _perfect_translator_line(rows: dict, which: str) -> str:
  """CycleGAN against the oracle read as a perfect G. Sim and real share their physics and
  differ only in appearance, and the oracle is the final-Q recipe on the true real render of
  its logs and collection: what a G that translated every frame exactly would give. A CycleGAN
  at or above it leaves a better G no room to win by transfer, only by the final Q learning
  better on its images than on real ones. With the oracle's second final Q
  (REFERENCE_REPLICATES), both are pooled and paired scene by scene with CycleGAN's two seeds
  (seed 0 with the first, seed 1 with the second), as the headline line pairs its seeds."""
  cg = rows['cyclegan']['real']
  finals = [rows[k]['real'] for k in ('real_oracle', *replicates_of('real_oracle'))
            if (rows.get(k) or {}).get('real')]
  oracle = _pool_pooled(finals) if len(finals) > 1 else finals[0]
  label = ('both its final Qs pooled' if len(finals) > 1 else 'one final Q')
  same = len(finals) == len(rows['cyclegan'].get('seeds', [0]))
  line = _comparison_line(
      'The oracle is the final-Q recipe on the true real render of the same physics, so it is '
      f'what a perfect G would give. CycleGAN ({which})', cg, f'the oracle ({label})', oracle,
      same_scenes=same, names=('CycleGAN', 'the oracle'))
  if same:
    return line
  return line[:-1] + (' (not paired: the two sides have different numbers of final Qs; each '
                      'seed is paired with the oracle under "Paired in `real`").')


def _which_seeds(seeds: Sequence[int]) -> str:
  """'pooled over 3 seeds', or 'seed 1 only'."""
  return f'pooled over {len(seeds)} seeds' if len(seeds) > 1 else f'seed {seeds[0]} only'


def _intervals(rl: dict, cg: dict) -> str:
  """Whether RL-CycleGAN's and CycleGAN's 95% intervals overlap, in words."""
  if rl['ci95'][0] > cg['ci95'][1]:
    return 'the intervals do not overlap, RL-CycleGAN above'
  if rl['ci95'][1] < cg['ci95'][0]:
    return 'the intervals do not overlap, CycleGAN above'
  return 'the intervals overlap'


def _lever_goal_lines(rows: dict) -> List[str]:
  """Each lever with training seeds of its own (TRAINING_SEEDS) against CycleGAN over the same
  training seeds, paired by scene: a documented variant, reported beside the goal, which the
  RL-CycleGAN row (Table 5's weights) decides."""
  lines = []
  for base in LEVER_ROWS:
    lever = rows.get(base) if base in TRAINING_SEEDS else None
    seeds = (lever or {}).get('seeds', [])
    cg = [rows.get(f'cyclegan_seed{k}', {}).get('real') for k in seeds]
    if not seeds or 'real' not in lever or not all(cg):
      continue
    which = _which_seeds(seeds)
    cg = _pool_pooled(cg)
    line = _comparison_line(f'{ROW_LABELS[base]} ({which}; a variant, not the goal\'s row)',
                            lever['real'], f'CycleGAN ({which})', cg, same_scenes=True)
    lines.append(f"{line[:-1]}; {_intervals(lever['real'], cg)}.")
  return lines


def _joint_q_real_goal_lines(summary: dict) -> List[str]:
  """The same comparison on the joint runs' own Q_real in `real` (no final Q; the paper says
  it "could be used"), pooled over the training seeds measured so far: from the frozen Gs'
  figures (``summary['generators']``), which are there hours before the rows' final Qs."""
  generators = summary.get('generators') or {}
  pooled = {}
  for base in ('rl_cyclegan', 'cyclegan'):
    seeds = [k for k in TRAINING_SEEDS[base]
             if 'joint_q_real_real' in generators.get(f'{base}_seed{k}', {})]
    if not seeds:
      return []
    pooled[base] = (seeds, _pool_pooled([generators[f'{base}_seed{k}']['joint_q_real_real']
                                         for k in seeds]))
  (rl_seeds, rl), (cg_seeds, cg) = pooled['rl_cyclegan'], pooled['cyclegan']
  return [_comparison_line(
      f"The joint runs' own Q_real in `real`: RL-CycleGAN ({_which_seeds(rl_seeds)})", rl,
      f'CycleGAN ({_which_seeds(cg_seeds)})', cg, same_scenes=rl_seeds == cg_seeds)]


def _comparison_line(label_rl: str, rl: dict, label_cg: str, cg: dict, same_scenes: bool,
                     names: Tuple[str, str] = ('RL-CycleGAN', 'CycleGAN')) -> str:
  """'- <label_rl> <rl> against <label_cg> <cg>: the difference, the two-proportion z, and the
  exact McNemar test when both were measured on the same scenes with per-scene outcomes (the
  scenes only one side grasped, each side called by its entry of ``names``)."""
  from rl_cyclegan.evaluation import policy_eval  # pylint: disable=g-import-not-at-top
  diff = 100.0 * (rl['success_rate'] - cg['success_rate'])
  z = policy_eval.two_proportion_z(rl['successes'], rl['episodes'], cg['successes'],
                                   cg['episodes'])
  line = (f'- {label_rl} {_pct(rl)} against {label_cg} {_pct(cg)}: {diff:+.1f} points, '
          f'two-proportion z = {z:.2f}')
  if same_scenes and len(rl.get('outcomes', [])) == len(cg.get('outcomes', [])) == (
      rl['episodes']):
    paired = policy_eval.mcnemar_exact(rl['outcomes'], cg['outcomes'])
    line += (f"; paired over the same {paired['scenes']} scenes: only {names[0]} grasped in "
             f"{paired['only_a']}, only {names[1]} in {paired['only_b']}, exact McNemar p = "
             f"{paired['p_value']:.3g}")
  elif same_scenes:
    line += ' (not paired: an evaluation from before per-scene outcomes were recorded)'
  return line + '.'


def _every_final_q_goal_lines(rows: dict) -> List[str]:
  """RL-CycleGAN against CycleGAN over every final Q of their Gs measured on both sides, once
  every second final Q (FINAL_Q_REPLICATES) is: each training seed's row and its second final
  Q, the same final Qs a side in the same scene order; with how many of each side's image
  towers collapsed."""
  suffixes = {base: [f'{b}_seed{k}'[len(base):] for b in (base, f'{base}_fq')
                     for k in TRAINING_SEEDS[b]] for base in ('rl_cyclegan', 'cyclegan')}
  assert suffixes['rl_cyclegan'] == suffixes['cyclegan'], suffixes  # mirrored rows
  both = [x for x in suffixes['cyclegan'] if all((rows.get(base + x) or {}).get('real')
                                                 for base in ('rl_cyclegan', 'cyclegan'))]
  if not all(x in both for x in suffixes['cyclegan'] if x.startswith('_fq')):
    return []
  pooled, towers = {}, {}
  for base in ('rl_cyclegan', 'cyclegan'):
    entries = [rows[base + x]['real'] for x in both]
    pooled[base] = _pool_pooled(entries)
    spreads = [e.get('embedding_spread') for e in entries]
    towers[base] = ('' if None in spreads else f', {sum(x < COLLAPSED_SPREAD for x in spreads)} '
                    f'of {len(spreads)} towers collapsed')
  gs = len({x.rpartition('_seed')[2] for x in both})
  return [_comparison_line(
      f'Over every final Q of the {gs} Gs a side (each row and its second final Qs; '
      f"`table1.FINAL_Q_REPLICATES`): RL-CycleGAN{towers['rl_cyclegan']}",
      pooled['rl_cyclegan'], f"CycleGAN{towers['cyclegan']}", pooled['cyclegan'],
      same_scenes=True)]


def convergence_markdown(summary: dict) -> List[str]:
  """Appendix A's convergence criteria at each joint run's last step (``joint_criteria``)."""
  runs = summary.get('joint_criteria') or {}
  if not runs:
    return []

  def trend(c, key, digits):
    r = c.get(key)
    if not r or r.get('last') is None:
      return '-'
    first = '?' if r.get('first') is None else f"{r['first']:.{digits}f}"
    return f"{first} -> {r['last']:.{digits}f}"

  def success(c, key):
    r = c.get(key)
    if not r:
      return '-'
    at = '' if r.get('step') == c.get('step') else f" at {r['step']}"  # a running run's
    return f"{100 * r['success_rate']:.0f}% ({r['successes']}/{r['episodes']}){at}"

  def rl_scene(c):  # the training loss, and where it pulls G on the paired states
    out = trend(c, 'rl_scene', 4)
    if 'rl_scene_own' in c and 'rl_scene_identity' in c:
      out += f"; paired: {c['rl_scene_own']:.4f} (identity {c['rl_scene_identity']:.4f})"
    return out

  window = max(c.get('window_steps', 0) for c in runs.values())
  lines = [
      "## Appendix A's convergence criteria at each joint run's last step", '',
      'The paper stops joint training when "the simulation-to-real images look realistic, the '
      'cycled images look reasonable with a reasonably low L_cyc, both Q_sim and Q_real perform '
      'well along with a reasonably low L_RL-scene", and gives no thresholds; these are the '
      f'numbers. Losses: unweighted, mean of the first -> the last {window} steps. MAE: G(x) '
      'to the true real render on the held-out paired states, in uint8 levels (the sim image '
      'itself in brackets). Evaluations: the run\'s last one, 50 test-object episodes; Q_real on '
      'G(sim) is the paper\'s, Q_real in `real` this world\'s. `collapse`: the mode-collapse '
      'monitor (uniform Q with a spuriously low L_RL-scene) fired in the last window. A run '
      'still training is marked so, at its newest step. The image grids are under '
      '`<row>/joint` in TensorBoard. `pull on G`: the norm of the gradient of each weighted '
      'loss with respect to G, last window (the size of L_RL-scene against the others, in the '
      'units that move G; runs since session 26). L_RL-scene `paired`: the loss on the '
      "held-out paired states under the run's last critics, with its G and F and (in brackets) "
      'with no translation at all; where the identity scores lower, the loss pulls G back '
      'toward the sim image (runs since session 27; `rl_cyclegan/evaluation/rl_scene_pull.py`).',
      '',
      '| joint run | step | MAE of G (sim x) | object preservation | L_cycle | L_RL-scene '
      '| q_std | Q_sim in sim | Q_real on G(sim) | Q_real in real | collapse | pull on G |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|']
  pull_names = {'gan_generator': 'GAN', 'cycle': 'cycle', 'rl_scene': 'RL-scene',
                'segmentation': 'seg', 'all': 'sum'}
  for c in runs.values():
    mae = ('-' if 'mae_generator' not in c else f"{c['mae_generator']:.1f}" + (
        f" ({c['mae_identity']:.1f})" if 'mae_identity' in c else ''))
    preservation = ('-' if 'object_preservation' not in c else
                    f"{c['object_preservation']:.3f}")
    q_std = '-' if (c.get('q_std') or {}).get('last') is None else f"{c['q_std']['last']:.3f}"
    collapse = {True: '**yes**', False: 'no'}.get(c.get('collapse_suspected'), '-')
    pull = ', '.join(f'{pull_names[k]} {v:.3g}' for k, v in
                     (c.get('g_gradient_norms') or {}).items()) or '-'
    lines.append(f"| {c['label']} | {c.get('step', '-')} | {mae} | {preservation} | "
                 f"{trend(c, 'cycle', 3)} | {rl_scene(c)} | {q_std} | "
                 f"{success(c, 'q_sim_in_sim')} | {success(c, 'q_real_on_g_sim')} | "
                 f"{success(c, 'q_real_in_real')} | {collapse} | {pull} |")
  return lines + ['']


# (heading, generator report metric, digits): the columns of ``generator_error_markdown``.
ERROR_COLUMNS = (('MAE, all pixels', 'mae', 1), ('objects', 'mae_objects', 1),
                 ('robot', 'mae_robot', 1), ('tray and floor', 'mae_background', 1),
                 ('object edges (corr.)', 'edge_corr_objects', 2),
                 ('object preservation', 'object_preservation', 3),
                 ('object contrast over real', 'object_contrast_excess', 1),
                 ('robot contrast over real', 'robot_contrast_excess', 1))


def generator_error_markdown(summary: dict) -> List[str]:
  """Where each generator's errors lie: its generator report's metrics against the true real
  render, per region (scene_metrics), in the final Q's view (whole frame translated, then
  cropped), with the sim image's own (no G) in brackets."""
  rows = summary.get('generators') or summary['rows']  # older summaries: the rows only
  keys = [k for k in all_row_keys() if (rows.get(k) or {}).get('generator_report', {}).get(
      'frame')]
  if not keys:
    return []

  def cell(report, name, digits):
    value, identity = report.get(f'generator/{name}'), report.get(f'identity/{name}')
    if value is None or value != value:  # not in an older report, or an empty region (NaN)
      return '-'
    return f'{value:.{digits}f}' + (f' ({identity:.{digits}f})' if identity is not None else '')

  lines = [
      "## Where G's errors lie", '',
      "Each generator against the true real render of the held-out paired states (test "
      "objects), in the final Q's view (the whole frame translated, then cropped), with the sim "
      "image itself in brackets (what Sim-Only sees). MAE in uint8 levels per region (lower is "
      "better): the object pixels, the robot's, and the rest (tray, table and floor). "
      "Object edges: correlation of the color gradients around the objects (1 is best); "
      "object preservation: the share of the real render's salient object pixels that stand "
      "out in G(x) too; object (robot) contrast over real: how many levels more than the real "
      "render G(x) sets those pixels off from their surround, on average (0 is best; above 0: "
      "drawn more visibly than real) (`rl_cyclegan/evaluation/scene_metrics.py`).", '',
      '| generator | ' + ' | '.join(h for h, _, _ in ERROR_COLUMNS) + ' |',
      '|---|' + '---|' * len(ERROR_COLUMNS)]
  for key in keys:
    report = rows[key]['generator_report']['frame']
    lines.append(f'| {_seed_label(key)} | ' + ' | '.join(cell(report, name, digits)
                                             for _, name, digits in ERROR_COLUMNS) + ' |')
  return lines + ['']


def _seed_label(key: str) -> str:
  """'CycleGAN (seed 1)' for 'cyclegan_seed1', the row's label for a key without a seed."""
  base, _, seed = key.partition('_seed')
  return ROW_LABELS[base] + (f' (seed {seed})' if seed else '')


def _row_label(key: str, rows: dict) -> Optional[str]:
  """A row's label in the sections under the table; None for a seed-0 line that the row's own
  line already shows (marked '(seed <k> only)')."""
  base = key.partition('_seed')[0]
  seeds = rows.get(base, {}).get('seeds')
  if seeds and len(seeds) == 1 and key == f'{base}_seed{seeds[0]}':
    return None
  label = _seed_label(key)
  if key == base and base in TRAINING_SEEDS and key in rows:  # a row not run yet: no suffix
    seeds = seeds or [0]
    label += ' (pooled)' if len(seeds) > 1 else f' (seed {seeds[0]} only)'
  return label


def transfer_markdown(summary: dict, keys: Sequence[str]) -> List[str]:
  """Does each final Q do in `real` what it does on its training images? The same scenes (the
  evaluation seeds fix them, in every appearance) in sim, seen through the row's G, and in real:
  the difference and the exact McNemar test (policy_eval.mcnemar_exact). Rows whose evaluations
  recorded per-scene outcomes only; the random policy (the floor) is left out."""
  from rl_cyclegan.evaluation import policy_eval  # pylint: disable=g-import-not-at-top
  rows = summary['rows']
  body = []
  for key in keys:
    r = rows.get(key) or {}
    label = _row_label(key, rows)
    sim, real = (r.get(w) or {} for w in ('sim', 'real'))
    if (label is None or key == 'random' or not sim.get('outcomes') or
        len(sim['outcomes']) != len(real.get('outcomes', ()))):
      continue
    paired = policy_eval.mcnemar_exact(real['outcomes'], sim['outcomes'])
    points = 100.0 * (real['successes'] / real['episodes'] - sim['successes'] / sim['episodes'])
    body.append(f"| {label} | {_pct(sim)} | {_pct(real)} | {points:+.1f} | "
                f"{paired['only_b']} | {paired['only_a']} | {paired['p_value']:.3g} |")
  return _section(
      'Does the final Q transfer? The same scenes in sim and in real',
      'Each final Q on the same test-object scenes (an evaluation seed fixes the objects and '
      "their poses in every appearance) in sim, seen through the row's G (what it trained on; "
      'Sim-Only and the oracle: plain sim), and in `real`. A G that makes sim look like real to '
      'the Q leaves the difference near 0. Grasped in one world only: scene counts; p: exact '
      'McNemar.', ('row', 'sim (through G)', 'real', 'real - sim (points)', 'only in sim',
                   'only in real', 'McNemar p'), body)


def paired_references(key: str) -> List[str]:
  """The rows a final Q is paired with in `real` (``paired_markdown``): Sim-Only (the same
  recipe without a G), CycleGAN of the same training seed (the task-agnostic G), and for a
  variant the row it varies: a lever's RL-CycleGAN row, a second final Q's first one (the same
  G). Seed-level keys only: pooled rows are compared in the goal section."""
  base, _, seed = key.partition('_seed')
  if base in ('sim_only', 'random', 'real_oracle') or (key == base and base in TRAINING_SEEDS):
    return []
  if base in REFERENCE_REPLICATES:
    return ['sim_only', REFERENCE_REPLICATES[base]]
  refs = ['sim_only'] + ([] if base == 'cyclegan' else [f'cyclegan_seed{seed or 0}'])
  if base in LEVER_ROWS:
    refs.append(oracle_q_reference(key))
  if base in FINAL_Q_REPLICATES:
    refs.append(f'{FINAL_Q_REPLICATES[base]}_seed{seed}')
  if base != 'randomized_sim':  # a G's row: against a perfect G (``_perfect_translator_line``)
    refs.append('real_oracle')
  return list(dict.fromkeys(r for r in refs if r != key))


def paired_markdown(summary: dict, keys: Sequence[str]) -> List[str]:
  """Each final Q against the rows it is read against (``paired_references``) in `real`, on
  the same scenes: the counts of scenes only one of them grasped and the exact McNemar test."""
  from rl_cyclegan.evaluation import policy_eval  # pylint: disable=g-import-not-at-top
  rows = summary['rows']
  body = []
  for key in keys:
    real = (rows.get(key) or {}).get('real') or {}
    for ref in paired_references(key) if real.get('outcomes') else ():
      other = (rows.get(ref) or {}).get('real') or {}
      if len(other.get('outcomes', ())) != len(real['outcomes']):
        continue
      paired = policy_eval.mcnemar_exact(real['outcomes'], other['outcomes'])
      points = 100.0 * (real['success_rate'] - other['success_rate'])
      body.append(f"| {_seed_label(key)} | {_pct(real)} | {_seed_label(ref)} | {_pct(other)} | "
                  f"{points:+.1f} | {paired['only_a']} | {paired['only_b']} | "
                  f"{paired['p_value']:.3g} |")
  return _section(
      'Paired in `real`: each final Q against no G, CycleGAN, the row it varies and a perfect G',
      'The same test-object scenes (the evaluation seeds fix them): each final Q against '
      'Sim-Only (the recipe without a G), against CycleGAN of the same training seed, and, for '
      "a lever, against the RL-CycleGAN row it changes; for a second final Q, against the "
      "first one on the same G (what the final Q's own luck moves); each G's final Q against "
      'the real-trained oracle (the recipe on the true real render of the same physics: what a '
      'perfect G would give). Grasped by one only: scene counts; p: exact McNemar.',
      ('row', 'real', 'against', 'its real', 'difference (points)', 'only the row',
       'only the other', 'McNemar p'), body)


def _section(title: str, text: str, columns: Sequence[str], body: List[str]) -> List[str]:
  """A '## title' section with a table of ``body`` lines, or nothing without a line."""
  if not body:
    return []
  return [f'## {title}', '', text, '', '| ' + ' | '.join(columns) + ' |',
          '|' + '---|' * len(columns), *body, '']


def swap_markdown(summary: dict, keys: Sequence[str]) -> List[str]:
  """The swap test: each headline row's final Q in sim through its own G, through the other
  row's G (SWAP_PARTNERS), and in real, with exact McNemar tests on the same scenes."""
  from rl_cyclegan.evaluation import policy_eval  # pylint: disable=g-import-not-at-top
  rows = summary['rows']
  body = []
  for key in keys:
    r = rows.get(key) or {}
    label, swap = _row_label(key, rows), r.get('swap_sim')
    if label is None or not swap:
      continue
    partner = ROW_LABELS[SWAP_PARTNERS[key.partition('_seed')[0]]]

    def p(other):  # McNemar of the swap against another column, if both have outcomes
      a, b = swap.get('outcomes') or [], (other or {}).get('outcomes') or []
      if not a or len(a) != len(b):
        return '-'
      return f"{policy_eval.mcnemar_exact(a, b)['p_value']:.3g}"

    body.append(f"| {label} | {_pct(r.get('sim'))} | {partner}'s: {_pct(swap)} | "
                f"{_pct(r.get('real'))} | {p(r.get('sim'))} | {p(r.get('real'))} |")
  return _section(
      "The swap test: each final Q through the other row's G",
      "Each headline final Q in sim through its own G, through the other row's G of the same "
      'training seed, and in `real`, on the same scenes. Where a Q scores under another G what '
      "it scores in real, that G's images stand in for real ones; p: exact McNemar of the swap "
      'column against the own-G and the real column.',
      ('final Q', 'sim through its own G', "sim through the other row's G", 'real',
       'p (own G)', 'p (real)'), body)


def composite_markdown(summary: dict, keys: Sequence[str]) -> List[str]:
  """Composite worlds (COMPOSITE_WORLDS): each final Q on G(sim) in `real` with the background,
  or the objects and robot, from its own G(sim render) of the same state, against the control
  (the paired real render) on the same scenes (paired differences, Agresti's interval)."""
  from rl_cyclegan.evaluation import policy_eval  # pylint: disable=g-import-not-at-top
  from rl_cyclegan.evaluation import run_statistics as rs  # pylint: disable=g-import-not-at-top
  rows = summary['rows']
  body = []
  effects = {True: ([], []), False: ([], [])}  # L_RL-scene on: (background, foreground) points
  for key in keys:
    r = rows.get(key) or {}
    label = _row_label(key, rows)
    worlds = [r.get(what) for what in COMPOSITE_WORLDS]
    if label is None or not all(worlds):
      continue
    control, background, foreground = worlds

    def diff(world):
      a, b = world.get('outcomes') or [], control.get('outcomes') or []
      if not a or len(a) != len(b):
        return None
      return policy_eval.paired_difference_interval(a, b)

    def words(d):
      return '-' if d is None else f'{100 * d[0]:+.1f} ({100 * d[1]:+.1f} to {100 * d[2]:+.1f})'

    back, fore = diff(background), diff(foreground)
    body.append(f"| {label} | {_pct(r.get('real'))} | {_pct(control)} | {_pct(background)} | "
                f"{_pct(foreground)} | {_pct(r.get('sim'))} | {words(back)} | {words(fore)} |")
    spread = (r.get('real') or {}).get('embedding_spread')
    if back and fore and not (isinstance(spread, (int, float)) and spread < COLLAPSED_SPREAD):
      base = key.partition('_seed')[0]
      side = effects[FINAL_Q_REPLICATES.get(base, base) in RL_SCENE_RECIPES]
      side[0].append(100 * back[0])
      side[1].append(100 * fore[0])
  pooled = []
  if min(len(effects[True][1]), len(effects[False][1])) >= 2:
    for i, region in ((1, 'the objects and robot'), (0, 'the background')):
      t = rs.welch(effects[True][i], effects[False][i])
      pooled.append(
          f"- {region[0].upper()}{region[1:]} from G, against the control: "
          f"{t['mean_a']:+.1f} points on average over the {t['n_a']} live final Qs trained "
          f"with L_RL-scene on, {t['mean_b']:+.1f} over the other {t['n_b']}: "
          f"{t['difference']:+.1f} ({t['ci'][0]:+.1f} to {t['ci'][1]:+.1f}; Welch over final "
          f"Qs, p = {t['p_value']:.3g}; final Qs on one G are not independent).")
  section = _section(
      "Composite worlds: which of G's regions each final Q needs",
      'Each final Q trained on G(sim), in `real` with what it sees rebuilt per frame '
      '(`sim2real.CompositeEnv`, `tools/evaluate.py --translated_regions`): the real render of '
      "the state with the background (tray, table, floor), or the objects and the robot, taken "
      "from its own G's translation of the sim render of the same state, by the simulator's "
      f'segmentation (the objects\' and robot\'s masks grown by {COMPOSITE_DILATION} pixels, '
      "so that G's halo around an object goes with it). Control: the paired real render "
      "itself (only the sensor-noise draw differs from the `real` column). If a final Q loses "
      "its sim figure in real because of how G renders a region, that region from G gives it "
      'back. Differences: paired on the same scenes, with 95% intervals.',
      ('final Q', 'real', 'control: paired real render', 'background from G',
       'objects and robot from G', 'sim through G', 'background from G - control (points)',
       'objects and robot from G - control (points)'), body)
  return section + (pooled + [''] if section and pooled else [])


def grasp_distance_markdown(summary: dict, keys: Sequence[str]) -> List[str]:
  """Where each row's grasps land: successes / episodes per distance from the gripper to the
  nearest object (policy_eval.grasp_distance_table, pooled over the evaluation seeds)."""
  rows = summary['rows']
  body, bins = [], None
  for key in keys:
    r = rows.get(key, {})
    label = _row_label(key, rows)
    if label is None:
      continue
    for world in ('real', 'sim'):
      table = (r.get(world) or {}).get('grasp_distance')
      if not table:
        continue
      bins = bins or table['bins_cm']
      if table['bins_cm'] != bins:
        continue
      totals = [a + b for a, b in zip(table['successes'], table['failures'])]
      near = sum(totals[:2]) / max(1, sum(totals))
      cells = ' | '.join(f'{k}/{n}' for k, n in zip(table['successes'], totals))
      body.append(f'| {label} | {world} | {cells} | {100 * near:.0f}% |')
  if not body:
    return []
  heads = ' | '.join(f'{lo:g}-{hi:g} cm' if hi is not None else f'> {lo:g} cm' for lo, hi in bins)
  near_head = f'within {bins[1][1]:g} cm' if len(bins) > 1 and bins[1][1] else 'near'
  return ['## Where the grasps land', '',
          'Distance from the gripper to the nearest object at the grasp, over the same '
          'evaluation episodes: successes / episodes per bin, and the share of grasps '
          f'{near_head} of an object (far failures are navigation errors). `sim`: in the '
          "simulator, through the row's G for a generator row.", '',
          f'| row | world | {heads} | {near_head} |', '|---|---|' + '---|' * len(bins) + '---|',
          *body, '']


def oracle_q_markdown(summary: dict) -> List[str]:
  """Does G keep what the task needs? The real-trained oracle Q on G(x) against real(x)."""
  rows = summary.get('generators') or summary['rows']  # older summaries: the rows only
  keys = [k for k in all_row_keys() if (rows.get(k) or {}).get('oracle_q')]
  if not keys:
    return []
  lines = [
      '## Does G keep what the task needs? The real-trained oracle Q on G(x) and on real(x)', '',
      'On held-out paired states (test objects; since session 31 a set of their own, '
      '`data/paired_oracle`, larger than the scene figures\' 64), the oracle (the final Q of '
      'the `real_oracle` row) picks its greedy CEM action and value on G(x) and on the true '
      'real render of the same state. Lower is better: 0 means the oracle cannot tell G(x) '
      'from real(x). `no G` is the sim image itself (what Sim-Only sees); `chance` compares '
      'each state\'s real render with another state\'s (at the same gripper height). '
      '`generator_report.oracle_q_agreement`.', '',
      '| generator | mean abs. value difference | abs. Q difference at the oracle\'s real action '
      '| distance of the greedy (dx, dy) moves | oracle value on real(x) |', '|---|---|---|---|---|']

  def number(x):
    return f'{x:.3f}' if x == 0 or abs(x) >= 1e-3 else f'{x:.1e}'

  def line(label, r):
    se = r.get('action_xy_distance_se')  # in reports written since session 30
    return (f"| {label} | {number(r['value_abs_diff'])} | "
            f"{number(r['q_abs_diff_at_real_action'])} | {number(r['action_xy_distance'])}"
            f"{'' if se is None else f' ± {se:.3f}'} | {number(r['mean_value_real'])} |")

  compared = [rows[keys[0]]['oracle_q']['identity']]
  lines.append(line('no G (sim x)', compared[0]))
  chance = rows[keys[0]]['oracle_q'].get('other_state')  # in reports written since session 17
  if chance:
    lines.append(line("chance: another state's real render", chance))
  states = [rows[k]['oracle_q']['generator']['num_states'] for k in keys]
  mixed = len(set(states)) > 1  # while reports of an older, smaller set are made again
  for key, n in zip(keys, states):
    base = key.partition('_seed')[0]
    compared.append(rows[key]['oracle_q']['generator'])
    lines.append(line(ROW_LABELS[base] + (f' (seed {key[-1]})' if '_seed' in key else '') +
                      (f' [{n} states]' if mixed else ''), compared[-1]))
  lines += ['', (f'States: {states[0]}' if not mixed else
                 f'States: as marked; `no G` and `chance` on the first row\'s {states[0]}') +
            '; (dx, dy) in units of the largest step; ± its standard error over the states.', '']
  lines += _oracle_q_paired_lines(rows, keys)
  # The oracle ignores the image when another state's real render moves its action no more
  # than every image compared above does (the sim image may well move it more than chance).
  if chance and chance['action_xy_distance'] <= min(r['action_xy_distance'] for r in compared):
    lines += [
        f"**This metric cannot rank the generators here: the oracle does not respond to the "
        f"image.** Another state's real render moves its greedy action by "
        f"{number(chance['action_xy_distance'])}, no more than any image compared above does, "
        f"so its action is a function of the gripper height, not of what it sees (its value "
        f"moves by {number(chance['value_abs_diff'])}). A real-trained Q that learned to grasp "
        f"from the image would move its action between states (two uniformly random moves are "
        f"1.04 apart).", '']
  return lines


def oracle_q_reference(key: str) -> Optional[str]:
  """The row a generator's oracle-Q distance is read against, state by state: RL-CycleGAN
  against CycleGAN of the same training seed, a lever against the RL-CycleGAN row it changes
  (of its training seed)."""
  base, _, seed = key.partition('_seed')
  if base == 'rl_cyclegan':
    return f'cyclegan_seed{seed}'
  return f'rl_cyclegan_seed{seed or 0}' if base in LEVER_ROWS else None


def oracle_q_paired_difference(a: dict, b: dict) -> Optional[dict]:
  """The oracle's greedy-move distance under generator a minus under generator b, state by
  state over the same held-out paired states: {'mean', 'ci95' (normal approximation), 'n'};
  None unless both reports hold per-state distances of the same states and the same oracle.
  Those are recognized by what they measured, not by paths (which differ between machines):
  the oracle's per-state distances on the sim images (``identity``) agree."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  da, db = a['generator'].get('action_xy_distances'), b['generator'].get('action_xy_distances')
  ia, ib = ((r.get('identity') or {}).get('action_xy_distances') for r in (a, b))
  if (not da or not db or not ia or not ib or len(da) != len(db) or len(ia) != len(ib) or
      not np.allclose(ia, ib, atol=1e-3)):
    return None
  diff = np.asarray(da) - np.asarray(db)
  half = 1.96 * float(np.std(diff, ddof=1)) / np.sqrt(len(diff)) if len(diff) > 1 else np.nan
  mean = float(np.mean(diff))
  return {'mean': mean, 'ci95': [mean - half, mean + half], 'n': int(len(diff))}


def _oracle_q_paired_lines(rows: dict, keys: Sequence[str]) -> List[str]:
  body = []
  for key in keys:
    ref = oracle_q_reference(key)
    other = (rows.get(ref) or {}).get('oracle_q') if ref else None
    if not other:
      continue
    paired = oracle_q_paired_difference(rows[key]['oracle_q'], other)
    label = f'- {_seed_label(key)} against {_seed_label(ref)}'
    if paired:
      lo, hi = paired['ci95']
      body.append(f"{label}: {paired['mean']:+.3f} (95% CI {lo:+.3f} to {hi:+.3f}; "
                  f"{paired['n']} states)")
    elif all(r['generator'].get('action_xy_distances') for r in (rows[key]['oracle_q'], other)):
      # Both have per-state distances, of other states or another machine: the oracle's CEM
      # flips near-tied greedy moves between CPUs (20% of the 64 states, session 31).
      body.append(f'{label}: not comparable state by state (the oracle\'s moves on the sim '
                  'images differ: another paired set or another machine); delete both '
                  '`oracle_q_report.json` and run both rows again on one machine')
  if not body:
    return []
  return ['The distance under one G minus that under another, state by state (negative: the '
          'first keeps more of what the oracle acts on):', '', *body, '']


def _wrap_words(text: str, fits: Callable[[str], bool]) -> List[str]:
  """``text`` in lines of whole words, each line as long as ``fits`` allows (a word that does
  not fit alone gets a line of its own)."""
  lines = []
  for word in text.split():
    if lines and fits(f'{lines[-1]} {word}'):
      lines[-1] = f'{lines[-1]} {word}'
    else:
      lines.append(word)
  return lines or ['']


def render_figure(table: Table1, path: str) -> Optional[str]:
  """Figure 4 style: per held-out paired state, sim | G(x) of each generator | true real."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  from rl_cyclegan import plotting  # pylint: disable=g-import-not-at-top
  columns, base_images = [], None
  for key in all_row_keys():
    npz = table.published(key, 'figure_states.npz')
    if key.partition('_seed')[0] in GENERATOR_ROWS and os.path.isfile(npz):
      data = np.load(npz)
      if base_images is None:
        base_images = (data['sim'], data['real'])
      columns.append((ROW_LABELS[key.partition('_seed')[0]] +
                      (f' s{key[-1]}' if '_seed' in key else ''), data['generated']))
  if base_images is None:
    return None
  columns = [('sim x', base_images[0])] + columns + [('true real(x)', base_images[1])]
  n, h, w = base_images[0].shape[:3]
  scale, pad, line_height = 3, 4, 14
  font = plotting._font(11)  # pylint: disable=protected-access
  measure = ImageDraw.Draw(Image.new('RGB', (1, 1)))
  # Each label wrapped to its column (the levers' labels are longer than a tile is wide).
  labels = [_wrap_words(label, lambda t: measure.textlength(t, font=font) <= w * scale)
            for label, _ in columns]
  head = 4 + line_height * max(len(lines) for lines in labels)
  width = len(columns) * (w * scale + pad) + pad
  height = head + n * (h * scale + pad) + pad
  canvas = Image.new('RGB', (width, height), (255, 255, 255))
  draw = ImageDraw.Draw(canvas)
  for c, ((_, images), lines) in enumerate(zip(columns, labels)):
    x = pad + c * (w * scale + pad)
    draw.multiline_text((x, 2), '\n'.join(lines), fill=(0, 0, 0), font=font,
                        spacing=line_height - 11)
    for i in range(n):
      tile = Image.fromarray(np.asarray(images[i], np.uint8)).resize((w * scale, h * scale),
                                                                    Image.NEAREST)
      canvas.paste(tile, (x, head + i * (h * scale + pad)))
  fileio.write_atomic(path, lambda f: canvas.save(f, format='PNG'), mode='wb')
  return path
