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
import ptv_openapi  # noqa: E402
from ptv_harness import check  # noqa: E402

PHONE = "+15550104567"
PROMPT = "SMS code sent to +1******4567 (or type resend, call): "


def pamtester(pw, answers, em, extra_env=None):
    """Runs pamtester for demo; answers are "right", "wrong" or literal
    text. Returns (exit status, output, prompts seen)."""
    r = h.pamtester(pw, "demo", answers, em, PHONE, extra_env=extra_env,
                    log_name="pam.pamtester")
    return r.status, r.output, r.prompts


def check_contract(spec, em, requests):
    """Every request matches a path and operation of the OpenAPI document
    (ptv_openapi.openapi_problems), with the account's Basic auth, and
    carries what the module is meant to send."""
    problems = []
    for r in requests:
        found = ptv_openapi.match_path(spec, r["path"])
        template = found[0] if found else r["path"]
        problems += ptv_openapi.openapi_problems(spec, r, auth_users={em.account_sid})
        if "/Verifications/" in r["path"] and not re.match(
                r"^/v2/Services/VA[0-9a-f]{32}/Verifications/VE[0-9a-f]{32}$", r["path"]):
            problems.append("bad verification path %s" % r["path"])
        if template.endswith("/VerificationCheck"):
            if set(r["form"]) != {"VerificationSid", "Code"}:
                problems.append("check fields %s" % sorted(r["form"]))
        if template.endswith("/Verifications") and r["form"].get("To") != PHONE:
            problems.append("To was %r" % r["form"].get("To"))
    return problems


def creates(em):
    """The creates the emulator received, in order."""
    return [r for r in em.requests() if r["path"].endswith("/Verifications")]


def fresh_login(pw, em, work, name, extra, answers):
    """Writes the configuration (the gecos source, a state directory of
    its own named after the test, extra settings), then one login against
    a reset emulator: (state directory, status, output, prompts)."""
    state = os.path.join(work, "state-" + name)
    h.write_private(pw.conf, h.module_config(
        em, state, 'phone_sources = [ "gecos" ];\n' + extra))
    em.reset()
    return (state,) + pamtester(pw, answers, em)


def resend_and_call(pw, em, spec, work):
    """resend and call at the prompt: the same To again (Channel=call for
    call), the same code approves; a third in one login is refused; the
    send limit can refuse one and the login goes on."""
    state, status, out, prompts = fresh_login(pw, em, work, "resend", "", ["right"])
    body = 'phone_sources = [ "gecos" ];\n'

    check("no resend: one create", status == 0 and len(creates(em)) == 1, out)

    em.reset()
    status, out, prompts = pamtester(pw, ["resend", " CALL ", "right"], em)
    made = creates(em)
    check("resend and call: approved by the code of the first send",
          status == 0 and "result=approved" in out and prompts == 3, out)
    check("resend and call: three creates on the same To, the last with "
          "Channel=call", [r["form"].get("Channel") for r in made] ==
          ["sms", "sms", "call"] and all(r["form"]["To"] == PHONE for r in made),
          str(made))
    box = em.outbox()
    check("resend and call: one verification, one code",
          len(box) == 3 and len({m["code"] for m in box}) == 1 and
          len({m["verification_sid"] for m in box}) == 1, str(box))
    check("resend and call: the prompts say what happened",
          "Code sent again. SMS code sent to +1******4567: " in out and
          "Calling you with the code. Code from the call to +1******4567: " in out,
          out)
    check("resend and call: logged with the masked number",
          "resend 1 of 2 for user demo to +1******4567 by sms: sent again" in out
          and "call 2 of 2 for user demo to +1******4567 by call: sent again" in out
          and PHONE not in out, out)
    check("resend and call: one check, an attempt used by the code only",
          [r["path"].rsplit("/", 1)[-1] for r in em.requests()].count(
              "VerificationCheck") == 1 and "attempts=1" in out, out)
    problems = check_contract(spec, em, em.requests())
    check("resend and call: requests follow the OpenAPI contract", not problems,
          "; ".join(problems))

    em.reset()  # a state of its own: the logins above spent 4 of 5 sends
    h.write_private(pw.conf, h.module_config(
        em, os.path.join(work, "state-third"), body))
    status, out, prompts = pamtester(pw, ["resend", "resend", "resend", "right"], em)
    check("third resend: refused, the prompt says so",
          "No more codes can be sent in this login; 2 attempts left." in out, out)
    check("third resend: only two more creates, the login goes on to approved",
          len(creates(em)) == 3 and status == 0 and "result=approved" in out and
          "attempts=2" in out, out)

    em.reset()
    h.write_private(pw.conf, h.module_config(
        em, os.path.join(work, "state-limit"), body +
        "send_limit = { count = 2; };\n"))
    status, out, prompts = pamtester(pw, ["resend", "resend", "right"], em)
    check("send limit: the second resend is refused, the login goes on",
          len(creates(em)) == 2 and status == 0 and
          "Too many codes were sent recently; use the code already sent." in out,
          out)


def locale(pw, em, work):
    """locale is sent as Locale; a 404 to it is retried once without it; a
    malformed one is a configuration error with file and line."""
    state, status, out, _ = fresh_login(pw, em, work, "locale",
                                        'locale = "pt-BR";\n', ["right"])
    check("locale: sent as Locale, approved",
          status == 0 and [r["form"].get("Locale") for r in creates(em)] ==
          ["pt-BR"] and em.outbox()[0]["locale"] == "pt-BR", out)

    em.reset()
    em.set_faults([{"kind": "twilio_error", "http_status": 404, "code": 20404,
                    "match": "/Verifications", "form_has": "Locale"}])
    status, out, _ = pamtester(pw, ["right"], em)
    em.clear_faults()
    check("locale answered 404: retried once without Locale, approved",
          status == 0 and [r["form"].get("Locale") for r in creates(em)] ==
          ["pt-BR", None] and "trying once more without Locale" in out, out)

    em.reset()
    em.set_faults([{"kind": "twilio_error", "http_status": 404, "code": 20404,
                    "match": "/Verifications"}])
    status, out, _ = pamtester(pw, [], em)
    em.clear_faults()
    check("locale, 404 twice: the unknown service, as without locale",
          status != 0 and "result=denied-config-error" in out and
          "check service_sid" in out and len(creates(em)) == 2, out)

    text = h.module_config(em, state, 'phone_sources = [ "gecos" ];\n'
                           'locale = "pt_BR";\n')
    line = text.splitlines().index('locale = "pt_BR";') + 1
    h.write_private(pw.conf, text)
    em.reset()
    status, out, _ = pamtester(pw, [], em)
    check("bad locale: refused with file and line, nothing sent",
          status != 0 and "result=denied-config-error" in out and
          "%s:%d: locale: must be a language tag" % (pw.conf, line) in out and
          not em.requests(), out)


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

        resend_and_call(pw, em, spec, work)
        locale(pw, em, work)
    finally:
        em.stop()
        shutil.rmtree(work, ignore_errors=True)
    return h.summary()


if __name__ == "__main__":
    sys.exit(main())
