"""The deployment files are consistent: compose, Kubernetes, Dockerfile, CI workflow.

No Docker engine or cluster runs here, so these tests check structure: every service has an
image, healthchecks and valid ``depends_on`` conditions, every ``DRIFTLINE_*`` name set
anywhere is a real setting, probes and resources are declared, and the image runs unprivileged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftline.settings import Settings
from engine.monitor import load_monitors

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {f"DRIFTLINE_{name.upper()}" for name in Settings.model_fields}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
SECRETISH = re.compile(r"PASSWORD|SECRET|_KEY$")
ONE_SHOTS = {"migrate"}
NO_HTTP = {"worker-1", "worker-2"}  # Kafka consumers: nothing to probe from outside


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def _services() -> dict[str, dict[str, Any]]:
    return dict(_compose()["services"])


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _k8s() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((ROOT / "deploy/k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _k8s() if d["kind"] == kind]


def _named(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for d in _kind(kind) if d["metadata"]["name"] == name]
    return doc


# --- docker-compose.yml ------------------------------------------------------------------


def test_compose_has_the_whole_stack():
    services = _services()
    images = {name: str(s.get("image", "")) for name, s in services.items()}
    assert images["kafka"].startswith("apache/kafka:")
    for name, image in {
        "clickhouse": "clickhouse/clickhouse-server:",
        "postgres": "postgres:",
        "redis": "redis:",
        "minio": "minio/minio:",
        "mlflow": "ghcr.io/mlflow/mlflow:",
        "grafana": "grafana/grafana:",
        "alertmanager": "prom/alertmanager:",
        "mailpit": "axllent/mailpit:",
    }.items():
        assert images[name].startswith(image), name
    commands = {name: s.get("command") for name, s in services.items() if "build" in s}
    assert commands == {
        "migrate": ["migrate"],
        "api": ["api", "--host", "0.0.0.0", "--port", "8000"],
        "worker-1": ["worker"],
        "worker-2": ["worker"],
    }
    assert "controller" in _env(services["kafka"])["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper


def test_every_service_has_an_image_or_build_and_published_ports_are_valid():
    published: list[int] = []
    for name, service in _services().items():
        assert service.get("image") or service.get("build"), name
        for port in service.get("ports", []):
            host, _, container = str(port).rpartition(":")
            assert host.isdigit(), (name, port)
            assert container.isdigit(), (name, port)
            published.append(int(host))
    assert len(published) == len(set(published)), "two services publish one host port"
    assert "8000:8000" in _services()["api"]["ports"]


def test_healthchecks_where_they_make_sense():
    for name, service in _services().items():
        check = service.get("healthcheck", {})
        if name in ONE_SHOTS | NO_HTTP:
            assert check == {"disable": True}, f"{name} would inherit the image's HTTP check"
            continue
        assert check.get("test"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    assert "/readyz" in " ".join(_services()["api"]["healthcheck"]["test"])


def test_depends_on_conditions_are_valid():
    services = _services()
    for name, service in services.items():
        for target, spec in (service.get("depends_on") or {}).items():
            assert target in services, (name, target)
            condition = spec["condition"]
            assert condition in CONDITIONS, (name, target, condition)
            if condition == "service_healthy":
                assert services[target].get("healthcheck", {}).get("test"), (name, target)
            if condition == "service_completed_successfully":
                assert target in ONE_SHOTS
                assert services[target]["restart"] == "no"
    for name in ("api", "worker-1", "worker-2"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert set(services["migrate"]["depends_on"]) == {"postgres", "clickhouse"}


def test_driftline_settings_in_compose_exist_and_secrets_are_placeholders():
    for name, service in _services().items():
        for key, value in _env(service).items():
            if key.startswith("DRIFTLINE_GRAFANA_") and name == "grafana":
                continue  # read by Grafana's datasource provisioning, not by Driftline
            if key.startswith("DRIFTLINE_"):
                assert key in SETTINGS, f"{name}: {key} is not a setting"
            if SECRETISH.search(key) or ("://" in value and "@" in value):
                assert "${" in value, f"{name}: {key} holds a literal secret"
    api = _env(_services()["api"])
    assert api["DRIFTLINE_KAFKA_EVENTS_TOPIC"] == "predictions"
    assert api["DRIFTLINE_ENGINE_EMBEDDED"] == "false"
    assert "DRIFTLINE_KAFKA_ORGANIZATION" in _env(_services()["worker-1"])


def test_grafana_gets_the_clickhouse_plugin_and_the_provisioned_dashboards():
    grafana = _services()["grafana"]
    assert "grafana-clickhouse-datasource" in _env(grafana)["GF_INSTALL_PLUGINS"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"] if v.startswith("./")}
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    assert mounts["/var/lib/grafana/dashboards/driftline"] == "./deploy/grafana/dashboards"
    datasource = ROOT / "deploy/grafana/provisioning/datasources/driftline-clickhouse.yaml"
    wanted = set(re.findall(r"\$\{(DRIFTLINE_GRAFANA_\w+)\}", datasource.read_text()))
    assert wanted <= set(_env(grafana))


def test_mounted_files_exist_and_the_monitors_file_loads():
    for name, service in _services().items():
        for volume in service.get("volumes", []):
            if str(volume).startswith("./"):
                assert (ROOT / volume.split(":")[0]).exists(), (name, volume)
    monitors = load_monitors(ROOT / "deploy/monitors/monitors.yaml")
    assert [m.deployment for m in monitors] == ["example-model"]


# --- Kubernetes --------------------------------------------------------------------------


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["spec"]["template"]["spec"]["containers"])


def test_k8s_deployments_have_probes_resources_and_run_unprivileged():
    deployments = {d["metadata"]["name"]: d for d in _kind("Deployment")}
    assert set(deployments) == {"driftline-api", "driftline-worker"}
    for doc in [*deployments.values(), *_kind("Job")]:
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            requests = container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(requests), doc["metadata"]["name"]
            refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
            assert refs == {"driftline-config", "driftline-secrets"}
    for doc in deployments.values():
        for container in _containers(doc):
            assert container["readinessProbe"]
            assert container["livenessProbe"]
    (api,) = _containers(deployments["driftline-api"])
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port_names = {p["name"] for p in api["ports"]}
    assert api["readinessProbe"]["httpGet"]["port"] in port_names


def test_k8s_service_selects_the_api():
    service = _named("Service", "driftline-api")
    labels = _named("Deployment", "driftline-api")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (api,) = _containers(_named("Deployment", "driftline-api"))
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= {p["name"] for p in api["ports"]}


def test_k8s_hpa_scales_the_workers_up_to_the_partition_count():
    hpa = _named("HorizontalPodAutoscaler", "driftline-worker")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "driftline-worker")
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    partitions = int(_named("ConfigMap", "driftline-config")["data"]["DRIFTLINE_KAFKA_PARTITIONS"])
    assert hpa["spec"]["maxReplicas"] == partitions
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["target"]["averageUtilization"] > 0


def test_k8s_config_and_secret_names_are_settings():
    config = _named("ConfigMap", "driftline-config")["data"]
    secret = _named("Secret", "driftline-secrets")["stringData"]
    assert set(config) <= SETTINGS
    assert set(secret) <= SETTINGS
    assert not set(config) & set(secret)
    assert all(value.startswith("<") or "<" in value for value in secret.values())
    # the ConfigMap's values are valid settings (types, enums, ranges)
    fields = {key.removeprefix("DRIFTLINE_").lower(): value for key, value in config.items()}
    built = Settings(**fields)
    assert built.kafka_partitions == int(config["DRIFTLINE_KAFKA_PARTITIONS"])


# --- Dockerfile and CI -------------------------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck():
    instructions = _dockerfile()
    stages = [i for i, (op, _) in enumerate(instructions) if op == "FROM"]
    assert len(stages) >= 2
    final = instructions[stages[-1] :]
    users = [arg for op, arg in final if op == "USER"]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    checks = [arg for op, arg in final if op == "HEALTHCHECK"]
    assert checks
    assert "/healthz" in checks[-1]
    assert any(op == "COPY" and "--from=" in arg for op, arg in final)
    assert any(op == "RUN" and "pip install ." in arg for op, arg in instructions)


@pytest.mark.parametrize("ignored", [".git", ".venv", "tests"])
def test_dockerignore_keeps_the_context_small(ignored):
    assert ignored in (ROOT / ".dockerignore").read_text().split()


def test_ci_workflow_runs_the_ci_script():
    workflow = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    assert workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    (job,) = workflow["jobs"].values()
    assert job["runs-on"].startswith("ubuntu")
    steps = job["steps"]
    assert [s["run"] for s in steps if "run" in s][-1] == "bash .ci/run"
    versions = {s["uses"].split("@")[0]: s.get("with", {}) for s in steps if "uses" in s}
    assert versions["actions/setup-python"]["python-version"] == "3.11"
    assert versions["actions/setup-java"]["java-version"] == "17"
