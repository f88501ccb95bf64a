#!/usr/bin/env bash
# Installs what the Slurm tests and benchmark drive for real: Debian's slurm-wlm
# (slurmctld, slurmd, the client commands) and MUNGE. Idempotent: with everything present
# it does nothing and exits 0. Needs root and apt-get; apt's output goes to a log file.
#
#   scripts/slurm/ensure.sh               # exit 0 when Slurm is usable, 1 (with a reason) if not
#   scripts/slurm/ensure.sh --accounting  # also slurmdbd and MariaDB, for sacct (about 240 MB more)
#   TESSERA_SLURM_APT_LOG=/path ...       # where apt's output goes (default /tmp/tessera-slurm-apt.log)
set -euo pipefail

binaries=(slurmctld slurmd sbatch squeue scancel sacct sinfo scontrol munged)
packages=(slurm-wlm munge)
if [ "${1:-}" = --accounting ]; then
  binaries+=(slurmdbd sacctmgr mariadbd mariadb-install-db)
  packages+=(slurmdbd mariadb-server)
fi
log=${TESSERA_SLURM_APT_LOG:-/tmp/tessera-slurm-apt.log}

missing() {
  local b
  for b in "${binaries[@]}"; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || { echo "$b"; return; }
  done
}

[ -z "$(missing)" ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "slurm: $(missing) is missing and installing it needs root (apt-get install ${packages[*]})" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "slurm: $(missing) is missing and there is no apt-get to install ${packages[*]}" >&2
  exit 1
fi

# Test files may start at once; one installs, the others wait and then find it done.
exec 9>/tmp/tessera-slurm-ensure.lock
flock 9
[ -z "$(missing)" ] && exit 0

started=$(date +%s)
echo "slurm: installing ${packages[*]} (apt-get, log in $log)" >&2
install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=300 "${packages[@]}"
}
# The packages' own services are not wanted: the tests start private daemons. Unless the
# machine already says so (containers usually do), a policy-rc.d keeps the installation
# from starting munge, slurmctld, slurmd or MariaDB system-wide, and goes with it.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
{
  # A stale package index is the usual reason an install fails; refresh it once then.
  install || { apt-get update -qq -o DPkg::Lock::Timeout=300 && install; }
} >>"$log" 2>&1 || {
  echo "slurm: apt-get install ${packages[*]} failed (see $log)" >&2
  exit 1
}
if [ -n "$(missing)" ]; then
  echo "slurm: installed ${packages[*]} but $(missing) is still missing (see $log)" >&2
  exit 1
fi
echo "slurm: installed ${packages[*]} in $(($(date +%s) - started))s" >&2
