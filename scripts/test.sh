#!/usr/bin/env bash
# `npm test`: typecheck, lint, then every test file under node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests drive for real: Chromium for the dashboard page. Installed
# when missing and we may (root with apt); otherwise those tests skip with a message.
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
if ((${#need[@]} > 0)) && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "npm test: installing ${need[*]} (apt-get)"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"; } >/tmp/tessera-apt.log 2>&1; then
    echo "npm test: could not install ${need[*]} (see /tmp/tessera-apt.log); their tests will skip"
  fi
fi
npx tsc -p tsconfig.json --noEmit
npx tsc -p src/dashboard/page/tsconfig.json
npx tsc -p test/dashboard/browser/tsconfig.json
npx eslint .
exec node --import tsx --test --test-concurrency=2 --test-timeout=120000 $(find test -name '*.test.ts' | sort)
