#!/bin/bash
# Table 1 in the pseudo-real world at real_gap 0.75 (docs/results.md, "Table 1", Commands):
# the runner chain of table1_real_gap0.75_chain.sh, in the background, from a worktree of main
# (../runs/code_table1), so that stages keep the code they started with while main moves on.
# Every stage resumes where it stopped; on a new machine the logs are collected again and the
# training stages adopt their committed interim checkpoints.
#   bash docs/launch/table1_real_gap0.75.sh s25   # log ../runs/table1_gap075/runner_s25.log
#   stop: kill -TERM -$(cat ../runs/table1_gap075/runner_s25.pid)   (training saves a checkpoint)
set -euo pipefail
tag=${1:?usage: $0 <tag for the log name, e.g. s25>}
move=1
source "$(dirname "$0")/worktree.sh"
export PYTHONPATH=$code PY=$repo/.venv/bin/python CODE=$code RUNS=$runs
setsid nohup bash "$code/docs/launch/table1_real_gap0.75_chain.sh" \
  > "$runs/table1_gap075/runner_$tag.log" 2>&1 &
echo $! > "$runs/table1_gap075/runner_$tag.pid"
echo "started: pid $(cat "$runs/table1_gap075/runner_$tag.pid"), log $runs/table1_gap075/runner_$tag.log"
