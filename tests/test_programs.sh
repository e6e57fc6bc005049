#!/bin/sh
# Copies of the programs the module runs as its helper, for the tests.
# The module starts a helper only from a root-owned directory that group
# and others cannot write, all the way up; a build tree may sit anywhere
# (under /tmp, in a home directory), so the tests run these copies from a
# directory of their own under /run. A ctest fixture installs them before
# the first test that needs them and removes them after the last.
#   test_programs.sh install DIR PROGRAM...
#   test_programs.sh remove DIR
set -eu
action=$1
dir=$2
shift 2
case "$dir" in
  /run/ptv-test-*) ;;
  *) echo "test_programs.sh: refusing $dir (not /run/ptv-test-*)" >&2; exit 2 ;;
esac
case "$action" in
  install)
    if [ "$(id -u)" != 0 ]; then
      echo "test_programs.sh: needs root (the module runs root-owned helpers only)" >&2
      exit 1
    fi
    rm -rf "$dir"
    mkdir -m 0755 "$dir"
    for program in "$@"; do
      install -o root -g root -m 0755 "$program" "$dir/"
    done
    ls -l "$dir"
    ;;
  remove)
    rm -rf "$dir"
    ;;
  *)
    echo "usage: test_programs.sh install|remove DIR [PROGRAM...]" >&2
    exit 2
    ;;
esac
