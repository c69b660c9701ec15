"""Schemas that evolve without breaking a rolling upgrade.

A producer never drops or retypes a field without a new ``schema_version``: each topic's record fields and
their JSON types are pinned per version in ``tests/fixtures/event_fields/v<N>.json``. Consumers ignore
fields they do not know, and the published schemas do not forbid them, so an added field is safe.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from tests.support import FIXTURES
from topics.models import SCHEMA_VERSION, Model, ProfileLog
from topics.registry import TOPICS
from topics.schemas import topic_schema

SNAPSHOTS = FIXTURES / "event_fields"


def _json_type(prop: dict[str, Any], defs: dict[str, Any], name: str, out: dict[str, str]) -> str:
    """``prop``'s JSON type as a short string; the fields of a nested object go to ``out`` as ``name.field``."""
    if "$ref" in prop:
        target = defs[prop["$ref"].rsplit("/", 1)[-1]]
        if "properties" in target:
            _fields(target, defs, f"{name}.", out)
            return "object"
        return _json_type(target, defs, name, out)
    if "anyOf" in prop:
        return "|".join(sorted(_json_type(option, defs, name, out) for option in prop["anyOf"]))
    kind = prop.get("type")
    if kind is None:
        return "any"
    if "enum" in prop:
        return f"{kind}(enum)"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"object<{_json_type(prop['additionalProperties'], defs, name, out)}>"
    if kind == "array" and "items" in prop:
        return f"array<{_json_type(prop['items'], defs, f'{name}[]', out)}>"
    return f"{kind}({prop['format']})" if "format" in prop else kind


def _fields(schema: dict[str, Any], defs: dict[str, Any], prefix: str, out: dict[str, str]) -> None:
    for name, prop in schema["properties"].items():
        out[f"{prefix}{name}"] = _json_type(prop, defs, f"{prefix}{name}", out)


def fields_of(model: type[Model]) -> dict[str, str]:
    """Every field a record of ``model`` carries, nested ones dotted, with its JSON type."""
    schema = model.model_json_schema(mode="serialization")
    out: dict[str, str] = {}
    _fields(schema, schema.get("$defs", {}), "", out)
    return dict(sorted(out.items()))


def drift(pinned: dict[str, dict[str, str]], current: dict[str, dict[str, str]]) -> tuple[list[str], list[str]]:
    """(fields dropped or retyped since ``pinned``, fields added since)."""
    broken = [
        f"{topic}.{name}: {kind} -> {current.get(topic, {}).get(name, 'dropped')}"
        for topic, fields in pinned.items()
        for name, kind in fields.items()
        if current.get(topic, {}).get(name) != kind
    ]
    added = [
        f"{topic}.{name}: {kind}"
        for topic, fields in current.items()
        for name, kind in fields.items()
        if name not in pinned.get(topic, {})
    ]
    return broken, added


def current_fields() -> dict[str, dict[str, str]]:
    # A topic's other payloads (the page events of post_activity_log) are pinned with its own fields.
    return {
        spec.name: dict(
            sorted(
                {
                    **fields_of(spec.event),
                    **{k: v for e in spec.variants.values() for k, v in fields_of(e).items()},
                }.items()
            )
        )
        for spec in TOPICS
    }


def test_no_field_is_dropped_or_retyped_without_a_new_schema_version():
    snapshot = SNAPSHOTS / f"v{SCHEMA_VERSION}.json"
    assert snapshot.exists(), f"schema_version {SCHEMA_VERSION} has no snapshot: write {snapshot}"
    broken, _ = drift(json.loads(snapshot.read_text()), current_fields())
    assert not broken, (
        f"fields dropped or retyped under schema_version {SCHEMA_VERSION}: {broken}. A consumer "
        f"one version behind breaks on them: bump SCHEMA_VERSION and pin the new fields in "
        f"v{SCHEMA_VERSION + 1}.json"
    )


def test_the_snapshot_pins_every_field_beat_writes():
    _, added = drift(json.loads((SNAPSHOTS / f"v{SCHEMA_VERSION}.json").read_text()), current_fields())
    assert not added, f"new fields need no new version, but pin them in v{SCHEMA_VERSION}.json: {added}"


def test_the_rule_catches_a_retyped_a_dropped_and_an_added_field():
    class Retyped(ProfileLog):
        attempt: str = Field("1")  # type: ignore[assignment]
        source: str | None = None
        observed_at: int = 0  # type: ignore[assignment]
        campaign: str | None = None

    pinned = {"profile_log": fields_of(ProfileLog)}
    changed = fields_of(Retyped)
    del changed["handle"]
    broken, added = drift(pinned, {"profile_log": changed})
    assert sorted(broken) == [
        "profile_log.attempt: integer -> string",
        "profile_log.handle: null|string -> dropped",
        "profile_log.observed_at: string(date-time) -> integer",
        "profile_log.source: string -> null|string",
    ]
    assert added == ["profile_log.campaign: null|string"]


def _forbidding(node: Any) -> list[Any]:
    if isinstance(node, dict):
        found = [node] if node.get("additionalProperties") is False else []
        return found + [hit for value in node.values() for hit in _forbidding(value)]
    if isinstance(node, list):
        return [hit for value in node for hit in _forbidding(value)]
    return []


def test_no_published_schema_forbids_an_unknown_field():
    for spec in TOPICS:
        assert not _forbidding(topic_schema(spec)), spec.name
