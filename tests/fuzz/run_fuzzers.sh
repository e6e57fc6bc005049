#!/bin/sh
# Builds the libFuzzer targets (if needed) and runs each for SECONDS on a
# copy of its seed corpus. Prints the executions per target from libFuzzer's
# final statistics; exits non-zero when a target crashes, fails an
# invariant, leaks, or does not run. fuzz_pam_entry needs root: it is
# skipped, and says so, for anyone else.
#
# Usage: tests/fuzz/run_fuzzers.sh [SECONDS] [TARGET...]
# Environment:
#   CC, CXX               compilers (default clang-14, clang++-14)
#   PTV_FUZZ_BUILD_DIR    build directory (default $TMPDIR/ptv-fuzz-build)
#   PTV_FUZZ_WORK_DIR     corpus copies, logs and crash artifacts
#                         (default $PTV_FUZZ_BUILD_DIR/work)
#   PTV_FUZZ_ARGS         extra libFuzzer arguments
set -eu

seconds=${1:-30}
[ $# -gt 0 ] && shift
case $seconds in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
build=${PTV_FUZZ_BUILD_DIR:-${TMPDIR:-/tmp}/ptv-fuzz-build}
work=${PTV_FUZZ_WORK_DIR:-$build/work}
targets=${*:-fuzz_config fuzz_response fuzz_phone fuzz_code fuzz_authenticate fuzz_ldap_filter fuzz_protocol fuzz_pam_entry}

if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=${CC:-clang-14} CXX=${CXX:-clang++-14} \
    cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" --parallel "$(nproc 2>/dev/null || echo 2)"

failed=0
summary=""
for t in $targets; do
  bin="$build/$t"
  if [ ! -x "$bin" ]; then
    echo "$t: no such target" >&2
    failed=1
    continue
  fi
  # Its configuration files must be root's, as the module demands.
  if [ "$t" = fuzz_pam_entry ] && [ "$(id -u)" -ne 0 ]; then
    line=$(printf '%-20s %s' "$t" "skipped (needs root)")
    echo "$line"
    summary="$summary$line
"
    continue
  fi
  dir="$work/$t"
  rm -rf "$dir"
  mkdir -p "$dir/corpus" "$dir/artifacts"
  if [ -d "$here/corpus/$t" ]; then
    cp "$here/corpus/$t/"* "$dir/corpus/" 2>/dev/null || true
  fi
  dict=""
  [ -f "$here/dict/$t.dict" ] && dict="-dict=$here/dict/$t.dict"
  echo "=== $t: ${seconds}s"
  rc=0
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
    -artifact_prefix="$dir/artifacts/" $dict ${PTV_FUZZ_ARGS:-} \
    "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
  corpus=$(ls "$dir/corpus" | wc -l)
  if [ "$rc" -ne 0 ] || [ -z "$execs" ]; then
    failed=1
    status="FAILED (exit $rc)"
    echo "--- $t failed; last lines of $dir/log:"
    tail -n 40 "$dir/log"
    for a in "$dir/artifacts/"*; do
      [ -f "$a" ] && echo "reproducer: $a (run: $bin $a)"
    done
  else
    status="ok"
  fi
  line=$(printf '%-20s %-18s execs=%s corpus=%s' "$t" "$status" "${execs:-?}" "$corpus")
  echo "$line"
  summary="$summary$line
"
done

echo "=== summary"
printf '%s' "$summary"
exit "$failed"
