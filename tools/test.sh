#!/usr/bin/env bash
# Command 2 of the README (and .ci/run): installs what is missing, builds
# with warnings as errors, and runs the whole test suite under
# AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/deps.sh"
# the optimized build finds warnings the sanitizer build does not
"$top/tools/build.sh" Release -DCMDB_WERROR=ON >/dev/null
dir=$("$top/tools/build.sh" Asan -DCMDB_WERROR=ON)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$dir" --output-on-failure -j2 "$@"
