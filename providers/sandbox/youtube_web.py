"""youtube.com's shorts pages in the sandbox (label ``youtube-web``), for the shorts probe, and its channel pages
(``/@handle``), which the facade reads a handle's channel id from.

``/shorts/<id>`` shows a Short of the YouTube world with 200, answers any other video (a long
one or a live) with a 303 to its ``/watch`` page, and an id the world does not know with 404,
as youtube.com does.
"""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from providers.sandbox.youtube import YouTubeWorld

PREFIX = "/youtube-web"
WATCH_URL = "https://www.youtube.com/watch?v={video_id}"

NOT_FOUND_PAGE = "<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>Not Found</body></html>"


class YouTubeWebRoutes:
    def __init__(self, world: YouTubeWorld) -> None:
        self._world = world

    def mount(self) -> Mount:
        return Mount(PREFIX, routes=[Route("/shorts/{video_id}", self.shorts), Route("/{page}", self.channel_page)])

    async def channel_page(self, request: Request) -> Response:
        """``/@handle``: the channel's page, which names its id in the canonical link and the page's metadata."""
        page = request.path_params["page"]
        channel = self._world.channel_for_handle(page) if page.startswith("@") else None
        if channel is None:
            return HTMLResponse(NOT_FOUND_PAGE, status_code=404)
        title = escape(channel.title)
        return HTMLResponse(
            f"<!DOCTYPE html><html><head><title>{title} - YouTube</title>"
            f'<link rel="canonical" href="https://www.youtube.com/channel/{channel.channel_id}">'
            f'<meta itemprop="identifier" content="{channel.channel_id}"></head>'
            f'<body><script>var ytInitialData = {{"metadata":{{"channelMetadataRenderer":{{"title":"{title}",'
            f'"externalId":"{channel.channel_id}"}}}}}};</script></body></html>'
        )

    async def shorts(self, request: Request) -> Response:
        video_id = request.path_params["video_id"]
        video = self._world.video(video_id)
        if video is None:
            return HTMLResponse(NOT_FOUND_PAGE, status_code=404)
        if not video.is_short:
            return RedirectResponse(WATCH_URL.format(video_id=video.video_id), status_code=303)
        title = escape(video.title)
        return HTMLResponse(
            f"<!DOCTYPE html><html><head><title>{title} - YouTube</title>"
            f'<link rel="canonical" href="https://www.youtube.com/shorts/{video.video_id}"></head>'
            f"<body><ytd-shorts>{title}</ytd-shorts></body></html>"
        )
