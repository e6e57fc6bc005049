#!/usr/bin/python3
"""Test fixture: a real, throwaway OpenLDAP server (Debian's slapd) on the
loopback interface.  Standard library only.

    sys.path.insert(0, "tests/ldap")
    from slapd_server import SlapdServer

    with SlapdServer(workdir, ca_dir) as ldap:
        ldap.ldap_uri       # ldap://127.0.0.1:PORT  (StartTLS available)
        ldap.ldaps_uri      # ldaps://127.0.0.1:PORT
        ldap.ca_file        # CA that signed the server certificate
        ldap.bind_dn, ldap.bind_pw
        ldap.search("(uid=alice)", ["mobile"]).entries
        ldap.pause(); ...; ldap.resume()    # simulate a hung directory

Everything lives in workdir: slapd.conf (old-style configuration, slapd -f),
the mdb database, the pid file and slapd's log (slapd.log).  The system
configuration in /etc/ldap/slapd.d is never read or changed.

slapd runs in the foreground as a direct child of this process ("-d none":
any -d keeps slapd from detaching; the "none" level still prints
configuration, TLS and listener errors, which "-d 0" silently drops), so
its pid is known and stop() can end exactly that process.

The server certificate comes from tests/emulator/make_test_ca.sh (SAN
DNS:localhost and IP:127.0.0.1).  Both URIs use the IP address: libldap
replaces the host name "localhost" by the machine's own host name before
checking a certificate, so ldaps://localhost fails verification against a
certificate issued for "localhost" on any machine not called localhost.

Needs: slapd, ldap-utils (ldapsearch), openssl.  Runs as root in the tests
(slapd then keeps root privileges; no -u/-g is passed).
"""

import atexit
import base64
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import ptv_harness as h  # noqa: E402

DEFAULT_LDIF = os.path.join(HERE, "directory.ldif")
MAKE_CA = os.path.join(HERE, "..", "emulator", "make_test_ca.sh")

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
LDAPSEARCH = "/usr/bin/ldapsearch"
MODULE_DIR = "/usr/lib/ldap"
SCHEMA_DIR = "/etc/ldap/schema"
SCHEMAS = ("core", "cosine", "inetorgperson")

# Names and secrets of the fixture directory (see directory.ldif).
SUFFIX = "dc=example,dc=com"
PEOPLE_BASE = "ou=people," + SUFFIX
ROOT_DN = "cn=admin," + SUFFIX
ROOT_PW = "admin-secret"
BIND_DN = "cn=pam," + SUFFIX
BIND_PW = "pam-bind-secret"

HOST = "127.0.0.1"

# Files make_test_ca.sh leaves in the CA directory that this fixture uses.
_CA_FILES = ("ca.pem", "server.pem", "server.key", "wronghost.pem", "wronghost.key")
_CERTS = ("server", "wronghost")

# A minimal environment for slapd and the OpenLDAP client tools.  The
# caller's environment may carry CA bundle variables (SSL_CERT_FILE,
# REQUESTS_CA_BUNDLE, ...) and LDAP* settings that must not leak in.
_BASE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "LC_ALL": "C"}


def make_ca(ca_dir):
    """Creates the test PKI in ca_dir unless every file used here exists."""
    if all(os.path.isfile(os.path.join(ca_dir, f)) for f in _CA_FILES):
        return
    subprocess.run(["/bin/sh", MAKE_CA, ca_dir], check=True, env=_BASE_ENV)


def client_env(ca_file):
    """Environment for ldapsearch and friends: only ca_file is trusted.

    libldap always reads /etc/ldap/ldap.conf (whose TLS_CACERT is the system
    bundle); LDAPTLS_* variables are applied after it and win.  LDAPNOINIT
    must not be set: it would make libldap ignore these variables too."""
    env = dict(_BASE_ENV)
    env.update({
        "HOME": "/nonexistent",      # no ~/.ldaprc
        "LDAPCONF": "/dev/null",
        "LDAPRC": "/dev/null",
        "LDAPTLS_CACERT": ca_file,
        "LDAPTLS_REQCERT": "demand",
    })
    return env


def parse_ldif(text):
    """Parses ldapsearch -LLL output into [(dn, {attr_lower: [value, ...]})].

    Handles continuation lines and base64 ("attr:: ...") values; comments
    and "# refldap" lines are skipped."""
    entries = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = []
        for line in block.split("\n"):
            if line.startswith(" ") and lines:
                lines[-1] += line[1:]
            elif line and not line.startswith("#"):
                lines.append(line)
        dn, attrs = None, {}
        for line in lines:
            name, sep, value = line.partition(":")
            if not sep:
                continue
            if value.startswith(":"):
                value = base64.b64decode(value[1:].strip()).decode("utf-8", "replace")
            else:
                value = value[1:] if value.startswith(" ") else value
            if name.lower() == "dn":
                dn = value
            else:
                attrs.setdefault(name.lower(), []).append(value)
        if dn is not None:
            entries.append((dn, attrs))
    return entries


class SearchResult:
    """Outcome of one ldapsearch run."""

    def __init__(self, args, returncode, stdout, stderr):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.entries = parse_ldif(stdout) if returncode == 0 else []

    @property
    def ok(self):
        return self.returncode == 0

    def values(self, attr):
        """All values of attr over all entries, in the order returned."""
        return [v for _, a in self.entries for v in a.get(attr.lower(), [])]

    def __repr__(self):
        return "SearchResult(rc=%s, entries=%d, stderr=%r)" % (
            self.returncode, len(self.entries), self.stderr.strip())


class SlapdServer(h.Started):
    """One slapd with the fixture directory, listening on ldap:// (with
    StartTLS) and ldaps:// on two loopback ports.

    workdir         directory for the configuration, database and log
                    (created if missing; reuse it only for a restart of the
                    same server)
    ca_dir          test PKI from make_test_ca.sh (created if incomplete)
    ldif            data loaded with slapadd before the first start
    anonymous_read  whether anonymous clients may read entries (the bind
                    account cn=pam may always read them)
    cert            "server" (SAN localhost, 127.0.0.1) or "wronghost"
                    (SAN wrong.example only, for host name mismatch tests)
    debug           extra slapd debug levels for the log, e.g. "stats" to
                    log every connection and operation

    Attributes: ldap_uri, ldaps_uri, ldap_port, ldaps_port, host, pid (None
    while not running), ca_file, suffix, people_base, root_dn, root_pw,
    bind_dn, bind_pw, conf_path, db_dir, log_path.

    The ports are chosen by the first start() and kept by later ones, so a
    stopped server comes back at the same URIs with the same data.
    """

    def __init__(self, workdir, ca_dir, ldif=DEFAULT_LDIF, anonymous_read=True,
                 cert="server", debug=None):
        if cert not in _CERTS:
            raise ValueError("cert must be one of %s, not %r" % (_CERTS, cert))
        self.workdir = os.path.abspath(workdir)
        self.ca_dir = os.path.abspath(ca_dir)
        self.ldif = os.path.abspath(ldif)
        self.anonymous_read = anonymous_read
        self.cert = cert
        self.debug = debug

        self.ca_file = os.path.join(self.ca_dir, "ca.pem")
        self.cert_file = os.path.join(self.ca_dir, cert + ".pem")
        self.key_file = os.path.join(self.ca_dir, cert + ".key")

        self.suffix = SUFFIX
        self.people_base = PEOPLE_BASE
        self.root_dn, self.root_pw = ROOT_DN, ROOT_PW
        self.bind_dn, self.bind_pw = BIND_DN, BIND_PW

        self.conf_path = os.path.join(self.workdir, "slapd.conf")
        self.db_dir = os.path.join(self.workdir, "db")
        self.log_path = os.path.join(self.workdir, "slapd.log")
        self.pid_file = os.path.join(self.workdir, "slapd.pid")
        self.args_file = os.path.join(self.workdir, "slapd.args")

        self.host = HOST
        self.ldap_port = self.ldaps_port = None
        self.ldap_uri = self.ldaps_uri = None
        self.pid = None
        self.paused = False
        self.start_seconds = None    # how long the last start() took
        self.proc = None
        self._loaded = False

    # -- set-up ------------------------------------------------------------

    def _write_config(self):
        acl_readers = ['    by dn.exact="%s" read' % self.bind_dn]
        if self.anonymous_read:
            acl_readers.append("    by anonymous read")
        lines = [
            "# Generated by tests/ldap/slapd_server.py; started with slapd -f.",
            "",
        ]
        lines += ["include %s/%s.schema" % (SCHEMA_DIR, s) for s in SCHEMAS]
        lines += [
            "",
            "modulepath %s" % MODULE_DIR,
            "moduleload back_mdb",
            "",
            "pidfile %s" % self.pid_file,
            "argsfile %s" % self.args_file,
            # No syslog: messages go to stderr (the log file) through -d.
            "loglevel 0",
            "",
            "TLSCACertificateFile %s" % self.ca_file,
            "TLSCertificateFile %s" % self.cert_file,
            "TLSCertificateKeyFile %s" % self.key_file,
            "",
            "database mdb",
            'suffix "%s"' % self.suffix,
            'rootdn "%s"' % self.root_dn,
            "rootpw %s" % self.root_pw,
            "directory %s" % self.db_dir,
            "maxsize 16777216",
            "",
            # Passwords are only ever used to authenticate (simple bind).
            "access to attrs=userPassword",
            "    by anonymous auth",
            "    by * none",
            "",
            "access to *",
        ] + acl_readers + [
            "    by * none",
            "",
        ]
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines))
        os.chmod(self.conf_path, 0o600)

    def _load(self):
        """Creates the database from the LDIF (once per workdir)."""
        if self._loaded:
            return
        if os.path.isdir(self.db_dir) and os.listdir(self.db_dir):
            raise RuntimeError("%s is not empty: use a fresh workdir" % self.db_dir)
        os.makedirs(self.db_dir, mode=0o700, exist_ok=True)
        r = subprocess.run([SLAPADD, "-f", self.conf_path, "-l", self.ldif],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=_BASE_ENV,
                           universal_newlines=True)
        if r.returncode != 0:
            raise RuntimeError("slapadd of %s failed (exit %d):\n%s"
                               % (self.ldif, r.returncode, r.stdout))
        self._loaded = True

    # -- life cycle --------------------------------------------------------

    def start(self, timeout=10.0, tries=3):
        """Starts slapd and waits until it answers a search; returns self.

        Raises RuntimeError with the end of slapd's log if it exits or does
        not answer within timeout seconds."""
        if self.proc is not None:
            raise RuntimeError("slapd is already running (pid %d)" % self.proc.pid)
        began = time.monotonic()
        os.makedirs(self.workdir, mode=0o700, exist_ok=True)
        make_ca(self.ca_dir)
        self._write_config()
        self._load()

        fixed_ports = self.ldap_port is not None
        for attempt in range(1 if fixed_ports else tries):
            if not fixed_ports:
                self._set_ports(h.free_port(HOST), h.free_port(HOST))
            log_start = self._log_size()
            if self._spawn_and_wait(timeout):
                self.start_seconds = time.monotonic() - began
                atexit.register(self.stop)
                return self
            self._terminate()
            log = self.log_text(log_start)
            if "Address already in use" not in log:
                break
        raise RuntimeError("slapd did not come up on %s and %s; log %s:\n%s"
                           % (self.ldap_uri, self.ldaps_uri, self.log_path,
                              log[-4000:]))

    def _set_ports(self, ldap_port, ldaps_port):
        self.ldap_port, self.ldaps_port = ldap_port, ldaps_port
        self.ldap_uri = "ldap://%s:%d" % (self.host, ldap_port)
        self.ldaps_uri = "ldaps://%s:%d" % (self.host, ldaps_port)

    def _spawn_and_wait(self, timeout):
        argv = [SLAPD, "-f", self.conf_path,
                "-h", "%s/ %s/" % (self.ldap_uri, self.ldaps_uri),
                "-d", "none"]
        if self.debug:
            argv += ["-d", str(self.debug)]
        try:
            os.unlink(self.pid_file)
        except FileNotFoundError:
            pass
        with open(self.log_path, "ab") as log:
            log.write(("--- %s\n" % " ".join(argv)).encode())
        self.proc = h.start_logged(argv, self.log_path, env=_BASE_ENV,
                                    cwd=self.workdir)
        self.pid = self.proc.pid
        self.paused = False

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self._answers(deadline):
                return True
            time.sleep(0.05)
        return False

    def _answers(self, deadline):
        """True once both ports accept connections and a search succeeds.

        The bare connection to the ldaps port leaves one harmless "TLS:
        can't accept" line in the log per start."""
        for port in (self.ldap_port, self.ldaps_port):
            try:
                socket.create_connection((self.host, port), timeout=0.5).close()
            except OSError:
                return False
        remaining = max(0.5, deadline - time.monotonic())
        # Bound as the root DN, so this works whatever the ACLs allow.
        r = self.search("(objectClass=*)", ["dn"], base=self.suffix, scope="base",
                        bind_dn=self.root_dn, password=self.root_pw,
                        timeout=remaining)
        return r.ok and len(r.entries) == 1

    def stop(self, timeout=5.0):
        """Stops slapd: SIGTERM, then SIGKILL after timeout seconds.

        Signals only the process this object started, and reaps it.
        Idempotent; also runs at interpreter exit."""
        atexit.unregister(self.stop)
        self._terminate(timeout)

    def _terminate(self, timeout=5.0):
        h.stop(self.proc, timeout, stopped=self.paused)
        self.proc = None
        self.pid = None
        self.paused = False

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def pause(self, timeout=2.0):
        """Freezes slapd with SIGSTOP: the kernel still completes TCP
        handshakes on its listening sockets, but nothing answers.  Returns
        once the process is seen stopped."""
        self._signal_and_wait(signal.SIGSTOP, True, timeout)
        self.paused = True

    def resume(self, timeout=2.0):
        """Undoes pause() with SIGCONT."""
        self._signal_and_wait(signal.SIGCONT, False, timeout)
        self.paused = False

    def _signal_and_wait(self, sig, stopped, timeout):
        if not self.running:
            raise RuntimeError("slapd is not running")
        self.proc.send_signal(sig)
        deadline = time.monotonic() + timeout
        while (self._state() == "T") != stopped:
            if time.monotonic() > deadline:
                raise RuntimeError("slapd (pid %d) did not %s" % (
                    self.pid, "stop" if stopped else "continue"))
            time.sleep(0.01)

    def _state(self):
        """Process state letter from /proc ("T" when stopped)."""
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                # The command name in parentheses may contain spaces.
                return f.read().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return None

    # -- logs and clients --------------------------------------------------

    def _log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_text(self, offset=0):
        """slapd's output (all starts, appended), from byte offset on."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def client_env(self):
        """Environment for OpenLDAP client tools that trusts only the test CA."""
        return client_env(self.ca_file)

    def ldapsearch(self, args, timeout=10.0, env=None):
        """Runs ldapsearch with args (a list) in client_env() updated with
        env (e.g. {"LDAPTLS_REQCERT": "never"}); returns a SearchResult.
        A run that exceeds timeout is killed and reported with returncode
        None."""
        argv = [LDAPSEARCH] + list(args)
        run_env = self.client_env()
        run_env.update(env or {})
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=run_env, timeout=timeout,
                               universal_newlines=True)
        except subprocess.TimeoutExpired as e:
            def text(b):
                if isinstance(b, bytes):
                    return b.decode("utf-8", "replace")
                return b or ""
            return SearchResult(argv, None, text(e.stdout), text(e.stderr))
        return SearchResult(argv, r.returncode, r.stdout, r.stderr)

    def search(self, filter, attrs=(), base=None, scope="sub", uri=None,
               starttls=False, bind_dn=None, password=None, extra=(),
               timeout=10.0, env=None):
        """Simple-bind (anonymous unless bind_dn) search; returns a
        SearchResult.  uri defaults to ldap_uri, base to the suffix;
        starttls=True adds -ZZ (StartTLS required); extra are more
        ldapsearch options; env as for ldapsearch()."""
        args = ["-x", "-LLL", "-o", "ldif-wrap=no",
                "-H", uri or self.ldap_uri,
                "-b", base or self.suffix, "-s", scope]
        if starttls:
            args.append("-ZZ")
        if bind_dn is not None:
            args += ["-D", bind_dn, "-w", password or ""]
        args += list(extra)
        args.append(filter)
        args += list(attrs)
        return self.ldapsearch(args, timeout=timeout, env=env)

    def __repr__(self):
        return "SlapdServer(%s, pid=%s)" % (self.ldap_uri, self.pid)
