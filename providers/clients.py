"""Every built provider client by source label: what the crawler can choose from."""

from __future__ import annotations

from core.settings import Settings
from providers.http import ProviderHttp
from providers.instagram import arraybobo, bestsolutions, graphapi, igapi, jotucker, lama, neotank, rocketapi
from providers.shopify import shopify, shopify_graphql
from providers.youtube import youtube138, youtube_analytics, youtube_data, youtube_v311, ytv31

# BEAT_SHOPIFY_API: the GraphQL Admin API, or REST (legacy) for shops on older private apps.
SHOPIFY_CLIENTS = {"graphql": shopify_graphql.ShopifyGraphqlClient, "rest": shopify.ShopifyRestClient}


def build_clients(http: ProviderHttp, settings: Settings) -> dict[str, object]:
    app_token = settings.graph_app_token.get_secret_value() if settings.graph_app_token else None
    return {
        arraybobo.SOURCE: arraybobo.ArrayBoboClient(http),
        jotucker.SOURCE: jotucker.JoTuckerClient(http),
        graphapi.SOURCE: graphapi.GraphApiClient(http, app_token=app_token, version=settings.graph_api_version),
        lama.SOURCE: lama.LamaClient(http),
        bestsolutions.SOURCE: bestsolutions.BestSolutionsClient(http),
        rocketapi.SOURCE: rocketapi.RocketAPIClient(http),
        neotank.SOURCE: neotank.NeoTankClient(http),
        igapi.SOURCE: igapi.IGApiClient(http),
        # The Data API keys (ytapitoken); the per-channel OAuth grants (ytapi) serve Analytics.
        "ytapitoken": youtube_data.YouTubeDataClient(http, "ytapitoken"),
        youtube_analytics.SOURCE: youtube_analytics.YouTubeAnalyticsClient(http),
        ytv31.SOURCE: ytv31.YtV31Client(http),
        youtube138.SOURCE: youtube138.YouTube138Client(http),
        youtube_v311.SOURCE: youtube_v311.YouTubeV311Client(http),
        shopify.SOURCE: SHOPIFY_CLIENTS[settings.shopify_api](http, settings.shopify_api_version),
    }
