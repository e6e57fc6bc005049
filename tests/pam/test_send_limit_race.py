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

pam_wrapper keeps a per-process copy of the PAM services under /tmp in a
directory name that concurrent instances can race for, so each pamtester
runs in a mount namespace with a private tmpfs on /tmp (unshare).
Everything the logins need (a copy of the module, configuration, CA,
state directory) therefore lives outside /tmp, under WORK_ROOT.

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
import ptv_harness  # noqa: E402

PROCESSES = 20
COUNT = 3
USER = "racer"
PHONE = "+15550107777"
PROMPT = b"SMS code sent to "
READY = b"ptv-race: at the barrier"
LIMIT_MESSAGE = b"Too many codes were sent recently. Try again later."
DEADLINE_S = 60
results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print("%s %s%s" % ("PASS" if ok else "FAIL", name,
                       "" if ok else ":\n" + detail), flush=True)


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def recorded_sends(tool, state_dir, user):
    """The send times the state file holds for user (one per line), as
    twilio-verify-state shows them."""
    out = subprocess.run([tool, "show", user, state_dir], capture_output=True,
                         check=True)
    return out.stdout


def run_logins(work, n, em):
    """Starts n logins, releases them together, answers every prompt with
    the number's latest code; returns the output of each."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.update({
        "PTV_PRELOAD": ":".join(filter(None, [
            os.environ.get("PTV_ASAN_RUNTIME"),
            "libpam_wrapper.so", "libnss_wrapper.so"])),
        "PAM_WRAPPER": "1",
        "PAM_WRAPPER_SERVICE_DIR": os.path.join(work, "pam.d"),
        "PAM_WRAPPER_DEBUGLEVEL": "2",
        "NSS_WRAPPER_PASSWD": os.path.join(work, "passwd"),
        "NSS_WRAPPER_GROUP": os.path.join(work, "group"),
    })
    barrier = os.path.join(work, "start.fifo")
    if os.path.exists(barrier):
        os.unlink(barrier)
    os.mkfifo(barrier, 0o600)
    env["PTV_BARRIER"] = barrier
    script = ('mount -t tmpfs -o size=16m,mode=1777 ptv-race-tmp /tmp '
              '&& echo "' + READY.decode() + '" && : < "$PTV_BARRIER" '
              '&& LD_PRELOAD="$PTV_PRELOAD" exec pamtester -v ptv-race '
              '"$1" authenticate')
    procs = []
    for i in range(n):
        log_path = os.path.join(work, "login%02d.log" % i)
        log = open(log_path, "wb")
        p = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--",
             "/bin/sh", "-c", script, "sh", USER],
            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
            env=env, close_fds=True)
        procs.append({"proc": p, "log": log, "path": log_path, "answered": 0})
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if all(x["proc"].poll() is not None or READY in read(x["path"])
               for x in procs):
            break
        time.sleep(0.02)
    go = os.open(barrier, os.O_RDWR)  # releases every waiting process
    try:
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
                    try:
                        x["proc"].stdin.write((code + "\n").encode())
                        x["proc"].stdin.flush()
                    except BrokenPipeError:
                        pass
                    x["answered"] += 1
            time.sleep(0.02)
        for x in running:
            x["proc"].kill()  # by pid; counted as a failure below
    finally:
        os.close(go)
    outs = []
    for x in procs:
        x["proc"].wait()
        x["log"].close()
        outs.append({"status": x["proc"].returncode,
                     "text": read(x["path"]),
                     "killed": x in running})
    return outs


def main():
    if os.geteuid() != 0:
        print("skipped: the module accepts only a root-owned config file")
        return 77
    tool = os.path.abspath(sys.argv[2])
    root = os.path.abspath(sys.argv[3] if len(sys.argv) > 3 else "/var/tmp")
    if root == "/tmp" or root.startswith("/tmp/"):
        print("FAIL the work root must be outside /tmp (the logins get a "
              "private /tmp)")
        return 1
    work = tempfile.mkdtemp(prefix="ptv-send-limit-race.", dir=root)
    em = Emulator(os.path.join(work, "emulator"))
    try:
        module = os.path.join(work, "pam_twilio_verify.so")
        shutil.copyfile(os.path.abspath(sys.argv[1]), module)
        helper, helper_dir = ptv_harness.safe_copy(
            ptv_harness.helper_for(sys.argv[1]))
        em.start()
        state = os.path.join(work, "state")
        os.makedirs(os.path.join(work, "pam.d"))
        write_private(os.path.join(work, "ptv.conf"), """twilio = {
  account_sid = "%s";
  auth_token = "%s";
  service_sid = "%s";
  api_url = "%s";
  ca_file = "%s";
  connect_timeout_ms = 10000;
  timeout_ms = 20000;
};
phone_sources = [ "gecos" ];
max_attempts = 1;
send_limit = { count = %d; window_s = 3600; };
state_dir = "%s";
""" % (em.account_sid, em.auth_token, em.service_sid, em.api_url, em.ca_file,
            COUNT, state))
        with open(os.path.join(work, "pam.d", "ptv-race"), "w") as f:
            f.write(ptv_harness.pam_line(module, os.path.join(work, "ptv.conf"),
                                         helper))
        with open(os.path.join(work, "pam.d", "other"), "w") as f:
            f.write("auth required pam_deny.so\n")
        with open(os.path.join(work, "passwd"), "w") as f:
            f.write("%s:x:2077:2077:Race User,,%s,,:/nonexistent:/bin/false\n"
                    % (USER, PHONE))
        with open(os.path.join(work, "group"), "w") as f:
            f.write("%s:x:2077:\n" % USER)

        outs = run_logins(work, PROCESSES, em)
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
        outs = run_logins(work, 1, em)
        sms = [m for m in em.outbox() if m["to"] == PHONE]
        check("a later login is denied by the limit",
              b"result=denied-send-limit" in outs[0]["text"] and
              outs[0]["status"] != 0, outs[0]["text"].decode("utf-8", "replace"))
        check("and sends no SMS", len(sms) == COUNT, str(sms))
    finally:
        em.stop()
        shutil.rmtree(work, ignore_errors=True)
        if "helper_dir" in locals():
            shutil.rmtree(helper_dir, ignore_errors=True)
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 0 if results["failed"] == 0 and results["passed"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
