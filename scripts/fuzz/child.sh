#!/bin/sh
# One fuzzing process (test/fuzz/child.ts), started by test/fuzz/harness.ts with the target's
# bundle and mode in TESSERA_FUZZ_BUNDLE and TESSERA_FUZZ_MODE and libFuzzer's arguments as
# its own. libFuzzer also gets this script as its argv[0], so that -merge, -fork, -jobs and
# -minimize_crash can start more such processes.
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" && exec node --import tsx test/fuzz/child.ts "$@"
