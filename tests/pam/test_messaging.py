#!/usr/bin/python3
"""The Messaging backend (backend = "messaging") through the real module
under pamtester (pam_wrapper, nss_wrapper) against the emulator's
Programmable Messaging API over HTTPS: the helper makes the code, sends it
with POST /2010-04-01/Accounts/{AccountSid}/Messages.json and checks the
typed code itself.

  - the right code, a wrong one then the right one, only wrong ones, a code
    typed after code_ttl_s (60 s, the shortest), resend (the same code in a
    second message), call (not offered);
  - Twilio's refusals: 20003, 21211, 21408, 21610, 21614 (denied-by-twilio,
    the user told, Twilio's code in the log), 21606, 21659 (configuration
    errors), 429 (denied under failmode safe too);
  - an outage (503, connection refused) under failmode secure and safe;
  - a body that does not fit one SMS: a configuration error with file and
    line, and nothing sent;
  - every request checked against Twilio's OpenAPI document for Messages;
    the codes and the token recorded for the suite's scan for secrets.

Usage: test_messaging.py MODULE_SO OPENAPI_JSON
"""

import json
import os
import re
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from emulator_client import Emulator  # noqa: E402
import ptv_harness as h  # noqa: E402
import ptv_openapi  # noqa: E402
from ptv_harness import check, result_of  # noqa: E402

PHONE = "+15550104567"
FROM = "+15550100001"
FIRST = "SMS code sent to +1******4567 (or type resend): "
UNDELIVERABLE = ("A code cannot be sent to your phone number. Contact your "
                 "administrator.")
# The code first: the emulator takes the first run of 6 to 10 digits of
# the body for the code, and a host name may hold digits.
BODY = "%c is your login code for %h"
LOG = "pam.messaging"


class Suite:
    def __init__(self, module, spec, work):
        self.spec, self.work = spec, work
        self.em = Emulator(os.path.join(work, "emulator"))
        self.pw = h.PamWork(work, module,
                            users=(("demo", "Demo User,,+1 555 010 4567,,"),))
        self.codes = set()
        self.runs = 0

    def configure(self, messaging=None, extra="", token=None):
        """backend = "messaging" with the messaging group's settings (the
        defaults here, updated by `messaging`), a state directory of its
        own, and extra root settings."""
        em = self.em
        settings = dict([("from", FROM), ("api_url", em.api_url), ("body", BODY)])
        settings.update(messaging or {})
        twilio = h.group("twilio", [
            ("account_sid", em.account_sid),
            ("auth_token", token or em.auth_token),
            ("ca_file", em.ca_file), ("connect_timeout_ms", 1000),
            ("timeout_ms", 2000)])
        self.runs += 1
        h.write_private(self.pw.conf, twilio +
                        'state_dir = "%s";\n' % os.path.join(self.work, "state-%d" % self.runs) +
                        'phone_sources = [ "gecos" ];\nbackend = "messaging";\n' +
                        h.group("messaging", sorted(settings.items())) + extra)

    def login(self, answers, faults=(), **config):
        self.configure(**config)
        self.em.reset()
        if faults:
            self.em.set_faults(list(faults))
        r = h.pamtester(self.pw, "demo", answers, self.em, PHONE, log_name=LOG)
        self.collect()
        return r

    def collect(self):
        for m in self.em.outbox():
            if m.get("code"):
                self.codes.add(m["code"])

    def messages(self):
        return [r for r in self.em.requests()
                if r["method"] == "POST" and r["path"].endswith("/Messages.json")]

    def contract(self, name):
        problems = []
        for r in self.em.requests():
            problems += ptv_openapi.openapi_problems(
                self.spec, r, auth_users={self.em.account_sid})
            if not r["path"].startswith("/2010-04-01/"):
                problems.append("not a Messages request: %s" % r["path"])
        check(name + ": requests follow the Messages OpenAPI document",
              not problems, "; ".join(problems))


def approved(name, r):
    check(name + ": approved", r.status == 0 and result_of(r) == "approved", str(r))


def test_codes(s):
    r = s.login(["right"])
    approved("right code", r)
    sent = s.messages()
    check("right code: one message, no request to Verify",
          len(sent) == 1 and len(s.em.requests()) == 1, str(s.em.requests()))
    form = sent[0]["form"] if sent else {}
    box = s.em.outbox()
    check("right code: To, Body with the code, From, ValidityPeriod",
          form.get("To") == PHONE and form.get("From") == FROM and
          form.get("ValidityPeriod") == "300" and set(form) ==
          {"To", "Body", "From", "ValidityPeriod"} and len(box) == 1 and
          re.fullmatch(r"[0-9]{6} is your login code for [^ ]+", form.get("Body", "")),
          str(sent))
    check("right code: the prompt offers resend only", FIRST in r.output, r.output)
    check("right code: the code is not in the log",
          not box or box[0]["code"] not in r.output, r.output)
    s.contract("right code")

    r = s.login(["wrong", "right"])
    approved("wrong then right", r)
    check("wrong then right: two attempts, one message",
          "attempts=2" in r.output and len(s.messages()) == 1 and
          "Wrong code; 2 attempts left." in r.output, r.output)

    r = s.login(["wrong", "wrong", "wrong"])
    check("all wrong: denied-wrong-code after three prompts, one message",
          r.status != 0 and result_of(r) == "denied-wrong-code" and
          r.prompts == 3 and len(s.messages()) == 1, str(r))

    r = s.login(["resend", "call", "right"])
    approved("resend", r)
    box = s.em.outbox()
    check("resend: two messages, the same code in both",
          len(box) == 2 and box[0]["code"] == box[1]["code"] and
          box[0]["body"] == box[1]["body"], str(box))
    check("resend: the prompt says so; call is not a code and sends nothing",
          "Code sent again." in r.output and
          "Codes are 4 to 10 digits; 2 attempts left." in r.output, r.output)
    s.contract("resend")

    r = s.login(["right"], messaging={"from": None,
                                     "messaging_service_sid": s.em.messaging_service_sid,
                                     "code_length": 8, "code_ttl_s": 120})
    approved("messaging service, 8 digits", r)
    form = s.messages()[0]["form"] if s.messages() else {}
    check("messaging service: MessagingServiceSid, no From, ValidityPeriod 120, "
          "8 digits", form.get("MessagingServiceSid") == s.em.messaging_service_sid
          and "From" not in form and form.get("ValidityPeriod") == "120" and
          re.match(r"^[0-9]{8} ", form.get("Body", "")), str(form))
    s.contract("messaging service")


def test_expired(s):
    """The right code typed after code_ttl_s (60 s, the shortest)."""
    import pexpect
    s.configure(messaging={"code_ttl_s": 60})
    s.em.reset()
    child = pexpect.spawn("pamtester", ["-v", s.pw.service, "demo", "authenticate"],
                          env=s.pw.env(), encoding="utf-8", timeout=90)
    out = ""
    try:
        child.expect(re.escape(FIRST))
        out += child.before + child.after
        time.sleep(61)
        child.sendline(s.em.last_code(PHONE) or "")
        child.expect(pexpect.EOF)
        out += child.before
    except pexpect.ExceptionPexpect as e:
        out += "\n[%s] %s" % (type(e).__name__, child.before)
    finally:
        child.close(force=True)
    s.collect()
    with open(os.path.join(os.environ.get("PTV_TEST_LOG_DIR", s.work), LOG + ".log"),
              "a") as f:
        f.write(out + "\n")
    check("expired: the right code after code_ttl_s is denied, the user told",
          "result=denied-by-twilio" in out and
          "The code has expired or was already used." in out, out)


def fault(status, code):
    return {"kind": "twilio_error", "http_status": status, "code": code,
            "match": "/Messages"}


def test_refusals(s):
    for code in (21211, 21408, 21610, 21614):
        r = s.login(["right"], faults=[fault(400, code)])
        check("%d: denied-by-twilio, the user told, the code logged" % code,
              r.status != 0 and result_of(r) == "denied-by-twilio" and
              r.prompts == 0 and UNDELIVERABLE in r.output and
              str(code) in r.output, str(r))
    r = s.login(["right"], faults=[fault(400, 21659)])
    check("21659: denied-config-error", result_of(r) == "denied-config-error" and
          "21659" in r.output and r.prompts == 0, str(r))
    r = s.login(["right"], messaging={"from": "+15550100999"})  # not owned
    check("21606 (a From the account does not own): denied-config-error",
          result_of(r) == "denied-config-error" and "21606" in r.output, str(r))
    r = s.login(["right"], token="0" * 32)
    check("20003 (a wrong token): denied-config-error",
          result_of(r) == "denied-config-error" and "20003" in r.output, str(r))
    for mode in ("secure", "safe"):
        r = s.login(["right"], faults=[fault(429, 20429)],
                    extra='failmode = "%s";\n' % mode)
        check("429 under failmode %s: denied" % mode,
              r.status != 0 and result_of(r) == "denied-unavailable" and
              r.prompts == 0, str(r))


def test_outage(s):
    for mode, want in (("secure", "denied-unavailable"), ("safe", "allowed-unavailable")):
        r = s.login(["right"], faults=[{"kind": "status", "http_status": 503,
                                        "match": "/Messages"}],
                    extra='failmode = "%s";\n' % mode)
        check("503 under failmode %s: %s" % (mode, want), result_of(r) == want and
              r.prompts == 0 and (r.status == 0) == (mode == "safe"), str(r))
        s.em.refuse(True)
        try:
            r = s.login(["right"], extra='failmode = "%s";\n' % mode)
        finally:
            s.em.refuse(False)
        check("connection refused under failmode %s: %s" % (mode, want),
              result_of(r) == want and r.prompts == 0, str(r))


def test_body_too_long(s):
    r = s.login(["right"], messaging={"body": "x" * 91 + "%h%c"})
    check("a body that does not fit: denied-config-error naming file and line",
          result_of(r) == "denied-config-error" and
          re.search(r"ptv\.conf:[0-9]+: messaging\.body: is 161 characters", r.output)
          is not None, str(r))
    check("a body that does not fit: nothing sent", not s.em.requests(),
          str(s.em.requests()))


def main():
    h.require_root("the module accepts only a root-owned config file")
    module, openapi = os.path.abspath(sys.argv[1]), sys.argv[2]
    with open(openapi) as f:
        spec = json.load(f)
    work = tempfile.mkdtemp(prefix="ptv-messaging.")
    s = Suite(module, spec, work)
    try:
        s.em.start()
        test_codes(s)
        test_refusals(s)
        test_outage(s)
        test_body_too_long(s)
        if os.environ.get("PTV_SKIP_EXPIRY"):
            h.skip("expired: the right code after code_ttl_s is denied",
                   "the sanitizer pass leaves the 61 s wait to the normal build")
        else:
            test_expired(s)
    finally:
        h.record_secrets("pam.messaging", tokens=[s.em.auth_token],
                         numbers=[PHONE], codes=sorted(s.codes))
        h.teardown([s.em], [work])
    return h.summary()


if __name__ == "__main__":
    sys.exit(main())
