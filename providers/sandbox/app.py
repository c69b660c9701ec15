"""The sandbox as one ASGI app: every sandboxed provider under its source label, behind the knobs."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import ASGIApp

from providers.sandbox.ad_vs_organic import AdVsOrganicRoutes
from providers.sandbox.admin import AdminRoutes
from providers.sandbox.arraybobo import ArrayBoboRoutes
from providers.sandbox.bestsolutions import BestSolutionsRoutes
from providers.sandbox.cdn_routes import CdnRoutes
from providers.sandbox.config import SandboxConfig
from providers.sandbox.graphapi import GraphApiRoutes
from providers.sandbox.igapi import IGApiRoutes
from providers.sandbox.instagram import InstagramWorld
from providers.sandbox.jotucker import JoTuckerRoutes
from providers.sandbox.knobs import Knobs
from providers.sandbox.lama import LamaRoutes
from providers.sandbox.neotank import NeoTankRoutes
from providers.sandbox.openai import OpenAIRoutes
from providers.sandbox.ray import RayRoutes
from providers.sandbox.rocketapi import RocketAPIRoutes
from providers.sandbox.shopify import ShopifyRoutes
from providers.sandbox.state import SandboxState
from providers.sandbox.youtube import YouTubeWorld
from providers.sandbox.youtube138 import YouTube138Routes
from providers.sandbox.youtube_analytics import YouTubeAnalyticsRoutes
from providers.sandbox.youtube_data import YouTubeDataRoutes
from providers.sandbox.youtube_v311 import YouTubeV311Routes
from providers.sandbox.youtube_web import YouTubeWebRoutes
from providers.sandbox.ytv31 import YtV31Routes


def create_app(config: SandboxConfig) -> ASGIApp:
    state = SandboxState(config)
    instagram = InstagramWorld()
    youtube = YouTubeWorld()
    routes = [
        *AdminRoutes(state).routes(),
        ArrayBoboRoutes(instagram).mount(),
        GraphApiRoutes(instagram, state).mount(),
        JoTuckerRoutes(instagram).mount(),
        LamaRoutes(instagram).mount(),
        BestSolutionsRoutes(instagram).mount(),
        RocketAPIRoutes(instagram).mount(),
        NeoTankRoutes(instagram).mount(),
        IGApiRoutes(instagram).mount(),
        CdnRoutes().mount(),
        *YouTubeDataRoutes(youtube).mounts(),
        *YouTubeAnalyticsRoutes(youtube).mounts(),
        YtV31Routes(youtube).mount(),
        YouTubeV311Routes(youtube).mount(),
        YouTube138Routes(youtube).mount(),
        YouTubeWebRoutes(youtube).mount(),
        RayRoutes().route(),
        AdVsOrganicRoutes().route(),
        OpenAIRoutes().mount(),
        ShopifyRoutes().mount(),
    ]
    return Knobs(Starlette(routes=routes), state)
