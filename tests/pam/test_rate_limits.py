#!/usr/bin/python3
"""Verify's rate limits across a fleet, through the real module under
pamtester (pam_wrapper, nss_wrapper) against one Verify emulator service:
two module instances with their own configuration and state directory ("two
hosts") share the service's rate limits.

  - rate_limits.account with a bucket of max 3: the account's fourth send
    in the hour is refused on whichever host makes it (denied-rate-limited,
    PAM_AUTH_ERR, the user told why, the log naming the limit), not by the
    local send_limit (set to 100) nor by Twilio's five sends per number
    (60203); another account is unaffected; under failmode safe the refusal
    still denies; a resend refused by it keeps the login going;
  - rate_limits.client_ip with a bucket of max 3: different accounts from
    one address are refused at the fourth, another address is not, and a
    host name as PAM_RHOST sends no client key;
  - every create's RateLimits is a JSON object with only the declared
    unique names, holding no user name and no phone number.

Usage: test_rate_limits.py MODULE_SO
"""

import hashlib
import hmac
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from emulator_client import Emulator  # noqa: E402
import ptv_harness as h  # noqa: E402
from ptv_harness import check, result_of  # noqa: E402

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "gina", "hank"]
PHONES = {u: "+1555010%04d" % (i + 1) for i, u in enumerate(USERS)}
NAMES = ("pam_account", "pam_client_ip")
REFUSED = "Too many codes were requested for this account. Try again later."


class Fleet:
    """The emulator and two hosts, each a PamWork with its own state."""

    def __init__(self, module, work):
        self.em = Emulator(os.path.join(work, "emulator"))
        self.hosts = [h.PamWork(os.path.join(work, name), module, users=USERS)
                      for name in ("host-a", "host-b")]

    def configure(self, failmode="secure", client_ip=True):
        users = ", ".join('("%s", "%s")' % (u, PHONES[u]) for u in USERS)
        limits = ('rate_limits = {\n  account = { unique_name = "pam_account"; '
                  'buckets = ( { max = 3; interval_s = 3600; } ); };\n')
        if client_ip:
            limits += ('  client_ip = { unique_name = "pam_client_ip"; '
                       'buckets = ( { max = 3; interval_s = 3600; } ); };\n')
        for pw in self.hosts:
            h.write_private(pw.conf, h.module_config(
                self.em, os.path.join(pw.work, "state"),
                'users = ( %s );\nfailmode = "%s";\n'
                'send_limit = { count = 100; window_s = 3600; };\n%s};\n'
                % (users, failmode, limits)))

    def service_limits(self, **maxes):
        """A fresh emulator holding the named rate limits, one bucket each."""
        self.em.reset()
        for name, top in maxes.items():
            _, _, _, rl = self.em.call("POST", self.em.service_path("/RateLimits"),
                                       form={"UniqueName": name})
            self.em.call("POST", self.em.service_path(
                "/RateLimits/%s/Buckets" % rl["sid"]),
                form={"Max": str(top), "Interval": "3600"})

    def login(self, host, user, answers=("right",), rhost="198.51.100.9"):
        items = ["rhost=" + rhost] if rhost else []
        return h.pamtester(self.hosts[host], user, list(answers), self.em,
                           PHONES[user], items=items, log_name="pam.rate_limits")

    def creates(self):
        return [r for r in self.em.requests() if r["method"] == "POST" and
                r["path"].endswith("/Verifications")]

    def sent_to(self, user):
        return sum(1 for m in self.em.outbox() if m.get("to") == PHONES[user])


def approved(name, r):
    check(name + ": approved", r.status == 0 and result_of(r) == "approved", r.output)


def rate_limited(f, name, r, limit):
    check(name + ": denied-rate-limited, PAM_AUTH_ERR, no prompt",
          r.status != 0 and result_of(r) == "denied-rate-limited" and
          r.prompts == 0 and "Authentication failure" in r.output, r.output)
    check(name + ": the user is told, the log names the rate limit",
          REFUSED in r.output and 'rate limit "%s"' % limit in r.output.replace(
              '\\"', '"'), r.output)
    last = f.creates()[-1]
    check(name + ": Twilio's answer was the 429 of the rate limit (not 60203, "
          "not the send limit)",
          last["status"] == 429 and "denied-send-limit" not in r.output and
          "60203" not in r.output, str(last))


def test_account(f):
    f.configure()
    f.service_limits(pam_account=3, pam_client_ip=100)
    for i, host in enumerate((0, 1, 0)):
        approved("alice's send %d on host %s" % (i + 1, "ab"[host]),
                 f.login(host, "alice"))
    r = f.login(1, "alice")
    rate_limited(f, "alice's fourth send, on host b", r, "pam_account")
    check("alice's number got three codes (Twilio allows five per number)",
          f.sent_to("alice") == 3, str(f.em.outbox()))
    r = f.login(0, "alice")
    rate_limited(f, "alice's fifth send, on host a", r, "pam_account")
    approved("another account (bob) is unaffected", f.login(0, "bob"))
    # A resend refused by the limit keeps the login with the code sent.
    approved("bob's second login", f.login(1, "bob"))
    r = f.login(0, "bob", answers=("resend", "right"))
    approved("bob's resend refused by the rate limit: the login goes on", r)
    check("bob's refused resend: the prompt says why, the log names the limit",
          "Too many codes were requested for this account; use the code already "
          "sent." in r.output and 'pam_account' in r.output, r.output)


def test_safe(f):
    f.configure(failmode="safe")
    f.service_limits(pam_account=3, pam_client_ip=100)
    for i in range(3):
        approved("failmode safe, hank's send %d" % (i + 1), f.login(i % 2, "hank"))
    rate_limited(f, "failmode safe, hank's fourth send: still denied",
                 f.login(1, "hank"), "pam_account")


def test_client_ip(f):
    f.configure()
    f.service_limits(pam_account=100, pam_client_ip=3)
    for i, (host, user) in enumerate(((0, "carol"), (1, "dave"), (0, "erin"))):
        approved("send %d from 192.0.2.50 (%s)" % (i + 1, user),
                 f.login(host, user, rhost="192.0.2.50"))
    rate_limited(f, "a fourth account from 192.0.2.50, on host b",
                 f.login(1, "frank", rhost="192.0.2.50"), "pam_client_ip")
    rate_limited(f, "the same address written as ::ffff:192.0.2.50",
                 f.login(0, "gina", rhost="::ffff:192.0.2.50"), "pam_client_ip")
    approved("frank from another address", f.login(1, "frank", rhost="192.0.2.51"))
    approved("frank from a host name (no client key)",
             f.login(0, "frank", rhost="gw.example.com"))
    last = json.loads(f.creates()[-1]["form"]["RateLimits"])
    check("a host name as PAM_RHOST: only the account's key",
          list(last) == ["pam_account"], str(last))


def test_fields(f, accounts):
    forms = [c["form"] for c in f.creates()]
    check("every create carried RateLimits", forms and all(
        "RateLimits" in x for x in forms), str(forms))
    for x in forms:
        raw = x.get("RateLimits", "")
        try:
            obj = json.loads(raw)
        except ValueError:
            obj = None
        ok = (isinstance(obj, dict) and set(obj) <= set(NAMES) and
              all(isinstance(v, str) for v in obj.values()) and
              not any(u in raw for u in USERS) and
              not any(p.lstrip("+") in raw for p in PHONES.values()))
        if not ok:
            check("RateLimits %s: a JSON object of the declared names, no user "
                  "name or number" % raw, False)
            return
    check("every RateLimits: JSON with only the declared names, no user name "
          "or number (%d creates)" % len(forms), True)
    keys = {json.loads(x["RateLimits"])["pam_account"] for x in forms}
    want = {hmac.new(f.em.auth_token.encode(), u.encode(),
                     hashlib.sha256).hexdigest()[:32] for u in accounts}
    check("the account keys: HMAC-SHA-256 of the account name under the auth "
          "token, the same on both hosts (%s)" % ", ".join(accounts),
          keys == want, "%s != %s" % (keys, want))


def main():
    module = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="ptv-rate-limits.")
    f = Fleet(module, work)
    try:
        f.em.start()
        h.record_secrets("rate_limits", tokens=[f.em.auth_token],
                         numbers=list(PHONES.values()))
        test_account(f)
        test_fields(f, ["alice", "bob"])
        test_safe(f)
        test_client_ip(f)
        test_fields(f, ["carol", "dave", "erin", "frank", "gina"])
    finally:
        h.teardown((f.em,), (work,))
    return h.summary()


if __name__ == "__main__":
    sys.exit(main())
