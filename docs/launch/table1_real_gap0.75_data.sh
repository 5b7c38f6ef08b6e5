#!/bin/bash
# The logs of the 0.75 table's headline generator rows (real_log5k, paired_full, sim_mix18),
# collected at the lowest CPU priority beside the main chain (docs/launch/table1_real_gap0.75.sh),
# so that they take only the cycles its training leaves idle (its env steps run on one core).
# Under autogroup scheduling `nice` does nothing across sessions: the session's autogroup is
# set to 19 instead. The main chain waits for a log this runner is still collecting.
#   bash docs/launch/table1_real_gap0.75_data.sh s24   # log ../runs/table1_gap075/data_s24.log
set -euo pipefail
tag=${1:?usage: $0 <tag for the log name, e.g. s25>}
source "$(dirname "$0")/worktree.sh"
export PYTHONPATH=$code
setsid nohup "$repo/.venv/bin/python" "$code/tools/table1.py" --real_gap=0.75 \
  --work_dir="$runs/table1_gap075" --results_dir=results/table1_real_gap0.75 --docs_dir=docs \
  --rows=rl_cyclegan_seed0,cyclegan_seed0 --data_only > "$runs/table1_gap075/data_$tag.log" 2>&1 &
pid=$!
echo "$pid" > "$runs/table1_gap075/data_$tag.pid"
# setsid makes the new session (and its autogroup) after this shell forks it: wait for that,
# or the write would lower the priority of the calling shell's own session.
for _ in $(seq 50); do
  [ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ] && break
  sleep 0.1
done
if [ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ] && [ -w /proc/$pid/autogroup ]; then
  echo 19 > /proc/$pid/autogroup
else
  renice -n 19 -p "$pid" >/dev/null
fi
echo "started: pid $pid ($(cat /proc/$pid/autogroup 2>/dev/null || echo 'niced')), log $runs/table1_gap075/data_$tag.log"
