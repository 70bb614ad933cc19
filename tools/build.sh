#!/usr/bin/env bash
# Configures and builds one build type into build/<type> (or $BUILD_DIR).
#   tools/build.sh [Release|RelWithDebInfo|Asan|Fuzz] [extra cmake args...]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
type=${1:-RelWithDebInfo}; shift || true
dir=${BUILD_DIR:-$top/build/$(echo "$type" | tr '[:upper:]' '[:lower:]')}
cc_args=()
[ "$type" = Fuzz ] && cc_args=(-DCMAKE_C_COMPILER=clang)
cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "${cc_args[@]}" "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null
echo "$dir"
