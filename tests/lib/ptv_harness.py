"""Shared pieces of the Python test harnesses that drive the real module
through pamtester under pam_wrapper and nss_wrapper: PASS/FAIL bookkeeping,
private files, the module's configuration file and one pamtester run.

    sys.path.insert(0, os.path.join(HERE, "..", "lib"))
    import ptv_harness as h
"""

import os
import re
import time

import pexpect

results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print("%s %s%s" % ("PASS" if ok else "FAIL", name,
                       "" if ok else ": " + str(detail)), flush=True)
    return ok


def summary():
    """Prints the counts; the exit status is 0 only if checks ran and all
    passed."""
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 0 if results["failed"] == 0 and results["passed"] > 0 else 1


def write_private(path, text):
    """A root-owned 0600 file, as the module requires for its config."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def module_config(em, state_dir, body, timeout_ms=2000, twilio_extra=""):
    """The twilio group pointing at the emulator (plus twilio_extra, whole
    setting lines), then body (the settings under test)."""
    return """twilio = {
  account_sid = "%s";
  auth_token = "%s";
  service_sid = "%s";
  api_url = "%s";
  ca_file = "%s";
  connect_timeout_ms = 1000;
  timeout_ms = %d;
%s};
state_dir = "%s";
%s""" % (em.account_sid, em.auth_token, em.service_sid, em.api_url, em.ca_file,
         timeout_ms, twilio_extra, state_dir, body)


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


def safe_copy(path, prefix="ptv-bin."):
    """A copy of a program in a new root-owned directory under /run (not
    writable by group or others all the way up, as the module requires of
    its helper and lookup commands, and outside /tmp, which pam_wrapper's
    private mounts may hide). Returns (copy, directory to remove)."""
    import shutil
    import tempfile
    d = tempfile.mkdtemp(prefix=prefix, dir="/run")
    os.chmod(d, 0o755)
    copy = os.path.join(d, os.path.basename(path))
    shutil.copy2(path, copy)
    os.chmod(copy, 0o755)
    return copy, d


class PamWork:
    """A pam_wrapper service directory with one service running the module,
    and an nss_wrapper passwd/group. users: names, or (name, GECOS) pairs
    (the GECOS field is the name when not given)."""

    def __init__(self, work, module, service="twilio-test", users=("demo",)):
        self.work, self.service = work, service
        self.conf = os.path.join(work, "ptv.conf")
        self.pam_dir = os.path.join(work, "pam.d")
        os.makedirs(self.pam_dir, exist_ok=True)
        with open(os.path.join(self.pam_dir, service), "w") as f:
            f.write(pam_line(module, self.conf))
        with open(os.path.join(self.pam_dir, "other"), "w") as f:
            f.write("auth required pam_deny.so\n")
        self.passwd = os.path.join(work, "passwd")
        self.group = os.path.join(work, "group")
        with open(self.passwd, "w") as p, open(self.group, "w") as g:
            for i, user in enumerate(users):
                name, gecos = (user, user) if isinstance(user, str) else user
                p.write("%s:x:%d:%d:%s:/nonexistent:/bin/false\n"
                        % (name, 3000 + i, 3000 + i, gecos))
                g.write("%s:x:%d:\n" % (name, 3000 + i))
            # The lookup command's user.
            p.write("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
            g.write("nogroup:x:65534:\n")

    def env(self, extra=None):
        env = dict(os.environ)
        env.update(extra or {})
        env.update({
            # Under a sanitizer build the module needs the ASan runtime first.
            "LD_PRELOAD": ":".join(filter(None, [
                os.environ.get("PTV_ASAN_RUNTIME"),
                "libpam_wrapper.so", "libnss_wrapper.so"])),
            "PAM_WRAPPER": "1",
            "PAM_WRAPPER_SERVICE_DIR": self.pam_dir,
            "PAM_WRAPPER_DEBUGLEVEL": "2",
            "NSS_WRAPPER_PASSWD": self.passwd,
            "NSS_WRAPPER_GROUP": self.group,
        })
        return env


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
              log_name="pamtester", timeout=20, prefix=(), host=None):
    """Runs pamtester for user; answers are "right", "wrong" or literal
    text, one per code prompt. The module's log lines (pam_wrapper prints
    them) are part of the output. prefix: a command that runs pamtester
    (prlimit ..., say). host: another PAM application instead, as an argv
    list to which the service and the user are added (tests/pam/pam_host.c
    with its options)."""
    prompt = r"(SMS code sent to \+[0-9*]+: )"
    if host is not None:
        argv = list(prefix) + list(host) + [pw.service, user]
    else:
        argv = list(prefix) + ["pamtester", "-v", pw.service, user,
                               "authenticate"]
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
