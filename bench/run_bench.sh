#!/bin/bash
# Benchmark of pam_twilio_verify against the bundled Verify emulator: the
# module in a real PAM application next to a curl floor, the Python SDK and
# pam_permit; failure latency; a burst of simultaneous logins.
#
#   bench/run_bench.sh [-n LOGINS] [--burst COUNT] [--json FILE] [--keep]
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
cmake --build "$build" --target pam_twilio_verify -j "$(nproc)" >/dev/null
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt")

exec /usr/bin/python3 "$here/bench.py" --module "$build/pam_twilio_verify.so" \
  --build-type "${build_type:-default}" "$@"
