# Sourced by the launch scripts here: the venv, and the code worktree ../runs/code_table1 (or
# ../runs/$worktree; made on a new machine; moved to main only when "$move" is set, so that a
# running chain's stages keep their code). Sets repo, runs and code, and leaves the shell in
# the repo.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
runs=$(dirname "$repo")/runs
code=$runs/${worktree:-code_table1}
make -C "$repo" setup >/dev/null
if [ ! -d "$code" ]; then
  git -C "$repo" worktree prune
  git -C "$repo" worktree add -q --detach "$code" main
fi
if [ -n "${move:-}" ]; then
  git -C "$code" checkout -q --detach main
fi
mkdir -p "$runs/table1_gap075"
cd "$repo"
