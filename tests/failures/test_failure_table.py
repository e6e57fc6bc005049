#!/usr/bin/python3
"""The failure table, row by row: pamtester, a real PAM application, runs
the module under pam_wrapper and nss_wrapper against faults injected on the
way to the Verify emulator, once with failmode = "secure" and once with
failmode = "safe".

For every case the test checks
  - the PAM result (pamtester's exit status and message) and the module's
    log line (result= word and detail);
  - what the user is shown (PAM_ERROR_MSG), or that nothing is shown;
  - that failmode = "safe" opens only for "unavailable" faults (transport
    errors other than TLS, timeouts, 5xx, 429 after the bounded retry),
    with its warning line, and never for TLS, configuration errors or
    answers about the user or the code;
  - the time taken: a request ends within timeout_ms, its one retry
    included (a cancel that follows has its own budget), and the whole
    login within timeout_ms * (1 + max_attempts) + min(timeout_ms, 3000);
  - the retry rule, from the requests the emulator saw: one retry only for
    a 429 whose Retry-After fits the budget; none after a 5xx, a timeout
    or a broken exchange.

Where the module and these rules disagree, the case fails: the rules are
what is asserted.

Usage: test_failure_table.py MODULE_SO
(PTV_FAILURES_ONLY=TEXT runs only the rows whose name contains TEXT.)
Exit: 0 all passed, 1 a check failed, 77 skipped (not root).
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pexpect

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from emulator_client import Emulator  # noqa: E402
import ptv_harness as h  # noqa: E402

PHONE = "+15550104567"
PROMPT = r"SMS code sent to \+1\*\*\*\*\*\*4567(?: \(or type resend, call\))?: "
TIMEOUT_MS = 2000
CONNECT_TIMEOUT_MS = 1000
MAX_ATTEMPTS = 3
CANCEL_BUDGET_MS = min(TIMEOUT_MS, 3000)
LOGIN_BOUND_MS = TIMEOUT_MS * (1 + MAX_ATTEMPTS) + CANCEL_BUDGET_MS
# The module's bound on each wait for its helper (helper_wait_bound): two
# requests, a cancel and 3 s for the helper's start.
HELPER_WAIT_MS = 2 * TIMEOUT_MS + CANCEL_BUDGET_MS + 3000
# Time the module may spend outside the requests (config, state file), and
# pamtester's own exit when time is measured from outside.
MODULE_SLACK_MS = 250
PROCESS_SLACK_MS = 500

PAM_MESSAGES = {
    "PAM_SUCCESS": "successfully authenticated",
    "PAM_AUTH_ERR": "Authentication failure",
    "PAM_AUTHINFO_UNAVAIL":
        "Authentication service cannot retrieve authentication info",
    "PAM_SERVICE_ERR": "Error in service module",
    "PAM_USER_UNKNOWN": "User not known to the underlying authentication module",
}

# Every PAM_ERROR_MSG text the module can send.
MSG_EXPIRED = ("The code has expired or was already used. Log in again to "
               "get a new one.")
MSG_MAX_CHECKS = "Too many wrong codes. Log in again to get a new one."
MSG_MAX_SENDS = "Too many codes were sent to your phone. Try again later."
MSG_CANNOT_SEND = ("A code cannot be sent to your phone number. Contact your "
                   "administrator.")
MSG_NOT_VERIFIED = "The code could not be verified."
MSG_RATE_LIMITED = ("Too many codes were requested for this account. Try "
                    "again later.")
MSG_STATE = "A code cannot be sent right now. Contact your administrator."
USER_MESSAGES = [MSG_EXPIRED, MSG_MAX_CHECKS, MSG_MAX_SENDS, MSG_CANNOT_SEND,
                 MSG_NOT_VERIFIED, "Wrong code.",
                 "Too many codes were sent recently. Try again later.",
                 MSG_STATE, MSG_RATE_LIMITED]
SETID_NOTE = "failmode = safe does not apply to set-id callers"
# The set-id rows run pam_host with this real uid and effective uid 0.
SETID_RUID = 65534

WARNING = "failmode = safe: letting user demo in WITHOUT the second factor"
check = h.check

# -- expected outcomes --------------------------------------------------------
# (PAM result, result= word) per failmode.

def unavailable():
    return {"secure": ("PAM_AUTHINFO_UNAVAIL", "denied-unavailable"),
            "safe": ("PAM_SUCCESS", "allowed-unavailable")}


def both(pam, word):
    return {"secure": (pam, word), "safe": (pam, word)}


BAD = both("PAM_AUTH_ERR", "denied-bad-response")
NEVER_OPEN = both("PAM_AUTHINFO_UNAVAIL", "denied-unavailable")
INTERNAL = both("PAM_AUTH_ERR", "denied-internal-error")
CONFIG = both("PAM_SERVICE_ERR", "denied-config-error")
DENIED = both("PAM_AUTH_ERR", "denied-by-twilio")
APPROVED = both("PAM_SUCCESS", "approved")


class Case:
    """One fault at one step (start or check)."""

    def __init__(self, step, expect, detail, user_sees=None, faults=None,
                 target="main", conf=None, before=None, at_prompt=None,
                 requests=None, env=None, user="demo", setid=False,
                 helper=None, detail_safe=None, time_bound_ms=None):
        self.step = step            # "start" or "check"
        self.expect = expect        # failmode -> (PAM result, result word)
        self.detail = detail        # regex the log detail must match
        self.user_sees = user_sees  # PAM_ERROR_MSG text, or None
        self.faults = faults or []
        self.target = target        # an emulator, "dns" or "blackhole"
        self.conf = conf or {}
        self.before = before        # called before the login starts
        self.at_prompt = at_prompt  # called when the prompt is shown
        self.requests = requests    # (path suffix, count) the emulator must see
        self.env = env or {}
        self.user = user            # the user name the login gives
        self.setid = setid          # run as su and sudo run: real uid != 0
        # The helper the module is given: None for the real one, or the
        # name of a stand-in (see Context.helper_path).
        self.helper = helper
        # The time the whole login may take, when a stand-in sets it.
        self.time_bound_ms = time_bound_ms
        self.detail_safe = detail_safe  # a further regex under failmode safe


def at_start(kind, **kw):
    f = {"kind": kind, "match": "/Verifications"}
    f.update(kw)
    return [f]


def at_check(kind, **kw):
    f = {"kind": kind, "match": "/VerificationCheck"}
    f.update(kw)
    return [f]


START = "starting the verification: "
CHECK = "checking the code: "


def refuse_at_check(ctx):
    # While the user types, the listener goes away and the connection the
    # start used is reset (ss -K, loopback, the emulator's port only), so
    # the check has to connect again and is refused. No request is sent on
    # the dead connection.
    ctx.main.refuse(True)
    ss = shutil.which("ss") or "/usr/bin/ss"
    if not os.path.exists(ss):
        check("fixture: ss (iproute2) is installed", False, "it is not")
        return
    r = subprocess.run([ss, "-K", "-t", "state", "established",
                        "( sport = :%d )" % ctx.main.port],
                       capture_output=True, text=True)
    check("fixture: the idle connection to the emulator is reset (ss -K)",
          r.returncode == 0 and str(ctx.main.port) in r.stdout,
          "ss exit %d: %s %s" % (r.returncode, r.stdout, r.stderr))


def rows():
    """The failure table: (fault, [cases]). A row counts as tested only
    when every case of it passes under both failmodes."""
    R = re.escape
    return [
        ("DNS failure", [
            Case("start", unavailable(), R(START + "unreachable: ") +
                 ".*[Rr]esolve", target="dns",
                 env={"RES_OPTIONS": "timeout:1 attempts:1"})]),
        ("Connection refused", [
            Case("start", unavailable(), R(START + "unreachable: "),
                 before=lambda ctx: ctx.main.refuse(True),
                 requests=("/Verifications", 0)),
            Case("check", unavailable(), R(CHECK + "unreachable: "),
                 at_prompt=refuse_at_check,
                 requests=("/VerificationCheck", 0))]),
        ("Connect timeout", [
            Case("start", unavailable(), R(START + "unreachable: ") +
                 ".*(timed out|[Tt]imeout)", target="blackhole")]),
        ("Read timeout (no answer)", [
            Case("start", unavailable(), R(START + "timeout: "),
                 faults=at_start("hang", seconds=4),
                 requests=("/Verifications", 1)),
            Case("check", unavailable(), R(CHECK + "timeout: "),
                 faults=at_check("hang", seconds=4),
                 requests=("/VerificationCheck", 1))]),
        ("TLS: certificate for another host name", [
            Case("start", BAD, R(START + "TLS failure: "),
                 target="wronghost")]),
        ("TLS: expired certificate", [
            Case("start", BAD, R(START + "TLS failure: "),
                 target="expired")]),
        ("TLS: certificate from an untrusted CA", [
            Case("start", BAD, R(START + "TLS failure: "),
                 conf={"ca_file": "other-ca"})]),
    ] + [
        ("HTTP %d" % st, [
            Case("start", unavailable(),
                 R(START + "service unavailable [Twilio code %d]" % (20000 + st)),
                 faults=at_start("status", http_status=st),
                 requests=("/Verifications", 1)),
            Case("check", unavailable(),
                 R(CHECK + "service unavailable [Twilio code %d]" % (20000 + st)),
                 faults=at_check("status", http_status=st),
                 requests=("/VerificationCheck", 1))])
        for st in (500, 502, 503)
    ] + [
        ("HTTP 429/20429, Retry-After fits the budget", [
            Case("start", APPROVED, R("code approved"),
                 faults=at_start("rate_limit", retry_after=1, count=1),
                 requests=("/Verifications", 2)),
            Case("check", APPROVED, R("code approved"),
                 faults=at_check("rate_limit", retry_after=1, count=1),
                 requests=("/VerificationCheck", 2))]),
        # A throttle answers traffic, which anyone can make: it never
        # opens, under either failmode.
        ("HTTP 429/20429, Retry-After too long for the budget", [
            Case("start", NEVER_OPEN,
                 R(START + "Twilio throttled the request (429) [Twilio code "
                   "20429]; a throttle is not an outage"),
                 faults=at_start("rate_limit", retry_after=5),
                 requests=("/Verifications", 1)),
            Case("check", NEVER_OPEN,
                 R(CHECK + "Twilio throttled the request (429) [Twilio code "
                   "20429]; a throttle is not an outage"),
                 faults=at_check("rate_limit", retry_after=5),
                 requests=("/VerificationCheck", 1))]),
        ("HTTP 429/20429 again after the retry", [
            Case("start", NEVER_OPEN,
                 R(START + "Twilio throttled the request (429) [Twilio code "
                   "20429]"),
                 faults=at_start("rate_limit", retry_after=1),
                 requests=("/Verifications", 2)),
            Case("check", NEVER_OPEN,
                 R(CHECK + "Twilio throttled the request (429) [Twilio code "
                   "20429]"),
                 faults=at_check("rate_limit", retry_after=1),
                 requests=("/VerificationCheck", 2))]),
        # One of the service's rate limits (Twilio-Reached-Rate-Limit):
        # denied at once, never retried, Retry-After or not.
        ("HTTP 429 naming a rate limit (Twilio-Reached-Rate-Limit)", [
            Case("start", both("PAM_AUTH_ERR", "denied-rate-limited"),
                 R(START + "a rate limit of the Verify service is reached "
                   "(429) [Twilio code 20429]: rate limit \"pam_account\""),
                 user_sees=MSG_RATE_LIMITED,
                 faults=at_start("rate_limit", retry_after=1,
                                 rate_limit="pam_account"),
                 requests=("/Verifications", 1))]),
        ("HTTP 401/20003 (credentials rejected)", [
            Case("start", CONFIG,
                 R(START + "Twilio rejected the credentials (20003); check "
                   "account_sid"),
                 faults=at_start("twilio_error", http_status=401, code=20003)),
            Case("check", CONFIG,
                 R(CHECK + "Twilio rejected the credentials (20003); check "
                   "account_sid"),
                 faults=at_check("twilio_error", http_status=401, code=20003))]),
        ("HTTP 404/20404 when starting (unknown service)", [
            Case("start", CONFIG,
                 R(START + "Twilio knows no service ") + "VA[0-9a-f]{32}" +
                 R(" (20404); check service_sid"),
                 faults=at_start("twilio_error", http_status=404, code=20404))]),
        ("HTTP 404/20404 at check (expired)", [
            Case("check", DENIED,
                 R(CHECK + "verification not found: expired, already used "
                   "or canceled (20404)"), user_sees=MSG_EXPIRED,
                 faults=at_check("twilio_error", http_status=404, code=20404))]),
        ("HTTP 400/60200 (invalid parameter)", [
            Case("start", DENIED, R(START + "invalid parameter (60200)"),
                 user_sees=MSG_CANNOT_SEND,
                 faults=at_start("twilio_error", http_status=400, code=60200))]),
        ("HTTP 429/60202 (too many checks)", [
            Case("start", DENIED, R(START + "too many check attempts (60202)"),
                 user_sees=MSG_MAX_CHECKS,
                 faults=at_start("twilio_error", http_status=429, code=60202)),
            Case("check", DENIED, R(CHECK + "too many check attempts (60202)"),
                 user_sees=MSG_MAX_CHECKS,
                 faults=at_check("twilio_error", http_status=429, code=60202))]),
        ("HTTP 429/60203 (too many sends)", [
            Case("start", DENIED,
                 R(START + "too many codes sent to this number (60203)"),
                 user_sees=MSG_MAX_SENDS,
                 faults=at_start("twilio_error", http_status=429, code=60203))]),
        ("HTTP 403/60205 (landline)", [
            Case("start", DENIED,
                 R(START + "the number cannot receive SMS (60205)"),
                 user_sees=MSG_CANNOT_SEND,
                 faults=at_start("twilio_error", http_status=403, code=60205))]),
        ("HTTP 403/60410 (Fraud Guard)", [
            Case("start", DENIED,
                 R(START + "number prefix blocked by Fraud Guard (60410)"),
                 user_sees=MSG_CANNOT_SEND,
                 faults=at_start("twilio_error", http_status=403, code=60410))]),
        ("HTTP 403/60605 (geo permissions)", [
            Case("start", DENIED,
                 R(START + "destination blocked by geo permissions (60605)"),
                 user_sees=MSG_CANNOT_SEND,
                 faults=at_start("twilio_error", http_status=403, code=60605))]),
        ("Malformed JSON", [
            Case("start", BAD, R(START + "unexpected response"),
                 faults=at_start("malformed_json")),
            Case("check", BAD, R(CHECK + "unexpected response"),
                 faults=at_check("malformed_json"))]),
        ("Truncated body (connection closed early)", [
            Case("start", unavailable(), R(START + "broken HTTP exchange: "),
                 faults=at_start("truncated"),
                 requests=("/Verifications", 1)),
            Case("check", unavailable(), R(CHECK + "broken HTTP exchange: "),
                 faults=at_check("truncated"),
                 requests=("/VerificationCheck", 1))]),
        ("Connection closed without an answer (empty reply)", [
            Case("start", unavailable(), R(START + "broken HTTP exchange: "),
                 faults=at_start("close", count=1),
                 requests=("/Verifications", 1)),
            # The check goes over the connection the start opened. When a
            # reused connection closes before any byte of an answer,
            # libcurl sends the request once more on a new connection
            # (that is what keeps reuse working when Twilio closed the
            # idle connection while the user typed). So a server that
            # keeps closing sees the check twice; neither sends an SMS.
            Case("check", unavailable(), R(CHECK + "broken HTTP exchange: "),
                 faults=at_check("close"),
                 requests=("/VerificationCheck", 2))]),
        ("Oversized body (over 64 KiB)", [
            Case("start", BAD, R(START + "response too large: "),
                 faults=at_start("oversized", bytes=70000)),
            Case("check", BAD, R(CHECK + "response too large: "),
                 faults=at_check("oversized", bytes=70000))]),
        ("Wrong content type (text/html)", [
            Case("start", BAD, R(START + "unexpected response"),
                 faults=at_start("wrong_content_type")),
            Case("check", BAD, R(CHECK + "unexpected response"),
                 faults=at_check("wrong_content_type"))]),
        ("Redirect (302)", [
            Case("start", BAD, R(START + "unexpected response"),
                 faults=at_start("redirect")),
            Case("check", BAD, R(CHECK + "unexpected response"),
                 faults=at_check("redirect"))]),
        # A set-id caller (su, sudo) owns the process's signals, limits and
        # environment: failmode = "safe" does not open for it. The paired
        # case: the same caller with Twilio answering logs in.
        ("Set-id caller (su, sudo), Twilio answering", [
            Case("check", APPROVED, R("code approved"), setid=True)]),
        ("Set-id caller (su, sudo), connection refused", [
            Case("start", NEVER_OPEN, R(START + "unreachable: "),
                 before=lambda ctx: ctx.main.refuse(True), setid=True,
                 detail_safe=R(SETID_NOTE),
                 requests=("/Verifications", 0))]),
        ("Set-id caller (su, sudo), HTTP 503", [
            Case("check", NEVER_OPEN,
                 R(CHECK + "service unavailable [Twilio code 20503]"),
                 faults=at_check("status", http_status=503), setid=True,
                 detail_safe=R(SETID_NOTE),
                 requests=("/VerificationCheck", 1))]),
        # Local resource failures: the caller of su can cause them, so they
        # are never an outage, and the send is not given back.
        ("Local resource: no descriptor for the socket (EMFILE)", [
            Case("start", INTERNAL,
                 R(START + "local resource failure: cannot open a socket: "
                   "Too many open files"),
                 helper="fault:socket",
                 requests=("/Verifications", 0))]),
        ("Local resource: the resolver thread cannot start (EAGAIN)", [
            Case("start", INTERNAL,
                 R(START + "local resource failure: cannot start the "
                   "resolver thread"),
                 target="localhost", helper="fault:pthread_create",
                 requests=("/Verifications", 0))]),
        ("State store unusable (state_dir writable by others)", [
            Case("start", both("PAM_AUTH_ERR", "denied-state-error"),
                 "state directory .*must not be writable by group or others",
                 user_sees=MSG_STATE,
                 before=lambda ctx: os.makedirs(ctx.state_dir, mode=0o777) or
                 os.chmod(ctx.state_dir, 0o777),
                 requests=("/Verifications", 0))]),
        # The helper: missing, unsafe, dying, hanging, answering garbage.
        # Each is an internal error under both failmodes: nothing about
        # Twilio or the directory is known.
        ("Helper missing", [
            Case("start", INTERNAL,
                 R("cannot start the helper: helper /nonexistent/") +
                 ".*No such file or directory",
                 helper="missing", requests=("/Verifications", 0))]),
        ("Helper unsafe (in a directory anyone can write)", [
            Case("start", INTERNAL,
                 R("cannot start the helper: directory ") +
                 ".*must not be writable by group or others",
                 helper="unsafe", requests=("/Verifications", 0))]),
        ("Helper dying (ends without a result)", [
            Case("start", INTERNAL, R("helper: it ended without an answer"),
                 helper="bad:die", requests=("/Verifications", 0))]),
        ("Helper hanging (no answer within the module's bound)", [
            Case("start", INTERNAL, R("helper: no answer within %d ms"
                                      % HELPER_WAIT_MS),
                 helper="bad:hang", requests=("/Verifications", 0),
                 time_bound_ms=HELPER_WAIT_MS + MODULE_SLACK_MS)]),
        ("Helper answering garbage", [
            Case("start", INTERNAL,
                 R("helper: it answered garbage (unknown message type)"),
                 helper="bad:garbage", requests=("/Verifications", 0))]),
        ("Unknown user (no such account)", [
            Case("start", both("PAM_USER_UNKNOWN", "denied-unknown-user"),
                 R("no such account"), user="nosuchuser",
                 requests=("/Verifications", 0))]),
    ]


# -- the fixtures --------------------------------------------------------------

class Blackhole:
    """A TCP listener on loopback whose accept queue is full: SYNs to it
    are dropped, so a connection attempt runs into its connect timeout."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(3):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(c)
        time.sleep(0.2)

    def close(self):
        for c in self.fillers:
            c.close()
        self.sock.close()


class Context:
    def __init__(self, work, module):
        self.module = module
        pki = os.path.join(work, "pki")
        self.main = Emulator(pki, name="main")
        self.main.start()
        same = {"account_sid": self.main.account_sid,
                "auth_token": self.main.auth_token,
                "service_sid": self.main.service_sid}
        self.others = {
            "wronghost": Emulator(pki, cert="wronghost", name="wronghost", **same),
            "expired": Emulator(pki, cert="expired", name="expired", **same),
        }
        for em in self.others.values():
            em.start()
        self.blackhole = Blackhole()
        # The real helper, copied into a directory that anyone may write.
        self.unsafe_helper, self.unsafe_dir = h.safe_copy(h.helper_for(module))
        os.chmod(self.unsafe_dir, 0o777)
        self.pki = pki
        self.state_dir = os.path.join(work, "state")
        self.pw = h.PamWork(work, module,
                            users=(("demo", "Demo User,,+1 555 010 4567,,", 2010),))

    def close(self):
        shutil.rmtree(self.unsafe_dir, ignore_errors=True)
        self.blackhole.close()
        for em in [self.main] + list(self.others.values()):
            em.stop()

    def api_url(self, target):
        if target == "main":
            return self.main.api_url
        if target in self.others:
            return self.others[target].api_url
        if target == "dns":
            return "https://nonexistent.invalid"
        if target == "blackhole":
            return "https://127.0.0.1:%d" % self.blackhole.port
        if target == "localhost":  # a host name: resolved by the module
            return "https://localhost:%d" % self.main.port
        raise ValueError(target)

    def helper_path(self, case):
        """The helper a case gives the module: the real one; a stand-in that
        runs it with a fault injected ("fault:CALL"); one that breaks the
        protocol ("bad:MODE"); none at all ("missing"); or the real one in
        a directory anyone can write ("unsafe")."""
        if case.helper is None:
            return h.helper_for(self.module)
        kind, _, what = case.helper.partition(":")
        if kind == "fault":
            return os.environ["PTV_FAULT_HELPER_" + what]
        if kind == "bad":
            return os.environ["PTV_BAD_HELPER_" + what]
        if kind == "missing":
            return "/nonexistent/pam_twilio_verify/twilio-verify-helper"
        if kind == "unsafe":
            return self.unsafe_helper
        raise ValueError(case.helper)

    def write_conf(self, case, failmode):
        self.pw.use_helper(self.helper_path(case))
        ca = os.path.join(self.pki, case.conf.get("ca_file", "ca") + ".pem")
        h.write_private(self.pw.conf, h.module_config(
            self.main, self.state_dir,
            'failmode = "%s";\nmax_attempts = %d;\nphone_sources = [ "gecos" ];\n'
            % (failmode, MAX_ATTEMPTS), api_url=self.api_url(case.target),
            ca_file=ca, connect_timeout_ms=CONNECT_TIMEOUT_MS, timeout_ms=TIMEOUT_MS))

    def reset(self):
        self.main.refuse(False)
        self.main.reset()
        for em in self.others.values():
            em.reset()
        # The per-user send limit is not what this test is about.
        shutil.rmtree(self.state_dir, ignore_errors=True)


def run_pamtester(ctx, case):
    """Runs one login. Returns (exit status, transcript, ms from the start
    to the prompt, ms from the (last) code being sent to the end; None when
    there was no prompt)."""
    service = ctx.pw.service
    if case.setid:
        command, args = os.environ["PTV_PAM_HOST"], [
            "--ruid", str(SETID_RUID), service, case.user]
    else:
        command, args = "pamtester", ["-v", service, case.user, "authenticate"]
    child = pexpect.spawn(command, args, env=ctx.pw.env(case.env),
                          encoding="utf-8", timeout=20)
    transcript = []
    to_prompt_ms = None
    after_code_ms = None
    spawned = time.monotonic()
    try:
        # The prompt is answered with the right code whenever it comes.
        while True:
            i = child.expect([PROMPT, pexpect.EOF])
            transcript.append(child.before + (child.after if i == 0 else ""))
            if i == 1:
                break
            if to_prompt_ms is None:
                to_prompt_ms = (time.monotonic() - spawned) * 1000
            code = ctx.main.last_code(PHONE)
            if case.at_prompt is not None:
                case.at_prompt(ctx)
            sent = time.monotonic()
            child.sendline(code or "000000")
        if to_prompt_ms is not None:
            after_code_ms = (time.monotonic() - sent) * 1000
    except pexpect.ExceptionPexpect as e:
        transcript.append("\n[%s] %s" % (type(e).__name__, child.before))
    finally:
        child.close(force=True)
    return child.exitstatus, "".join(transcript), to_prompt_ms, after_code_ms


OUTCOME_RE = re.compile(r"result=(\S+) attempts=(\d+) elapsed_ms=(\d+)"
                        r"(?: \((.*)\))?\s*$", re.M)


def run_case(ctx, fault, case, failmode):
    """Runs one case under one failmode; returns True when all checks pass."""
    name = "%s, at %s, failmode %s" % (fault, case.step, failmode)
    ctx.reset()
    if case.faults:
        ctx.main.set_faults(case.faults)
    if case.before is not None:
        case.before(ctx)
    ctx.write_conf(case, failmode)
    status, out, to_prompt_ms, after_code_ms = run_pamtester(ctx, case)
    requests = ctx.main.requests()
    ctx.main.refuse(False)
    pam, word = case.expect[failmode]
    ok = True
    outcomes = OUTCOME_RE.findall(out)
    ok &= check(name + ": one outcome line", len(outcomes) == 1, out)
    got_word, _attempts, elapsed, detail = (
        outcomes[0] if outcomes else ("?", "0", "0", ""))
    elapsed = int(elapsed)

    # The PAM result, as pamtester reports it.
    want_exit_ok = pam == "PAM_SUCCESS"
    ok &= check(name + ": %s (pamtester: %s)" % (pam, PAM_MESSAGES[pam]),
                (status == 0) == want_exit_ok and PAM_MESSAGES[pam] in out,
                "exit %s, output:\n%s" % (status, out))
    others = [m for p, m in PAM_MESSAGES.items() if p != pam and m in out]
    ok &= check(name + ": no other PAM result", not others, str(others))

    # The log line.
    ok &= check(name + ": logged result=%s" % word, got_word == word,
                "logged result=%s (%s)" % (got_word, detail))
    ok &= check(name + ": logged detail (%s) matches /%s/" % (detail, case.detail),
                re.search(case.detail, detail or "") is not None,
                "it does not")
    if case.detail_safe is not None:
        want = failmode == "safe"
        ok &= check(name + ": logged detail %s /%s/"
                    % ("matches" if want else "does not match", case.detail_safe),
                    (re.search(case.detail_safe, detail or "") is not None) == want,
                    detail)

    # What the user sees.
    shown = [m for m in USER_MESSAGES if m in out]
    if case.user_sees is None:
        ok &= check(name + ": the user sees no message", not shown, str(shown))
    else:
        ok &= check(name + ": the user sees \"%s\"" % case.user_sees,
                    shown == [case.user_sees], "shown: %s" % shown)

    # failmode = safe opens only for "unavailable", and says so.
    opened = word == "allowed-unavailable"
    ok &= check(name + (": the warning line is logged" if opened else
                        ": no fail-open warning"),
                (WARNING in out) == opened, out)
    if failmode == "safe" and (case.expect["secure"][1] != "denied-unavailable"
                               or case.expect["safe"][1] != "allowed-unavailable"):
        ok &= check(name + ": safe does not open", got_word != "allowed-unavailable"
                    and (got_word == "approved" or status != 0),
                    "result=%s exit %s" % (got_word, status))

    # The retry rule, from what the emulator received.
    if case.requests is not None:
        suffix, want = case.requests
        n = sum(1 for r in requests if r["path"].endswith(suffix))
        ok &= check(name + ": %d %s request%s" % (want, suffix.lstrip("/"),
                                                   "" if want == 1 else "s"),
                    n == want, "saw %d: %s" % (n, [r["path"] for r in requests]))

    # Time.
    ok &= check(name + ": login within %d ms" % LOGIN_BOUND_MS,
                elapsed <= LOGIN_BOUND_MS, "elapsed_ms=%d" % elapsed)
    if case.time_bound_ms is not None:
        ok &= check(name + ": ends within %d ms (took %d)"
                    % (case.time_bound_ms, elapsed),
                    elapsed <= case.time_bound_ms,
                    "elapsed_ms=%d" % elapsed)
    elif case.step == "start" and to_prompt_ms is None:
        bound = TIMEOUT_MS + MODULE_SLACK_MS
        ok &= check(name + ": start request within timeout_ms (%d ms, took %d)"
                    % (TIMEOUT_MS, elapsed), elapsed <= bound,
                    "elapsed_ms=%d > %d" % (elapsed, bound))
    elif case.step == "start":
        # Measured from outside: pamtester's start is included.
        bound = TIMEOUT_MS + PROCESS_SLACK_MS
        ok &= check(name + ": start request within timeout_ms (%d ms, prompt "
                    "after %.0f)" % (TIMEOUT_MS, to_prompt_ms),
                    to_prompt_ms <= bound,
                    "prompt after %.0f ms > %d" % (to_prompt_ms, bound))
    else:
        cancels = [r for r in requests if re.search(r"/Verifications/VE", r["path"])]
        bound = TIMEOUT_MS + (CANCEL_BUDGET_MS if cancels else 0)
        took = after_code_ms if after_code_ms is not None else 1e9
        ok &= check(name + ": check%s within %d ms (took %.0f)"
                    % (" and cancel" if cancels else "", bound, took),
                    took <= bound + PROCESS_SLACK_MS,
                    "%.0f ms from the code to the end > %d" % (took, bound))
    return ok


def probe_blackhole(ctx):
    """The connect-timeout fixture must really time out a connection."""
    t = time.monotonic()
    r = subprocess.run(["curl", "-sS", "--connect-timeout", "1", "-m", "3",
                        "https://127.0.0.1:%d/" % ctx.blackhole.port],
                       capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    took = time.monotonic() - t
    return check("fixture: a connection to the full accept queue times out "
                 "(curl exit 28 after ~1 s)",
                 r.returncode == 28 and 0.8 <= took <= 2.0,
                 "curl exit %d after %.2f s: %s" % (r.returncode, took, r.stderr))


def probe_dns():
    t = time.monotonic()
    r = subprocess.run(["curl", "-sS", "-m", "3", "https://nonexistent.invalid/"],
                       capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin",
                            "RES_OPTIONS": "timeout:1 attempts:1"})
    took = time.monotonic() - t
    return check("fixture: nonexistent.invalid does not resolve, fast "
                 "(curl exit 6 in %.2f s)" % took,
                 r.returncode == 6 and took < 1.5,
                 "curl exit %d after %.2f s: %s" % (r.returncode, took, r.stderr))


def main():
    h.require_root("the module accepts only a root-owned config file")
    if len(sys.argv) != 2:
        print("usage: test_failure_table.py MODULE_SO", file=sys.stderr)
        return 2
    module = os.path.abspath(sys.argv[1])
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="ptv-failures.")
    ctx = None
    table = rows()
    tested = 0
    ran = 0
    try:
        ctx = Context(work, module)
        probe_blackhole(ctx)
        probe_dns()
        only = os.environ.get("PTV_FAILURES_ONLY")
        for fault, cases in table:
            if only and only not in fault:
                continue
            ran += 1
            row_ok = True
            for case in cases:
                for failmode in ("secure", "safe"):
                    row_ok &= run_case(ctx, fault, case, failmode)
            tested += 1 if row_ok else 0
            print("%s row: %s" % ("PASS" if row_ok else "FAIL", fault), flush=True)
    finally:
        if ctx is not None:
            ctx.close()
        shutil.rmtree(work, ignore_errors=True)
    print("%d of %d failure cases tested." % (tested, ran))
    print("runtime %.1f s" % (time.monotonic() - started))
    return h.summary()


if __name__ == "__main__":
    sys.exit(main())
