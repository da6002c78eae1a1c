import numpy as np

from storage.clickhouse.client import connect
from storage.clickhouse.migrations import MigrationParams, migrate
from storage.clickhouse.tables import MetricsTable
from storage.clickhouse.writer import write_batch


def _deployment(api, headers, name="m"):
    model = api.client.post("/v1/models", headers=headers, json={"name": name}).json()
    api.client.post(f"/v1/models/{model['id']}/versions", headers=headers, json={})
    body = {"name": name, "environment": "prod", "model_id": model["id"], "model_version": 1}
    return api.client.post("/v1/deployments", headers=headers, json=body).json()


def _drift_rows(deployment, organization_rows=2):
    n = organization_rows * 2
    starts = np.datetime64("2024-03-01T00:00", "ms") + np.repeat(
        np.arange(organization_rows), 2
    ) * np.timedelta64(30, "m")
    return {
        "deployment": np.full(n, deployment, dtype=object),
        "window_start": starts,
        "window_end": starts + np.timedelta64(30, "m"),
        "feature": np.tile(np.array(["amount", "country"], dtype=object), organization_rows),
        "statistic": np.full(n, "psi", dtype=object),
        "value": np.tile(np.array([0.05, 0.3]), organization_rows),
        "p_value": np.full(n, np.nan),
        "threshold": np.full(n, 0.2),
        "drifted": np.tile(np.array([False, True]), organization_rows),
        "reference_size": np.full(n, 1000, dtype=np.uint64),
        "current_size": np.full(n, 500, dtype=np.uint64),
    }


RANGE = {"start": "2024-03-01T00:00:00Z", "end": "2024-03-01T02:00:00Z", "step": 3600}


def test_drift_series_per_feature_scoped_to_the_tenant(api, settings):
    owner = api.owner()
    org_id = api.client.get("/v1/me", headers=owner).json()["org_id"]
    deployment = _deployment(api, owner)
    with connect(settings.clickhouse_url, default_database=settings.clickhouse_database) as c:
        migrate(c, MigrationParams(ttl_days=3650, dedup_window=1000))
        write_batch(
            c,
            MetricsTable.DRIFT_RESULTS,
            organization=org_id,
            batch_id="a",
            columns=_drift_rows(deployment["id"]),
        )
        # the same deployment id under another organization must never show up
        write_batch(
            c,
            MetricsTable.DRIFT_RESULTS,
            organization="someone-else",
            batch_id="b",
            columns=_drift_rows(deployment["id"], organization_rows=4),
        )
    base = f"/v1/deployments/{deployment['id']}/metrics"
    drift = api.client.get(f"{base}/drift", headers=owner, params=RANGE)
    assert drift.status_code == 200, drift.text
    points = drift.json()["points"]
    assert [(p["feature"], p["windows"], p["drifted_windows"]) for p in points] == [
        ("amount", 2, 0),
        ("country", 2, 2),
    ]
    assert points[0]["p_value_min"] is None
    assert points[1]["value_avg"] == 0.3
    only = api.client.get(
        f"{base}/drift", headers=owner, params=RANGE | {"feature": "country"}
    ).json()
    assert [p["feature"] for p in only["points"]] == ["country"]
    half_hours = api.client.get(f"{base}/drift", headers=owner, params=RANGE | {"step": 1800})
    assert len(half_hours.json()["points"]) == 4

    for kind in ("performance", "latency"):
        empty = api.client.get(f"{base}/{kind}", headers=owner, params=RANGE)
        assert empty.status_code == 200, empty.text
        assert empty.json()["points"] == []

    backwards = RANGE | {"start": RANGE["end"], "end": RANGE["start"]}
    refused = api.client.get(f"{base}/drift", headers=owner, params=backwards)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    other = api.owner("owner@other.example.com", "Other")
    assert api.client.get(f"{base}/drift", headers=other, params=RANGE).status_code == 404


def test_fleet_overview_and_dead_letters_are_the_tenants_own(api, settings):
    owner = api.owner()
    org_id = api.client.get("/v1/me", headers=owner).json()["org_id"]
    quiet, drifting = _deployment(api, owner, "quiet"), _deployment(api, owner, "drifting")
    calm_rows = _drift_rows(quiet["id"])
    calm_rows["drifted"] = np.zeros(4, dtype=bool)
    with connect(settings.clickhouse_url, default_database=settings.clickhouse_database) as c:
        migrate(c, MigrationParams(ttl_days=3650, dedup_window=1000))
        for batch, columns in (("q", calm_rows), ("d", _drift_rows(drifting["id"]))):
            write_batch(c, MetricsTable.DRIFT_RESULTS, organization=org_id, batch_id=batch,
                        columns=columns)  # fmt: skip
        write_batch(c, MetricsTable.DRIFT_RESULTS, organization="someone-else", batch_id="x",
                    columns=_drift_rows("theirs", organization_rows=4))  # fmt: skip
        for org, reason in ((org_id, "wrong_type: features.x"), ("someone-else", "secret")):
            write_batch(
                c,
                MetricsTable.DEAD_LETTERS,
                organization=org,
                batch_id=f"dl-{org}",
                columns={
                    "received_at": np.array(["2024-03-01T00:10"], dtype="datetime64[ms]"),
                    "source": ["http"],
                    "reason": [reason],
                    "payload": [b'{"event_id": "e1"}'],
                    "deployment": [drifting["id"]],
                },
            )
    window = {"start": RANGE["start"], "end": RANGE["end"]}
    fleet = api.client.get("/v1/fleet", headers=owner, params=window)
    assert fleet.status_code == 200, fleet.text
    rows = fleet.json()["deployments"]
    assert [(r["deployment_id"], r["drifted_features"]) for r in rows] == [
        (drifting["id"], 1),
        (quiet["id"], 0),
    ]
    assert rows[0]["drifted"] == ["country"]
    assert rows[0]["last_window"].startswith("2024-03-01T00:30")
    letters = api.client.get("/v1/dead-letters", headers=owner, params=window)
    assert letters.status_code == 200, letters.text
    (letter,) = letters.json()["items"]
    assert letter["reason"] == "wrong_type: features.x"
    assert letter["payload"] == '{"event_id": "e1"}'
