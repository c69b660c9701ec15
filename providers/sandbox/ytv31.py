"""youtube-v31 (RapidAPI) in the sandbox: a Data API v3 proxy, answering its ``/channels``, ``/videos``,
``/playlistItems`` and ``/search`` with the Data API's own answers from the same world.

RapidAPI checks the key first, in its own words: no ``x-rapidapi-key`` → 401, a key starting
``unsubscribed-`` → 403 (not subscribed to this API), a key starting ``quota-`` → 429 (the plan's
monthly quota is spent). youtube-v311 (``youtube_v311.py``) uses the same gate.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from providers.sandbox.youtube import YouTubeWorld
from providers.sandbox.youtube_data import DataApiAnswers, endpoint

PREFIX = "/yt-v31"
UNSUBSCRIBED_KEY_PREFIX = "unsubscribed-"
QUOTA_KEY_PREFIX = "quota-"

NO_KEY = {"message": "Invalid API key. Go to https://docs.rapidapi.com/docs/keys for more info."}
NOT_SUBSCRIBED = {"message": "You are not subscribed to this API."}
QUOTA_SPENT = {
    "message": "You have exceeded the MONTHLY quota for Requests on your current plan, BASIC. "
    "Upgrade your plan at https://rapidapi.com/"
}


def rapidapi_gate(request: Request) -> JSONResponse | None:
    key = request.headers.get("x-rapidapi-key")
    if not key:
        return JSONResponse(NO_KEY, status_code=401)
    if key.startswith(UNSUBSCRIBED_KEY_PREFIX):
        return JSONResponse(NOT_SUBSCRIBED, status_code=403)
    if key.startswith(QUOTA_KEY_PREFIX):
        return JSONResponse(QUOTA_SPENT, status_code=429)
    return None


class YtV31Routes:
    def __init__(self, world: YouTubeWorld) -> None:
        self._answers = DataApiAnswers(world)

    def mount(self) -> Mount:
        answers = self._answers
        return Mount(
            PREFIX,
            routes=[
                Route(f"/{resource}", endpoint(answer, rapidapi_gate))
                for resource, answer in (
                    ("channels", answers.channels),
                    ("videos", answers.videos),
                    ("playlistItems", answers.playlist_items),
                    ("search", answers.search),
                )
            ],
        )
