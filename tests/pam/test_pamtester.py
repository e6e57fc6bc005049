#!/usr/bin/python3
"""pamtester, a real PAM application, authenticates through the module under
pam_wrapper and nss_wrapper against the Verify emulator over HTTPS; then
every request the module sent is checked against Twilio's own OpenAPI
document for Verify v2 (path, method, form fields, encoding, Basic auth).

Usage: test_pamtester.py MODULE_SO OPENAPI_JSON
"""

import json
import os
import re
import shutil
import sys
import tempfile

import pexpect

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
from emulator_client import Emulator  # noqa: E402

PHONE = "+15550104567"
results = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    results["passed" if ok else "failed"] += 1
    print("%s %s%s" % ("PASS" if ok else "FAIL", name,
                       "" if ok else ": " + detail), flush=True)


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def pamtester(work, answers, em, extra_env=None):
    """Runs pamtester; answers are "right", "wrong" or literal text."""
    env = dict(os.environ)
    env.update(extra_env or {})
    env.update({
        # Under a sanitizer build the module needs the ASan runtime first.
        "LD_PRELOAD": ":".join(filter(None, [
            os.environ.get("PTV_ASAN_RUNTIME"),
            "libpam_wrapper.so", "libnss_wrapper.so"])),
        "PAM_WRAPPER": "1",
        "PAM_WRAPPER_SERVICE_DIR": os.path.join(work, "pam.d"),
        "PAM_WRAPPER_DEBUGLEVEL": "2",
        "NSS_WRAPPER_PASSWD": os.path.join(work, "passwd"),
        "NSS_WRAPPER_GROUP": os.path.join(work, "group"),
    })
    child = pexpect.spawn("pamtester", ["-v", "twilio-test", "demo",
                                        "authenticate"],
                          env=env, encoding="utf-8", timeout=20)
    transcript = []
    try:
        for answer in answers:
            child.expect(r"SMS code sent to \+1\*\*\*\*\*\*4567: ")
            transcript.append(child.before + child.after)
            if answer == "right":
                child.sendline(em.last_code(PHONE))
            elif answer == "wrong":
                code = em.last_code(PHONE)
                child.sendline("000000" if code != "000000" else "000001")
            else:
                child.sendline(answer)
        child.expect(pexpect.EOF)
        transcript.append(child.before)
    except pexpect.ExceptionPexpect as e:
        transcript.append("\n[%s] %s" % (type(e).__name__, child.before))
    finally:
        child.close(force=True)
    keep = os.environ.get("PTV_TEST_LOG_DIR")
    if keep:  # kept for the suite's final scan for secrets (secrets.scan)
        os.makedirs(keep, exist_ok=True)
        with open(os.path.join(keep, "pam.pamtester.log"), "a") as f:
            f.write("".join(transcript) + "\n")
    return child.exitstatus, "".join(transcript)


def check_contract(spec, em, requests):
    """Every request matches a path and operation of the OpenAPI document."""
    templates = []
    for path, item in spec["paths"].items():
        rx = "^" + re.sub(r"\{[^}]+\}", "([^/]+)", path) + "$"
        templates.append((re.compile(rx), path, item))
    problems = []
    for r in requests:
        matched = [(t, item) for rx, t, item in templates if rx.match(r["path"])]
        if not matched:
            problems.append("no OpenAPI path for %s" % r["path"])
            continue
        template, item = matched[0]
        op = item.get(r["method"].lower())
        if op is None:
            problems.append("%s %s not in the document" % (r["method"], template))
            continue
        schema = op["requestBody"]["content"][
            "application/x-www-form-urlencoded"]["schema"]
        fields = set(r["form"])
        unknown = fields - set(schema["properties"])
        missing = set(schema.get("required", [])) - fields
        if unknown:
            problems.append("%s: fields not in the schema: %s" % (template, unknown))
        if missing:
            problems.append("%s: required fields missing: %s" % (template, missing))
        if not r["content_type"].startswith("application/x-www-form-urlencoded"):
            problems.append("%s: content type %s" % (template, r["content_type"]))
        if r["auth_user"] != em.account_sid:
            problems.append("%s: Basic auth user %s" % (template, r["auth_user"]))
        if "/Verifications/" in r["path"] and not re.match(
                r"^/v2/Services/VA[0-9a-f]{32}/Verifications/VE[0-9a-f]{32}$", r["path"]):
            problems.append("bad verification path %s" % r["path"])
        if template.endswith("/VerificationCheck"):
            if set(r["form"]) != {"VerificationSid", "Code"}:
                problems.append("check fields %s" % sorted(r["form"]))
        if template.endswith("/Verifications") and r["form"].get("To") != PHONE:
            problems.append("To was %r" % r["form"].get("To"))
    return problems


def main():
    if os.geteuid() != 0:
        print("skipped: the module accepts only a root-owned config file")
        return 77
    module, openapi = os.path.abspath(sys.argv[1]), sys.argv[2]
    with open(openapi) as f:
        spec = json.load(f)
    work = tempfile.mkdtemp(prefix="ptv-pamtester.")
    em = Emulator(os.path.join(work, "emulator"))
    try:
        em.start()
        os.makedirs(os.path.join(work, "pam.d"))
        conf = os.path.join(work, "ptv.conf")
        config_text = """twilio = {
  account_sid = "%s";
  auth_token = "%s";
  service_sid = "%s";
  api_url = "%s";
  ca_file = "%s";
  connect_timeout_ms = 1000;
  timeout_ms = 2000;
%%s};
phone_sources = [ "gecos" ];
state_dir = "%s";
""" % (em.account_sid, em.auth_token, em.service_sid, em.api_url, em.ca_file,
       os.path.join(work, "state"))
        write_private(conf, config_text % "")
        with open(os.path.join(work, "pam.d", "twilio-test"), "w") as f:
            f.write("auth required %s conf=%s\n" % (module, conf))
        with open(os.path.join(work, "pam.d", "other"), "w") as f:
            f.write("auth required pam_deny.so\n")
        with open(os.path.join(work, "passwd"), "w") as f:
            f.write("demo:x:2010:2010:Demo User,,+1 555 010 4567,,:/nonexistent:/bin/false\n")
        with open(os.path.join(work, "group"), "w") as f:
            f.write("demo:x:2010:\n")

        status, out = pamtester(work, ["right"], em)
        check("right code: pamtester exits 0", status == 0, out)
        check("right code: successfully authenticated",
              "successfully authenticated" in out, out)
        check("right code: approved is logged", "result=approved" in out, out)
        reqs = em.requests()
        check("right code: one create and one check",
              [r["path"].rsplit("/", 1)[-1] for r in reqs] ==
              ["Verifications", "VerificationCheck"], str(reqs))
        problems = check_contract(spec, em, reqs)
        check("right code: requests follow the OpenAPI contract", not problems,
              "; ".join(problems))
        stats = em.stats()
        check("right code: one TCP connection for create and check",
              stats["connections"] == 1, str(stats))

        em.reset()
        status, out = pamtester(work, ["wrong", "abc", "wrong"], em)
        check("wrong codes: pamtester exits non-zero", status != 0, out)
        check("wrong codes: Authentication failure",
              "Authentication failure" in out, out)
        reqs = em.requests()
        kinds = [r["path"].rsplit("/", 1)[-1] for r in reqs]
        check("wrong codes: two checks (letters never sent), then a cancel",
              kinds[:3] == ["Verifications", "VerificationCheck",
                            "VerificationCheck"] and len(kinds) == 4 and
              kinds[3].startswith("VE") and reqs[3]["form"] == {"Status": "canceled"},
              str(kinds))
        problems = check_contract(spec, em, reqs)
        check("wrong codes: requests follow the OpenAPI contract", not problems,
              "; ".join(problems))
        check("wrong codes: no code and no token in the output",
              em.auth_token not in out and
              all(m["code"] not in out for m in em.outbox()), out)

        # The caller's environment cannot steer the module: su and sudo
        # keep the user's environment while running as root.
        em.reset()
        keylog = os.path.join(work, "keys.log")
        hostile = {"SSLKEYLOGFILE": keylog,
                   "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY":
                   "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9",
                   "all_proxy": "http://127.0.0.1:9"}
        status, out = pamtester(work, ["right"], em, hostile)
        check("hostile environment: proxy variables are ignored",
              status == 0 and "result=approved" in out, out)
        check("hostile environment: no TLS key log is written",
              not os.path.exists(keylog), keylog)

        em.reset()
        write_private(conf, config_text % '  proxy = "http://127.0.0.1:9";\n')
        status, out = pamtester(work, [], em, {"NO_PROXY": "*",
                                               "no_proxy": "*"})
        check("configured proxy: NO_PROXY in the environment cannot bypass it",
              status != 0 and "result=denied-unavailable" in out and
              not em.requests(), out)
        write_private(conf, config_text % "")
    finally:
        em.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 0 if results["failed"] == 0 and results["passed"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
