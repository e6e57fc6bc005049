#!/usr/bin/python3
"""Self-test of the Verify emulator.

    /usr/bin/python3 tests/emulator/test_emulator.py

Talks HTTPS to the emulator trusting only the generated test CA.  Exits 0 when
every test passes and prints "N passed, M failed" at the end.
"""

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import sys
import tempfile
import time
import traceback
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from emulator_client import Emulator  # noqa: E402
import ptv_harness as h  # noqa: E402
import ptv_openapi  # noqa: E402

PHONE = "+15005550006"
PHONE2 = "+447700900123"

VERIFICATION_KEYS = {"sid", "service_sid", "account_sid", "to", "channel", "status",
                     "valid", "lookup", "amount", "payee", "send_code_attempts",
                     "date_created", "date_updated", "sna", "url"}
CHECK_KEYS = {"sid", "service_sid", "account_sid", "to", "channel", "status", "valid",
              "amount", "payee", "date_created", "date_updated",
              "sna_attempts_error_codes"}

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Failure(Exception):
    pass


def check(cond, msg="check failed"):
    if not cond:
        raise Failure(msg)


def eq(a, b, what=""):
    if a != b:
        raise Failure("%s: expected %r, got %r" % (what, b, a))


def assert_error(res, http_status, code, what=""):
    status, hdrs, _data, obj = res
    eq(status, http_status, what + " status")
    check(obj is not None, what + ": error body is not JSON")
    eq(set(obj.keys()), {"code", "message", "more_info", "status"}, what + " error keys")
    eq(obj["code"], code, what + " code")
    eq(obj["status"], http_status, what + " body status")
    eq(obj["more_info"], "https://www.twilio.com/docs/errors/%d" % code, what + " more_info")
    check(isinstance(obj["message"], str) and obj["message"], what + ": empty message")
    check(hdrs.get("content-type", "").startswith("application/json"),
          what + ": content type %r" % hdrs.get("content-type"))
    return obj


# -- helpers -------------------------------------------------------------------

def create(em, to=PHONE, channel="sms", Locale=None, **kw):
    form = {"To": to, "Channel": channel}
    if Locale is not None:
        form["Locale"] = Locale
    return em.call("POST", em.service_path("/Verifications"), form, **kw)


def verify_check(em, code, to=PHONE, sid=None, **kw):
    form = {"Code": code}
    if sid:
        form["VerificationSid"] = sid
    else:
        form["To"] = to
    return em.call("POST", em.service_path("/VerificationCheck"), form, **kw)


def wrong_code(right):
    return "0" * len(right) if right != "0" * len(right) else "1" * len(right)


# -- tests -----------------------------------------------------------------------

@test
def test_auth_account_token(em):
    res = create(em)
    eq(res[0], 201, "create with account token")
    eq(res[1]["content-type"], "application/json; charset=utf-8", "content type")
    assert_error(create(em, password="wrong"), 401, 20003, "bad token")
    assert_error(create(em, user="AC" + "0" * 32), 401, 20003, "unknown account")
    assert_error(create(em, headers={"Authorization": "Bearer x"}), 401, 20003, "bearer")
    st, _h, _d, _o = em.call("GET", em.service_path("/Verifications/VE" + "0" * 32),
                             headers={"Authorization": ""})
    eq(st, 401, "no auth")


@test
def test_auth_api_key(em):
    eq(create(em, user=em.api_key_sid, password=em.api_key_secret)[0], 201, "api key")
    assert_error(create(em, user=em.api_key_sid, password="nope"), 401, 20003, "bad secret")
    assert_error(create(em, user=em.api_key_sid, password=em.auth_token), 401, 20003,
                 "key with token")
    assert_error(create(em, user=em.account_sid, password=em.api_key_secret), 401, 20003,
                 "account with secret")
    reqs = em.requests()
    eq(reqs[0]["auth_user"], em.api_key_sid, "auth_user recorded")
    dump = json.dumps(reqs)
    check(em.api_key_secret not in dump and em.auth_token not in dump,
          "secret recorded in request log")


@test
def test_wrong_service(em):
    other = "VA" + "1" * 32
    assert_error(em.call("POST", "/v2/Services/%s/Verifications" % other,
                         {"To": PHONE, "Channel": "sms"}), 404, 20404, "other service")
    assert_error(em.call("POST", "/v2/Services/VAxyz/Verifications",
                         {"To": PHONE, "Channel": "sms"}), 404, 20404, "bad service sid")
    assert_error(em.call("GET", "/v2/Nothing"), 404, 20404, "unknown path")
    assert_error(em.call("GET", "/"), 404, 20404, "root")
    eq(em.outbox(), [], "no message sent")


@test
def test_fetch_service(em):
    st, _h, _d, svc = em.call("GET", em.service_path())
    eq(st, 200, "fetch the service")
    for field in ("sid", "account_sid", "friendly_name", "code_length",
                  "lookup_enabled", "psd2_enabled", "date_created", "url", "links"):
        check(field in svc, "service field %s" % field)
    eq(svc["sid"], em.service_sid, "sid")
    eq(svc["account_sid"], em.account_sid, "account_sid")
    eq(svc["friendly_name"], em.friendly_name, "friendly_name")
    eq(svc["code_length"], em.code_length, "code_length")
    assert_error(em.call("GET", em.service_path(), password="wrong"), 401, 20003,
                 "fetch with a bad token")
    assert_error(em.call("GET", "/v2/Services/VA" + "1" * 32), 404, 20404,
                 "fetch another service")
    eq(em.call("POST", em.service_path(), {"FriendlyName": "x"})[0], 405,
       "no update of the service")
    eq(em.outbox(), [], "a fetch sends nothing")
    # The fault mechanism reaches the fetch alone with "method": "GET".
    em.set_faults([{"kind": "status", "http_status": 503, "method": "GET",
                    "count": 1}])
    eq(create(em)[0], 201, "a GET fault leaves a POST alone")
    assert_error(em.call("GET", em.service_path()), 503, 20503, "GET fault")
    eq(em.call("GET", em.service_path())[0], 200, "GET fault used up")


@test
def test_create_and_outbox(em):
    st, _h, _d, v = create(em)
    eq(st, 201, "create")
    eq(set(v.keys()), VERIFICATION_KEYS, "resource keys")
    check(v["sid"].startswith("VE") and len(v["sid"]) == 34, "sid format")
    int(v["sid"][2:], 16)
    eq(v["service_sid"], em.service_sid, "service_sid")
    eq(v["account_sid"], em.account_sid, "account_sid")
    eq(v["to"], PHONE, "to")
    eq(v["channel"], "sms", "channel")
    eq(v["status"], "pending", "status")
    eq(v["valid"], False, "valid")
    eq(v["lookup"], {}, "lookup")
    eq((v["amount"], v["payee"], v["sna"]), (None, None, None), "nulls")
    eq(len(v["send_code_attempts"]), 1, "attempts")
    check(set(v["send_code_attempts"][0]) == {"attempt_sid", "channel", "time"},
          "attempt keys")
    check(v["url"].endswith("/v2/Services/%s/Verifications/%s" % (em.service_sid, v["sid"])),
          "url")
    box = em.outbox()
    eq(len(box), 1, "outbox size")
    m = box[0]
    eq(m["to"], PHONE, "outbox to")
    eq(m["verification_sid"], v["sid"], "outbox sid")
    eq(m["channel"], "sms", "outbox channel")
    check(m["code"].isdigit() and len(m["code"]) == 6, "6-digit code")
    eq(m["body"], "Your verification code is: %s" % m["code"], "outbox body")
    check(abs(m["time"] - time.time()) < 60, "outbox time")
    eq(em.last_code(PHONE), m["code"], "last_code")
    eq(em.last_code("+19999999999"), None, "last_code other")
    # fetch
    st, _h, _d, f = em.call("GET", em.service_path("/Verifications/" + v["sid"]))
    eq(st, 200, "fetch")
    eq(f["sid"], v["sid"], "fetch sid")
    eq(f["status"], "pending", "fetch status")
    # the log file has neither the token nor the code
    with open(em.log_file) as fp:
        log = fp.read()
    check(em.auth_token not in log, "token in log")
    check(m["code"] not in log, "code in log")


@test
def test_resend_reuses_code(em):
    v1 = create(em)[3]
    v2 = create(em, channel="call")[3]
    eq(v2["sid"], v1["sid"], "same sid")
    eq(len(v2["send_code_attempts"]), 2, "two attempts")
    eq(v2["channel"], "call", "channel updated")
    box = em.outbox()
    eq(len(box), 2, "two messages")
    eq(box[0]["code"], box[1]["code"], "same code")
    eq(box[1]["channel"], "call", "outbox channel")
    # another number is independent
    v3 = create(em, to=PHONE2)[3]
    check(v3["sid"] != v1["sid"], "different number, different sid")


@test
def test_locale_recorded_and_404_fault(em):
    st, _, _, v1 = create(em, Locale="pt-BR")
    eq(st, 201, "create with Locale")
    st, _, _, v2 = create(em, channel="call")
    eq(v2["sid"], v1["sid"], "a resend without Locale: same verification")
    box = em.outbox()
    eq([m["locale"] for m in box], ["pt-BR", None], "outbox locales")
    eq([m["channel"] for m in box], ["sms", "call"], "outbox channels")
    eq(box[0]["code"], box[1]["code"], "same code")
    reqs = [r for r in em.requests() if r["path"].endswith("/Verifications")]
    eq([r["form"].get("Locale") for r in reqs], ["pt-BR", None], "request log")
    eq(reqs[1]["form"]["Channel"], "call", "request log channel")
    assert_error(create(em, to=PHONE2, Locale="pt_BR"), 400, 60200, "malformed Locale")
    # A 404 only for creates that carry a Locale.
    em.set_faults([{"kind": "twilio_error", "http_status": 404, "code": 20404,
                    "match": "/Verifications", "form_has": "Locale"}])
    assert_error(create(em, to=PHONE2, Locale="xx"), 404, 20404, "unknown locale")
    eq(create(em, to=PHONE2)[0], 201, "the same create without Locale")
    em.set_faults([])


@test
def test_max_sends(em):
    for i in range(5):
        eq(create(em)[0], 201, "send %d" % (i + 1))
    obj = assert_error(create(em), 429, 60203, "6th send")
    eq(obj["message"], "Max send attempts reached", "message")
    eq(len(em.outbox()), 5, "outbox after refusal")
    eq(create(em, to=PHONE2)[0], 201, "other number unaffected")
    em.advance_clock(601)
    st, _h, _d, v = create(em)
    eq(st, 201, "after window")
    eq(len(v["send_code_attempts"]), 1, "new verification after window")


@test
def test_wrong_code_pending(em):
    create(em)
    code = em.last_code()
    st, _h, _d, c = verify_check(em, wrong_code(code))
    eq(st, 200, "wrong code status")
    eq(set(c.keys()), CHECK_KEYS, "check keys")
    eq(c["status"], "pending", "pending")
    eq(c["valid"], False, "valid")
    eq(c["sna_attempts_error_codes"], [], "sna codes")
    # still approvable
    st, _h, _d, c = verify_check(em, code)
    eq((st, c["status"], c["valid"]), (200, "approved", True), "right code after wrong")


@test
def test_max_checks(em):
    create(em)
    code = em.last_code()
    for i in range(5):
        st, _h, _d, c = verify_check(em, wrong_code(code))
        eq((st, c["status"]), (200, "pending"), "wrong check %d" % (i + 1))
    obj = assert_error(verify_check(em, code), 429, 60202, "6th check (right code)")
    eq(obj["message"], "Max check attempts reached", "message")
    assert_error(verify_check(em, code), 404, 20404, "after max")
    # a new create starts a fresh verification with a new sid
    st, _h, _d, v = create(em)
    eq(st, 201, "create after max checks")
    check(em.outbox()[-1]["verification_sid"] == v["sid"], "outbox sid")
    eq(len(v["send_code_attempts"]), 1, "fresh verification")


@test
def test_right_code_then_gone(em):
    v = create(em)[3]
    code = em.last_code()
    st, _h, _d, c = verify_check(em, code, sid=v["sid"])
    eq(st, 200, "check by sid")
    eq((c["status"], c["valid"], c["sid"], c["to"]), ("approved", True, v["sid"], PHONE),
       "approved")
    assert_error(verify_check(em, code), 404, 20404, "check after approval")
    assert_error(verify_check(em, code, sid=v["sid"]), 404, 20404, "check by sid after")
    assert_error(em.call("GET", em.service_path("/Verifications/" + v["sid"])), 404, 20404,
                 "fetch after approval")
    assert_error(verify_check(em, code, to=PHONE2), 404, 20404, "never created")


@test
def test_expiry(em):
    v = create(em)[3]
    code = em.last_code()
    em.advance_clock(599)
    eq(em.call("GET", em.service_path("/Verifications/" + v["sid"]))[0], 200, "before expiry")
    em.advance_clock(2)
    assert_error(verify_check(em, code), 404, 20404, "check after expiry")
    assert_error(em.call("GET", em.service_path("/Verifications/" + v["sid"])), 404, 20404,
                 "fetch after expiry")
    v2 = create(em)[3]
    check(v2["sid"] != v["sid"], "new verification after expiry")


@test
def test_cancel(em):
    v = create(em)[3]
    code = em.last_code()
    st, _h, _d, r = em.call("POST", em.service_path("/Verifications/" + v["sid"]),
                            {"Status": "canceled"})
    eq(st, 200, "cancel status")
    eq(set(r.keys()), VERIFICATION_KEYS, "cancel keys")
    eq((r["status"], r["valid"]), ("canceled", False), "canceled")
    assert_error(verify_check(em, code), 404, 20404, "check after cancel")
    assert_error(em.call("POST", em.service_path("/Verifications/" + v["sid"]),
                         {"Status": "canceled"}), 404, 20404, "cancel twice")


@test
def test_update_approved_and_bad_status(em):
    v = create(em)[3]
    assert_error(em.call("POST", em.service_path("/Verifications/" + v["sid"]),
                         {"Status": "bogus"}), 400, 60200, "bad Status")
    st, _h, _d, r = em.call("POST", em.service_path("/Verifications/" + v["sid"]),
                            {"Status": "approved"})
    eq((st, r["status"], r["valid"]), (200, "approved", True), "approved by update")
    assert_error(verify_check(em, em.last_code()), 404, 20404, "check after approve")


@test
def test_validation(em):
    o = assert_error(create(em, to="5005550006"), 400, 60200, "no plus")
    check(o["message"].startswith("Invalid parameter `To`: "), "To message: " + o["message"])
    assert_error(create(em, to="+0123456789"), 400, 60200, "leading zero")
    assert_error(create(em, to="+12345"), 400, 60200, "too short")
    assert_error(create(em, to="+1234567890123456"), 400, 60200, "too long")
    assert_error(create(em, channel="pigeon"), 400, 60200, "bad channel")
    assert_error(create(em, channel=""), 400, 60200, "empty channel")
    assert_error(em.call("POST", em.service_path("/Verifications"), {"Channel": "sms"}),
                 400, 60200, "missing To")
    assert_error(em.call("POST", em.service_path("/Verifications"),
                         body=b"To=%2B15005550006&Channel=sms&To=%2B15005550007",
                         headers={"Content-Type": "application/x-www-form-urlencoded"}),
                 400, 60200, "repeated To")
    assert_error(em.call("POST", em.service_path("/Verifications"),
                         body=b'{"To": "+15005550006", "Channel": "sms"}',
                         headers={"Content-Type": "application/json"}),
                 400, 60200, "JSON body")
    eq(em.call("POST", em.service_path("/Verifications"),
               body=b"To=%2B15005550006&Channel=sms",
               headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
               )[0], 201, "form with charset")
    code = em.last_code()
    assert_error(verify_check(em, "123"), 400, 60200, "code too short")
    assert_error(verify_check(em, "12345678901"), 400, 60200, "code too long")
    assert_error(em.call("POST", em.service_path("/VerificationCheck"),
                         {"Code": code, "To": PHONE, "VerificationSid": "VE" + "0" * 32}),
                 400, 60200, "both To and VerificationSid")
    assert_error(em.call("POST", em.service_path("/VerificationCheck"), {"Code": code}),
                 400, 60200, "neither To nor VerificationSid")
    st, _h, _d, c = verify_check(em, code)
    eq((st, c["status"]), (200, "approved"), "validation errors did not count as checks")
    eq(len(em.outbox()), 1, "one message only")
    st, _h, _d, _o = em.call("GET", em.service_path("/Verifications"))
    eq(st, 405, "GET on the create path")


@test
def test_fault_status(em):
    em.set_faults([{"kind": "status", "http_status": 503, "count": 1},
                   {"kind": "status", "http_status": 500, "count": 1},
                   {"kind": "status", "http_status": 502, "code": 12345, "count": 1}])
    assert_error(create(em), 503, 20503, "503")
    assert_error(create(em), 500, 20500, "500")
    assert_error(create(em), 502, 12345, "502")
    eq(create(em)[0], 201, "faults used up")
    eq(len(em.outbox()), 1, "faulted creates send nothing")
    reqs = em.requests()
    eq([r["status"] for r in reqs], [503, 500, 502, 201], "statuses recorded")
    eq(reqs[0].get("fault"), "status", "fault recorded")


@test
def test_fault_process(em):
    em.set_faults([{"kind": "status", "http_status": 500, "count": 1, "process": True}])
    assert_error(create(em), 500, 20500, "500 after processing")
    eq(len(em.outbox()), 1, "message sent despite the 500")


@test
def test_fault_twilio_error_and_match(em):
    em.set_faults([{"kind": "twilio_error", "http_status": 403, "code": 60410,
                    "match": "Verifications"},
                   {"kind": "twilio_error", "http_status": 429, "code": 60202,
                    "match": "VerificationCheck", "count": 1}])
    assert_error(create(em), 403, 60410, "60410")
    assert_error(create(em), 403, 60410, "60410 again (no count)")
    assert_error(verify_check(em, "123456"), 429, 60202, "check fault")
    assert_error(verify_check(em, "123456"), 404, 20404, "check fault used up")
    for code, st in ((60205, 403), (60605, 403), (20003, 401), (60200, 400), (60203, 429)):
        em.set_faults([{"kind": "twilio_error", "http_status": st, "code": code}])
        assert_error(create(em), st, code, "twilio_error %d" % code)
    em.set_faults([])
    eq(create(em)[0], 201, "faults cleared")


@test
def test_fault_rate_limit(em):
    em.set_faults([{"kind": "rate_limit", "retry_after": 3, "count": 1},
                   {"kind": "rate_limit", "count": 1}])
    res = create(em)
    assert_error(res, 429, 20429, "rate limit")
    eq(res[1].get("retry-after"), "3", "Retry-After")
    res = create(em)
    eq(res[1].get("retry-after"), "1", "default Retry-After")
    eq(res[1].get("twilio-reached-rate-limit"), None,
       "a throttle names no rate limit")
    em.set_faults([{"kind": "rate_limit", "retry_after": None,
                    "rate_limit": "pam_account", "count": 1}])
    res = create(em)
    assert_error(res, 429, 20429, "service rate limit")
    eq(res[1].get("twilio-reached-rate-limit"), "pam_account",
       "Twilio-Reached-Rate-Limit names the limit")
    eq(res[1].get("retry-after"), None, "no Retry-After")


@test
def test_fault_hang(em):
    em.set_faults([{"kind": "hang", "seconds": 1, "count": 1}])
    conn = em.connection(timeout=0.3)
    t0 = time.monotonic()
    try:
        create(em, conn=conn)
        raise Failure("hang answered")
    except (socket.timeout, TimeoutError):
        pass
    finally:
        conn.close()
    check(time.monotonic() - t0 < 1.0, "timeout took too long")
    conn = em.connection(timeout=5)
    em.set_faults([{"kind": "hang", "seconds": 1, "count": 1}])
    t0 = time.monotonic()
    try:
        create(em, conn=conn)
        raise Failure("hang answered")
    except (http.client.RemoteDisconnected, ConnectionError, ssl.SSLError):
        pass
    finally:
        conn.close()
    el = time.monotonic() - t0
    check(0.9 <= el < 4, "hang closed after %.2fs" % el)
    eq(create(em)[0], 201, "after hang")
    eq(em.requests()[0]["status"], None, "hang status recorded as null")


@test
def test_fault_close(em):
    em.set_faults([{"kind": "close", "count": 1}])
    try:
        create(em)
        raise Failure("close answered")
    except (http.client.RemoteDisconnected, ConnectionError, ssl.SSLError):
        pass
    eq(create(em)[0], 201, "after close")


@test
def test_fault_malformed_json(em):
    em.set_faults([{"kind": "malformed_json"}])
    st, h, data, obj = create(em)
    eq(st, 201, "malformed create status")
    eq(data, b'{"status": "approved", ', "malformed body")
    check(h["content-type"].startswith("application/json"), "content type")
    eq(obj, None, "does not parse")
    st, _h, data, _o = verify_check(em, "123456")
    eq(st, 200, "malformed check status")


@test
def test_fault_truncated(em):
    em.set_faults([{"kind": "truncated", "count": 1, "match": "VerificationCheck"}])
    try:
        verify_check(em, "123456")
        raise Failure("truncated read completed")
    except http.client.IncompleteRead:
        pass


@test
def test_fault_oversized(em):
    em.set_faults([{"kind": "oversized", "count": 1},
                   {"kind": "oversized", "bytes": 100000, "count": 1}])
    st, h, data, obj = verify_check(em, "123456")
    eq(st, 200, "oversized status")
    eq(len(data), 1 << 20, "1 MiB body")
    eq(int(h["content-length"]), 1 << 20, "content-length")
    eq(obj["status"], "approved", "looks valid")
    st, h, data, obj = create(em)
    eq(len(data), 100000, "custom size")
    eq(st, 201, "create-shaped")


@test
def test_fault_wrong_content_type(em):
    em.set_faults([{"kind": "wrong_content_type"}])
    st, h, data, obj = create(em)
    eq(h["content-type"], "text/html", "content type")
    check(obj is not None and obj.get("status") == "pending", "normal-looking body")


@test
def test_fault_redirect(em):
    em.set_faults([{"kind": "redirect", "count": 1},
                   {"kind": "redirect", "location": "https://127.0.0.1:2/x", "count": 1}])
    st, h, data, _o = create(em)
    eq((st, h.get("location"), data), (302, "https://127.0.0.1:1/elsewhere", b""), "redirect")
    eq(create(em)[1].get("location"), "https://127.0.0.1:2/x", "custom location")


@test
def test_fault_json(em):
    em.set_faults([{"kind": "json", "http_status": 200, "body": {"status": "approved"},
                    "match": "VerificationCheck"}])
    st, h, data, obj = verify_check(em, "123456")
    eq((st, obj), (200, {"status": "approved"}), "scripted json")
    eq(h["content-type"], "application/json; charset=utf-8", "content type")


@test
def test_latency(em):
    em.set_faults([], latency_ms=300)
    t0 = time.monotonic()
    eq(create(em)[0], 201, "create with latency")
    el = time.monotonic() - t0
    check(el >= 0.29, "latency applied (%.3f)" % el)
    em.set_faults([])
    t0 = time.monotonic()
    create(em)
    check(time.monotonic() - t0 < 0.25, "latency cleared")


@test
def test_refuse_reopen(em):
    port = em.port
    eq(em.refuse(True)["listening"], False, "refuse")
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.close()
        raise Failure("connection accepted while refusing")
    except ConnectionRefusedError:
        pass
    r = em.refuse(False)
    eq((r["listening"], r["port"]), (True, port), "reopened on the same port")
    eq(create(em)[0], 201, "works after reopen")


@test
def test_keep_alive_and_stats(em):
    eq(em.stats(), {"connections": 0, "tls_handshakes": 0, "requests": 0}, "stats reset")
    conn = em.connection()
    try:
        v = create(em, conn=conn)[3]
        eq(verify_check(em, wrong_code(em.last_code()), conn=conn)[0], 200, "check")
        eq(em.call("POST", em.service_path("/Verifications/" + v["sid"]),
                   {"Status": "canceled"}, conn=conn)[3]["status"], "canceled", "cancel")
    finally:
        conn.close()
    eq(em.stats(), {"connections": 1, "tls_handshakes": 1, "requests": 3}, "one connection")
    t0 = time.monotonic()
    conn = em.connection()
    try:
        for _ in range(20):
            verify_check(em, "123456", conn=conn)
    finally:
        conn.close()
    el = time.monotonic() - t0
    check(el < 1.0, "20 keep-alive requests took %.3fs" % el)
    reqs = em.requests()
    eq(len(reqs), 23, "request log length")
    r = reqs[1]
    eq((r["method"], r["path"], r["status"], r["content_type"]),
       ("POST", em.service_path("/VerificationCheck"), 200,
        "application/x-www-form-urlencoded"), "request entry")
    eq(set(r["form"]), {"To", "Code"}, "form fields")


# -- Programmable Rate Limits --------------------------------------------------

RATE_LIMIT_KEYS = ["sid", "service_sid", "account_sid", "unique_name", "description",
                   "date_created", "date_updated", "url", "links"]
BUCKET_KEYS = ["sid", "rate_limit_sid", "service_sid", "account_sid", "max", "interval",
               "date_created", "date_updated", "url"]
META_KEYS = {"page", "page_size", "first_page_url", "previous_page_url",
             "next_page_url", "key", "url"}


def schema_keys(name):
    """The response fields of a schema of Twilio's OpenAPI document."""
    with open(os.path.join(HERE, "twilio-openapi", "twilio_verify_v2.json")) as fp:
        doc = json.load(fp)
    return list(doc["components"]["schemas"][name]["properties"])


def rl_path(em, sid="", suffix=""):
    return em.service_path("/RateLimits" + ("/" + sid if sid else "") + suffix)


def new_rate_limit(em, name, description=None, **kw):
    form = {"UniqueName": name}
    if description is not None:
        form["Description"] = description
    return em.call("POST", rl_path(em), form, **kw)


def new_bucket(em, rk, max_, interval):
    return em.call("POST", rl_path(em, rk, "/Buckets"),
                   {"Max": str(max_), "Interval": str(interval)})


def limited(em, limits, to=PHONE, **kw):
    form = {"To": to, "Channel": "sms", "RateLimits": json.dumps(limits)}
    return em.call("POST", em.service_path("/Verifications"), form, **kw)


def assert_rate_limited(res, name, what):
    assert_error(res, 429, 20429, what)
    eq(res[3]["message"], "Too Many Requests", what + " message")
    eq(res[1].get("twilio-reached-rate-limit"), name, what + " header")


@test
def test_rate_limit_crud(em):
    eq(RATE_LIMIT_KEYS, schema_keys("verify.v2.service.rate_limit"), "document fields")
    st, _h, _d, rl = new_rate_limit(em, "pam_account", "per account")
    eq(st, 201, "create")
    eq(list(rl), RATE_LIMIT_KEYS, "fields")
    check(re.match(r"^RK[0-9a-f]{32}$", rl["sid"]), "sid %r" % rl["sid"])
    eq((rl["service_sid"], rl["account_sid"]), (em.service_sid, em.account_sid), "owners")
    eq((rl["unique_name"], rl["description"]), ("pam_account", "per account"), "values")
    url = "https://verify.twilio.com" + rl_path(em, rl["sid"])
    eq(rl["url"], url, "url")
    eq(rl["links"], {"buckets": url + "/Buckets"}, "links")
    check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", rl["date_created"]), "date")
    st, _h, _d, got = em.call("GET", rl_path(em, rl["sid"]))
    eq((st, got), (200, rl), "fetch")
    st, _h, _d, upd = em.call("POST", rl_path(em, rl["sid"]),
                              {"Description": "changed", "UniqueName": "other"})
    eq(st, 200, "update")
    eq((upd["description"], upd["unique_name"]), ("changed", "pam_account"), "updated")
    eq(new_rate_limit(em, "no_description")[3]["description"], None, "no Description")
    st, _h, _d, lst = em.call("GET", rl_path(em))
    eq(st, 200, "list")
    eq(set(lst), {"rate_limits", "meta"}, "list keys")
    eq(set(lst["meta"]), META_KEYS, "meta keys")
    base = "https://verify.twilio.com" + rl_path(em)
    eq(lst["meta"], {"page": 0, "page_size": 50, "key": "rate_limits",
                     "first_page_url": base + "?PageSize=50&Page=0",
                     "url": base + "?PageSize=50&Page=0",
                     "previous_page_url": None, "next_page_url": None}, "meta")
    eq([r["unique_name"] for r in lst["rate_limits"]], ["pam_account", "no_description"],
       "listed in creation order")
    eq(lst["rate_limits"][0], upd, "listed resource")
    new_rate_limit(em, "third")
    lst = em.call("GET", rl_path(em) + "?PageSize=2")[3]
    eq(len(lst["rate_limits"]), 2, "page 0 of 2")
    eq(lst["meta"]["next_page_url"], base + "?PageSize=2&Page=1", "next page")
    lst = em.call("GET", rl_path(em) + "?PageSize=2&Page=1&PageToken=x")[3]
    eq([r["unique_name"] for r in lst["rate_limits"]], ["third"], "page 1")
    eq((lst["meta"]["previous_page_url"], lst["meta"]["next_page_url"]),
       (base + "?PageSize=2&Page=0", None), "page 1 links")
    assert_error(em.call("GET", rl_path(em) + "?PageSize=0"), 400, 60200, "PageSize 0")
    assert_error(em.call("GET", rl_path(em) + "?PageSize=1001"), 400, 60200,
                 "PageSize 1001")
    assert_error(em.call("GET", rl_path(em) + "?Page=x"), 400, 60200, "Page x")
    # errors
    assert_error(new_rate_limit(em, "pam_account"), 400, 60208, "duplicate UniqueName")
    assert_error(em.call("POST", rl_path(em), {"Description": "d"}), 400, 60200,
                 "no UniqueName")
    assert_error(new_rate_limit(em, "has space"), 400, 60209, "UniqueName format")
    assert_error(new_rate_limit(em, "x" * 65), 400, 60209, "UniqueName too long")
    assert_error(new_rate_limit(em, "x", password="wrong"), 401, 20003, "auth")
    assert_error(em.call("PUT", rl_path(em, rl["sid"])), 405, 20004, "PUT")
    assert_error(em.call("DELETE", rl_path(em)), 405, 20004, "DELETE of the list")
    other = "/v2/Services/VA%s/RateLimits" % ("1" * 32)
    assert_error(em.call("GET", other), 404, 20404, "other service")
    for bad in ("RK" + "0" * 32, "RKxyz", "BL" + "0" * 32):
        assert_error(em.call("GET", rl_path(em, bad)), 404, 20404, "fetch " + bad)
        assert_error(em.call("POST", rl_path(em, bad), {"Description": "d"}), 404, 20404,
                     "update " + bad)
        assert_error(em.call("DELETE", rl_path(em, bad)), 404, 20404, "delete " + bad)
    st, hdrs, data, _o = em.call("DELETE", rl_path(em, rl["sid"]))
    eq((st, data), (204, b""), "delete")
    check("content-length" not in hdrs or hdrs["content-length"] == "0", "204 body")
    assert_error(em.call("GET", rl_path(em, rl["sid"])), 404, 20404, "fetch deleted")
    assert_error(em.call("DELETE", rl_path(em, rl["sid"])), 404, 20404, "delete twice")
    eq(new_rate_limit(em, "pam_account")[0], 201, "name free again after delete")


@test
def test_rate_limit_quota(em):
    sids = [new_rate_limit(em, "limit_%d" % i)[3]["sid"] for i in range(10)]
    obj = assert_error(new_rate_limit(em, "limit_10"), 400, 60207, "11th rate limit")
    eq(obj["message"], "Max rate limits per service reached", "60207 message")
    eq(em.call("DELETE", rl_path(em, sids[0]))[0], 204, "delete one")
    eq(new_rate_limit(em, "limit_10")[0], 201, "room again")


@test
def test_bucket_crud(em):
    eq(BUCKET_KEYS, schema_keys("verify.v2.service.rate_limit.bucket"), "document fields")
    rk = new_rate_limit(em, "pam_account")[3]["sid"]
    st, _h, _d, b = new_bucket(em, rk, 5, 60)
    eq(st, 201, "create")
    eq(list(b), BUCKET_KEYS, "fields")
    check(re.match(r"^BL[0-9a-f]{32}$", b["sid"]), "sid %r" % b["sid"])
    eq((b["rate_limit_sid"], b["service_sid"], b["account_sid"]),
       (rk, em.service_sid, em.account_sid), "owners")
    eq((b["max"], b["interval"]), (5, 60), "values are integers")
    url = "https://verify.twilio.com" + rl_path(em, rk, "/Buckets/" + b["sid"])
    eq(b["url"], url, "url")
    bpath = rl_path(em, rk, "/Buckets/" + b["sid"])
    st, _h, _d, got = em.call("GET", bpath)
    eq((st, got), (200, b), "fetch")
    st, _h, _d, upd = em.call("POST", bpath, {"Max": "7"})
    eq((st, upd["max"], upd["interval"]), (200, 7, 60), "update Max")
    upd = em.call("POST", bpath, {"Interval": "3600"})[3]
    eq((upd["max"], upd["interval"]), (7, 3600), "update Interval")
    st, _h, _d, lst = em.call("GET", rl_path(em, rk, "/Buckets"))
    eq(st, 200, "list")
    eq(set(lst["meta"]), META_KEYS, "meta keys")
    eq((lst["meta"]["key"], lst["buckets"]), ("buckets", [upd]), "listed")
    # errors
    for form, what in (({"Max": "5"}, "no Interval"), ({"Interval": "5"}, "no Max"),
                       ({"Max": "x", "Interval": "5"}, "Max not a number"),
                       ({"Max": "0", "Interval": "5"}, "Max 0"),
                       ({"Max": "5", "Interval": "-1"}, "negative Interval")):
        assert_error(em.call("POST", rl_path(em, rk, "/Buckets"), form), 400, 60200, what)
    assert_error(em.call("POST", bpath, {"Max": "1.5"}), 400, 60200, "update Max 1.5")
    assert_error(new_bucket(em, rk, 1, 3600), 400, 60211, "same Interval")
    for i in range(4):
        eq(new_bucket(em, rk, 1, 10 + i)[0], 201, "bucket %d" % (i + 2))
    obj = assert_error(new_bucket(em, rk, 1, 100), 400, 60210, "6th bucket")
    eq(obj["message"], "Max Buckets per Rate limit reached", "60210 message")
    assert_error(em.call("POST", bpath, {"Interval": "10"}), 400, 60211,
                 "update to another bucket's Interval")
    eq(em.call("POST", bpath, {"Interval": "3600"})[0], 200, "own Interval")
    rk2 = new_rate_limit(em, "other")[3]["sid"]
    assert_error(em.call("GET", rl_path(em, rk2, "/Buckets/" + b["sid"])), 404, 20404,
                 "bucket under another rate limit")
    for bad in ("BL" + "0" * 32, "BLxyz", "RK" + "0" * 32):
        p = rl_path(em, rk, "/Buckets/" + bad)
        assert_error(em.call("GET", p), 404, 20404, "fetch " + bad)
        assert_error(em.call("POST", p, {"Max": "1"}), 404, 20404, "update " + bad)
        assert_error(em.call("DELETE", p), 404, 20404, "delete " + bad)
    unknown = "RK" + "0" * 32
    assert_error(new_bucket(em, unknown, 1, 1), 404, 20404, "create, unknown rate limit")
    assert_error(em.call("GET", rl_path(em, unknown, "/Buckets")), 404, 20404,
                 "list, unknown rate limit")
    assert_error(em.call("PUT", bpath), 405, 20004, "PUT")
    st, _h, data, _o = em.call("DELETE", bpath)
    eq((st, data), (204, b""), "delete")
    assert_error(em.call("GET", bpath), 404, 20404, "fetch deleted")
    eq(len(em.call("GET", rl_path(em, rk, "/Buckets"))[3]["buckets"]), 4, "4 left")
    eq(em.call("DELETE", rl_path(em, rk))[0], 204, "delete the rate limit")
    assert_error(em.call("GET", rl_path(em, rk, "/Buckets")), 404, 20404,
                 "buckets of a deleted rate limit")


@test
def test_rate_limit_enforced(em):
    rk = new_rate_limit(em, "pam_account")[3]["sid"]
    bl = new_bucket(em, rk, 3, 10)[3]["sid"]
    new_rate_limit(em, "unused")
    phones = ["+1500555%04d" % i for i in range(10)]
    eq(limited(em, {"pam_account": "alice"}, phones[0])[0], 201, "1st")
    # a resend (same To, pending verification) counts too; any client counts
    st, _h, _d, v = limited(em, {"pam_account": "alice"}, phones[0],
                            user=em.api_key_sid, password=em.api_key_secret)
    eq((st, len(v["send_code_attempts"])), (201, 2), "2nd is a resend, by API key")
    eq(limited(em, {"pam_account": "alice", "unused": "x"}, phones[1])[0], 201, "3rd")
    res = limited(em, {"pam_account": "alice"}, phones[2])
    assert_rate_limited(res, "pam_account", "4th")
    check("retry-after" not in res[1], "no Retry-After")
    eq(len(em.outbox()), 3, "the refused create sends nothing")
    log = em.requests()
    eq(log[-1]["status"], 429, "logged status")
    eq(json.loads(log[-1]["form"]["RateLimits"]), {"pam_account": "alice"},
       "RateLimits in the request log")
    eq(limited(em, {"pam_account": "bob"}, phones[2])[0], 201, "other key unaffected")
    eq(create(em, to=phones[3])[0], 201, "create without RateLimits unaffected")
    eq(limited(em, {"unused": "alice"}, phones[4])[0], 201, "a limit without buckets")
    em.advance_clock(5)
    assert_rate_limited(limited(em, {"pam_account": "alice"}, phones[5]),
                        "pam_account", "still full at +5 s (refused, not counted)")
    em.advance_clock(5.5)
    # the sliding window has let the first three go; the refusal at +5 s
    # did not count, so three fit again
    for i in range(3):
        eq(limited(em, {"pam_account": "alice"}, phones[6 + i])[0], 201,
           "after the interval %d" % (i + 1))
    assert_rate_limited(limited(em, {"pam_account": "alice"}, phones[9]),
                        "pam_account", "full again")
    # the bucket's new Max applies to the creates already counted
    em.call("POST", rl_path(em, rk, "/Buckets/" + bl), {"Max": "4"})
    eq(limited(em, {"pam_account": "alice"}, phones[9])[0], 201, "Max raised to 4")
    # two buckets: the shorter one is full first
    new_bucket(em, rk, 1, 2)
    eq(limited(em, {"pam_account": "carol"}, phones[0])[0], 201, "carol 1st")
    assert_rate_limited(limited(em, {"pam_account": "carol"}, phones[1]),
                        "pam_account", "carol, 1 per 2 s")
    em.advance_clock(2.5)
    eq(limited(em, {"pam_account": "carol"}, phones[1])[0], 201, "carol after 2 s")
    # the first full limit named is the one reported
    rk2 = new_rate_limit(em, "pam_host")[3]["sid"]
    new_bucket(em, rk2, 1, 60)
    eq(limited(em, {"pam_host": "h1", "pam_account": "dave"}, phones[2])[0], 201,
       "two limits")
    assert_rate_limited(limited(em, {"pam_account": "erin", "pam_host": "h1"}, phones[3]),
                        "pam_host", "second limit full")
    eq(em.call("DELETE", rl_path(em, rk2))[0], 204, "delete pam_host")
    assert_error(limited(em, {"pam_host": "h1"}, phones[3]), 400, 60200,
                 "a deleted limit is unknown")


@test
def test_rate_limits_parameter(em):
    rk = new_rate_limit(em, "pam_account")[3]["sid"]
    new_bucket(em, rk, 1, 60)
    form = {"To": PHONE, "Channel": "sms"}
    for raw, what in (("not json", "not JSON"), ('["pam_account"]', "array"),
                      ('[["pam_account", "a"]]', "array of pairs"),
                      ('{"pam_account": 1}', "number value"),
                      ('{"pam_account": {"k": "v"}}', "object value"),
                      ('{"pam_account": "a", "pam_account": "b"}', "repeated name"),
                      ('"pam_account"', "string"),
                      ('{"nosuch": "a"}', "unknown unique name")):
        assert_error(em.call("POST", em.service_path("/Verifications"),
                             dict(form, RateLimits=raw)), 400, 60200, what)
    eq(em.outbox(), [], "nothing sent")
    eq(limited(em, {})[0], 201, "empty object")
    eq(limited(em, {"pam_account": ""})[0], 201, "empty key value")
    eq(limited(em, {"pam_account": "a"})[0], 201, "400s did not count")


@test
def test_rate_limits_reset(em):
    new_rate_limit(em, "pam_account")
    em.reset()
    eq(em.call("GET", rl_path(em))[3]["rate_limits"], [], "reset clears rate limits")


@test
def test_reset(em):
    create(em)
    em.set_faults([{"kind": "close"}], latency_ms=10)
    em.advance_clock(100)
    em.reset()
    eq(em.outbox(), [], "outbox cleared")
    eq(em.requests(), [], "requests cleared")
    eq(em.stats()["requests"], 0, "stats cleared")
    st, _h, _d, v = create(em)
    eq(st, 201, "faults cleared")
    eq(len(v["send_code_attempts"]), 1, "verifications cleared")


@test
def test_tls_trust(em):
    # Only the generated CA is trusted; the unrelated CA must fail.
    conn = em.connection(cafile=em.other_ca_file)
    try:
        create(em, conn=conn)
        raise Failure("untrusted CA accepted")
    except ssl.SSLCertVerificationError:
        pass
    finally:
        conn.close()
    # TLS 1.1 and below are refused.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(em.ca_file)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return
    try:
        with socket.create_connection(("127.0.0.1", em.port), timeout=5) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1"):
                raise Failure("TLS 1.1 accepted")
    except (ssl.SSLError, ConnectionError):
        pass


def run_side_emulator(workdir, name, cert, fn, **kw):
    side = Emulator(workdir, cert=cert, name=name, **kw)
    side.start()
    try:
        fn(side)
    finally:
        eq(side.stop(), 0, name + " exit status")


@test
def test_bad_certificates(em):
    def expect_verify_error(side, what):
        try:
            create(side)
            raise Failure(what + " accepted")
        except ssl.SSLCertVerificationError as e:
            return e

    def wronghost(side):
        e = expect_verify_error(side, "wrong host")
        check("match" in str(e) or "mismatch" in str(e), "hostname error: %s" % e)

    def expired(side):
        e = expect_verify_error(side, "expired")
        check("expired" in str(e), "expiry error: %s" % e)

    run_side_emulator(em.workdir, "side-wronghost", "wronghost", wronghost)
    run_side_emulator(em.workdir, "side-expired", "expired", expired)


@test
def test_code_length_option(em):
    def eight(side):
        eq(create(side)[0], 201, "create")
        code = side.last_code()
        check(code.isdigit() and len(code) == 8, "8-digit code %r" % code)
        eq(verify_check(side, code)[3]["status"], "approved", "approve")

    run_side_emulator(em.workdir, "side-code8", "server", eight, code_length=8)


# -- Programmable Messaging (2010-04-01) -------------------------------------

MESSAGES_SPEC = ptv_openapi.load("twilio_api_v2010_messages.json")
MESSAGE_SCHEMA = "api.v2010.account.message"
RFC2822_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|"
                        r"Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d \+0000$")
OWNED = "+15550100001"


def send_sms(em, form=None, account_sid=None, **kw):
    """POST Messages.json; form defaults to To=PHONE, From=OWNED and a code."""
    if form is None:
        form = {"To": PHONE, "From": OWNED, "Body": "Your login code is 123456"}
    return em.call("POST", em.messages_path(account_sid=account_sid), form, **kw)


def assert_message(em, obj, what):
    problems = ptv_openapi.response_problems(MESSAGES_SPEC, MESSAGE_SCHEMA, obj)
    check(not problems, what + ": " + "; ".join(problems))
    check(re.match(r"^SM[0-9a-f]{32}$", obj["sid"]), what + ": sid %r" % obj["sid"])
    eq(obj["account_sid"], em.account_sid, what + " account_sid")
    eq((obj["direction"], obj["api_version"]), ("outbound-api", "2010-04-01"),
       what + " direction, api_version")
    check(RFC2822_RE.match(obj["date_created"]), what + ": date %r" % obj["date_created"])
    eq((obj["price"], obj["error_code"], obj["error_message"], obj["date_sent"]),
       (None, None, None, None), what + " price, errors, date_sent")
    eq(obj["uri"], em.messages_path(obj["sid"]), what + " uri")


def contract_ok(em, what, requests=None):
    problems = []
    for r in requests if requests is not None else em.requests():
        problems += ptv_openapi.openapi_problems(
            MESSAGES_SPEC, r, auth_users={em.account_sid, em.api_key_sid})
    check(not problems, what + ": " + "; ".join(problems))


@test
def test_messages_create_from(em):
    res = send_sms(em, {"To": PHONE, "From": OWNED, "Body": "Your login code is 123456",
                        "ValidityPeriod": "300",
                        "StatusCallback": "https://example.com/cb"})
    eq(res[0], 201, "create: " + res[2].decode())
    eq(res[1]["content-type"], "application/json; charset=utf-8", "content type")
    m = res[3]
    assert_message(em, m, "create")
    eq(list(m), sorted(m), "keys in alphabetical order, as Twilio answers")
    eq((m["to"], m["from"], m["messaging_service_sid"], m["body"], m["status"]),
       (PHONE, OWNED, None, "Your login code is 123456", "queued"), "values")
    eq((m["num_segments"], m["num_media"]), ("1", "0"), "segments")
    box = em.outbox()
    eq(len(box), 1, "one outbox entry")
    eq({k: box[0][k] for k in ("to", "from", "messaging_service_sid", "body", "code",
                               "validity_period", "message_sid")},
       {"to": PHONE, "from": OWNED, "messaging_service_sid": None,
        "body": "Your login code is 123456", "code": "123456", "validity_period": 300,
        "message_sid": m["sid"]}, "outbox")
    eq(em.last_code(PHONE), "123456", "last_code reads the code of the body")
    r = em.requests()[-1]
    eq((r["method"], r["path"], r["auth_user"], r["status"]),
       ("POST", em.messages_path(), em.account_sid, 201), "request log")
    check(r["content_type"].startswith("application/x-www-form-urlencoded"), "ctype")
    eq(r["form"]["ValidityPeriod"], "300", "form logged")
    contract_ok(em, "create follows the contract")
    send_sms(em, {"To": PHONE2, "From": OWNED, "Body": "no digits here, 12345 only"})
    eq(em.outbox()[-1]["code"], None, "no 6-10 digit run: no code")
    send_sms(em, {"To": PHONE2, "From": OWNED, "Body": "code 12345678901 or 87654321"})
    eq(em.last_code(PHONE2), "87654321", "a run of 11 digits is no code")
    long_body = "x" * 161
    eq(send_sms(em, {"To": PHONE, "From": OWNED, "Body": long_body})[3]["num_segments"],
       "2", "161 GSM-7 characters are 2 segments")
    eq(send_sms(em, {"To": PHONE, "From": OWNED, "Body": "\u00e9" * 10 + "\u4e2d"})[3]
       ["num_segments"], "1", "UCS-2 body of 11")


@test
def test_messages_create_service(em):
    res = send_sms(em, {"To": PHONE, "MessagingServiceSid": em.messaging_service_sid,
                        "Body": "Your code: 4242424"},
                   user=em.api_key_sid, password=em.api_key_secret)
    eq(res[0], 201, "create with a service: " + res[2].decode())
    m = res[3]
    assert_message(em, m, "service create")
    eq((m["from"], m["messaging_service_sid"], m["status"], m["num_segments"]),
       (None, em.messaging_service_sid, "accepted", "0"), "accepted, no sender yet")
    box = em.outbox()[-1]
    eq((box["from"], box["messaging_service_sid"], box["code"], box["validity_period"]),
       (None, em.messaging_service_sid, "4242424", None), "outbox")
    eq(em.requests()[-1]["auth_user"], em.api_key_sid, "api key logged")
    contract_ok(em, "service create follows the contract")
    assert_error(send_sms(em, {"To": PHONE, "MessagingServiceSid": "MG" + "0" * 32,
                               "Body": "x"}), 400, 21701, "unknown service")
    res = send_sms(em, {"To": PHONE, "MessagingServiceSid": em.messaging_service_sid,
                        "Body": "later", "ScheduleType": "fixed",
                        "SendAt": "2030-01-01T00:00:00Z"})
    eq((res[0], res[3]["status"]), (201, "scheduled"), "scheduled")


@test
def test_messages_validation(em):
    svc = em.messaging_service_sid
    base = {"To": PHONE, "From": OWNED, "Body": "code 123456"}

    def bad(change, status, code, what, drop=()):
        form = dict(base, **change)
        for k in drop:
            form.pop(k)
        return assert_error(send_sms(em, form), status, code, what)

    bad({}, 400, 21603, "neither From nor service", drop=("From",))
    bad({"MessagingServiceSid": svc}, 400, 21603, "both From and service")
    bad({}, 400, 21604, "no To", drop=("To",))
    for to in ("5550104567", "+0123456", "+1555abc4567", "", "+1234567890123456"):
        if to:
            bad({"To": to}, 400, 21211, "To %r" % to)
    bad({"To": ""}, 400, 21604, "empty To")
    bad({"From": "+15550100002"}, 400, 21606, "From the account does not own")
    bad({"From": "15550100001"}, 400, 21212, "From not E.164")
    bad({}, 400, 21602, "no Body", drop=("Body",))
    bad({"Body": ""}, 400, 21602, "empty Body")
    bad({"Body": "y" * 1601}, 400, 21617, "Body over 1600")
    eq(send_sms(em, dict(base, Body="y" * 1600))[0], 201, "Body of 1600")
    for vp in ("0", "36001", "-5", "1.5", "abc", ""):
        bad({"ValidityPeriod": vp}, 400, 21623, "ValidityPeriod %r" % vp)
    for vp in ("1", "36000"):
        eq(send_sms(em, dict(base, ValidityPeriod=vp))[0], 201, "ValidityPeriod " + vp)
    bad({"Channel": "sms"}, 400, 20001, "a field the document does not list")
    bad({"StatusCallback": "not a url"}, 400, 21609, "StatusCallback")
    bad({"ForceDelivery": "maybe"}, 400, 20001, "boolean")
    bad({"RiskCheck": "off"}, 400, 20001, "enum")
    bad({"ContentSid": "HX123"}, 400, 20001, "pattern")
    st = em.call("POST", em.messages_path(), body=b"To=%2B15005550006&From=%2B15550100001"
                 b"&Body=a&To=%2B15005550007",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(st, 400, 20001, "repeated To")
    st = em.call("POST", em.messages_path(), body=json.dumps(base).encode(),
                 headers={"Content-Type": "application/json"})
    assert_error(st, 400, 20001, "JSON body")
    eq(len([m for m in em.outbox() if m.get("message_sid")]), 3, "refused send nothing")
    problems = ptv_openapi.openapi_problems(MESSAGES_SPEC, em.requests()[-1])
    check(any("content type" in p for p in problems), "contract helper sees JSON")


@test
def test_messages_auth_and_account(em):
    assert_error(send_sms(em, password="wrong"), 401, 20003, "bad token")
    assert_error(send_sms(em, user=em.api_key_sid, password="nope"), 401, 20003,
                 "bad secret")
    assert_error(send_sms(em, headers={"Authorization": ""}), 401, 20003, "no auth")
    other = "AC" + "1" * 32
    assert_error(send_sms(em, account_sid=other), 404, 20404, "another account (token)")
    assert_error(send_sms(em, account_sid=other, user=em.api_key_sid,
                          password=em.api_key_secret), 401, 20003,
                 "another account (API key)")
    assert_error(send_sms(em, account_sid="nope"), 404, 20404, "not an account SID")
    eq(em.outbox(), [], "nothing sent")
    reqs = em.requests()
    eq([r["status"] for r in reqs], [401, 401, 401, 404, 401, 404], "logged")
    eq(reqs[0]["auth_user"], em.account_sid, "auth user logged on failure")
    problems = ptv_openapi.openapi_problems(MESSAGES_SPEC, reqs[-1])
    check(any("AccountSid" in p for p in problems), "helper sees a bad AccountSid")


@test
def test_messages_list_and_fetch(em):
    sids = [send_sms(em, {"To": to, "From": OWNED, "Body": "code %d" % (111111 * i)})[3]
            ["sid"] for i, to in enumerate((PHONE, PHONE2, PHONE), 1)]
    st, _h, _d, page0 = em.call("GET", em.messages_path() + "?PageSize=1")
    eq(st, 200, "list")
    schema = MESSAGES_SPEC["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"][
        "get"]["responses"]["200"]["content"]["application/json"]["schema"]
    eq(set(page0), set(schema["properties"]), "list keys of the document")
    eq([m["sid"] for m in page0["messages"]], [sids[2]], "newest first")
    assert_message(em, page0["messages"][0], "listed")
    eq((page0["page"], page0["page_size"], page0["start"], page0["end"],
        page0["previous_page_uri"]), (0, 1, 0, 0, None), "paging")
    eq(page0["first_page_uri"], em.messages_path() + "?PageSize=1&Page=0", "first")
    eq(page0["next_page_uri"], em.messages_path() + "?PageSize=1&Page=1", "next")
    page2 = em.call("GET", page0["next_page_uri"].replace("Page=1", "Page=2"))[3]
    eq(([m["sid"] for m in page2["messages"]], page2["next_page_uri"],
        page2["previous_page_uri"]),
       ([sids[0]], None, em.messages_path() + "?PageSize=1&Page=1"), "last page")
    got = em.call("GET", em.messages_path() + "?To=%2B447700900123")[3]
    eq([m["sid"] for m in got["messages"]], [sids[1]], "filter To")
    assert_error(em.call("GET", em.messages_path() + "?PageSize=0"), 400, 20001,
                 "PageSize 0")
    st, _h, _d, m = em.call("GET", em.messages_path(sids[1]))
    eq((st, m["sid"], m["to"], m["body"]), (200, sids[1], PHONE2, "code 222222"), "fetch")
    assert_message(em, m, "fetched")
    assert_error(em.call("GET", em.messages_path("SM" + "0" * 32)), 404, 20404, "unknown")
    assert_error(em.call("GET", em.messages_path("nope")), 404, 20404, "bad sid")
    assert_error(em.call("PUT", em.messages_path()), 405, 20004, "PUT")
    contract_ok(em, "lists and fetches follow the contract",
                [r for r in em.requests() if r["status"] in (200, 201)])
    eq(em.call("DELETE", em.messages_path(sids[1]))[0], 204, "delete")
    assert_error(em.call("GET", em.messages_path(sids[1])), 404, 20404, "deleted")
    em.reset()
    eq(em.call("GET", em.messages_path())[3]["messages"], [], "reset clears messages")


@test
def test_messages_faults(em):
    for code, st in ((21211, 400), (21408, 400), (21610, 400), (21614, 400),
                     (21606, 400), (21659, 400), (20003, 401), (20429, 429),
                     (20500, 500), (20503, 503)):
        em.set_faults([{"kind": "twilio_error", "http_status": st, "code": code,
                        "match": "/Messages.json", "method": "POST", "count": 1}])
        obj = assert_error(send_sms(em), st, code, "fault %d" % code)
        check(obj["message"], "message for %d" % code)
    eq(em.outbox(), [], "faulted creates send nothing")
    # Only for one To; a GET of the list is not touched.
    em.set_faults([{"kind": "twilio_error", "http_status": 400, "code": 21610,
                    "match": "/Messages", "form_match": {"To": PHONE2}}])
    assert_error(send_sms(em, {"To": PHONE2, "From": OWNED, "Body": "1234567"}), 400,
                 21610, "STOP for one To")
    eq(send_sms(em)[0], 201, "another To goes through")
    eq(em.call("GET", em.messages_path())[0], 200, "list untouched")
    em.set_faults([{"kind": "rate_limit", "retry_after": 2, "match": "/Messages",
                    "count": 1},
                   {"kind": "status", "http_status": 500, "process": True,
                    "match": "/Messages", "count": 1},
                   {"kind": "close", "match": "/Messages", "count": 1},
                   {"kind": "malformed_json", "match": "/Messages", "count": 1},
                   {"kind": "truncated", "match": "/Messages", "count": 1}])
    res = send_sms(em)
    assert_error(res, 429, 20429, "throttled")
    eq(res[1].get("retry-after"), "2", "Retry-After")
    before = len(em.outbox())
    assert_error(send_sms(em), 500, 20500, "500 after sending")
    eq(len(em.outbox()), before + 1, "the 500 came after the send")
    try:
        send_sms(em)
        raise Failure("connection not dropped")
    except (http.client.HTTPException, ConnectionError):
        pass
    res = send_sms(em)
    eq((res[0], res[3]), (201, None), "malformed JSON with 201")
    try:
        send_sms(em)
        raise Failure("truncated body read whole")
    except (http.client.HTTPException, ConnectionError):
        pass
    em.set_faults([{"kind": "oversized", "match": "/Messages", "bytes": 4096}])
    res = send_sms(em)
    eq(res[0], 201, "oversized")
    check(len(res[2]) >= 4096 and res[3]["sid"].startswith("SM"), "oversized body")
    em.set_faults([], latency_ms=200)
    t0 = time.monotonic()
    eq(send_sms(em)[0], 201, "latency")
    check(time.monotonic() - t0 >= 0.2, "latency applied")


def main():
    tmp = tempfile.mkdtemp(prefix="verify-emulator-test-")
    em = Emulator(tmp, api_key_sid="SK" + os.urandom(16).hex(),
                  api_key_secret=os.urandom(16).hex())
    try:
        em.start()
        for fn in TESTS:
            em.reset()
            try:
                fn(em)
                h.check(fn.__name__, True)
            except Exception as e:  # noqa: BLE001
                h.check(fn.__name__, False, e)
                if not isinstance(e, Failure):
                    traceback.print_exc()
        exit_status = em.stop()
        h.check("clean shutdown (exit 0 on SIGTERM)", exit_status == 0,
                "exit status %r" % exit_status)
    finally:
        if em.proc is not None:
            em.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return h.summary()


if __name__ == "__main__":
    sys.exit(main())
