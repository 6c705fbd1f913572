"""aiosmtpd as the real server of smtp-bench's TLS rows.

Listens on 127.0.0.1:PORT with STARTTLS required before MAIL and AUTH, offers
AUTH PLAIN and LOGIN and accepts any credentials, and discards every message.
Prints "listening on 127.0.0.1:PORT" once it accepts connections, then serves
until SIGTERM or SIGINT.

Usage: aiosmtpd_sink.py PORT CHAIN_PEM KEY_PEM
"""

import logging
import signal
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Discard:
    """Accepts every message and keeps nothing."""

    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 Ok: queued"


def accept_any(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=True)


def main():
    # aiosmtpd warns on every successful AUTH that Session.login_data, which it
    # sets itself, is deprecated.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    port, chain, key = sys.argv[1:4]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key)
    controller = Controller(
        Discard(),
        hostname="127.0.0.1",
        port=int(port),
        server_hostname="aiosmtpd.bench.example",
        tls_context=context,
        require_starttls=True,
        auth_require_tls=True,
        authenticator=accept_any,
        decode_data=False,
    )
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"listening on 127.0.0.1:{port}", flush=True)
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
