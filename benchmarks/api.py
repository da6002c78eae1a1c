"""Control-plane API under load over loopback: PostgreSQL, Redis rate limiting, wrk.

Routes: authenticated ``GET /v1/projects/{id}`` and ``GET /v1/projects?limit=50`` (with 60
projects in the organization). Each is measured twice on the same server code, database and
data: as shipped (JWT verification, the member's session and role looked up, a Redis token
bucket per caller), and with authentication and rate limiting switched off (the principal
dependency replaced by a fixed member; the session still scoped to the tenant), so that their
cost is a measured ratio. One uvicorn worker; wrk with 2 threads and 64 connections shares
the same 2 cores, so both sides compete for CPU, as they would on a small box.

Needs ``source .ci/services.sh`` (PostgreSQL and Redis URLs) and ``wrk`` (Debian package).

    .venv/bin/python benchmarks/api.py [--seconds 10] [--connections 64]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fastapi import FastAPI  # noqa: E402

from control_api.app import create_app  # noqa: E402
from control_api.deps import ContextDep, Principal, SessionDep, get_principal  # noqa: E402
from control_api.rbac import ROLE_PERMISSIONS, Role  # noqa: E402
from driftline.settings import load_settings  # noqa: E402
from storage import db_migrations  # noqa: E402
from storage.db import create_db_engine, normalize_url  # noqa: E402
from storage.tenancy import scope_to  # noqa: E402

SECRET = "bench-" + "s" * 42
PASSWORD = "a long enough password"


def app_without_auth() -> FastAPI:
    """The same app, its principal fixed (no JWT, no rate limit); for uvicorn --factory."""
    app = create_app(load_settings())
    org_id = os.environ["BENCH_ORG_ID"]

    def fixed(ctx: ContextDep, session: SessionDep) -> Principal:
        scope_to(session, org_id)
        return Principal(
            kind="user",
            id="bench",
            org_id=org_id,
            role=Role.OWNER,
            permissions=ROLE_PERMISSIONS[Role.OWNER],
        )

    app.dependency_overrides[get_principal] = fixed
    return app


def app_with_auth() -> FastAPI:
    """The app as shipped; for uvicorn --factory."""
    return create_app(load_settings())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database(postgres_url: str) -> str:
    admin = create_db_engine(postgres_url)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = normalize_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    db_migrations.upgrade(url)
    return url


def _serve(factory: str, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", f"benchmarks.api:{factory}",
         "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"],
        env=env, cwd=HERE.parent,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit(f"{factory} did not start")
        time.sleep(0.3)


def _wrk(url: str, token: str, seconds: int, connections: int) -> tuple[float, float, float]:
    """Requests/s, p50 ms and p99 ms from wrk --latency."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise SystemExit(f"wrk saw error responses:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+\w+)", out, flags=re.MULTILINE))
    return rate, _ms(percentiles["50"]), _ms(percentiles["99"])


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    postgres, redis_url = (
        os.environ.get(k) for k in ("DRIFTLINE_TEST_POSTGRES_URL", "DRIFTLINE_TEST_REDIS_URL")
    )
    if not postgres or not redis_url:
        raise SystemExit("run `source .ci/services.sh` first (PostgreSQL and Redis URLs)")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")} | {
        "DRIFTLINE_DATABASE_URL": _database(postgres),
        "DRIFTLINE_REDIS_URL": redis_url,
        "DRIFTLINE_REDIS_KEY_PREFIX": f"bench{uuid.uuid4().hex[:6]}:",
        "DRIFTLINE_JWT_SECRET": SECRET,
        "DRIFTLINE_SECRETS_KEY": "k6nLqyTRV-XnL2u1SbtcAVvtpTnrl7jfgeQKNLCtATQ=",
        "DRIFTLINE_DATA_DIR": f"/tmp/driftline-bench-{uuid.uuid4().hex[:6]}",
        "DRIFTLINE_RATE_LIMIT_PER_SECOND": "1000000",  # evaluated on every request, never hit
        "DRIFTLINE_RATE_LIMIT_BURST": "1000000",
        "DRIFTLINE_ENGINE_EMBEDDED": "false",
        "DRIFTLINE_ARGON2_TIME_COST": "1",
        # FastAPI runs sync routes on 40 threads: a pool that can serve them all
        "DRIFTLINE_DB_POOL_SIZE": "40",
        "DRIFTLINE_DB_MAX_OVERFLOW": "10",
    }
    port = _free_port()
    server = _serve("app_with_auth", env, port)
    base = f"http://127.0.0.1:{port}"
    try:
        signup = httpx.post(
            f"{base}/v1/auth/signup",
            json={"org_name": "Bench", "email": "bench@example.com", "password": PASSWORD},
        ).json()
        token = httpx.post(
            f"{base}/v1/auth/token",
            data={"username": "bench@example.com", "password": PASSWORD},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        ids = [
            httpx.post(f"{base}/v1/projects", headers=headers, json={"name": f"p{i}"}).json()["id"]
            for i in range(60)
        ]
        routes = {
            "GET /v1/projects/{id}": f"{base}/v1/projects/{ids[0]}",
            "GET /v1/projects?limit=50": f"{base}/v1/projects?limit=50",
        }
        shipped = {
            name: _wrk(url, token, args.seconds, args.connections) for name, url in routes.items()
        }
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    env["BENCH_ORG_ID"] = signup["org_id"]
    server = _serve("app_without_auth", env, port)
    try:
        bare = {
            name: _wrk(url, token, args.seconds, args.connections) for name, url in routes.items()
        }
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print(
        f"API on PostgreSQL + Redis, one uvicorn worker, wrk -t2 -c{args.connections} "
        f"-d{args.seconds}s on the same 2 cores (target: >= 1,500 req/s, p99 <= 50 ms)"
    )
    print(f"{'route':<28} {'variant':<26} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name in routes:
        for variant, (rate, p50, p99) in (
            ("auth + rate limit", shipped[name]),
            ("no auth, no rate limit", bare[name]),
        ):
            print(f"{name:<28} {variant:<26} {rate:>9,.0f} {p50:>8.1f} {p99:>8.1f}")
        print(
            f"{'':<28} {'overhead (bare / shipped)':<26} {bare[name][0] / shipped[name][0]:>8.2f}x"
        )


if __name__ == "__main__":
    main()
