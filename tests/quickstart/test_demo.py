#!/usr/bin/python3
"""Runs the README's main-job command (scripts/demo) the way a person does:
reads the "SMS" the emulator prints, types the code at the prompt, and
checks the login succeeds; then types wrong codes and checks it fails.
Then once more with --backend messaging: the helper makes the code and
sends it through the emulator's Messages resource.

Usage: test_demo.py SOURCE_DIR BUILD_DIR
"""

import os
import re
import sys

import pexpect

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from ptv_harness import check, require_root, summary  # noqa: E402


# The "SMS" the emulator prints, per backend.
SMS = {
    "verify": r"Your verification code is: (\d+)",
    "messaging": r"\[SMS from \+15550100001 to \+15550104567\] "
                 r"Your login code for \S+ is (\d+)",
}


def run_demo(source, build, answers, backend=None):
    env = dict(os.environ, PTV_DEMO_NO_BUILD="1", PTV_BUILD_DIR=build)
    args = ["--backend", backend] if backend else []
    child = pexpect.spawn(os.path.join(source, "scripts", "demo"), args,
                          env=env, cwd=source, encoding="utf-8", timeout=30)
    out = []
    try:
        child.expect(SMS[backend or "verify"])
        code = child.match.group(1)
        out.append(child.before + child.after)
        for answer in answers:
            child.expect(r"SMS code sent to \+1\*\*\*\*\*\*4567(?: \(or type resend(?:, call)?\))?: ")
            out.append(child.before + child.after)
            child.sendline(code if answer == "right" else
                           ("000000" if code != "000000" else "000001"))
        child.expect(pexpect.EOF)
        out.append(child.before)
    except pexpect.ExceptionPexpect as e:
        out.append("\n[%s]\n%s" % (type(e).__name__, child.before))
    finally:
        child.close(force=True)
    return child.exitstatus, "".join(out)


def main():
    require_root("the demo writes a root-owned config file")
    source, build = sys.argv[1], sys.argv[2]
    status, out = run_demo(source, build, ["right"])
    check("demo: right code is accepted", status == 0 and
          "successfully authenticated" in out, out)
    check("demo: the emulator's log shows create and check",
          re.search(r"POST /v2/Services/VA\w+/Verifications 201", out) and
          re.search(r"POST /v2/Services/VA\w+/VerificationCheck 200", out),
          out)
    check("demo: it ends with twilio-verify-admin status demo, one send used",
          re.search(r"twilio-verify-admin status demo\)?:", out) and
          re.search(r"send_limit: 1 of \d+ sends used", out), out)
    status, out = run_demo(source, build, ["wrong", "wrong", "wrong"])
    check("demo: wrong codes are refused", status not in (0, None) and
          "Authentication failure" in out and "Wrong code" in out, out)
    status, out = run_demo(source, build, ["right"], backend="messaging")
    check("demo --backend messaging: right code is accepted", status == 0 and
          "successfully authenticated" in out, out)
    check("demo --backend messaging: the emulator's log shows the message sent",
          re.search(r"POST /2010-04-01/Accounts/AC\w+/Messages\.json 201", out)
          and "/v2/Services/" not in out, out)
    leftovers = [d for d in os.listdir("/tmp") if d.startswith("ptv-demo.")]
    check("demo: its temporary directory is removed", not leftovers,
          str(leftovers))
    return summary()


if __name__ == "__main__":
    sys.exit(main())
