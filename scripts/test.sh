#!/usr/bin/env bash
# `npm test`: prepare the real components the tests drive, typecheck, lint, then every test
# file under node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

# What npm cannot install, installed (as root, with apt) or built once and cached under
# ~/.cache/tessera when missing. A part that cannot be had here makes its tests skip with
# a message — or fail, under CI=true. Each step logs to a file and says where.
log_dir="${TMPDIR:-/tmp}/tessera-test-setup"
mkdir -p "$log_dir"
prepare() {
  local name=$1
  shift
  local started=$SECONDS
  if "$@" >"$log_dir/$name.log" 2>&1; then
    local took=$((SECONDS - started))
    ((took < 2)) || echo "npm test: $name ready (${took} s)"
  else
    echo "npm test: $name could not be prepared (see $log_dir/$name.log); its tests will skip, or fail under CI"
  fi
}

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
if ((${#need[@]} > 0)) && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  prepare apt bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${need[*]}"
fi
prepare redis bash scripts/redis/ensure.sh
prepare slurm bash scripts/slurm/ensure.sh --accounting
prepare lambda bash scripts/lambda/ensure.sh
prepare notebook bash scripts/notebook/ensure.sh
[ -f scripts/kubernetes/ensure.sh ] && prepare kubernetes bash scripts/kubernetes/ensure.sh

npx tsc -p tsconfig.json --noEmit
npx tsc -p src/dashboard/page/tsconfig.json
npx tsc -p test/dashboard/browser/tsconfig.json
npx eslint .
# The snippet and example tests import 'tessera', the package itself: build it as it is now.
npm run build --silent
exec node --import tsx --test --test-concurrency=2 --test-timeout=180000 $(find test -name '*.test.ts' | sort)
