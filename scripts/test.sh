#!/usr/bin/env bash
# `npm test`: typecheck, lint, then every test file under node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json --noEmit
npx eslint .
exec node --import tsx --test --test-concurrency=2 --test-timeout=120000 $(find test -name '*.test.ts' | sort)
