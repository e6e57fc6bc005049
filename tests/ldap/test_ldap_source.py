#!/usr/bin/python3
"""The "ldap" and "command" phone sources through the real module: pamtester
under pam_wrapper loads pam_twilio_verify.so, which looks the number up in a
real slapd (Debian's, started here on loopback from directory.ldif) or runs
a real lookup command, then talks to the Verify emulator over HTTPS.

Covers StartTLS, ldaps:// and plain ldap://, bind and anonymous, several
values, malformed and missing numbers, RFC 4515 escaping of hostile user
names, the failures (slapd down, slapd slow, slapd hung, wrong bind password, untrusted
or mismatched certificate, a hostile libldap environment), and the command
contract (success, timeout, exit status, garbage, huge output, unsafe file).

Usage: test_ldap_source.py MODULE_SO
"""

import os
import shutil
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "emulator"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from emulator_client import Emulator  # noqa: E402
from slapd_server import SlapdServer  # noqa: E402
import ptv_harness as h  # noqa: E402
from ptv_harness import check, result_of  # noqa: E402

BASE = "ou=people,dc=example,dc=com"


def ldap_body(uri, ca_file, starttls=None, bind=None, failmode="secure",
              no_phone="deny", timeout_ms=2000, filt=None, sources='[ "ldap" ]'):
    bind_dn, bind_password = bind or (None, None)
    return ('phone_sources = %s;\nfailmode = "%s";\nno_phone = "%s";\n'
            % (sources, failmode, no_phone) + h.group("ldap", [
                ("uri", uri), ("base", BASE), ("ca_file", ca_file),
                ("timeout_ms", timeout_ms), ("starttls", starttls),
                ("bind_dn", bind_dn), ("bind_password", bind_password),
                ("filter", filt)]))


def command_body(path, failmode="secure", timeout_ms=2000):
    return ('phone_sources = [ "command" ];\nfailmode = "%s";\n'
            'lookup_command = "%s";\nlookup_command_user = "nobody";\n'
            "lookup_timeout_ms = %d;\n" % (failmode, path, timeout_ms))


def main():
    h.require_root("the module accepts only a root-owned config file")
    module = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="ptv-ldap.")
    # Commands must live where only root can write (not under /tmp).
    cmd_dir = h.safe_dir("ptv-ldap-cmd.")
    em = Emulator(os.path.join(work, "emulator"))
    ca_dir = os.path.join(work, "ca")
    directory = SlapdServer(os.path.join(work, "slapd"), ca_dir)
    wronghost = SlapdServer(os.path.join(work, "slapd-wronghost"), ca_dir,
                            cert="wronghost")
    try:
        em.start()
        directory.start()
        # Every name the logins give is an account (nss_wrapper), the
        # hostile ones included: the module resolves the name before any
        # lookup, and these tests are about what reaches the directory.
        pw = h.PamWork(work, module, users=(
            "alice", "bob", "carol", "dave", "erin", "gina", "zed", "a*b(c)d\\e",
            "*", "al*", "alice)(uid=*", "*)(|(uid=*", "\\2a"))
        h.record_secrets("ldap.source", tokens=[directory.bind_pw], numbers=[
            "+15550100001", "+447700900003", "+15550100008"])
        state = os.path.join(work, "state")
        ca = directory.ca_file
        other_ca = os.path.join(ca_dir, "other-ca.pem")
        bind = (directory.bind_dn, directory.bind_pw)

        def configure(body):
            # A fresh send_limit state for every case: the limit is not what
            # is tested here.
            shutil.rmtree(state, ignore_errors=True)
            h.write_private(pw.conf, h.module_config(em, state, body))
            em.reset()

        def login(user, answers, phone, body, **kw):
            configure(body)
            return h.pamtester(pw, user, answers, em, phone, log_name="ldap.source", **kw)

        def sent():
            return [m.get("to") for m in em.outbox()]

        # ---- where the number comes from ----------------------------------
        for name, body in [
                ("StartTLS, anonymous", ldap_body(directory.ldap_uri, ca)),
                ("ldaps://, bind as cn=pam", ldap_body(directory.ldaps_uri, ca, bind=bind)),
                ("plain ldap:// (starttls = false)",
                 ldap_body(directory.ldap_uri, ca, starttls=False))]:
            r = login("alice", ["right"], "+15550100001", body)
            check("%s: alice gets in with the right code" % name, r.ok, r)
            check("%s: the SMS went to alice's directory number" % name,
                  sent() == ["+15550100001"], sent())
        check("plain ldap:// is logged as a warning",
              "without TLS" in r.output, r)

        body = ldap_body(directory.ldap_uri, ca)
        r = login("carol", ["right"], "+447700900003", body)
        check("two values, the first malformed: the second (valid) one is used",
              r.ok and sent() == ["+447700900003"], "%s %s" % (sent(), r))
        r = login("erin", ["right"], "+15550100005", body)
        check("\"+1 (555) 010-0005\" is normalised to +15550100005",
              r.ok and sent() == ["+15550100005"], "%s %s" % (sent(), r))
        r = login("alice", ["wrong", "wrong", "wrong"], "+15550100001", body)
        check("directory number, three wrong codes: denied-wrong-code",
              not r.ok and result_of(r) == "denied-wrong-code", r)

        # ---- missing and malformed numbers --------------------------------
        r = login("bob", [], None, body)
        check("entry without mobile: denied-no-phone, no prompt, nothing sent",
              result_of(r) == "denied-no-phone" and r.prompts == 0 and sent() == [], r)
        r = login("bob", [], None, ldap_body(directory.ldap_uri, ca, no_phone="skip"))
        check("entry without mobile, no_phone skip: skipped-no-phone",
              result_of(r) == "skipped-no-phone" and sent() == [], r)
        r = login("zed", [], None, body)
        check("no entry at all: denied-no-phone, nothing sent",
              result_of(r) == "denied-no-phone" and sent() == [], r)
        r = login("dave", [], None, ldap_body(directory.ldap_uri, ca, no_phone="skip"))
        check("malformed number (no country code): denied-invalid-phone even "
              "with no_phone skip", result_of(r) == "denied-invalid-phone" and
              sent() == [] and r.status != 0, r)

        # A host with busy threads (malloc, NSS and stdio locks taken all the
        # time): the module starts its helper with fork and exec only, so a
        # code login with a directory lookup completes.
        host = os.environ.get("PTV_PAM_HOST")
        if host:
            r = login("alice", ["right"], "+15550100001", body,
                      host=[host, "--threads", "8"])
            check("a PAM application with 8 busy threads: the directory "
                  "lookup and the code login complete", r.ok and
                  sent() == ["+15550100001"], r)
        else:
            check("PTV_PAM_HOST is set (the threaded host)", False, "it is not")

        r = login("gina", [], None, body)
        check("a value over 64 bytes whose start reads as a number is refused "
              "whole: denied-invalid-phone, nothing sent",
              result_of(r) == "denied-invalid-phone" and sent() == [], r)

        # ---- RFC 4515: the user name cannot change the filter -------------
        for hostile in ["*", "al*", "alice)(uid=*", "*)(|(uid=*", "\\2a"]:
            r = login(hostile, [], None, body)
            check("user name %r matches nothing (denied-no-phone, nothing sent)"
                  % hostile, result_of(r) == "denied-no-phone" and sent() == [], r)
        r = login("a*b(c)d\\e", ["right"], "+15550100008", body)
        check("the entry whose uid is literally a*b(c)d\\e is found",
              r.ok and sent() == ["+15550100008"], "%s %s" % (sent(), r))
        r = login("bob", [], None, ldap_body(directory.ldap_uri, ca,
                                             filt="(|(uid=%u)(uid=alice))"))
        check("a filter matching two entries: denied-lookup-error, nothing sent",
              result_of(r) == "denied-lookup-error" and sent() == [] and
              "more than one entry" in r.output, r)

        # ---- failures ------------------------------------------------------
        for failmode in ("secure", "safe"):
            r = login("alice", [], None, ldap_body(
                directory.ldap_uri, ca, bind=(directory.bind_dn, "wrong-password"),
                failmode=failmode))
            check("wrong bind password, failmode %s: denied-config-error, nothing sent"
                  % failmode, result_of(r) == "denied-config-error" and
                  r.status != 0 and sent() == [] and "invalid credentials" in r.output, r)
            check("wrong bind password: the password is not in the output",
                  "wrong-password" not in r.output and directory.bind_pw not in r.output, r)

        for name, body_bad in [
                ("ldaps:// with a CA that did not sign the server",
                 ldap_body(directory.ldaps_uri, other_ca, failmode="safe")),
                ("StartTLS with a CA that did not sign the server",
                 ldap_body(directory.ldap_uri, other_ca, failmode="safe")),
                ("ldaps:// to a certificate for another host name",
                 ldap_body(None, ca, failmode="safe"))]:
            if "another host" in name:
                wronghost.start()
                body_bad = ldap_body(wronghost.ldaps_uri, ca, failmode="safe")
            r = login("alice", [], None, body_bad)
            check("%s, failmode safe: denied-lookup-error (never let in)" % name,
                  result_of(r) == "denied-lookup-error" and r.status != 0 and
                  sent() == [], r)

        # A hostile libldap environment (su and sudo keep the user's
        # environment; libldap reads ./ldaprc and ~/.ldaprc): certificate
        # checks off, another CA, another server. None of it may count.
        hostile_dir = os.path.join(work, "hostile")
        os.makedirs(hostile_dir)
        rc_text = ("TLS_REQCERT never\nTLS_CACERT %s\nURI %s\nTLS_CIPHER_SUITE NONE\n"
                   "SOCKET_BIND_ADDRESSES 192.0.2.1\n" % (other_ca, wronghost.ldaps_uri))
        for f in ("ldaprc", ".ldaprc", "ldap.conf"):
            with open(os.path.join(hostile_dir, f), "w") as fh:
                fh.write(rc_text)
        hostile_env = {"LDAPTLS_REQCERT": "never", "LDAPTLS_CACERT": other_ca,
                       "LDAPCONF": os.path.join(hostile_dir, "ldap.conf"),
                       "LDAPRC": "ldaprc", "HOME": hostile_dir,
                       "LDAPURI": wronghost.ldaps_uri,
                       # Would break even the right server if libldap
                       # read them: the module keeps libldap from reading
                       # the environment and rc files at all (LDAPNOINIT).
                       "LDAPTLS_CIPHER_SUITE": "NONE",
                       "LDAPSOCKET_BIND_ADDRESSES": "192.0.2.1"}
        r = login("alice", [], None, ldap_body(wronghost.ldaps_uri, ca, failmode="safe"),
                  extra_env=hostile_env, cwd=hostile_dir)
        check("hostile LDAP* environment and ldaprc files: a mismatched "
              "certificate is still refused", result_of(r) == "denied-lookup-error"
              and sent() == [], r)
        r = login("alice", ["right"], "+15550100001", ldap_body(directory.ldaps_uri, ca),
                  extra_env=hostile_env, cwd=hostile_dir)
        check("hostile LDAP* environment: the configured server and CA are used",
              r.ok and sent() == ["+15550100001"], r)
        wronghost.stop()

        directory.stop()
        for failmode, want in (("secure", "denied-unavailable"),
                               ("safe", "allowed-unavailable")):
            r = login("alice", [], None, ldap_body(directory.ldap_uri, ca,
                                                   failmode=failmode))
            check("slapd down, failmode %s: %s, nothing sent" % (failmode, want),
                  result_of(r) == want and sent() == [] and
                  (r.status == 0) == (failmode == "safe"), r)
        check("slapd down, failmode safe: WARNING names the directory",
              "WITHOUT the second factor" in r.output and "ldap" in r.output, r)
        directory.start()

        directory.pause()
        try:
            for name, uri in (("StartTLS", directory.ldap_uri),
                              ("ldaps://", directory.ldaps_uri)):
                for failmode, want in (("secure", "denied-unavailable"),
                                       ("safe", "allowed-unavailable")):
                    r = login("alice", [], None, ldap_body(
                        uri, ca, failmode=failmode, timeout_ms=1000))
                    check("slapd hung (%s), failmode %s: %s after %.2f s "
                          "(timeout_ms 1000)" % (name, failmode, want, r.seconds),
                          result_of(r) == want and sent() == [] and
                          1.0 <= r.seconds < 2.0, r)
        finally:
            directory.resume()
        r = login("alice", ["right"], "+15550100001", ldap_body(directory.ldaps_uri, ca))
        check("slapd answering again: alice gets in", r.ok, r)

        # Slow but within timeout_ms: slapd frozen for 0.6 s while the
        # module waits (timeout_ms 3000), then answering. The answer counts.
        for name, uri in (("StartTLS", directory.ldap_uri),
                          ("ldaps://", directory.ldaps_uri)):
            directory.pause()
            thaw = threading.Timer(0.6, directory.resume)
            thaw.start()
            try:
                r = login("alice", ["right"], "+15550100001",
                          ldap_body(uri, ca, failmode="safe", timeout_ms=3000))
            finally:
                thaw.join()
            check("slapd slow (%s, 0.6 s of 3 s): alice gets in after %.2f s, "
                  "SMS to her directory number" % (name, r.seconds),
                  r.ok and result_of(r) == "approved" and
                  sent() == ["+15550100001"] and r.seconds >= 0.6, r)

        # ---- the lookup command ------------------------------------------
        def command(name, text, mode=0o755):
            path = os.path.join(cmd_dir, name)
            with open(path, "w") as f:
                f.write("#!/bin/sh\n" + text + "\n")
            os.chmod(path, mode)
            return path

        lookup = command("phone-for-user", 'case "$1" in\n'
                         '  alice) echo "+1 555 010 0001" ;;\n'
                         '  *) ;;\n'
                         "esac")
        r = login("alice", ["right"], "+15550100001", command_body(lookup))
        check("command: alice gets in, SMS to the number it printed",
              r.ok and sent() == ["+15550100001"], r)
        r = login("bob", [], None, command_body(lookup))
        check("command printing nothing: denied-no-phone",
              result_of(r) == "denied-no-phone" and sent() == [], r)
        r = login("alice", [], None, command_body(command("fails", "echo oops >&2; exit 1")))
        check("command exiting 1: denied-lookup-error with its stderr in the log",
              result_of(r) == "denied-lookup-error" and "oops" in r.output and sent() == [], r)
        r = login("alice", [], None, command_body(command("tempfail", "exit 75"), "safe"))
        check("command exiting 75 (EX_TEMPFAIL), failmode safe: allowed-unavailable",
              result_of(r) == "allowed-unavailable" and r.status == 0, r)
        r = login("alice", [], None, command_body(command("slow", "sleep 20"),
                                                  timeout_ms=500))
        check("command too slow: denied-lookup-error after %.2f s (500 ms limit)"
              % r.seconds, result_of(r) == "denied-lookup-error" and r.seconds < 1.5, r)
        r = login("alice", [], None, command_body(command("garbage", "echo 'ask Bob'")))
        check("command printing garbage: denied-invalid-phone",
              result_of(r) == "denied-invalid-phone" and sent() == [], r)
        r = login("alice", [], None, command_body(command("huge", "yes +15550100001")))
        check("command printing without end: denied-lookup-error",
              result_of(r) == "denied-lookup-error" and "more than 1024 bytes" in r.output, r)
        r = login("alice", [], None, command_body(
            command("writable", "echo +15550100001", 0o777), "safe"))
        check("command file writable by others, failmode safe: denied-config-error",
              result_of(r) == "denied-config-error" and sent() == [] and r.status != 0, r)
    except Exception as e:
        import traceback
        traceback.print_exc()
        check("test run: %s: %s" % (type(e).__name__, e), False)
    finally:
        h.teardown((wronghost, directory, em), (cmd_dir, work))
    return h.summary()


if __name__ == "__main__":
    sys.exit(main())
