"""``beat topics plan|create|check``: every topic Beat uses, as the settings plan it, created and verified.

Partitions, the replication factor, ``min.insync.replicas`` and retention per kind of topic come from
configuration (``BEAT_REQUEST_PARTITIONS``, ``BEAT_TOPIC_REPLICATION``, ``BEAT_TOPIC_MIN_INSYNC_REPLICAS``,
``BEAT_TOPIC_RETENTION_MS``). ``create`` is idempotent: it creates what is missing and reports, without
changing it, a topic that differs (a partition count or a replication factor is an operator's decision).
"""

from __future__ import annotations

import typer

from app.cli_support import Failure, command_settings, run_against_services
from core.settings import Settings

# How long a starting role waits for missing topics (an embedded broker's reconciler recreates them) before it
# exits naming them.
TOPICS_WAIT = 30.0

topics_app = typer.Typer(help="Beat's Kafka topics: plan, create, check.")


def _planned(settings: Settings) -> dict[str, int]:
    from core.topic_admin import all_topics
    from topics.flows import FLOWS

    return all_topics(settings, FLOWS)


def _broker_settings() -> Settings:
    settings = command_settings()
    if not settings.kafka_url:
        raise Failure("BEAT_KAFKA_URL is not set; `beat topics` works on the cluster it names")
    return settings


def _report(differences: list) -> int:
    for difference in differences:
        typer.echo(f"differs  {difference}")
    return 1 if differences else 0


@topics_app.command("plan")
def topics_plan() -> int:
    """Print every topic Beat uses, with its partitions, replication and configs (no broker needed)."""
    from core.topic_admin import new_topic

    settings = command_settings()
    for name, partitions in _planned(settings).items():
        topic = new_topic(settings, name, partitions)
        configs = " ".join(f"{key}={value}" for key, value in sorted((topic.topic_configs or {}).items()))
        typer.echo(f"{name}  partitions={partitions} replication={topic.replication_factor} {configs}".rstrip())
    return 0


@topics_app.command("create")
def topics_create() -> int:
    """Create the missing topics; report (exit 1) any existing one that differs from the plan."""
    from core.topic_admin import ensure_topics
    from core.topic_check import check_topics

    settings = _broker_settings()
    planned = _planned(settings)

    async def work() -> tuple[list[str], list]:
        created = await ensure_topics(settings.kafka_url or "", planned, settings)
        return created, await check_topics(settings, planned)

    created, differences = run_against_services(settings, work())
    for name in created:
        typer.echo(f"created  {name}")
    typer.echo(f"{len(created)} created, {len(planned) - len(created)} already there")
    return _report(differences)


@topics_app.command("check")
def topics_check() -> int:
    """Compare the broker's topics with the plan; exit 1 and print each difference when they differ."""
    from core.topic_check import check_topics

    settings = _broker_settings()
    planned = _planned(settings)
    differences = run_against_services(settings, check_topics(settings, planned))
    if not differences:
        typer.echo(f"all {len(planned)} topics as planned")
    return _report(differences)


def require_role_topics(settings: Settings, flows: list[str] | None = None) -> None:
    """At a role's start: fail naming the missing topics of ``flows`` (default every flow) and the shared ones,
    instead of a client creating them half-configured or waiting on them obscurely."""
    from core.topic_admin import all_topics
    from core.topic_check import MissingTopics, require_topics
    from topics import names
    from topics.flows import FLOWS

    # The retry tiers are left out: they are configuration, and the retry consumer creates a tier added since.
    retry_tiers = settings.topic(names.RETRY_PREFIX)
    topics = [
        name for name in all_topics(settings, FLOWS if flows is None else flows) if not name.startswith(retry_tiers)
    ]
    try:
        run_against_services(settings, require_topics(settings, topics, wait=TOPICS_WAIT))
    except MissingTopics as exc:
        raise Failure(str(exc)) from None
