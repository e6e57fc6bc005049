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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from emulator_client import Emulator  # noqa: E402
import ptv_harness as h  # noqa: E402
from ptv_harness import check  # noqa: E402

PHONE = "+15550104567"
PROMPT = "SMS code sent to +1******4567: "


def pamtester(pw, answers, em, extra_env=None):
    """Runs pamtester for demo; answers are "right", "wrong" or literal
    text. Returns (exit status, output, prompts seen)."""
    r = h.pamtester(pw, "demo", answers, em, PHONE, extra_env=extra_env,
                    log_name="pam.pamtester")
    return r.status, r.output, r.prompts


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
    h.require_root("the module accepts only a root-owned config file")
    module, openapi = os.path.abspath(sys.argv[1]), sys.argv[2]
    with open(openapi) as f:
        spec = json.load(f)
    work = tempfile.mkdtemp(prefix="ptv-pamtester.")
    em = Emulator(os.path.join(work, "emulator"))
    try:
        em.start()
        pw = h.PamWork(work, module,
                       users=(("demo", "Demo User,,+1 555 010 4567,,"),))
        state = os.path.join(work, "state")
        body = 'phone_sources = [ "gecos" ];\n'
        h.write_private(pw.conf, h.module_config(em, state, body))
        status, out, prompts = pamtester(pw, ["right"], em)
        check("right code: one prompt, with the masked number",
              prompts == 1 and PROMPT in out, out)
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
        status, out, prompts = pamtester(pw, ["wrong", "abc", "wrong"], em)
        check("wrong codes: three prompts, with the masked number",
              prompts == 3 and PROMPT in out, out)
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
        status, out, _ = pamtester(pw, ["right"], em, hostile)
        check("hostile environment: proxy variables are ignored",
              status == 0 and "result=approved" in out, out)
        check("hostile environment: no TLS key log is written",
              not os.path.exists(keylog), keylog)

        em.reset()
        h.write_private(pw.conf, h.module_config(
            em, state, body, twilio_extra='  proxy = "http://127.0.0.1:9";\n'))
        status, out, _ = pamtester(pw, [], em, {"NO_PROXY": "*", "no_proxy": "*"})
        check("configured proxy: NO_PROXY in the environment cannot bypass it",
              status != 0 and "result=denied-unavailable" in out and
              not em.requests(), out)
    finally:
        em.stop()
        shutil.rmtree(work, ignore_errors=True)
    return h.summary()


if __name__ == "__main__":
    sys.exit(main())
