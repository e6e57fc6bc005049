#!/usr/bin/python3
"""The per-user send limit under concurrent logins: 20 pamtester processes
(each a process of its own, as sshd runs logins) authenticate the same user
at the same instant through the real module under pam_wrapper and
nss_wrapper, against the Verify emulator, with send_limit.count = 3.
Exactly 3 may start a verification (3 SMS in the emulator's outbox, 3
prompts, 3 sends recorded in the state file, read back with
"twilio-verify-state show"); the other 17 must be denied with
result=denied-send-limit, without a prompt and without an SMS.

The emulator reuses one verification (and code) for every send to the
same number while it is live, so only the first right code approves it;
the other two prompted logins then find it gone (denied-by-twilio). The
test counts SMS and results, not approvals.

Each pamtester runs in a mount namespace with a private tmpfs on /tmp,
behind a start barrier (ptv_harness.StartBarrier). Everything the logins
need (a copy of the module, configuration, CA, state directory) therefore
lives outside /tmp, under WORK_ROOT.

Usage: test_send_limit_race.py MODULE_SO STATE_TOOL [WORK_ROOT]
       (STATE_TOOL: the built twilio-verify-state; WORK_ROOT: default /var/tmp)
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from emulator_client import Emulator  # noqa: E402
import ptv_harness as h  # noqa: E402
from ptv_harness import check  # noqa: E402

PROCESSES = 20
COUNT = 3
USER = "racer"
PHONE = "+15550107777"
PROMPT = b"SMS code sent to "
LIMIT_MESSAGE = b"Too many codes were sent recently. Try again later."
DEADLINE_S = 60


def read(path):
    with open(path, "rb") as f:
        return f.read()


def recorded_sends(tool, state_dir, user):
    """The send times the state file holds for user (one per line), as
    twilio-verify-state shows them."""
    out = subprocess.run([tool, "show", user, state_dir], capture_output=True,
                         check=True)
    return out.stdout


def run_logins(pw, n, em):
    """Starts n logins, releases them together, answers every prompt with
    the number's latest code; returns the output of each."""
    barrier = h.StartBarrier(os.path.join(pw.work, "start.fifo"), "ptv-race")
    try:
        procs = []
        for i in range(n):
            path = os.path.join(pw.work, "login%02d.log" % i)
            procs.append({"proc": barrier.login(pw, USER, path), "path": path,
                          "answered": 0})
        deadline = time.monotonic() + DEADLINE_S
        barrier.wait(DEADLINE_S)
        barrier.release()
        running = list(procs)
        while running and time.monotonic() < deadline:
            for x in list(running):
                if x["proc"].poll() is not None:
                    running.remove(x)
                    continue
                if read(x["path"]).count(PROMPT) > x["answered"]:
                    code = em.last_code(PHONE)
                    if code is None:
                        continue
                    h.type_into(x["proc"], code)
                    x["answered"] += 1
            time.sleep(0.02)
        for x in running:
            x["proc"].kill()  # by pid; counted as a failure below
    finally:
        barrier.close()
    return [{"status": x["proc"].returncode, "text": read(x["path"]),
             "killed": x in running} for x in procs]


def main():
    h.require_root("the module accepts only a root-owned config file")
    tool = os.path.abspath(sys.argv[2])
    root = os.path.abspath(sys.argv[3] if len(sys.argv) > 3 else "/var/tmp")
    if root == "/tmp" or root.startswith("/tmp/"):
        print("FAIL the work root must be outside /tmp (the logins get a "
              "private /tmp)")
        return 1
    work = tempfile.mkdtemp(prefix="ptv-send-limit-race.", dir=root)
    em = Emulator(os.path.join(work, "emulator"))
    helper_dir = None
    try:
        module = os.path.join(work, "pam_twilio_verify.so")
        shutil.copyfile(os.path.abspath(sys.argv[1]), module)
        helper, helper_dir = h.safe_copy(h.helper_for(sys.argv[1]))
        em.start()
        state = os.path.join(work, "state")
        pw = h.PamWork(work, module, service="ptv-race", helper=helper,
                       users=[(USER, "Race User,,%s,," % PHONE, 2077)])
        h.write_private(pw.conf, h.module_config(
            em, state, 'phone_sources = [ "gecos" ];\nmax_attempts = 1;\n'
            'send_limit = { count = %d; window_s = 3600; };\n' % COUNT,
            connect_timeout_ms=10000, timeout_ms=20000))

        outs = run_logins(pw, PROCESSES, em)
        everything = b"\n----\n".join(o["text"] for o in outs).decode(
            "utf-8", "replace")
        sms = [m for m in em.outbox() if m["to"] == PHONE]
        prompted = [o for o in outs if PROMPT in o["text"]]
        limited = [o for o in outs if b"result=denied-send-limit" in o["text"]]
        check("no login hung", not any(o["killed"] for o in outs), everything)
        check("exactly %d SMS were sent" % COUNT, len(sms) == COUNT,
              "%d SMS: %s" % (len(sms), sms))
        check("exactly %d logins were asked for a code" % COUNT,
              len(prompted) == COUNT, everything)
        check("the other %d were denied by the send limit" % (PROCESSES - COUNT),
              len(limited) == PROCESSES - COUNT, everything)
        check("a login denied by the limit was never prompted",
              all(PROMPT not in o["text"] for o in limited), everything)
        check("a login denied by the limit tells the user why",
              all(LIMIT_MESSAGE in o["text"] for o in limited), everything)
        check("a login denied by the limit fails (pamtester exits non-zero)",
              all(o["status"] != 0 for o in limited), everything)
        check("the log line names the limit",
              all(b"send_limit.count = %d" % COUNT in o["text"] for o in limited),
              everything)
        check("no state error under contention",
              "denied-state-error" not in everything, everything)
        check("a prompted login with the right code got in",
              any(b"result=approved" in o["text"] and o["status"] == 0
                  for o in prompted), everything)
        try:
            recorded = recorded_sends(tool, state, USER).count(b"\n")
        except (OSError, subprocess.CalledProcessError) as e:
            recorded = "unreadable: %s %s" % (e, getattr(e, "stderr", b""))
        check("%d sends are recorded in the state file" % COUNT,
              recorded == COUNT, str(recorded))

        # Once the limit is used up, a later login sends nothing either.
        outs = run_logins(pw, 1, em)
        sms = [m for m in em.outbox() if m["to"] == PHONE]
        check("a later login is denied by the limit",
              b"result=denied-send-limit" in outs[0]["text"] and
              outs[0]["status"] != 0, outs[0]["text"].decode("utf-8", "replace"))
        check("and sends no SMS", len(sms) == COUNT, str(sms))
    finally:
        em.stop()
        shutil.rmtree(work, ignore_errors=True)
        if helper_dir:
            shutil.rmtree(helper_dir, ignore_errors=True)
    return h.summary()


if __name__ == "__main__":
    sys.exit(main())
