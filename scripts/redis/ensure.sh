#!/usr/bin/env bash
# Installs Debian's redis-server when it is missing, for the tests that start their own Redis
# (test/helpers/redis.ts). Needs root and apt; prints where the binary is.
#
# The package's maintainer scripts would start a system-wide Redis on port 6379; the tests
# start their own on free ports, so a policy-rc.d that forbids service starts is put in place
# for the install (and removed afterwards when we created it), and the package's service is
# never left running.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  command -v redis-server
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "redis-server is missing and this is not root with apt-get: install Debian's redis-server" >&2
  exit 1
fi

policy=/usr/sbin/policy-rc.d
created_policy=false
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  created_policy=true
fi
cleanup() { if $created_policy; then rm -f "$policy"; fi; }
trap cleanup EXIT

log=/tmp/tessera-apt-redis.log
if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; }; } >"$log" 2>&1; then
  echo "could not install redis-server (see $log)" >&2
  exit 1
fi
command -v redis-server
