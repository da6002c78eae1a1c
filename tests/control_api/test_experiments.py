"""Experiments, runs, metrics, comparison and lineage over HTTP, on both tracking stores.

Every test runs on Driftline's own tables (SQLite and PostgreSQL) and on the MLflow proxy
(against the real MLflow server of ``.ci/services.sh``). Each test signs up organizations
of its own, so their MLflow namespaces (``<slug>.``) are fresh on the shared server.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.control_api.conftest import Api


@dataclass
class Org:
    """A signed-up organization: its slug (MLflow namespace) and its owner's header."""

    slug: str
    owner: dict[str, str]


@dataclass
class Tracked:
    """An API client on one tracking store (``tables`` or ``mlflow``)."""

    api: Api
    store: str
    mlflow_uri: str = ""

    @property
    def client(self) -> TestClient:
        return self.api.client

    def org(self, name: str = "Acme") -> Org:
        email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
        slug = self.api.signup(email, name)["org_slug"]
        return Org(slug, self.api.bearer(self.api.login(email)["access_token"]))

    def experiment(self, org: Org, name: str = "churn", **extra: Any) -> dict[str, Any]:
        response = self.client.post(
            "/v1/experiments", headers=org.owner, json={"name": name, **extra}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def run(self, org: Org, experiment_id: str, **extra: Any) -> dict[str, Any]:
        response = self.client.post(
            f"/v1/experiments/{experiment_id}/runs", headers=org.owner, json=extra
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def log(self, org: Org, run_id: str, **batch: Any) -> None:
        response = self.client.post(f"/v1/runs/{run_id}/log-batch", headers=org.owner, json=batch)
        assert response.status_code == 204, response.text


@pytest.fixture(params=["tables", pytest.param("mlflow", marks=pytest.mark.mlflow)])
def tracked(request, app_factory, chdb_url):
    overrides: dict[str, Any] = {"clickhouse_url": chdb_url}
    uri = ""
    if request.param == "mlflow":
        uri = overrides["mlflow_tracking_uri"] = request.getfixturevalue("mlflow_uri")
    with TestClient(app_factory(**overrides)) as client:
        yield Tracked(Api(client), request.param, uri)


def _metric(key, value, step, timestamp=None):
    point = {"key": key, "value": value, "step": step}
    if timestamp is not None:
        point["timestamp"] = timestamp
    return point


def test_experiments_crud_if_match_and_pages(tracked):
    acme = tracked.org()
    client, owner = tracked.client, acme.owner
    project = client.post("/v1/projects", headers=owner, json={"name": "risk"}).json()
    created = client.post(
        "/v1/experiments",
        headers=owner,
        json={
            "name": "churn",
            "description": "weekly retrain",
            "tags": {"team": "growth"},
            "project_id": project["id"],
        },
    )
    assert created.status_code == 201, created.text
    churn = created.json()
    assert (churn["name"], churn["description"], churn["tags"]) == (
        "churn",
        "weekly retrain",
        {"team": "growth"},
    )
    assert churn["project_id"] == project["id"]
    assert churn["created_by"]
    for name in ("fraud", "fraud_v2", "aml"):
        tracked.experiment(acme, name)
    assert client.post("/v1/experiments", headers=owner, json={"name": "aml"}).status_code == 409
    refused = {
        "project": {"name": "x", "project_id": str(uuid.uuid4())},
        "reserved tag": {"name": "x", "tags": {"driftline.project_id": "p"}},
        "description tag": {"name": "x", "tags": {"mlflow.note.content": "d"}},
        "bad name": {"name": "no spaces"},
    }
    for case, body in refused.items():
        assert client.post("/v1/experiments", headers=owner, json=body).status_code == 422, case

    page = client.get("/v1/experiments", headers=owner, params={"limit": 3}).json()
    names = [e["name"] for e in page["items"]]
    while page["next_cursor"]:
        page = client.get(
            "/v1/experiments", headers=owner, params={"limit": 3, "cursor": page["next_cursor"]}
        ).json()
        names += [e["name"] for e in page["items"]]
    assert names == ["aml", "churn", "fraud", "fraud_v2"]
    newest = client.get("/v1/experiments", headers=owner, params={"sort": "-created_at"}).json()
    assert [e["name"] for e in newest["items"]] == ["aml", "fraud_v2", "fraud", "churn"]
    prefixed = client.get("/v1/experiments", headers=owner, params={"name_prefix": "fraud"})
    assert [e["name"] for e in prefixed.json()["items"]] == ["fraud", "fraud_v2"]
    by_project = client.get("/v1/experiments", headers=owner, params={"project_id": project["id"]})
    assert [e["name"] for e in by_project.json()["items"]] == ["churn"]
    assert (
        client.get("/v1/experiments", headers=owner, params={"cursor": "garbage"}).status_code
        == 400
    )

    url = f"/v1/experiments/{churn['id']}"
    got = client.get(url, headers=owner)
    etag = got.headers["ETag"]
    assert got.json() == churn
    assert created.headers["ETag"] == etag
    change = {"name": "churn-2", "tags": {"team": "risk", "tier": "1"}}
    assert client.patch(url, headers=owner, json=change).status_code == 428
    stale = client.patch(url, headers={**owner, "If-Match": '"0"'}, json=change)
    assert stale.status_code == 412
    changed = client.patch(url, headers={**owner, "If-Match": etag}, json=change)
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "churn-2"
    assert changed.json()["tags"] == {"team": "risk", "tier": "1"}
    assert changed.json()["description"] == "weekly retrain"
    assert changed.headers["ETag"] != etag
    again = client.patch(url, headers={**owner, "If-Match": etag}, json={"description": "x"})
    assert again.status_code == 412  # the ETag read before the change is stale now
    fresh = changed.headers["ETag"]
    retag = client.patch(url, headers={**owner, "If-Match": fresh}, json={"tags": {"tier": "2"}})
    assert retag.json()["tags"] == {"tier": "2"}
    taken = client.patch(
        url, headers={**owner, "If-Match": retag.headers["ETag"]}, json={"name": "aml"}
    )
    assert taken.status_code == 409

    assert client.delete(url, headers=owner).status_code == 204
    assert client.get(url, headers=owner).status_code == 404
    assert client.delete(url, headers=owner).status_code == 404


def test_runs_log_batch_params_set_once_and_metric_history(tracked):
    acme = tracked.org()
    client, owner = tracked.client, acme.owner
    experiment = tracked.experiment(acme)
    started = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    run = tracked.run(
        acme,
        experiment["id"],
        name="baseline",
        tags={"git": "abc123"},
        start_time=started.isoformat(),
    )
    assert (run["name"], run["status"], run["end_time"]) == ("baseline", "RUNNING", None)
    assert datetime.fromisoformat(run["start_time"]) == started
    assert run["tags"] == {"git": "abc123"}
    assert run["experiment_id"] == experiment["id"]
    url = f"/v1/runs/{run['id']}"

    # points sent out of order, one twice; the history comes back by step
    points = [
        _metric("loss", 0.5, 2, 1_000_002),
        _metric("loss", 0.9, 0, 1_000_000),
        _metric("loss", 0.7, 1, 1_000_001),
        _metric("loss", 0.7, 1, 1_000_001),
        _metric("val/auc", 0.81, 0, 1_000_000),
    ]
    tracked.log(
        acme, run["id"], metrics=points, params={"lr": "0.01", "depth": "6"}, tags={"git": "def"}
    )
    tracked.log(acme, run["id"], metrics=[_metric("loss", 0.6, 1, 1_000_005)])
    history = client.get(f"{url}/metrics/loss", headers=owner)
    assert history.status_code == 200, history.text
    assert history.json()["key"] == "loss"
    assert [(p["step"], p["timestamp"], p["value"]) for p in history.json()["points"]] == [
        (0, 1_000_000, 0.9),
        (1, 1_000_001, 0.7),
        (1, 1_000_005, 0.6),
        (2, 1_000_002, 0.5),
    ]
    slashed = client.get(f"{url}/metrics/val/auc", headers=owner).json()["points"]
    assert [p["value"] for p in slashed] == [0.81]
    assert client.get(f"{url}/metrics/nothing", headers=owner).json()["points"] == []

    # a timestamp defaults to the time of the call (epoch ms)
    before = datetime.now(UTC).timestamp() * 1000
    tracked.log(acme, run["id"], metrics=[_metric("lr_now", 1.0, 0)])
    (stamped,) = client.get(f"{url}/metrics/lr_now", headers=owner).json()["points"]
    assert before - 1 <= stamped["timestamp"] <= datetime.now(UTC).timestamp() * 1000 + 1

    got = client.get(url, headers=owner).json()
    assert got["params"] == {"depth": "6", "lr": "0.01"}
    assert got["metrics"] == {"loss": 0.5, "lr_now": 1.0, "val/auc": 0.81}  # the greatest step
    assert got["tags"] == {"git": "def"}  # tags may change

    # params are set once: the same value again is fine, another is 409 and logs nothing
    tracked.log(acme, run["id"], params={"lr": "0.01"})
    changed = client.post(
        f"{url}/log-batch",
        headers=owner,
        json={"params": {"lr": "0.02", "seed": "1"}, "metrics": [_metric("loss", 0.1, 9, 5)]},
    )
    assert changed.status_code == 409
    assert changed.json()["type"] == "/problems/param-immutable"
    assert "lr" in changed.json()["detail"]
    after = client.get(url, headers=owner).json()
    assert after["params"] == {"depth": "6", "lr": "0.01"}
    assert after["metrics"]["loss"] == 0.5

    # ending the run
    assert client.patch(url, headers=owner, json={}).status_code == 422
    early_end = {"status": "RUNNING", "end_time": "2026-01-05T10:00:00Z"}
    assert client.patch(url, headers=owner, json=early_end).status_code == 422
    ended = client.patch(
        url,
        headers=owner,
        json={"status": "FINISHED", "end_time": "2026-01-05T10:00:00Z", "name": "final"},
    )
    assert ended.status_code == 200, ended.text
    assert (ended.json()["status"], ended.json()["name"]) == ("FINISHED", "final")
    assert datetime.fromisoformat(ended.json()["end_time"]) == datetime(2026, 1, 5, 10, tzinfo=UTC)
    failed = client.patch(url, headers=owner, json={"status": "FAILED"}).json()
    assert datetime.fromisoformat(failed["end_time"]) > datetime(2026, 1, 6, tzinfo=UTC)  # now
    assert client.get(f"/v1/runs/{uuid.uuid4().hex}", headers=owner).status_code == 404


def test_log_batch_limits(tracked):
    acme = tracked.org()
    run = tracked.run(acme, tracked.experiment(acme)["id"])
    url = f"/v1/runs/{run['id']}/log-batch"

    def post(**batch):
        return tracked.client.post(url, headers=acme.owner, json=batch)

    metrics = [_metric("m", float(i), i, 1_000 + i) for i in range(1001)]
    params = {f"p{i}": "v" for i in range(101)}
    tags = {f"t{i}": "v" for i in range(101)}
    too_much = {
        "1001 metrics": {"metrics": metrics},
        "101 params": {"params": params},
        "101 tags": {"tags": tags},
        "1001 items": {"metrics": metrics[:1000], "params": {"p": "v"}},
        "nothing": {},
        "key leaving its folder": {"metrics": [_metric("a/../b", 1.0, 0)]},
        "key with a quote": {"params": {"it's": "v"}},
        "param value too long": {"params": {"p": "v" * 6001}},
        "reserved tag": {"tags": {"mlflow.user": "someone"}},
        "step beyond int64": {"metrics": [_metric("m", 1.0, 2**63)]},
    }
    for case, batch in too_much.items():
        response = post(**batch)
        assert response.status_code == 422, (case, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    # exactly at the limits is accepted
    full = post(metrics=metrics[:1000])
    assert full.status_code == 204, full.text
    assert post(params=dict(list(params.items())[:100])).status_code == 204
    assert post(tags=dict(list(tags.items())[:100])).status_code == 204
    got = tracked.client.get(f"/v1/runs/{run['id']}", headers=acme.owner).json()
    assert (len(got["params"]), len(got["tags"]), got["metrics"]) == (100, 100, {"m": 999.0})
    history = tracked.client.get(f"/v1/runs/{run['id']}/metrics/m", headers=acme.owner).json()
    assert [p["step"] for p in history["points"]] == list(range(1000))


def _runs(tracked, org, experiment_id, **params):
    response = tracked.client.get(
        f"/v1/experiments/{experiment_id}/runs", headers=org.owner, params=params
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_run_lists_filter_and_sort_by_a_metric(tracked):
    acme = tracked.org()
    experiment = tracked.experiment(acme)["id"]
    made = {}
    for name, auc, optimizer, start in (
        ("a", 0.70, "adam", "2026-01-01T00:00:00Z"),
        ("b", 0.90, "sgd", "2026-01-02T00:00:00Z"),
        ("c", None, "adam", "2026-01-03T00:00:00Z"),
        ("d", 0.80, "adam", "2026-01-04T00:00:00Z"),
        ("e", 0.90, "adam", "2026-01-05T00:00:00Z"),
    ):
        run = tracked.run(acme, experiment, name=name, start_time=start)
        made[run["id"]] = name
        metrics = [] if auc is None else [_metric("auc", auc, 0, 1)]
        tracked.log(acme, run["id"], metrics=metrics, params={"optimizer": optimizer})
    done = next(i for i, n in made.items() if n == "d")
    tracked.client.patch(f"/v1/runs/{done}", headers=acme.owner, json={"status": "FINISHED"})

    def names(**params):
        return [r["name"] for r in _runs(tracked, acme, experiment, **params)["items"]]

    assert names() == ["e", "d", "c", "b", "a"]  # newest first
    assert names(sort="start_time") == ["a", "b", "c", "d", "e"]
    assert names(status="FINISHED") == ["d"]
    assert names(param="optimizer=sgd") == ["b"]
    assert names(metric="auc>=0.8", param="optimizer=adam") == ["e", "d"]
    assert names(metric=["auc>0.7", "auc<0.9"]) == ["d"]
    assert names(metric="auc!=0.9", sort="start_time") == ["a", "d"]
    # by the latest auc; runs without it last in both directions; ties by run id
    ties = sorted(i for i, n in made.items() if n in "be")
    by_auc = names(sort="-metrics.auc")
    assert by_auc[2:] == ["d", "a", "c"]
    ascending = names(sort="metrics.auc")
    assert ascending[:2] == ["a", "d"]
    assert ascending[4] == "c"
    # every page in order, following the cursors
    for sort in ("-metrics.auc", "metrics.auc", "-start_time"):
        pages, cursor = [], None
        while True:
            params = {"sort": sort, "limit": 2} | ({"cursor": cursor} if cursor else {})
            page = _runs(tracked, acme, experiment, **params)
            pages += [r["name"] for r in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert pages == names(sort=sort, limit=50), sort
    assert by_auc[:2] == [made[i] for i in sorted(ties, reverse=True)]  # ties by run id
    assert ascending[2:4] == [made[i] for i in sorted(ties)]
    for bad in (
        {"metric": "auc~0.5"},
        {"metric": "auc>high"},
        {"metric": "auc>nan"},
        {"param": "optimizer"},
        {"sort": "name"},
        {"sort": "metrics.a/../b"},
        {"status": "DONE"},
        {"metric": [f"m{i}>0" for i in range(11)]},
    ):
        response = tracked.client.get(
            f"/v1/experiments/{experiment}/runs", headers=acme.owner, params=bad
        )
        assert response.status_code == 422, (bad, response.text)
    missing = tracked.client.get(f"/v1/experiments/{uuid.uuid4()}/runs", headers=acme.owner)
    assert missing.status_code == 404


def test_compare_runs(tracked):
    acme = tracked.org()
    experiment = tracked.experiment(acme)["id"]
    a = tracked.run(acme, experiment, name="a")["id"]
    b = tracked.run(acme, experiment, name="b")["id"]
    tracked.log(
        acme,
        a,
        params={"lr": "0.1", "depth": "6"},
        metrics=[
            _metric("loss", 0.9, 0, 10),
            _metric("loss", 0.4, 1, 20),
            _metric("auc", 0.8, 1, 20),
        ],
    )
    tracked.log(acme, b, params={"lr": "0.1", "depth": "8"}, metrics=[_metric("loss", 0.3, 0, 10)])
    response = tracked.client.get(
        "/v1/runs/compare",
        headers=acme.owner,
        params={"run_ids": f"{a},{b},{a}", "history": "loss"},
    )
    assert response.status_code == 200, response.text
    comparison = response.json()
    assert [r["name"] for r in comparison["runs"]] == ["a", "b"]
    assert "params" not in comparison["runs"][0]
    assert comparison["params"] == [
        {"key": "depth", "values": {a: "6", b: "8"}, "same": False},
        {"key": "lr", "values": {a: "0.1", b: "0.1"}, "same": True},
    ]
    assert comparison["metrics"] == [
        {"key": "auc", "values": {a: 0.8, b: None}},
        {"key": "loss", "values": {a: 0.4, b: 0.3}},
    ]
    assert comparison["histories"] == {
        "loss": {
            a: [
                {"step": 0, "timestamp": 10, "value": 0.9},
                {"step": 1, "timestamp": 20, "value": 0.4},
            ],
            b: [{"step": 0, "timestamp": 10, "value": 0.3}],
        }
    }

    def status(run_ids, **extra):
        return tracked.client.get(
            "/v1/runs/compare", headers=acme.owner, params={"run_ids": run_ids, **extra}
        ).status_code

    assert status(f"{a},{uuid.uuid4().hex}") == 404
    assert status(",".join(uuid.uuid4().hex for _ in range(21))) == 422
    assert status(" , ") == 422
    assert status(a, history="a/../b") == 422


def test_another_organization_sees_nothing(tracked):
    acme, other = tracked.org("Acme"), tracked.org("Other")
    client = tracked.client
    experiment = tracked.experiment(acme)
    run = tracked.run(acme, experiment["id"])
    tracked.log(acme, run["id"], metrics=[_metric("loss", 1.0, 0, 1)], params={"lr": "1"})
    e, r = f"/v1/experiments/{experiment['id']}", f"/v1/runs/{run['id']}"
    reads = (e, f"{e}/runs", r, f"{r}/metrics/loss")
    for path in reads:
        assert client.get(path, headers=other.owner).status_code == 404, path
    assert (
        client.get(
            "/v1/runs/compare", headers=other.owner, params={"run_ids": run["id"]}
        ).status_code
        == 404
    )
    etag = client.get(e, headers=acme.owner).headers["ETag"]
    writes = (
        ("PATCH", e, {"description": "mine"}),
        ("DELETE", e, None),
        ("POST", f"{e}/runs", {}),
        ("PATCH", r, {"status": "KILLED"}),
        ("POST", f"{r}/log-batch", {"params": {"lr": "2"}}),
    )
    for method, path, body in writes:
        headers = {**other.owner, "If-Match": etag}
        response = client.request(method, path, headers=headers, json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert client.get("/v1/experiments", headers=other.owner).json()["items"] == []
    # the run cannot be the source of another organization's model version
    model = client.post("/v1/models", headers=other.owner, json={"name": "m"}).json()
    linked = client.post(
        f"/v1/models/{model['id']}/versions", headers=other.owner, json={"source_run": run["id"]}
    )
    assert linked.status_code == 422
    # the same name is free in another organization; acme's data is untouched
    assert tracked.experiment(other)["name"] == "churn"
    got = client.get(r, headers=acme.owner).json()
    assert (got["status"], got["params"]) == ("RUNNING", {"lr": "1"})
    assert client.get(e, headers=acme.owner).json()["description"] == ""


def test_lineage_from_an_alert_to_the_training_run(tracked):
    from engine.alerts.evaluator import AlertEvaluator
    from engine.alerts.history import MemoryHistory
    from tests.engine.alerts_support import window

    acme = tracked.org()
    client, owner = tracked.client, acme.owner
    experiment = tracked.experiment(acme, "fraud-training")
    run = tracked.run(acme, experiment["id"], name="xgb")
    tracked.log(acme, run["id"], params={"max_depth": "6"}, metrics=[_metric("auc", 0.93, 3, 1)])
    model = client.post("/v1/models", headers=owner, json={"name": "fraud"}).json()
    versions = f"/v1/models/{model['id']}/versions"
    unknown = client.post(versions, headers=owner, json={"source_run": uuid.uuid4().hex})
    assert unknown.status_code == 422
    version = client.post(versions, headers=owner, json={"source_run": run["id"]})
    assert version.status_code == 201, version.text
    unlinked = client.post(versions, headers=owner, json={}).json()

    def deploy(number, name):
        body = {
            "name": name,
            "environment": "prod",
            "model_id": model["id"],
            "model_version": number,
        }
        response = client.post("/v1/deployments", headers=owner, json=body)
        assert response.status_code == 201, response.text
        return response.json()

    deployed, plain = deploy(1, "fraud-api"), deploy(unlinked["number"], "fraud-shadow")
    org_id = client.get("/v1/me", headers=owner).json()["org_id"]
    for target in (deployed["id"], plain["id"], "not-a-deployment"):
        rule = {
            "name": f"psi-{target}",
            "deployment": target,
            "condition": {"kind": "drift_statistic", "statistic": "psi", "features": ["x"]},
        }
        assert client.post("/v1/alert-rules", headers=owner, json=rule).status_code == 201
    evaluator = AlertEvaluator(client.app.state.ctx.sessions, org_id, MemoryHistory())
    for target in (deployed["id"], plain["id"], "not-a-deployment"):
        evaluator.on_window_closed(window(0, psi=0.3, deployment=target))
    alerts = {a["deployment"]: a for a in client.get("/v1/alerts", headers=owner).json()["items"]}

    viewer = tracked.api.member(owner, "viewer")
    full = client.get(f"/v1/alerts/{alerts[deployed['id']]['id']}/lineage", headers=viewer)
    assert full.status_code == 200, full.text
    chain = full.json()
    assert chain["gap"] is None
    assert chain["alert"]["id"] == alerts[deployed["id"]]["id"]
    assert chain["deployment"]["id"] == deployed["id"]
    assert (chain["model"]["name"], chain["version"]["number"]) == ("fraud", 1)
    assert chain["version"]["source_run"] == run["id"]
    assert chain["run"]["id"] == run["id"]
    assert (chain["run"]["params"], chain["run"]["metrics"]) == ({"max_depth": "6"}, {"auc": 0.93})
    assert chain["experiment"]["name"] == "fraud-training"

    no_run = client.get(f"/v1/alerts/{alerts[plain['id']]['id']}/lineage", headers=owner).json()
    assert no_run["version"]["number"] == unlinked["number"]
    assert no_run["run"] is None
    assert "no source run" in no_run["gap"]
    nowhere = client.get(
        f"/v1/alerts/{alerts['not-a-deployment']['id']}/lineage", headers=owner
    ).json()
    assert nowhere["deployment"] is None
    assert "not a deployment" in nowhere["gap"]
    other = tracked.org("Other")
    foreign = client.get(f"/v1/alerts/{alerts[deployed['id']]['id']}/lineage", headers=other.owner)
    assert foreign.status_code == 404

    # the experiment cannot be deleted while a model version came from one of its runs
    refused = client.delete(f"/v1/experiments/{experiment['id']}", headers=owner)
    assert refused.status_code == 409
    assert "fraud v1" in refused.json()["detail"]
    spare = tracked.experiment(acme, "scratch")
    tracked.run(acme, spare["id"])
    assert client.delete(f"/v1/experiments/{spare['id']}", headers=owner).status_code == 204


@pytest.mark.mlflow
def test_the_mlflow_proxy_checks_the_namespace_on_every_read(app_factory, chdb_url, mlflow_uri):
    """Ids guessed from MLflow itself: another namespace's answer 404 like missing ones."""
    from mlflow import MlflowClient

    remote = MlflowClient(tracking_uri=mlflow_uri)
    app = app_factory(clickhouse_url=chdb_url, mlflow_tracking_uri=mlflow_uri)
    with TestClient(app) as client:
        tracked = Tracked(Api(client), "mlflow", mlflow_uri)
        acme = tracked.org()
        mine = tracked.experiment(acme, "mine")
        run = tracked.run(acme, mine["id"], name="r")
        tracked.log(acme, run["id"], params={"lr": "0.1"})
        # the copy in MLflow: prefixed name, description and creator as MLflow tags
        held = remote.get_experiment(mine["id"])
        assert held.name == f"{acme.slug}.mine"
        assert remote.get_run(run["id"]).data.params == {"lr": "0.1"}
        assert remote.get_run(run["id"]).info.user_id == mine["created_by"]

        # made in MLflow directly: under acme's prefix it is acme's, elsewhere nobody's
        direct = remote.create_experiment(f"{acme.slug}.from-notebook")
        direct_run = remote.create_run(direct, run_name="nb").info.run_id
        remote.log_param(direct_run, "k", "v")
        foreign = remote.create_experiment(f"x{uuid.uuid4().hex[:8]}.secret")
        foreign_run = remote.create_run(foreign).info.run_id
        names = [
            e["name"] for e in client.get("/v1/experiments", headers=acme.owner).json()["items"]
        ]
        assert names == ["from-notebook", "mine"]
        assert client.get(f"/v1/runs/{direct_run}", headers=acme.owner).json()["params"] == {
            "k": "v"
        }
        for path in (
            f"/v1/experiments/{foreign}",
            f"/v1/experiments/{foreign}/runs",
            f"/v1/runs/{foreign_run}",
            f"/v1/runs/{foreign_run}/metrics/x",
            "/v1/experiments/not-a-number",
        ):
            assert client.get(path, headers=acme.owner).status_code == 404, path
        post = client.post(
            f"/v1/runs/{foreign_run}/log-batch", headers=acme.owner, json={"tags": {"a": "b"}}
        )
        assert post.status_code == 404
        assert remote.get_run(foreign_run).data.tags.get("a") is None

        # MLflow keeps a deleted experiment's name: re-creating it says so
        assert client.delete(f"/v1/experiments/{direct}", headers=acme.owner).status_code == 204
        assert client.get(f"/v1/runs/{direct_run}", headers=acme.owner).status_code == 404
        again = client.post("/v1/experiments", headers=acme.owner, json={"name": "from-notebook"})
        assert again.status_code == 409
        assert "mlflow gc" in again.json()["detail"]
