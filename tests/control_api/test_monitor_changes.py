"""Running engines follow the monitor changes made over the API, on the real Redis.

The worker side is the code ``driftline worker`` runs (``control_plane_wiring`` and its
``follow``), in this process; the embedded side is a second API application hosting the
engine. A change must reach them over Redis pub/sub within seconds; a change whose
message is lost (an API without Redis publishes nothing) must be caught by the poll.
"""

from __future__ import annotations

import asyncio
import queue
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from driftline.worker_command import Wiring, control_plane_wiring
from engine.monitor import Monitor
from storage.clickhouse.client import connect
from storage.clickhouse.migrations import MigrationParams, migrate
from tests.control_api.conftest import Api
from tests.control_api.test_e2e_embedded import _events, _reference_csv
from tests.engine.kafka_worker_tools import (
    MINUTE,
    WorkerProcess,
    ends,
    produce,
    query_folder,
    start_of_run,
    wait_until,
)

pytestmark = pytest.mark.redis
WITHIN_SECONDS = 5.0


def configure(api: Api, email: str = "owner@acme.example.com", org: str = "Acme") -> dict[str, Any]:
    """An organization with a reference, two deployments and a monitor on the first."""
    owner = api.owner(email, org)
    org_id = api.client.get("/v1/me", headers=owner).json()["org_id"]
    reference = api.client.post(
        "/v1/references",
        headers=owner,
        data={"name": "loans"},
        files={"file": ("train.csv", _reference_csv(), "text/csv")},
    ).json()
    model = api.client.post("/v1/models", headers=owner, json={"name": "loans"}).json()
    api.client.post(f"/v1/models/{model['id']}/versions", headers=owner, json={})
    deployments = [
        api.client.post(
            "/v1/deployments",
            headers=owner,
            json={"name": name, "environment": "prod", "model_id": model["id"], "model_version": 1},
        ).json()["id"]
        for name in ("loans-a", "loans-b")
    ]
    ids = {"owner": owner, "org": org_id, "reference": reference["id"], "deployments": deployments}
    ids["monitor"] = add_monitor(api, ids, deployments[0])
    return ids


def add_monitor(api: Api, ids: dict[str, Any], deployment: str) -> str:
    body = {
        "name": f"drift-{deployment[:8]}",
        "deployment_id": deployment,
        "reference_id": ids["reference"],
        "spec": {"window": {"kind": "tumbling", "size": "1m"}, "min_samples": 50},
    }
    created = api.client.post("/v1/monitors", headers=ids["owner"], json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def set_min_samples(api: Api, ids: dict[str, Any], value: int) -> None:
    path = f"/v1/monitors/{ids['monitor']}"
    current = api.client.get(path, headers=ids["owner"])
    spec = current.json()["spec"] | {"min_samples": value}
    headers = ids["owner"] | {"If-Match": current.headers["etag"]}
    changed = api.client.patch(path, headers=headers, json={"spec": spec})
    assert changed.status_code == 200, changed.text


@contextmanager
def worker_side(api: Api, org: str, redis_url: str, poll_seconds: float) -> Iterator[Wiring]:
    """``driftline worker``'s wiring for ``org``, on the API's database, with Redis."""
    settings = api.client.app.state.ctx.settings.model_copy(
        update={
            "kafka_organization": org,
            "redis_url": redis_url,
            "monitor_poll_seconds": poll_seconds,
        }
    )
    with connect(settings.clickhouse_url) as client:
        wiring = control_plane_wiring(settings, client)
        try:
            yield wiring
        finally:
            wiring.close()


def follow(wiring: Wiring) -> queue.Queue[list[Monitor]]:
    """Follow the changes as the worker does, once the subscription is confirmed."""
    updates: queue.Queue[list[Monitor]] = queue.Queue()
    watch = wiring.follow(updates.put)
    assert watch is not None
    assert watch.subscribed.wait(WITHIN_SECONDS), "the subscription was not confirmed"
    return updates


@pytest.fixture
def prefix() -> str:
    return f"test:{uuid.uuid4().hex}:"


def test_a_worker_follows_every_change_over_redis_within_seconds(
    app_factory, redis_url, chdb_url, prefix
):
    app = app_factory(redis_url=redis_url, redis_key_prefix=prefix, clickhouse_url=chdb_url)
    with TestClient(app) as client:
        api = Api(client)
        ids = configure(api)
        first, second = ids["deployments"]
        with worker_side(api, ids["org"], redis_url, poll_seconds=0) as wiring:  # no poll
            assert [m.deployment for m in wiring.monitors] == [first]
            updates = follow(wiring)

            started = time.monotonic()
            set_min_samples(api, ids, 7)
            monitors = updates.get(timeout=WITHIN_SECONDS)
            assert time.monotonic() - started < WITHIN_SECONDS
            assert [(m.deployment, m.min_samples) for m in monitors] == [(first, 7)]

            add_monitor(api, ids, second)
            monitors = updates.get(timeout=WITHIN_SECONDS)
            assert sorted(m.deployment for m in monitors) == sorted([first, second])

            deleted = api.client.delete(f"/v1/monitors/{ids['monitor']}", headers=ids["owner"])
            assert deleted.status_code == 204
            monitors = updates.get(timeout=WITHIN_SECONDS)
            assert [m.deployment for m in monitors] == [second]

            other = configure(api, "owner@other.example.com", "Other")  # another tenant
            set_min_samples(api, other, 9)
            with pytest.raises(queue.Empty):
                updates.get(timeout=1.0)


def test_a_lost_change_message_is_caught_by_the_poll(app_factory, redis_url, chdb_url, prefix):
    app = app_factory(clickhouse_url=chdb_url)
    with TestClient(app) as client:  # no Redis here: the change is never published
        api = Api(client)
        ids = configure(api)
        org = ids["org"]
        with (
            worker_side(api, org, redis_url, poll_seconds=0.5) as polling,
            worker_side(api, org, redis_url, poll_seconds=0) as subscribed_only,
        ):
            polled, unpolled = follow(polling), follow(subscribed_only)
            set_min_samples(api, ids, 7)
            monitors = polled.get(timeout=WITHIN_SECONDS)
            assert [m.min_samples for m in monitors] == [7]
            with pytest.raises(queue.Empty):  # the message never came: only the poll saw it
                unpolled.get(timeout=1.0)


def test_an_embedded_engine_follows_a_change_made_through_another_api_process(
    app_factory, redis_url, chdb_url, prefix
):
    with connect(chdb_url) as store:
        migrate(store, MigrationParams(ttl_days=7300))
    hosting = app_factory(
        redis_url=redis_url,
        redis_key_prefix=prefix,
        clickhouse_url=chdb_url,
        monitor_poll_seconds=0,  # pub/sub only
    )
    other = app_factory(
        redis_url=redis_url, redis_key_prefix=prefix, clickhouse_url=chdb_url, engine_embedded=False
    )
    with TestClient(hosting) as engine_api, TestClient(other) as client:
        api = Api(client)
        ids = configure(api)
        first = ids["deployments"][0]
        _, token = api.api_key(ids["owner"], ["ingest"])
        sent = engine_api.post(
            "/v1/ingest",
            headers=api.bearer(token) | {"Content-Type": "application/x-ndjson"},
            content=_events(first, 0, 20, 0.0),
        )
        assert sent.status_code == 202, sent.text
        hub = hosting.state.ctx.engine_hub
        assert [m.min_samples for m in hub.running(ids["org"])] == [50]
        assert hosting.state.ctx.monitor_watch.subscribed.wait(WITHIN_SECONDS)

        set_min_samples(api, ids, 7)  # through the other process
        deadline = time.monotonic() + WITHIN_SECONDS
        while [m.min_samples for m in hub.running(ids["org"])] != [7]:
            assert time.monotonic() < deadline, "the embedded engine did not follow"
            time.sleep(0.05)


# -- a real `driftline worker` on the real broker ---------------------------------------


def _minute(deployment: str, t0: int, minute: int, count: int, first: int) -> list[Any]:
    """(key, value) of ``count`` events of ``deployment`` in ``minute``, 200 ms apart."""
    at = t0 + minute * MINUTE + first * 200
    return [
        (
            deployment.encode(),
            orjson.dumps(
                {
                    "event_id": f"{deployment}-{minute}-{first + i}",
                    "ts": at + i * 200,
                    "deployment": deployment,
                    "features": {"x": 0.1 * (i % 7), "c": "a" if i % 2 else "b"},
                    "prediction": 0.5,
                }
            ),
        )
        for i in range(count)
    ]


def _wait_for_log(worker: WorkerProcess, text: str, timeout: float) -> float:
    """Seconds until ``text`` is in the worker's log (fails after ``timeout``)."""
    started = time.monotonic()
    while text not in worker.log():
        assert worker.process.poll() is None, worker.log()[-4000:]
        assert time.monotonic() - started < timeout, f"no {text!r}:\n{worker.log()[-4000:]}"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.kafka
@pytest.mark.parametrize(
    "db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_running_driftline_worker_applies_a_change_made_over_the_api_within_seconds(
    app_factory, redis_url, chdb_url, prefix, db_url, kafka_bootstrap, unique_name, tmp_path
):
    app = app_factory(
        redis_url=redis_url, redis_key_prefix=prefix, clickhouse_url=chdb_url, engine_embedded=False
    )
    with TestClient(app) as client:
        api = Api(client)
        ids = configure(api)
        first, second = ids["deployments"]
        topic, dead = f"events-{unique_name}", f"dead-{unique_name}"
        worker = WorkerProcess.start(
            tmp_path / "worker",
            {
                "DRIFTLINE_DATABASE_URL": db_url,
                "DRIFTLINE_OBJECTS_DIR": str(app.state.ctx.settings.data_dir / "objects"),
                "DRIFTLINE_REDIS_URL": redis_url,
                "DRIFTLINE_REDIS_KEY_PREFIX": prefix,
                "DRIFTLINE_MONITOR_POLL_SECONDS": "0",  # pub/sub alone must do it
                "DRIFTLINE_KAFKA_BOOTSTRAP": kafka_bootstrap,
                "DRIFTLINE_KAFKA_ORGANIZATION": ids["org"],
                "DRIFTLINE_KAFKA_EVENTS_TOPIC": topic,
                "DRIFTLINE_KAFKA_DEAD_LETTER_TOPIC": dead,
                "DRIFTLINE_KAFKA_GROUP_ID": f"driftline-test-{unique_name}",
                "DRIFTLINE_KAFKA_PARTITIONS": "2",
                "DRIFTLINE_KAFKA_BATCH_SIZE": "200",
                "DRIFTLINE_KAFKA_BATCH_SECONDS": "0.2",
            },
        )
        try:
            _wait_for_log(worker, "monitor changes: subscribed", timeout=60)
            t0 = start_of_run()
            placed = asyncio.run(
                produce(
                    kafka_bootstrap,
                    topic,
                    _minute(first, t0, 0, 100, 0) + _minute(second, t0, 0, 100, 0),
                )
            )
            wait_until([worker], ends(placed))  # the second deployment has no monitor yet

            set_min_samples(api, ids, 10)  # the first one's window 0 is open
            add_monitor(api, ids, second)
            took = _wait_for_log(worker, "now runs 2 monitors", timeout=WITHIN_SECONDS)
            print(f"change applied by the worker {took:.2f} s after the API answered")

            later = (
                _minute(first, t0, 0, 50, 100)
                + _minute(first, t0, 1, 100, 0)
                + _minute(second, t0, 1, 100, 0)
                + _minute(first, t0, 2, 5, 0)
                + _minute(second, t0, 2, 5, 0)
            )
            placed += asyncio.run(produce(kafka_bootstrap, topic, later))
            wait_until([worker], ends(placed))
        finally:
            stopped = worker.stop()
        assert stopped == 0, worker.log()[-4000:]

    windows, letters = query_folder(
        tmp_path / "worker",
        [
            "SELECT deployment, toUnixTimestamp64Milli(window_start), event_count "
            "FROM window_aggregates ORDER BY ALL",
            "SELECT deployment, count() FROM dead_letters GROUP BY deployment",
        ],
    )
    minute = {(d, (start - t0) // MINUTE, n) for d, start, n in windows}
    assert minute == {
        (first, 0, 100),  # closed at the change, under the old monitor (its own key)
        (first, 0, 50),  # the rest of that minute, under the new monitor
        (first, 1, 100),
        (second, 1, 100),  # the new monitor ran the events after the change
    }
    assert len(windows) == 4
    assert letters == [[second, 100]]  # before the change: no monitor, dead-lettered
