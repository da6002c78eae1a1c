"""Helpers of the tests that run Driftline's servers (`driftline up`, `api`) as child processes."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

import httpx


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(
    process: subprocess.Popen[str] | subprocess.Popen[bytes],
    base: str,
    output: Callable[[], str],
    timeout: float = 90.0,
) -> None:
    """Poll ``base``/healthz until it answers 200; fail with ``output()`` if the process ends."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, output()
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{base} was not healthy in {timeout:.0f} s"
        time.sleep(0.5)
