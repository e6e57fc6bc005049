#!/bin/sh
# twilio-verify-helper runs only when the module starts it: it refuses a
# terminal, and a standard input that is not the module's socket.
#   check_helper_refuses.sh HELPER
set -u
helper=$1
status=0
out=$("$helper" </dev/null 2>&1); rc=$?
if [ "$rc" -eq 2 ] && echo "$out" | grep -q "not the module's socket"; then
  echo "PASS: standard input /dev/null: refused (exit 2)"
else
  echo "FAIL: standard input /dev/null: exit $rc: $out"; status=1
fi
# On a terminal (script(1) gives it one).
out=$(script -qec "$helper" /dev/null 2>&1); rc=$?
if [ "$rc" -eq 2 ] && echo "$out" | grep -q "not from a terminal"; then
  echo "PASS: on a terminal: refused (exit 2)"
else
  echo "FAIL: on a terminal: exit $rc: $out"; status=1
fi
exit $status
