#!/usr/bin/python3
"""Self-test of the slapd fixture (slapd_server.py) with the OpenLDAP
command-line client.

Usage: test_slapd_fixture.py [--keep]

Prints one PASS/FAIL line per check and a closing "N passed, N failed"
line; exits 0 only if every check passed.  --keep keeps the temporary
directory (configuration, database and slapd.log) for inspection.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from slapd_server import LDAPSEARCH, SlapdServer, make_ca  # noqa: E402
from ptv_harness import check, summary  # noqa: E402


def pid_alive(pid):
    """True if a process (zombies included) has this pid."""
    return os.path.exists("/proc/%d" % pid)


def hung_search(srv):
    """The search a client with a short network timeout would make, under a
    2-second wall-clock limit.  Returns (exit code, seconds taken)."""
    began = time.monotonic()
    r = subprocess.run(["/usr/bin/timeout", "2", LDAPSEARCH, "-x", "-LLL",
                        "-o", "nettimeout=1", "-H", srv.ldap_uri,
                        "-b", srv.suffix, "(uid=alice)", "mobile"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=srv.client_env())
    return r.returncode, time.monotonic() - began


def test_main_server(tmp, ca_dir):
    srv = SlapdServer(os.path.join(tmp, "main"), ca_dir)
    began = time.monotonic()
    srv.start()
    print("start() took %.3f s (%s, %s, pid %d)"
          % (time.monotonic() - began, srv.ldap_uri, srv.ldaps_uri, srv.pid),
          flush=True)
    with srv:
        r = srv.search("(uid=alice)", ["mobile"])
        check("anonymous search over ldap:// finds alice's mobile",
              r.values("mobile") == ["+15550100001"], r)

        r = srv.search("(uid=alice)", ["mobile"], starttls=True)
        check("StartTLS (-ZZ) with the test CA",
              r.values("mobile") == ["+15550100001"], r)

        r = srv.search("(uid=alice)", ["mobile"], uri=srv.ldaps_uri)
        check("ldaps:// with the test CA",
              r.values("mobile") == ["+15550100001"], r)

        r = srv.search("(uid=bob)", ["mobile"])
        check("bob exists and has no mobile",
              len(r.entries) == 1 and r.values("mobile") == [], r)

        r = srv.search("(uid=alice)", ["mobile"], bind_dn=srv.bind_dn,
                       password=srv.bind_pw)
        check("simple bind as cn=pam with the right password",
              r.values("mobile") == ["+15550100001"], r)

        r = srv.search("(uid=alice)", ["mobile"], bind_dn=srv.bind_dn,
                       password="wrong-password")
        check("simple bind as cn=pam with a wrong password is refused",
              r.returncode == 49 and "Invalid credentials (49)" in r.stderr, r)

        r = srv.search("(cn=pam)", ["userPassword"], bind_dn=srv.bind_dn,
                       password=srv.bind_pw)
        check("userPassword is not readable",
              len(r.entries) == 1 and r.values("userPassword") == [], r)

        r = srv.search("(uid=carol)", ["mobile"])
        check("carol has two mobile values, in order",
              r.values("mobile") == ["not a number", "+44 7700 900003"], r)

        r = srv.search("(uid=*)", ["uid"], base=srv.people_base)
        check("the special-character uid entry exists",
              "a*b(c)d\\e" in r.values("uid"), r)

        r = srv.search(r"(uid=a\2ab\28c\29d\5ce)", ["uid", "mobile"])
        check("escaped filter finds exactly the special-character entry",
              r.values("uid") == ["a*b(c)d\\e"]
              and r.values("mobile") == ["+15550100008"], r)

        srv.pause()
        rc, took = hung_search(srv)
        check("pause(): search with nettimeout=1 under timeout 2 fails",
              rc != 0, "exit %d after %.2f s" % (rc, took))
        print("  paused search: exit %d after %.2f s" % (rc, took), flush=True)
        srv.resume()
        rc, took = hung_search(srv)
        check("resume(): the same search succeeds again", rc == 0,
              "exit %d after %.2f s" % (rc, took))

        # A restart keeps the ports and the data.
        uri = srv.ldap_uri
        srv.stop()
        srv.start()
        r = srv.search("(uid=alice)", ["mobile"])
        check("stop() then start() comes back at the same URI with the data",
              srv.ldap_uri == uri and r.values("mobile") == ["+15550100001"], r)

        pid = srv.pid
    # Leaving the with block stopped it; a second stop() is a no-op.
    srv.stop()
    check("stop() leaves no process with slapd's pid",
          not pid_alive(pid) and srv.pid is None, "pid %d still exists" % pid)


def test_restricted_server(tmp, ca_dir):
    with SlapdServer(os.path.join(tmp, "restricted"), ca_dir,
                     anonymous_read=False) as srv:
        r = srv.search("(uid=alice)", ["mobile"])
        check("anonymous_read=False: anonymous search finds nothing",
              r.entries == [], r)
        r = srv.search("(uid=alice)", ["mobile"], bind_dn=srv.bind_dn,
                       password=srv.bind_pw)
        check("anonymous_read=False: cn=pam still reads alice's mobile",
              r.values("mobile") == ["+15550100001"], r)


def test_wronghost_server(tmp, ca_dir):
    with SlapdServer(os.path.join(tmp, "wronghost"), ca_dir,
                     cert="wronghost") as srv:
        # -d 1 makes libldap say why the handshake was abandoned.
        r = srv.search("(uid=alice)", ["mobile"], uri=srv.ldaps_uri,
                       extra=["-d", "1"])
        check("cert='wronghost': ldaps:// fails the host name check",
              not r.ok and r.entries == []
              and "TLS: hostname (127.0.0.1) does not match" in r.stderr,
              r.stderr.strip().splitlines()[-3:])
        r = srv.search("(uid=alice)", ["mobile"], uri=srv.ldaps_uri,
                       env={"LDAPTLS_REQCERT": "never"})
        check("cert='wronghost': ldaps:// answers without verification",
              r.values("mobile") == ["+15550100001"], r)
        r = srv.search("(uid=alice)", ["mobile"])
        check("cert='wronghost': plain ldap:// still answers",
              r.values("mobile") == ["+15550100001"], r)


def main():
    keep = "--keep" in sys.argv[1:]
    tmp = tempfile.mkdtemp(prefix="slapd-fixture-")
    try:
        ca_dir = os.path.join(tmp, "ca")
        make_ca(ca_dir)
        for test in (test_main_server, test_restricted_server,
                     test_wronghost_server):
            try:
                test(tmp, ca_dir)
            except Exception as e:  # report and go on with the next group
                check(test.__name__, False, "%s: %s" % (type(e).__name__, e))
    finally:
        if keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
