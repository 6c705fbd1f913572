"""aiosmtpd server for scripts/interop.

Listens on 127.0.0.1 twice: SMTP with STARTTLS required before MAIL and AUTH,
and implicit TLS. Both offer AUTH PLAIN and LOGIN (one account: the user and
password come from the environment, never from the command line) and
SMTPUTF8. Each message is written to DUMP_DIR as N.eml (the bytes received
after DATA, dot-unstuffed, line endings as sent) and then N.env (the
envelope, one "key value" per line), so a reader that sees N.env also sees
the whole N.eml.

Usage: aiosmtpd_server.py STARTTLS_PORT TLS_PORT CERT KEY DUMP_DIR
Environment: INTEROP_USER, INTEROP_PASSWORD.
"""

import itertools
import logging
import os
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SIZE_LIMIT = 1048576


class Dump:
    """Writes every message and its envelope to the dump directory."""

    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # One recipient is refused (the "1 of 3 RCPT refused" rows).
        if address == "refused@example.net":
            return "550 5.1.1 <refused@example.net>: recipient refused"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            n = next(self.counter)
        base = os.path.join(self.directory, str(n))
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        lines = ["mail_from " + envelope.mail_from]
        lines += ["mail_option " + o for o in envelope.mail_options]
        lines += ["rcpt_to " + r for r in envelope.rcpt_tos]
        tls = server.transport.get_extra_info("ssl_object") is not None
        lines.append("tls " + ("yes" if tls else "no"))
        lines.append("auth " + ("yes" if session.authenticated else "no"))
        with open(base + ".env.tmp", "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(base + ".env.tmp", base + ".env")
        return "250 2.0.0 Message accepted"


class Accounts:
    """Accepts exactly one user name and password."""

    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        # handled=False: aiosmtpd answers 535 itself on failure.
        return AuthResult(success=ok, handled=False)


def main():
    # aiosmtpd itself warns on every successful AUTH that Session.login_data,
    # which it sets, is deprecated: keep the log for real problems.
    logging.getLogger("mail.log").addFilter(
        lambda record: "login_data is deprecated" not in record.getMessage()
    )
    starttls_port, tls_port, cert, key, dump_dir = sys.argv[1:6]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = Dump(dump_dir)
    accounts = Accounts(os.environ["INTEROP_USER"], os.environ["INTEROP_PASSWORD"])
    common = dict(
        hostname="127.0.0.1",
        server_hostname="aiosmtpd.interop.test",
        authenticator=accounts,
        enable_SMTPUTF8=True,
        data_size_limit=SIZE_LIMIT,
        decode_data=False,
    )
    controllers = [
        Controller(
            handler,
            port=int(starttls_port),
            tls_context=context,
            require_starttls=True,
            auth_require_tls=True,
            **common,
        ),
        Controller(handler, port=int(tls_port), ssl_context=context, **common),
    ]
    for c in controllers:
        c.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("aiosmtpd ready", flush=True)
    stop.wait()
    for c in controllers:
        c.stop()


if __name__ == "__main__":
    main()
