#!/bin/sh
# The module must carry Debian's hardening: stack protector, FORTIFY_SOURCE,
# RELRO and BIND_NOW (PIE does not apply to a shared library). The control
# flow integrity check is left out: the endbr64 instructions are there, but
# Debian 12's C runtime start files carry no IBT property note, so no
# shared library of the distribution passes it (pam_unix.so does not either).
# The helper (an executable) gets the same check, PIE included.
#   check_hardening.sh MODULE [HELPER...]
set -eu
if ! command -v hardening-check >/dev/null; then
  echo "FAIL: hardening-check (devscripts) is not installed"
  exit 1
fi
hardening-check --nocfprotection "$@"
echo "PASS: hardening-check"
