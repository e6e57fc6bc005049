#!/usr/bin/python3
"""Who is asked for a code, through the real module under pamtester
(pam_wrapper, nss_wrapper) against the Verify emulator: exempt_groups
(primary and supplementary membership, a group that does not resolve),
exempt_networks (IPv4, IPv6, IPv4-mapped, a host name, no PAM_RHOST),
grace_period_s (the same address, another one, after expiry, after a failed
login, without an address), and bad settings refused with file and line.

The phone number comes from a lookup command that writes down every call,
so that each exemption and grace login shows that it made no lookup; the
emulator's request log shows that it made no request.

Usage: test_access_policy.py MODULE_SO
"""

import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from emulator_client import Emulator  # noqa: E402
import ptv_harness as h  # noqa: E402
from ptv_harness import check, result_of  # noqa: E402

PHONE = "+15550104567"
USERS = (("ops1", "Ops One", 3101), ("ops2", "Ops Two", 3102),
         ("demo", "Demo User", 3103))
DEPLOY_GID = 5000


class Setup:
    """The emulator, the PAM work directory and the recording command."""

    def __init__(self, module, work):
        self.em = Emulator(os.path.join(work, "emulator"))
        self.pw = h.PamWork(work, module, users=USERS)
        # ops2's primary group is deploy; ops1 is a supplementary member.
        with open(self.pw.passwd) as f:
            rows = f.read().replace("ops2:x:3102:3102:", "ops2:x:3102:%d:" % DEPLOY_GID)
        with open(self.pw.passwd, "w") as f:
            f.write(rows)
        with open(self.pw.group, "a") as f:
            f.write("deploy:x:%d:ops1\n" % DEPLOY_GID)
        h.write_services(self.pw.pam_dir, {
            self.pw.service: h.pam_line(module, self.pw.conf),
            "twilio-debug": h.pam_line(module, self.pw.conf, extra=" debug")})
        self.bin = h.safe_dir("ptv-access.")
        self.calls_dir = os.path.join(self.bin, "calls")
        os.mkdir(self.calls_dir)
        os.chmod(self.calls_dir, 0o777)
        self.calls = os.path.join(self.calls_dir, "log")
        self.command = os.path.join(self.bin, "phone-for-user")
        with open(self.command, "w") as f:
            f.write('#!/bin/sh\necho "$1" >> %s\necho "%s"\n' % (self.calls, PHONE))
        os.chmod(self.command, 0o755)
        self.state = os.path.join(work, "state")

    def configure(self, body):
        h.write_private(self.pw.conf, h.module_config(
            self.em, self.state,
            'phone_sources = [ "command" ];\nlookup_command = "%s";\n'
            'lookup_command_user = "nobody";\n'
            'send_limit = { count = 100; window_s = 3600; };\n%s' % (self.command, body)))

    def lookups(self):
        if not os.path.exists(self.calls):
            return []
        with open(self.calls) as f:
            return f.read().split()

    def login(self, user, answers, rhost=None, service=None):
        """One login; returns (run, requests the emulator saw, lookups)."""
        self.em.reset()
        if os.path.exists(self.calls):
            os.unlink(self.calls)
        items = ["rhost=" + rhost] if rhost else []
        r = h.pamtester(self.pw, user, answers, self.em, PHONE, items=items,
                        service=service, log_name="pam.access_policy")
        return r, self.em.requests(), self.lookups()


def skipped_code(s, name, r, reqs, calls, result):
    """An exemption or grace: success, no prompt, no request, no lookup,
    and the one NOTICE line with its reason."""
    check(name + ": " + result + ", no prompt",
          r.status == 0 and result_of(r) == result and r.prompts == 0, r.output)
    check(name + ": no request to Twilio and no lookup",
          reqs == [] and calls == [], "%s %s" % (reqs, calls))


def asked_code(name, r, calls, user):
    check(name + ": the code is asked for and approves",
          r.status == 0 and result_of(r) == "approved" and r.prompts == 1 and
          calls == [user], r.output)


def test_groups(s):
    s.configure('exempt_groups = [ "nosuchgroup", "deploy" ];\n')
    r, reqs, calls = s.login("ops1", [], rhost="192.0.2.10")
    skipped_code(s, "supplementary member of deploy", r, reqs, calls,
                 "allowed-exempt-group")
    check("exempt group: the line names the group and the address",
          'exempt group \\"deploy\\"; rhost 192.0.2.10' in r.output or
          'exempt group "deploy"; rhost 192.0.2.10' in r.output, r.output)
    check("a group that does not resolve is a warning",
          "nosuchgroup" in r.output and "exempts no one" in r.output, r.output)
    r, reqs, calls = s.login("ops2", [])
    skipped_code(s, "deploy as primary group (no rhost)", r, reqs, calls,
                 "allowed-exempt-group")
    r, reqs, calls = s.login("demo", ["right"], rhost="192.0.2.10")
    asked_code("not a member", r, calls, "demo")
    s.configure('exempt_groups = [ "nosuchgroup" ];\n')
    r, reqs, calls = s.login("ops1", ["right"])
    asked_code("only a group that does not resolve: nobody exempt", r, calls, "ops1")


def test_networks(s):
    s.configure('exempt_networks = [ "10.0.0.0/8", "2001:db8::/32" ];\n')
    for rhost in ("10.1.2.3", "2001:db8:7::1", "::ffff:10.1.2.3"):
        r, reqs, calls = s.login("demo", [], rhost=rhost)
        skipped_code(s, "rhost " + rhost, r, reqs, calls, "allowed-exempt-network")
    for rhost in ("192.0.2.1", "2001:db9::1", "::ffff:11.1.2.3", None):
        r, reqs, calls = s.login("demo", ["right"], rhost=rhost)
        asked_code("rhost %s" % (rhost or "unset"), r, calls, "demo")
    r, reqs, calls = s.login("demo", ["right"], rhost="bastion.example.org",
                             service="twilio-debug")
    asked_code("a host name as rhost", r, calls, "demo")
    check("a host name: the debug log says why it does not match",
          "is not an IP address" in r.output, r.output)


def test_grace(s):
    s.configure("grace_period_s = 600;\n")
    r, reqs, calls = s.login("demo", ["right"], rhost="192.0.2.7")
    asked_code("grace: first login", r, calls, "demo")
    r, reqs, calls = s.login("demo", [], rhost="192.0.2.7")
    skipped_code(s, "grace: again from the same address", r, reqs, calls,
                 "allowed-grace")
    r, reqs, calls = s.login("demo", ["right"], rhost="192.0.2.8")
    asked_code("grace: from another address", r, calls, "demo")
    r, reqs, calls = s.login("ops1", ["right"], rhost="192.0.2.7")
    asked_code("grace: another account from the same address", r, calls, "ops1")
    r, reqs, calls = s.login("demo", ["wrong", "wrong", "wrong"], rhost="198.51.100.1")
    check("grace: a failed login", result_of(r) == "denied-wrong-code", r.output)
    r, reqs, calls = s.login("demo", ["right"], rhost="198.51.100.1")
    asked_code("grace: after a failed login", r, calls, "demo")
    for rhost, name in ((None, "without rhost"), ("bastion.example.org", "host name")):
        for n in (1, 2):
            r, reqs, calls = s.login("demo", ["right"], rhost=rhost)
            asked_code("grace: %s, login %d" % (name, n), r, calls, "demo")
    s.configure("grace_period_s = 1;\n")
    r, reqs, calls = s.login("demo", ["right"], rhost="192.0.2.9")
    asked_code("grace of 1 s: first login", r, calls, "demo")
    time.sleep(2.1)
    r, reqs, calls = s.login("demo", ["right"], rhost="192.0.2.9")
    asked_code("grace of 1 s: after expiry", r, calls, "demo")


def test_bad_settings(s):
    for body, line, message in (
            ('exempt_networks = [ "10.0.0.0/8",\n  "10.1.0.0/8" ];\n', 16,
             'exempt_networks: "10.1.0.0/8" has host bits set'),
            ('exempt_networks = [ "10.0.0.0/33" ];\n', 15,
             'exempt_networks: "10.0.0.0/33" has a bad prefix length'),
            ('exempt_networks = [ "office" ];\n', 15,
             'exempt_networks: "office" is not an IPv4 or IPv6 network'),
            ('exempt_groups = [ "dev ops" ];\n', 15,
             'exempt_groups: group "dev ops" must be printable ASCII'),
            ("grace_period_s = 86401;\n", 15, "grace_period_s:")):
        s.configure(body)
        r, reqs, calls = s.login("demo", [], rhost="10.1.2.3")
        where = "%s:%d: %s" % (s.pw.conf, line, message)
        check("refused with file and line: " + message,
              r.status != 0 and result_of(r) == "denied-config-error" and
              where in r.output.replace('\\"', '"') and reqs == [] and calls == [],
              r.output)


def main():
    h.require_root("the module accepts only a root-owned config file")
    module = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="ptv-access.")
    s = Setup(module, work)
    try:
        s.em.start()
        test_groups(s)
        test_networks(s)
        test_grace(s)
        test_bad_settings(s)
    finally:
        s.em.stop()
        shutil.rmtree(s.bin, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return h.summary()


if __name__ == "__main__":
    sys.exit(main())
