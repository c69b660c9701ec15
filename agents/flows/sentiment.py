"""``sentiment_extraction`` (legacy §11.4): a page of comments to RAY's SENTIMENT model, one
``sentiment_log`` event per comment it judged.

Its requests come from the sentiment feed (``agents/sentiment_feed.py``), one per page event of comments
on ``post_activity_log``. Without ``BEAT_RAY_URL`` the request completes and says "skipped", as keyword
categorisation does. A comment the model leaves out of its answer is counted, not invented.
"""

from __future__ import annotations

from agents.flows.context import FlowContext
from providers.youtube import ray
from topics.models import Platform
from topics.params import SentimentParams
from topics.sentiment import Sentiment

SKIPPED = "skipped: BEAT_RAY_URL is not set"


async def sentiment_extraction(ctx: FlowContext, params: SentimentParams) -> dict:
    client = ctx.tools.ray if ctx.tools else None
    if client is None:
        return ctx.summary(sentiments=0, sentiment=SKIPPED)
    comments = [comment.model_dump() for comment in params.comments]
    verdicts = await client.sentiments(comments, request_id=ctx.request_id)
    ctx.used(ray.SOURCE)
    platform = Platform(params.platform)
    for comment in params.comments:
        verdict = verdicts.get(comment.id)
        if verdict is None:
            continue
        ctx.emit(
            Sentiment(
                platform=platform,
                shortcode=params.shortcode,
                comment_id=comment.id,
                comment=comment.text,
                sentiment=verdict["sentiment"],
                score=verdict["score"],
            )
        )
    judged = sum(comment.id in verdicts for comment in params.comments)
    return ctx.summary(sentiments=judged, missing=len(params.comments) - judged, sentiment="done")
