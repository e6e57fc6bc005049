#!/usr/bin/python3
"""200 logins at once, each in a process of its own as sshd runs them:
pamtester under pam_wrapper and nss_wrapper loads the real module, which
talks HTTPS to the bundled Verify emulator. Every user has a number of its
own in the module's `users` list. The test reads each user's code from the
emulator's outbox by number and types it into that user's pamtester
through a stdin pipe once the prompt is on screen. Every 5th user types a
wrong code at all three prompts. Every outcome is checked (exit status,
pamtester's verdict, the module's `result=` log line, the verification
SID of the log line against the one the emulator sent to that number),
nothing may hang (one global deadline; stragglers are killed by pid and
fail the test), and p50/p99 latencies are reported.

pam_wrapper 1.1.4 keeps its per-process copy of the PAM services in
/tmp/pam.X with X one of 62 letters and digits, chosen with an lstat then
mkdir that two processes can race on: at most 62 instances can share one
/tmp. Each pamtester therefore runs in a mount namespace of its own with a
private tmpfs on /tmp (unshare), so the 200 processes never share a
pam_wrapper directory. Everything they need (module, configuration, CA,
passwd) lives in the work directory, outside /tmp.

Usage: test_concurrent_logins.py MODULE_SO WORK_DIR (logs go to WORK_DIR/logs)
Environment: PTV_LOAD_USERS (default 200), PTV_LOAD_DEADLINE_S (120),
PTV_TEST_SECRETS_DIR (where the run's token and numbers are recorded for
the secret scan).
"""

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from emulator_client import Emulator  # noqa: E402
import ptv_harness  # noqa: E402

USERS = int(os.environ.get("PTV_LOAD_USERS", "200"))
DEADLINE_S = float(os.environ.get("PTV_LOAD_DEADLINE_S", "120"))
WRONG_EVERY = 5          # every 5th user answers a wrong code...
MAX_ATTEMPTS = 3         # ...at each of the module's 3 prompts
PROMPT = "SMS code sent to "
PRELOAD = "libpam_wrapper.so:libnss_wrapper.so"
READY = "ptv-load: at the start barrier"


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def percentile(values, p):
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def masked(phone):
    return phone[:2] + "******" + phone[-4:]


def wrong_code(code):
    return code[:-1] + ("0" if code[-1] != "0" else "1")


class Login:
    def __init__(self, index, logs):
        self.index = index
        self.user = "load%03d" % index
        self.uid = 40000 + index
        self.phone = "+1555300%04d" % index
        self.wrong = index % WRONG_EVERY == WRONG_EVERY - 1
        self.log_path = os.path.join(logs, self.user + ".log")
        self.proc = None
        self.log = None
        self.answers = 0
        self.t_start = self.t_prompt = self.t_answer = self.t_end = None
        self.killed = False
        self.output = ""

    def ready(self):
        with open(self.log_path, "r", errors="replace") as f:
            return READY in f.read()

    def prompts_seen(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read().count(PROMPT)


def make_config(em, work, logins, module):
    users = ",\n".join('  ("%s", "%s")' % (l.user, l.phone) for l in logins)
    extra = ""
    # The per-user send limit and its state directory are set only when
    # the module knows them (its strings tell); each user logs in once.
    with open(module, "rb") as f:
        known = f.read()
    if b"send_limit" in known:
        extra += "send_limit = { count = 100; window_s = 60; };\n"
    if b"state_dir" in known:
        state = os.path.join(work, "state")
        os.makedirs(state, mode=0o700, exist_ok=True)
        extra += 'state_dir = "%s";\n' % state
    text = """twilio = {
  account_sid = "%s";
  auth_token = "%s";
  service_sid = "%s";
  api_url = "%s";
  ca_file = "%s";
  connect_timeout_ms = 20000;
  timeout_ms = 30000;
};
max_attempts = %d;
phone_sources = [ "users" ];
users = (
%s
);
%s""" % (em.account_sid, em.auth_token, em.service_sid, em.api_url,
         em.ca_file, MAX_ATTEMPTS, users, extra)
    conf = os.path.join(work, "ptv.conf")
    write_private(conf, text)
    return conf


def main():
    if os.geteuid() != 0:
        print("skipped: the module accepts only a root-owned config file, "
              "and private /tmp mounts need root")
        return 77
    module = os.path.abspath(sys.argv[1])
    logs = os.path.join(os.path.abspath(sys.argv[2]), "logs")
    shutil.rmtree(logs, ignore_errors=True)
    os.makedirs(logs)
    # What the logins open themselves (module, configuration, CA, passwd,
    # services, start barrier) must be outside /tmp, which each login's
    # namespace replaces; the logs are opened by this process and passed
    # down, so they stay in the build tree for the suite's secret scan.
    work = tempfile.mkdtemp(prefix="ptv-load.", dir="/var/tmp")
    try:
        return run(module, work, logs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(module, work, logs):
    os.makedirs(os.path.join(work, "pam.d"))
    # The module is loaded from the work directory, which the private
    # /tmp of each login cannot hide.
    mod_copy = os.path.join(work, "pam_twilio_verify.so")
    shutil.copyfile(module, mod_copy)
    # The helper must sit where only root can write, all the way up.
    helper, helper_dir = ptv_harness.safe_copy(ptv_harness.helper_for(module))

    logins = [Login(i + 1, logs) for i in range(USERS)]
    with open(os.path.join(work, "passwd"), "w") as f:
        for l in logins:
            f.write("%s:x:%d:%d:Load User,,,:/nonexistent:/bin/false\n"
                    % (l.user, l.uid, l.uid))
    with open(os.path.join(work, "group"), "w") as f:
        for l in logins:
            f.write("%s:x:%d:\n" % (l.user, l.uid))

    # Per-run credentials, recorded for the suite's secret scan.
    token = "load-token-" + secrets.token_hex(12)
    em = Emulator(os.path.join(work, "emulator"), auth_token=token)
    failures = []
    secrets_dir = os.environ.get("PTV_TEST_SECRETS_DIR")
    try:
        em.start()
        if secrets_dir:
            os.makedirs(secrets_dir, exist_ok=True)
            with open(os.path.join(secrets_dir, "load.concurrent.txt"),
                      "w") as f:
                f.write("token %s\n" % token)
                for l in logins:
                    f.write("number %s\n" % l.phone)
        conf = make_config(em, work, logins, mod_copy)
        with open(os.path.join(work, "pam.d", "ptv-load"), "w") as f:
            f.write(ptv_harness.pam_line(mod_copy, conf, helper))
        with open(os.path.join(work, "pam.d", "other"), "w") as f:
            f.write("auth required pam_deny.so\n")

        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        env.update({
            "PTV_PRELOAD": PRELOAD,
            "PAM_WRAPPER": "1",
            "PAM_WRAPPER_SERVICE_DIR": os.path.join(work, "pam.d"),
            "PAM_WRAPPER_DEBUGLEVEL": "2",
            "NSS_WRAPPER_PASSWD": os.path.join(work, "passwd"),
            "NSS_WRAPPER_GROUP": os.path.join(work, "group"),
        })
        # Private /tmp, then pamtester with the wrappers preloaded (only
        # pamtester: unshare, mount and sh run without them).
        # Each process then waits at a barrier (opening a FIFO blocks until
        # the test opens its other end), so all 200 start their login in
        # the same instant instead of trickling in while the others spawn.
        barrier = os.path.join(work, "start.fifo")
        if os.path.exists(barrier):
            os.unlink(barrier)
        os.mkfifo(barrier, 0o600)
        env["PTV_BARRIER"] = barrier
        script = ('mount -t tmpfs -o size=16m,mode=1777 ptv-load-tmp /tmp '
                  '&& echo "' + READY + '" && : < "$PTV_BARRIER" '
                  '&& LD_PRELOAD="$PTV_PRELOAD" exec pamtester -v ptv-load '
                  '"$1" authenticate')

        t_spawn = time.monotonic()
        for l in logins:
            l.log = open(l.log_path, "wb")
            l.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "--",
                 "/bin/sh", "-c", script, "sh", l.user],
                stdin=subprocess.PIPE, stdout=l.log, stderr=subprocess.STDOUT,
                env=env, close_fds=True)
        spawned = time.monotonic() - t_spawn
        # Wait until every process stands at the barrier (or died).
        waiting = set(logins)
        ready_deadline = time.monotonic() + 60
        while waiting and time.monotonic() < ready_deadline:
            for l in list(waiting):
                if l.proc.poll() is not None or l.ready():
                    waiting.discard(l)
            time.sleep(0.02)
        # Opening the FIFO read-write never blocks and releases them all;
        # it stays open so that no late opener can block.
        go = os.open(barrier, os.O_RDWR)
        t0 = time.monotonic()
        for l in logins:
            l.t_start = t0
        deadline = t0 + DEADLINE_S
        codes = {}
        running = set(logins)
        slowest_poll = 0.0
        while running and time.monotonic() < deadline:
            t_poll = time.monotonic()
            need_code = [l for l in running if l.phone not in codes]
            if need_code:
                for m in em.outbox():
                    codes.setdefault(m["to"], (m["code"], m["verification_sid"]))
            for l in list(running):
                if l.proc.poll() is not None:
                    l.t_end = time.monotonic()
                    running.discard(l)
                    continue
                if l.phone not in codes or l.answers >= MAX_ATTEMPTS:
                    continue
                seen = l.prompts_seen()
                if seen > l.answers:
                    if l.t_prompt is None:
                        l.t_prompt = time.monotonic()
                    code = codes[l.phone][0]
                    answer = wrong_code(code) if l.wrong else code
                    try:
                        l.proc.stdin.write((answer + "\n").encode())
                        l.proc.stdin.flush()
                    except BrokenPipeError:
                        pass
                    l.answers += 1
                    l.t_answer = time.monotonic()
            slowest_poll = max(slowest_poll, time.monotonic() - t_poll)
            time.sleep(0.02)
        for l in running:
            l.killed = True
            try:
                os.kill(l.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            l.proc.wait()
            l.t_end = time.monotonic()
        wall = time.monotonic() - t0
        os.close(go)

        outbox = em.outbox()
        requests = em.requests()
        stats = em.stats()
    finally:
        shutil.rmtree(helper_dir, ignore_errors=True)
        for l in logins:
            if l.proc is not None and l.proc.poll() is None:
                os.kill(l.proc.pid, signal.SIGKILL)
                l.proc.wait()
            if l.proc is not None and l.proc.stdin:
                try:
                    l.proc.stdin.close()
                except OSError:
                    pass
            if l.log:
                l.log.close()
        em.stop()

    if secrets_dir:
        with open(os.path.join(secrets_dir, "load.concurrent.txt"), "a") as f:
            for m in outbox:
                f.write("code %s\n" % m["code"])

    # ------------------------------------------------------------ checks
    sent_to = {}
    for m in outbox:
        sent_to.setdefault(m["to"], []).append(m)
    approved = denied = 0
    for l in logins:
        with open(l.log_path, "r", errors="replace") as f:
            out = f.read()
        problems = []
        if l.killed:
            problems.append("hung: killed at the deadline")
        status = l.proc.returncode
        results = re.findall(r"result=([a-z-]+)", out)
        sids = re.findall(r" sid=(VE[0-9a-f]{32}) ", out)
        if l.wrong:
            if status == 0:
                problems.append("exit status 0 for wrong codes")
            if "Authentication failure" not in out:
                problems.append("no 'Authentication failure'")
            if results != ["denied-wrong-code"]:
                problems.append("results %s" % results)
            if out.count(PROMPT) != MAX_ATTEMPTS:
                problems.append("%d prompts" % out.count(PROMPT))
        else:
            if status != 0:
                problems.append("exit status %s" % status)
            if "successfully authenticated" not in out:
                problems.append("no 'successfully authenticated'")
            if results != ["approved"]:
                problems.append("results %s" % results)
        if ("phone=%s " % masked(l.phone)) not in out:
            problems.append("log lacks phone=%s" % masked(l.phone))
        mine = sent_to.get(l.phone, [])
        if len(mine) != 1:
            problems.append("%d messages to %s" % (len(mine), l.phone))
        elif sids != [mine[0]["verification_sid"]]:
            problems.append("log sid %s, emulator sent %s"
                            % (sids, mine[0]["verification_sid"]))
        if token in out or l.phone in out:
            problems.append("token or full number in the output")
        if problems:
            failures.append("%s (%s): %s\n%s" % (
                l.user, "wrong" if l.wrong else "right", "; ".join(problems),
                out[-1500:]))
        elif l.wrong:
            denied += 1
        else:
            approved += 1

    kinds = {"create": 0, "check": 0, "cancel": 0, "other": 0}
    for r in requests:
        p = r["path"]
        if p.endswith("/Verifications"):
            kinds["create"] += 1
        elif p.endswith("/VerificationCheck"):
            kinds["check"] += 1
        elif "/Verifications/VE" in p and r.get("form", {}).get("Status") == "canceled":
            kinds["cancel"] += 1
        else:
            kinds["other"] += 1
    n_wrong = sum(1 for l in logins if l.wrong)
    n_right = USERS - n_wrong
    expected = {"create": USERS, "check": n_right + n_wrong * MAX_ATTEMPTS,
                "cancel": n_wrong, "other": 0}
    if kinds != expected:
        failures.append("emulator requests %s, expected %s" % (kinds, expected))
    if len(outbox) != USERS:
        failures.append("%d messages in the outbox, expected %d"
                        % (len(outbox), USERS))

    # ------------------------------------------------------------ report
    ok = [l for l in logins if not l.killed]
    to_prompt = [(l.t_prompt - l.t_start) * 1000 for l in ok if l.t_prompt]
    after_answer = [(l.t_end - l.t_answer) * 1000 for l in ok if l.t_answer]
    total = [(l.t_end - l.t_start) * 1000 for l in ok]
    module_ms = []
    for l in ok:
        with open(l.log_path, "r", errors="replace") as f:
            m = re.search(r"elapsed_ms=(\d+)", f.read())
        if m:
            module_ms.append(int(m.group(1)))

    def line(name, v):
        print("  %-40s min %6.0f  p50 %6.0f  p99 %6.0f  max %6.0f ms"
              % (name, min(v) if v else float("nan"), percentile(v, 50),
                 percentile(v, 99), max(v) if v else float("nan")))

    print("%d concurrent logins (%d right code, %d wrong code x%d); "
          "spawned in %.2f s, released together, all done %.2f s later"
          % (USERS, n_right, n_wrong, MAX_ATTEMPTS, spawned, wall))
    line("release to code prompt (send)", to_prompt)
    line("last answer to exit (check, cancel)", after_answer)
    line("release to exit (whole login)", total)
    line("module elapsed_ms (log line)", module_ms)
    print("  the test sees prompts and codes within one polling round "
          "(slowest round %.0f ms, plus 20 ms)" % (slowest_poll * 1000))
    cpu = os.times()
    print("  CPU of the test's children (pamtester, module, emulator): "
          "%.1f s user, %.1f s system on %d cores"
          % (cpu.children_user, cpu.children_system, os.cpu_count()))
    print("  emulator: %s; requests %s" % (stats, kinds))
    print("  outcomes: %d approved, %d denied-wrong-code, %d failed"
          % (approved, denied, len(failures)))
    for f in failures[:10]:
        print("FAIL", f)
    if len(failures) > 10:
        print("... and %d more failures" % (len(failures) - 10))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
