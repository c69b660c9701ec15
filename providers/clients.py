"""Every built provider client by source label: what the crawler can choose from."""

from __future__ import annotations

from app.settings import Settings
from providers import arraybobo, bestsolutions, graphapi, igapi, jotucker, lama, neotank, rocketapi
from providers import shopify, youtube138
from providers.http import ProviderHttp


def build_clients(http: ProviderHttp, settings: Settings) -> dict[str, object]:
    app_token = settings.graph_app_token.get_secret_value() if settings.graph_app_token else None
    return {
        arraybobo.SOURCE: arraybobo.ArrayBoboClient(http),
        jotucker.SOURCE: jotucker.JoTuckerClient(http),
        graphapi.SOURCE: graphapi.GraphApiClient(http, app_token=app_token),
        lama.SOURCE: lama.LamaClient(http),
        bestsolutions.SOURCE: bestsolutions.BestSolutionsClient(http),
        rocketapi.SOURCE: rocketapi.RocketAPIClient(http),
        neotank.SOURCE: neotank.NeoTankClient(http),
        igapi.SOURCE: igapi.IGApiClient(http),
        shopify.SOURCE: shopify.ShopifyClient(http),
        youtube138.SOURCE: youtube138.YouTube138Client(http),
    }
