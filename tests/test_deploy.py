"""deploy/: the Kubernetes manifests validated offline against the bundled schemas (kubernetes-validate),
the compose file parsed and its references checked, and /readyz judging the database and Redis."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from core.config import DEFAULTS
from tests.conftest import REDIS_URL, free_port, make_app

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.30.0"  # the oldest Kubernetes the manifests promise to work on


def _docs() -> list[tuple[str, dict]]:
    out = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        out += [(path.name, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def _one(kind: str, name: str) -> dict:
    return next(d for _, d in _docs() if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize("source,doc", _docs(), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_k8s_manifest_is_valid(source, doc):
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)  # raises on an unknown field or a wrong type


def test_k8s_kustomization_lists_every_manifest():
    listed = set(yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}


def test_k8s_gateway_drains_streams_and_scales():
    gconf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    dep = _one("Deployment", "bytespike-gateway")
    pod = dep["spec"]["template"]["spec"]
    (box,) = pod["containers"]
    assert box["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert box["livenessProbe"]["httpGet"]["path"] == "/healthz"
    pre = box["lifecycle"]["preStop"]["exec"]["command"]
    assert pre[0] == "sleep"
    # SIGKILL comes only after the preStop pause and gunicorn's whole graceful_timeout.
    assert pod["terminationGracePeriodSeconds"] > int(pre[1]) + gconf["graceful_timeout"]
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = _one("HorizontalPodAutoscaler", "bytespike-gateway")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "bytespike-gateway"}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert box["resources"]["requests"]["cpu"]  # an HPA on CPU needs a request to measure against
    pdb = _one("PodDisruptionBudget", "bytespike-gateway")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # a node drain can always proceed
    svc = _one("Service", "bytespike-gateway")
    assert svc["spec"]["selector"].items() <= labels.items()
    env = {e["name"]: e.get("value") for e in box["env"]}
    assert env["BYTESPIKE_TRUSTED_PROXIES"] == "1" and env["BYTESPIKE_BIND"].endswith(":8000")
    assert set(env) - {"PROMETHEUS_MULTIPROC_DIR"} <= set(DEFAULTS) | {"BYTESPIKE_BIND"}
    worker = _one("Deployment", "bytespike-worker")["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"][0] == "flask" and worker["args"][-1] == "worker"


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_services_and_references():
    doc = _compose()
    services = doc["services"]
    assert {"postgres", "redis", "migrate", "gateway", "worker", "nginx"} <= set(services)
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
        for vol in svc.get("volumes", []):
            src = vol.split(":", 1)[0]
            if src.startswith("."):
                target = (DEPLOY / src).resolve()
                if src not in ("./channels.toml", "../build"):  # made by the operator / `make freeze`
                    assert target.exists(), f"{name} mounts missing {src}"
            else:
                assert src in doc["volumes"], f"{name} mounts undeclared volume {src}"
    gw = services["gateway"]
    assert gw["deploy"]["replicas"] >= 2
    env = gw["environment"]
    assert env["BYTESPIKE_TRUSTED_PROXIES"] == "1"
    assert env["BYTESPIKE_DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:" in env["BYTESPIKE_DATABASE_URL"]
    assert env["BYTESPIKE_REDIS_URL"].startswith("redis://redis:")
    assert set(env) - {"PROMETHEUS_MULTIPROC_DIR"} <= set(DEFAULTS)
    assert "/readyz" in " ".join(gw["healthcheck"]["test"])
    grace = int(gw["stop_grace_period"].rstrip("s"))
    assert grace > runpy.run_path(str(ROOT / "gunicorn.conf.py"))["graceful_timeout"]
    assert services["worker"]["command"] == ["flask", "worker"]
    assert services["migrate"]["command"] == ["flask", "init-db"]
    assert "../build:/usr/share/nginx/html:ro" in services["nginx"]["volumes"]
    env_keys = {line.split("=", 1)[0] for line in (DEPLOY / "env.example").read_text().splitlines()
                if line and not line.startswith("#")}
    assert env_keys - {"POSTGRES_PASSWORD"} <= set(DEFAULTS)
    assert (DEPLOY / "Dockerfile").exists() and gw["build"]["dockerfile"] == "deploy/Dockerfile"


def test_nginx_conf_serves_build_and_proxies_the_rest():
    conf = (DEPLOY / "nginx.conf").read_text()
    assert re.search(r"server gateway:8000", conf)
    assert "try_files $uri $uri/index.html @gateway" in conf
    assert "proxy_buffering off" in conf  # streams pass through event by event
    assert "proxy_set_header X-Forwarded-For $remote_addr" in conf  # one trusted hop, not the client's header
    assert "location = /metrics { return 404; }" in conf
    assert conf.count("{") == conf.count("}")


def test_channels_example_parses():
    from core import channels

    path = DEPLOY / "channels.toml.example"
    assert channels.parse(path, path.read_text())


def test_readyz_checks_redis_when_configured(tmp_path):
    ok = make_app(f"sqlite:///{tmp_path / 'a.db'}", BYTESPIKE_REDIS_URL=REDIS_URL)
    assert ok.test_client().get("/readyz").status_code == 200
    down = make_app(f"sqlite:///{tmp_path / 'b.db'}", BYTESPIKE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    r = down.test_client().get("/readyz")
    assert r.status_code == 503 and r.get_json()["status"] == "redis unavailable"
    for app in (ok, down):
        app.extensions["bytespike_db"].dispose()
