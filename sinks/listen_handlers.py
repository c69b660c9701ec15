"""What ``beat listen`` does with each legacy inbound message (legacy-beat.md §8, issue #17).

Each handler takes the decoded body, makes its effect durable (a committed row, or a request recorded and
on the broker) and returns; it raises on failure. A body that is not the message's shape is refused by
its pydantic model (``ValidationError``): retrying cannot fix it. Fields the legacy producers send beyond
these are ignored.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.requests import NotHandedOver, prepare, submit
from core.settings import Settings
from providers import credential_probes
from providers.credentials import CredentialStore
from providers.errors import AuthExpired, DefinitiveProviderError
from providers.graph_tokens import update_graph_token
from providers.http import Credential
from providers.identity import graph_account
from providers.instagram import graphapi
from topics.errors import BeatError

log = logging.getLogger(__name__)

# The flows (issue #16, *Reports*) these messages become requests of, named after the legacy listeners'
# handlers that ran the same work inline.
KEYWORD_COLLECTION_FLOW = "fetch_keyword_collection"
SENTIMENT_COLLECTION_FLOW = "fetch_sentiment_report"
COMMENT_SENTIMENT_FLOW = "sentiment_extraction"
# The most comments one sentiment request carries.
SENTIMENT_BATCH = 1000


class Refused(BeatError, ValueError):
    """The message can never succeed as sent (no retry helps): it goes to the dead-letter queue at once."""


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class NewToken(Body):
    handle: str = Field(min_length=1)
    platform: str | None = None
    social_user_id: str | None = Field(None, alias="socialUserId")
    graph_access_token: str | None = Field(None, alias="graphAccessToken", repr=False)


class ValidateCredential(Body):
    source: str | None = None
    handle: str | None = None
    credential_id: int | None = None

    @model_validator(mode="after")
    def _names_one(self) -> ValidateCredential:
        if self.credential_id is None and not (self.source and self.handle):
            raise ValueError('expected {"source", "handle"} or {"credential_id"}')
        return self


class KeywordCollection(Body):
    job_id: str = Field(min_length=1)
    keywords: list[str]
    platform: str
    start_date: str
    end_date: str


class SentimentCollection(Body):
    collection_type: str = Field(alias="collectionType")
    collection_id: str = Field(alias="collectionId")
    shortcodes: list[str] | None = None


class ActivityRow(Body):
    platform_post_id: str | None = None
    # The legacy rows list their dimensions as [{key, value}]; a mapping is read alike.
    dimensions: list[dict[str, Any]] | dict[str, Any] = Field(default_factory=dict)

    def dimension(self, name: str) -> Any:
        if isinstance(self.dimensions, dict):
            return self.dimensions.get(name)
        return next((d.get("value") for d in self.dimensions if d.get("key") == name), None)


class ActivityPage(Body):
    platform: str
    activity_type: str | None = None
    post_activity_logs: list[ActivityRow]

    def comments_by_post(self) -> dict[str, list[dict[str, str]]]:
        """The page's comments with text and id, {text, id}, by the post they are on; likes have none."""
        posts: dict[str, list[dict[str, str]]] = {}
        for row in self.post_activity_logs:
            text, comment_id = row.dimension("text"), row.dimension("comment_id")
            if row.platform_post_id and text and comment_id:
                posts.setdefault(row.platform_post_id, []).append({"text": str(text), "id": str(comment_id)})
        return posts


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as a handler sees it: the decoded body, and the publisher's message id if it set one."""

    body: dict[str, Any]
    message_id: str | None = None


@dataclass
class ListenContext:
    """What the handlers share: one pool, one producer, the provider clients by source label."""

    settings: Settings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    clients: dict[str, object]


async def new_access_token(ctx: ListenContext, delivery: Delivery) -> None:
    """The identity service has a new Graph token for a handle: store it (the legacy update_token)."""
    message = NewToken.model_validate(delivery.body)
    token, user_id = message.graph_access_token, message.social_user_id
    if not token or not user_id:
        # The message announces the token; the identity service's route holds it.
        if not ctx.settings.identity_url:
            raise Refused("the message carries no graphAccessToken and BEAT_IDENTITY_URL is not set")
        account = await graph_account(ctx.settings.identity_url, message.handle, timeout=ctx.settings.http_timeout)
        token, user_id = account.token, account.user_id
    await update_graph_token(ctx.pool, message.handle, token, user_id)
    log.info("stored a new Graph token for handle %s", message.handle)


async def validate_credential(ctx: ListenContext, delivery: Delivery) -> None:
    """Check a credential now: valid marks it so, a refused token or key sets ``data_access_expired``.

    Graph tokens are checked with ``debug_token`` and the scope checks; any other source with one cheap
    call (``providers/credential_probes.py``)."""
    message = ValidateCredential.model_validate(delivery.body)
    store = CredentialStore(ctx.pool)
    credential_id = str(message.credential_id) if message.credential_id is not None else None
    found = await store.find(credential_id=credential_id, source=message.source, handle=message.handle)
    if not found:
        raise Refused(f"no credential matches {message.model_dump(exclude_none=True)}")
    for credential in found:
        if credential.source == graphapi.SOURCE:
            problem = await _graph_problem(ctx, credential)
        else:
            problem = await _probe_problem(ctx, credential)
        await store.set_expired(credential.id, problem is not None)
        log.info("credential %s of %s checked: %s", credential.id, credential.source, problem or "valid")


async def _graph_problem(ctx: ListenContext, credential: Credential) -> str | None:
    """Why Graph will not serve this credential's token (debug_token and the scope checks), or None."""
    token = credential.secrets.get("token")
    if not token:
        return "no token"
    app_token = ctx.settings.graph_app_token
    if app_token is None:
        raise Refused("BEAT_GRAPH_APP_TOKEN is not set: debug_token needs the app's token")
    graph = ctx.clients[graphapi.SOURCE]
    assert isinstance(graph, graphapi.GraphApiClient)
    try:
        info = await graph.debug_token(str(token), app_token.get_secret_value(), credential=credential)
    except AuthExpired as exc:
        return exc.message
    except DefinitiveProviderError as exc:
        raise Refused(f"debug_token: {exc.message}") from None
    return info.problem(datetime.now(UTC))


async def _probe_problem(ctx: ListenContext, credential: Credential) -> str | None:
    client = ctx.clients.get(credential.source)
    if client is None:
        raise Refused(f"credential {credential.id}: no client for source {credential.source}")
    try:
        return await credential_probes.refusal(client, credential)
    except DefinitiveProviderError as exc:
        raise Refused(f"credential {credential.id}: {exc.message}") from None


async def keyword_collection(ctx: ListenContext, delivery: Delivery) -> None:
    message = KeywordCollection.model_validate(delivery.body)
    # Coffee's job id is unique per job, so a redelivered message names the same request.
    await _submit(ctx, KEYWORD_COLLECTION_FLOW, message.model_dump(), f"amqp:{message.job_id}")


async def sentiment_collection(ctx: ListenContext, delivery: Delivery) -> None:
    message = SentimentCollection.model_validate(delivery.body)
    params = message.model_dump(by_alias=True, exclude_none=True)
    # Coffee asks for a collection's report again when it wants it fresh, so the body names no request of its
    # own: the AMQP message id does (a redelivery carries it), and without one each delivery is a new report.
    key = f"amqp:{delivery.message_id}" if delivery.message_id else None
    await _submit(ctx, SENTIMENT_COLLECTION_FLOW, params, key)


async def activity_page(ctx: ListenContext, delivery: Delivery) -> None:
    """A page of likes or comments from an external publisher: a sentiment request per post and batch of its
    comments (Beat's own pages reach sentiment over Kafka). A page of likes asks for nothing."""
    message = ActivityPage.model_validate(delivery.body)
    platform = message.platform.upper()
    for shortcode, comments in message.comments_by_post().items():
        for start in range(0, len(comments), SENTIMENT_BATCH):
            batch = comments[start : start + SENTIMENT_BATCH]
            params = {"platform": platform, "shortcode": shortcode, "comments": batch}
            await _submit(ctx, COMMENT_SENTIMENT_FLOW, params, f"amqp:{_digest(params)}")


async def _submit(ctx: ListenContext, flow: str, params: dict[str, Any], idempotency_key: str | None) -> None:
    # prepare refuses an unknown or disabled flow and invalid params (a ValueError): no retry changes that.
    request = prepare(flow, params, disabled=ctx.settings.disabled_flows, idempotency_key=idempotency_key)
    try:
        request_id = await submit(ctx.pool, ctx.producer, ctx.settings, request)
    except NotHandedOver as exc:
        # Recorded PENDING in Postgres, which is durable: the reconciler hands it to the broker once it is back.
        log.warning("%s request %s recorded; the reconciler hands it over: %s", flow, request.id, exc)
        return
    log.info("submitted %s request %s", flow, request_id)


def _digest(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:32]
