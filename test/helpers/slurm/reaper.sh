#!/usr/bin/env bash
# Stops one private Slurm cluster (started by cluster.ts) and removes its directory, when
# asked (SIGUSR1 or SIGTERM) or when the process that started it is gone — whichever comes
# first — so nothing outlives a test that crashed or was killed.
#
#   reaper.sh OWNER_PID DIR [keep]
#
# DIR/pids lists the daemons as "name pid" lines (each daemon leads its own process group);
# DIR/slurm.conf is the cluster's configuration. With "keep", DIR stays for its logs.
set -u
owner=$1
dir=$2
keep=${3:-}
conf=$dir/slurm.conf
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
# SLURM_CONF marks this cluster's processes: it is given to the client commands below, not
# exported, so that this script and its sleeps never look like one of them.
unset SLURM_CONF

asked=
trap 'asked=1' USR1 TERM INT HUP
# `wait` on a background sleep returns as soon as a trapped signal arrives.
while [ -z "$asked" ] && kill -0 "$owner" 2>/dev/null; do
  sleep 0.5 &
  wait $! 2>/dev/null
done
trap '' USR1 TERM INT HUP
# The sleep a signal cut short would outlive this script.
kill $! 2>/dev/null

log() { echo "[$(date +%T.%N | cut -c1-12)] $*"; }
if [ -n "$asked" ]; then log "stopping: asked"; else log "stopping: process $owner is gone"; fi

# The processes of this cluster's jobs: slurmstepd inherits SLURM_CONF from slurmd, and the
# job's own processes get it (with SLURM_JOB_ID) from slurmstepd. Requiring one of those
# two keeps any other process that merely has this SLURM_CONF (a test's own) out of reach.
job_processes() {
  local e p
  for e in $(grep -lzxF "SLURM_CONF=$conf" /proc/[0-9]*/environ 2>/dev/null); do
    p=${e#/proc/}
    p=${p%/environ}
    [ "$p" = $$ ] && continue
    if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = slurmstepd ] || grep -qz '^SLURM_JOB_ID=' "$e" 2>/dev/null; then
      echo "$p"
    fi
  done
}

# A daemon's pid only counts while it still is this cluster's process (pids get reused).
ours() { grep -qzxF "SLURM_CONF=$conf" "/proc/$1/environ" 2>/dev/null; }

daemon_pid() { [ -f "$dir/pids" ] && awk -v n="$1" '$1 == n { print $2 }' "$dir/pids" | tail -n 1; }

# Alive and not a zombie: orphans are reparented to PID 1, and in a container PID 1 may be
# slow to reap them (or never does).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

wait_gone() { # wait_gone SECONDS PID...
  local deadline=$((SECONDS + $1)) p alive
  shift
  while :; do
    alive=
    for p in "$@"; do alive "$p" && alive=1; done
    [ -z "$alive" ] && return 0
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# 1. Let Slurm end its jobs the way it would (SIGTERM, KillWait, SIGKILL, epilogue).
ctld=$(daemon_pid slurmctld)
if [ -n "$ctld" ] && ours "$ctld"; then
  jobs=$(SLURM_CONF=$conf timeout 10 squeue -h -o %A 2>/dev/null | sort -u)
  if [ -n "$jobs" ]; then
    log "cancelling jobs: $(echo $jobs)"
    # shellcheck disable=SC2086
    SLURM_CONF=$conf timeout 10 scancel $jobs 2>&1
  fi
  # KillWait comes from the cluster's own configuration; allow for it and the epilogue.
  kill_wait=$(awk -F= '$1 == "KillWait" { print $2 }' "$conf")
  deadline=$((SECONDS + ${kill_wait:-30} + 10))
  while [ -n "$(job_processes)" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
fi

# 2. The daemons, each with its process group (slurmctld's holds slurmscriptd), users
#    before what they use.
status=0
for name in slurmd slurmctld slurmdbd mariadbd munged; do
  pid=$(daemon_pid "$name")
  [ -n "$pid" ] && ours "$pid" || continue
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  if ! wait_gone 10 "$pid"; then
    log "$name ($pid) ignored SIGTERM; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    wait_gone 5 "$pid" || { log "$name ($pid) survived SIGKILL"; status=1; }
  fi
done

# 3. Whatever of the jobs Slurm could not end (no controller to ask, or it gave up).
left=$(job_processes)
if [ -n "$left" ]; then
  log "killing leftover job processes: $(echo $left)"
  # shellcheck disable=SC2086
  kill -KILL $left 2>/dev/null
  # shellcheck disable=SC2086
  wait_gone 5 $left || { log "job processes survived SIGKILL: $(echo $left)"; status=1; }
fi

if [ "$status" = 0 ] && [ -z "$keep" ]; then
  rm -rf -- "$dir"
else
  log "kept $dir"
fi
log "stopped"
exit "$status"
