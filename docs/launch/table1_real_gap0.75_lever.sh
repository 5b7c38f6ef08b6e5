#!/bin/bash
# One row's joint part at real_gap 0.75 (`tools/table1.py --rows=<row> --joint_only`: the joint
# run, its report, Q_real in real, the oracle-Q report) in the background at the lowest CPU
# priority, beside the chain of table1_real_gap0.75.sh: it takes only the cycles the chain
# leaves idle. Its session's autogroup gets nice 19 too: with sched_autogroup on, a process's
# own nice counts only inside its session, and a plain `nice -n 19` under setsid took a full
# core from the chain's two final Qs (session 27). Beside two final Qs it got ~8% of a core, so
# it is worth running only while the chain leaves a core idle. From its own worktree of main
# (../runs/code_lever, moved to main at launch). Resumes where it stopped.
#   bash docs/launch/table1_real_gap0.75_lever.sh rl_cyclegan_real_critic s27
#   stop: kill -TERM -$(cat ../runs/table1_gap075/lever_<row>_<tag>.pid)  (saves a checkpoint)
set -euo pipefail
row=${1:?usage: $0 <row> <tag for the log name, e.g. s27>}
tag=${2:?usage: $0 <row> <tag for the log name, e.g. s27>}
move=1 worktree=code_lever
source "$(dirname "$0")/worktree.sh"
log=$runs/table1_gap075/lever_${row}_$tag.log
PYTHONPATH=$code TF_NUM_INTRAOP_THREADS=1 setsid nohup bash -c \
  'echo 19 > /proc/self/autogroup 2>/dev/null; exec nice -n 19 "$@"' lever \
  "$repo/.venv/bin/python" "$code/tools/table1.py" --real_gap=0.75 --work_dir="$runs/table1_gap075" \
  --results_dir=results/table1_real_gap0.75 --docs_dir=docs --rows="$row" --joint_only \
  > "$log" 2>&1 &
echo $! > "$runs/table1_gap075/lever_${row}_$tag.pid"
echo "started: pid $(cat "$runs/table1_gap075/lever_${row}_$tag.pid"), log $log"
