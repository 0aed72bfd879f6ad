#!/usr/bin/env bash
# Starts a real single-node Slurm (Debian's slurm-wlm and munge, no systemd), runs
# submit.sh's job array over the shared fixtures and checks that the merged result equals one
# `icelens evaluate` over all of them: the table, the JSON and the CSV, byte for byte, and the
# exit status. Prints one "slurm test: PASS" or "slurm test: FAIL (...)" line at the end and
# exits non-zero on failure. The daemons it starts are stopped by their pids, whatever happens.
#
#   scripts/slurm/test.sh [ICELENS]   (default: the debug binary `cargo test --workspace` builds)
#
# Needs root (or passwordless sudo) to start slurmd, and `scripts/setup.sh test` (which
# installs slurm-wlm and munge).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
shared="${ICELENS_SHARED:-$repo/../shared}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/icelens-target}"
export PATH="$HOME/.cargo/bin:$PATH:/usr/sbin:/sbin"

fail() { echo "slurm test: FAIL ($*)"; exit 1; }
for tool in munged slurmctld slurmd sbatch squeue sinfo scancel python3; do
  command -v "$tool" >/dev/null || fail "$tool is missing; run scripts/setup.sh test"
done
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo -n true 2>/dev/null || fail "slurmd must be started as root; run as root or with passwordless sudo"
  sudo="sudo -n"
fi
[ -d "$shared/fixtures" ] || fail "no fixtures at $shared/fixtures (set ICELENS_SHARED)"
model="$shared/reference/pizza_marinara.pt"
mapfile -t scenes < <(ls -d "$shared"/fixtures/*_prep.nc)
[ "${#scenes[@]}" -ge 2 ] || fail "fewer than two fixture scenes in $shared/fixtures"

if [ $# -gt 0 ]; then
  icelens="$1"
else
  # The binary `cargo test --workspace` builds (and scripts/test.sh has just built): a plain
  # `cargo build --bin icelens` resolves another feature set of burn's dependencies and
  # rebuilds them all (about 20 minutes on 2 cores).
  (cd "$repo" && cargo test --quiet --workspace --locked --no-run) || fail "cargo test --no-run failed"
  icelens="$CARGO_TARGET_DIR/debug/icelens"
fi
[ -x "$icelens" ] || fail "no icelens binary at $icelens"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/icelens-slurm.XXXXXX")"
chmod 755 "$tmp"
pids=()
stop() {
  # Jobs first (their slurmstepd processes belong to slurmd), then the daemons, by pid.
  if [ -f "$tmp/slurm.conf" ] && [ -f "$tmp/slurmctld.pid" ]; then
    SLURM_CONF="$tmp/slurm.conf" scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
  fi
  for f in slurmd.pid slurmctld.pid munge/munged.pid; do
    [ -s "$tmp/$f" ] && pids+=("$(cat "$tmp/$f")")
  done
  for pid in "${pids[@]}"; do
    $sudo kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do $sudo kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    $sudo kill -9 "$pid" 2>/dev/null || true
  done
  if [ -n "${KEEP_SLURM_TMP:-}" ]; then
    echo "kept $tmp" >&2
  else
    $sudo rm -rf "$tmp"
  fi
}
trap stop EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
host="$(hostname -s)"

# munge with its own socket, so that a munged already running on the machine is left alone.
mkdir -p "$tmp/munge" "$tmp/spool" "$tmp/state"
$sudo chown munge:munge "$tmp/munge" 2>/dev/null || chown munge:munge "$tmp/munge"
$sudo runuser -u munge -- /usr/sbin/munged --socket="$tmp/munge/munged.socket" \
  --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munge/munged.log" \
  --seed-file="$tmp/munge/munged.seed" || fail "munged did not start (see $tmp/munge/munged.log)"
for _ in $(seq 50); do [ -S "$tmp/munge/munged.socket" ] && break; sleep 0.1; done
munge --socket="$tmp/munge/munged.socket" -n | unmunge --socket="$tmp/munge/munged.socket" >/dev/null \
  || fail "munge does not answer on $tmp/munge/munged.socket"

# One node, named as the host, with the topology slurmd finds.
node="$(slurmd -C | head -1 | sed -e "s/^NodeName=[^ ]*/NodeName=$host/" -e 's/RealMemory=[0-9]*/RealMemory=1000/')"
cat >"$tmp/slurm.conf" <<CONF
ClusterName=icelens-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$tmp/munge/munged.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=icelens Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$tmp/slurm.conf"
$sudo env SLURM_CONF="$SLURM_CONF" slurmctld -f "$SLURM_CONF" || fail "slurmctld did not start (see $tmp/slurmctld.log)"
$sudo env SLURM_CONF="$SLURM_CONF" slurmd -f "$SLURM_CONF" || fail "slurmd did not start (see $tmp/slurmd.log)"
for _ in $(seq 120); do
  state="$(sinfo -h -o %T 2>/dev/null || true)"
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || fail "the node is \"$state\", not idle, 60 s after start (see $tmp/slurmd.log)"

# The array: one shard per scene plus one empty shard, so that every kind of part is merged.
shards=$(( ${#scenes[@]} + 1 ))
run="$tmp/run"
ids="$("$repo/scripts/slurm/submit.sh" --shards "$shards" --out "$run" --icelens "$icelens" \
  --by all -- --model "$model" "${scenes[@]}")" || fail "submit.sh failed"
echo "submitted array job and merge job: $ids" >&2
for _ in $(seq 1200); do
  [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
  sleep 0.5
done
if [ -n "$(squeue -h -o %i)" ] || [ ! -f "$run/merge.status" ]; then
  fail "the jobs did not finish within 10 minutes or the merge job did not run ($(squeue -h -o '%i %T %r' | tr '\n' ';'); logs in $run/logs)"
fi

# The same evaluation in one run, scenes in the order shards are cut from.
single="$tmp/single"
mkdir -p "$single"
set +e
"$icelens" evaluate --model "$model" "${scenes[@]}" --shard 1/1 --by all >"$single/merged.txt" 2>/dev/null
"$icelens" evaluate --model "$model" "${scenes[@]}" --shard 1/1 --by all --json \
  --csv "$single/breakdown.csv" >"$single/merged.json" 2>/dev/null
single_status=$?
set -e
for f in merged.txt merged.json breakdown.csv; do
  [ -s "$single/$f" ] || fail "the single run wrote no $f"
  cmp -s "$single/$f" "$run/$f" || fail "$f of the array differs from the single run's (diff $single/$f $run/$f)"
done
merge_status="$(cat "$run/merge.status")"
[ "$(( merge_status != 0 ))" = "$(( single_status != 0 ))" ] \
  || fail "merge exited $merge_status, the single run $single_status"
scored="$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["scenes"]))' "$run/merged.json")"
[ "$scored" -ge 1 ] || fail "no scene was scored"
echo "slurm test: PASS ($shards shards over ${#scenes[@]} scenes, $scored scored; merged table, JSON and CSV equal the single run's)"
