#!/usr/bin/python3
"""Benchmark of pam_twilio_verify against the bundled Verify emulator.

Run through bench/run_bench.sh, which builds the module first. Variants,
measured side by side in one run on one emulator, one process per login:

  module        the PAM application (bench/pam_bench_app.c) with real libpam
                and the real module, under pam_wrapper and nss_wrapper;
                ca_file = the small test CA
  module+sysCA  the same with ca_file = the system bundle plus the test CA
                (what loading a full trust store costs)
  floor         one curl process: create, then a check with the wrong code
                000000 (--next, one connection); a "pending" answer costs
                what an "approved" one does
  sdk           /usr/bin/python3 with python3-twilio: verifications.create,
                then verification_checks.create with the right code
  pam_permit    the PAM application with `auth required pam_permit.so`
  nocode        the module for a user with no number (phone_sources
                [ "users" ], no_phone = "skip"), then pam_permit: a login
                that needs no code; its helper= names a program that does
                not exist, so the login would fail if the helper started
  before-split  the module as it was before the privilege split (one
                process, libcurl loaded into the application), built from
                the revision run_bench.sh names: what a code login costs
                next to today's two processes

The private dirty memory of the PAM application after pam_end (the module
stays loaded) is read from /proc/self/smaps_rollup.

Each login gets a fresh emulator state (POST /reset, then the injected
latency), so /stats counts that login's TCP connections, TLS handshakes
and requests alone. Wall time, CPU (user+system) and peak RSS come from
wait4() on the login process (bench/measure.c forks it).

Then: failure latency (emulator hanging; connection refused) and a burst
of simultaneous logins.
"""

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "emulator"))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
from emulator_client import Emulator  # noqa: E402
import ptv_harness as h  # noqa: E402
from ptv_harness import median, percentile  # noqa: E402

PYTHON = "/usr/bin/python3"
CURL = "/usr/bin/curl"
SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TIMEOUT_MS = 2000          # the bound the failure-latency targets refer to
CONNECT_TIMEOUT_MS = 1000
WRONG_CODE = "000000"
BENCH_USER = "bench"
BENCH_PHONE = "+15554000001"

VARIANTS = ("module", "module+sysCA", "floor", "sdk", "pam_permit", "nocode")
NOCODE_USER = "nobench"


# ---------------------------------------------------------------- helpers

def parse_kv(text):
    out = {}
    for tok in text.split():
        k, sep, v = tok.partition("=")
        if sep:
            try:
                out[k] = int(v)
            except ValueError:
                out[k] = v
    return out


def phases(t, unit, prompted):
    """Where a login's time went, in ms, from the marks t of one clock
    (in units of unit per ms): the prompt steps only when there was one."""
    def span(a, b, when=True):
        return (t[b] - t[a]) / unit if when else float("nan")
    return {
        "exec to main": span("start", "main"),
        "pam_start": span("go", "started"),
        "pam_authenticate": span("started", "authed"),
        "  to the prompt": span("started", "prompt", prompted),
        "  code fetch (bench)": t["fetch"] / unit,
        "  answer to result": span("answered", "authed", prompted),
        "pam_end": span("authed", "ended"),
        "exit": span("ended", "end"),
    }


def clean_env(extra=None):
    """A minimal environment: no CA, proxy or Python variables leak in."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
           "HOME": "/nonexistent"}
    env.update(extra or {})
    return env


def machine_info():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    return {"nproc": os.cpu_count(), "cpu": model,
            "kernel": platform.release(), "load": load}


def busy_processes(limit=5):
    """The processes using the most CPU right now (name and %CPU)."""
    try:
        out = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = []
    for line in out.splitlines()[1:limit + 1]:
        parts = line.split(None, 1)
        if len(parts) == 2:
            rows.append("%s %s%%" % (parts[1], parts[0]))
    return rows


# ---------------------------------------------------------------- the bench

class Bench:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="ptv-bench.", dir="/var/tmp")
        self.bin = os.path.join(self.work, "bin")
        self.run_dir = os.path.join(self.work, "run")
        self.state = os.path.join(self.work, "state")
        self.em = None
        self.children = set()   # pids started by the burst, not reaped yet
        self.results = {"machine": machine_info(),
                        "busy_before": busy_processes()}

    # -- setup ---------------------------------------------------------------

    def setup(self):
        os.makedirs(self.bin)
        os.makedirs(self.run_dir)
        os.makedirs(self.state, mode=0o700)
        for src, out, libs in (("pam_bench_app.c", "pam_bench_app", ["-lpam"]),
                               ("measure.c", "measure", []),
                               ("load_probe.c", "load_probe", ["-ldl"])):
            subprocess.run(["gcc", "-O2", "-Wall", "-o",
                            os.path.join(self.bin, out),
                            os.path.join(HERE, src)] + libs, check=True)
        self.app = os.path.join(self.bin, "pam_bench_app")
        self.probe = os.path.join(self.bin, "load_probe")
        self.measure = os.path.join(self.bin, "measure")
        # The module is copied next to everything else: a rebuild during
        # the run cannot change it, and the burst's private /tmp cannot
        # hide it.
        self.module = os.path.join(self.work, "pam_twilio_verify.so")
        shutil.copyfile(self.args.module, self.module)
        # The helper must sit where only root can write, all the way up
        # (the work directory is under /var/tmp, which anyone can write).
        self.helper, self.helper_dir = h.safe_copy(self.args.helper,
                                                   "ptv-bench-helper.")
        if self.args.baseline_module:
            self.baseline = os.path.join(self.work, "baseline", "pam_twilio_verify.so")
            os.makedirs(os.path.dirname(self.baseline))
            shutil.copyfile(self.args.baseline_module, self.baseline)
        if self.args.alt_module:
            self.alt_module = os.path.join(self.work, "alt", "pam_twilio_verify.so")
            os.makedirs(os.path.dirname(self.alt_module))
            shutil.copyfile(self.args.alt_module, self.alt_module)

        self.em = Emulator(os.path.join(self.work, "emulator"))
        self.em.start()
        em = self.em
        self.sys_bundle = os.path.join(self.work, "system-plus-test-ca.pem")
        with open(self.sys_bundle, "wb") as out:
            for path in (SYSTEM_BUNDLE, em.ca_file):
                with open(path, "rb") as f:
                    data = f.read()
                out.write(data if data.endswith(b"\n") else data + b"\n")
        with open(self.sys_bundle, "rb") as f:
            self.sys_bundle_certs = f.read().count(b"BEGIN CERTIFICATE")
        # The same anchors as a hashed directory (what CURLOPT_CAPATH reads).
        self.capath = os.path.join(self.work, "capath")
        os.makedirs(self.capath)
        certs = [os.path.join("/etc/ssl/certs", n)
                 for n in sorted(os.listdir("/etc/ssl/certs")) if n.endswith(".pem")]
        for i, path in enumerate(certs + [em.ca_file]):
            os.symlink(os.path.realpath(path),
                       os.path.join(self.capath, "c%04d.pem" % i))
        subprocess.run(["openssl", "rehash", self.capath], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        self.burst_users = [("burst%03d" % i, "+1555500%04d" % i)
                            for i in range(1, self.args.burst + 1)]
        pamd = os.path.join(self.work, "pam.d")
        os.makedirs(pamd)
        conf = os.path.join(self.work, "ptv.conf")
        conf_sys = os.path.join(self.work, "ptv-sysca.conf")
        conf_burst = os.path.join(self.work, "ptv-burst.conf")
        h.write_private(conf, self.config(em.ca_file, [(BENCH_USER, BENCH_PHONE)],
                                          CONNECT_TIMEOUT_MS, TIMEOUT_MS))
        h.write_private(conf_sys, self.config(self.sys_bundle,
                                              [(BENCH_USER, BENCH_PHONE)],
                                              CONNECT_TIMEOUT_MS, TIMEOUT_MS))
        # The burst waits on one single-threaded-ish emulator for 200
        # handshakes: its timeouts are generous so that the emulator's queue,
        # not the module's bound, is what the latency shows.
        h.write_private(conf_burst, self.config(em.ca_file, self.burst_users,
                                                20000, 30000))
        conf_nocode = os.path.join(self.work, "ptv-nocode.conf")
        h.write_private(conf_nocode, self.config(
            em.ca_file, [(BENCH_USER, BENCH_PHONE)], CONNECT_TIMEOUT_MS, TIMEOUT_MS)
            + 'no_phone = "skip";\n')
        line = "auth required %s conf=%%s helper=%s\n" % (self.module, self.helper)
        h.write_services(pamd, {
            "ptv-bench": line % conf,
            "ptv-bench-sysca": line % conf_sys,
            "ptv-bench-burst": line % conf_burst,
            "ptv-permit": "auth required pam_permit.so\n",
            "ptv-bench-nocode": ("auth required %s conf=%s helper=/nonexistent/"
                                 "twilio-verify-helper\nauth required pam_permit.so\n"
                                 % (self.module, conf_nocode)),
            "ptv-bench-alt": "auth required %s conf=%s helper=%s\n" % (
                getattr(self, "alt_module", self.module), conf, self.helper),
            "ptv-bench-before": "auth required %s conf=%s\n" % (
                getattr(self, "baseline", self.module), conf),
        })
        users = ([(BENCH_USER, BENCH_PHONE), (NOCODE_USER, None)] +
                 self.burst_users)
        passwd = os.path.join(self.work, "passwd")
        group = os.path.join(self.work, "group")
        h.write_accounts(passwd, group, [(u, 41000 + i, "Bench,,,")
                                         for i, (u, _) in enumerate(users)])
        self.pam_env = h.wrapper_env(pamd, passwd, group, base=clean_env())
        self.plain_env = clean_env()
        # The copies just written are dirty in the page cache until they are
        # written back, and a dirty file page mapped by one process counts
        # as its private dirty memory: written back now, so that only what
        # the process itself dirtied is measured.
        os.sync()

    def config(self, ca_file, users, connect_ms, timeout_ms):
        lines = ",\n".join('  ("%s", "%s")' % u for u in users)
        return h.module_config(self.em, self.state, """phone_sources = [ "users" ];
users = (
%s
);
send_limit = { count = 100; window_s = 60; };
""" % lines, ca_file=ca_file, connect_timeout_ms=connect_ms, timeout_ms=timeout_ms)

    def clear_state(self):
        for name in os.listdir(self.state):
            p = os.path.join(self.state, name)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                os.unlink(p)

    # -- one login -------------------------------------------------------------

    def command(self, variant):
        em = self.em
        base = "%s/v2/Services/%s" % (em.api_url, em.service_sid)
        auth = "%s:%s" % (em.account_sid, em.auth_token)
        if variant in ("module", "module+sysCA", "pam_permit", "module-alt",
                       "nocode", "before-split"):
            service = {"module": "ptv-bench", "module+sysCA": "ptv-bench-sysca",
                       "pam_permit": "ptv-permit", "module-alt": "ptv-bench-alt",
                       "nocode": "ptv-bench-nocode",
                       "before-split": "ptv-bench-before"}[variant]
            user = NOCODE_USER if variant == "nocode" else BENCH_USER
            return [self.app, service, user, BENCH_PHONE,
                    str(em.control_port)], self.pam_env
        if variant == "floor":
            fmt = "%{http_code} %{num_connects}\\n"
            common = ["--cacert", em.ca_file, "-u", auth, "-o", "/dev/null",
                      "-w", fmt]
            return ([CURL, "-q", "-sS"] + common +
                    ["--data-urlencode", "To=" + BENCH_PHONE, "-d", "Channel=sms",
                     base + "/Verifications", "--next"] + common +
                    ["--data-urlencode", "To=" + BENCH_PHONE, "-d", "Code=" + WRONG_CODE,
                     base + "/VerificationCheck"]), self.plain_env
        if variant == "sdk":
            return [PYTHON, os.path.join(HERE, "sdk_login.py"), em.api_url,
                    em.ca_file, em.account_sid, em.auth_token, em.service_sid,
                    BENCH_PHONE, str(em.control_port)], self.plain_env
        raise ValueError(variant)

    def login(self, variant, latency_ms, faults=()):
        self.em.reset()
        self.em.set_faults(list(faults), latency_ms=latency_ms)
        self.clear_state()
        cmd, env = self.command(variant)
        meas = os.path.join(self.run_dir, "measure.txt")
        out_path = os.path.join(self.run_dir, "out.txt")
        with open(out_path, "wb") as out:
            subprocess.run([self.measure, meas] + cmd, stdin=subprocess.DEVNULL,
                           stdout=out, stderr=subprocess.STDOUT, env=env,
                           check=True, timeout=120)
        with open(meas) as f:
            m = parse_kv(f.read())
        with open(out_path, "r", errors="replace") as f:
            output = f.read()
        stats = self.em.stats()
        r = {
            "wall_ms": (m["end_ns"] - m["start_ns"]) / 1e6,
            "cpu_ms": (m["utime_us"] + m["stime_us"]) / 1e3,
            "rss_mib": m["maxrss_kb"] / 1024.0,
            "status": m["status"],
            "connections": stats["connections"],
            "handshakes": stats["tls_handshakes"],
            "requests": stats["requests"],
        }
        app = None
        for line in output.splitlines():
            if line.startswith("rc="):
                app = parse_kv(line)
        if app is not None:
            r["app"] = app
            r["dirty_kib"] = app.get("dirty_kb", -1)
            r["auth_ms"] = (app["authed"] - app["started"]) / 1e6
            r["conv_ms"] = app["conv_ns"] / 1e6
            r["conv_cpu_ms"] = app["conv_cpu"] / 1e3
            # The same steps on the wall clock (ns) and in CPU time (us).
            marks = ("main", "started", "prompt", "answered", "authed", "ended")
            wall = {k: app.get(k) for k in marks}
            wall.update(start=m["start_ns"], go=app["go"], end=m["end_ns"],
                        fetch=app["conv_ns"])
            cpu = {k: app.get("cpu_" + k) for k in marks}
            cpu.update(start=0, go=app["cpu_main"], fetch=app["conv_cpu"],
                       end=m["utime_us"] + m["stime_us"])
            r["phases"] = phases(wall, 1e6, app["prompts"])
            r["cpu_phases"] = phases(cpu, 1e3, app["prompts"])
        if variant == "floor":
            codes = [l.split()[0] for l in output.splitlines() if l.strip()]
            r["ok"] = m["status"] == 0 and codes == ["201", "200"]
        elif variant in ("module", "module+sysCA", "module-alt", "before-split"):
            r["ok"] = (m["status"] == 0 and app is not None and app["rc"] == 0
                       and "result=approved" in output)
        elif variant == "nocode":
            r["ok"] = (m["status"] == 0 and app is not None and app["rc"] == 0
                       and "result=skipped-no-phone" in output
                       and stats["connections"] == 0)
        else:
            r["ok"] = m["status"] == 0
        if not r["ok"]:
            r["output"] = output[-2000:]
        return r

    # -- phases of the run -------------------------------------------------------

    def sequential(self):
        n = self.args.n
        res = {}
        variants = (VARIANTS + (("module-alt",) if self.args.alt_module else ()) +
                    (("before-split",) if self.args.baseline_module else ()))
        for latency in (0, 50):
            rows = {v: [] for v in variants}
            for i in range(n):
                # Rotate the order so that no variant always runs first.
                order = variants[i % len(variants):] + variants[:i % len(variants)]
                for v in order:
                    rows[v].append(self.login(v, latency))
            res[latency] = rows
            bad = [(v, r.get("output", "")) for v in variants for r in rows[v]
                   if not r["ok"]]
            print("latency %d ms: %d logins per variant done, %d failed"
                  % (latency, n, len(bad)), flush=True)
            for v, out in bad[:3]:
                print("  failed %s:\n%s" % (v, out), flush=True)
        self.results["sequential"] = res

    def failures(self):
        res = {}
        hang = []
        for _ in range(self.args.failure_runs):
            hang.append(self.login("module", 0,
                                   [{"kind": "hang", "seconds": 4}]))
        res["hang"] = hang
        refused = []
        self.em.refuse(True)
        try:
            for _ in range(self.args.failure_runs):
                refused.append(self.login("module", 0))
        finally:
            self.em.refuse(False)
        res["refused"] = refused
        self.results["failures"] = res
        # The hung handlers give up after 4 s; let them go before the burst.
        time.sleep(4.5)

    @staticmethod
    def pam_permit_path():
        for d in ("/lib/x86_64-linux-gnu/security", "/usr/lib/x86_64-linux-gnu/security",
                  "/lib/security", "/usr/lib/security"):
            if os.path.exists(os.path.join(d, "pam_permit.so")):
                return os.path.join(d, "pam_permit.so")
        return "pam_permit.so"

    def probes(self):
        """Where the module's CPU, time and memory go, step by step, each
        step in fresh processes (bench/load_probe.c); medians."""
        em = self.em
        host, port = "127.0.0.1", str(em.port)
        cases = [
            ("dlopen+dlclose pam_twilio_verify.so", ["dlopen", self.module]),
            ("dlopen+dlclose libcurl.so.4 alone", ["dlopen", "libcurl.so.4"]),
            ("dlopen+dlclose pam_permit.so", ["dlopen", self.pam_permit_path()]),
            ("curl_global_init", ["curlinit"]),
            ("OpenSSL only, test CA file (1 cert)",
             ["tls", "cafile", em.ca_file, host, port]),
            ("OpenSSL only, system bundle file (%d certs)" % self.sys_bundle_certs,
             ["tls", "cafile", self.sys_bundle, host, port]),
            ("OpenSSL only, hashed CA directory (same certs)",
             ["tls", "capath", self.capath, host, port]),
        ]
        em.reset()
        em.set_faults([], latency_ms=0)
        out = []
        for name, args in cases:
            runs = []
            for _ in range(self.args.probe_runs):
                # Through measure: a child of the runner would start from
                # the runner's peak RSS (see measure.c).
                r = subprocess.run([self.measure, os.path.join(self.run_dir, "probe.txt"),
                                    self.probe] + args, capture_output=True,
                                   text=True, env=self.plain_env, timeout=60)
                if r.returncode != 0:
                    runs = None
                    break
                runs.append([parse_kv(l) for l in r.stdout.splitlines()])
            if not runs:
                out.append({"name": name, "failed": True})
                continue
            steps = []
            for i, first in enumerate(runs[0]):
                steps.append({
                    "step": first["step"],
                    "wall_ms": median([r[i]["wall_us"] for r in runs]) / 1e3,
                    "cpu_ms": median([r[i]["cpu_us"] for r in runs]) / 1e3,
                    "maxrss_mib": median([r[i]["maxrss_kb"] for r in runs]) / 1024,
                })
            out.append({"name": name, "steps": steps})
        self.results["probes"] = out

    def burst(self):
        count = self.args.burst
        if count <= 0:
            return
        em = self.em
        em.reset()
        em.set_faults([], latency_ms=self.args.burst_latency)
        self.clear_state()
        barrier = h.StartBarrier(os.path.join(self.work, "go.fifo"), "ptv-bench")
        ready_r, ready_w = os.pipe()
        os.set_inheritable(ready_w, True)
        logs = os.path.join(self.work, "burst")
        os.makedirs(logs)
        pids = {}
        # Loaded only after the move to a private /tmp (see pam_bench_app.c).
        env = dict(self.pam_env)
        env["BENCH_PRELOAD"] = env.pop("LD_PRELOAD")
        try:
            for i, (user, phone) in enumerate(self.burst_users):
                log = os.path.join(logs, user + ".txt")
                fa = [(os.POSIX_SPAWN_OPEN, 1, log,
                       os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                      (os.POSIX_SPAWN_DUP2, 1, 2),
                      (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0)]
                pid = os.posix_spawn(self.app, [
                    self.app, "--private-tmp", "--ready-fd", str(ready_w),
                    "--barrier", barrier.path, "ptv-bench-burst", user, phone,
                    str(em.control_port)], env, file_actions=fa)
                pids[pid] = (user, log)
                self.children.add(pid)
            os.close(ready_w)
            ready_w = -1
            # Every process writes one byte once it is at the barrier (or
            # the pipe reaches EOF when the last one exits).
            got = 0
            deadline = time.monotonic() + 60
            while got < count and time.monotonic() < deadline:
                b = os.read(ready_r, count - got)
                if not b:
                    break
                got += len(b)
            em_cpu0 = self.emulator_cpu_s()
            barrier.release()
            t_go = time.monotonic_ns()
            done = {}
            timer = threading.Timer(self.args.burst_deadline, self.kill_children)
            timer.start()
            try:
                while self.children:
                    try:
                        pid, status, ru = os.wait4(-1, 0)
                    except ChildProcessError:
                        break
                    t = time.monotonic_ns()
                    self.children.discard(pid)
                    if pid in pids:
                        done[pid] = (t, status, ru)
            finally:
                timer.cancel()
            barrier.close()
        finally:
            if ready_w >= 0:
                os.close(ready_w)
            os.close(ready_r)
            self.kill_children()
        ok = 0
        latencies = []
        cpu = []
        failed = []
        for pid, (user, log) in pids.items():
            t, status, ru = done.get(pid, (None, None, None))
            with open(log, "r", errors="replace") as f:
                out = f.read()
            if t is None:
                failed.append("%s: not finished (killed)" % user)
                continue
            latencies.append((t - t_go) / 1e6)
            cpu.append((ru.ru_utime + ru.ru_stime) * 1e3)
            code = os.waitstatus_to_exitcode(status)
            if code == 0 and "result=approved" in out:
                ok += 1
            else:
                failed.append("%s: exit %s: %s" % (user, code, out[-300:]))
        em_cpu = self.emulator_cpu_s() - em_cpu0
        stats = em.stats()
        self.results["burst"] = {
            "emulator_cpu_s": em_cpu,
            "count": count, "ready": got, "ok": ok, "failed": failed[:5],
            "latency_ms": latencies, "cpu_ms": cpu, "stats": stats,
            "emulator_latency_ms": self.args.burst_latency,
        }

    def emulator_cpu_s(self):
        with open("/proc/%d/stat" % self.em.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill_children(self):
        for pid in list(self.children):
            h.kill_pid(pid)

    def teardown(self):
        self.kill_children()
        for pid in list(self.children):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        if self.em is not None:
            self.em.stop()
        if getattr(self, "helper_dir", None):
            shutil.rmtree(self.helper_dir, ignore_errors=True)
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


# ---------------------------------------------------------------- report

def summarize(rows, key):
    vals = [r[key] for r in rows if r["ok"]]
    return median(vals), percentile(vals, 95)


def report(res, args):
    out = []
    p = out.append
    mi = res["machine"]
    p("machine: %d CPUs, %s, kernel %s" % (mi["nproc"], mi["cpu"], mi["kernel"]))
    p("load average at start: %s; at end: %s" % (mi["load"], res["load_end"]))
    p("busiest processes at start: %s" % "; ".join(res["busy_before"]))
    p("module: %s (%s), source %s" % (args.module, args.build_type, res.get("source", "?")))
    p("logins per variant and latency: %d; timeout_ms = %d, connect_timeout_ms = %d"
      % (args.n, TIMEOUT_MS, CONNECT_TIMEOUT_MS))
    p("module+sysCA: ca_file with %d certificates (%s plus the test CA)"
      % (res["sys_bundle_certs"], SYSTEM_BUNDLE))
    p("")
    seq = res["sequential"]
    hdr = ("%-13s %4s  %15s  %15s  %13s  %5s %5s %5s  %s"
           % ("variant", "lat", "wall ms p50/p95", "CPU ms p50/p95",
              "RSS MiB p50", "conn", "tls", "req", "ok"))
    p(hdr)
    p("-" * len(hdr))
    for latency in (0, 50):
        for v in seq[latency]:
            rows = seq[latency][v]
            w50, w95 = summarize(rows, "wall_ms")
            c50, c95 = summarize(rows, "cpu_ms")
            r50, _ = summarize(rows, "rss_mib")
            okrows = [r for r in rows if r["ok"]]
            conn = sum(r["connections"] for r in okrows) / max(1, len(okrows))
            tls = sum(r["handshakes"] for r in okrows) / max(1, len(okrows))
            req = sum(r["requests"] for r in okrows) / max(1, len(okrows))
            p("%-13s %4d  %7.1f %7.1f  %7.1f %7.1f  %13.2f  %5.2f %5.2f %5.2f  %d/%d"
              % (v, latency, w50, w95, c50, c95, r50, conn, tls, req,
                 len(okrows), len(rows)))
    p("(conn, tls, req: mean per login from the emulator's /stats)")
    p("")

    m50 = seq[50]["module"]
    f50 = seq[50]["floor"]
    mw, _ = summarize(m50, "wall_ms")
    fw, _ = summarize(f50, "wall_ms")
    conv, _ = summarize(m50, "conv_ms")
    targets = []

    def target(name, value, ok, detail):
        targets.append((name, value, ok, detail))

    target("module wall / floor wall at 50 ms <= 1.10", "%.2f" % (mw / fw),
           mw / fw <= 1.10, "median %.1f ms vs %.1f ms" % (mw, fw))
    excl = median([r["wall_ms"] - r["conv_ms"] for r in m50 if r["ok"]])
    p_note = ("  (module without the bench's code fetch, %.1f ms median: %.2f x floor)"
              % (excl, excl / fw))
    all_mod = [r for lat in (0, 50) for r in seq[lat]["module"] if r["ok"]]
    conns = sorted({r["connections"] for r in all_mod})
    tlss = sorted({r["handshakes"] for r in all_mod})
    target("exactly 1 TCP connection and 1 TLS handshake per login",
           "conn %s, tls %s" % (conns, tlss), conns == [1] and tlss == [1],
           "over %d module logins" % len(all_mod))
    mc = median([r["cpu_ms"] for lat in (0, 50) for r in seq[lat]["module"] if r["ok"]])
    sc = median([r["cpu_ms"] for lat in (0, 50) for r in seq[lat]["sdk"] if r["ok"]])
    target("module CPU <= 1/10 of the SDK's", "%.3f" % (mc / sc), mc / sc <= 0.10,
           "median %.1f ms vs %.1f ms" % (mc, sc))
    mr = median([r["rss_mib"] for lat in (0, 50) for r in seq[lat]["module"] if r["ok"]])
    pr = median([r["rss_mib"] for lat in (0, 50) for r in seq[lat]["pam_permit"] if r["ok"]])
    target("module RSS - pam_permit RSS: a few MiB", "%+.1f MiB" % (mr - pr),
           mr - pr <= 4.0, "median %.1f vs %.1f MiB (target read as <= 4 MiB)"
           % (mr, pr))
    # The privilege split: a login that needs no code costs about what
    # pam_permit costs, a code login about what it cost in one process, and
    # a process that has loaded the module holds little more memory.
    def med(variant, key, lats=(0, 50)):
        return median([r[key] for lat in lats for r in seq[lat].get(variant, [])
                       if r["ok"] and key in r])
    nc, pc = med("nocode", "cpu_ms"), med("pam_permit", "cpu_ms")
    target("no-code login CPU / pam_permit CPU <= 1.5 (no helper)",
           "%.2f" % (nc / pc), nc / pc <= 1.5,
           "median %.1f ms vs %.1f ms; helper= names no program, and every "
           "such login succeeded" % (nc, pc))
    if "before-split" in seq[50]:
        bw = med("before-split", "wall_ms", (50,))
        bc = med("before-split", "cpu_ms")
        target("code login wall / before the split at 50 ms <= 1.10",
               "%.2f" % (mw / bw), mw / bw <= 1.10,
               "median %.1f ms vs %.1f ms; CPU (module and helper) %.1f ms vs "
               "%.1f ms (%.2f x)" % (mw, bw, mc, bc, mc / bc))
    md, pd = med("nocode", "dirty_kib"), med("pam_permit", "dirty_kib")
    cd = med("module", "dirty_kib")
    target("private dirty after pam_end - pam_permit's <= 256 KiB",
           "%+.0f KiB" % (md - pd), md - pd <= 256,
           "no-code login %.0f KiB, code login %.0f KiB, pam_permit %.0f KiB%s"
           % (md, cd, pd, "" if "before-split" not in seq[0] else
              "; before the split %.0f KiB" % med("before-split", "dirty_kib")))
    fl = res.get("failures")
    if fl:
        hang = [r["auth_ms"] for r in fl["hang"] if "auth_ms" in r]
        hang_wall = [r["wall_ms"] for r in fl["hang"]]
        denied = all(r["status"] != 0 for r in fl["hang"])
        bound = TIMEOUT_MS * 1.05
        target("hang: result within timeout_ms + 5%% (%.0f ms)" % bound,
               "max %.0f ms" % max(hang), max(hang) <= bound and denied,
               "pam_authenticate %s ms; process wall max %.0f ms; all denied: %s"
               % ("/".join("%.0f" % h for h in hang), max(hang_wall), denied))
        ref = [r["auth_ms"] for r in fl["refused"] if "auth_ms" in r]
        ref_wall = [r["wall_ms"] for r in fl["refused"]]
        denied = all(r["status"] != 0 for r in fl["refused"])
        target("refused: result within 50 ms", "max %.1f ms" % max(ref),
               max(ref) <= 50 and denied,
               "pam_authenticate %s ms; process wall max %.0f ms; all denied: %s"
               % ("/".join("%.1f" % h for h in ref), max(ref_wall), denied))
    b = res.get("burst")
    if b:
        lat = b["latency_ms"]
        target("burst: all %d logins succeed" % b["count"],
               "%d/%d" % (b["ok"], b["count"]), b["ok"] == b["count"],
               "p50 %.0f ms, p99 %.0f ms, max %.0f ms; emulator %s"
               % (percentile(lat, 50), percentile(lat, 99),
                  max(lat) if lat else float("nan"), b["stats"]))

    p("Targets (this run):")
    for name, value, ok, detail in targets:
        p("  [%s] %-52s %-14s %s" % ("met" if ok else "NOT met", name, value, detail))
    p(p_note)
    p("")

    p("Where the module's login goes (medians at 0 ms / 50 ms injected latency;"
      " wall ms, CPU ms):")
    keys = list(m50[0]["phases"].keys()) if m50 and "phases" in m50[0] else []
    for variant in [v for v in ("module", "module+sysCA", "module-alt", "pam_permit")
                    if v in seq[0]]:
        p("  %s" % variant)
        for k in keys:
            vals = []
            for latency in (0, 50):
                rows = [r for r in seq[latency][variant] if r["ok"] and "phases" in r]
                vals.append(median([r["phases"][k] for r in rows]))
                vals.append(median([r["cpu_phases"][k] for r in rows]))
            p("    %-22s %7.2f %6.2f   | %7.2f %6.2f" % (k, *vals))
    pr = res.get("probes")
    if pr:
        p("")
        p("Step by step, each in fresh processes (medians of %d; CPU ms, wall ms,"
          " peak RSS MiB after the step):" % args.probe_runs)
        for case in pr:
            if case.get("failed"):
                p("  %s: failed" % case["name"])
                continue
            p("  %s" % case["name"])
            for st in case["steps"]:
                p("    %-18s CPU %6.2f  wall %6.2f  RSS %5.1f"
                  % (st["step"], st["cpu_ms"], st["wall_ms"], st["maxrss_mib"]))
    if b:
        p("")
        p("Burst: %d PAM processes released at once (emulator latency %d ms, "
          "module timeouts 20 s / 30 s):"
          % (b["count"], b["emulator_latency_ms"]))
        p("  succeeded %d/%d; release-to-exit p50 %.0f ms, p99 %.0f ms, max %.0f ms;"
          " CPU per login p50 %.1f ms" % (
              b["ok"], b["count"], percentile(b["latency_ms"], 50),
              percentile(b["latency_ms"], 99),
              max(b["latency_ms"]) if b["latency_ms"] else float("nan"),
              percentile(b["cpu_ms"], 50)))
        p("  CPU during the burst: the %d logins %.1f s in all, the emulator %.1f s"
          % (b["count"], sum(b["cpu_ms"]) / 1e3, b["emulator_cpu_s"]))
        p("  emulator /stats: %s" % json.dumps(b["stats"]))
        for f in b["failed"]:
            p("  failed: %s" % f)
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--module", required=True, help="pam_twilio_verify.so")
    ap.add_argument("--helper", required=True, help="twilio-verify-helper")
    ap.add_argument("--baseline-module", help="the module before the privilege "
                    "split, measured side by side as variant before-split")
    ap.add_argument("--build-type", default="?")
    ap.add_argument("-n", type=int, default=30, help="logins per variant and latency")
    ap.add_argument("--burst", type=int, default=200, help="simultaneous logins (0: skip)")
    ap.add_argument("--burst-latency", type=int, default=50,
                    help="injected emulator latency during the burst (ms)")
    ap.add_argument("--burst-deadline", type=float, default=120.0)
    ap.add_argument("--failure-runs", type=int, default=3)
    ap.add_argument("--probe-runs", type=int, default=7,
                    help="fresh processes per step of the breakdown")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--alt-module", help="a second build of the module, measured "
                    "side by side as variant module-alt (to weigh a change)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench: needs root (the module accepts only a root-owned "
              "configuration; the burst uses private /tmp mounts)", file=sys.stderr)
        return 77
    if args.n < 1:
        ap.error("-n must be at least 1")
    b = Bench(args)
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        b.results["source"] = "%s%s" % (rev or "?", " + uncommitted src/ changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    t0 = time.monotonic()
    try:
        b.setup()
        b.results["sys_bundle_certs"] = b.sys_bundle_certs
        b.sequential()
        b.failures()
        b.probes()
        b.burst()
    finally:
        b.teardown()
    res = b.results
    with open("/proc/loadavg") as f:
        res["load_end"] = " ".join(f.read().split()[:3])
    res["busy_after"] = busy_processes()
    res["duration_s"] = time.monotonic() - t0
    text = report(res, args)
    print(text)
    print("busiest processes at the end: %s" % "; ".join(res["busy_after"]))
    print("run took %.0f s" % res["duration_s"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
