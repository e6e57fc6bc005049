#!/usr/bin/python3
"""Runs last in the suite: scans everything the module logged or prompted
during the run for the tests' credentials, full phone numbers and codes.

Where the module's output is kept:
  - BUILD/Testing/Temporary/LastTest.log.tmp (LastTest.log when not run
    by ctest): the output of every test of the current ctest run (pamtester, demo and sshd transcripts, failures of
    the PAM-level tests);
  - *.log files under BUILD/tests (work directories of the load and
    memory tests: one log per concurrent login, the loop's module log);
  - every file under PTV_TEST_LOG_DIR (BUILD/test-logs), where a test may
    drop its module output.
Only module lines are examined: lines naming the module or written by
pam_syslog under pam_wrapper ("SYSLOG("), and the module's prompts. The
emulator's own log and the demo's "SMS" legitimately show numbers and
codes and are not module output.

What must never appear in those lines:
  - the fixed test credentials (listed below, plus kToken / kApiSecret /
    auth_token string constants found in the test sources);
  - every full test number (with or without "+", as a digit run of its
    own);
  - per-run secrets that tests recorded in PTV_TEST_SECRETS_DIR
    (BUILD/test-secrets/*.txt, lines "token X", "number X", "code X").

Before scanning, the detector is checked on planted lines: a scanner that
cannot find a planted token fails instead of passing.

Usage: scan_secrets.py BUILD_DIR TESTS_SOURCE_DIR [--list]
Exit: 0 clean, 1 a secret was found (or the self-check failed), 77 skipped.
"""

import glob
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import ptv_harness as h  # noqa: E402

FIXED_TOKENS = [
    "tok3n-must-never-be-logged-5f2a9c",   # pam.module auth token
    "api-secret-never-logged-77e1",        # pam.module API key secret
    "loop-token-never-logged-3c9d1e",      # memory.loop / memory.valgrind
    "authTOKENvalue_7c1e5a9b3d",           # unit and fuzz authenticate
    "apiSECRETvalue_4f2d8c6a1e",
    "t0kenVALUEs3cret_4f2a9c81e7d3b6a5",   # unit config
    "Sup3rS3cretT0kenValue",
]
FIXED_NUMBERS = [
    "+15551230001", "+15551230002", "+15551230005", "+447700900055",
    "+15551230006", "+15550104567", "+15551230042",
]
# Lines that are the module's: its syslog identity, pam_syslog through
# pam_wrapper, and its prompts and retry notes.
MODULE_LINE = re.compile(
    r"pam_twilio_verify|SYSLOG\(|code sent to|Code from the call|"
    r"Wrong code;|Codes are 4 to 10 digits")
# Numbers that are not the module's to hide: process ids, the elapsed
# time of the outcome line, SIDs.
NOISE = re.compile(r"\(\d+\)|\[\d+\]|elapsed_ms=\d+|\b(?:VE|VA|AC|SK)[0-9a-fA-F]{32}\b")
DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])\d{4,15}(?![0-9A-Za-z])")
SOURCE_SECRET = re.compile(
    r'\b(?:kToken|kApiSecret|kApiKeySecret|auth_token|api_key_secret)\s*=\s*'
    r'"([A-Za-z0-9_.-]{8,})"')


def source_secrets(tests_dir):
    found = set()
    for path in glob.glob(os.path.join(tests_dir, "**", "*.cpp"), recursive=True):
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        for m in SOURCE_SECRET.finditer(text):
            v = m.group(1)
            if "XXXX" not in v and "CHANGE_ME" not in v:
                found.add(v)
    return found


def recorded_secrets(secrets_dir):
    tokens, numbers, codes = set(), set(), set()
    if not secrets_dir or not os.path.isdir(secrets_dir):
        return tokens, numbers, codes
    for path in glob.glob(os.path.join(secrets_dir, "*.txt")):
        with open(path, errors="replace") as f:
            for line in f:
                kind, _, value = line.strip().partition(" ")
                if not value:
                    continue
                {"token": tokens, "number": numbers, "code": codes}.get(
                    kind, set()).add(value)
    return tokens, numbers, codes


def sources(build_dir, log_dir):
    # While ctest runs, the run's log is LastTest.log.tmp (renamed to
    # LastTest.log at the end); LastTest.log is then the previous run's.
    temp = os.path.join(build_dir, "Testing", "Temporary")
    current = os.path.join(temp, "LastTest.log.tmp")
    if os.path.exists(current):
        files = [current]
    else:
        files = sorted(glob.glob(os.path.join(temp, "LastTest*.log")))
    files += sorted(glob.glob(os.path.join(build_dir, "tests", "**", "*.log"),
                              recursive=True))
    if log_dir and os.path.isdir(log_dir):
        for root, _dirs, names in os.walk(log_dir):
            files += sorted(os.path.join(root, n) for n in names)
    return files


class Scanner:
    def __init__(self, tokens, numbers, codes):
        self.tokens = sorted(t for t in tokens if t)
        # A number as "+digits" or as its digit run alone.
        self.number_digits = {n.lstrip("+"): n for n in numbers if n}
        self.codes = set(codes)

    def scan_line(self, line):
        """Returns the findings of one line (empty when clean)."""
        if not MODULE_LINE.search(line):
            return []
        hits = ["token %s" % t for t in self.tokens if t in line]
        clean = NOISE.sub(" ", line)
        for run in DIGIT_RUN.findall(clean):
            if run in self.number_digits:
                hits.append("full number %s" % self.number_digits[run])
            elif run in self.codes:
                hits.append("code %s" % run)
        return hits


def self_check(scanner):
    """The detector must catch planted secrets in module lines."""
    token = scanner.tokens[0]
    number = next(iter(scanner.number_digits.values()))
    planted = [
        "PWRAP_ERROR[<unknown> (123)] - SYSLOG(3): user=x token=%s" % token,
        "sshd[42]: pam_twilio_verify(sshd:auth): sent to %s" % number,
        "SMS code sent to %s: " % number,
    ]
    clean = [
        "PWRAP_DEBUG[<unknown> (4567)] - SYSLOG(6): user=alice "
        "phone=+1******0001 sid=VE0123456789abcdef0123456789abcdef "
        "result=approved attempts=1 elapsed_ms=15551230001",
        "emulator: POST /v2/Services/VA.../Verifications To=%s" % number,
    ]
    problems = []
    for line in planted:
        if not scanner.scan_line(line):
            problems.append("planted line not detected: %r" % line)
    for line in clean:
        if scanner.scan_line(line):
            problems.append("clean line flagged: %r" % line)
    return problems


def main():
    h.require_root("the logs of the suite's root-only tests are root's")
    build_dir = os.path.abspath(sys.argv[1])
    tests_dir = os.path.abspath(sys.argv[2])
    log_dir = os.environ.get("PTV_TEST_LOG_DIR")
    secrets_dir = os.environ.get("PTV_TEST_SECRETS_DIR")

    tokens = set(FIXED_TOKENS) | source_secrets(tests_dir)
    numbers = set(FIXED_NUMBERS)
    rec_tokens, rec_numbers, codes = recorded_secrets(secrets_dir)
    tokens |= rec_tokens
    numbers |= rec_numbers
    scanner = Scanner(tokens, numbers, codes)

    problems = self_check(scanner)
    if not h.check("self-check: the detector finds planted secrets and "
                   "passes clean lines", not problems, "; ".join(problems)):
        return h.summary()

    files = sources(build_dir, log_dir)
    findings = []
    module_lines = 0
    for path in files:
        try:
            with open(path, "r", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    if MODULE_LINE.search(line):
                        module_lines += 1
                    for hit in scanner.scan_line(line):
                        findings.append("%s:%d: %s in: %s"
                                        % (path, lineno, hit, line.strip()[:300]))
        except OSError as e:
            print("note: cannot read %s: %s" % (path, e))
    print("scanned %d files, %d module lines, for %d tokens, %d numbers, "
          "%d codes" % (len(files), module_lines, len(scanner.tokens),
                        len(scanner.number_digits), len(scanner.codes)))
    if "--list" in sys.argv:
        for path in files:
            print("  %s (%d bytes)" % (path, os.path.getsize(path)))
    for f in findings[:50]:
        print("  " + f)
    if len(findings) > 50:
        print("... and %d more" % (len(findings) - 50))
    if module_lines == 0:
        print("note: no module lines found (was the suite run before this test?)")
    h.check("no test secret in the module's lines", not findings,
            "%d found" % len(findings))
    return h.summary()


if __name__ == "__main__":
    sys.exit(main())
