"""youtube-v311 (RapidAPI, source ``rapidapi-yt-search``) in the sandbox: a Data API v3 proxy whose
``/search/`` and ``/commentThreads/`` (with the trailing slash) answer the Data API's own answers
from the same world, behind the RapidAPI key gate of ``ytv31.py``.
"""

from __future__ import annotations

from starlette.routing import Mount, Route

from providers.sandbox.youtube import YouTubeWorld
from providers.sandbox.youtube_data import DataApiAnswers, endpoint
from providers.sandbox.ytv31 import rapidapi_gate

PREFIX = "/rapidapi-yt-search"


class YouTubeV311Routes:
    def __init__(self, world: YouTubeWorld) -> None:
        self._answers = DataApiAnswers(world)

    def mount(self) -> Mount:
        return Mount(
            PREFIX,
            routes=[
                Route("/search/", endpoint(self._answers.search, rapidapi_gate)),
                Route("/commentThreads/", endpoint(self._answers.comment_threads, rapidapi_gate)),
            ],
        )
