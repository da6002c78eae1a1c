"""Control-plane API under load over loopback: PostgreSQL, Redis rate limiting, wrk.

Routes: authenticated ``GET /v1/projects/{id}`` and ``GET /v1/projects?limit=50`` (with 60
projects in the organization). Each is measured twice on the same server code, database and
data: as shipped (JWT verification; the member's session and role and a token from its Redis
bucket in one Redis script, the database read only on a miss; the project or the page from the
Redis read cache as stored JSON; one JSON access line per request), and with authentication and
rate limiting switched off (:func:`control_api.deps.authenticate` replaced by a fixed member;
the session still scoped to the tenant, the read cache still used), so that their cost is a
measured ratio. The warm-up run before the measured ones fills the caches, so the figures are
those of cache hits: the steady state of a hot read. The server is uvicorn with ``--workers``
processes (what ``driftline api --workers N`` runs) and the default database pool; wrk with 2
threads and 64 connections shares the same 2 cores, so both sides compete for CPU, as on a
small box. Each figure is the median of ``--repeats`` runs; the load average is printed, since
other work on the machine moves the figures. So is the server's CPU time per request (user +
system of the uvicorn processes, from ``/proc``, over each run), which other work moves far
less.

Needs ``source .ci/services.sh`` (PostgreSQL and Redis URLs) and ``wrk`` (Debian package).

    .venv/bin/python benchmarks/api.py [--workers 1 2] [--seconds 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from fastapi import FastAPI  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from benchmarks.scratch import migrated_postgres  # noqa: E402
from control_api import deps  # noqa: E402
from control_api.app import create_app  # noqa: E402
from control_api.context import ApiContext  # noqa: E402
from control_api.deps import Principal  # noqa: E402
from control_api.observability import configure_logging  # noqa: E402
from control_api.rbac import ROLE_PERMISSIONS, Role  # noqa: E402
from driftline.settings import load_settings  # noqa: E402
from storage.tenancy import scope_to  # noqa: E402

SECRET = "bench-" + "s" * 42
PASSWORD = "a long enough password"
VARIANTS = {"app_with_auth": "auth + rate limit", "app_without_auth": "no auth, no rate limit"}
# requests/s, p50 ms, p99 ms, server CPU ms per request
Figures = tuple[float, float, float, float]


def app_without_auth() -> FastAPI:
    """The same app, its principal fixed (no JWT, no member check, no rate limit).

    For uvicorn --factory. :func:`control_api.deps.authenticate`, which every route's
    principal goes through, is replaced in this process (the server runs this variant
    alone): ``app.dependency_overrides`` would have FastAPI analyse the override again at
    every request (about 1 ms of CPU here), charged to this variant.
    """
    configure_logging()
    app = create_app(load_settings())
    org_id = os.environ["BENCH_ORG_ID"]

    async def fixed(ctx: ApiContext, session: Session, token: str | None) -> Principal:
        scope_to(session, org_id)
        return Principal(
            kind="user",
            id="bench",
            org_id=org_id,
            role=Role.OWNER,
            permissions=ROLE_PERMISSIONS[Role.OWNER],
        )

    deps.authenticate = fixed
    return app


def app_with_auth() -> FastAPI:
    """The app as shipped, JSON access log included; for uvicorn --factory."""
    configure_logging()
    return create_app(load_settings())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _serving(
    factory: str, env: dict[str, str], port: int, workers: int
) -> Iterator[subprocess.Popen[bytes]]:
    """uvicorn with ``workers`` processes on ``port``; its log (JSON lines) in the data dir."""
    log_path = Path(env["DRIFTLINE_DATA_DIR"]) / f"{factory}-{workers}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", f"benchmarks.api:{factory}",
             "--workers", str(workers), "--host", "127.0.0.1", "--port", str(port),
             "--no-access-log", "--log-level", "warning"],
            env=env, cwd=HERE.parent, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _healthy(port):
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"{factory} did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        time.sleep(workers - 1)  # the first worker answers; give the others their start
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its descendants (Linux ``/proc``)."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # the process ended meanwhile
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            times[int(entry.name)] = int(fields[11]) + int(fields[12])
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0)
        todo.extend(children.get(current, []))
    return total / os.sysconf("SC_CLK_TCK")


def _measure(
    process: subprocess.Popen[bytes], url: str, token: str, seconds: int, connections: int
) -> tuple[float, float, float, float]:
    """wrk's requests/s, p50 ms and p99 ms, and the server's CPU ms per request."""
    before = _cpu_seconds(process.pid)
    rate, p50, p99, count = _wrk(url, token, seconds, connections)
    return rate, p50, p99, (_cpu_seconds(process.pid) - before) * 1000 / count


def _wrk(url: str, token: str, seconds: int, connections: int) -> tuple[float, float, float, int]:
    """Requests/s, p50 ms, p99 ms and the number of requests from wrk --latency."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-H", f"Authorization: Bearer {token}", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if re.search(r"Non-2xx or 3xx responses: (\d+)", out) or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+\w+)", out, flags=re.MULTILINE))
    return rate, _ms(percentiles["50"]), _ms(percentiles["99"]), count


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _median(runs: list[Figures]) -> Figures:
    """The median of each figure (req/s, p50, p99, CPU ms) over the runs, taken separately."""
    rate, p50, p99, cpu = (statistics.median(column) for column in zip(*runs, strict=True))
    return rate, p50, p99, cpu


def _populate(base: str) -> tuple[str, str, dict[str, str]]:
    """Sign up, log in, create 60 projects: the organization id, a token and the routes."""
    signup = httpx.post(
        f"{base}/v1/auth/signup",
        json={"org_name": "Bench", "email": "bench@example.com", "password": PASSWORD},
    ).json()
    token = httpx.post(
        f"{base}/v1/auth/token", data={"username": "bench@example.com", "password": PASSWORD}
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
    return str(signup["org_id"]), str(token), routes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    postgres, redis_url = (
        os.environ.get(k) for k in ("DRIFTLINE_TEST_POSTGRES_URL", "DRIFTLINE_TEST_REDIS_URL")
    )
    if not postgres or not redis_url:
        raise SystemExit("run `source .ci/services.sh` first (PostgreSQL and Redis URLs)")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    data_dir = Path(f"/tmp/driftline-bench-{uuid.uuid4().hex[:6]}")
    port = _free_port()
    results: dict[tuple[int, str, str], Figures] = {}
    load_before = os.getloadavg()[0]
    with migrated_postgres(postgres, "bench") as database_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DRIFTLINE_")} | {
            "DRIFTLINE_DATABASE_URL": database_url,
            "DRIFTLINE_REDIS_URL": redis_url,
            "DRIFTLINE_REDIS_KEY_PREFIX": f"bench{uuid.uuid4().hex[:6]}:",
            "DRIFTLINE_JWT_SECRET": SECRET,
            "DRIFTLINE_SECRETS_KEY": "k6nLqyTRV-XnL2u1SbtcAVvtpTnrl7jfgeQKNLCtATQ=",
            "DRIFTLINE_DATA_DIR": str(data_dir),
            "DRIFTLINE_RATE_LIMIT_PER_SECOND": "1000000",  # evaluated on every request, never hit
            "DRIFTLINE_RATE_LIMIT_BURST": "1000000",
            "DRIFTLINE_ENGINE_EMBEDDED": "false",
            "DRIFTLINE_ARGON2_TIME_COST": "1",
        }
        with _serving("app_with_auth", env, port, workers=1):
            org_id, token, routes = _populate(f"http://127.0.0.1:{port}")
        env["BENCH_ORG_ID"] = org_id
        try:
            for workers in args.workers:
                for factory, variant in VARIANTS.items():
                    with _serving(factory, env, port, workers) as process:
                        for name, url in routes.items():
                            _wrk(url, token, 2, args.connections)  # warm the pools and caches
                            runs = [
                                _measure(process, url, token, args.seconds, args.connections)
                                for _ in range(args.repeats)
                            ]
                            results[workers, name, variant] = _median(runs)
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    _print(results, args, routes, load_before, os.getloadavg()[0])


def _print(
    results: dict[tuple[int, str, str], Figures],
    args: argparse.Namespace,
    routes: dict[str, str],
    load_before: float,
    load_after: float,
) -> None:
    print(
        f"API on PostgreSQL + Redis, wrk -t2 -c{args.connections} -d{args.seconds}s on the same "
        f"2 cores, median of {args.repeats} runs (target: >= 1,500 req/s, p99 <= 50 ms); "
        f"1-minute load average {load_before:.1f} before, {load_after:.1f} after"
    )
    print(
        f"{'workers':>7}  {'route':<26} {'variant':<26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'CPU ms/req':>10}"
    )
    for workers in args.workers:
        for name in routes:
            shipped, bare = (results[workers, name, variant] for variant in VARIANTS.values())
            for variant, (rate, p50, p99, cpu) in zip(
                VARIANTS.values(), (shipped, bare), strict=True
            ):
                print(
                    f"{workers:>7}  {name:<26} {variant:<26} {rate:>8,.0f} {p50:>8.1f} {p99:>8.1f}"
                    f" {cpu:>10.3f}"
                )
            ratio, cpu_ratio = bare[0] / shipped[0], shipped[3] / bare[3]
            print(
                f"{'':>7}  {'':<26} {'overhead (bare / shipped)':<26} {ratio:>7.2f}x"
                f" {'':>17} {cpu_ratio:>9.2f}x"
            )


if __name__ == "__main__":
    main()
