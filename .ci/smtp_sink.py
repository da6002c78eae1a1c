"""SMTP sink for the tests (aiosmtpd): every message received is written to a folder.

Two listeners on 127.0.0.1: ``--port`` (plain, offers STARTTLS) and ``--tls-port`` (implicit
TLS), both with AUTH PLAIN/LOGIN for ``--user``/``--password`` (not required: a client that
does not authenticate may still send). A failed AUTH answers
``AuthResult(success=False, handled=False)`` so aiosmtpd replies 535 (``handled=True``
would leave the client waiting). Each message lands atomically as ``<folder>/<n>.eml``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import ssl
import threading
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Maildir:
    """Writes each message's raw bytes to the folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.counter = itertools.count(len(list(folder.glob("*.eml"))))
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        """Keep the message; 250."""
        with self.lock:
            n = next(self.counter)
        temporary = self.folder / f".{os.getpid()}-{n}.tmp"
        temporary.write_bytes(envelope.original_content or envelope.content)
        temporary.rename(self.folder / f"{n:08d}-{os.getpid()}.eml")
        return "250 Message accepted for delivery"


def authenticator(user: str, password: str) -> Any:
    """AUTH PLAIN/LOGIN accepting only ``user``/``password``."""

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if (
            isinstance(data, LoginPassword)
            and data.login.decode() == user
            and (data.password.decode() == password)
        ):
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    return check


def main() -> None:
    """Run both listeners until SIGTERM."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    handler = Maildir(args.folder)
    common: dict[str, Any] = {
        "hostname": "127.0.0.1",
        "authenticator": authenticator(args.user, args.password),
        "auth_require_tls": False,
        "auth_required": False,
    }
    plain = Controller(handler, port=args.port, tls_context=context, **common)
    implicit = Controller(handler, port=args.tls_port, ssl_context=context, **common)
    plain.start()
    implicit.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    plain.stop()
    implicit.stop()


if __name__ == "__main__":
    main()
