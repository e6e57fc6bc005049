#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_pam_entry (tests/fuzz/corpus/fuzz_pam_entry).

The input layout is described at the top of fuzz_pam_entry.cpp; each seed
below names what it reaches. Check one with
  PTV_FUZZ_VERBOSE=1 <build>/fuzz_pam_entry -runs=0 tests/fuzz/corpus/fuzz_pam_entry/NAME
"""
import os
import struct
import sys

# Outcomes (src/core/outcome.hpp), in order.
APPROVED, FAIL_OPEN, NO_PHONE_SKIPPED = 0, 1, 3
WRONG_CODE, UNAVAILABLE = 8, 10

# Wrapped functions that fail (Fn in fuzz_pam_entry.cpp).
FN = {name: i for i, name in enumerate(
    "malloc calloc realloc new new[] open openat read pread pwrite fstat stat "
    "lstat fstatat mkdir realpath socketpair fork waitpid kill send poll "
    "pam_get_item pam_get_user getpwnam_r".split())}


def s(text):
    b = text.encode() if isinstance(text, str) else text
    return bytes([len(b)]) + b


# The fake helper's script steps.
def read_request():
    return b"\x00"


def log(priority, text):
    return b"\x01" + bytes([priority]) + s(text)


def show_error(text):
    return b"\x02" + s(text)


def prompt(text="Verification code: "):
    return b"\x03" + s(text)


def reserve():
    return b"\x04"


def release(stamp):
    return b"\x05" + struct.pack("<q", stamp)


def result(outcome, attempts=1, detail=""):
    # fields 5: the masked phone and the SID of the fake's constants
    return b"\x06" + bytes([outcome, 5, attempts]) + s(detail)


def approve():
    return b"\x07"


def module_message(kind):
    return b"\x08" + bytes([kind])


def raw_frame(body):
    return b"\x09" + s(body)


def raw_bytes(data):
    return b"\x0a" + s(data)


def oversized():
    return b"\x0b\x00\x00"


def fail_open():
    return b"\x0d"


# The session's script (FakeHelper::parse_session): the Verify service's
# answers to the starts, checks and cancels (verify_reply picks), then the
# directory's answer.
V_STARTED, V_APPROVED, V_PENDING, V_500 = 0, 1, 2, 4
V_UNREACHABLE, V_TLS, V_HTML_APPROVED = 6, 9, 15
D_VALUES, D_NOT_FOUND, D_UNAVAILABLE = 0, 1, 2


def session(starts=(), checks=(), cancels=(), directory=D_NOT_FOUND, value=0):
    out = b""
    for picks in (starts, checks, cancels):
        out += bytes([len(picks)]) + bytes(picks)
    return out + bytes([directory, value])


def seed(config=0, args=0, caller=0, user=0, gecos=0, strings=b"",
         faults=(), conv=b"", script=b""):
    out = bytes([config, args, caller, user, gecos]) + strings
    out += bytes([len(faults)])
    for fn, nth, mode in faults:
        out += bytes([FN[fn]]) + struct.pack("<H", nth) + bytes([mode])
    out += bytes([len(conv)]) + conv + script
    return out


GOOD, WRONG, PASSWORD = 0, 1, 2
SAFE, SKIP, GECOS, LDAP, SERVICES = 1, 2, 4, 8, 16
SETUID, NOT_ROOT = 4, 7
CRON = 4 << 3
AUTHTOK_PASSWORD = 1 << 6
ALICE, CAROL, DAVE = 0, 2, 4
SESSION = 128  # the helper's real session, not a script

CODE_LOGIN = read_request() + log(6, "verification started") + reserve() + prompt()

SEEDS = {
    # The plain approved login: request, reserve, prompt, the good code.
    "approved": seed(conv=bytes([GOOD]), script=CODE_LOGIN + approve()),
    # Three wrong codes, then the helper's denial.
    "wrong_code": seed(conv=bytes([WRONG] * 3),
                       script=CODE_LOGIN + prompt() + prompt() +
                       result(WRONG_CODE, 3)),
    # An outage under failmode safe: allowed for a plain caller...
    "outage_safe": seed(config=SAFE, script=read_request() + reserve() + fail_open()),
    # ...never for a set-id one (su, sudo).
    "outage_safe_setid": seed(config=SAFE, caller=SETUID,
                              script=read_request() + reserve() + fail_open()),
    # An outage under failmode secure.
    "outage_secure": seed(script=read_request() + reserve() +
                          result(UNAVAILABLE, 0, "Twilio unreachable")),
    # No number (carol is not in users) and no_phone = skip: PAM_IGNORE,
    # no helper.
    "no_phone_skip": seed(config=SKIP, user=CAROL),
    # The helper found no number in LDAP, no_phone = skip.
    "ldap_no_phone_skip": seed(config=LDAP | SKIP, user=CAROL,
                               script=read_request() +
                               result(NO_PHONE_SKIPPED, 0)),
    # services = [sshd, login], the service is cron: skipped.
    "service_skipped": seed(config=SERVICES, caller=CRON),
    # The number from GECOS.
    "gecos_approved": seed(config=GECOS, user=DAVE, conv=bytes([GOOD]),
                           script=CODE_LOGIN + approve()),
    # The password typed at the prompt (PAM_AUTHTOK), then the code.
    "password_then_code": seed(caller=AUTHTOK_PASSWORD,
                               conv=bytes([PASSWORD, GOOD]),
                               script=CODE_LOGIN + prompt() + approve()),
    # A send given back.
    "release": seed(conv=bytes([GOOD]),
                    script=read_request() + reserve() + release(0) +
                    prompt() + approve()),
    # A helper that breaks the protocol.
    "garbage": seed(script=read_request() + raw_bytes(b"\x05\x00\x00\x00garbage")),
    "out_of_turn": seed(script=read_request() + module_message(1) + approve()),
    "oversized_frame": seed(script=read_request() + oversized()),
    "raw_result_frame": seed(script=read_request() + raw_frame(b"\x15")),
    "show_error": seed(script=read_request() + show_error("Too many tries") +
                       result(WRONG_CODE, 3)),
    # Failures injected: fork, the configuration's open, an allocation,
    # the helper's socket.
    "fork_fails": seed(faults=[("fork", 0, 0)], script=approve()),
    "config_open_fails": seed(faults=[("open", 0, 0)]),
    "new_fails": seed(faults=[("new", 40, 0)], conv=bytes([GOOD]),
                      script=CODE_LOGIN + approve()),
    "read_short": seed(faults=[("read", 3, 3), ("read", 6, 3)],
                       conv=bytes([GOOD]), script=CODE_LOGIN + approve()),
    "send_fails": seed(faults=[("send", 0, 2)], script=approve()),
    "get_user_fails": seed(faults=[("pam_get_user", 0, 1)]),
    # The configuration refused: a syntax error, mode 0644, not root's.
    "config_syntax": seed(config=4 << 5),
    "config_mode": seed(config=5 << 5),
    "config_owner": seed(config=6 << 5),
    # The module does not run as root: no helper.
    "not_root": seed(caller=NOT_ROOT),
    # No such account.
    "unknown_user": seed(user=5 << 4),
    # A reply too long for a code (and for std::string's inline buffer:
    # the module copies it to the heap), then the good code.
    "long_reply": seed(conv=bytes([3, 24]) + b"1" * 24 + bytes([GOOD]),
                       script=CODE_LOGIN + prompt() + approve()),
    # The helper's real session against the fake Verify service: approved.
    "session_approved": seed(user=SESSION, conv=bytes([GOOD]),
                             script=session(checks=[V_APPROVED])),
    # Three wrong codes (the service answers pending).
    "session_wrong_code": seed(user=SESSION, conv=bytes([WRONG] * 3),
                               script=session()),
    # The password typed first, then the code.
    "session_password_then_code": seed(user=SESSION, caller=AUTHTOK_PASSWORD,
                                       conv=bytes([PASSWORD, GOOD]),
                                       script=session(checks=[V_APPROVED])),
    # Twilio unreachable (and again on the retry) under failmode safe...
    "session_outage_safe": seed(config=SAFE, user=SESSION,
                                script=session(starts=[V_UNREACHABLE] * 2)),
    # ...for a set-id caller...
    "session_outage_safe_setid": seed(config=SAFE, user=SESSION, caller=SETUID,
                                      script=session(starts=[V_UNREACHABLE] * 2)),
    # ...and a 5xx under failmode secure.
    "session_5xx_secure": seed(user=SESSION, script=session(starts=[V_500])),
    # A TLS failure never opens, even under failmode safe.
    "session_tls_safe": seed(config=SAFE, user=SESSION,
                             script=session(starts=[V_TLS])),
    # "approved" in a body that is not JSON.
    "session_html_approved": seed(user=SESSION, conv=bytes([GOOD]),
                                  script=session(checks=[V_HTML_APPROVED])),
    # The directory: no entry under no_phone = skip, down under failmode
    # safe, a number.
    "session_ldap_skip": seed(config=LDAP | SKIP, user=SESSION | CAROL,
                              script=session(directory=D_NOT_FOUND)),
    "session_ldap_down_safe": seed(config=LDAP | SAFE, user=SESSION | CAROL,
                                   script=session(directory=D_UNAVAILABLE)),
    "session_ldap_number": seed(config=LDAP, user=SESSION | CAROL,
                                conv=bytes([GOOD]),
                                script=session(checks=[V_APPROVED],
                                               directory=D_VALUES)),
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        here, "corpus", "fuzz_pam_entry")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
