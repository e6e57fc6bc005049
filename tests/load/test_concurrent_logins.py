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

Each pamtester runs in a mount namespace of its own with a private tmpfs
on /tmp, behind a start barrier (ptv_harness.StartBarrier), so the 200
processes never share a pam_wrapper directory and start together.
Everything they need (module, configuration, CA, passwd) lives in the work
directory, outside /tmp.

Usage: test_concurrent_logins.py MODULE_SO WORK_DIR (logs go to WORK_DIR/logs)
Environment: PTV_LOAD_USERS (default 200), PTV_LOAD_DEADLINE_S (120),
PTV_TEST_SECRETS_DIR (where the run's token and numbers are recorded for
the secret scan).
"""

import os
import re
import secrets
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from emulator_client import Emulator  # noqa: E402
import ptv_harness as h  # noqa: E402
from ptv_harness import percentile  # noqa: E402

USERS = int(os.environ.get("PTV_LOAD_USERS", "200"))
DEADLINE_S = float(os.environ.get("PTV_LOAD_DEADLINE_S", "120"))
WRONG_EVERY = 5          # every 5th user answers a wrong code...
MAX_ATTEMPTS = 3         # ...at each of the module's 3 prompts
PROMPT = "SMS code sent to "


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
        self.answers = 0
        self.t_start = self.t_prompt = self.t_answer = self.t_end = None
        self.killed = False
        self.output = ""

    def prompts_seen(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read().count(PROMPT)


def make_config(em, pw, logins):
    users = ",\n".join('  ("%s", "%s")' % (l.user, l.phone) for l in logins)
    extra = ""
    # The per-user send limit and its state directory are set only when
    # the module knows them (its strings tell); each user logs in once.
    with open(pw.module, "rb") as f:
        known = f.read()
    if b"send_limit" in known:
        extra += "send_limit = { count = 100; window_s = 60; };\n"
    if b"state_dir" in known:
        state = os.path.join(pw.work, "state")
        os.makedirs(state, mode=0o700, exist_ok=True)
        extra += 'state_dir = "%s";\n' % state
    h.write_private(pw.conf, h.twilio_group(
        em, connect_timeout_ms=20000, timeout_ms=30000) + """max_attempts = %d;
phone_sources = [ "users" ];
users = (
%s
);
%s""" % (MAX_ATTEMPTS, users, extra))


def main():
    h.require_root("the module accepts only a root-owned config file, "
                   "and private /tmp mounts need root")
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
    # The module is loaded from the work directory, which the private
    # /tmp of each login cannot hide.
    mod_copy = os.path.join(work, "pam_twilio_verify.so")
    shutil.copyfile(module, mod_copy)
    # The helper must sit where only root can write, all the way up.
    helper, helper_dir = h.safe_copy(h.helper_for(module))

    logins = [Login(i + 1, logs) for i in range(USERS)]
    pw = h.PamWork(work, mod_copy, service="ptv-load", helper=helper,
                   users=[(l.user, "Load User,,,", l.uid) for l in logins])

    # Per-run credentials, recorded for the suite's secret scan.
    token = "load-token-" + secrets.token_hex(12)
    em = Emulator(os.path.join(work, "emulator"), auth_token=token)
    failures = []
    barrier = h.StartBarrier(os.path.join(work, "start.fifo"), "ptv-load")
    try:
        em.start()
        h.record_secrets("load.concurrent", tokens=[token],
                         numbers=[l.phone for l in logins])
        make_config(em, pw, logins)

        t_spawn = time.monotonic()
        for l in logins:
            l.proc = barrier.login(pw, l.user, l.log_path)
        spawned = time.monotonic() - t_spawn
        barrier.wait(60)
        barrier.release()
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
                    h.type_into(l.proc, wrong_code(code) if l.wrong else code)
                    l.answers += 1
                    l.t_answer = time.monotonic()
            slowest_poll = max(slowest_poll, time.monotonic() - t_poll)
            time.sleep(0.02)
        for l in running:
            l.killed = True
            l.proc.kill()
            l.proc.wait()
            l.t_end = time.monotonic()
        wall = time.monotonic() - t0

        outbox = em.outbox()
        requests = em.requests()
        stats = em.stats()
    finally:
        barrier.close()
        shutil.rmtree(helper_dir, ignore_errors=True)
        em.stop()

    h.record_secrets("load.concurrent", codes=[m["code"] for m in outbox],
                     append=True)

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
