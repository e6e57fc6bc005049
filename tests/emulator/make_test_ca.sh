#!/bin/sh
# Creates a throwaway test PKI for the Verify emulator.
#
#   make_test_ca.sh OUTDIR
#
# Produces in OUTDIR:
#   ca.pem, ca.key               test root CA (2 days validity)
#   server.pem, server.key       signed by ca, SAN DNS:localhost, DNS:verify.ptv.test, IP:127.0.0.1
#   other-ca.pem, other-ca.key   unrelated root CA (for "untrusted CA" tests)
#   wronghost.pem, wronghost.key signed by ca, SAN DNS:wrong.example only
#   expired.pem, expired.key     signed by ca, SAN as server, validity 2020-01-01..2020-01-02
#
# All keys are EC P-256. Quiet on success, non-zero exit on any failure.
# Idempotent: if every output already exists and server.pem still verifies
# against ca.pem, nothing is regenerated.

set -eu

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

OUT=$1
OPENSSL=${OPENSSL:-openssl}

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# Serialise concurrent runs on the same directory so the published files
# always come from one run.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$OUT/.mkca.lock"
    flock 9
fi

all_present=1
for f in ca.pem ca.key server.pem server.key other-ca.pem other-ca.key \
         wronghost.pem wronghost.key expired.pem expired.key; do
    [ -s "$OUT/$f" ] || all_present=0
done
if [ "$all_present" = 1 ] && \
   "$OPENSSL" verify -CAfile "$OUT/ca.pem" "$OUT/server.pem" >/dev/null 2>&1; then
    exit 0
fi

WORK=$(mktemp -d "$OUT/.mkca.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

log="$WORK/openssl.log"
run() {
    if ! "$@" >>"$log" 2>&1; then
        echo "make_test_ca.sh: command failed: $*" >&2
        cat "$log" >&2
        exit 1
    fi
}

genkey() {
    run "$OPENSSL" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -pkeyopt ec_param_enc:named_curve -out "$1"
    chmod 600 "$1"
}

# Extension sections shared by the CA and leaf certificates.
cat >"$WORK/ext.cnf" <<'EOF'
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ v3_server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, DNS:verify.ptv.test, IP:127.0.0.1

[ v3_wronghost ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:wrong.example
EOF

# Root CA.
genkey "$WORK/ca.key"
run "$OPENSSL" req -new -x509 -key "$WORK/ca.key" -sha256 -days 2 \
    -subj "/CN=pam_twilio_verify test CA" \
    -config "$WORK/ext.cnf" -extensions v3_ca -out "$WORK/ca.pem"

# Unrelated root CA with the same subject shape.
genkey "$WORK/other-ca.key"
run "$OPENSSL" req -new -x509 -key "$WORK/other-ca.key" -sha256 -days 2 \
    -subj "/CN=pam_twilio_verify unrelated test CA" \
    -config "$WORK/ext.cnf" -extensions v3_ca -out "$WORK/other-ca.pem"

# Leaf signed by the test CA: $1 = name, $2 = extension section.
leaf() {
    genkey "$WORK/$1.key"
    run "$OPENSSL" req -new -key "$WORK/$1.key" -subj "/CN=$1" -out "$WORK/$1.csr"
    run "$OPENSSL" x509 -req -in "$WORK/$1.csr" -CA "$WORK/ca.pem" \
        -CAkey "$WORK/ca.key" -set_serial "0x$("$OPENSSL" rand -hex 16)" \
        -sha256 -days 2 -extfile "$WORK/ext.cnf" -extensions "$2" \
        -out "$WORK/$1.pem"
}
leaf server v3_server
leaf wronghost v3_wronghost

# Expired leaf: "x509 -req" cannot set a start date in the past on the 3.0
# command line, so use a minimal "ca" setup with explicit start and end dates.
mkdir -p "$WORK/ca-db/new"
: >"$WORK/ca-db/index.txt"
"$OPENSSL" rand -hex 16 >"$WORK/ca-db/serial"
cat >"$WORK/ca.cnf" <<EOF
[ ca ]
default_ca = test_ca

[ test_ca ]
dir = $WORK/ca-db
database = \$dir/index.txt
new_certs_dir = \$dir/new
serial = \$dir/serial
certificate = $WORK/ca.pem
private_key = $WORK/ca.key
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no

[ policy_any ]
commonName = supplied

[ v3_server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:localhost, IP:127.0.0.1
EOF
genkey "$WORK/expired.key"
run "$OPENSSL" req -new -key "$WORK/expired.key" -subj "/CN=expired" -out "$WORK/expired.csr"
run "$OPENSSL" ca -batch -notext -config "$WORK/ca.cnf" -extensions v3_server \
    -startdate 20200101000000Z -enddate 20200102000000Z \
    -in "$WORK/expired.csr" -out "$WORK/expired.pem"

# Sanity checks before publishing anything.
run "$OPENSSL" verify -CAfile "$WORK/ca.pem" "$WORK/server.pem"
run "$OPENSSL" verify -CAfile "$WORK/ca.pem" "$WORK/wronghost.pem"
if "$OPENSSL" verify -CAfile "$WORK/ca.pem" "$WORK/expired.pem" >/dev/null 2>&1; then
    echo "make_test_ca.sh: expired.pem unexpectedly verifies" >&2
    exit 1
fi

# Publish (rename within the same directory).
for f in ca.key ca.pem other-ca.key other-ca.pem server.key server.pem \
         wronghost.key wronghost.pem expired.key expired.pem; do
    mv -f "$WORK/$f" "$OUT/$f"
done
exit 0
