#!/usr/bin/python3
"""A full filesystem cannot lock anyone out through the send limit's state.

The state directory lives on a small tmpfs (16 MiB, 64 inodes) mounted in
a private mount namespace (the test re-executes itself under
"unshare --mount --propagation private", so nothing is visible outside).
The same tmpfs has a world-writable 1777 directory, as /var/lib shares its
filesystem with /tmp on most machines.

 1. alice logs in once through the real module (pamtester under
    pam_wrapper and nss_wrapper, against the Verify emulator): the state
    file now exists and holds one send;
 2. as an unprivileged user (nobody, via setpriv) the filesystem is filled
    completely: files until no inode is left, then one file written until
    no block is left; statvfs shows 0 free inodes and 0 free blocks;
 3. alice (who has a send) and bob (who never had one) log in: both are
    asked for the code and approved with the right one, and the state file
    holds 2 sends for alice and 1 for bob; the file kept its inode and
    size, and "twilio-verify-state reset alice" works on the full disk;
 4. the negative: with state.v1 removed (the old format's symptom: a login
    that needs a new file) and the space refilled, a login is
    result=denied-state-error, sends nothing, and the log says why. The
    test therefore tells a module that needs no space from one that does.

Usage: test_full_disk.py MODULE_SO STATE_TOOL
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from emulator_client import Emulator  # noqa: E402
import ptv_harness as h  # noqa: E402
from ptv_harness import check  # noqa: E402

IN_NAMESPACE = "PTV_FULL_DISK_NAMESPACE"
NOBODY = 65534
ALICE = ("alice", "+15550101111", "+1******1111")
BOB = ("bob", "+15550102222", "+1******2222")

# Run as nobody: fills the directory given in argv[1]. A file for the
# blocks is opened first (it needs an inode), then empty files are made
# until no inode is left, then the first file is written until no block is
# left. Prints how many files and bytes it made.
FILLER = r"""
import errno, os, sys
d = sys.argv[1]
blob = os.open(os.path.join(d, "blob-%d" % os.getpid()),
               os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
files = 0
while True:
    try:
        os.close(os.open(os.path.join(d, "f-%d-%d" % (os.getpid(), files)),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        files += 1
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        break
written = 0
chunk = 1 << 16
while chunk > 0:
    try:
        written += os.write(blob, b"x" * chunk)
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        chunk //= 2
os.close(blob)
print("files=%d bytes=%d" % (files, written))
"""


def reexec_in_namespace():
    """Runs this script again in a private mount namespace; returns its
    exit status."""
    env = dict(os.environ)
    env[IN_NAMESPACE] = "1"
    cmd = ["unshare", "--mount", "--propagation", "private", "--",
           sys.executable, os.path.abspath(__file__)] + sys.argv[1:]
    return subprocess.run(cmd, env=env).returncode


def fill_as_nobody(directory):
    out = subprocess.run(
        ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
         "--clear-groups", "--", sys.executable, "-c", FILLER, directory],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    return out.returncode == 0, (out.stdout + out.stderr).strip()


def is_full(path):
    st = os.statvfs(path)
    return st.f_ffree == 0 and st.f_bfree == 0 and st.f_bavail == 0, \
        "free inodes %d, free blocks %d, available blocks %d" % (
            st.f_ffree, st.f_bfree, st.f_bavail)


def show(tool, state, user):
    out = subprocess.run([tool, "show", user, state], capture_output=True,
                         text=True)
    if out.returncode != 0:
        return "error: " + out.stderr.strip()
    return len(out.stdout.splitlines())


def sms_to(em, phone):
    return [m for m in em.outbox() if m["to"] == phone]


def login(pw, em, who):
    user, phone, masked = who
    r = h.pamtester(pw, user, ["right"], em, phone, log_name="state.full_disk")
    return r, ("SMS code sent to %s (or type resend, call): " % masked) in r.output


def test(module, tool, work):
    fs = os.path.join(work, "fs")
    os.mkdir(fs)
    subprocess.run(["mount", "-t", "tmpfs", "-o",
                    "size=16m,nr_inodes=64,mode=0755", "ptv-full-disk", fs],
                   check=True)
    try:
        run_checks(module, tool, work, fs)
    finally:
        subprocess.run(["umount", fs], check=False)


def run_checks(module, tool, work, fs):
    state = os.path.join(fs, "state")
    public = os.path.join(fs, "public")
    os.mkdir(state, 0o700)
    os.mkdir(public)
    os.chmod(public, 0o1777)
    em = Emulator(os.path.join(work, "emulator"))
    try:
        em.start()
        pw = h.PamWork(work, module, users=(
            (ALICE[0], "Alice,,%s,," % ALICE[1]),
            (BOB[0], "Bob,,%s,," % BOB[1])))
        body = ('phone_sources = [ "gecos" ];\n'
                'send_limit = { count = 3; window_s = 3600; };\n')
        h.write_private(pw.conf, h.module_config(em, state, body))
        full_disk_checks(pw, em, tool, state, public)
    finally:
        em.stop()


def full_disk_checks(pw, em, tool, state, public):
    r, prompted = login(pw, em, ALICE)
    check("alice's first login is approved", r.ok and prompted, r)
    check("the state file now holds alice's send",
          show(tool, state, "alice") == 1, show(tool, state, "alice"))
    before = os.stat(os.path.join(state, "state.v1"))

    ok, text = fill_as_nobody(public)
    print("filler (nobody): %s" % text, flush=True)
    check("nobody filled the filesystem", ok, text)
    full, why = is_full(public)
    check("no free inode and no free block is left", full, why)

    for who, sends in ((ALICE, 2), (BOB, 1)):
        r, prompted = login(pw, em, who)
        check("%s (full disk) is asked for the code" % who[0], prompted, r)
        check("%s (full disk) is approved with the right code" % who[0],
              r.ok and h.result_of(r) == "approved", r)
        check("%s has %d sends recorded" % (who[0], sends),
              show(tool, state, who[0]) == sends, show(tool, state, who[0]))
        check("%s got %d SMS" % (who[0], sends),
              len(sms_to(em, who[1])) == sends, sms_to(em, who[1]))
    after = os.stat(os.path.join(state, "state.v1"))
    check("the state file was written in place (same inode, same size)",
          (after.st_ino, after.st_size) == (before.st_ino, before.st_size),
          "%s -> %s" % (before, after))
    check("nothing else is in the state directory",
          os.listdir(state) == ["state.v1"], os.listdir(state))
    r = subprocess.run([tool, "reset", "alice", state], capture_output=True,
                       text=True)
    check("twilio-verify-state reset alice works on the full disk",
          r.returncode == 0 and show(tool, state, "alice") == 0 and
          show(tool, state, "bob") == 1, r.stderr)
    full, why = is_full(public)
    check("the filesystem is still full", full, why)

    # The negative: a login that needs a new file (as every send did in
    # the old format) is denied on the same full filesystem.
    os.unlink(os.path.join(state, "state.v1"))
    ok, text = fill_as_nobody(public)  # takes back the freed inode and blocks
    print("filler again (nobody): %s" % text, flush=True)
    full, why = is_full(public)
    check("full again after removing state.v1", ok and full, why + text)
    sent = len(sms_to(em, ALICE[1]))
    r, prompted = login(pw, em, ALICE)
    check("without its state file a full disk denies: denied-state-error",
          h.result_of(r) == "denied-state-error" and r.status != 0, r)
    check("the log says why (no space)",
          "No space left on device" in r.output and "state.v1" in r.output, r)
    check("that login was not prompted and sent nothing",
          not prompted and len(sms_to(em, ALICE[1])) == sent, r)
    check("no half-made state file is left", os.listdir(state) == [],
          os.listdir(state))


def main():
    h.require_root("needs root (mount, setpriv, a root-owned config)")
    module, tool = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    if os.environ.get(IN_NAMESPACE) != "1":
        return reexec_in_namespace()
    work = tempfile.mkdtemp(prefix="ptv-full-disk.")
    os.chmod(work, 0o755)  # nobody must reach the public directory
    try:
        test(module, tool, work)
    except (OSError, subprocess.CalledProcessError) as e:
        check("the test ran to its end", False, "%s: %s" % (type(e).__name__, e))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return h.summary()


if __name__ == "__main__":
    sys.exit(main())
