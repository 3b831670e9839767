#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test: the normal build, then the same suite
# under AddressSanitizer + UndefinedBehaviorSanitizer. Set SCIMSYNC_SKIP_ASAN=1 to skip the
# second pass locally. Ends with ctest's own summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh default
if [ "${SCIMSYNC_SKIP_ASAN:-0}" != "1" ]; then
  ./scripts/build.sh asan
  echo "== test suite under ASan + UBSan =="
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --preset asan
fi
echo "== test suite =="
ctest --preset default
