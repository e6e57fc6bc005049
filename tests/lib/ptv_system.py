"""Pieces shared by the tests that change the machine (real sshd, real su),
beside ptv_harness (which they use too): commands run with their output, undo
actions that run however the test ends, a collector of the module's syslog
lines on /dev/log, and local test accounts.

    sys.path.insert(0, os.path.join(HERE, "..", "lib"))
    import ptv_system as sysx
"""

import os
import pwd
import re
import socket
import stat
import subprocess
import sys
import threading
import time

from ptv_harness import write_file

DEV_LOG = "/dev/log"


def run(args, **kw):
    return subprocess.run(args, stdin=kw.pop("stdin", subprocess.DEVNULL),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kw)


class Cleanup:
    """Undo actions, run newest first, each at most once (finally + atexit)."""

    def __init__(self):
        self.actions = []

    def add(self, what, fn):
        self.actions.append((what, fn))

    def run(self):
        while self.actions:
            what, fn = self.actions.pop()
            try:
                fn()
            except Exception as e:  # keep going: every other undo must run
                print("cleanup: %s: %s" % (what, e), file=sys.stderr, flush=True)


# -- syslog ------------------------------------------------------------------

class SyslogCollector:
    """Binds /dev/log (AF_UNIX, SOCK_DGRAM) and keeps every message."""

    PRI = re.compile(r"^<(\d{1,3})>")

    def __init__(self, path=DEV_LOG):
        self.path = path
        self.lines = []  # (facility, severity, text)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)  # fails with EADDRINUSE if someone owns it
        self.ino = os.lstat(path).st_ino
        os.chmod(path, 0o666)
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopping.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode("utf-8", "replace").rstrip("\n\0")
            m = self.PRI.match(text)
            pri = int(m.group(1)) if m else -1
            with self.lock:
                self.lines.append((pri >> 3, pri & 7, text))

    def mark(self):
        with self.lock:
            return len(self.lines)

    def since(self, mark, needle=""):
        with self.lock:
            return [ln for ln in self.lines[mark:] if needle in ln[2]]

    def all_text(self):
        with self.lock:
            return "\n".join(ln[2] for ln in self.lines)

    def wait_for(self, mark, needle, timeout=3.0):
        """Lines since mark containing needle; waits a little for the thread."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.since(mark, needle)
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def close(self):
        self.stopping.set()
        self.thread.join(2)
        self.sock.close()
        try:
            if os.lstat(self.path).st_ino == self.ino:
                os.unlink(self.path)
        except FileNotFoundError:
            pass


def stale_dev_log():
    """True when /dev/log is a socket that refuses connections: nobody has it."""
    try:
        if not stat.S_ISSOCK(os.lstat(DEV_LOG).st_mode):
            return False
    except FileNotFoundError:
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect(DEV_LOG)
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    finally:
        s.close()


def open_syslog(note=print):
    """The collector on /dev/log when nobody else owns it, else None (a
    syslog daemon has it: log assertions are then skipped)."""
    if stale_dev_log():
        note("note: %s is a socket nobody listens on (left by an earlier run "
             "that was killed); replacing it" % DEV_LOG)
        os.unlink(DEV_LOG)
    if os.path.lexists(DEV_LOG):
        note("note: %s exists (a syslog daemon owns it); log lines not "
             "collected" % DEV_LOG)
        return None
    try:
        return SyslogCollector()
    except OSError as e:
        note("note: cannot bind %s: %s" % (DEV_LOG, e))
        return None


# -- accounts ----------------------------------------------------------------

def create_account(name, password, pubkey, cleanup):
    """useradd -m, a password, and pubkey (if any) in authorized_keys;
    userdel -r is added to cleanup."""
    r = run(["useradd", "-m", "-s", "/bin/sh", name])
    if r.returncode != 0:
        raise RuntimeError("useradd %s: %s" % (name, r.stdout))

    def remove():
        # Sessions of the account end with the ssh client; retry once with -f
        # in case the last one is still closing.
        r = run(["userdel", "-r", name])
        if r.returncode not in (0, 12):  # 12: home or mail spool already gone
            time.sleep(1)
            r = run(["userdel", "-r", "-f", name])
            if r.returncode not in (0, 12):
                raise RuntimeError("userdel %s: %s" % (name, r.stdout))
    cleanup.add("userdel " + name, remove)
    r = run(["chpasswd"], input="%s:%s\n" % (name, password), stdin=None)
    if r.returncode != 0:
        raise RuntimeError("chpasswd %s: %s" % (name, r.stdout))
    if pubkey is None:
        return
    pw = pwd.getpwnam(name)
    ssh_dir = os.path.join(pw.pw_dir, ".ssh")
    os.makedirs(ssh_dir, exist_ok=True)
    keys = os.path.join(ssh_dir, "authorized_keys")
    write_file(keys, pubkey, 0o600)
    for p, mode in ((ssh_dir, 0o700), (keys, 0o600)):
        os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(p, mode)
