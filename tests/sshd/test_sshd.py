#!/usr/bin/python3
"""End-to-end tests through the real OpenSSH server: Debian's /usr/sbin/sshd
runs in the foreground on 127.0.0.1 with a PAM service of its own that loads
the module, the real ssh client logs in to real test accounts, and the
bundled Verify emulator answers over HTTPS.

Usage: test_sshd.py --module MODULE [--keep]

MODULE is what goes into the PAM service line: an absolute path to a built
pam_twilio_verify.so, or the bare name pam_twilio_verify.so for the
installed module.  --keep keeps the temporary directory.

Needs root.  It changes the system for the duration of the run and undoes
the changes at the end, also on failure:
  * /etc/pam.d/ptv-e2e-<random>: the PAM service (sshd's PAM service name is
    the base name of its argv[0], so sshd is started through a symbolic link
    of that name and /etc/pam.d/sshd is never read);
  * two accounts ptve2e<random> (useradd -m, userdel -r);
  * /dev/log, only when it does not exist: a datagram socket bound by this
    test to collect the module's syslog lines (with a syslog daemon running,
    the log assertions are skipped);
  * /run/sshd is created if missing and left in place.
"""

import argparse
import atexit
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time

import pexpect

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, os.path.join(HERE, "..", "ldap"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from emulator_client import Emulator  # noqa: E402
from slapd_server import SlapdServer  # noqa: E402
from ptv_system import Cleanup, create_account, open_syslog, run  # noqa: E402
import ptv_harness as h  # noqa: E402
from ptv_harness import check, pam_line, skip, write_file  # noqa: E402

SSHD = "/usr/sbin/sshd"
SSH = "/usr/bin/ssh"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
DEV_LOG = "/dev/log"
PAM_DIR = "/etc/pam.d"

PHONE = "+15551230042"
CODE_PROMPT = r"SMS code sent to \+1\*\*\*\*\*\*0042(?: \(or type resend(?:, call)?\))?: "
PASSWORD_PROMPT = r"Password: "
DENIED = r"Permission denied"
PARTIAL = r'Authenticated using "publickey" with partial success'
MARKER = "ptv-e2e-ok"
MARKER_RX = re.compile(r"^%s\r?$" % re.escape(MARKER), re.M)

# syslog(3) priorities: facility LOG_AUTHPRIV (10), severities.
LOG_AUTHPRIV = 10
LOG_WARNING, LOG_NOTICE, LOG_INFO = 4, 5, 6


# -- sshd --------------------------------------------------------------------

class Sshd:
    """One foreground sshd (-D -e) started through the service's symlink."""

    def __init__(self, work, link, host_key, methods, users, name):
        self.work, self.link, self.host_key = work, link, host_key
        self.methods, self.users, self.name = methods, users, name
        self.config = os.path.join(work, "sshd_config." + name)
        self.pid_file = os.path.join(work, "sshd.%s.pid" % name)
        self.log = os.path.join(work, "sshd.%s.log" % name)
        self.proc = None
        self.port = None

    def _write_config(self):
        write_file(self.config, "\n".join([
            "Port %d" % self.port,
            "ListenAddress 127.0.0.1",
            "HostKey %s" % self.host_key,
            "PidFile %s" % self.pid_file,
            "UsePAM yes",
            "KbdInteractiveAuthentication yes",
            "PasswordAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin no",
            "AuthenticationMethods %s" % self.methods,
            "AuthorizedKeysFile .ssh/authorized_keys",
            "AllowUsers %s" % " ".join(self.users),
            "LogLevel VERBOSE",
            "LoginGraceTime 30",
            "MaxAuthTries 10",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "AllowAgentForwarding no",
            "PermitTTY no",
            "",
        ]), 0o600)

    def start(self, tries=3):
        for _ in range(tries):
            self.port = h.free_port()
            self._write_config()
            t = run([self.link, "-t", "-f", self.config])
            if t.returncode != 0:
                raise RuntimeError("sshd -t rejects %s: %s" % (self.config, t.stdout))
            self.proc = h.start_logged(
                [self.link, "-D", "-e", "-f", self.config], self.log,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"})
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if "Server listening on 127.0.0.1 port %d" % self.port in self.log_text():
                    return self
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            self.stop()
            if "Address already in use" not in self.log_text():
                break
        raise RuntimeError("sshd %s did not start: %s" % (self.name, self.log_text()[-2000:]))

    def log_text(self):
        try:
            with open(self.log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        p = self.proc
        if p is None:
            return
        self.proc = None
        try:
            with open(self.pid_file) as f:
                from_file = int(f.read().strip() or 0)
        except (OSError, ValueError):
            from_file = None
        if from_file not in (None, p.pid):
            print("note: %s holds pid %s, started pid %d" % (self.pid_file, from_file, p.pid),
                  file=sys.stderr)
        h.stop(p)


# -- ssh client --------------------------------------------------------------

class Login:
    def __init__(self):
        self.status = None
        self.output = ""
        self.prompts = []        # "password" / "code", in order
        self.unexpected = None   # what arrived instead of an expected prompt
        self.partial_at = None   # monotonic time of the publickey partial success
        self.denied_at = None    # monotonic time of "Permission denied"

    @property
    def got_in(self):
        return self.status == 0 and MARKER_RX.search(self.output) is not None

    @property
    def denied(self):
        return (self.status not in (0, None) and DENIED in self.output
                and MARKER_RX.search(self.output) is None)

    def describe(self):
        return "exit %s, prompts %s%s, output:\n%s" % (
            self.status, self.prompts,
            "" if self.unexpected is None else ", got %s instead" % self.unexpected,
            self.output)


def ssh_login(port, user, steps, em, seen_codes, key=None, prompts=1, timeout=30,
              source=None):
    """Logs in with the real ssh client.  steps is a list of
    ("password", text) or ("code", "right" | "wrong" | text): the prompt
    expected next and the answer to type. source: the loopback address the
    client connects from (sshd's PAM_RHOST), 127.0.0.1 when not given."""
    args = ["-F", "/dev/null", "-p", str(port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=VERBOSE", "-o", "BatchMode=no",
            "-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes",
            "-o", "NumberOfPasswordPrompts=%d" % prompts]
    if key:
        args += ["-o", "IdentityFile=" + key, "-o",
                 "PreferredAuthentications=publickey,keyboard-interactive"]
    else:
        args += ["-o", "PubkeyAuthentication=no", "-o",
                 "PreferredAuthentications=keyboard-interactive"]
    if source:
        args += ["-b", source]
    args += ["%s@127.0.0.1" % user, "echo " + MARKER]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C", "HOME": os.environ.get("HOME", "/root"),
           "TERM": "dumb"}
    child = pexpect.spawn(SSH, args, env=env, encoding="utf-8", timeout=timeout)
    login = Login()
    out = []
    patterns = [PASSWORD_PROMPT, CODE_PROMPT, PARTIAL, DENIED, pexpect.EOF]
    names = ["password", "code", "partial", "denied", "eof"]
    try:
        i = 0
        while True:
            k = child.expect(patterns)
            now = time.monotonic()
            out.append(child.before + (child.after if isinstance(child.after, str) else ""))
            what = names[k]
            if what == "partial":
                login.partial_at = now
                continue
            if what == "denied":
                login.denied_at = now
                if i < len(steps):
                    login.unexpected = "denial"
                continue
            if what == "eof":
                if i < len(steps):
                    login.unexpected = login.unexpected or "end of session"
                break
            login.prompts.append(what)
            if i >= len(steps) or steps[i][0] != what:
                login.unexpected = "%s prompt" % what
                child.sendline("")  # not our turn: give an answer that is never right
                continue
            answer = steps[i][1]
            i += 1
            if what == "code":
                code = em.last_code(PHONE)
                if code:
                    seen_codes.add(code)
                if answer == "right":
                    answer = code or ""
                elif answer == "wrong":
                    answer = "000000" if code != "000000" else "000001"
            child.sendline(answer)
    except pexpect.ExceptionPexpect as e:
        out.append("\n[%s] %s" % (type(e).__name__, child.before))
        login.unexpected = login.unexpected or type(e).__name__
    finally:
        child.close(force=True)
    login.status = child.exitstatus
    login.output = "".join(out)
    return login


# -- the test ----------------------------------------------------------------

def module_config(em, user, failmode="secure", no_phone="deny", state_dir=None,
                  sources='[ "users" ]', extra=""):
    # state_dir: None keeps the module's default (/var/lib/pam_twilio_verify).
    return "# written by tests/sshd/test_sshd.py\n" + h.module_config(
        em, state_dir, 'failmode = "%s";\nno_phone = "%s";\nphone_sources = %s;\n'
        'users = ( ("%s", "%s") );\n%s' % (failmode, no_phone, sources, user, PHONE,
                                          extra))


# The directory of section L: the phone user's number, written the way
# people write numbers (the module removes the spaces and dashes).
DIRECTORY_LDIF = """dn: dc=example,dc=com
objectClass: dcObject
objectClass: organization
dc: example
o: Example Corp

dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: cn=pam,dc=example,dc=com
objectClass: simpleSecurityObject
objectClass: organizationalRole
cn: pam
userPassword: %(bind_pw)s

dn: uid=%(user)s,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: %(user)s
cn: SSH test user
sn: User
mobile: +1 555-123-0042
"""


def ldap_settings(directory, timeout_ms=2000):
    return h.group("ldap", [
        ("uri", directory.ldap_uri), ("starttls", True),
        ("ca_file", directory.ca_file), ("base", "ou=people,dc=example,dc=com"),
        ("filter", "(&(objectClass=inetOrgPerson)(uid=%u))"),
        ("attribute", "mobile"), ("bind_dn", directory.bind_dn),
        ("bind_password", directory.bind_pw), ("timeout_ms", timeout_ms)])


def pam_service(module, conf, password_first=False, then_permit=False):
    lines = ["# written by tests/sshd/test_sshd.py; removed at the end of the run"]
    if password_first:
        lines.append("@include common-auth")
    if "/" in module:  # a built module: its helper is next to it
        lines.append(pam_line(module, conf).rstrip("\n"))
    else:  # the installed module finds the installed helper
        lines.append("auth required %s conf=%s" % (module, conf))
    if then_permit:
        lines.append("auth required pam_permit.so")
    lines += ["@include common-account", "@include common-session", ""]
    return "\n".join(lines)


SYSTEM_CONF = "/etc/security/pam_twilio_verify.conf"
PROFILE = "/usr/share/pam-configs/twilio-verify"


def system_pam_main():
    """With the package installed: enable its pam-auth-update profile, log in
    through the machine's own sshd PAM service (/etc/pam.d/sshd, which
    includes common-auth), then disable the profile again. The package's
    configuration file is given real settings for the run and restored."""
    for path in (PROFILE, SYSTEM_CONF):
        if not os.path.exists(path):
            print("FAIL %s is missing: is libpam-twilio-verify installed?" % path)
            return 1
    cleanup = Cleanup()
    atexit.register(cleanup.run)
    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="ptv-sshd-system.")
    cleanup.add("rm " + work, lambda: shutil.rmtree(work, ignore_errors=True))
    with open(SYSTEM_CONF, "rb") as f:
        shipped = f.read()
    shipped_mode = os.stat(SYSTEM_CONF).st_mode & 0o7777

    def restore_conf():
        with open(SYSTEM_CONF, "wb") as f:
            f.write(shipped)
        os.chmod(SYSTEM_CONF, shipped_mode)
    cleanup.add("restore " + SYSTEM_CONF, restore_conf)
    user = "ptve2e" + secrets.token_hex(2)
    password = "Pw-" + secrets.token_hex(8)
    seen_codes = set()
    try:
        em = Emulator(os.path.join(work, "emulator"))
        cleanup.add("stop emulator", em.stop)
        em.start()
        host_key = os.path.join(work, "ssh_host_ed25519_key")
        r = run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", host_key])
        if r.returncode != 0:
            raise RuntimeError("ssh-keygen: " + r.stdout)
        with open(host_key + ".pub") as f:
            pubkey = f.read()  # any key will do: this setup uses passwords
        create_account(user, password, pubkey, cleanup)
        write_file(SYSTEM_CONF, module_config(em, user), 0o600)

        cleanup.add("pam-auth-update --disable twilio-verify",
                    lambda: run(["pam-auth-update", "--disable", "twilio-verify"]))
        r = run(["pam-auth-update", "--enable", "twilio-verify"])
        with open(os.path.join(PAM_DIR, "common-auth")) as f:
            common_auth = f.read()
        check("pam-auth-update --enable twilio-verify adds the module to common-auth",
              r.returncode == 0 and "pam_twilio_verify.so" in common_auth,
              r.stdout + common_auth)

        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        # Started as /usr/sbin/sshd, so its PAM service is the machine's "sshd".
        sshd = Sshd(work, SSHD, host_key, "keyboard-interactive", [user], "system")
        cleanup.add("stop sshd", sshd.stop)
        sshd.start()

        lg = ssh_login(sshd.port, user, [("password", password), ("code", "right")],
                       em, seen_codes)
        check("system sshd: password, then the code prompt, then the command runs",
              lg.got_in and lg.prompts == ["password", "code"], lg.describe())
        em.reset()
        lg = ssh_login(sshd.port, user,
                       [("password", password)] + [("code", "wrong")] * 3,
                       em, seen_codes)
        check("system sshd: right password, wrong codes: Permission denied",
              lg.denied and lg.prompts == ["password"] + ["code"] * 3, lg.describe())
        sshd.stop()
        r = run(["pam-auth-update", "--disable", "twilio-verify"])
        with open(os.path.join(PAM_DIR, "common-auth")) as f:
            common_auth = f.read()
        check("pam-auth-update --disable twilio-verify removes it again",
              r.returncode == 0 and "pam_twilio_verify" not in common_auth,
              r.stdout + common_auth)
    except Exception as e:
        import traceback
        traceback.print_exc()
        check("test setup and run: %s: %s" % (type(e).__name__, e), False)
    finally:
        cleanup.run()
    print("runtime %.1f s" % (time.monotonic() - started))
    return h.summary()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--module",
                    help="absolute path of pam_twilio_verify.so, or the bare name")
    ap.add_argument("--system-pam", action="store_true",
                    help="with the package installed: enable its pam-auth-update "
                         "profile and log in through /etc/pam.d/sshd")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    opts = ap.parse_args()
    h.require_root("needs root (accounts, /etc/pam.d, sshd, root-owned module config)")
    if opts.system_pam:
        return system_pam_main()
    if not opts.module:
        ap.error("--module is required")
    module = opts.module
    if "/" in module:
        module = os.path.abspath(module)
        if not os.path.isfile(module):
            print("FAIL module %s does not exist" % module)
            return 1
    for tool in (SSHD, SSH, SSH_KEYGEN):
        if not os.access(tool, os.X_OK):
            print("FAIL %s is missing (openssh-server and openssh-client are needed)" % tool)
            return 1

    cleanup = Cleanup()
    atexit.register(cleanup.run)

    def on_signal(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="ptv-sshd.")
    if opts.keep:
        cleanup.add("note", lambda: print("kept %s" % work, flush=True))
        keep_syslog = os.path.join(work, "syslog.txt")
    else:
        cleanup.add("rm " + work, lambda: shutil.rmtree(work, ignore_errors=True))
    tag = secrets.token_hex(3)
    service = "ptv-e2e-" + tag
    phone_user = "ptve2e" + secrets.token_hex(2)
    other_user = "ptve2e" + secrets.token_hex(2)
    while other_user == phone_user:
        other_user = "ptve2e" + secrets.token_hex(2)
    password = "Pw-" + secrets.token_hex(8)
    seen_codes = set()
    directory = None
    logins = []
    sshds = []

    try:
        # Syslog: ours only if nobody else has /dev/log.
        syslog = open_syslog(lambda text: print(text, flush=True))
        if syslog is not None:
            cleanup.add("remove " + DEV_LOG, syslog.close)
            if opts.keep:
                cleanup.add("save the collected syslog", lambda: write_file(
                    keep_syslog, syslog.all_text() + "\n", 0o600))

        em = Emulator(os.path.join(work, "emulator"))
        cleanup.add("stop emulator", em.stop)
        em.start()

        def em_reset():
            for m in em.outbox():
                seen_codes.add(m.get("code"))
            em.reset()

        # Keys: the client's key, used for both accounts; sshd's host key.
        client_key = os.path.join(work, "client_ed25519")
        host_key = os.path.join(work, "ssh_host_ed25519_key")
        for path in (client_key, host_key):
            r = run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "ptv-e2e", "-f", path])
            if r.returncode != 0:
                raise RuntimeError("ssh-keygen: " + r.stdout)
        with open(client_key + ".pub") as f:
            pubkey = f.read()

        for user in (phone_user, other_user):
            create_account(user, password, pubkey, cleanup)

        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        os.chmod("/run/sshd", 0o755)
        link = os.path.join(work, service)
        os.symlink(SSHD, link)

        conf = os.path.join(work, "pam_twilio_verify.conf")
        pam_file = os.path.join(PAM_DIR, service)
        cleanup.add("remove " + pam_file,
                    lambda: os.path.lexists(pam_file) and os.unlink(pam_file))

        def setup(failmode="secure", no_phone="deny", config=None, **pam):
            write_file(conf, config or module_config(
                em, phone_user, failmode, no_phone, os.path.join(work, "state")), 0o600)
            os.chown(conf, 0, 0)
            write_file(pam_file, pam_service(module, conf, **pam), 0o644)
            em.refuse(False)
            em_reset()
            return syslog.mark() if syslog else 0

        def module_lines(mark, needle=""):
            if not syslog:
                return []
            prefix = "pam_twilio_verify(%s:auth): " % service
            return syslog.wait_for(mark, prefix + needle)

        def log_check(name, pred_lines, detail_lines=None):
            if not syslog:
                skip(name, "no syslog collector (see the note above)")
                return
            check(name, pred_lines(), "\n".join(
                ln[2] for ln in (detail_lines() if detail_lines else syslog.since(0))))

        def logged(name, mark, *needles, pri=None, within="user="):
            """Checks that a module line since mark (the outcome line unless
            within says otherwise) holds every needle, at pri (a (facility,
            severity) pair) when given."""
            log_check(name, lambda: any(
                all(n in ln[2] for n in needles) and pri in (None, ln[:2])
                for ln in module_lines(mark, within)), lambda: syslog.since(mark))

        def login(port, user, steps, **kw):
            lg = ssh_login(port, user, steps, em, seen_codes, **kw)
            logins.append(lg)
            return lg

        users = [phone_user, other_user]

        # ---- A: password + code (keyboard-interactive only) ----------------
        sshd_a = Sshd(work, link, host_key, "keyboard-interactive", users, "A")
        sshds.append(sshd_a)
        cleanup.add("stop sshd A", sshd_a.stop)
        sshd_a.start()
        port = sshd_a.port

        mark = setup(password_first=True)
        lg = login(port, phone_user, [("password", password), ("code", "right")])
        check("A password + right code: the remote command runs", lg.got_in, lg.describe())
        check("A password + right code: password prompt, then one code prompt",
              lg.prompts == ["password", "code"], lg.describe())
        logged("A password + right code: result=approved logged at info, authpriv",
               mark, "result=approved", "user=%s " % phone_user, "phone=+1******0042 ",
               pri=(LOG_AUTHPRIV, LOG_INFO))

        mark = setup(password_first=True)
        lg = login(port, phone_user, [("password", password)] + [("code", "wrong")] * 3)
        check("A password + 3 wrong codes: Permission denied", lg.denied, lg.describe())
        check("A password + 3 wrong codes: three code prompts",
              lg.prompts == ["password", "code", "code", "code"], lg.describe())
        logged("A password + 3 wrong codes: result=denied-wrong-code attempts=3",
               mark, "result=denied-wrong-code attempts=3 ")

        mark = setup(password_first=True)
        lg = login(port, phone_user, [("password", "not-" + password)] * 2, prompts=2)
        check("A wrong password (twice): Permission denied", lg.denied, lg.describe())
        check("A wrong password: never asked for a code",
              "code" not in lg.prompts and lg.prompts == ["password"] * 2, lg.describe())
        check("A wrong password: no SMS sent, no request to the emulator",
              em.outbox() == [] and em.requests() == [],
              "outbox %s, requests %s" % (em.outbox(), em.requests()))
        log_check("A wrong password: the module never ran (no log line)",
                  lambda: time.sleep(0.5) is None and
                  not syslog.since(mark, "pam_twilio_verify("),
                  lambda: syslog.since(mark))
        sshd_a.stop()

        # ---- B: key + code (publickey,keyboard-interactive) ----------------
        sshd_b = Sshd(work, link, host_key, "publickey,keyboard-interactive", users, "B")
        sshds.append(sshd_b)
        cleanup.add("stop sshd B", sshd_b.stop)
        sshd_b.start()
        port = sshd_b.port

        mark = setup()
        lg = login(port, phone_user, [("code", "right")], key=client_key)
        check("B key + right code: the remote command runs", lg.got_in, lg.describe())
        check("B key + right code: key accepted first, no password prompt",
              lg.partial_at is not None and lg.prompts == ["code"], lg.describe())
        logged("B key + right code: result=approved", mark, "result=approved")

        mark = setup()
        lg = login(port, phone_user, [("code", "wrong")] * 3, key=client_key)
        check("B key + 3 wrong codes: Permission denied", lg.denied, lg.describe())
        check("B key + 3 wrong codes: three code prompts",
              lg.prompts == ["code"] * 3, lg.describe())

        # ---- C: emulator unreachable, setup B --------------------------------
        mark = setup(failmode="secure")
        em.refuse(True)
        lg = login(port, phone_user, [], key=client_key)
        check("C unreachable, failmode secure: Permission denied without a prompt",
              lg.denied and lg.prompts == [], lg.describe())
        elapsed = (lg.denied_at - lg.partial_at
                   if lg.denied_at and lg.partial_at else None)
        check("C unreachable, failmode secure: denied within 5 s of the key (%s)"
              % ("%.2f s" % elapsed if elapsed is not None else "not measured"),
              elapsed is not None and elapsed < 5.0, lg.describe())
        logged("C unreachable, failmode secure: result=denied-unavailable", mark,
               "result=denied-unavailable")

        mark = setup(failmode="safe")
        em.refuse(True)
        lg = login(port, phone_user, [], key=client_key)
        check("C unreachable, failmode safe: let in with the key alone",
              lg.got_in and lg.prompts == [], lg.describe())
        logged("C unreachable, failmode safe: LOG_WARNING \"WITHOUT the second factor\"",
               mark, "WITHOUT the second factor", pri=(LOG_AUTHPRIV, LOG_WARNING),
               within="")
        logged("C unreachable, failmode safe: result=allowed-unavailable", mark,
               "result=allowed-unavailable")
        em.refuse(False)

        # ---- D: no phone number, setup B -------------------------------------
        mark = setup(no_phone="deny")
        lg = login(port, other_user, [], key=client_key)
        check("D no phone, no_phone deny: Permission denied without a prompt",
              lg.denied and lg.prompts == [], lg.describe())
        check("D no phone, no_phone deny: no SMS sent", em.outbox() == [], str(em.outbox()))
        logged("D no phone, no_phone deny: result=denied-no-phone", mark,
               "result=denied-no-phone", "user=%s " % other_user)

        mark = setup(no_phone="skip", then_permit=True)
        lg = login(port, other_user, [], key=client_key)
        check("D no phone, no_phone skip + pam_permit: let in with the key",
              lg.got_in and lg.prompts == [], lg.describe())
        check("D no phone, no_phone skip: no SMS sent", em.outbox() == [], str(em.outbox()))
        logged("D no phone, no_phone skip: result=skipped-no-phone", mark,
               "result=skipped-no-phone")
        # ---- E: who is asked for a code (PAM_RHOST is the client's address) --
        def policy_config(extra):
            return module_config(em, phone_user, state_dir=os.path.join(work, "state-policy"),
                                 extra=extra)

        mark = setup(config=policy_config('exempt_networks = [ "127.0.0.2/32" ];\n'))
        lg = login(port, phone_user, [], key=client_key, source="127.0.0.2")
        check("E from an exempt network: in with the key alone, no code prompt",
              lg.got_in and lg.prompts == [] and em.requests() == [], lg.describe())
        logged("E from an exempt network: result=allowed-exempt-network with the address",
               mark, "result=allowed-exempt-network", "rhost 127.0.0.2 ",
               pri=(LOG_AUTHPRIV, LOG_NOTICE))
        mark = setup(config=policy_config('exempt_networks = [ "127.0.0.2/32" ];\n'))
        lg = login(port, phone_user, [("code", "right")], key=client_key, source="127.0.0.4")
        check("E from elsewhere: the code is asked for",
              lg.got_in and lg.prompts == ["code"], lg.describe())

        mark = setup(config=policy_config("grace_period_s = 600;\n"))
        lg = login(port, phone_user, [("code", "right")], key=client_key, source="127.0.0.3")
        check("E grace: the first login asks for the code",
              lg.got_in and lg.prompts == ["code"], lg.describe())
        mark = setup(config=policy_config("grace_period_s = 600;\n"))
        lg = login(port, phone_user, [], key=client_key, source="127.0.0.3")
        check("E grace: a second login from the same address gets no code prompt",
              lg.got_in and lg.prompts == [] and em.requests() == [], lg.describe())
        logged("E grace: result=allowed-grace", mark, "result=allowed-grace",
               "rhost 127.0.0.3")
        mark = setup(config=policy_config("grace_period_s = 600;\n"))
        lg = login(port, phone_user, [("code", "right")], key=client_key, source="127.0.0.5")
        check("E grace: from another address the code is asked for",
              lg.got_in and lg.prompts == ["code"], lg.describe())

        # ---- M: the messaging backend (the module makes and checks the code) --
        def messaging_config():
            return module_config(
                em, phone_user, state_dir=os.path.join(work, "state-messaging"),
                extra='backend = "messaging";\nmessaging = { from = "+15550100001";'
                      ' api_url = "%s"; };\n' % em.api_url)

        mark = setup(config=messaging_config())
        lg = login(port, phone_user, [("code", "right")], key=client_key)
        sent = [r for r in em.requests() if r["path"].endswith("/Messages.json")]
        check("M messaging backend + right code: the remote command runs, the code "
              "came as a message from the configured number",
              lg.got_in and lg.prompts == ["code"] and len(sent) == 1 and
              sent[0]["form"].get("From") == "+15550100001", lg.describe())
        logged("M messaging backend + right code: result=approved", mark,
               "result=approved", "phone=+1******0042 ")
        mark = setup(config=messaging_config())
        lg = login(port, phone_user, [("code", "wrong")] * 3, key=client_key)
        check("M messaging backend + 3 wrong codes: Permission denied",
              lg.denied and lg.prompts == ["code"] * 3, lg.describe())
        logged("M messaging backend + 3 wrong codes: result=denied-wrong-code", mark,
               "result=denied-wrong-code")

        # ---- L: the phone number from LDAP (a real slapd), setup B ------------
        # The users list names nobody here: the number can only come from
        # the directory, over StartTLS checked against the test CA.
        ldif = os.path.join(work, "directory.ldif")
        bind_pw = "Bind-" + secrets.token_hex(6)
        write_file(ldif, DIRECTORY_LDIF % {"user": phone_user, "bind_pw": bind_pw}, 0o644)
        directory = SlapdServer(os.path.join(work, "slapd"), os.path.join(work, "ldap-ca"),
                                ldif=ldif, anonymous_read=False)
        directory.bind_pw = bind_pw  # this directory's, not the fixture's
        cleanup.add("stop slapd", directory.stop)
        directory.start()

        def ldap_config(failmode="secure"):
            # A state directory of its own: the sections before used up
            # most of the phone user's send_limit.
            return module_config(em, "nobody-in-the-list", failmode, "deny",
                                 os.path.join(work, "state-ldap"), sources='[ "ldap" ]',
                                 extra=ldap_settings(directory))

        mark = setup(config=ldap_config())
        lg = login(port, phone_user, [("code", "right")], key=client_key)
        check("L number from LDAP + right code: the remote command runs",
              lg.got_in and lg.prompts == ["code"], lg.describe())
        sent = [m.get("to") for m in em.outbox()]
        check("L number from LDAP: the SMS went to the directory's number",
              sent == [PHONE], str(em.outbox()))
        logged("L number from LDAP: result=approved with the masked number", mark,
               "result=approved", "phone=+1******0042 ")

        mark = setup(config=ldap_config())
        lg = login(port, phone_user, [("code", "wrong")] * 3, key=client_key)
        check("L number from LDAP + 3 wrong codes: Permission denied",
              lg.denied and lg.prompts == ["code"] * 3, lg.describe())

        mark = setup(config=ldap_config())
        lg = login(port, other_user, [], key=client_key)
        check("L user not in the directory: denied without a prompt, no SMS",
              lg.denied and lg.prompts == [] and em.outbox() == [], lg.describe())
        logged("L user not in the directory: result=denied-no-phone", mark,
               "result=denied-no-phone")

        directory.stop()
        mark = setup(config=ldap_config("secure"))
        lg = login(port, phone_user, [], key=client_key)
        check("L directory down, failmode secure: denied without a prompt",
              lg.denied and lg.prompts == [] and em.outbox() == [], lg.describe())
        logged("L directory down, failmode secure: result=denied-unavailable", mark,
               "result=denied-unavailable", "ldap")
        sshd_b.stop()

        # ---- secrets in logs and outputs --------------------------------------
        em_reset()
        seen_codes.discard(None)
        texts = {"ssh output": "\n".join(lg.output for lg in logins),
                 "sshd log": "\n".join(s.log_text() for s in sshds)}
        if syslog:
            texts["syslog"] = syslog.all_text()
        else:
            skip("no secret in the syslog", "no syslog collector (see the note above)")
        check("codes were collected for the leak check", len(seen_codes) >= 3,
              str(len(seen_codes)))
        for what, text in texts.items():
            leaks = []
            if em.auth_token in text:
                leaks.append("auth token")
            if PHONE in text or PHONE[1:] in text:
                leaks.append("full phone number")
            if password in text:
                leaks.append("password")
            if directory is not None and directory.bind_pw in text:
                leaks.append("LDAP bind password")
            for code in seen_codes:
                if re.search(r"(?<![0-9A-Za-z])%s(?![0-9A-Za-z])" % re.escape(code), text):
                    leaks.append("code " + code)
            check("no auth token, code, password or full phone number in the %s" % what,
                  not leaks, ", ".join(leaks))
    except Exception as e:
        import traceback
        traceback.print_exc()
        check("test setup and run: %s: %s" % (type(e).__name__, e), False)
    finally:
        for s in sshds:
            s.stop()
        cleanup.run()

    print("runtime %.1f s" % (time.monotonic() - started))
    return h.summary()


if __name__ == "__main__":
    sys.exit(main())
