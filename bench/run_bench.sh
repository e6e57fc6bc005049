#!/bin/bash
# Benchmark of pam_twilio_verify against the bundled Verify emulator: the
# module in a real PAM application next to a curl floor, the Python SDK and
# pam_permit; failure latency; a burst of simultaneous logins.
#
#   bench/run_bench.sh [-n LOGINS] [--burst COUNT] [--json FILE] [--keep]
#
# The module of the revision PTV_BENCH_BASELINE (default d0334b2, the last
# one before the privilege split) is built too, from git, and measured side
# by side as "before-split"; PTV_BENCH_BASELINE=none skips it.
#
# Builds the module first if needed: into build/ (configured when it has no
# CMakeCache.txt), or into the existing build directory named by
# PTV_BUILD_DIR. Needs root, gcc, curl, libpam0g-dev, libpam-wrapper,
# libnss-wrapper and python3-twilio.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${PTV_BUILD_DIR:-$root/build}

if [ "$(id -u)" -ne 0 ]; then
  echo "run_bench: needs root" >&2
  exit 77
fi
missing=()
for p in gcc curl cmake openssl libpam0g-dev libpam-wrapper libnss-wrapper python3-twilio; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -ne 0 ]; then
  echo "run_bench: missing packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 1
fi

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPTV_BUILD_TESTS=OFF >/dev/null
fi
cmake --build "$build" --target pam_twilio_verify twilio-verify-helper -j "$(nproc)" >/dev/null
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt")

baseline_args=()
rev=${PTV_BENCH_BASELINE:-d0334b2}
if [ "$rev" != none ]; then
  base_src="$build/bench-baseline/src-$rev"
  base_build="$build/bench-baseline/build-$rev"
  if [ ! -f "$base_build/pam_twilio_verify.so" ]; then
    rm -rf "$base_src" && mkdir -p "$base_src"
    git -C "$root" archive "$rev" | tar -x -C "$base_src"
    cmake -S "$base_src" -B "$base_build" -DCMAKE_BUILD_TYPE="${build_type:-RelWithDebInfo}" \
      -DPTV_BUILD_TESTS=OFF -DPTV_BUILD_MAN=OFF >/dev/null
    cmake --build "$base_build" --target pam_twilio_verify -j "$(nproc)" >/dev/null
  fi
  baseline_args=(--baseline-module "$base_build/pam_twilio_verify.so")
fi

exec /usr/bin/python3 "$here/bench.py" --module "$build/pam_twilio_verify.so" \
  --helper "$build/twilio-verify-helper" "${baseline_args[@]}" \
  --build-type "${build_type:-default}" "$@"
