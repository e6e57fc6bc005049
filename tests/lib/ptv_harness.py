"""What the Python test harnesses (and bench/bench.py) share, so that none
keeps a copy of its own:

  - PASS/FAIL/SKIP bookkeeping (check, skip, summary) and the root-only
    skip (require_root);
  - private root-owned files (write_file, write_private) and safe copies
    of programs under /run (safe_dir, safe_copy);
  - the module's configuration: the twilio group pointing at the emulator
    (twilio_group, module_config, group) and its PAM service line
    (pam_line);
  - the pam_wrapper/nss_wrapper environment and files (wrapper_env,
    write_services, write_accounts, PamWork);
  - processes started and stopped by pid (start_logged, stop, Started,
    kill_pid, free_port), and the start barrier of the concurrent tests
    (StartBarrier, type_into);
  - a run's own secrets listed for the final scan (record_secrets);
  - percentiles (percentile, median);
  - one pamtester login (pamtester, Run, result_of).

Standard library only (pexpect is imported by pamtester() alone), so that
the fixtures (tests/emulator/emulator_client.py, tests/ldap/slapd_server.py)
can use it too.

    sys.path.insert(0, os.path.join(HERE, "..", "lib"))
    import ptv_harness as h
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# -- checks ---------------------------------------------------------------------

SKIPPED = 77  # the exit status ctest counts as skipped (SKIP_RETURN_CODE)
results = {"passed": 0, "failed": 0, "skipped": 0}


def check(name, ok, detail=""):
    """Counts and prints one check; returns whether it passed."""
    ok = bool(ok)
    results["passed" if ok else "failed"] += 1
    print("%s %s%s" % ("PASS" if ok else "FAIL", name,
                       "" if ok or detail in ("", None) else ": %s" % (detail,)),
          flush=True)
    return ok


def skip(name, why):
    """A check that cannot run here; counted apart."""
    results["skipped"] += 1
    print("SKIP %s (%s)" % (name, why), flush=True)


def summary():
    """Prints the counts; the exit status is 0 only if checks ran and all
    passed."""
    if results["skipped"]:
        print("%d skipped (not counted)" % results["skipped"])
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 0 if results["failed"] == 0 and results["passed"] > 0 else 1


def require_root(why):
    """Ends the run as skipped unless it runs as root."""
    if os.geteuid() != 0:
        print("skipped: " + why, flush=True)
        sys.exit(SKIPPED)


# -- files ----------------------------------------------------------------------

def write_file(path, text, mode):
    """Writes text to path (never through a symbolic link) with mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def write_private(path, text):
    """A root-owned 0600 file, as the module requires for its config."""
    write_file(path, text, 0o600)


def safe_dir(prefix="ptv-bin."):
    """A new root-owned 0755 directory under /run: not writable by group or
    others all the way up, as the module requires of its helper and lookup
    commands, and outside /tmp, which pam_wrapper's private mounts and the
    concurrent tests' private /tmp may hide. The caller removes it."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/run")
    os.chmod(d, 0o755)
    return d


def safe_copy(path, prefix="ptv-bin."):
    """A 0755 copy of a program in a new safe_dir(). Returns (copy,
    directory to remove)."""
    d = safe_dir(prefix)
    copy = os.path.join(d, os.path.basename(path))
    shutil.copy2(path, copy)
    os.chmod(copy, 0o755)
    return copy, d


# -- the module's configuration ---------------------------------------------------

def group(name, settings, extra=""):
    """A libconfig group: settings are (name, value) pairs, strings quoted,
    booleans true or false, None left out; extra: whole setting lines."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        return "%d" % v if isinstance(v, int) else '"%s"' % v
    return "%s = {\n%s%s};\n" % (name, "".join(
        "  %s = %s;\n" % (k, value(v)) for k, v in settings if v is not None), extra)


def twilio_group(em, api_url=None, ca_file=None, connect_timeout_ms=1000,
                 timeout_ms=2000, extra=""):
    """The twilio group pointing at the emulator em (its URL and CA unless
    given), plus extra (whole setting lines)."""
    return group("twilio", [
        ("account_sid", em.account_sid), ("auth_token", em.auth_token),
        ("service_sid", em.service_sid), ("api_url", api_url or em.api_url),
        ("ca_file", ca_file or em.ca_file),
        ("connect_timeout_ms", connect_timeout_ms), ("timeout_ms", timeout_ms)],
        extra)


def module_config(em, state_dir, body, twilio_extra="", **twilio):
    """twilio_group(em, **twilio) with twilio_extra, then state_dir (None:
    the module's default), then body (the settings under test)."""
    state = "" if state_dir is None else 'state_dir = "%s";\n' % state_dir
    return twilio_group(em, extra=twilio_extra, **twilio) + state + body


def helper_for(module):
    """The helper that goes with a built module: PTV_HELPER when set, else
    twilio-verify-helper next to the module (the build tree has both at its
    top)."""
    return os.environ.get("PTV_HELPER") or os.path.join(
        os.path.dirname(os.path.abspath(module)), "twilio-verify-helper")


def pam_line(module, conf, helper=None, extra=""):
    """The module's auth line of a PAM service, with its helper."""
    return "auth required %s conf=%s helper=%s%s\n" % (
        module, conf, helper or helper_for(module), extra)


# -- pam_wrapper and nss_wrapper ----------------------------------------------------

def wrapper_preload():
    """The wrappers to preload; under a sanitizer build the ASan runtime
    (PTV_ASAN_RUNTIME) comes first."""
    return ":".join(filter(None, [os.environ.get("PTV_ASAN_RUNTIME"),
                                  "libpam_wrapper.so", "libnss_wrapper.so"]))


def wrapper_env(pam_dir, passwd, group, base=None, preload_as="LD_PRELOAD"):
    """base (default: this process's environment) with pam_wrapper serving
    the services in pam_dir and nss_wrapper the accounts in passwd and
    group. preload_as names the variable the preload list goes in: another
    name than LD_PRELOAD lets a script preload the wrappers into pamtester
    alone (LD_PRELOAD is then removed)."""
    env = dict(os.environ if base is None else base)
    env.pop("LD_PRELOAD", None)
    env.update({
        preload_as: wrapper_preload(),
        "PAM_WRAPPER": "1",
        "PAM_WRAPPER_SERVICE_DIR": pam_dir,
        "PAM_WRAPPER_DEBUGLEVEL": "2",
        "NSS_WRAPPER_PASSWD": passwd,
        "NSS_WRAPPER_GROUP": group,
    })
    return env


def write_services(pam_dir, services):
    """PAM service files for pam_wrapper: services maps a name to its text;
    the service "other" denies."""
    os.makedirs(pam_dir, exist_ok=True)
    for name, text in dict(services, other="auth required pam_deny.so\n").items():
        with open(os.path.join(pam_dir, name), "w") as f:
            f.write(text)


def write_accounts(passwd, group, users, nobody=False):
    """nss_wrapper's passwd and group: users are (name, uid, GECOS), each
    with a group of its own; nobody adds nobody:nogroup (65534), a lookup
    command's user."""
    with open(passwd, "w") as p, open(group, "w") as g:
        for name, uid, gecos in users:
            p.write("%s:x:%d:%d:%s:/nonexistent:/bin/false\n" % (name, uid, uid, gecos))
            g.write("%s:x:%d:\n" % (name, uid))
        if nobody:
            p.write("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
            g.write("nogroup:x:65534:\n")


class PamWork:
    """A pam_wrapper service directory with one service running the module
    (configuration work/ptv.conf), and an nss_wrapper passwd/group. users:
    names, (name, GECOS) or (name, GECOS, uid) (the GECOS field is the name
    and the uids count from 3000 when not given)."""

    def __init__(self, work, module, service="twilio-test", users=("demo",),
                 helper=None):
        self.work, self.module, self.service = work, module, service
        self.conf = os.path.join(work, "ptv.conf")
        self.pam_dir = os.path.join(work, "pam.d")
        self.use_helper(helper)
        self.passwd = os.path.join(work, "passwd")
        self.group = os.path.join(work, "group")
        rows = []
        for i, user in enumerate(users):
            user = (user,) if isinstance(user, str) else tuple(user)
            name, gecos, uid = user + (None, user[0], 3000 + i)[len(user):]
            rows.append((name, uid, gecos))
        write_accounts(self.passwd, self.group, rows, nobody=True)

    def use_helper(self, helper=None):
        """(Re)writes the service, with this helper (default: helper_for)."""
        write_services(self.pam_dir, {
            self.service: pam_line(self.module, self.conf, helper)})

    def env(self, extra=None, preload_as="LD_PRELOAD"):
        """This process's environment with extra, under the wrappers."""
        base = dict(os.environ)
        base.update(extra or {})
        return wrapper_env(self.pam_dir, self.passwd, self.group, base, preload_as)


# -- processes --------------------------------------------------------------------

def start_logged(argv, log_path, env=None, cwd=None):
    """Starts argv with stdin from /dev/null and stdout and stderr appended
    to log_path; returns the subprocess.Popen (stop it with stop())."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, close_fds=True, env=env, cwd=cwd)


def stop(proc, timeout=5.0, stopped=False):
    """Ends a process this test started, by its pid: SIGTERM (and SIGCONT
    when it was stopped with SIGSTOP, which keeps SIGTERM pending), then
    SIGKILL after timeout seconds; reaps it. A Popen signals nothing once
    its child is reaped, so a recycled pid is never hit. Returns the exit
    status (None for no process)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        if stopped:
            proc.send_signal(signal.SIGCONT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class Started:
    """A fixture that runs one process (self.proc, started by start(),
    ended by pid by stop()) as a context manager: started on entry unless
    it runs already, stopped however the block ends."""

    proc = None

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def teardown(fixtures=(), dirs=()):
    """The end of a test: stops each fixture (its stop()), then removes each
    directory."""
    for fixture in fixtures:
        fixture.stop()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def kill_pid(pid):
    """SIGKILL to a child started with os.posix_spawn or fork and not yet
    reaped (its pid cannot have been reused)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def free_port(host="127.0.0.1"):
    """A TCP port on host that was free a moment ago: another process may
    take it first, so callers retry on "Address already in use"."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


class StartBarrier:
    """Holds the concurrent tests' logins until all are spawned, then lets
    them go in the same instant: each login's shell opens a FIFO for
    reading, which blocks until release() opens its other end (read-write,
    which never blocks, and kept open so that no late opener blocks).

    login() starts a pamtester login behind it in a mount namespace of its
    own with a private tmpfs on /tmp: pam_wrapper 1.1.4 keeps its
    per-process copy of the services in /tmp/pam.X, X one of 62 letters and
    digits chosen with an lstat then mkdir that two processes can race on,
    so at most 62 instances can share one /tmp. What the logins open
    themselves (module, configuration, CA, passwd, services, the FIFO) must
    therefore be outside /tmp. close() stops every login still running (by
    pid) and reaps it."""

    def __init__(self, path, name):
        self.path = path
        self.ready_line = name + ": at the start barrier"
        self.tmpfs = name + "-tmp"
        self.fd = None
        self.logins = []  # (process, its log file, the log's path)
        if os.path.lexists(path):
            os.unlink(path)
        os.mkfifo(path, 0o600)

    def login(self, pw, user, log_path):
        """pamtester for user in pw's service (a PamWork), its output into
        log_path, its input a pipe (see type_into); the wrappers are
        preloaded into pamtester alone (unshare, mount and sh run without
        them)."""
        env = pw.env(preload_as="PTV_PRELOAD")
        env["PTV_BARRIER"] = self.path
        script = ('mount -t tmpfs -o size=16m,mode=1777 %s /tmp && echo "%s" '
                  '&& : < "$PTV_BARRIER" && LD_PRELOAD="$PTV_PRELOAD" exec '
                  'pamtester -v %s "$1" authenticate'
                  % (self.tmpfs, self.ready_line, pw.service))
        log = open(log_path, "wb")
        proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--",
             "/bin/sh", "-c", script, "sh", user],
            stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
            env=env, close_fds=True)
        self.logins.append((proc, log, log_path))
        return proc

    def wait(self, timeout):
        """Waits until every login has printed that it stands at the
        barrier or has ended, or timeout seconds."""
        deadline = time.monotonic() + timeout
        waiting = [(p, path) for p, _, path in self.logins]
        while waiting and time.monotonic() < deadline:
            waiting = [(p, path) for p, path in waiting
                       if p.poll() is None and not self._ready(path)]
            time.sleep(0.02)

    def _ready(self, log_path):
        with open(log_path, "r", errors="replace") as f:
            return self.ready_line in f.read()

    def release(self):
        self.fd = os.open(self.path, os.O_RDWR)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        for proc, log, _ in self.logins:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            if proc.stdin:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
            log.close()
        self.logins = []


def type_into(proc, text):
    """Types a line into a process's stdin pipe (nothing if it has ended)."""
    try:
        proc.stdin.write((text + "\n").encode())
        proc.stdin.flush()
    except BrokenPipeError:
        pass


def record_secrets(name, tokens=(), numbers=(), codes=(), append=False):
    """Lists a run's own secrets in PTV_TEST_SECRETS_DIR/name.txt for the
    suite's final scan (secrets.scan): "token X", "number X", "code X"
    lines. Nothing when the variable is not set."""
    d = os.environ.get("PTV_TEST_SECRETS_DIR")
    if not d:
        return
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name + ".txt"), "a" if append else "w") as f:
        for kind, values in (("token", tokens), ("number", numbers),
                             ("code", codes)):
            for v in values:
                f.write("%s %s\n" % (kind, v))


# -- statistics ------------------------------------------------------------------

def percentile(values, p):
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def median(values):
    if not values:
        return float("nan")
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


# -- one pamtester login -----------------------------------------------------------

class Run:
    def __init__(self, status, output, seconds, prompts):
        self.status, self.output = status, output
        self.seconds, self.prompts = seconds, prompts

    @property
    def ok(self):
        return self.status == 0 and "successfully authenticated" in self.output

    def logged(self, needle):
        return needle in self.output

    def __str__(self):
        return "exit %s after %.2f s, %d prompt(s):\n%s" % (
            self.status, self.seconds, self.prompts, self.output)


def pamtester(pw, user, answers, em, phone, extra_env=None, cwd=None,
              log_name="pamtester", timeout=20, prefix=(), host=None,
              items=(), service=None):
    """Runs pamtester for user; answers are "right", "wrong" or literal
    text, one per code prompt. The module's log lines (pam_wrapper prints
    them) are part of the output. prefix: a command that runs pamtester
    (prlimit ..., say). host: another PAM application instead, as an argv
    list to which the service and the user are added (tests/pam/pam_host.c
    with its options). items: PAM items pamtester sets ("rhost=10.1.2.3",
    "tty=pts/1"). service: another service of pw than its own."""
    import pexpect
    # The first prompt names the words that send the code again; after a
    # call the prompt speaks of the call.
    # (The Messaging backend offers resend only.)
    prompt = (r"((?:SMS code sent to|Code from the call to) \+[0-9*]+"
              r"(?: \(or type resend(?:, call)?\))?: )")
    if host is not None:
        argv = list(prefix) + list(host) + [service or pw.service, user]
    else:
        argv = list(prefix) + ["pamtester", "-v"]
        for item in items:
            argv += ["-I", item]
        argv += [service or pw.service, user, "authenticate"]
    child = pexpect.spawn(argv[0], argv[1:], env=pw.env(extra_env),
                          encoding="utf-8", timeout=timeout, cwd=cwd)
    transcript, prompts = [], 0
    started = time.monotonic()
    try:
        for answer in answers:
            k = child.expect([prompt, pexpect.EOF])
            transcript.append(child.before + (child.after if k == 0 else ""))
            if k == 1:
                break
            prompts += 1
            code = em.last_code(phone)
            if answer == "right":
                child.sendline(code or "")
            elif answer == "wrong":
                child.sendline("000000" if code != "000000" else "000001")
            else:
                child.sendline(answer)
        else:
            k = child.expect([prompt, pexpect.EOF])
            transcript.append(child.before + (child.after if k == 0 else ""))
            if k == 0:
                prompts += 1  # one more prompt than scripted
    except pexpect.ExceptionPexpect as e:
        transcript.append("\n[%s] %s" % (type(e).__name__, child.before))
    finally:
        child.close(force=True)
    seconds = time.monotonic() - started
    output = "".join(transcript)
    keep = os.environ.get("PTV_TEST_LOG_DIR")
    if keep:  # kept for the suite's final scan for secrets (secrets.scan)
        os.makedirs(keep, exist_ok=True)
        with open(os.path.join(keep, log_name + ".log"), "a") as f:
            f.write(output + "\n")
    return Run(child.exitstatus, output, seconds, prompts)


def result_of(run):
    """The result= word of the module's closing log line, or None."""
    m = re.search(r"result=([a-z-]+)", run.output)
    return m.group(1) if m else None
