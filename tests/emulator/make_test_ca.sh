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
#   expired.pem, expired.key     signed by ca, SAN DNS:localhost, IP:127.0.0.1, validity 2020-01-01..2020-01-02
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
FILES="ca.key ca.pem other-ca.key other-ca.pem server.key server.pem
       wronghost.key wronghost.pem expired.key expired.pem"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# Serialise concurrent runs on the same directory so the published files
# always come from one run.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$OUT/.mkca.lock"
    flock 9
fi

all_present=1
for f in $FILES; do
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

# A server certificate's extension section: $1 = section, $2 = subjectAltName.
server_ext() {
    printf '\n[ %s ]\n' "$1"
    printf '%s\n' "basicConstraints = critical, CA:FALSE" \
        "keyUsage = critical, digitalSignature" "extendedKeyUsage = serverAuth" \
        "subjectKeyIdentifier = hash" "authorityKeyIdentifier = keyid" \
        "subjectAltName = $2"
}

# Extension sections of the CA and leaf certificates.
{
    printf '%s\n' "[ v3_ca ]" "basicConstraints = critical, CA:TRUE" \
        "keyUsage = critical, keyCertSign, cRLSign" "subjectKeyIdentifier = hash"
    server_ext v3_server "DNS:localhost, DNS:verify.ptv.test, IP:127.0.0.1"
    server_ext v3_wronghost "DNS:wrong.example"
    server_ext v3_expired "DNS:localhost, IP:127.0.0.1"
} >"$WORK/ext.cnf"

# A root CA: $1 = name, $2 = common name.
root_ca() {
    genkey "$WORK/$1.key"
    run "$OPENSSL" req -new -x509 -key "$WORK/$1.key" -sha256 -days 2 \
        -subj "/CN=$2" -config "$WORK/ext.cnf" -extensions v3_ca -out "$WORK/$1.pem"
}
root_ca ca "pam_twilio_verify test CA"
# Unrelated root CA with the same subject shape.
root_ca other-ca "pam_twilio_verify unrelated test CA"

# A leaf's key and signing request: $1 = name.
request() {
    genkey "$WORK/$1.key"
    run "$OPENSSL" req -new -key "$WORK/$1.key" -subj "/CN=$1" -out "$WORK/$1.csr"
}

# Leaf signed by the test CA: $1 = name, $2 = extension section.
leaf() {
    request "$1"
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
EOF
request expired
run "$OPENSSL" ca -batch -notext -config "$WORK/ca.cnf" \
    -extfile "$WORK/ext.cnf" -extensions v3_expired \
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
for f in $FILES; do
    mv -f "$WORK/$f" "$OUT/$f"
done
exit 0
