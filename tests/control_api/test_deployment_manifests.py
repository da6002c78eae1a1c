"""GET /v1/deployments/{id}/manifests: Kubernetes objects that would apply, per strategy."""

import re

import orjson
import yaml

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
LABEL_KEY = re.compile(r"^([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
KINDS = {
    "Deployment": "apps/v1",
    "Service": "v1",
    "HorizontalPodAutoscaler": "autoscaling/v2",
}


def _setup(api, versions=3):
    owner = api.owner()
    model = api.client.post("/v1/models", headers=owner, json={"name": "fraud-model"}).json()
    for number in range(1, versions + 1):
        body = {"artifact_uri": f"s3://models/fraud/{number}"} if number == 1 else {}
        created = api.client.post(f"/v1/models/{model['id']}/versions", headers=owner, json=body)
        assert created.status_code == 201, created.text
    return owner, model


def _deploy(api, owner, model, number, **extra):
    body = {
        "name": "Fraud_API",
        "environment": "prod",
        "endpoint": "https://fraud.acme.example.com/predict",
        "model_id": model["id"],
        "model_version": number,
        "replicas": 4,
    }
    response = api.client.post("/v1/deployments", headers=owner, json=body | extra)
    assert response.status_code == 201, response.text
    return response.json()


def _act(api, owner, deployment, action, **body):
    response = api.client.post(
        f"/v1/deployments/{deployment['id']}/{action}",
        headers=owner | {"If-Match": f'"{deployment["version"]}"'},
        json=body,
    )
    assert response.status_code == 200, response.text
    return response.json()


def _manifests(api, owner, deployment, **params):
    response = api.client.get(
        f"/v1/deployments/{deployment['id']}/manifests", headers=owner, params=params
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/yaml")
    objects = list(yaml.safe_load_all(response.text))
    _check_structure(objects)
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def _labels_ok(labels):
    return all(LABEL_KEY.match(k) and LABEL_VALUE.match(v) for k, v in labels.items())


def _check_structure(objects):
    """What the API server would check first: kinds, names, labels, selectors, references."""
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    for obj in objects:
        assert obj["apiVersion"] == KINDS[obj["kind"]], obj["kind"]
        meta = obj["metadata"]
        assert DNS_LABEL.match(meta["name"]), meta["name"]
        assert DNS_LABEL.match(meta["namespace"]), meta["namespace"]
        assert _labels_ok(meta["labels"]), meta["labels"]
        assert all(isinstance(v, str) for v in meta["annotations"].values())
    for obj in deployments:
        spec = obj["spec"]
        template_labels = spec["template"]["metadata"]["labels"]
        assert _labels_ok(template_labels)
        assert spec["selector"]["matchLabels"].items() <= template_labels.items()
        assert isinstance(spec["replicas"], int)
        assert spec["replicas"] >= 0
        (container,) = spec["template"]["spec"]["containers"]
        assert container["image"]
        assert not re.search(r"\s", container["image"])
        port_names = {p["name"] for p in container["ports"]}
        assert container["readinessProbe"]["tcpSocket"]["port"] in port_names
        assert {e["name"] for e in container["env"]} >= {"MODEL_URI", "DRIFTLINE_DEPLOYMENT"}
        assert all(isinstance(e["value"], str) for e in container["env"])
    for obj in objects:
        if obj["kind"] == "Service":
            assert _labels_ok(obj["spec"]["selector"])
            assert {p["targetPort"] for p in obj["spec"]["ports"]} == {"http"}
        if obj["kind"] == "HorizontalPodAutoscaler":
            target = obj["spec"]["scaleTargetRef"]
            names = {d["metadata"]["name"] for d in deployments}
            assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
            assert target["name"] in names
            assert 1 <= obj["spec"]["minReplicas"] <= obj["spec"]["maxReplicas"]


def _pods(deployment_object):
    return deployment_object["spec"]["template"]["metadata"]["labels"]


def _selects(service, deployment_object):
    return service["spec"]["selector"].items() <= _pods(deployment_object).items()


def _env(deployment_object):
    (container,) = deployment_object["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"]}


def test_direct_deployment_renders_deployment_service_and_autoscaler(api):
    owner, model = _setup(api)
    deployment = _act(api, owner, _deploy(api, owner, model, 1), "promote")
    objects = _manifests(api, owner, deployment, image="registry.acme/fraud:1", max_replicas=10)
    assert set(objects) == {
        ("Deployment", "fraud-api"),
        ("Service", "fraud-api"),
        ("HorizontalPodAutoscaler", "fraud-api"),
    }
    pods = objects["Deployment", "fraud-api"]
    assert pods["metadata"]["namespace"] == "prod"
    assert pods["spec"]["replicas"] == 4
    assert _selects(objects["Service", "fraud-api"], pods)
    assert _env(pods) == {
        "MODEL_URI": "s3://models/fraud/1",
        "MODEL_NAME": "fraud-model",
        "MODEL_VERSION": "1",
        "DRIFTLINE_DEPLOYMENT": deployment["id"],
    }
    assert pods["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.acme/fraud:1"
    hpa = objects["HorizontalPodAutoscaler", "fraud-api"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (4, 10)
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 70

    as_json = api.client.get(
        f"/v1/deployments/{deployment['id']}/manifests", headers=owner, params={"format": "json"}
    )
    assert as_json.headers["content-type"] == "application/json"
    listed = orjson.loads(as_json.content)
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List")
    assert [o["kind"] for o in listed["items"]] == [k for k, _ in objects]
    assert listed["items"][0]["spec"]["template"]["spec"]["containers"][0]["image"] == "fraud-api:1"


def test_canary_gets_its_own_track_sized_by_its_traffic_share(api):
    owner, model = _setup(api)
    stable = _act(api, owner, _deploy(api, owner, model, 1), "promote")
    canary = _deploy(api, owner, model, 2, strategy="canary", traffic_steps=[10, 50])
    objects = _manifests(api, owner, canary)
    assert set(objects) == {("Deployment", "fraud-api-canary"), ("Service", "fraud-api")}
    pods = objects["Deployment", "fraud-api-canary"]
    assert pods["spec"]["replicas"] == 1  # ceil(4 x 10 %)
    assert _env(pods)["MODEL_URI"] == f"models:/{model['name']}/2"  # no artifact URI recorded
    stable_objects = _manifests(api, owner, stable)
    stable_pods = stable_objects["Deployment", "fraud-api"]
    service = objects["Service", "fraud-api"]
    # one Service over both tracks, so the share of pods is the share of traffic
    assert _selects(service, pods)
    assert _selects(service, stable_pods)
    assert stable_objects["Service", "fraud-api"]["spec"] == service["spec"]  # the same Service
    # the two tracks are distinct Deployments: neither selects the other's pods
    assert pods["spec"]["selector"]["matchLabels"].items() - _pods(stable_pods).items()
    canary = _act(api, owner, canary, "traffic", percent=50)
    assert _manifests(api, owner, canary)["Deployment", "fraud-api-canary"]["spec"]["replicas"] == 2
    promoted = _act(api, owner, canary, "promote")
    after = _manifests(api, owner, promoted)
    assert ("Deployment", "fraud-api") in after  # a promoted canary serves as the stable track
    assert after["Deployment", "fraud-api"]["spec"]["replicas"] == 4


def test_blue_green_alternates_colours_and_the_switch_follows_the_active_one(api):
    owner, model = _setup(api)
    blue = _act(api, owner, _deploy(api, owner, model, 1, strategy="blue_green"), "promote")
    green = _deploy(api, owner, model, 2, strategy="blue_green")
    blue_objects = _manifests(api, owner, blue)
    green_objects = _manifests(api, owner, green)
    blue_pods = blue_objects["Deployment", "fraud-api-blue"]
    green_pods = green_objects["Deployment", "fraud-api-green"]
    assert blue_pods["spec"]["selector"] != green_pods["spec"]["selector"]
    assert _selects(green_objects["Service", "fraud-api-green"], green_pods)
    # while green is pending, the switch still sends traffic to blue
    switch = green_objects["Service", "fraud-api"]
    assert _selects(switch, blue_pods)
    assert not _selects(switch, green_pods)
    assert _selects(blue_objects["Service", "fraud-api"], blue_pods)
    green = _act(api, owner, green, "promote")
    switch = _manifests(api, owner, green)["Service", "fraud-api"]
    assert _selects(switch, green_pods)
    assert not _selects(switch, blue_pods)


def test_shadow_pods_get_no_live_traffic(api):
    owner, model = _setup(api)
    stable = _act(api, owner, _deploy(api, owner, model, 1), "promote")
    shadow = _deploy(api, owner, model, 2, strategy="shadow", replicas=0)
    objects = _manifests(api, owner, shadow)
    assert set(objects) == {("Deployment", "fraud-api-shadow"), ("Service", "fraud-api-shadow")}
    shadow_pods = objects["Deployment", "fraud-api-shadow"]
    assert shadow_pods["spec"]["replicas"] == 0  # no autoscaler below one replica
    live = _manifests(api, owner, stable)["Service", "fraud-api"]
    assert not _selects(live, shadow_pods)


def test_bad_parameters_and_other_tenants(api):
    owner, model = _setup(api, versions=1)
    deployment = _deploy(api, owner, model, 1)
    path = f"/v1/deployments/{deployment['id']}/manifests"
    for params in ({"format": "toml"}, {"image": "a b"}, {"port": 0}, {"cpu_target": 101}):
        response = api.client.get(path, headers=owner, params=params)
        assert response.status_code == 422, params
        assert response.headers["content-type"] == "application/problem+json"
    other = api.owner("owner@other.example.com", "Other")
    assert api.client.get(path, headers=other).status_code == 404
    viewer = api.member(owner, "viewer")
    assert api.client.get(path, headers=viewer).status_code == 200
