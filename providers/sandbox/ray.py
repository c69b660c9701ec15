"""RAY in the sandbox: ``POST /ray`` with ``{"model": "CATEGORIZER", "input": {"text"}}`` or
``{"model": "SENTIMENT", "input": [{"text", "id"}]}``.

SENTIMENT answers ``{id: {"sentiment", "score"}}``: POSITIVE or NEGATIVE when the comment has more words of
one list than of the other, NEUTRAL otherwise; the score is a stable function of the text in [0.5, 1).

The label is the category whose keywords the text mentions most (ties go to the earlier
category); a text that mentions none gets a category picked by a stable hash of the text.
The score is a stable function of the text in [0.5, 1), lower without a keyword hit. A body
that is not a CATEGORIZER request, or an empty text, is refused with 422 as a model server does.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PATH = "/ray"
MODEL = "CATEGORIZER"
SENTIMENT_MODEL = "SENTIMENT"
POSITIVE_WORDS = frozenset(
    ("love", "great", "amazing", "best", "good", "nice", "awesome", "beautiful", "wow", "thanks")
)
NEGATIVE_WORDS = frozenset(("hate", "bad", "worst", "boring", "ugly", "terrible", "awful", "fake", "poor", "scam"))

CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Music", ("song", "music", "lofi", "album", "singer", "concert", "remix", "beats", "lyrics")),
    ("Sports", ("cricket", "football", "match", "highlights", "ipl", "goal", "workout", "fitness")),
    ("Beauty", ("makeup", "skincare", "beauty", "hair", "lipstick", "grwm", "nails")),
    ("Education", ("exam", "study", "lecture", "tutorial", "notes", "strategy", "explained", "class")),
    ("Entertainment", ("comedy", "reaction", "movie", "trailer", "prank", "stand-up", "funny", "vlog")),
    ("Gaming", ("gaming", "gameplay", "bgmi", "minecraft", "gta", "walkthrough", "setup")),
    ("Food", ("recipe", "food", "cook", "kitchen", "dal", "biryani", "chai", "masala", "paneer")),
    ("Travel", ("travel", "trip", "trek", "tour", "yatra", "road", "beach", "hotel")),
)
_WORDS = re.compile(r"[a-z0-9-]+")


def _fraction(text: str, salt: str) -> float:
    digest = hashlib.blake2b(f"{salt}\x1f{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def categorize(text: str) -> dict[str, Any]:
    """The sandbox's verdict on ``text``: ``{"label", "score"}``, the same for the same text."""
    words = _WORDS.findall(text.lower())
    hits = [sum(word in keywords for word in words) for _, keywords in CATEGORIES]
    best = max(hits)
    if best:
        label = CATEGORIES[hits.index(best)][0]
        score = 0.7 + 0.3 * _fraction(text, "score")
    else:
        label = CATEGORIES[int(_fraction(text, "label") * len(CATEGORIES))][0]
        score = 0.5 + 0.2 * _fraction(text, "score")
    return {"label": label, "score": round(min(score, 0.9999), 4)}


def sentiment(text: str) -> dict[str, Any]:
    """The sandbox's verdict on a comment: ``{"sentiment", "score"}``, the same for the same text."""
    words = _WORDS.findall(text.lower())
    positive = sum(word in POSITIVE_WORDS for word in words)
    negative = sum(word in NEGATIVE_WORDS for word in words)
    label = "POSITIVE" if positive > negative else "NEGATIVE" if negative > positive else "NEUTRAL"
    return {"sentiment": label, "score": round(min(0.5 + 0.5 * _fraction(text, "sentiment"), 0.9999), 4)}


def _sentiments(comments: Any) -> JSONResponse:
    if not isinstance(comments, list) or not comments:
        return _refuse("input must be a non-empty list of {text, id}")
    answer = {}
    for comment in comments:
        if not isinstance(comment, dict) or not isinstance(comment.get("text"), str) or comment.get("id") is None:
            return _refuse("every input item needs a text and an id")
        answer[str(comment["id"])] = sentiment(comment["text"])
    return JSONResponse(answer)


def _refuse(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=422)


class RayRoutes:
    def route(self) -> Route:
        return Route(PATH, self.predict, methods=["POST"])

    async def predict(self, request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _refuse("body is not JSON")
        if isinstance(body, dict) and body.get("model") == SENTIMENT_MODEL:
            return _sentiments(body.get("input"))
        if not isinstance(body, dict) or body.get("model") != MODEL:
            return _refuse(f"model must be {MODEL} or {SENTIMENT_MODEL}")
        text = body.get("input", {}).get("text") if isinstance(body.get("input"), dict) else None
        if not isinstance(text, str) or not text.strip():
            return _refuse("input.text must be a non-empty string")
        return JSONResponse(categorize(text))
