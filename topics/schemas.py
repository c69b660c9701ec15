"""The JSON Schema of each topic's records, as ``beat schemas`` publishes them for consumers.

Events ignore fields they do not know (``Model``), so no schema says ``additionalProperties: false``:
a consumer validating with an older schema still accepts an event that gained a field.
"""

from __future__ import annotations

from typing import Any

from topics.models import SCHEMA_VERSION
from topics.registry import TopicSpec

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def schema_id(spec: TopicSpec) -> str:
    """A stable id per topic and schema version: a version that drops or retypes a field is a new id."""
    return f"urn:beat:topic:{spec.schema_file.removesuffix('.json')}:v{SCHEMA_VERSION}"


def topic_schema(spec: TopicSpec) -> dict[str, Any]:
    """The records of ``spec``'s topic as a JSON Schema document (what producers write, defaults included)."""
    model = spec.event.model_json_schema(mode="serialization")
    schema: dict[str, Any] = {
        "$schema": DRAFT,
        "$id": schema_id(spec),
        "title": spec.name,
        "description": f"{model.pop('description', '').strip()}\n\nRecord key: {spec.key}.",
        "x-record-key": spec.key,
        **{name: value for name, value in model.items() if name != "title"},
    }
    for variant in spec.variants.values():
        # The topic's other records (page events) share its fields; theirs are described beside them, not required.
        other = variant.model_json_schema(mode="serialization")
        for name, prop in other["properties"].items():
            schema["properties"].setdefault(name, prop)
        for name, definition in other.get("$defs", {}).items():
            schema.setdefault("$defs", {}).setdefault(name, definition)
    if spec.kinds:
        kind = schema["properties"]["kind"]
        kind["examples"] = list(spec.kinds)
        kind["description"] = (
            f"what the event describes: {', '.join(spec.kinds)} today; a consumer skips a kind "
            "it does not know, since a later version may add one"
        )
    return schema
