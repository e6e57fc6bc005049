#!/bin/sh
# The module must export the PAM entry points and nothing else.
set -eu
module=$1
symbols=$(nm -D --defined-only "$module" | awk '{print $3}' | sort)
expected=$(printf 'pam_sm_authenticate\npam_sm_setcred\n')
echo "exported: $(echo $symbols)"
if [ "$symbols" != "$expected" ]; then
  echo "FAIL: expected exactly: $(echo $expected)"
  exit 1
fi
echo "PASS: only pam_sm_* symbols are exported"
