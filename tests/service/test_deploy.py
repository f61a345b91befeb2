"""Deployment files: Kubernetes manifests validated offline (kubernetes-validate, strict),
the seed's resources, probes, HPA behaviour and Service; the Dockerfile's base, user and
health check."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kv

from .conftest import ROOT

MANIFESTS = ROOT / "deploy" / "kubernetes"
K8S_VERSION = "1.30.0"


def _docs() -> list[dict[str, Any]]:
    out = []
    for f in sorted(MANIFESTS.glob("*.yaml")):
        if f.name == "kustomization.yaml":
            continue
        out += [d for d in yaml.safe_load_all(f.read_text()) if d]
    return out


def _one(kind: str, name: str = "swarmvar") -> dict[str, Any]:
    found = [d for d in _docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name)
    return found[0]


@pytest.mark.parametrize("doc", _docs(), ids=lambda d: f"{d['kind']}-{d['metadata']['name']}")
def test_manifest_is_valid_in_strict_mode(doc: dict[str, Any]) -> None:
    kv.validate(doc, K8S_VERSION, strict=True)


def test_strict_validation_catches_a_typo() -> None:
    doc = _one("Deployment")
    bad = {**doc, "spec": {**doc["spec"], "replica": 2}}
    with pytest.raises(kv.ValidationError):
        kv.validate(bad, K8S_VERSION, strict=True)


def test_deployment_matches_the_seed() -> None:
    c = _one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"] == {"requests": {"cpu": "100m", "memory": "256Mi"},
                              "limits": {"cpu": "500m", "memory": "512Mi"}}
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["ports"][0]["containerPort"] == 8000
    assert c["env"][0]["valueFrom"]["secretKeyRef"]["name"] == "swarmvar-db"
    mounted = {v["name"]: v for v in _one("Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert mounted["keys"]["secret"]["secretName"] == "swarmvar-keys"
    assert _one("Deployment")["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]


def test_hpa_and_service_match_the_seed() -> None:
    hpa = _one("HorizontalPodAutoscaler")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 10)
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 50
    up, down = hpa["behavior"]["scaleUp"], hpa["behavior"]["scaleDown"]
    assert {(p["type"], p["value"], p["periodSeconds"]) for p in up["policies"]} == {
        ("Percent", 100, 30), ("Pods", 2, 30)}
    assert up["selectPolicy"] == "Min"  # at most 2 pods per 30 s
    assert down["stabilizationWindowSeconds"] == 300
    assert down["policies"] == [{"type": "Percent", "value": 50, "periodSeconds": 60}]
    svc = _one("Service")["spec"]
    assert svc["type"] == "LoadBalancer" and svc["ports"][0]["port"] == 8000
    assert _one("StatefulSet", "swarmvar-postgres")
    kinds = {d["kind"] for d in _docs()}
    assert {"Secret", "Deployment", "Service", "HorizontalPodAutoscaler", "StatefulSet"} <= kinds
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(f.name for f in MANIFESTS.glob("*.yaml")
                                    if f.name != "kustomization.yaml")


def test_dockerfile() -> None:
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms and all(re.fullmatch(r"python:3\.\d+-slim", f) for f in froms)
    assert re.search(r"^USER 10001", text, re.M) and "useradd" in text
    assert re.search(r"^HEALTHCHECK .*", text, re.M) and "/healthz" in text
    assert "EXPOSE 8000" in text and '"swarmvar", "serve"' in text
