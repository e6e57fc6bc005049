#!/bin/bash
# The Debian package's whole life on this machine, as an administrator
# lives it: build the .deb from a copy of the source tree, lintian, install,
# the sshd end-to-end test against the installed module, enable the
# pam-auth-update profile and log in through the machine's own sshd PAM
# service, disable, purge, and check that nothing is left behind.
#
# Usage: test_package_lifecycle.sh SOURCE_DIR      (as root)
set -euo pipefail

src=$(cd "$1" && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "skipped: installing a package needs root"
  exit 77
fi

passed=0
failed=0
pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { # check NAME COMMAND...
  local name=$1; shift
  if "$@"; then pass "$name"; else fail "$name"; fi
}

work=$(mktemp -d /tmp/ptv-package.XXXXXX)
installed=no
cleanup() {
  local rc=$?
  if [ "$installed" = yes ]; then
    # Never leave the profile enabled or the package installed behind.
    pam-auth-update --package --remove twilio-verify >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq libpam-twilio-verify >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

module=/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/security/pam_twilio_verify.so
conffile=/etc/security/pam_twilio_verify.conf
profile=/usr/share/pam-configs/twilio-verify

if dpkg -s libpam-twilio-verify >/dev/null 2>&1; then
  echo "libpam-twilio-verify is already installed; refusing to test over it" >&2
  exit 1
fi
cp -a /etc/pam.d "$work/pam.d.before"

# --- build, from a copy so that nothing lands beside the source tree
mkdir "$work/src"
git -C "$src" ls-files -co --exclude-standard -z |
  (cd "$src" && tar --null -T - -cf -) | tar -C "$work/src" -xf -
echo "building the package..."
# Both cores (debhelper builds serially unless told), and nocheck: the
# unit tests have run twice already in this suite.
if (cd "$work/src" && DEB_BUILD_OPTIONS="parallel=$(nproc) nocheck ${DEB_BUILD_OPTIONS:-}" \
      dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
  pass "dpkg-buildpackage -us -uc -b"
else
  tail -40 "$work/build.log"
  fail "dpkg-buildpackage -us -uc -b"
  echo "$passed passed, $failed failed"
  exit 1
fi
deb=$(ls "$work"/libpam-twilio-verify_*.deb)
changes=$(ls "$work"/*.changes)

# --- lintian: no errors, no warnings
if lintian --fail-on error,warning "$changes" >"$work/lintian.log" 2>&1; then
  pass "lintian: no errors or warnings"
else
  cat "$work/lintian.log"
  fail "lintian: no errors or warnings"
fi
[ -s "$work/lintian.log" ] && sed 's/^/  lintian: /' "$work/lintian.log"

# --- install
DEBIAN_FRONTEND=noninteractive dpkg -i "$deb" >"$work/install.log" 2>&1 && installed=yes
check "dpkg -i installs the package" test "$installed" = yes
check "module installed at $module" test -f "$module"
check "conffile is root:root 0600" \
  test "$(stat -c '%U:%G %a' "$conffile" 2>/dev/null)" = "root:root 600"
check "conffile is registered as a conffile" \
  sh -c "dpkg-query -W -f='\${Conffiles}' libpam-twilio-verify | grep -q '$conffile'"
check "pam-auth-update profile installed" test -f "$profile"
check "installing enables nothing (Default: no)" \
  sh -c "! grep -rq pam_twilio_verify /etc/pam.d"
check "man pages installed" sh -c \
  "test -f /usr/share/man/man8/pam_twilio_verify.8.gz && test -f /usr/share/man/man5/pam_twilio_verify.conf.5.gz"
helper=/usr/libexec/pam_twilio_verify/twilio-verify-helper
check "helper installed at $helper, root:root 0755, not on PATH" sh -c \
  "test \"\$(stat -c '%U:%G %a' $helper 2>/dev/null)\" = 'root:root 755' && ! command -v twilio-verify-helper"
check "the helper refuses to run from a terminal or without the module" \
  sh -c "! $helper </dev/null >/dev/null 2>&1"
check "the postinst made the state file (8 MiB + 4 KiB, 0600)" \
  test "$(stat -c '%U:%G %a %s' /var/lib/pam_twilio_verify/state.v1 2>/dev/null)" = "root:root 600 8392704"
admin=/usr/sbin/twilio-verify-admin
check "twilio-verify-admin installed at $admin with its man page" sh -c \
  "test \"\$(stat -c '%U:%G %a' $admin 2>/dev/null)\" = 'root:root 755' && test -f /usr/share/man/man8/twilio-verify-admin.8.gz"
# The shipped template holds placeholders: check fails and names the setting.
check "twilio-verify-admin check on the shipped template fails, naming the placeholder" sh -c \
  "$admin check --quiet > $work/admin-check.log 2>&1; test \$? -eq 1 && grep -q 'placeholder' $work/admin-check.log"
check "twilio-verify-admin status works on the installed state store" \
  sh -c "$admin status >/dev/null 2>&1 || test \$? -eq 1"
check "the module links neither libcurl nor libldap nor a TLS library" \
  sh -c "! ldd $module | grep -Eq 'libcurl|libldap|libssl|libgnutls|libcrypto'"

# --- the sshd end-to-end test against the installed module
if /usr/bin/python3 "$src/tests/sshd/test_sshd.py" --module pam_twilio_verify.so >"$work/sshd.log" 2>&1; then
  pass "sshd end-to-end test against the installed module"
else
  cat "$work/sshd.log"
  fail "sshd end-to-end test against the installed module"
fi
grep -E "passed, .* failed" "$work/sshd.log" | sed 's/^/  sshd: /' || true

# --- pam-auth-update --enable, then a real login through /etc/pam.d/sshd
if /usr/bin/python3 "$src/tests/sshd/test_sshd.py" --system-pam >"$work/system.log" 2>&1; then
  pass "pam-auth-update --enable twilio-verify: ssh login asks for the code"
else
  cat "$work/system.log"
  fail "pam-auth-update --enable twilio-verify: ssh login asks for the code"
fi
check "the profile is disabled again" sh -c "! grep -rq pam_twilio_verify /etc/pam.d"
# The logins above kept their send counts in the default state directory,
# which the postinst made; the package itself ships no file there.
check "the state directory is root:root 0700" \
  test "$(stat -c '%U:%G %a' /var/lib/pam_twilio_verify 2>/dev/null)" = "root:root 700"

# --- purge and leftovers
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq libpam-twilio-verify >"$work/purge.log" 2>&1 &&
  installed=no
check "apt-get purge removes the package" test "$installed" = no
check "no module file left" test ! -e "$module"
check "no conffile left" test ! -e "$conffile"
check "no pam-auth-update profile left" test ! -e "$profile"
check "no state directory left (postrm purge)" test ! -e /var/lib/pam_twilio_verify
check "no pam_twilio_verify in /etc/pam.d" sh -c "! grep -rq pam_twilio_verify /etc/pam.d"
if diff -r "$work/pam.d.before" /etc/pam.d >"$work/pam.d.diff" 2>&1; then
  pass "/etc/pam.d is exactly as it was before"
else
  cat "$work/pam.d.diff"
  fail "/etc/pam.d is exactly as it was before"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
