"""Every route x every kind of caller. A route missing from ROUTES fails the first test.

Each entry names who may call the route: ``PUBLIC`` (anyone), ``ANY`` (any authenticated
caller), or the lowest role plus the API-key scopes that may. The matrix is written out
here on purpose, apart from ``control_api.rbac``, so a change of either shows up as a diff.
"""

import uuid

import pytest

PUBLIC = "public"
CREDENTIALS = "credentials"  # public; the body carries credentials, so 401 means bad ones
ANY = "any"
KEYS_ONLY = "keys-only"  # no member role; only API keys with one of the scopes
ROLES = ["viewer", "editor", "admin", "owner"]
CALLERS = ["anonymous", "key:ingest", "key:read", *ROLES]

# (method, path) -> (lowest role or PUBLIC/ANY, API-key scopes allowed)
ROUTES: dict[tuple[str, str], tuple[str, frozenset[str]]] = {
    ("GET", "/healthz"): (PUBLIC, frozenset()),
    ("GET", "/readyz"): (PUBLIC, frozenset()),
    ("GET", "/metrics"): (PUBLIC, frozenset()),
    ("POST", "/v1/auth/signup"): (PUBLIC, frozenset()),
    ("POST", "/v1/auth/token"): (CREDENTIALS, frozenset()),
    ("POST", "/v1/auth/refresh"): (CREDENTIALS, frozenset()),
    ("POST", "/v1/auth/logout"): (ANY, frozenset()),
    ("GET", "/v1/auth/sessions"): ("viewer", frozenset()),
    ("DELETE", "/v1/auth/sessions"): ("viewer", frozenset()),
    ("DELETE", "/v1/auth/sessions/{session_id}"): ("viewer", frozenset()),
    ("GET", "/v1/me"): (ANY, frozenset()),
    ("POST", "/v1/users"): ("admin", frozenset()),
    ("GET", "/v1/users"): ("viewer", frozenset()),
    ("GET", "/v1/users/{user_id}"): ("viewer", frozenset()),
    ("PATCH", "/v1/users/{user_id}"): ("admin", frozenset()),
    ("DELETE", "/v1/users/{user_id}"): ("admin", frozenset()),
    ("POST", "/v1/api-keys"): ("admin", frozenset()),
    ("GET", "/v1/api-keys"): ("admin", frozenset()),
    ("DELETE", "/v1/api-keys/{key_id}"): ("admin", frozenset()),
    ("POST", "/v1/projects"): ("editor", frozenset()),
    ("GET", "/v1/projects"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/projects/{project_id}"): ("viewer", frozenset({"read"})),
    ("PATCH", "/v1/projects/{project_id}"): ("editor", frozenset()),
    ("DELETE", "/v1/projects/{project_id}"): ("editor", frozenset()),
    ("POST", "/v1/ingest"): (KEYS_ONLY, frozenset({"ingest"})),
    # model registry (issue 6)
    ("POST", "/v1/models"): ("editor", frozenset()),
    ("GET", "/v1/models"): ("viewer", frozenset({"read"})),
    ("POST", "/v1/models/import-mlflow"): ("editor", frozenset()),
    ("GET", "/v1/models/{model_id}"): ("viewer", frozenset({"read"})),
    ("POST", "/v1/models/{model_id}/versions"): ("editor", frozenset()),
    ("GET", "/v1/models/{model_id}/versions"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/models/{model_id}/versions/{number}"): ("viewer", frozenset({"read"})),
    ("POST", "/v1/models/{model_id}/versions/{number}/archive"): ("editor", frozenset()),
    ("POST", "/v1/models/{model_id}/versions/{number}/approvals"): ("admin", frozenset()),
    ("POST", "/v1/models/{model_id}/versions/{number}/evaluations"): ("editor", frozenset()),
    ("GET", "/v1/models/{model_id}/versions/{number}/reviews"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/models/{model_id}/aliases"): ("viewer", frozenset({"read"})),
    ("PUT", "/v1/models/{model_id}/aliases/{alias}"): ("editor", frozenset()),
    ("DELETE", "/v1/models/{model_id}/aliases/{alias}"): ("editor", frozenset()),
    ("GET", "/v1/models/{model_id}/history"): ("viewer", frozenset({"read"})),
    # deployments (issue 6)
    ("POST", "/v1/deployments"): ("editor", frozenset()),
    ("GET", "/v1/deployments"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/deployments/{deployment_id}"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/deployments/{deployment_id}/events"): ("viewer", frozenset({"read"})),
    ("POST", "/v1/deployments/{deployment_id}/promote"): ("editor", frozenset()),
    ("POST", "/v1/deployments/{deployment_id}/rollback"): ("editor", frozenset()),
    ("POST", "/v1/deployments/{deployment_id}/traffic"): ("editor", frozenset()),
    ("POST", "/v1/deployments/{deployment_id}/fail"): ("editor", frozenset()),
    ("GET", "/v1/deployments/{deployment_id}/manifests"): ("viewer", frozenset({"read"})),
    ("POST", "/v1/deployment-webhooks"): ("admin", frozenset()),
    ("GET", "/v1/deployment-webhooks"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/deployment-webhooks/{webhook_id}"): ("viewer", frozenset({"read"})),
    ("PATCH", "/v1/deployment-webhooks/{webhook_id}"): ("admin", frozenset()),
    ("DELETE", "/v1/deployment-webhooks/{webhook_id}"): ("admin", frozenset()),
    ("GET", "/v1/deployment-webhooks/{webhook_id}/deliveries"): ("admin", frozenset()),
    # reference datasets and monitors (issue 6)
    ("POST", "/v1/references"): ("editor", frozenset()),
    ("GET", "/v1/references"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/references/{reference_id}"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/references/{reference_id}/profile"): ("viewer", frozenset({"read"})),
    ("POST", "/v1/monitors"): ("editor", frozenset()),
    ("GET", "/v1/monitors"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/monitors/{monitor_id}"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/monitors/{monitor_id}/engine"): ("viewer", frozenset({"read"})),
    ("PATCH", "/v1/monitors/{monitor_id}"): ("editor", frozenset()),
    ("DELETE", "/v1/monitors/{monitor_id}"): ("editor", frozenset()),
    ("GET", "/v1/deployments/{deployment_id}/metrics/drift"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/fleet"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/dead-letters"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/deployments/{deployment_id}/metrics/performance"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/deployments/{deployment_id}/metrics/latency"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/deployments/{deployment_id}/metrics/features"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/deployments/{deployment_id}/metrics/resources"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/deployments/{deployment_id}/metrics/custom"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/deployments/{deployment_id}/metrics/drift/plot"): ("viewer", frozenset({"read"})),
    # alerting (issue 7)
    ("POST", "/v1/alert-rules"): ("editor", frozenset()),
    ("GET", "/v1/alert-rules"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/alert-rules/{rule_id}"): ("viewer", frozenset({"read"})),
    ("PATCH", "/v1/alert-rules/{rule_id}"): ("editor", frozenset()),
    ("DELETE", "/v1/alert-rules/{rule_id}"): ("editor", frozenset()),
    ("POST", "/v1/channels"): ("admin", frozenset()),
    ("GET", "/v1/channels"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/channels/{channel_id}"): ("viewer", frozenset({"read"})),
    ("PATCH", "/v1/channels/{channel_id}"): ("admin", frozenset()),
    ("DELETE", "/v1/channels/{channel_id}"): ("admin", frozenset()),
    ("POST", "/v1/channels/{channel_id}/test"): ("admin", frozenset()),
    ("GET", "/v1/channels/{channel_id}/deliveries"): ("admin", frozenset()),
    ("POST", "/v1/channels/{channel_id}/deliveries/{delivery_id}/redeliver"): (
        "admin",
        frozenset(),
    ),
    ("GET", "/v1/alert-routing"): ("viewer", frozenset({"read"})),
    ("PUT", "/v1/alert-routing"): ("admin", frozenset()),
    ("POST", "/v1/silences"): ("editor", frozenset()),
    ("GET", "/v1/silences"): ("viewer", frozenset({"read"})),
    ("DELETE", "/v1/silences/{silence_id}"): ("editor", frozenset()),
    ("GET", "/v1/alerts"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/alerts/{alert_id}"): ("viewer", frozenset({"read"})),
    ("POST", "/v1/alerts/{alert_id}/acknowledge"): ("editor", frozenset()),
    # experiments, runs and lineage (issue 6)
    ("POST", "/v1/experiments"): ("editor", frozenset()),
    ("GET", "/v1/experiments"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/experiments/{experiment_id}"): ("viewer", frozenset({"read"})),
    ("PATCH", "/v1/experiments/{experiment_id}"): ("editor", frozenset()),
    ("DELETE", "/v1/experiments/{experiment_id}"): ("editor", frozenset()),
    ("POST", "/v1/experiments/{experiment_id}/runs"): ("editor", frozenset()),
    ("GET", "/v1/experiments/{experiment_id}/runs"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/runs/compare"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/runs/{run_id}"): ("viewer", frozenset({"read"})),
    ("PATCH", "/v1/runs/{run_id}"): ("editor", frozenset()),
    ("POST", "/v1/runs/{run_id}/log-batch"): ("editor", frozenset()),
    ("GET", "/v1/runs/{run_id}/metrics/{key}"): ("viewer", frozenset({"read"})),
    ("GET", "/v1/alerts/{alert_id}/lineage"): ("viewer", frozenset({"read"})),
}
# path parameters of the registry, deployment, reference and monitor routes (issue 6)
ISSUE_6_PATH_PARAMS = {
    "model_id": "m",
    "experiment_id": "e",
    "run_id": "r",
    "key": "k",
    "number": 1,
    "alias": "champion",
    "deployment_id": "d",
    "reference_id": "r",
    "monitor_id": "x",
    "webhook_id": "w",
}
# path parameters of the alerting routes (issue 7)
ISSUE_7_PATH_PARAMS = {
    "rule_id": "r",
    "channel_id": "c",
    "delivery_id": "x",
    "silence_id": "s",
    "alert_id": "a",
}
ENDS_SESSION = {("POST", "/v1/auth/logout"), ("DELETE", "/v1/auth/sessions")}


def _app_routes(app):
    """Every (method, path template) the application serves, from its OpenAPI document."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }


def test_every_route_has_an_entry(app):
    routes = _app_routes(app)
    assert len(routes) > 20
    assert routes - ROUTES.keys() == set(), "add these routes to the RBAC matrix"
    assert ROUTES.keys() - routes == set(), "these matrix entries name no route"


def _allowed(caller, rule):
    lowest, scopes = rule
    if lowest in (PUBLIC, CREDENTIALS):
        return True
    if caller == "anonymous":
        return False
    if caller.startswith("key:"):
        return lowest == ANY or caller.removeprefix("key:") in scopes
    if lowest == KEYS_ONLY:
        return False
    return lowest == ANY or ROLES.index(caller) >= ROLES.index(lowest)


@pytest.fixture
def callers(api):
    owner = api.owner()
    emails = {"owner": "owner@acme.example.com"}
    headers = {"anonymous": {}, "owner": owner}
    for role in ("viewer", "editor", "admin"):
        emails[role] = f"{role}@acme.example.com"
        headers[role] = api.member(owner, role, emails[role])
    for scope in ("ingest", "read"):
        _, token = api.api_key(owner, [scope])
        headers[f"key:{scope}"] = api.bearer(token)

    def fresh(caller):
        if caller in emails:  # a session of its own, for routes that end the session
            return api.bearer(api.login(emails[caller])["access_token"])
        return headers[caller]

    return headers, fresh


@pytest.mark.parametrize("caller", CALLERS)
def test_role_route_matrix(api, callers, caller):
    headers, fresh = callers
    # routes that end sessions last: "log out everywhere" also ends the shared session
    for (method, path), rule in sorted(ROUTES.items(), key=lambda kv: (kv[0] in ENDS_SESSION, kv)):
        url = path.format(
            session_id=uuid.uuid4(),
            user_id=uuid.uuid4(),
            key_id=uuid.uuid4(),
            project_id="p",
            **ISSUE_6_PATH_PARAMS,
            **ISSUE_7_PATH_PARAMS,
        )
        sent = fresh(caller) if (method, path) in ENDS_SESSION else headers[caller]
        if method in {"POST", "PATCH"} and path != "/v1/auth/token":
            response = api.client.request(method, url, headers=sent, json={})
        else:
            response = api.client.request(method, url, headers=sent)
        allowed = _allowed(caller, rule)
        if rule[0] == CREDENTIALS:
            assert response.status_code in (401, 422), (caller, method, path, response.text)
        elif allowed:
            assert response.status_code not in (401, 403), (caller, method, path, response.text)
        elif caller == "anonymous":
            assert response.status_code == 401, (caller, method, path, response.text)
        else:
            assert response.status_code == 403, (caller, method, path, response.text)
