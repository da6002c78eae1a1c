"""More concurrent requests than database connections and worker threads: all are served.

Without the session gate (control_api.session_gate) this deadlocks: both worker threads block
in the pool's checkout while the request holding the only connection waits for a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio.to_thread
import httpx
from fastapi import FastAPI

from tests.control_api.conftest import PASSWORD

CONCURRENT = 12


async def _many_reads(app: FastAPI) -> list[int]:
    async with app.router.lifespan_context(app):
        threads = anyio.to_thread.current_default_thread_limiter()
        threads.total_tokens = 2
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            body = {"org_name": "Acme", "email": "o@acme.example.com", "password": PASSWORD}
            assert (await http.post("/v1/auth/signup", json=body)).status_code == 201
            form = {"username": "o@acme.example.com", "password": PASSWORD}
            token = (await http.post("/v1/auth/token", data=form)).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            reads = (http.get("/v1/projects", headers=headers) for _ in range(CONCURRENT))
            # the pool would give up after 30 s; a deadlock shows long before
            responses = await asyncio.wait_for(asyncio.gather(*reads), timeout=20)
    return [response.status_code for response in responses]


def test_more_requests_than_connections_and_threads_are_all_served(
    app_factory: Callable[..., FastAPI],
) -> None:
    app = app_factory(db_pool_size=1, db_max_overflow=0)
    assert asyncio.run(_many_reads(app)) == [200] * CONCURRENT
