"""Kubernetes manifests for a deployment: a convenience to start from, not a controller.

What is rendered, by strategy and state (``<name>`` is the deployment's name made a
DNS-1123 label: lower case, ``.`` and ``_`` as ``-``, at most 63 characters):

* **direct** (and a promoted canary or shadow, which serve like one): an ``apps/v1``
  Deployment ``<name>`` (track ``stable``), a ``v1`` Service ``<name>`` selecting it and an
  ``autoscaling/v2`` HorizontalPodAutoscaler on CPU.
* **blue-green**: the slot's deployments alternate between the colours ``blue`` and
  ``green`` in the order they were created (the first is blue). The Deployment
  ``<name>-<colour>`` and its Service ``<name>-<colour>`` (to test the idle slot), and the
  switch: the Service ``<name>`` selecting the colour that serves - this one once active,
  the other while this one is pending. Promoting is applying the active one's Service.
* **canary** while pending: a separate Deployment ``<name>-canary`` (track ``canary``)
  whose replicas carry its traffic share next to the stable track's: ``ceil(replicas *
  percent / 100)``, at least 1 above 0 %, over ``replicas`` in all. The Service ``<name>``
  selects both tracks, so the share is the canary's fraction of the pods. No autoscaler:
  scaling one track alone would change the share.
* **shadow** while pending: the Deployment and Service ``<name>-shadow`` (track ``shadow``)
  with an autoscaler; mirroring traffic to it is the mesh's or the gateway's job.

Selectors hold only what never changes across versions (name and track or colour), since a
Deployment's selector is immutable; the pod labels add the model, its version and the
Driftline deployment id. Containers get ``MODEL_URI`` (the version's artifact URI, or
``models:/<model>/<version>`` when none was recorded), ``MODEL_NAME``, ``MODEL_VERSION``
and ``DRIFTLINE_DEPLOYMENT`` (the key the SDK sends events under). The namespace is the
deployment's environment.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["ManifestInput", "k8s_name", "render"]

_LABEL_PREFIX = "driftline.io"
_NAME = "app.kubernetes.io/name"


@dataclass(frozen=True)
class ManifestInput:
    """What the manifests are made of (from the deployment and its model version).

    ``slot_index`` is the deployment's position among its slot's deployments (0 for the
    first created); it picks the blue-green colour.
    """

    deployment_id: str
    name: str
    environment: str
    endpoint: str
    replicas: int
    strategy: str
    state: str
    traffic_percent: int
    model_id: str
    model_name: str
    model_version: int
    artifact_uri: str
    slot_index: int
    image: str
    port: int
    max_replicas: int
    cpu_target_percent: int


def k8s_name(text: str, *, limit: int = 63) -> str:
    """``text`` as a DNS-1123 label: ``[a-z0-9-]``, starting with a letter, at most ``limit``.

    >>> k8s_name("Fraud_API.v2")
    'fraud-api-v2'
    >>> k8s_name("9lives")
    'd-9lives'
    """
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    if not name or not name[0].isalpha():
        name = f"d-{name}"
    return name[:limit].rstrip("-")


def _track(item: ManifestInput) -> str:
    """``blue``/``green`` for blue-green, else ``stable``, ``canary`` or ``shadow``."""
    if item.strategy == "blue_green":
        return ("blue", "green")[item.slot_index % 2]
    if item.state == "pending" and item.strategy in ("canary", "shadow"):
        return item.strategy
    return "stable"


def _selector(base: str, track: str) -> dict[str, str]:
    key = "slot" if track in ("blue", "green") else "track"
    return {_NAME: base, f"{_LABEL_PREFIX}/{key}": track}


def _replicas(item: ManifestInput, track: str) -> int:
    if track != "canary":
        return item.replicas
    share = item.replicas * item.traffic_percent / 100
    return max(1, math.ceil(share)) if item.traffic_percent > 0 else 0


def _model_uri(item: ManifestInput) -> str:
    return item.artifact_uri or f"models:/{item.model_name}/{item.model_version}"


def _metadata(name: str, item: ManifestInput, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": k8s_name(item.environment),
        "labels": labels | {"app.kubernetes.io/managed-by": "driftline"},
        "annotations": {
            f"{_LABEL_PREFIX}/deployment-id": item.deployment_id,
            f"{_LABEL_PREFIX}/strategy": item.strategy,
            f"{_LABEL_PREFIX}/traffic-percent": str(item.traffic_percent),
            f"{_LABEL_PREFIX}/endpoint": item.endpoint,
        },
    }


def _deployment(name: str, item: ManifestInput, selector: dict[str, str]) -> dict[str, Any]:
    pod_labels = selector | {
        f"{_LABEL_PREFIX}/model-id": item.model_id,
        f"{_LABEL_PREFIX}/model-version": str(item.model_version),
        f"{_LABEL_PREFIX}/deployment-id": item.deployment_id,
    }
    env = {
        "MODEL_URI": _model_uri(item),
        "MODEL_NAME": item.model_name,
        "MODEL_VERSION": str(item.model_version),
        "DRIFTLINE_DEPLOYMENT": item.deployment_id,
    }
    container = {
        "name": "model",
        "image": item.image,
        "ports": [{"name": "http", "containerPort": item.port}],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 10},
        "livenessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 20},
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(name, item, pod_labels),
        "spec": {
            "replicas": _replicas(item, selector.get(f"{_LABEL_PREFIX}/track", "")),
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"securityContext": {"runAsNonRoot": True}, "containers": [container]},
            },
        },
    }


def _service(name: str, item: ManifestInput, selector: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(name, item, {_NAME: name}),
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def _autoscaler(name: str, item: ManifestInput) -> dict[str, Any]:
    low = max(1, item.replicas)
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(name, item, {_NAME: name}),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": low,
            "maxReplicas": max(low, item.max_replicas),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": item.cpu_target_percent,
                        },
                    },
                }
            ],
        },
    }


def render(item: ManifestInput) -> list[dict[str, Any]]:
    """The Kubernetes objects for ``item`` (see the module docstring), in apply order."""
    base = k8s_name(item.name, limit=50)  # room for the "-canary" / "-shadow" suffixes
    track = _track(item)
    objects: list[dict[str, Any]] = []
    if track in ("blue", "green"):
        own = f"{base}-{track}"
        other = "green" if track == "blue" else "blue"
        serving = track if item.state == "active" else other
        objects += [
            _deployment(own, item, _selector(base, track)),
            _service(own, item, _selector(base, track)),
            _service(base, item, _selector(base, serving)),
        ]
    elif track == "canary":
        objects += [
            _deployment(f"{base}-canary", item, _selector(base, "canary")),
            _service(base, item, {_NAME: base}),
        ]
        return objects
    elif track == "shadow":  # its own name: the stable Service must not select its pods
        own = f"{base}-shadow"
        objects += [
            _deployment(own, item, _selector(own, track)),
            _service(own, item, _selector(own, track)),
        ]
    else:
        objects += [
            _deployment(base, item, _selector(base, track)),
            _service(base, item, {_NAME: base}),  # with a canary's pods, while there is one
        ]
    if item.replicas > 0:
        objects.append(_autoscaler(objects[0]["metadata"]["name"], item))
    return objects
