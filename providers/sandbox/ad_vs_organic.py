"""The ad-vs-organic model in the sandbox: ``POST /ad_vs_organic/ad_vs_organic`` with a JSON array of at most
10 videos (the legacy feature columns), answered ``{videoId: 0 | 1}``.

The verdict is deterministic: a video is predicted an ad (1) when its likes are under 1% of its views, as a
promoted video's views outrun its engagement; otherwise organic (0). More than 10 videos, or a body that is
not an array of objects with a ``videoId``, is refused with 422 as a model server does.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PREFIX = "/ad_vs_organic"
PATH = f"{PREFIX}/ad_vs_organic"
MAX_BATCH = 10
AD_LIKE_RATIO = 0.01


def predict(video: dict[str, Any]) -> int:
    views = video.get("view") or 0
    likes = video.get("likecount") or 0
    return int(bool(views) and likes < AD_LIKE_RATIO * views)


class AdVsOrganicRoutes:
    def route(self) -> Route:
        return Route(PATH, self.predict, methods=["POST"])

    async def predict(self, request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=422)
        if not isinstance(body, list) or not all(isinstance(v, dict) and v.get("videoId") for v in body):
            return JSONResponse({"error": "expected an array of videos with a videoId"}, status_code=422)
        if len(body) > MAX_BATCH:
            return JSONResponse({"error": f"at most {MAX_BATCH} videos per call"}, status_code=422)
        return JSONResponse({str(video["videoId"]): predict(video) for video in body})
