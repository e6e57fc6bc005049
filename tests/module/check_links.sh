#!/bin/sh
# The privilege split: the module loads no network, directory or TLS
# library (they are the helper's), and the helper does.
#   check_links.sh MODULE HELPER
set -eu
module=$1
helper=$2
forbidden='libcurl|libldap|liblber|libssl|libgnutls|libcrypto|libjson-c'
status=0
echo "module links: $(ldd "$module" | awk '{print $1}' | tr '\n' ' ')"
if ldd "$module" | grep -Eq "$forbidden"; then
  echo "FAIL: the module links $(ldd "$module" | grep -Eo "$forbidden" | sort -u | tr '\n' ' ')"
  status=1
else
  echo "PASS: the module links none of libcurl, libldap, libssl, libgnutls, libcrypto, json-c"
fi
for lib in libcurl libldap; do
  if ldd "$helper" | grep -q "$lib"; then
    echo "PASS: the helper links $lib"
  else
    echo "FAIL: the helper does not link $lib"
    status=1
  fi
done
exit $status
