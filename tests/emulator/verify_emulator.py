#!/usr/bin/python3
"""Local emulator of the Twilio Verify v2 API, for tests.

Serves the Verify v2 endpoints used by pam_twilio_verify over HTTPS on
loopback (verifications, the Service, Programmable Rate Limits), plus a plain-HTTP control server (no auth) used by tests to read the
outbox of "sent" codes, inspect requests, inject faults and move the clock.

Standard library only. Run with /usr/bin/python3.

API (HTTPS, HTTP Basic auth: AccountSid:AuthToken or ApiKeySid:ApiKeySecret):
  POST /v2/Services/{ServiceSid}/Verifications        To, Channel[, Locale] -> 201
  POST /v2/Services/{ServiceSid}/VerificationCheck    Code + To|VerificationSid -> 200
  POST /v2/Services/{ServiceSid}/Verifications/{Sid}  Status=canceled|approved -> 200
  GET  /v2/Services/{ServiceSid}/Verifications/{Sid}  -> 200
  GET  /v2/Services/{ServiceSid}                      -> 200 (the Service
       resource: sid, account_sid, friendly_name, code_length, ...; sends
       nothing)
  POST|GET /v2/Services/{ServiceSid}/RateLimits        UniqueName[, Description]
  GET|POST|DELETE /v2/Services/{ServiceSid}/RateLimits/{RK...}   (update: Description)
  POST|GET /v2/Services/{ServiceSid}/RateLimits/{RK...}/Buckets  Max, Interval
  GET|POST|DELETE .../RateLimits/{RK...}/Buckets/{BL...}         (update: Max, Interval)
       create 201, fetch/update 200, delete 204 (no body), list 200 with
       Twilio's paging (PageSize 1-1000, default 50; Page; PageToken ignored)

Programmable Messaging (api.twilio.com 2010-04-01, same auth):
  POST /2010-04-01/Accounts/{AccountSid}/Messages.json   To, Body, From |
       MessagingServiceSid[, ValidityPeriod, StatusCallback, ...] -> 201
  GET  /2010-04-01/Accounts/{AccountSid}/Messages.json   [To, From, PageSize,
       Page] -> 200 (the 2010 list: newest first, *_page_uri, start, end)
  GET|DELETE /2010-04-01/Accounts/{AccountSid}/Messages/{SM...}.json -> 200|204

Control (plain HTTP on 127.0.0.1):
  GET  /outbox  /requests  /stats
  POST /reset  /faults  /clock  /listen

Behaviour decisions (where the public contract leaves room):
  * Expiry is measured from the creation of a verification (the first send);
    resends do not extend it.  An expired verification answers 404 20404.
  * Sends are counted per To over a sliding window equal to the expiry
    window.  Five sends are allowed; the sixth within the window is refused
    with 429 60203 and is not counted.
  * Check attempts: a verification accepts at most 5 checks.  Each wrong code
    answers 200 "pending" and counts.  When 5 checks have been counted, the
    next check (right or wrong code) answers 429 60202 and the verification
    becomes "max_attempts_reached"; from then on it is not found (404 20404),
    matching the "max checks reached" row of the 20404 error.
  * A verification that is approved (by check or by update), canceled,
    expired or max_attempts_reached is gone: checks, fetches and updates
    answer 404 20404.  A new create for the same To starts a new
    verification with a new code.
  * A create on a To with a pending verification is a resend: the same
    verification and the same code, sent again on the Channel of that
    create (sms, call, ...), which the verification, its
    send_code_attempts and the outbox record; it counts as a send.
  * Locale is optional and, as Twilio does, not refused for what it says
    (Twilio falls back to English); a well-formed tag (2-3 letters, then
    subtags of 1-8 letters or digits) is recorded on the verification
    (the locale of its latest send) and in the outbox, and the request log
    has every form field.  A Locale that is not of that form answers
    400 60200 (a decision of the emulator).
    To answer an unknown locale with 404, set a fault with
    "form_has": "Locale" (a fault that applies only to requests whose
    form has that field).
  * A fault with "method" applies only to requests of that method
    ("GET": the Service fetch and verification fetches, never a send).
  * GET of the Service answers the configured service only; another
    service SID is 404 20404, bad credentials 401 20003, as for every
    route.
  * Validation failures (400) do not count as sends or checks.
  * Programmable Rate Limits.  A create may carry RateLimits, a JSON object
    of rate limit unique names to string key values; anything else (not
    JSON, not an object, a value that is not a string, a name given twice)
    is 400 60200.  A name that is no rate limit of the service is refused
    too (400 60200, nothing counted): the document says the keys are the
    unique names of your rate limits, and a reported Twilio answer to a
    wrong name is an error.  Each bucket of each named limit counts the
    creates (resends included, from every client: the count is service
    state) per (rate limit, key value) in a sliding window of Interval
    seconds on the emulator clock.  When a bucket already holds Max
    creates, the create answers 429 {"code": 20429, "message": "Too Many
    Requests", ...} with "Twilio-Reached-Rate-Limit: <unique_name>" (the
    first full limit in the object's order; no Retry-After), sends nothing
    and counts nowhere (nor toward 60203).  Rate limits are checked before
    the 60203 count.  A limit without buckets limits nothing.  A bucket's
    new Max or Interval applies to the creates already counted.
  * Quotas (Twilio publishes the errors, not the numbers): 10 rate limits
    per service (400 60207), 5 buckets per rate limit (400 60210); a
    duplicate UniqueName is 400 60208, a second bucket with the same
    Interval 400 60211, a UniqueName not of 1-64 letters, digits, "_", "."
    or "-" 400 60209.  Max and Interval must be whole numbers >= 1 (400
    60200).  Unknown or malformed RK/BL SIDs, and a bucket under another
    rate limit, are 404 20404.  Deleting a rate limit deletes its buckets
    and counts.  POST /reset clears rate limits with everything else.
  * Messages.  The account owns the numbers of --owned-number (default
    +15550100001) and the Messaging Services of --messaging-service-sid.
    Exactly one of From and MessagingServiceSid (neither: 400 21603, both:
    400 21603, a decision of the emulator: the module sends one).  To
    missing 400 21604, not E.164 400 21211; From not E.164 400 21212, not
    owned 400 21606; MessagingServiceSid unknown 400 21701; Body missing
    or empty 400 21602, over 1600 characters 400 21617; ValidityPeriod not
    a whole number in 1..36000 400 21623 (the emulator's choice of code);
    a field the document does not list, a repeated single field or a
    value not of its type/enum/pattern 400 21609 for StatusCallback, 400
    20001 otherwise.  A create answers 201, status "queued" with From,
    "accepted" with MessagingServiceSid (from null, num_segments "0"),
    "scheduled" with ScheduleType=fixed; statuses never move on.  The
    AccountSid of the path must be the emulator's account: another one
    is 404 20404 with the account's token, 401 20003 with an API key.
    Dates are RFC 2822 ("Thu, 24 Aug 2023 05:01:45 +0000").  Each create
    goes to the outbox (to, from, messaging_service_sid, body,
    validity_period, message_sid, code: the first run of 6-10 digits of
    the body or null) and, with --print-sms, to stdout.  Other errors
    (21408, 21610, 21614, 21659, 20429, 5xx, ...) come from faults, e.g.
    {"kind": "twilio_error", "http_status": 400, "code": 21610,
     "match": "/Messages", "form_match": {"To": "+15550104567"}}.
  * A fault with "form_match" (an object of field: value) applies only
    to requests whose form has those values.
  * Times in resources are ISO 8601 UTC on the emulator clock (real time plus
    the offset set through POST /clock).  Outbox "time" is the emulator clock
    as an epoch float; request-log "time" is the real wall clock.
"""

import argparse
import base64
import binascii
import hmac
import http.server
import json
import os
import re
import secrets
import signal
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
import urllib.parse

SID_ACCOUNT_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")
SID_KEY_RE = re.compile(r"^SK[0-9a-fA-F]{32}$")
SID_SERVICE_RE = re.compile(r"^VA[0-9a-fA-F]{32}$")
SID_VERIFICATION_RE = re.compile(r"^VE[0-9a-fA-F]{32}$")
SID_RATE_LIMIT_RE = re.compile(r"^RK[0-9a-fA-F]{32}$")
SID_BUCKET_RE = re.compile(r"^BL[0-9a-fA-F]{32}$")
SID_MESSAGE_RE = re.compile(r"^(SM|MM)[0-9a-fA-F]{32}$")
SID_MSG_SERVICE_RE = re.compile(r"^MG[0-9a-fA-F]{32}$")
UNIQUE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")
LOCALE_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

CHANNELS = ("sms", "call", "whatsapp", "email", "sna", "auto")
MAX_SENDS = 5
MAX_CHECKS = 5
MAX_BODY = 1 << 20
MAX_RATE_LIMITS = 10      # per service (60207); Twilio documents no number
MAX_BUCKETS = 5           # per rate limit (60210); Twilio documents no number

PUBLIC_BASE = "https://verify.twilio.com"
API_2010 = "/2010-04-01"
MAX_MESSAGE_BODY = 1600
DEFAULT_OWNED_NUMBERS = ("+15550100001",)

ROUTE_CREATE = re.compile(r"^/v2/Services/([^/]+)/Verifications/?$")
ROUTE_CHECK = re.compile(r"^/v2/Services/([^/]+)/VerificationCheck/?$")
ROUTE_ONE = re.compile(r"^/v2/Services/([^/]+)/Verifications/([^/]+)/?$")
ROUTE_SERVICE = re.compile(r"^/v2/Services/([^/]+)/?$")
ROUTE_RL_LIST = re.compile(r"^/v2/Services/([^/]+)/RateLimits/?$")
ROUTE_RL_ONE = re.compile(r"^/v2/Services/([^/]+)/RateLimits/([^/]+)/?$")
ROUTE_BUCKET_LIST = re.compile(r"^/v2/Services/([^/]+)/RateLimits/([^/]+)/Buckets/?$")
ROUTE_MSG_LIST = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
ROUTE_MSG_ONE = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages/([^/]+)\.json$")
ROUTE_BUCKET_ONE = re.compile(
    r"^/v2/Services/([^/]+)/RateLimits/([^/]+)/Buckets/([^/]+)/?$")

DEFAULT_MESSAGES = {
    20001: "Invalid parameter",
    20003: "Authenticate",
    20004: "Method not allowed",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    20502: "Bad Gateway",
    20503: "Service Unavailable",
    20504: "Gateway Timeout",
    21211: "Invalid 'To' Phone Number",
    21212: "Invalid 'From' Phone Number",
    21408: "Permission to send an SMS has not been enabled for the region "
           "indicated by the 'To' number",
    21602: "Message body is required.",
    21603: "A 'From' or 'MessagingServiceSid' parameter is required to send a message",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-capable "
           "Twilio phone number for this destination.",
    21609: "Invalid StatusCallback url",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21623: "Invalid ValidityPeriod",
    21659: "The 'From' number is not a Twilio phone number or a verified "
           "outgoing caller id for this account",
    21701: "The Messaging Service Sid is invalid",
    60200: "Invalid parameter",
    60202: "Max check attempts reached",
    60203: "Max send attempts reached",
    60205: "SMS is not supported by landline phone number",
    60207: "Max rate limits per service reached",
    60208: "Rate limit with that UniqueName already exists",
    60209: "UniqueName format is invalid",
    60210: "Max Buckets per Rate limit reached",
    60211: "Bucket with the given Interval already exists",
    60410: "Verification delivery attempt blocked",
    60605: "Verification delivery attempt blocked by geo permissions",
}

DEFAULT_CODE_FOR_STATUS = {
    400: 60200,
    401: 20003,
    403: 20403,
    404: 20404,
    405: 20004,
    429: 20429,
    500: 20500,
    502: 20502,
    503: 20503,
    504: 20504,
}

FAULT_KINDS = (
    "status", "twilio_error", "rate_limit", "hang", "close", "malformed_json",
    "truncated", "oversized", "wrong_content_type", "redirect", "json",
)


def hexsid(prefix):
    return prefix + secrets.token_hex(16)


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def twilio_error(http_status, code, message=None, headers=None):
    if message is None:
        message = DEFAULT_MESSAGES.get(code, http.server.BaseHTTPRequestHandler
                                       .responses.get(http_status, ("Error",))[0])
    body = {
        "code": int(code),
        "message": message,
        "more_info": "https://www.twilio.com/docs/errors/%d" % int(code),
        "status": int(http_status),
    }
    return Response(http_status, body, headers)


class Response:
    """An API response: status, JSON-able body, extra headers."""

    def __init__(self, status, body, headers=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})

    def encode(self):
        if self.body is None:
            return b""
        return json.dumps(self.body).encode("utf-8")


class BadRequest(Exception):
    def __init__(self, message, code=60200):
        super().__init__(message)
        self.message = message
        self.code = code


class RateLimit:
    def __init__(self, sid, unique_name, description, now):
        self.sid = sid
        self.unique_name = unique_name
        self.description = description
        self.created = now
        self.updated = now
        self.buckets = {}         # sid -> Bucket, in creation order
        self.hits = {}            # key value -> [emulator times of counted creates]


class Bucket:
    def __init__(self, sid, max_, interval, now):
        self.sid = sid
        self.max = max_
        self.interval = interval
        self.created = now
        self.updated = now


class Verification:
    def __init__(self, sid, to, channel, code, now):
        self.sid = sid
        self.to = to
        self.channel = channel
        self.locale = None
        self.code = code
        self.status = "pending"
        self.created = now
        self.updated = now
        self.attempts = []
        self.checks = 0


class State:
    """All mutable emulator state, guarded by one lock."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.lock = threading.RLock()
        self.clock_offset = 0.0
        self.created = time.time()
        self.reset()

    def reset(self):
        with self.lock:
            self.verifications = {}   # sid -> Verification
            self.active = {}          # to -> sid of the pending verification
            self.sends = {}           # to -> [emulator times of sends]
            self.rate_limits = {}     # sid -> RateLimit, in creation order
            self.messages = {}        # sid -> message resource, in creation order
            self.outbox = []
            self.requests = []
            self.faults = []
            self.latency_ms = 0
            self.connections = 0
            self.tls_handshakes = 0
            self.request_count = 0
            self.clock_offset = 0.0

    def now(self):
        return time.time() + self.clock_offset

    # -- faults -------------------------------------------------------------

    def take_fault(self, path, form=None, method=None):
        """Returns the first fault matching path and, with "form_has", a
        request whose form has that field, with "method" a request of that
        method (consuming one use), or None."""
        with self.lock:
            for f in self.faults:
                match = f.get("match")
                if match and match not in path:
                    continue
                if f.get("method") and method and f["method"] != method:
                    continue
                if f.get("form_has") and f["form_has"] not in (form or {}):
                    continue
                fm = f.get("form_match")
                if fm and any((form or {}).get(k) != v for k, v in fm.items()):
                    continue
                count = f.get("count")
                if count is not None:
                    if count <= 0:
                        continue
                    f["count"] = count - 1
                return dict(f)
        return None

    # -- verification helpers ----------------------------------------------

    def _expire(self, v, now):
        if v.status == "pending" and now >= v.created + self.cfg.expiry_seconds:
            v.status = "expired"
            v.updated = now
        if v.status != "pending" and self.active.get(v.to) == v.sid:
            del self.active[v.to]

    def _live(self, sid, now):
        v = self.verifications.get(sid)
        if v is None:
            return None
        self._expire(v, now)
        return v if v.status == "pending" else None

    def _fields(self, v, status, lookup, attempts, tail):
        """The fields a verification and a check share, in Twilio's order,
        with the ones of each kind in their places."""
        cfg = self.cfg
        return dict({
            "sid": v.sid,
            "service_sid": cfg.service_sid,
            "account_sid": cfg.account_sid,
            "to": v.to,
            "channel": v.channel,
            "status": status,
            "valid": status == "approved",
        }, **lookup, amount=None, payee=None, **attempts,
            date_created=iso(v.created), date_updated=iso(v.updated), **tail)

    def resource(self, v, status=None):
        url = "%s/v2/Services/%s/Verifications/%s" % (
            PUBLIC_BASE, self.cfg.service_sid, v.sid)
        return self._fields(v, status or v.status, {"lookup": {}},
                            {"send_code_attempts": [dict(a) for a in v.attempts]},
                            {"sna": None, "url": url})

    def service_resource(self):
        """The Service resource, with the fields of Twilio's OpenAPI
        document (verify.v2.service) in its order."""
        cfg = self.cfg
        url = "%s/v2/Services/%s" % (PUBLIC_BASE, cfg.service_sid)
        return {
            "sid": cfg.service_sid, "account_sid": cfg.account_sid,
            "friendly_name": cfg.friendly_name, "code_length": cfg.code_length,
            "lookup_enabled": False, "psd2_enabled": False,
            "skip_sms_to_landlines": False, "dtmf_input_required": False,
            "tts_name": None, "do_not_share_warning_enabled": False,
            "custom_code_enabled": False,
            "push": {"include_date": False, "apn_credential_sid": None,
                     "fcm_credential_sid": None},
            "totp": {"issuer": None, "time_step": 30, "code_length": 6,
                     "skew": 1},
            "default_template_sid": None,
            "whatsapp": {"msg_service_sid": None, "from": None},
            "passkeys": None,
            "verify_event_subscription_enabled": False,
            "date_created": iso(self.created), "date_updated": iso(self.created),
            "url": url,
            "links": {k: url + "/" + v for k, v in (
                ("verification_checks", "VerificationCheck"),
                ("verifications", "Verifications"),
                ("access_tokens", "AccessTokens"), ("entities", "Entities"),
                ("messaging_configurations", "MessagingConfigurations"),
                ("rate_limits", "RateLimits"), ("webhooks", "Webhooks"))},
        }

    def check_resource(self, v):
        return self._fields(v, v.status, {}, {}, {"sna_attempts_error_codes": []})

    # -- operations --------------------------------------------------------

    def create(self, form):
        to = form.get("To")
        channel = form.get("Channel")
        if to is None or to == "":
            raise BadRequest("Missing required parameter To in the post body")
        if channel is None or channel == "":
            raise BadRequest("Missing required parameter Channel in the post body")
        if channel not in CHANNELS:
            raise BadRequest("Invalid parameter `Channel`: %s" % channel)
        if channel == "email":
            if not EMAIL_RE.match(to):
                raise BadRequest("Invalid parameter `To`: %s" % to)
        elif not E164_RE.match(to):
            raise BadRequest("Invalid parameter `To`: %s" % to)
        locale = form.get("Locale")
        if locale is not None and not LOCALE_RE.match(locale):
            raise BadRequest("Invalid parameter `Locale`: %s" % locale)
        keys = parse_rate_limits(form.get("RateLimits"))
        if channel == "auto":
            channel = "sms"
        with self.lock:
            now = self.now()
            limits = []
            for name, key in keys:
                rl = self._rate_limit_by_name(name)
                if rl is None:
                    raise BadRequest("Invalid parameter `RateLimits`: no rate limit "
                                     "with UniqueName %s" % name)
                limits.append((rl, key))
            for rl, key in limits:
                if self._bucket_full(rl, key, now):
                    return twilio_error(429, 20429, "Too Many Requests",
                                        {"Twilio-Reached-Rate-Limit": rl.unique_name})
            window = self.cfg.expiry_seconds
            sends = [t for t in self.sends.get(to, []) if t > now - window]
            if len(sends) >= MAX_SENDS:
                self.sends[to] = sends
                return twilio_error(429, 60203, "Max send attempts reached")
            sends.append(now)
            self.sends[to] = sends
            for rl, key in limits:
                rl.hits.setdefault(key, []).append(now)
            v = None
            sid = self.active.get(to)
            if sid is not None:
                v = self._live(sid, now)
            if v is None:
                code = "".join(secrets.choice("0123456789")
                               for _ in range(self.cfg.code_length))
                v = Verification(hexsid("VE"), to, channel, code, now)
                self.verifications[v.sid] = v
                self.active[to] = v.sid
            v.channel = channel
            v.locale = locale
            v.updated = now
            v.attempts.append({
                "attempt_sid": hexsid("VL"),
                "channel": channel.upper() if channel in ("sms", "call", "email") else channel,
                "time": iso(now),
            })
            self.outbox.append({
                "to": to,
                "body": "Your verification code is: %s" % v.code,
                "code": v.code,
                "verification_sid": v.sid,
                "channel": channel,
                "locale": locale,
                "time": now,
            })
            if getattr(self.cfg, "print_sms", False):
                # Shown before the response goes out, so that a person
                # running the demo sees the "SMS" before the prompt.
                sys.stdout.write("\n    [%s to %s] Your verification code is: %s\n\n"
                                 % (channel.upper(), to, v.code))
                sys.stdout.flush()
            return Response(201, self.resource(v))

    def check(self, form):
        code = form.get("Code")
        to = form.get("To")
        vsid = form.get("VerificationSid")
        if code is None or code == "":
            raise BadRequest("Missing required parameter Code in the post body")
        if not 4 <= len(code) <= 10:
            raise BadRequest("Invalid parameter `Code`: must be 4 to 10 characters")
        if (to is None) == (vsid is None):
            raise BadRequest("Either a `To` or `VerificationSid` must be specified, but not both")
        if to is not None and not (E164_RE.match(to) or EMAIL_RE.match(to)):
            raise BadRequest("Invalid parameter `To`: %s" % to)
        if vsid is not None and not SID_VERIFICATION_RE.match(vsid):
            raise BadRequest("Invalid parameter `VerificationSid`: %s" % vsid)
        with self.lock:
            now = self.now()
            if vsid is None:
                vsid = self.active.get(to)
            v = self._live(vsid, now) if vsid else None
            if v is None:
                return twilio_error(404, 20404)
            if v.checks >= MAX_CHECKS:
                v.status = "max_attempts_reached"
                v.updated = now
                self._expire(v, now)
                return twilio_error(429, 60202, "Max check attempts reached")
            v.checks += 1
            if hmac.compare_digest(code.encode("utf-8"), v.code.encode("utf-8")):
                v.status = "approved"
                v.updated = now
                body = self.check_resource(v)
                self._expire(v, now)
                return Response(200, body)
            v.updated = now
            return Response(200, self.check_resource(v))

    def update(self, sid, form):
        status = form.get("Status")
        if status is None or status == "":
            raise BadRequest("Missing required parameter Status in the post body")
        if status not in ("canceled", "approved"):
            raise BadRequest("Invalid parameter `Status`: %s" % status)
        with self.lock:
            now = self.now()
            v = self._live(sid, now)
            if v is None:
                return twilio_error(404, 20404)
            v.status = status
            v.updated = now
            body = self.resource(v)
            self._expire(v, now)
            return Response(200, body)

    def fetch(self, sid):
        with self.lock:
            v = self._live(sid, self.now())
            if v is None:
                return twilio_error(404, 20404)
            return Response(200, self.resource(v))

    # -- Programmable Rate Limits ------------------------------------------------

    def _rate_limit_by_name(self, name):
        for rl in self.rate_limits.values():
            if rl.unique_name == name:
                return rl
        return None

    def _bucket_full(self, rl, key, now):
        """True when one of rl's buckets already counts Max creates for key
        within its Interval.  Drops the times no bucket can count any more."""
        times = rl.hits.get(key, [])
        if not rl.buckets:
            rl.hits.pop(key, None)
            return False
        longest = max(b.interval for b in rl.buckets.values())
        times = [t for t in times if t > now - longest]
        rl.hits[key] = times
        for b in rl.buckets.values():
            if sum(1 for t in times if t > now - b.interval) >= b.max:
                return True
        return False

    def rate_limit_url(self, rl):
        return "%s/v2/Services/%s/RateLimits/%s" % (PUBLIC_BASE, self.cfg.service_sid,
                                                   rl.sid)

    def rate_limit_resource(self, rl):
        """verify.v2.service.rate_limit, in the document's order."""
        url = self.rate_limit_url(rl)
        return {
            "sid": rl.sid, "service_sid": self.cfg.service_sid,
            "account_sid": self.cfg.account_sid, "unique_name": rl.unique_name,
            "description": rl.description, "date_created": iso(rl.created),
            "date_updated": iso(rl.updated), "url": url,
            "links": {"buckets": url + "/Buckets"},
        }

    def bucket_resource(self, rl, b):
        """verify.v2.service.rate_limit.bucket, in the document's order."""
        return {
            "sid": b.sid, "rate_limit_sid": rl.sid,
            "service_sid": self.cfg.service_sid, "account_sid": self.cfg.account_sid,
            "max": b.max, "interval": b.interval, "date_created": iso(b.created),
            "date_updated": iso(b.updated),
            "url": "%s/Buckets/%s" % (self.rate_limit_url(rl), b.sid),
        }

    def _rate_limit(self, sid):
        rl = self.rate_limits.get(sid) if SID_RATE_LIMIT_RE.match(sid) else None
        if rl is None:
            raise NotFound()
        return rl

    def _bucket(self, rl, sid):
        b = rl.buckets.get(sid) if SID_BUCKET_RE.match(sid) else None
        if b is None:
            raise NotFound()
        return b

    def create_rate_limit(self, form):
        name = form.get("UniqueName")
        if name is None or name == "":
            raise BadRequest("Missing required parameter UniqueName in the post body")
        if not UNIQUE_NAME_RE.match(name):
            raise BadRequest("UniqueName format is invalid", 60209)
        with self.lock:
            if self._rate_limit_by_name(name) is not None:
                raise BadRequest("Rate limit with that UniqueName already exists", 60208)
            if len(self.rate_limits) >= MAX_RATE_LIMITS:
                raise BadRequest("Max rate limits per service reached", 60207)
            rl = RateLimit(hexsid("RK"), name, form.get("Description"), self.now())
            self.rate_limits[rl.sid] = rl
            return Response(201, self.rate_limit_resource(rl))

    def update_rate_limit(self, sid, form):
        with self.lock:
            rl = self._rate_limit(sid)
            if "Description" in form:
                rl.description = form["Description"]
            rl.updated = self.now()
            return Response(200, self.rate_limit_resource(rl))

    def fetch_rate_limit(self, sid):
        with self.lock:
            return Response(200, self.rate_limit_resource(self._rate_limit(sid)))

    def delete_rate_limit(self, sid):
        with self.lock:
            del self.rate_limits[self._rate_limit(sid).sid]
            return Response(204, None)

    def list_rate_limits(self, query):
        with self.lock:
            items = [self.rate_limit_resource(rl) for rl in self.rate_limits.values()]
        return page(items, "rate_limits", "/v2/Services/%s/RateLimits"
                    % self.cfg.service_sid, query)

    def _bucket_form(self, form, required):
        values = {}
        for field in ("Max", "Interval"):
            raw = form.get(field)
            if raw is None or raw == "":
                if required:
                    raise BadRequest("Missing required parameter %s in the post body"
                                     % field)
                continue
            if not re.match(r"^[0-9]{1,9}$", raw) or int(raw) < 1:
                raise BadRequest("Invalid parameter `%s`: %s" % (field, raw))
            values[field] = int(raw)
        return values

    def _same_interval(self, rl, interval, other_than=None):
        for b in rl.buckets.values():
            if b.interval == interval and b.sid != other_than:
                raise BadRequest("Bucket with the given Interval already exists", 60211)

    def create_bucket(self, rl_sid, form):
        with self.lock:
            rl = self._rate_limit(rl_sid)
            values = self._bucket_form(form, True)
            self._same_interval(rl, values["Interval"])
            if len(rl.buckets) >= MAX_BUCKETS:
                raise BadRequest("Max Buckets per Rate limit reached", 60210)
            b = Bucket(hexsid("BL"), values["Max"], values["Interval"], self.now())
            rl.buckets[b.sid] = b
            return Response(201, self.bucket_resource(rl, b))

    def update_bucket(self, rl_sid, sid, form):
        with self.lock:
            rl = self._rate_limit(rl_sid)
            b = self._bucket(rl, sid)
            values = self._bucket_form(form, False)
            if "Interval" in values:
                self._same_interval(rl, values["Interval"], b.sid)
            b.max = values.get("Max", b.max)
            b.interval = values.get("Interval", b.interval)
            b.updated = self.now()
            return Response(200, self.bucket_resource(rl, b))

    def fetch_bucket(self, rl_sid, sid):
        with self.lock:
            rl = self._rate_limit(rl_sid)
            return Response(200, self.bucket_resource(rl, self._bucket(rl, sid)))

    def delete_bucket(self, rl_sid, sid):
        with self.lock:
            rl = self._rate_limit(rl_sid)
            del rl.buckets[self._bucket(rl, sid).sid]
            return Response(204, None)

    def list_buckets(self, rl_sid, query):
        with self.lock:
            rl = self._rate_limit(rl_sid)
            items = [self.bucket_resource(rl, b) for b in rl.buckets.values()]
        return page(items, "buckets", "/v2/Services/%s/RateLimits/%s/Buckets"
                    % (self.cfg.service_sid, rl.sid), query)

    # -- Programmable Messaging (2010-04-01) ----------------------------------

    def message_path(self, sid=None):
        base = "%s/Accounts/%s/Messages" % (API_2010, self.cfg.account_sid)
        return base + ("/%s.json" % sid if sid else ".json")

    def message_resource(self, m):
        """api.v2010.account.message, keys in alphabetical order as Twilio
        answers (and the document's examples show)."""
        return dict(sorted(m.items()))

    def create_message(self, form):
        cfg = self.cfg
        for name, vals in form.items():
            kind = MESSAGE_FIELDS.get(name)
            if kind is None:
                raise BadRequest("Unknown parameter `%s`" % name, 20001)
            if kind != "array" and len(vals) != 1:
                raise BadRequest("Invalid parameter `%s`: repeated" % name, 20001)
            for v in vals:
                check_field(name, kind, v)
        one = {k: v[0] for k, v in form.items() if MESSAGE_FIELDS[k] != "array"}
        to = one.get("To")
        if not to:
            raise BadRequest(DEFAULT_MESSAGES[21604], 21604)
        if not E164_RE.match(to):
            raise BadRequest("The 'To' number %s is not a valid phone number." % to, 21211)
        sender = one.get("From")
        service = one.get("MessagingServiceSid")
        if not sender and not service:
            raise BadRequest(DEFAULT_MESSAGES[21603], 21603)
        if sender and service:
            raise BadRequest("Pass either 'From' or 'MessagingServiceSid', not both",
                             21603)
        if sender is not None:
            if not E164_RE.match(sender):
                raise BadRequest("The 'From' number %s is not a valid phone number, "
                                 "shortcode, or alphanumeric sender ID." % sender, 21212)
            if sender not in getattr(cfg, "owned_numbers", DEFAULT_OWNED_NUMBERS):
                raise BadRequest(DEFAULT_MESSAGES[21606], 21606)
        if service is not None and service not in getattr(
                cfg, "messaging_service_sids", ()):
            raise BadRequest("The Messaging Service Sid %s is invalid." % service, 21701)
        body = one.get("Body")
        if not body:
            raise BadRequest(DEFAULT_MESSAGES[21602], 21602)
        if len(body) > MAX_MESSAGE_BODY:
            raise BadRequest(DEFAULT_MESSAGES[21617], 21617)
        validity = one.get("ValidityPeriod")
        if validity is not None:
            if not re.match(r"^[0-9]{1,6}$", validity) or not 1 <= int(validity) <= 36000:
                raise BadRequest("ValidityPeriod must be a whole number of seconds "
                                 "from 1 to 36000: %s" % validity, 21623)
            validity = int(validity)
        status = "queued" if sender else "accepted"
        if one.get("ScheduleType") == "fixed":
            if not service or not one.get("SendAt"):
                raise BadRequest("Scheduling needs MessagingServiceSid and SendAt",
                                 20001)
            status = "scheduled"
        with self.lock:
            now = self.now()
            sid = hexsid("MM" if form.get("MediaUrl") else "SM")
            m = {
                "account_sid": cfg.account_sid,
                "api_version": "2010-04-01",
                "body": body,
                "date_created": rfc2822(now),
                "date_sent": None,
                "date_updated": rfc2822(now),
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": sender,
                "messaging_service_sid": service,
                "num_media": str(len(form.get("MediaUrl", []))),
                "num_segments": str(segments(body)) if sender else "0",
                "price": None,
                "price_unit": "USD",
                "sid": sid,
                "status": status,
                "subresource_uris": {
                    "media": "%s/Accounts/%s/Messages/%s/Media.json"
                             % (API_2010, cfg.account_sid, sid)},
                "to": to,
                "uri": self.message_path(sid),
            }
            self.messages[sid] = m
            found = re.search(r"(?<![0-9])[0-9]{6,10}(?![0-9])", body)
            self.outbox.append({
                "to": to,
                "body": body,
                "code": found.group(0) if found else None,
                "from": sender,
                "messaging_service_sid": service,
                "validity_period": validity,
                "message_sid": sid,
                "channel": "sms",
                "api": "messages",
                "time": now,
            })
            if getattr(cfg, "print_sms", False):
                sys.stdout.write("\n    [SMS from %s to %s] %s\n\n"
                                 % (sender or service, to, body))
                sys.stdout.flush()
            return Response(201, self.message_resource(m))

    def fetch_message(self, sid):
        with self.lock:
            m = self.messages.get(sid)
            if m is None:
                return twilio_error(404, 20404, "The requested resource %s was not found"
                                    % self.message_path(sid))
            return Response(200, self.message_resource(m))

    def delete_message(self, sid):
        with self.lock:
            if self.messages.pop(sid, None) is None:
                return twilio_error(404, 20404, "The requested resource %s was not found"
                                    % self.message_path(sid))
            return Response(204, None)

    def list_messages(self, query):
        """The 2010 list: newest first, filtered by To and From; PageSize
        1-1000 (default 50), Page from 0; PageToken and DateSent accepted
        and ignored (nothing is ever sent)."""
        q = urllib.parse.parse_qs(query or "", keep_blank_values=True)
        size, number = 50, 0
        for name, lo, hi in (("PageSize", 1, 1000), ("Page", 0, 1 << 30)):
            vals = q.get(name)
            if vals:
                raw = vals[-1]
                if not re.match(r"^[0-9]{1,10}$", raw) or not lo <= int(raw) <= hi:
                    raise BadRequest("Invalid parameter `%s`: %s" % (name, raw), 20001)
                if name == "PageSize":
                    size = int(raw)
                else:
                    number = int(raw)
        filters = [(k, q[k][-1]) for k in ("To", "From") if q.get(k)]
        with self.lock:
            items = [self.message_resource(m) for m in reversed(list(self.messages.values()))
                     if all(m[k.lower()] == v for k, v in filters)]
        base = self.message_path()

        def uri(n):
            extra = "".join("%s=%s&" % (k, urllib.parse.quote(v, safe=""))
                            for k, v in filters)
            return "%s?%sPageSize=%d&Page=%d" % (base, extra, size, n)

        start = size * number
        chunk = items[start:start + size]
        more = len(items) > start + size
        return Response(200, {
            "end": start + max(len(chunk), 1) - 1,
            "first_page_uri": uri(0),
            "messages": chunk,
            "next_page_uri": uri(number + 1) if more else None,
            "page": number,
            "page_size": size,
            "previous_page_uri": uri(number - 1) if number > 0 else None,
            "start": start,
            "uri": uri(number),
        })


class NotFound(Exception):
    pass


class _Pairs(list):
    """A JSON object's (name, value) pairs, in order."""


def parse_rate_limits(raw):
    """The create's RateLimits: a JSON object of unique names to string key
    values.  Returns [(unique_name, key)] in the object's order."""
    if raw is None:
        return []
    bad = "Invalid parameter `RateLimits`: %s" % raw
    try:
        obj = json.loads(raw, object_pairs_hook=_Pairs)
    except ValueError:
        raise BadRequest(bad)
    if not isinstance(obj, _Pairs) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in obj):
        raise BadRequest(bad)
    if len(set(k for k, _v in obj)) != len(obj):
        raise BadRequest(bad)
    return obj


# The create's fields (Twilio's document, CreateMessage), and their kinds.
MESSAGE_FIELDS = {
    "To": "str", "From": "str", "MessagingServiceSid": "str", "Body": "str",
    "StatusCallback": "uri", "ApplicationSid": re.compile(r"^AP[0-9a-fA-F]{32}$"),
    "MaxPrice": "number", "ProvideFeedback": "bool", "Attempt": "int",
    "ValidityPeriod": "str", "ForceDelivery": "bool",
    "ContentRetention": ("retain", "discard"),
    "AddressRetention": ("retain", "obfuscate"), "SmartEncoded": "bool",
    "PersistentAction": "array", "TrafficType": ("free",), "ShortenUrls": "bool",
    "ScheduleType": ("fixed",), "SendAt": "date-time", "SendAsMms": "bool",
    "ContentVariables": "str", "RiskCheck": ("enable", "disable"),
    "FallbackFrom": "str", "MediaUrl": "array",
    "ContentSid": re.compile(r"^HX[0-9a-fA-F]{32}$"),
}


def check_field(name, kind, value):
    """Refuses a value that is not of the field's type (400 20001; a bad
    StatusCallback 21609)."""
    ok = True
    if kind == "uri":
        u = urllib.parse.urlsplit(value)
        if u.scheme not in ("http", "https") or not u.netloc:
            raise BadRequest("Invalid StatusCallback url: %s" % value, 21609)
    elif kind == "bool":
        ok = value.lower() in ("true", "false")
    elif kind == "int":
        ok = re.match(r"^-?[0-9]{1,10}$", value) is not None
    elif kind == "number":
        ok = re.match(r"^-?[0-9]+(\.[0-9]+)?$", value) is not None
    elif kind == "date-time":
        ok = re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)$",
                      value) is not None
    elif isinstance(kind, tuple):
        ok = value in kind
    elif hasattr(kind, "match"):
        ok = kind.match(value) is not None
    if not ok:
        raise BadRequest("Invalid parameter `%s`: %s" % (name, value), 20001)


GSM7 = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
           "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXT = set("^{}\\[~]|€\f")


def segments(body):
    """SMS segments: GSM-7 160 (153 when concatenated, extension characters
    count twice), else UCS-2 70 (67)."""
    if all(c in GSM7 or c in GSM7_EXT for c in body):
        n = sum(2 if c in GSM7_EXT else 1 for c in body)
        return 1 if n <= 160 else -(-n // 153)
    n = sum(2 if ord(c) > 0xFFFF else 1 for c in body)
    return 1 if n <= 70 else -(-n // 67)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
           "Nov", "Dec")


def rfc2822(ts):
    t = time.gmtime(ts)
    return "%s, %02d %s %04d %02d:%02d:%02d +0000" % (
        _DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year,
        t.tm_hour, t.tm_min, t.tm_sec)


def parse_form_multi(content_type, body):
    """Like parse_form, but every field keeps its list of values."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise BadRequest("Content-Type must be application/x-www-form-urlencoded",
                         20001)
    try:
        return urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True,
                                     errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("Malformed request body", 20001)


def page(items, key, path, query):
    """One page of a Twilio list: PageSize (1-1000, default 50), Page (from 0);
    PageToken is accepted and ignored."""
    q = urllib.parse.parse_qs(query or "", keep_blank_values=True)
    size, number = 50, 0
    for name, lo, hi in (("PageSize", 1, 1000), ("Page", 0, 1 << 30)):
        vals = q.get(name)
        if vals:
            raw = vals[-1]
            if not re.match(r"^[0-9]{1,10}$", raw) or not lo <= int(raw) <= hi:
                raise BadRequest("Invalid parameter `%s`: %s" % (name, raw))
            if name == "PageSize":
                size = int(raw)
            else:
                number = int(raw)

    def url(n):
        return "%s%s?PageSize=%d&Page=%d" % (PUBLIC_BASE, path, size, n)

    start = size * number
    more = len(items) > start + size
    return Response(200, {
        key: items[start:start + size],
        "meta": {
            "page": number, "page_size": size, "first_page_url": url(0),
            "previous_page_url": url(number - 1) if number > 0 else None,
            "next_page_url": url(number + 1) if more else None,
            "key": key, "url": url(number),
        },
    })


class Config:
    pass


def parse_form(content_type, body):
    """Returns a dict of single values, or raises BadRequest."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise BadRequest("Content-Type must be application/x-www-form-urlencoded")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("Request body is not valid UTF-8")
    try:
        parsed = urllib.parse.parse_qs(text, keep_blank_values=True,
                                       strict_parsing=False, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("Malformed request body")
    form = {}
    for k, vals in parsed.items():
        if len(vals) != 1:
            raise BadRequest("Invalid parameter `%s`: repeated" % k)
        form[k] = vals[0]
    return form


def loose_form(body):
    """Best-effort single-valued form for the request log."""
    try:
        parsed = urllib.parse.parse_qs(body.decode("utf-8", "replace"),
                                       keep_blank_values=True)
    except ValueError:
        return {}
    return {k: v[0] for k, v in parsed.items()}


class Emulator:
    def __init__(self, cfg):
        self.cfg = cfg
        self.state = State(cfg)
        self.stop_event = threading.Event()
        self.listen_lock = threading.Lock()
        self.api_server = None
        self.api_thread = None
        self.api_port = cfg.port
        self.control_server = None
        self.control_thread = None
        self.log_lock = threading.Lock()
        if cfg.log_file:
            self.log_fp = open(cfg.log_file, "a", buffering=1, encoding="utf-8")
        else:
            self.log_fp = sys.stderr
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(cfg.cert, cfg.key)
        try:
            ctx.set_alpn_protocols(["http/1.1"])
        except NotImplementedError:
            pass
        self.ssl_context = ctx

    def log(self, line):
        with self.log_lock:
            try:
                self.log_fp.write("%s %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S"), line))
                self.log_fp.flush()
            except (OSError, ValueError):
                pass

    # -- API listener --------------------------------------------------------

    def open_api(self):
        with self.listen_lock:
            if self.api_server is not None:
                return
            srv = ApiServer((self.cfg.host, self.api_port), ApiHandler, self)
            self.api_port = srv.server_address[1]
            self.api_server = srv
            self.api_thread = threading.Thread(target=srv.serve_forever,
                                               kwargs={"poll_interval": 0.2},
                                               name="api", daemon=True)
            self.api_thread.start()

    def close_api(self):
        with self.listen_lock:
            srv = self.api_server
            if srv is None:
                return
            self.api_server = None
            srv.shutdown()
            srv.server_close()
            self.api_thread.join(5)
            self.api_thread = None

    def start(self):
        self.open_api()
        self.control_server = ControlServer(("127.0.0.1", self.cfg.control_port),
                                            ControlHandler, self)
        self.control_thread = threading.Thread(target=self.control_server.serve_forever,
                                               kwargs={"poll_interval": 0.2},
                                               name="control", daemon=True)
        self.control_thread.start()
        self.log("listening api=https://%s:%d control=http://127.0.0.1:%d"
                 % (self.cfg.host, self.api_port, self.control_server.server_address[1]))
        if self.cfg.ready_file:
            info = {"port": self.api_port,
                    "control_port": self.control_server.server_address[1],
                    "pid": os.getpid()}
            d = os.path.dirname(os.path.abspath(self.cfg.ready_file))
            fd, tmp = tempfile.mkstemp(prefix=".ready.", dir=d)
            with os.fdopen(fd, "w") as fp:
                json.dump(info, fp)
            os.replace(tmp, self.cfg.ready_file)

    def shutdown(self):
        self.stop_event.set()
        self.close_api()
        if self.control_server is not None:
            self.control_server.shutdown()
            self.control_server.server_close()
        self.log("stopped")

    # -- API dispatch ------------------------------------------------------------

    def authenticate(self, header):
        """Returns (ok, user)."""
        cfg = self.cfg
        if not header:
            return False, None
        parts = header.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "basic":
            return False, None
        try:
            raw = base64.b64decode(parts[1].strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return False, None
        user, sep, password = raw.partition(":")
        if not sep:
            return False, user
        ok = False
        if SID_ACCOUNT_RE.match(user) and hmac.compare_digest(user, cfg.account_sid):
            ok = hmac.compare_digest(password.encode(), cfg.auth_token.encode())
        elif (cfg.api_key_sid and SID_KEY_RE.match(user)
              and hmac.compare_digest(user, cfg.api_key_sid)):
            ok = hmac.compare_digest(password.encode(), cfg.api_key_secret.encode())
        return ok, user

    def dispatch(self, method, path, headers, body, query=""):
        ok, _user = self.authenticate(headers.get("Authorization"))
        if not ok:
            return twilio_error(401, 20003, "Authenticate",
                                {"WWW-Authenticate": 'Basic realm="Twilio API"'})
        if path.startswith(API_2010 + "/"):
            return self.dispatch_messages(method, path, headers, body, query, _user)
        if "/RateLimits" in path:
            return self.dispatch_rate_limits(method, path, headers, body, query)
        m_create = ROUTE_CREATE.match(path)
        m_check = ROUTE_CHECK.match(path)
        m_one = ROUTE_ONE.match(path)
        m_service = ROUTE_SERVICE.match(path)
        m = m_create or m_check or m_one or m_service
        if m is None:
            return twilio_error(404, 20404)
        service = m.group(1)
        if not SID_SERVICE_RE.match(service) or service != self.cfg.service_sid:
            return twilio_error(404, 20404)
        if m_service:
            if method != "GET":
                return twilio_error(405, 20004, "Method not allowed",
                                    {"Allow": "GET"})
            return Response(200, self.state.service_resource())
        if m_one and not SID_VERIFICATION_RE.match(m_one.group(2)):
            return twilio_error(404, 20404)
        allowed = ("GET", "POST") if m_one else ("POST",)
        if method not in allowed:
            return twilio_error(405, 20004, "Method not allowed",
                                {"Allow": ", ".join(allowed)})
        try:
            if method == "GET":
                return self.state.fetch(m_one.group(2))
            form = parse_form(headers.get("Content-Type"), body)
            if m_create:
                return self.state.create(form)
            if m_check:
                return self.state.check(form)
            return self.state.update(m_one.group(2), form)
        except BadRequest as e:
            return twilio_error(400, e.code, e.message)

    def dispatch_messages(self, method, path, headers, body, query, user):
        st = self.state
        m_list = ROUTE_MSG_LIST.match(path)
        m_one = ROUTE_MSG_ONE.match(path)
        m = m_list or m_one
        not_found = twilio_error(404, 20404, "The requested resource %s was not found"
                                 % path)
        if m is None:
            return not_found
        if m.group(1) != self.cfg.account_sid:
            # The account's own token reaches its own resources only; an
            # API key authenticates against the account of the path.
            if SID_KEY_RE.match(user or "") and SID_ACCOUNT_RE.match(m.group(1)):
                return twilio_error(401, 20003, "Authenticate",
                                    {"WWW-Authenticate": 'Basic realm="Twilio API"'})
            return not_found
        allowed = ("GET", "POST") if m_list else ("GET", "DELETE")
        if method not in allowed:
            return twilio_error(405, 20004, "Method not allowed",
                                {"Allow": ", ".join(allowed)})
        try:
            if m_list:
                if method == "GET":
                    return st.list_messages(query)
                return st.create_message(parse_form_multi(headers.get("Content-Type"),
                                                          body))
            sid = m_one.group(2)
            if not SID_MESSAGE_RE.match(sid):
                return not_found
            if method == "GET":
                return st.fetch_message(sid)
            return st.delete_message(sid)
        except BadRequest as e:
            return twilio_error(400, e.code, e.message)

    def dispatch_rate_limits(self, method, path, headers, body, query):
        st = self.state
        routes = ((ROUTE_BUCKET_ONE, ("GET", "POST", "DELETE")),
                  (ROUTE_BUCKET_LIST, ("GET", "POST")),
                  (ROUTE_RL_ONE, ("GET", "POST", "DELETE")),
                  (ROUTE_RL_LIST, ("GET", "POST")))
        for route, allowed in routes:
            m = route.match(path)
            if m:
                break
        else:
            return twilio_error(404, 20404)
        service = m.group(1)
        if not SID_SERVICE_RE.match(service) or service != self.cfg.service_sid:
            return twilio_error(404, 20404)
        if method not in allowed:
            return twilio_error(405, 20004, "Method not allowed",
                                {"Allow": ", ".join(allowed)})
        args = m.groups()[1:]
        try:
            form = (parse_form(headers.get("Content-Type"), body)
                    if method == "POST" else {})
            if route is ROUTE_RL_LIST:
                if method == "GET":
                    return st.list_rate_limits(query)
                return st.create_rate_limit(form)
            if route is ROUTE_RL_ONE:
                if method == "GET":
                    return st.fetch_rate_limit(*args)
                if method == "DELETE":
                    return st.delete_rate_limit(*args)
                return st.update_rate_limit(*args, form)
            if route is ROUTE_BUCKET_LIST:
                if method == "GET":
                    return st.list_buckets(*args, query)
                return st.create_bucket(*args, form)
            if method == "GET":
                return st.fetch_bucket(*args)
            if method == "DELETE":
                return st.delete_bucket(*args)
            return st.update_bucket(*args, form)
        except NotFound:
            return twilio_error(404, 20404)
        except BadRequest as e:
            return twilio_error(400, e.code, e.message)

    def synthetic_success(self, method, path, form):
        """A success-shaped body for faults that fake a response."""
        now = self.state.now()
        if ROUTE_MSG_LIST.match(path) or ROUTE_MSG_ONE.match(path):
            st, cfg = self.state, self.cfg
            sid = hexsid("SM")
            m = ROUTE_MSG_ONE.match(path)
            if m and SID_MESSAGE_RE.match(m.group(2)):
                sid = m.group(2)
            if ROUTE_MSG_LIST.match(path) and method == "GET":
                return Response(200, {"end": 0, "first_page_uri": st.message_path()
                                      + "?PageSize=50&Page=0", "messages": [],
                                      "next_page_uri": None, "page": 0,
                                      "page_size": 50, "previous_page_uri": None,
                                      "start": 0, "uri": st.message_path()
                                      + "?PageSize=50&Page=0"})
            sender = form.get("From")
            return Response(201 if method == "POST" else 200, st.message_resource({
                "account_sid": cfg.account_sid, "api_version": "2010-04-01",
                "body": form.get("Body") or "", "date_created": rfc2822(now),
                "date_sent": None, "date_updated": rfc2822(now),
                "direction": "outbound-api", "error_code": None,
                "error_message": None, "from": sender,
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_media": "0", "num_segments": "1", "price": None,
                "price_unit": "USD", "sid": sid,
                "status": "queued" if sender else "accepted",
                "subresource_uris": {"media": "%s/Accounts/%s/Messages/%s/Media.json"
                                     % (API_2010, cfg.account_sid, sid)},
                "to": form.get("To") or "+15005550006", "uri": st.message_path(sid)}))
        if ROUTE_SERVICE.match(path):
            return Response(200, self.state.service_resource())
        v = Verification(hexsid("VE"), form.get("To") or "+15005550006",
                         form.get("Channel") or "sms", "000000", now)
        v.attempts.append({"attempt_sid": hexsid("VL"), "channel": "SMS", "time": iso(now)})
        if ROUTE_CHECK.match(path):
            v.status = "approved"
            return Response(200, self.state.check_resource(v))
        if ROUTE_CREATE.match(path):
            return Response(201, self.state.resource(v))
        m = ROUTE_ONE.match(path)
        if m and method == "POST":
            v.sid = m.group(2)
            v.status = form.get("Status") or "canceled"
            return Response(200, self.state.resource(v))
        if m:
            v.sid = m.group(2)
        return Response(200, self.state.resource(v))


class Server(http.server.ThreadingHTTPServer):
    """What the API and the control server share: a thread per connection,
    the emulator (emu) at hand, IPv6 for an IPv6 address."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, emu):
        self.emu = emu
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, handler)

    def server_bind(self):
        # Skip the reverse name lookup done by HTTPServer.server_bind.
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]


class ApiServer(Server):
    request_queue_size = 64

    def get_request(self):
        sock, addr = self.socket.accept()
        with self.emu.state.lock:
            self.emu.state.connections += 1
        # The handshake runs in the handler thread so a slow client cannot
        # stall the accept loop.
        tls = self.emu.ssl_context.wrap_socket(sock, server_side=True,
                                               do_handshake_on_connect=False)
        return tls, addr

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        self.emu.log("connection error from %s: %r" % (client_address[0], exc))


class Handler(http.server.BaseHTTPRequestHandler):
    """What the API and the control server's handlers share: keep-alive
    HTTP/1.1, no Nagle delay, the Server header without Python's version."""
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def version_string(self):
        return self.server_version


class ApiHandler(Handler):
    timeout = 120
    server_version = "verify-emulator"

    def setup(self):
        self.handshake_ok = False
        self.request.settimeout(self.timeout)
        try:
            self.request.do_handshake()
            self.handshake_ok = True
            with self.server.emu.state.lock:
                self.server.emu.state.tls_handshakes += 1
        except (ssl.SSLError, OSError) as e:
            self.server.emu.log("tls handshake failed from %s: %s"
                                % (self.client_address[0], e))
        super().setup()

    def handle(self):
        if not self.handshake_ok:
            self.close_connection = True
            return
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError) as e:
            self.close_connection = True
            self.server.emu.log("connection dropped from %s: %r"
                                % (self.client_address[0], e))

    def finish(self):
        try:
            super().finish()
        except (OSError, ssl.SSLError):
            pass

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.serve()

    def do_POST(self):
        self.serve()

    def do_PUT(self):
        self.serve()

    def do_DELETE(self):
        self.serve()

    def do_PATCH(self):
        self.serve()

    def read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ConnectionError("eof in chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:
                        trailer = self.rfile.readline(8192)
                        if trailer in (b"\r\n", b"\n", b""):
                            break
                    break
                total += size
                if total > MAX_BODY:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
            return b"".join(chunks)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        n = int(length)
        if n < 0 or n > MAX_BODY:
            raise ValueError("bad Content-Length")
        data = self.rfile.read(n)
        if len(data) != n:
            raise ConnectionError("short body")
        return data

    def serve(self):
        emu = self.server.emu
        state = emu.state
        raw_path = self.path
        path = urllib.parse.urlsplit(raw_path).path
        content_type = self.headers.get("Content-Type")
        _ok, auth_user = emu.authenticate(self.headers.get("Authorization"))
        try:
            body = self.read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
            resp = twilio_error(400, 60200, "Malformed request body")
            self.finish_response(resp, raw_path, {}, auth_user, content_type)
            return
        with state.lock:
            state.request_count += 1
        form = loose_form(body) if self.command != "GET" else {}

        query = urllib.parse.urlsplit(raw_path).query
        fault = state.take_fault(path, form, self.command)
        if fault is None:
            resp = emu.dispatch(self.command, path, self.headers, body, query)
            self.finish_response(resp, raw_path, form, auth_user, content_type)
            return

        real = None
        if fault.get("process"):
            real = emu.dispatch(self.command, path, self.headers, body, query)
        self.apply_fault(fault, real, raw_path, path, form, auth_user, content_type)

    # -- responses ----------------------------------------------------------------

    def record(self, raw_path, form, auth_user, content_type, status, fault=None):
        state = self.server.emu.state
        entry = {
            "method": self.command,
            "path": raw_path,
            "form": form,
            "auth_user": auth_user,
            "content_type": content_type,
            "status": status,
            "time": time.time(),
        }
        if fault:
            entry["fault"] = fault
        with state.lock:
            state.requests.append(entry)
        self.server.emu.log("%s %s %s%s" % (self.command, raw_path,
                                            status if status is not None else "-",
                                            " fault=" + fault if fault else ""))

    def delay(self):
        ms = self.server.emu.state.latency_ms
        if ms:
            self.server.emu.stop_event.wait(ms / 1000.0)

    def send_raw(self, status, body, content_type="application/json; charset=utf-8",
                 headers=None, content_length=None):
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.send_header("Twilio-Request-Id", hexsid("RQ"))
        if status != 204:
            self.send_header("Content-Length", str(len(body) if content_length is None
                                                   else content_length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    def finish_response(self, resp, raw_path, form, auth_user, content_type, fault=None):
        self.record(raw_path, form, auth_user, content_type, resp.status, fault)
        self.delay()
        self.send_raw(resp.status, resp.encode(),
                      None if resp.body is None else "application/json; charset=utf-8",
                      headers=resp.headers)

    def apply_fault(self, fault, real, raw_path, path, form, auth_user, content_type):
        emu = self.server.emu
        kind = fault.get("kind")

        def ok_response():
            if real is not None and 200 <= real.status < 300:
                return real
            return emu.synthetic_success(self.command, path, form)

        if kind == "status":
            st = int(fault.get("http_status", 500))
            code = int(fault.get("code", DEFAULT_CODE_FOR_STATUS.get(st, 20000 + st)))
            resp = twilio_error(st, code, fault.get("message"))
        elif kind == "twilio_error":
            st = int(fault.get("http_status", 400))
            code = int(fault.get("code", DEFAULT_CODE_FOR_STATUS.get(st, 20000 + st)))
            resp = twilio_error(st, code, fault.get("message"))
        elif kind == "rate_limit":
            # Twilio's account throttle (Retry-After), or with "rate_limit"
            # the refusal of one of the service's Programmable Rate Limits,
            # which names the limit in Twilio-Reached-Rate-Limit.
            headers = {}
            if fault.get("retry_after", 1) is not None:
                headers["Retry-After"] = str(fault.get("retry_after", 1))
            if fault.get("rate_limit"):
                headers["Twilio-Reached-Rate-Limit"] = str(fault["rate_limit"])
            resp = twilio_error(429, 20429, "Too Many Requests", headers)
        elif kind == "json":
            resp = Response(int(fault.get("http_status", 200)), fault.get("body", {}))
        elif kind in ("hang", "close"):
            self.record(raw_path, form, auth_user, content_type, None, kind)
            if kind == "hang":
                emu.stop_event.wait(float(fault.get("seconds", 30)))
            self.close_connection = True
            self.drop()
            return
        elif kind == "malformed_json":
            st = 201 if ROUTE_CREATE.match(path) or (
                ROUTE_MSG_LIST.match(path) and self.command == "POST") else 200
            self.record(raw_path, form, auth_user, content_type, st, kind)
            self.delay()
            self.send_raw(st, b'{"status": "approved", ', "application/json")
            return
        elif kind == "truncated":
            resp = ok_response()
            full = resp.encode()
            self.record(raw_path, form, auth_user, content_type, resp.status, kind)
            self.delay()
            self.close_connection = True
            self.send_raw(resp.status, full[: len(full) // 2],
                          content_length=len(full) + 64)
            self.drop()
            return
        elif kind == "oversized":
            resp = ok_response()
            size = int(fault.get("bytes", 1 << 20))
            body = dict(resp.body)
            body["padding"] = ""
            base = len(json.dumps(body).encode())
            body["padding"] = "x" * max(0, size - base)
            resp = Response(resp.status, body)
        elif kind == "wrong_content_type":
            resp = ok_response()
            self.record(raw_path, form, auth_user, content_type, resp.status, kind)
            self.delay()
            self.send_raw(resp.status, resp.encode(), "text/html")
            return
        elif kind == "redirect":
            loc = fault.get("location", "https://127.0.0.1:1/elsewhere")
            self.record(raw_path, form, auth_user, content_type, 302, kind)
            self.delay()
            self.send_raw(302, b"", None, {"Location": loc})
            return
        else:
            resp = twilio_error(500, 20500, "Unknown fault kind")
        self.finish_response(resp, raw_path, form, auth_user, content_type, kind)

    def drop(self):
        """Closes the connection without a TLS close_notify."""
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class ControlServer(Server):
    pass


class ControlHandler(Handler):
    timeout = 60
    server_version = "verify-emulator-control"

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        if not raw.strip():
            return {}
        obj = json.loads(raw.decode("utf-8"))
        if not isinstance(obj, dict):
            raise ValueError("expected a JSON object")
        return obj

    def do_GET(self):
        emu = self.server.emu
        st = emu.state
        path = urllib.parse.urlsplit(self.path).path
        obj = None
        with st.lock:
            if path == "/outbox":
                obj = list(st.outbox)
            elif path == "/requests":
                obj = list(st.requests)
            elif path == "/stats":
                obj = {"connections": st.connections,
                       "tls_handshakes": st.tls_handshakes,
                       "requests": st.request_count}
            elif path == "/faults":
                obj = {"faults": [dict(f) for f in st.faults], "latency_ms": st.latency_ms}
            elif path == "/health":
                obj = {"ok": True, "port": emu.api_port,
                       "listening": emu.api_server is not None}
        if obj is not None:
            return self.reply(200, obj)
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        emu = self.server.emu
        st = emu.state
        path = urllib.parse.urlsplit(self.path).path
        try:
            req = self.read_json()
        except (ValueError, UnicodeDecodeError) as e:
            return self.reply(400, {"error": "bad JSON: %s" % e})
        if path == "/reset":
            st.reset()
            return self.reply(200, {"ok": True})
        if path == "/faults":
            faults = req.get("faults", [])
            if not isinstance(faults, list):
                return self.reply(400, {"error": "faults must be a list"})
            for f in faults:
                if not isinstance(f, dict) or f.get("kind") not in FAULT_KINDS:
                    return self.reply(400, {"error": "bad fault: %r" % (f,)})
                if "count" in f and not isinstance(f["count"], int):
                    return self.reply(400, {"error": "count must be an int"})
            with st.lock:
                st.faults = [dict(f) for f in faults]
                st.latency_ms = int(req.get("latency_ms") or 0)
            return self.reply(200, {"ok": True})
        if path == "/clock":
            try:
                adv = float(req.get("advance_seconds", 0))
            except (TypeError, ValueError):
                return self.reply(400, {"error": "advance_seconds must be a number"})
            with st.lock:
                st.clock_offset += adv
                now = st.now()
            return self.reply(200, {"ok": True, "now": now, "offset": st.clock_offset})
        if path == "/listen":
            try:
                if req.get("refuse"):
                    emu.close_api()
                else:
                    emu.open_api()
            except OSError as e:
                return self.reply(500, {"error": str(e)})
            return self.reply(200, {"ok": True, "listening": emu.api_server is not None,
                                    "port": emu.api_port})
        self.reply(404, {"error": "not found"})


def parse_args(argv):
    p = argparse.ArgumentParser(description="Twilio Verify v2 emulator for tests")
    p.add_argument("--cert", required=True, help="server certificate (PEM)")
    p.add_argument("--key", required=True, help="server private key (PEM)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--control-port", type=int, default=0)
    p.add_argument("--account-sid", required=True)
    p.add_argument("--auth-token", required=True)
    p.add_argument("--api-key-sid")
    p.add_argument("--api-key-secret")
    p.add_argument("--service-sid", required=True)
    p.add_argument("--expiry-seconds", type=float, default=600)
    p.add_argument("--code-length", type=int, default=6)
    p.add_argument("--friendly-name", default="pam_twilio_verify test",
                   help="the Service's friendly_name (GET of the Service)")
    p.add_argument("--owned-number", action="append", dest="owned_numbers",
                   metavar="E164", help="a phone number the account owns, for "
                   "Messages' From (repeatable; default %s)"
                   % ", ".join(DEFAULT_OWNED_NUMBERS))
    p.add_argument("--messaging-service-sid", action="append",
                   dest="messaging_service_sids", metavar="MG...",
                   help="a Messaging Service of the account (repeatable)")
    p.add_argument("--ready-file")
    p.add_argument("--log-file")
    p.add_argument("--print-sms", action="store_true",
                   help="print every message of the outbox on stdout (demo)")
    a = p.parse_args(argv)
    if not SID_ACCOUNT_RE.match(a.account_sid):
        p.error("--account-sid must match ^AC[0-9a-fA-F]{32}$")
    if not SID_SERVICE_RE.match(a.service_sid):
        p.error("--service-sid must match ^VA[0-9a-fA-F]{32}$")
    if (a.api_key_sid is None) != (a.api_key_secret is None):
        p.error("--api-key-sid and --api-key-secret go together")
    if a.api_key_sid is not None and not SID_KEY_RE.match(a.api_key_sid):
        p.error("--api-key-sid must match ^SK[0-9a-fA-F]{32}$")
    if a.owned_numbers is None:
        a.owned_numbers = list(DEFAULT_OWNED_NUMBERS)
    for n in a.owned_numbers:
        if not E164_RE.match(n):
            p.error("--owned-number must be E.164: %s" % n)
    a.messaging_service_sids = a.messaging_service_sids or []
    for sid in a.messaging_service_sids:
        if not SID_MSG_SERVICE_RE.match(sid):
            p.error("--messaging-service-sid must match ^MG[0-9a-fA-F]{32}$")
    if not 4 <= a.code_length <= 10:
        p.error("--code-length must be 4..10")
    if a.expiry_seconds <= 0:
        p.error("--expiry-seconds must be positive")
    return a


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    cfg = Config()
    for k, v in vars(a).items():
        setattr(cfg, k, v)
    emu = Emulator(cfg)

    stop = threading.Event()

    def on_signal(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emu.start()
    while not stop.wait(0.5):
        pass
    emu.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
