#!/usr/bin/python3
"""One login through Twilio's Python SDK (Debian's python3-twilio), the way a
PAM exec script would do it: one process per login, create a verification,
read the code (here from the emulator's outbox), check it.

Usage: sdk_login.py API_URL CA_FILE ACCOUNT_SID AUTH_TOKEN SERVICE_SID PHONE CONTROL_PORT
Exit status 0 when the check answers "approved".
"""

import json
import sys
import urllib.request

from twilio.rest import Client


def code_for(control_port, phone):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open("http://127.0.0.1:%d/outbox" % control_port, timeout=10) as r:
        outbox = json.loads(r.read().decode("utf-8"))
    for m in reversed(outbox):
        if m.get("to") == phone:
            return m["code"]
    return None


def main():
    api_url, ca_file, account, token, service, phone, control = sys.argv[1:8]
    client = Client(account, token)
    # python3-twilio 7.7.1 does not read REQUESTS_CA_BUNDLE: the CA and the
    # base URL are set on the client itself.
    client.http_client.session.verify = ca_file
    client.verify.base_url = api_url
    svc = client.verify.v2.services(service)
    v = svc.verifications.create(to=phone, channel="sms")
    code = code_for(int(control), phone)
    check = svc.verification_checks.create(verification_sid=v.sid, code=code)
    return 0 if check.status == "approved" else 1


if __name__ == "__main__":
    sys.exit(main())
