#!/usr/bin/env bash
# Smoke test of the real workbench in a real terminal: start `blockdrop` (no arguments) in
# tmux, wait for the evaluation and the adaptivity (the sweep that follows it), visit two
# views, quit, and check the exit code.
set -euo pipefail
bin="$1"
session="blockdrop-smoke-$$"
exit_file=$(mktemp)
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -f "$exit_file"' EXIT

tmux new-session -d -s "$session" -x 130 -y 40 "BLOCKDROP_TIMING=1 '$bin' 2>/tmp/$session.err; echo \$? > '$exit_file'; sleep 5"
wait_for() { # text, seconds
  for _ in $(seq 1 $(( $2 * 4 ))); do
    tmux capture-pane -p -t "$session" | grep -qF "$1" && return 0
    sleep 0.25
  done
  echo "timed out waiting for: $1"; tmux capture-pane -p -t "$session"; return 1
}
wait_for "Unique Policies:" 120
wait_for "adaptivity gain" 180
tmux capture-pane -p -t "$session" | sed -n '/Adaptivity at/,/gain per class/p'
tmux send-keys -t "$session" 2
wait_for "Blocks, sorted by block" 10
tmux send-keys -t "$session" 3
wait_for "images by blocks used" 10
tmux capture-pane -p -t "$session" | head -12
tmux send-keys -t "$session" q
for _ in $(seq 1 40); do [ -s "$exit_file" ] && break; sleep 0.25; done
code=$(cat "$exit_file")
cat "/tmp/$session.err" 2>/dev/null; rm -f "/tmp/$session.err"
[ "$code" = "0" ] || { echo "blockdrop exited with $code"; exit 1; }
echo "TUI smoke test: two views shown, clean exit"
