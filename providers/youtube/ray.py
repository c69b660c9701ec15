"""RAY, the in-house model server, asked to categorise posts (legacy §2.2, §11.2) and to judge the
sentiment of comments (legacy §11.4).

SENTIMENT takes a page of comments in one POST, ``{"model": "SENTIMENT", "input": [{"text", "id"}]}``,
answered by an object keyed by comment id, each ``{"sentiment": ..., "score": ...}``; it is tried once
more after ``retry_wait`` on a retriable failure, and then the failure is the caller's.

One POST per text, ``{"model": "CATEGORIZER", "input": {"text": ...}}``, answered
``{"label": ..., "score": ...}``. RAY is one endpoint URL (``BEAT_RAY_URL``) rather than a host
with paths: the worker passes it as the base URL of the label ``ray``
(``ProviderHttp(base_urls={..., "ray": settings.ray_url})``) and this client posts to that URL
itself, so the call still goes through ProviderHttp's timeout, error mapping and trace.

A call that fails retriably (timeout, 5xx, 429) is tried once more after ``retry_wait`` seconds
(legacy: one retry after 2 s). A text RAY still cannot categorise is left out of the result and
counted in the log; the caller sees it as a post id missing from the answer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from providers.errors import BadResponse, ProviderError, RetriableProviderError
from providers.http import ProviderHttp
from providers.parsing import Values, json_object

log = logging.getLogger(__name__)

SOURCE = "ray"
MODEL = "CATEGORIZER"
SENTIMENT_MODEL = "SENTIMENT"
RETRY_WAIT = 2.0
# Texts categorised at once: RAY is a shared model server with no published rate limit.
MAX_CONCURRENCY = 8

_v = Values(SOURCE)


def parse_category(payload: Any) -> dict[str, Any]:
    """A CATEGORIZER answer as ``{"label": str, "score": float}``."""
    payload = _v.require_object(payload)
    label = _v.text(payload.get("label"), "label")
    if label is None or not label.strip():
        raise BadResponse("answer has no label", source=SOURCE)
    score = _v.number(payload.get("score"), "score")
    if score is None:
        raise BadResponse("answer has no score", source=SOURCE)
    return {"label": label.strip(), "score": score}


def parse_sentiments(payload: Any, asked: set[str]) -> dict[str, dict[str, Any]]:
    """A SENTIMENT answer as ``{comment id: {"sentiment": str, "score": float}}``, for the ids asked only."""
    payload = _v.require_object(payload)
    verdicts = {}
    for comment_id, verdict in payload.items():
        if comment_id not in asked:
            continue
        verdict = _v.require_object(verdict)
        sentiment = _v.text(verdict.get("sentiment"), f"{comment_id}.sentiment")
        score = _v.number(verdict.get("score"), f"{comment_id}.score")
        if not sentiment or score is None:
            raise BadResponse(f"the answer for comment {comment_id} has no sentiment or score", source=SOURCE)
        verdicts[comment_id] = {"sentiment": sentiment, "score": score}
    return verdicts


class RayClient:
    def __init__(
        self, http: ProviderHttp, *, retry_wait: float = RETRY_WAIT, max_concurrency: int = MAX_CONCURRENCY
    ) -> None:
        self._http = http
        self._retry_wait = retry_wait
        self._max_concurrency = max_concurrency

    async def categorize(
        self, texts: list[tuple[str, str]], *, request_id: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """``{post id: {"label", "score"}}`` for the ``(post id, text)`` pairs RAY could categorise."""
        slots = asyncio.Semaphore(self._max_concurrency)

        async def one(post_id: str, text: str) -> tuple[str, dict[str, Any] | None]:
            async with slots:
                return post_id, await self._category(post_id, text, request_id)

        answers = await asyncio.gather(*(one(post_id, text) for post_id, text in texts))
        categories = {post_id: category for post_id, category in answers if category is not None}
        if len(categories) < len(answers):
            log.warning("RAY left %d of %d texts uncategorised", len(answers) - len(categories), len(answers))
        return categories

    async def sentiments(
        self, comments: list[dict[str, str]], *, request_id: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """``{comment id: {"sentiment", "score"}}`` for a page of ``[{"text", "id"}]``; a comment the model
        left out is missing from the answer. A failure after the one retry is raised."""
        body = {"model": SENTIMENT_MODEL, "input": comments}
        asked = {comment["id"] for comment in comments}

        async def ask() -> dict[str, dict[str, Any]]:
            response = await self._http.request(SOURCE, "POST", "", json=body, request_id=request_id)
            return parse_sentiments(json_object(response, SOURCE, BadResponse, "POST sentiment"), asked)

        try:
            return await ask()
        except RetriableProviderError as exc:
            log.info("RAY sentiment failed (%s); one retry in %g s", exc, self._retry_wait)
        await asyncio.sleep(self._retry_wait)
        return await ask()

    async def _category(self, post_id: str, text: str, request_id: str | None) -> dict[str, Any] | None:
        body = {"model": MODEL, "input": {"text": text}}
        try:
            return await self._ask(body, request_id)
        except RetriableProviderError as exc:
            log.info("RAY failed for %s (%s); one retry in %g s", post_id, exc, self._retry_wait)
        except ProviderError as exc:
            log.warning("RAY could not categorise %s: %s", post_id, exc)
            return None
        await asyncio.sleep(self._retry_wait)
        try:
            return await self._ask(body, request_id)
        except ProviderError as exc:
            log.warning("RAY could not categorise %s after a retry: %s", post_id, exc)
            return None

    async def _ask(self, body: dict[str, Any], request_id: str | None) -> dict[str, Any]:
        response = await self._http.request(SOURCE, "POST", "", json=body, request_id=request_id)
        return parse_category(json_object(response, SOURCE, BadResponse, "POST categorize"))
