#!/usr/bin/python3
"""twilio-verify-state, the program the Debian postinst runs: "create"
makes the state directory (0700) and state.v1 (0600, full size), leaves a
valid file alone, and refuses a bad one with the problem on stderr;
"reset USER" clears one user; "show USER" prints the recorded send times;
a wrong command line exits 2.

Usage: test_state_tool.py STATE_TOOL
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from ptv_harness import check, require_root, summary  # noqa: E402

STATE_SIZE = 4096 + 16384 * 512


def tool(exe, *args):
    return subprocess.run([exe] + list(args), capture_output=True, text=True)


def run_checks(exe, work):
    state = os.path.join(work, "state")
    path = os.path.join(state, "state.v1")
    r = tool(exe, "create", state)
    check("create: exit 0", r.returncode == 0, r.stderr)
    st, fst = os.lstat(state), os.lstat(path)
    check("create: the directory is root's, mode 0700",
          (st.st_uid, st.st_mode & 0o7777) == (0, 0o700), oct(st.st_mode))
    check("create: state.v1 is root's, mode 0600, full size, not sparse",
          (fst.st_uid, fst.st_mode & 0o7777, fst.st_size) ==
          (0, 0o600, STATE_SIZE) and fst.st_blocks * 512 >= STATE_SIZE,
          "%s blocks %d" % (fst, fst.st_blocks))
    check("create: nothing else in the directory", os.listdir(state) ==
          ["state.v1"], os.listdir(state))
    with open(path, "rb") as f:
        before = f.read()
    r = tool(exe, "create", state)
    with open(path, "rb") as f:
        after = f.read()
    check("create again: exit 0, the file left as it was",
          r.returncode == 0 and after == before and
          os.lstat(path).st_ino == fst.st_ino, r.stderr)
    r = tool(exe, "show", "alice", state)
    check("show: nothing recorded for a new user",
          r.returncode == 0 and r.stdout == "", r)
    r = tool(exe, "reset", "alice", state)
    check("reset of a user with nothing recorded: exit 0",
          r.returncode == 0, r.stderr)
    os.chmod(path, 0o644)
    r = tool(exe, "create", state)
    check("create with state.v1 mode 0644: exit 1, says what to do",
          r.returncode == 1 and "chmod 600 " + path in r.stderr, r.stderr)
    os.chmod(path, 0o600)
    with open(path, "r+b") as f:
        f.write(b"XTVSTATE")
    r = tool(exe, "create", state)
    check("create with a bad header: exit 1, names the file",
          r.returncode == 1 and path in r.stderr and "corrupt" in r.stderr,
          r.stderr)
    check("reset with a bad header: exit 1",
          tool(exe, "reset", "alice", state).returncode == 1)
    os.chmod(state, 0o777)
    r = tool(exe, "create", state)
    check("create with a directory writable by others: exit 1",
          r.returncode == 1 and "chmod 700" in r.stderr, r.stderr)
    for args in ([], ["frobnicate"], ["reset"], ["create", state, "extra"],
                 ["show", "alice", state, "extra"]):
        r = tool(exe, *args)
        check("usage error %s: exit 2 with the usage" % args,
              r.returncode == 2 and "usage:" in r.stderr, r)


def main():
    require_root("the state directory must be owned by root")
    exe = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="ptv-state-tool.")
    try:
        run_checks(exe, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
