#!/usr/bin/python3
"""twilio-verify-admin against the bundled Verify emulator and a real slapd:

  - check: a good setup passes with no verification started (the
    emulator's request log has the Service fetch and no POST); a wrong
    token, a wrong service SID, an untrusted CA, a dead api_url, a bad LDAP
    bind, an unsafe lookup command, an unsafe helper and a configuration
    the module refuses each fail, naming the setting to fix;
  - lookup: the source, the masked number, the exemption and the send
    count, with nothing sent;
  - test: one real login with the code typed at the prompt (pexpect), a
    wrong code denied, and no send without confirmation;
  - status and reset: the sends and grace entries of a user, and clearing
    them;
  - rate-limits: --apply creates exactly the declared rate limits and
    buckets, a second run changes nothing, a changed bucket is updated,
    only --prune deletes; check fails while they differ;
  - root only (exit 3 as nobody), usage errors (exit 2), and no secret or
    full number in any output.

Usage: test_admin.py ADMIN MODULE_SO   (PTV_HELPER: the helper to use)
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, os.path.join(HERE, "..", "ldap"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from emulator_client import Emulator  # noqa: E402
from slapd_server import SlapdServer  # noqa: E402
import ptv_harness as h  # noqa: E402
from ptv_harness import check  # noqa: E402

ALICE = "+15550100001"     # the users list
ERIN = "+15550100005"      # the directory ("+1 (555) 010-0005")
CMDUSER = "+15550100042"   # the lookup command
PROMPT = r"SMS code sent to \+1\*+[0-9]{4}(?: \(or type resend, call\))?: "

LOOKUP = """#!/bin/sh
case "$1" in cmduser) echo "%s" ;; esac
exit 0
""" % CMDUSER


class Setup:
    """The files of one run: accounts (nss_wrapper), configuration, PAM
    directory, lookup commands; and the admin tool run against them."""

    def __init__(self, work, admin, module, em, directory, cmd_dir):
        self.work, self.admin, self.module = work, admin, module
        self.em, self.directory = em, directory
        self.conf = os.path.join(work, "ptv.conf")
        self.state = os.path.join(work, "state")
        self.pam_dir = os.path.join(work, "pam.d")
        self.helper = os.environ.get("PTV_HELPER") or h.helper_for(module)
        self.passwd = os.path.join(work, "passwd")
        self.group = os.path.join(work, "group")
        h.write_accounts(self.passwd, self.group, [
            ("alice", 3000, "Alice"), ("erin", 3001, "Erin"),
            ("carol", 3002, "Carol"), ("cmduser", 3003, "Cmd")], nobody=True)
        with open(self.group, "a") as g:
            g.write("admins:x:4000:carol\n")
        self.lookup = os.path.join(cmd_dir, "phone-lookup")
        h.write_file(self.lookup, LOOKUP, 0o755)
        unsafe_dir = os.path.join(cmd_dir, "open")
        os.mkdir(unsafe_dir)
        os.chmod(unsafe_dir, 0o777)
        self.unsafe_lookup = os.path.join(unsafe_dir, "phone-lookup")
        h.write_file(self.unsafe_lookup, LOOKUP, 0o755)
        self.unsafe_helper = os.path.join(unsafe_dir, "twilio-verify-helper")
        shutil.copy2(self.helper, self.unsafe_helper)
        self.outputs = []

    def configure(self, twilio=None, ldap=None, lookup=None, extra="", mode=0o600):
        """The good setup, with any part replaced."""
        d = self.directory
        ldap = ldap or {}
        body = ('phone_sources = [ "users", "ldap", "command" ];\n'
                'users = ( ("alice", "%s") );\n'
                'services = [ "sshd" ];\nexempt_groups = [ "admins" ];\n'
                'lookup_command = "%s";\nlookup_command_user = "nobody";\n'
                % (ALICE, lookup or self.lookup) + h.group("ldap", [
                    ("uri", d.ldap_uri), ("base", d.people_base),
                    ("ca_file", d.ca_file), ("timeout_ms", 3000),
                    ("bind_dn", d.bind_dn),
                    ("bind_password", ldap.get("bind_password", d.bind_pw))])
                + extra)
        h.write_file(self.conf, h.module_config(self.em, self.state, body,
                                                **(twilio or {})), mode)

    def write_pam(self, helper=None):
        line = h.pam_line(self.module, self.conf, helper or self.helper)
        h.write_services(self.pam_dir, {
            "common-auth": "auth required pam_unix.so\n" + line,
            "sshd": "# sshd\n@include common-auth\naccount required pam_unix.so\n",
            "sudo": "auth include common-auth\n",
            "cron": "account required pam_unix.so\n",
        })

    def env(self):
        env = dict(os.environ)
        env.update({"LD_PRELOAD": ":".join(filter(None, [
            os.environ.get("PTV_ASAN_RUNTIME"), "libnss_wrapper.so"])),
            "NSS_WRAPPER_PASSWD": self.passwd, "NSS_WRAPPER_GROUP": self.group})
        return env

    def run(self, *args, prefix=(), conf=True):
        argv = list(prefix) + [self.admin] + list(args)
        if conf:
            argv += ["--conf", self.conf]
        r = subprocess.run(argv, capture_output=True, text=True, env=self.env(),
                           timeout=60)
        self.outputs.append(r.stdout + r.stderr)
        r.out = r.stdout + r.stderr
        return r

    def check_cmd(self, *extra):
        return self.run("check", "--pam-dir", self.pam_dir, *extra)


def posts(em):
    return [r for r in em.requests() if r["method"] == "POST"]


def check_good(s, em):
    s.configure()
    s.write_pam()
    em.reset()
    r = s.check_cmd("--user", "cmduser")
    check("check, good setup: exit 0", r.returncode == 0, r.out)
    check("check, good setup: every line ok, none FAIL",
          "FAIL" not in r.out and "every check passed" in r.out, r.out)
    check("check: shows the service's friendly_name and code_length",
          '"%s", code_length %d' % (em.friendly_name, em.code_length) in r.out, r.out)
    gets = [q for q in em.requests() if q["method"] == "GET"]
    check("check: one GET of the Service, and no POST (no verification)",
          len(gets) == 1 and gets[0]["path"] == "/v2/Services/" + em.service_sid
          and posts(em) == [] and em.outbox() == [], em.requests())
    check("check: the directory connected, bound and found its base",
          "phone source ldap:" in r.out and "bound as" in r.out and
          "found" in r.out, r.out)
    check("check: the lookup command is safe and ran for --user",
          "passes the safety checks" in r.out and
          "phone source command for user cmduser: +1******0042" in r.out, r.out)
    check("check: sshd reaches the module through common-auth and asks",
          re.search(r"service sshd reaches the module through common-auth; it asks",
                    r.out), r.out)
    check("check: sudo reaches it too, and services leaves it out",
          re.search(r"service sudo reaches the module through common-auth; "
                    r"services leaves it out", r.out), r.out)
    check("check: cron (no module) and common-auth (a part) are no service",
          "service cron" not in r.out and "service common-auth" not in r.out, r.out)
    check("check: the helper is present and safe",
          "helper %s is present and safe" % s.helper in r.out, r.out)
    q = s.check_cmd("--quiet")
    check("check --quiet, good setup: exit 0 and no ok line",
          q.returncode == 0 and "ok " not in q.out and "FAIL" not in q.out, q.out)


def run_check_negatives(s, em):
    em.reset()
    s.configure()
    text = open(s.conf).read()
    # A wrong token: the emulator answers 401 20003.
    h.write_private(s.conf, text.replace(em.auth_token, "0" * 32))
    r = s.check_cmd("--quiet")
    check("check, wrong token: exit 1 naming twilio.auth_token (20003)",
          r.returncode == 1 and "twilio.auth_token" in r.out and "20003" in r.out,
          r.out)
    other_sid = "VA" + "1" * 32
    h.write_private(s.conf, text.replace(em.service_sid, other_sid))
    r = s.check_cmd("--quiet")
    check("check, wrong service SID: exit 1 naming twilio.service_sid (20404)",
          r.returncode == 1 and "twilio.service_sid" in r.out and "20404" in r.out,
          r.out)
    h.write_private(s.conf, text.replace(em.ca_file, em.other_ca_file))
    r = s.check_cmd("--quiet")
    check("check, untrusted CA: exit 1 naming twilio.ca_file",
          r.returncode == 1 and "twilio.ca_file" in r.out and "TLS" in r.out, r.out)
    h.write_private(s.conf, text.replace(em.api_url, "https://127.0.0.1:%d"
                                         % h.free_port()))
    r = s.check_cmd("--quiet")
    check("check, dead api_url: exit 1 naming twilio.api_url and twilio.proxy",
          r.returncode == 1 and "twilio.api_url" in r.out and "twilio.proxy" in r.out,
          r.out)
    em.set_faults([{"kind": "status", "http_status": 503, "method": "GET",
                    "count": 1}])
    h.write_private(s.conf, text)
    r = s.check_cmd("--quiet")
    check("check, the Service fetch failing (emulator fault 503): exit 1",
          r.returncode == 1 and "twilio:" in r.out and "unavailable" in r.out,
          r.out)
    em.clear_faults()
    r = s.check_cmd("--quiet")
    check("check, fault used up: exit 0 again", r.returncode == 0, r.out)
    check("check, every failure: no verification started",
          posts(em) == [] and em.outbox() == [], posts(em))


def run_check_messaging(s, em):
    """The messaging backend: check lists one page of the account's
    messages (GET, nothing sent) instead of fetching a Verify service, and
    names the messaging settings when it fails."""
    em.reset()
    s.configure(extra='backend = "messaging";\nmessaging = { from = "+15550100001";'
                      ' api_url = "%s"; };\n' % em.api_url)
    text = open(s.conf).read()
    r = s.check_cmd("--quiet")
    reqs = em.requests()
    check("check, messaging backend: passes with one GET of Messages.json, no POST",
          r.returncode == 0 and posts(em) == [] and
          any(q["method"] == "GET" and "/Messages.json?PageSize=1" in q["path"]
              for q in reqs), r.out + str(reqs))
    r = s.check_cmd()
    check("check, messaging backend: the line names the backend and the masked sender",
          "backend messaging, sender from +1******0001" in r.out, r.out)
    h.write_private(s.conf, text.replace(em.auth_token, "0" * 32))
    r = s.check_cmd("--quiet")
    check("check, messaging backend, wrong token: exit 1 naming twilio.auth_token",
          r.returncode == 1 and "twilio.auth_token" in r.out, r.out)
    h.write_private(s.conf, text.replace('api_url = "%s"; }' % em.api_url,
                                         'api_url = "https://127.0.0.1:%d"; }'
                                         % h.free_port()))
    r = s.check_cmd("--quiet")
    check("check, messaging backend, dead api_url: exit 1 naming messaging.api_url",
          r.returncode == 1 and "messaging.api_url" in r.out, r.out)


def run_source_negatives(s, em):
    s.configure(ldap={"bind_password": "not-the-password"})
    r = s.check_cmd("--quiet")
    check("check, bad LDAP bind: exit 1 naming ldap.bind_dn and ldap.bind_password",
          r.returncode == 1 and "ldap.bind_dn and ldap.bind_password" in r.out and
          "invalid credentials" in r.out, r.out)
    check("check, bad LDAP bind: no password in the output",
          "not-the-password" not in r.out and s.directory.bind_pw not in r.out, r.out)
    s.configure(lookup=s.unsafe_lookup)
    r = s.check_cmd("--quiet")
    check("check, unsafe lookup command: exit 1 naming lookup_command",
          r.returncode == 1 and "check lookup_command" in r.out and
          "writable by group or others" in r.out, r.out)
    s.configure()
    s.write_pam(helper=s.unsafe_helper)
    r = s.check_cmd("--quiet")
    check("check, unsafe helper on the PAM line: exit 1 naming the helper",
          r.returncode == 1 and "helper" in r.out and "not safe to run" in r.out,
          r.out)
    s.write_pam()
    h.write_services(os.path.join(s.work, "empty.d"), {"login": "auth required pam_unix.so\n"})
    r = s.run("check", "--quiet", "--pam-dir", os.path.join(s.work, "empty.d"))
    check("check, no service reaches the module: exit 1",
          r.returncode == 1 and "no service" in r.out, r.out)
    s.configure(mode=0o644)
    r = s.check_cmd()
    check("check, configuration mode 0644: exit 1 with the module's message",
          r.returncode == 1 and "FAIL %s: holds a credential" % s.conf in r.out and
          "chmod 600 " + s.conf in r.out, r.out)
    s.configure(extra="max_attempts = 99;\n")
    r = s.check_cmd()
    check("check, a setting out of range: exit 1 naming file, line and setting",
          r.returncode == 1 and re.search(re.escape(s.conf) + r":\d+: max_attempts",
                                          r.out), r.out)
    s.configure()


def run_lookup(s, em):
    em.reset()
    s.configure()
    r = s.run("lookup", "alice")
    check("lookup alice: exit 0, the users source and the masked number",
          r.returncode == 0 and "phone: +1******0001 from source users" in r.out, r.out)
    check("lookup alice: not exempt, 0 of 5 sends used",
          "not exempt" in r.out and "0 of 5 sends used" in r.out, r.out)
    r = s.run("lookup", "erin")
    check("lookup erin: the ldap source", r.returncode == 0 and
          "phone: +1******0005 from source ldap" in r.out, r.out)
    r = s.run("lookup", "cmduser")
    check("lookup cmduser: the command source", r.returncode == 0 and
          "phone: +1******0042 from source command" in r.out, r.out)
    r = s.run("lookup", "carol")
    check("lookup carol: exempt by group admins",
          r.returncode == 0 and 'exempt group "admins"' in r.out and
          "allowed-exempt-group" in r.out, r.out)
    r = s.run("lookup", "nosuchuser")
    check("lookup of no account: exit 1", r.returncode == 1 and
          "no such account" in r.out, r.out)
    check("lookup: nothing sent, no request to Twilio",
          em.requests() == [] and em.outbox() == [], em.requests())


def spawn(s, *args):
    import pexpect
    child = pexpect.spawn(s.admin, list(args) + ["--conf", s.conf,
                                                 "--helper", s.helper],
                          env=s.env(), encoding="utf-8", timeout=30)
    return child


def finish(s, child):
    import pexpect
    child.expect(pexpect.EOF)
    child.close()
    s.outputs.append(child.before)
    return child.exitstatus


def run_test(s, em):
    em.reset()
    s.configure()
    child = spawn(s, "test", "alice")
    child.expect(r"\[y/N\] ")
    child.sendline("n")
    status = finish(s, child)
    check("test without --yes, answered n: exit 1, nothing sent",
          status == 1 and em.outbox() == [] and posts(em) == [], child.before)
    child = spawn(s, "test", "alice", "--yes")
    child.expect(PROMPT)
    code = em.last_code(ALICE)
    h.record_secrets("admin", codes=[code], append=True)
    child.sendline(code)
    status = finish(s, child)
    out = child.before
    check("test alice --yes with the right code: exit 0, approved, PAM_SUCCESS",
          status == 0 and "result: approved" in out and "PAM_SUCCESS" in out, out)
    check("test: the module's log lines and outcome line are shown",
          "log " in out and "result=approved" in out, out)
    check("test: one verification sent to alice's number",
          len(em.outbox()) == 1 and em.outbox()[0]["to"] == ALICE, em.outbox())
    child = spawn(s, "test", "alice", "--yes")
    for _ in range(3):
        child.expect(PROMPT)
        right = em.last_code(ALICE)
        child.sendline("000000" if right != "000000" else "000001")
    status = finish(s, child)
    check("test with wrong codes: exit 1, denied-wrong-code, PAM_AUTH_ERR",
          status == 1 and "denied-wrong-code" in child.before and
          "PAM_AUTH_ERR" in child.before, child.before)
    child = spawn(s, "test", "carol")
    status = finish(s, child)
    check("test carol (exempt): exit 0 with no question and no send",
          status == 0 and "allowed-exempt-group" in child.before and
          len(em.outbox()) == 2, child.before)


def run_status_reset(s, em):
    r = s.run("status", "alice")
    check("status alice: 2 of 5 sends used (the two test logins)",
          r.returncode == 0 and "2 of 5 sends used" in r.out and
          r.out.count("  send at ") == 2, r.out)
    r = s.run("lookup", "alice")
    check("lookup alice after the logins: 2 of 5", "2 of 5 sends used" in r.out,
          r.out)
    r = s.run("status")
    check("status: the table, one account with sends in the window",
          r.returncode == 0 and "1 account(s) with sends in the window" in r.out,
          r.out)
    r = s.run("status", "erin")
    check("status erin: nothing used", r.returncode == 0 and
          "0 of 5 sends used" in r.out, r.out)
    r = s.run("reset", "alice")
    check("reset alice: exit 0, 2 sends cleared, logged to syslog",
          r.returncode == 0 and "cleared 2 send(s)" in r.out and "syslog" in r.out,
          r.out)
    r = s.run("status", "alice")
    check("status alice after reset: 0 of 5", r.returncode == 0 and
          "0 of 5 sends used" in r.out, r.out)
    s.configure(extra='channel = "fax";\n')
    r = s.run("status", "alice")
    check("status with a configuration the module refuses: exit 1, its message",
          r.returncode == 1 and re.search(r"FAIL .*:\d+: channel", r.out), r.out)
    s.configure()

RATE_LIMITS = ('rate_limits = {\n'
               '  account = { unique_name = "pam_account";\n'
               '    buckets = ( { max = 10; interval_s = 3600; } ); };\n'
               '  client_ip = { unique_name = "pam_client_ip";\n'
               '    buckets = ( { max = 30; interval_s = 3600; }, { max = %d; interval_s = 60; } ); };\n'
               '};\n')


def service_limits(em):
    """{unique_name: sorted [(max, interval)]} as the emulator holds them."""
    _, _, _, obj = em.call("GET", em.service_path("/RateLimits?PageSize=100"))
    out = {}
    for rl in obj["rate_limits"]:
        _, _, _, b = em.call("GET", em.service_path("/RateLimits/%s/Buckets" % rl["sid"]))
        out[rl["unique_name"]] = sorted((x["max"], x["interval"]) for x in b["buckets"])
    return out


def changes(em):
    return [r for r in em.requests() if r["method"] in ("POST", "DELETE")]


def run_rate_limits(s, em):
    """rate-limits against the emulator: --apply makes exactly what is
    declared, a second run changes nothing, a changed bucket is updated,
    --prune alone deletes; check fails while they differ."""
    em.reset()
    s.configure(extra=RATE_LIMITS % 5)
    want = {"pam_account": [(10, 3600)], "pam_client_ip": [(5, 60), (30, 3600)]}
    r = s.check_cmd()
    check("check with rate_limits the service lacks: exit 1, naming them",
          r.returncode == 1 and 'rate limit "pam_account" is missing on the service'
          in r.out and "rate-limits --apply" in r.out, r.out)
    r = s.run("rate-limits")
    check("rate-limits without --apply: shows both sides, changes nothing",
          r.returncode == 0 and "configuration: rate_limits.account" in r.out and
          "differs: " in r.out and changes(em) == [] and service_limits(em) == {},
          r.out)
    r = s.run("rate-limits", "--apply")
    check("rate-limits --apply: exit 0, creates exactly the declared limits",
          r.returncode == 0 and service_limits(em) == want, r.out + str(service_limits(em)))
    check("rate-limits --apply: five creates (two limits, three buckets)",
          len(changes(em)) == 5, str(changes(em)))
    before = len(changes(em))
    r = s.run("rate-limits", "--apply")
    check("a second --apply changes nothing",
          r.returncode == 0 and len(changes(em)) == before and
          "holds what is declared" in r.out, r.out)
    r = s.check_cmd()
    check("check after --apply: the rate limits pass",
          "ok rate_limits: the service holds the declared" in r.out and
          "FAIL rate_limits" not in r.out, r.out)
    s.configure(extra=RATE_LIMITS % 7)
    r = s.check_cmd()
    check("check with a changed bucket: exit 1, naming the bucket",
          r.returncode == 1 and "max 5 per 60 s on the service, max 7 per 60 s in "
          "the configuration" in r.out, r.out)
    r = s.run("rate-limits", "--apply")
    want["pam_client_ip"] = [(7, 60), (30, 3600)]
    check("--apply updates the changed bucket, in place",
          r.returncode == 0 and service_limits(em) == want and
          len(changes(em)) == before + 1, r.out)
    em.call("POST", em.service_path("/RateLimits"), form={"UniqueName": "other"})
    s.configure(extra=RATE_LIMITS.replace(
        "{ max = 30; interval_s = 3600; }, ", "") % 7)
    r = s.check_cmd()
    check("check with an extra bucket on the service: exit 1, --prune named; "
          "an undeclared limit only warns",
          r.returncode == 1 and "--apply --prune" in r.out and
          'rate limit "other"' in r.out and "WARNING" in r.out.upper(), r.out)
    r = s.run("rate-limits", "--apply")
    check("--apply never deletes", r.returncode == 0 and
          len(service_limits(em)) == 3 and "--prune deletes it" in r.out, r.out)
    r = s.run("rate-limits", "--prune")
    check("--prune deletes the bucket and the limit not declared",
          r.returncode == 0 and service_limits(em) == {
              "pam_account": [(10, 3600)], "pam_client_ip": [(7, 60)]}, r.out)
    r = s.check_cmd()
    check("check after --prune: passes", "FAIL rate_limits" not in r.out and
          "ok rate_limits" in r.out, r.out)
    em.reset()
    s.configure()


def run_root_and_usage(s):
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    for args in (["check"], ["lookup", "alice"], ["test", "alice", "--yes"],
                 ["status"], ["reset", "alice"], ["rate-limits"]):
        r = s.run(*args, prefix=nobody)
        check("%s as nobody: exit 3, must be run as root" % args[0],
              r.returncode == 3 and "must be run as root" in r.out, r.out)
    r = s.run("status")
    check("status as root: exit 0 (the pair of the above)", r.returncode == 0, r.out)
    for args in ([], ["frobnicate"], ["lookup"], ["reset"], ["check", "extra"],
                 ["status", "a", "b"], ["lookup", "alice", "--quiet"],
                 ["check", "--conf"], ["rate-limits", "alice"],
                 ["rate-limits", "--yes"]):
        r = s.run(*args, conf=False)
        check("usage error %s: exit 2" % args, r.returncode == 2 and
              "usage:" in r.out, r.out)
    r = s.run("check", "--conf", "relative.conf", conf=False)
    check("a relative --conf: exit 2", r.returncode == 2, r.out)
    for args in (["--help"], ["check", "--help"], ["test", "--help"],
                 ["reset", "--help"]):
        r = s.run(*args, conf=False, prefix=nobody)
        check("%s: exit 0 with the usage, for anyone" % args,
              r.returncode == 0 and "usage:" in r.out, r.out)


def run_no_secrets(s, em):
    text = "\n".join(s.outputs)
    for secret, what in ((em.auth_token, "the auth token"),
                         (s.directory.bind_pw, "the bind password"),
                         (ALICE, "alice's number"), (ERIN, "erin's number"),
                         (CMDUSER, "cmduser's number")):
        check("no output shows %s" % what, secret not in text)
    keep = os.environ.get("PTV_TEST_LOG_DIR")
    if keep:
        with open(os.path.join(keep, "admin.log"), "w") as f:
            f.write(text)


def main():
    h.require_root("the admin tool runs as root only")
    admin, module = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    work = tempfile.mkdtemp(prefix="ptv-admin.")
    cmd_dir = h.safe_dir("ptv-admin-cmd.")
    em = Emulator(os.path.join(work, "emulator"))
    directory = SlapdServer(os.path.join(work, "slapd"), os.path.join(work, "ca"))
    try:
        em.start()
        directory.start()
        h.record_secrets("admin", tokens=[em.auth_token, directory.bind_pw],
                         numbers=[ALICE, ERIN, CMDUSER])
        s = Setup(work, admin, module, em, directory, cmd_dir)
        check_good(s, em)
        run_check_negatives(s, em)
        run_check_messaging(s, em)
        run_source_negatives(s, em)
        run_lookup(s, em)
        run_test(s, em)
        run_status_reset(s, em)
        run_rate_limits(s, em)
        run_root_and_usage(s)
        run_no_secrets(s, em)
    finally:
        h.teardown((directory, em), (cmd_dir, work))
    return h.summary()


if __name__ == "__main__":
    sys.exit(main())
