#!/usr/bin/python3
"""Helper for tests: run the Verify emulator as a subprocess and drive its
control port.  Standard library only.

    from emulator_client import Emulator
    with Emulator(workdir) as em:
        em.api_url, em.ca_file, em.account_sid, em.auth_token, em.service_sid
        em.outbox(); em.last_code("+15005550006")
        em.set_faults([{"kind": "status", "http_status": 503, "count": 1}])

Programmable Messaging: the account owns em.owned_numbers (default
["+15550100001"]) and the Messaging Service em.messaging_service_sid (a
random MG... unless given; messaging_service_sids=[...] for several);
em.messages_path() and em.messages_path(sid) are the 2010 paths.
"""

import base64
import http.client
import json
import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import ptv_harness as h  # noqa: E402

EMULATOR = os.path.join(HERE, "verify_emulator.py")
MAKE_CA = os.path.join(HERE, "make_test_ca.sh")
PYTHON = "/usr/bin/python3"

_CA_FILES = ("ca.pem", "ca.key", "server.pem", "server.key", "other-ca.pem",
             "wronghost.pem", "wronghost.key", "expired.pem", "expired.key")


def make_ca(workdir):
    """Creates the test PKI in workdir (no-op if it is already there)."""
    subprocess.run(["/bin/sh", MAKE_CA, workdir], check=True)


def _clean_env():
    env = dict(os.environ)
    for k in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP"):
        env.pop(k, None)
    return env


class Emulator(h.Started):
    def __init__(self, workdir, account_sid=None, auth_token=None, service_sid=None,
                 api_key_sid=None, api_key_secret=None, cert="server",
                 expiry_seconds=600, code_length=6, host="127.0.0.1", port=0,
                 control_port=0, name="emulator",
                 friendly_name="pam_twilio_verify test", owned_numbers=None,
                 messaging_service_sids=None):
        self.workdir = os.path.abspath(workdir)
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.service_sid = service_sid or "VA" + secrets.token_hex(16)
        self.api_key_sid = api_key_sid
        self.api_key_secret = api_key_secret
        self.cert = cert
        self.expiry_seconds = expiry_seconds
        self.code_length = code_length
        self.friendly_name = friendly_name
        self.owned_numbers = list(owned_numbers or ["+15550100001"])
        self.messaging_service_sids = list(
            messaging_service_sids if messaging_service_sids is not None
            else ["MG" + secrets.token_hex(16)])
        self.messaging_service_sid = (self.messaging_service_sids[0]
                                      if self.messaging_service_sids else None)
        self.host = host
        self.requested_port = port
        self.requested_control_port = control_port
        self.name = name
        self.proc = None
        self.pid = None
        self.port = None
        self.control_port = None
        self.api_url = None
        self.ca_file = os.path.join(self.workdir, "ca.pem")
        self.other_ca_file = os.path.join(self.workdir, "other-ca.pem")
        self.ready_file = os.path.join(self.workdir, name + ".ready.json")
        self.log_file = os.path.join(self.workdir, name + ".log")
        self.stderr_file = os.path.join(self.workdir, name + ".stderr")
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # -- lifecycle ----------------------------------------------------------

    def start(self, timeout=10.0):
        os.makedirs(self.workdir, exist_ok=True)
        if not all(os.path.exists(os.path.join(self.workdir, f)) for f in _CA_FILES):
            make_ca(self.workdir)
        try:
            os.unlink(self.ready_file)
        except FileNotFoundError:
            pass
        args = [PYTHON, EMULATOR,
                "--cert", os.path.join(self.workdir, self.cert + ".pem"),
                "--key", os.path.join(self.workdir, self.cert + ".key"),
                "--host", self.host,
                "--port", str(self.requested_port),
                "--control-port", str(self.requested_control_port),
                "--account-sid", self.account_sid,
                "--auth-token", self.auth_token,
                "--service-sid", self.service_sid,
                "--expiry-seconds", str(self.expiry_seconds),
                "--code-length", str(self.code_length),
                "--friendly-name", self.friendly_name,
                "--ready-file", self.ready_file,
                "--log-file", self.log_file]
        for n in self.owned_numbers:
            args += ["--owned-number", n]
        for sid in self.messaging_service_sids:
            args += ["--messaging-service-sid", sid]
        if self.api_key_sid:
            args += ["--api-key-sid", self.api_key_sid,
                     "--api-key-secret", self.api_key_secret]
        self.proc = h.start_logged(args, self.stderr_file, env=_clean_env())
        self.pid = self.proc.pid
        deadline = time.monotonic() + timeout
        while True:
            if os.path.exists(self.ready_file):
                try:
                    with open(self.ready_file) as fp:
                        info = json.load(fp)
                    break
                except (ValueError, OSError):
                    pass
            if self.proc.poll() is not None:
                raise RuntimeError("emulator exited with %s: %s"
                                   % (self.proc.returncode, self._stderr_tail()))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("emulator not ready after %.0fs: %s"
                                   % (timeout, self._stderr_tail()))
            time.sleep(0.02)
        self.port = info["port"]
        self.control_port = info["control_port"]
        self.api_url = "https://%s:%d" % (
            "[%s]" % self.host if ":" in self.host else self.host, self.port)
        return self

    def _stderr_tail(self):
        try:
            with open(self.stderr_file, "rb") as fp:
                return fp.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, timeout=5.0):
        """Stops the subprocess by pid: SIGTERM, then SIGKILL. Returns exit code."""
        p, self.proc = self.proc, None
        return h.stop(p, timeout)

    # -- control port ---------------------------------------------------------

    def _control(self, method, path, obj=None):
        data = None
        headers = {}
        if obj is not None:
            data = json.dumps(obj).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.control_port, path),
                                     data=data, method=method, headers=headers)
        with self._opener.open(req, timeout=10) as r:
            return json.loads(r.read().decode("utf-8"))

    def outbox(self):
        return self._control("GET", "/outbox")

    def requests(self):
        return self._control("GET", "/requests")

    def stats(self):
        return self._control("GET", "/stats")

    def reset(self):
        return self._control("POST", "/reset", {})

    def set_faults(self, faults, latency_ms=0):
        return self._control("POST", "/faults",
                             {"faults": list(faults), "latency_ms": int(latency_ms)})

    def clear_faults(self):
        return self.set_faults([])

    def advance_clock(self, seconds):
        return self._control("POST", "/clock", {"advance_seconds": seconds})

    def refuse(self, refuse=True):
        return self._control("POST", "/listen", {"refuse": bool(refuse)})

    def last_code(self, to=None):
        """Code of the newest outbox message (for `to` if given), or None."""
        for m in reversed(self.outbox()):
            if to is None or m.get("to") == to:
                return m.get("code")
        return None

    # -- direct API calls (for tests of the emulator itself) --------------------

    def ssl_context(self, cafile=None):
        ctx = ssl.create_default_context(cafile=cafile or self.ca_file)
        return ctx

    def connection(self, timeout=10, cafile=None):
        return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                           context=self.ssl_context(cafile))

    def auth_header(self, user=None, password=None):
        user = self.account_sid if user is None else user
        password = self.auth_token if password is None else password
        raw = ("%s:%s" % (user, password)).encode("utf-8")
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def service_path(self, suffix=""):
        return "/v2/Services/%s%s" % (self.service_sid, suffix)

    def messages_path(self, sid=None, account_sid=None):
        base = "/2010-04-01/Accounts/%s/Messages" % (account_sid or self.account_sid)
        return base + ("/%s.json" % sid if sid else ".json")

    def call(self, method, path, form=None, user=None, password=None, conn=None,
             headers=None, body=None):
        """Makes one API request. Returns (status, headers dict, body bytes, json or None)."""
        own = conn is None
        if own:
            conn = self.connection()
        h = {"Authorization": self.auth_header(user, password)}
        if form is not None:
            body = urllib.parse.urlencode(form).encode("utf-8")
            h["Content-Type"] = "application/x-www-form-urlencoded"
        h.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            try:
                obj = json.loads(data.decode("utf-8")) if data else None
            except ValueError:
                obj = None
            return r.status, hdrs, data, obj
        finally:
            if own:
                conn.close()
