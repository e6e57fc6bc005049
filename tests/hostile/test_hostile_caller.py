#!/usr/bin/python3
"""The caller of su or sudo owns the process the module runs in: its
signals, its resource limits and its scheduling. These tests work against
the module from there, with failmode = "safe", and assert that it never
lets anyone in for it; each attack is paired with the same login without
the attack.

  test_hostile_caller.py pam MODULE_SO
      pamtester under pam_wrapper and nss_wrapper (root, nothing in /etc
      changes):
      - SIGSTOP for longer than timeout_ms while the check (or the start)
        is in flight, then SIGCONT: Twilio's answer, which arrived in the
        meantime, is read; the login goes on ("Wrong code", or in with the
        right code), never "allowed-unavailable";
      - while the module waits on the network, the terminal stop signals
        are blocked (read from /proc/PID/status), and not at the prompt;
      - descriptor limits from 4 to 24 (prlimit) with a host name in
        api_url and a wrong code: never in, and some limits do reach the
        network step and end as denied-internal-error.
  test_hostile_caller.py su MODULE_SO
      the distribution's real su (util-linux, setuid root), run by an
      unprivileged local user against a victim account, through a PAM
      service su-l of pam_unix and the module (the file is restored byte
      for byte afterwards):
      - the victim's password and a wrong code, then the attacker stops su
        with SIGSTOP from their own uid for longer than timeout_ms and
        continues it: denied;
      - prlimit --nofile=6, 7 and 8 with a wrong code: never in;
      - paired: the same su, no attack, the right code: a shell as the
        victim.

Exit: 0 all passed, 1 a check failed, 77 skipped (not root).
"""

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pexpect

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
import ptv_harness as h  # noqa: E402
import ptv_system as sysx  # noqa: E402
from emulator_client import Emulator  # noqa: E402

check = h.check
PHONE = "+15550104567"
CODE_PROMPT = r"SMS code sent to \+1\*\*\*\*\*\*4567(?: \(or type resend, call\))?: "
WRONG_PROMPT = r"Wrong code; \d attempts? left\. SMS code sent to"
TIMEOUT_MS = 1000
STOP_SECONDS = TIMEOUT_MS / 1000.0 + 1.5
# Bits of SigBlk in /proc/PID/status (signal number - 1).
HELD = {"SIGTSTP": 19, "SIGTTIN": 20, "SIGTTOU": 21, "SIGCONT": 17}


def blocked_signals(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("SigBlk:"):
                mask = int(line.split()[1], 16)
                return {name for name, bit in HELD.items() if mask >> bit & 1}
    return set()


def config(em, state, failmode="safe", api_url=None):
    return h.module_config(em, state, 'failmode = "%s";\nphone_sources = [ "gecos" ];\n'
                           % failmode, api_url=api_url, connect_timeout_ms=500,
                           timeout_ms=TIMEOUT_MS)


def wait_for_request(em, suffix, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r["path"].endswith(suffix) for r in em.requests()):
            return True
        time.sleep(0.01)
    return False


def spawn_pamtester(pw):
    return pexpect.spawn("pamtester", ["-v", pw.service, "demo", "authenticate"],
                         env=pw.env(), encoding="utf-8", timeout=20)


def finish(child):
    try:
        child.expect(pexpect.EOF)
    except pexpect.ExceptionPexpect:
        pass
    out = child.before or ""
    child.close(force=True)
    return out


def outcome(text):
    m = re.findall(r"result=([a-z-]+)", text)
    return m[-1] if m else None


# -- pamtester ----------------------------------------------------------------

def stop_in_flight(pid, em, suffix):
    """Once the request ending in suffix reached the emulator: the stop
    signals pid blocks, then SIGSTOP for STOP_SECONDS and SIGCONT."""
    wait_for_request(em, suffix)
    held = blocked_signals(pid)
    os.kill(pid, signal.SIGSTOP)
    time.sleep(STOP_SECONDS)
    os.kill(pid, signal.SIGCONT)
    return held


def stop_during(pw, em, step, answer_after):
    """One login; SIGSTOP while `step` ("start" or "check") is in flight,
    SIGCONT after STOP_SECONDS. Returns (transcript, blocked at the stop,
    blocked at the prompt)."""
    em.reset()
    em.set_faults([], latency_ms=400)
    child = spawn_pamtester(pw)
    transcript = ""
    held_wait = held_prompt = set()
    try:
        if step == "start":
            held_wait = stop_in_flight(child.pid, em, "/Verifications")
        child.expect(CODE_PROMPT)
        transcript += child.before + child.after
        held_prompt = blocked_signals(child.pid)
        child.sendline("000000" if em.last_code(PHONE) != "000000" else "000001")
        if step == "check":
            held_wait = stop_in_flight(child.pid, em, "/VerificationCheck")
            child.expect([WRONG_PROMPT, pexpect.EOF])
            transcript += child.before + (child.after if isinstance(child.after, str) else "")
            if answer_after == "right":
                child.sendline(em.last_code(PHONE) or "")
            else:
                for _ in range(2):
                    child.sendline("000000" if em.last_code(PHONE) != "000000" else "000001")
                    child.expect([CODE_PROMPT, pexpect.EOF])
                    transcript += child.before + (child.after if isinstance(child.after, str) else "")
    except pexpect.ExceptionPexpect as e:
        transcript += "\n[%s]" % type(e).__name__
    transcript += finish(child)
    em.set_faults([], latency_ms=0)
    return transcript, held_wait, held_prompt


def pam_tests(module):
    work = tempfile.mkdtemp(prefix="ptv-hostile.")
    em = Emulator(os.path.join(work, "emulator"))
    try:
        em.start()
        pw = h.PamWork(work, module, users=(("demo", "Demo,,+1 555 010 4567,,"),))
        state = os.path.join(work, "state")

        def configure(**kw):
            shutil.rmtree(state, ignore_errors=True)
            h.write_private(pw.conf, config(em, state, **kw))
            em.reset()

        configure()
        # Paired: no stop, a wrong code then the right one.
        r = h.pamtester(pw, "demo", ["wrong", "right"], em, PHONE, log_name="hostile")
        check("no attack: wrong then right code: approved", r.ok and
              h.result_of(r) == "approved", r)

        for step, after, want in (("check", "right", "approved"),
                                  ("check", "wrong", "denied-wrong-code"),
                                  ("start", None, None)):
            configure()
            text, held_wait, held_prompt = stop_during(pw, em, step, after)
            name = "SIGSTOP %.1f s (timeout_ms %d) during the %s" % (
                STOP_SECONDS, TIMEOUT_MS, step)
            check(name + ": never allowed-unavailable",
                  "allowed-unavailable" not in text, text)
            if step == "check":
                check(name + ": Twilio's answer (pending) was read: \"Wrong code\"",
                      re.search(WRONG_PROMPT, text) is not None, text)
                check(name + ", then the %s code: %s" % (after, want),
                      outcome(text) == want, text)
            else:
                check(name + ": the prompt came (the start's answer was read)",
                      re.search(CODE_PROMPT, text) is not None, text)
            check(name + ": stop signals held while waiting on Twilio",
                  held_wait == set(HELD), sorted(held_wait))
            # (pamtester's own conversation blocks SIGTSTP at its prompt.)
            check(name + ": and given back at the prompt",
                  not held_prompt & {"SIGCONT", "SIGTTIN", "SIGTTOU"},
                  sorted(held_prompt))

        # Descriptor limits, with a host name to resolve (the helper runs
        # outside pam_wrapper and nss_wrapper, so a name the system
        # resolves: localhost, which the test CA's certificate names):
        # never in.
        env = {}
        api_url = "https://localhost:%d" % em.port
        configure(api_url=api_url)
        r = h.pamtester(pw, "demo", ["right"], em, PHONE, extra_env=env,
                        log_name="hostile")
        check("no limit, host name in api_url: approved", r.ok, r)
        results = {}
        # Below 64 descriptors the helper cannot be given what it needs
        # unless the module may raise the hard limit (CAP_SYS_RESOURCE);
        # 64 and more reach the code prompt.
        for n in list(range(4, 15)) + [64, 256]:
            configure(api_url=api_url)
            r = h.pamtester(pw, "demo", ["wrong"] * 3, em, PHONE, extra_env=env,
                            log_name="hostile",
                            prefix=["prlimit", "--nofile=%d" % n])
            results[n] = h.result_of(r) or "(no outcome line: pam_start failed)"
            check("prlimit --nofile=%d, wrong codes: not in (%s)" % (n, results[n]),
                  not r.ok and results[n] not in ("allowed-unavailable", "approved"), r)
        # The range covers both ends: limits that stop the login before
        # the network, and limits under which it reaches the code prompt.
        check("the limits cover the login before and after the network step",
              "denied-wrong-code" in results.values() and
              any(v != "denied-wrong-code" for v in results.values()), results)
    finally:
        em.stop()
        shutil.rmtree(work, ignore_errors=True)


# -- real su -------------------------------------------------------------------

SU_PAM = "/etc/pam.d/su-l"
API_HOST = "verify.ptv.test"


class EtcFile:
    """Changes a file under /etc and puts the original back exactly
    (content, mode, owner, times), or removes it if there was none."""

    def __init__(self, path, cleanup):
        self.path = path
        try:
            st = os.lstat(path)
            with open(path, "rb") as f:
                self.saved = (f.read(), st.st_mode & 0o7777, st.st_uid, st.st_gid,
                              (st.st_atime_ns, st.st_mtime_ns))
        except FileNotFoundError:
            self.saved = None
        cleanup.add("restore " + path, self.restore)

    def write(self, text):
        sysx.write_file(self.path, text, 0o644)

    def append(self, text):
        with open(self.path, "a") as f:
            f.write(text)

    def restore(self):
        if self.saved is None:
            if os.path.lexists(self.path):
                os.unlink(self.path)
            return
        data, mode, uid, gid, times = self.saved
        tmp = self.path + ".ptv-restore"
        with open(tmp, "wb") as f:
            f.write(data)
        os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        os.utime(tmp, ns=times)
        os.rename(tmp, self.path)


def as_user(user, args):
    pw = pwd.getpwnam(user)
    return ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
            "--init-groups", "--reset-env"] + args


CALLER_MARK = "PTV_CALLER_MARK"


def helper_of(pid):
    """The helper su started: a child of pid running twilio-verify-helper."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/status" % entry) as f:
                status = f.read()
            exe = os.readlink("/proc/%s/exe" % entry)
        except OSError:
            continue
        ppid = re.search(r"^PPid:\s*(\d+)", status, re.M)
        if ppid and int(ppid.group(1)) == pid and exe.endswith("twilio-verify-helper"):
            return int(entry), status
    return None, None


def inspect_helper(pid, attacker, notes):
    """While the code prompt is shown: the helper's ids and environment, and
    whether the attacker can stop it."""
    hpid, status = helper_of(pid)
    if hpid is None:
        notes.append("helper: not found")
        return
    ids = [re.search(r"^%s:\s*(.*)$" % k, status, re.M).group(1).split()
           for k in ("Uid", "Gid")]
    with open("/proc/%d/environ" % hpid, "rb") as f:
        environ = f.read()
    notes.append("helper: uids %s gids %s environ %r" % (ids[0], ids[1], environ))
    r = subprocess.run(as_user(attacker, ["kill", "-STOP", str(hpid)]),
                       capture_output=True, text=True)
    notes.append("helper: kill -STOP from %s: exit %d %s"
                 % (attacker, r.returncode, r.stderr.strip()))


def su_login(attacker, victim, password, em, attack=None, prlimit=None,
             answer="wrong", inspect=False):
    """su -l VICTIM run by ATTACKER, with a variable of the caller's own in
    su's environment. Returns (got a shell as the victim, transcript,
    notes)."""
    args = ["env", "%s=%s" % (CALLER_MARK, secrets.token_hex(4)), "su", "-l", victim]
    if prlimit:
        args = ["prlimit", "--nofile=%d" % prlimit] + args
    child = pexpect.spawn(as_user(attacker, args)[0], as_user(attacker, args)[1:],
                          encoding="utf-8", timeout=20)
    text, notes = "", []
    marker = "ptv-su-" + secrets.token_hex(4)
    shell = False
    try:
        i = child.expect([r"Password: ", pexpect.EOF])
        text += child.before + (child.after if i == 0 else "")
        if i == 1:
            return False, text, notes
        child.sendline(password)
        prompts = 0
        while True:
            i = child.expect([CODE_PROMPT, r"su: .*", r"[$#] ", pexpect.EOF])
            text += child.before + (child.after if isinstance(child.after, str) else "")
            if i != 0:
                if i == 2:
                    child.sendline("echo %s $(id -un); exit" % marker)
                    child.expect(pexpect.EOF)
                    text += child.before
                    shell = ("%s %s" % (marker, victim)) in text
                break
            prompts += 1
            if inspect and prompts == 1:
                inspect_helper(child.pid, attacker, notes)
            code = em.last_code(PHONE)
            if answer == "right" and prompts == 1:
                child.sendline(code or "")
            else:
                child.sendline("000000" if code != "000000" else "000001")
            if attack == "stop" and prompts == 1:
                wait_for_request(em, "/VerificationCheck")
                r = subprocess.run(as_user(attacker, ["kill", "-STOP", str(child.pid)]),
                                   capture_output=True, text=True)
                notes.append("kill -STOP from %s: exit %d %s" % (attacker, r.returncode,
                                                              r.stderr.strip()))
                time.sleep(STOP_SECONDS)
                r = subprocess.run(as_user(attacker, ["kill", "-CONT", str(child.pid)]),
                                   capture_output=True, text=True)
                notes.append("kill -CONT: exit %d" % r.returncode)
    except pexpect.ExceptionPexpect as e:
        text += "\n[%s] %s" % (type(e).__name__, child.before)
    finally:
        child.close(force=True)
    return shell, text, notes


def su_tests(module):
    cleanup = sysx.Cleanup()
    work = tempfile.mkdtemp(prefix="ptv-su.")
    cleanup.add("rm " + work, lambda: shutil.rmtree(work, ignore_errors=True))
    try:
        syslog = sysx.open_syslog(lambda t: print(t, flush=True))
        if syslog is not None:
            cleanup.add("remove /dev/log", syslog.close)
        em = Emulator(os.path.join(work, "emulator"))
        cleanup.add("stop emulator", em.stop)
        em.start()
        tag = secrets.token_hex(2)
        attacker, victim = "ptvatk" + tag, "ptvvic" + tag
        password = "Pw-" + secrets.token_hex(8)
        sysx.create_account(attacker, "Pw-" + secrets.token_hex(8), None, cleanup)
        sysx.create_account(victim, password, None, cleanup)
        sysx.run(["chfn", "-w", "+1 555 010 4567", victim])
        conf = os.path.join(work, "ptv.conf")
        state = os.path.join(work, "state")
        os.chmod(work, 0o755)  # su (euid 0) reads it either way
        # A host name for the API that only /etc/hosts knows (the test CA's
        # server certificate names it): the module must resolve it.
        EtcFile("/etc/hosts", cleanup).append("127.0.0.1 %s\n" % API_HOST)
        api_url = "https://%s:%d" % (API_HOST, em.port)
        pam = EtcFile(SU_PAM, cleanup)
        pam.write("auth required pam_unix.so\n" + h.pam_line(module, conf) +
                  "account required pam_unix.so\n"
                  "session required pam_unix.so\n")

        def configure(api_url=None):
            shutil.rmtree(state, ignore_errors=True)
            h.write_private(conf, config(em, state, api_url=api_url))
            em.reset()
            return syslog.mark() if syslog else 0

        def logged(mark):
            if syslog is None:
                return "(no syslog collector)"
            return "\n".join(ln[2] for ln in syslog.wait_for(mark, "result=", 3.0))

        mark = configure()
        shell, text, notes = su_login(attacker, victim, password, em,
                                      answer="right", inspect=True)
        check("su -l: password and the right code, no attack: a shell as the victim",
              shell, text)
        seen = "\n".join(notes)
        check("su -l, at the code prompt: the helper's real, effective, saved "
              "and filesystem ids are all 0",
              "uids ['0', '0', '0', '0'] gids ['0', '0', '0', '0']" in seen, seen)
        check("su -l, at the code prompt: the helper's environment is empty "
              "(none of the caller's variables)",
              "environ b''" in seen and CALLER_MARK not in seen, seen)
        check("su -l, at the code prompt: the attacker cannot stop the helper "
              "(they can stop su itself)",
              re.search(r"kill -STOP from \S+: exit [1-9]", seen) is not None, seen)
        check("su -l, no attack: result=approved", syslog is None or
              "result=approved" in logged(mark), logged(mark))

        mark = configure()
        em.set_faults([], latency_ms=400)
        shell, text, notes = su_login(attacker, victim, password, em, attack="stop")
        em.set_faults([], latency_ms=0)
        check("su -l: the attacker can stop su from their own uid (the attack is real)",
              any(n.startswith("kill -STOP") and "exit 0" in n for n in notes), notes)
        check("su -l, wrong code, su stopped %.1f s (> timeout_ms) and continued: "
              "denied" % STOP_SECONDS, not shell, text + "\n" + "\n".join(notes))
        log = logged(mark)
        check("su -l, stopped: never allowed-unavailable",
              "allowed-unavailable" not in log and "allowed-unavailable" not in text,
              log)
        check("su -l, stopped: the pending answer was read (Wrong code)",
              re.search(WRONG_PROMPT, text) is not None, text)

        for n in (6, 7, 8):
            mark = configure(api_url=api_url)
            shell, text, _ = su_login(attacker, victim, password, em, prlimit=n)
            log = logged(mark)
            check("su -l under prlimit --nofile=%d, wrong code: never in (%s)"
                  % (n, outcome(log) or "no outcome line"),
                  not shell and "allowed-unavailable" not in log, text + "\n" + log)
        mark = configure(api_url=api_url)
        shell, text, _ = su_login(attacker, victim, password, em, answer="right")
        check("su -l, host name in api_url, no limit, right code: a shell (paired)",
              shell, text)
    finally:
        cleanup.run()


def main():
    h.require_root("needs root")
    if len(sys.argv) != 3 or sys.argv[1] not in ("pam", "su"):
        print("usage: test_hostile_caller.py pam|su MODULE_SO", file=sys.stderr)
        return 2
    module = os.path.abspath(sys.argv[2])
    started = time.monotonic()
    (pam_tests if sys.argv[1] == "pam" else su_tests)(module)
    print("runtime %.1f s" % (time.monotonic() - started))
    return h.summary()


if __name__ == "__main__":
    sys.exit(main())
