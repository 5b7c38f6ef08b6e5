#!/bin/bash
# The 0.75 table's runner chain (started in the background by table1_real_gap0.75.sh; runs in
# the repo with PYTHONPATH at the code worktree). Every call resumes what is done.
# 1. the Sim-Only and random rows' evaluations (done), then the real-trained oracle;
# 2. both headline joint runs side by side, one TF intra-op thread each (the QT-Opt train step
#    took 485 ms with 1 thread and 295 ms with 2, so two 1-thread runs do 1.22x the train steps
#    of one 2-thread run, more where a run's env steps leave a core idle: docs/results.md,
#    "Session 24"), with their reports and Q_real in real, looked at before any final Q is
#    spent on them (issue 18);
# 3. their final Qs and evaluations, side by side in the same way;
# 4. the joint runs of the levers (docs/results.md, "Session 27"), looked at before any
#    final Q is spent on them: lambda_RL-scene 1 beside Q_real's start from the Sim-Only Q
#    fine-tuned on the real log, then the seed-0 RL-CycleGAN run trained on to 20,000 steps;
# 5. the second seeds of both (issue 18: spread between runs has been 22 points), the same way;
# 6. GAN and GraspGAN-style, the same way; then Randomized-Sim (its own randomized log).
set -u
T="$PY $CODE/tools/table1.py --real_gap=0.75 --work_dir=$RUNS/table1_gap075 --results_dir=results/table1_real_gap0.75 --docs_dir=docs"
pair() {  # pair <row> <row> [flags]: two rows side by side; fails if either fails
  local a=$1 b=$2
  shift 2
  TF_NUM_INTRAOP_THREADS=1 $T --rows="$a" "$@" &
  local first=$!
  TF_NUM_INTRAOP_THREADS=1 $T --rows="$b" "$@"
  local second=$?
  wait "$first" && [ "$second" = 0 ]
}
both() {  # both <row> <row>: the joint runs and their reports first, then the final Qs
  pair "$1" "$2" --joint_only && pair "$1" "$2"
}
$T --rows=sim_only,random && $T --rows=real_oracle &&
  both rl_cyclegan_seed0 cyclegan_seed0 &&
  pair rl_cyclegan_rlscene1 rl_cyclegan_real_critic --joint_only &&
  $T --rows=rl_cyclegan_long --joint_only &&
  both rl_cyclegan_seed1 cyclegan_seed1 &&
  both gan graspgan &&
  $T --rows=randomized_sim
