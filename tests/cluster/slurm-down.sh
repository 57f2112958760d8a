#!/usr/bin/env bash
# Stops what slurm-up.sh started, by the PIDs it recorded: first every job (slurmstepd outlives
# slurmd by design), then slurmd, slurmctld, slurmdbd, MariaDB and munged.
set -uo pipefail
DIR=${SLURM_TEST_DIR:-/tmp/lstm-sweep-slurm}
[ -d "$DIR/pids" ] || exit 0
if command -v scancel >/dev/null && [ -f "$DIR/pids/slurmctld.pid" ]; then
  scancel --full --quiet --user="$(id -un)" 2>/dev/null
  for _ in $(seq 150); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
  for _ in $(seq 50); do pgrep -x slurmstepd >/dev/null || break; sleep 0.2; done
fi
for daemon in slurmd slurmctld slurmdbd mariadbd munged; do
  file="$DIR/pids/$daemon.pid"
  [ -s "$file" ] || continue
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$file"
done
echo "SLURM down"
