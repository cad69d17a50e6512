#!/usr/bin/python3
"""Loopback SMTP sink for the notify tests (Debian's python3-aiosmtpd).

Each message is written to DIR as NNNNNN.eml (raw, as received) and NNNNNN.json (what a
mail client sees: decoded subject, headers, decoded text body), atomically, numbered in
arrival order. Optional STARTTLS (required when given) and AUTH LOGIN/PLAIN.
"""
import argparse
import email
import email.policy
import json
import os
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, directory):
        self.dir = directory
        self.n = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        info = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "subject": str(msg["subject"]),
            "raw_headers": raw.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace"),
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "content_type": msg.get_content_type(),
            "charset": msg.get_content_charset(),
            "cte": str(msg["content-transfer-encoding"]),
            "mime_version": str(msg["mime-version"]),
            "message_id": str(msg["message-id"]),
            "date": str(msg["date"]),
            "body": body.get_content() if body is not None else None,
            "tls": session.ssl is not None,
            "auth": session.authenticated,
        }
        with self.lock:
            self.n += 1
            n = self.n
        for ext, data in (("eml", raw), ("json", json.dumps(info, ensure_ascii=False).encode())):
            tmp = os.path.join(self.dir, ".%06d.%s.tmp" % (n, ext))
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, os.path.join(self.dir, "%06d.%s" % (n, ext)))
        return "250 OK"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--auth", help="user:password required")
    a = ap.parse_args()
    kwargs = {}
    if a.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)
        kwargs.update(tls_context=ctx, require_starttls=True)
    if a.auth:
        user, password = a.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
            return AuthResult(success=ok)

        kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=bool(a.cert))
    controller = Controller(Sink(a.dir), hostname="127.0.0.1", port=a.port, **kwargs)
    controller.start()
    print("READY", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        signal.pause()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
