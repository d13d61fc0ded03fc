"""What SREs deploy, checked without a container engine: the dashboards and alerts query only
metrics the services really export (read from a live /metrics scrape), the alert rules and
Prometheus config pass promtool, the Kubernetes manifests validate against the API schemas,
and every alert has a runbook section."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from parley_consent.bootstrap import create_app as create_consent
from parley_consent.settings import ConsentSettings
from parley_messenger.bootstrap import create_app as create_messenger
from parley_messenger.settings import MessengerSettings
from parley_scheduler.bootstrap import create_app as create_scheduler
from parley_scheduler.settings import SchedulerSettings
from parley_shared.settings import KafkaSettings, ServiceSettings
from prometheus_client.parser import text_string_to_metric_families

from tests.support.apps import running_app
from tests.support.settings import setting_exists

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
K8S = DEPLOY / "k8s"
SETTINGS: dict[str, type[ServiceSettings]] = {
    "scheduler": SchedulerSettings,
    "consent": ConsentSettings,
    "messenger": MessengerSettings,
}
# Series Prometheus itself makes, not the services.
PROMETHEUS_BUILTINS = {"up"}
PROMQL_WORDS = {
    "sum", "rate", "increase", "by", "and", "or", "unless", "histogram_quantile", "deriv",
    "le", "without", "on", "ignoring", "avg", "max", "min", "count",
}  # fmt: skip


def _series_in(expression: str) -> set[str]:
    """Metric names a PromQL expression reads: identifiers not inside {...} or by (...)."""
    stripped = re.sub(r"\{[^}]*\}", "", expression)
    stripped = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", stripped)
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)
    names = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", stripped))
    return {n for n in names if n not in PROMQL_WORDS and not n.isdigit()}


def _alert_rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(ALERTS.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def _dashboard_expressions() -> list[str]:
    expressions = []
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            expressions += [target["expr"] for target in panel["targets"]]
    return expressions


@pytest.fixture(scope="module")
async def exported_series(local_broker: Any, local_postgres: Any) -> set[str]:
    """Sample names from a live scrape of the three started services."""
    import uuid

    from parley_shared.topics import ensure_topics
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    run = uuid.uuid4().hex[:10]
    kafka = KafkaSettings(
        bootstrap_servers=local_broker.bootstrap_servers,
        topic_prefix=f"m{run}.",
        group_prefix=f"m{run}",
        partitions=1,
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
    )
    await ensure_topics(kafka)
    admin = create_async_engine(local_postgres.url(), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "metrics_{run}"'))
    await admin.dispose()
    common: dict[str, Any] = {
        "kafka": kafka,
        "database_url": local_postgres.url(f"metrics_{run}"),
        "lag_probe_interval_seconds": 0,
    }
    apps = [
        create_scheduler(SchedulerSettings(**common)),
        create_consent(ConsentSettings(**common)),
        create_messenger(MessengerSettings(**common)),
    ]
    names: set[str] = set()
    for app in apps:
        async with (
            running_app(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://s") as client,
        ):
            response = await client.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            for family in text_string_to_metric_families(response.text):
                names.add(family.name)
                suffixes = {
                    "counter": ("_total", "_created"),
                    "histogram": ("_bucket", "_sum", "_count", "_created"),
                }.get(family.type, ())
                names.update(family.name + suffix for suffix in suffixes)
    return names


async def test_every_dashboard_and_alert_series_is_exported(exported_series: set[str]) -> None:
    queried = set()
    for expression in _dashboard_expressions() + [rule["expr"] for rule in _alert_rules()]:
        queried |= _series_in(expression)
    assert queried, "no expressions found"
    missing = sorted(queried - exported_series - PROMETHEUS_BUILTINS)
    assert missing == []


def test_the_series_parser_finds_metric_names_not_labels() -> None:
    found = _series_in('sum by (rule_id) (increase(parley_decisions_total{verdict="x"}[1h])) > 0')
    assert found == {"parley_decisions_total"}


def test_the_dashboard_covers_what_sres_asked_for() -> None:
    titles = " | ".join(
        panel["title"].lower()
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
    )
    for topic in ("throughput", "rule", "delivery outcomes", "latency", "lag", "errors", "opt-out"):
        assert topic in titles


def test_alert_rules_pass_promtool_or_the_schema() -> None:
    rules = _alert_rules()
    names = {rule["alert"] for rule in rules}
    assert {
        "ParleyPipelineStalled",
        "ParleyConsumerLagGrowing",
        "ParleyProviderErrorRate",
        "ParleyDeadLetters",
        "ParleyOptOutLatencyHigh",
    } <= names
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert rule["labels"]["severity"] in {"page", "warn"}
        assert rule["annotations"]["summary"]
    promtool = shutil.which("promtool")
    if promtool is None:
        return  # the schema checks above stand in; .ci/run installs promtool where it can
    checked = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = subprocess.run(
        [
            promtool,
            "check",
            "config",
            "--syntax-only",
            str(DEPLOY / "prometheus" / "prometheus.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert config.returncode == 0, config.stdout + config.stderr


def test_every_alert_has_a_runbook_section() -> None:
    runbook = (DEPLOY / "runbook.md").read_text()
    headings = {line.removeprefix("## ").strip() for line in runbook.splitlines()}
    for rule in _alert_rules():
        assert rule["alert"] in headings
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor == rule["alert"].lower()


def _k8s_documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    documents = []
    for name in kustomization["resources"]:
        documents += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return documents


def test_kubernetes_manifests_validate_against_the_api_schemas() -> None:
    documents = _k8s_documents()
    assert {d["kind"] for d in documents} >= {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "ConfigMap",
        "Job",
    }
    for document in documents:
        kubernetes_validate.validate(document, "1.31", strict=True)


def test_autoscaling_never_exceeds_the_partition_count() -> None:
    documents = _k8s_documents()
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    partitions = int(config["PARLEY_KAFKA__PARTITIONS"])
    autoscalers = [d for d in documents if d["kind"] == "HorizontalPodAutoscaler"]
    assert {a["spec"]["scaleTargetRef"]["name"] for a in autoscalers} == {
        f"parley-{service}" for service in SETTINGS
    }
    for autoscaler in autoscalers:
        assert 1 <= autoscaler["spec"]["minReplicas"] <= autoscaler["spec"]["maxReplicas"]
        assert autoscaler["spec"]["maxReplicas"] <= partitions


def test_kubernetes_deployments_use_real_images_ports_probes_and_settings() -> None:
    documents = _k8s_documents()
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    for service, settings in SETTINGS.items():
        deployment = next(
            d
            for d in documents
            if d["kind"] == "Deployment" and d["metadata"]["name"].endswith(service)
        )
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == compose["services"][service]["image"]
        assert container["ports"][0]["containerPort"] == int(config["PARLEY_HTTP_PORT"])
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        names = [e["name"] for e in container["env"]] + list(config)
        unknown = [n for n in names if n.startswith("PARLEY_") and not setting_exists(settings, n)]
        assert unknown == []
    job = next(d for d in documents if d["kind"] == "Job")
    commands = [c["command"] for c in job["spec"]["template"]["spec"]["containers"]]
    assert sorted(commands) == sorted(
        ["python", "-m", f"parley_{service}", "migrate"] for service in SETTINGS
    )


def test_compose_wires_the_observability_stack_to_files_that_exist() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in ("otel-collector", "jaeger", "prometheus", "grafana"):
        assert name in services
        for volume in services[name].get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    for service in SETTINGS:
        endpoint = services[service]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert "otel-collector:4318" in endpoint
    collector = yaml.safe_load((DEPLOY / "otel-collector" / "config.yaml").read_text())
    exporter = collector["exporters"]["otlp/jaeger"]["endpoint"]
    assert exporter.split(":")[0] in services
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target.split(":")[0]
        for job in prometheus["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert targets <= set(services)
    assert set(SETTINGS) <= targets
    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text()
    )
    uids = {source["uid"] for source in datasources["datasources"]}
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            assert panel["datasource"]["uid"] in uids
