"""Credentials and base URLs that point Beat at a running sandbox (``beat up --sandbox``, the demo, tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.sandbox import cdn
from providers.sandbox.ad_vs_organic import PREFIX as AD_VS_ORGANIC_PREFIX
from providers.sandbox.cdn_routes import PREFIX as CDN_PREFIX
from providers.sandbox.youtube import DEMO_CHANNEL_ID
from providers.sandbox.youtube_analytics import refresh_token_for
from providers.sources import SOURCES

if TYPE_CHECKING:
    from providers.credentials import CredentialStore

# Each in the shape its provider expects; the sandbox meters them like the real keys.
SANDBOX_CREDENTIALS: dict[str, dict[str, str]] = {
    "rapidapi-arraybobo": {
        "x-rapidapi-key": "sandbox-arraybobo",
        "x-rapidapi-host": "instagram-scraper-2022.p.rapidapi.com",
    },
    "rapidapi-jotucker": {"x-rapidapi-key": "sandbox-jotucker", "x-rapidapi-host": "instagram-scraper2.p.rapidapi.com"},
    "rapidapi-bestsolutions": {
        "x-rapidapi-key": "sandbox-bestsolutions",
        "x-rapidapi-host": "instagram-api-cheap-best-performance.p.rapidapi.com",
    },
    "rapidapi-neotank": {"x-rapidapi-key": "sandbox-neotank", "x-rapidapi-host": "instagram130.p.rapidapi.com"},
    "rapidapi-igapi": {"x-rapidapi-key": "sandbox-igapi", "x-rapidapi-host": "igdata.p.rapidapi.com"},
    "lama": {"x-access-key": "sandbox-lama"},
    "rocketapi": {"Authorization": "Token sandbox-rocketapi"},
    "graphapi": {"token": "sandbox-graph-token", "user_id": "17841400000000001"},
    "ytapitoken": {"key": "sandbox-yt-key"},
    "yt-v31": {"x-rapidapi-key": "sandbox-ytv31", "x-rapidapi-host": "youtube-v31.p.rapidapi.com"},
    "rapidapi-yt": {"x-rapidapi-key": "sandbox-youtube138", "x-rapidapi-host": "youtube138.p.rapidapi.com"},
    "rapidapi-yt-search": {"x-rapidapi-key": "sandbox-ytv311", "x-rapidapi-host": "youtube-v311.p.rapidapi.com"},
}

SANDBOX_STORE = "three-pages.myshopify.com"

# Credentials that belong to one account (source, handle, secrets): the YouTube Analytics OAuth grant of
# the sandbox's demo channel and the Admin API token of a sandbox store.
SANDBOX_HANDLE_CREDENTIALS: tuple[tuple[str, str, dict[str, str]], ...] = (
    (
        "ytapi",
        DEMO_CHANNEL_ID,
        {
            "refresh_token": refresh_token_for(DEMO_CHANNEL_ID),
            "channel_id": DEMO_CHANNEL_ID,
            "client_id": "sandbox-client.apps.googleusercontent.com",
            "client_secret": "sandbox-client-secret",
        },
    ),
    ("shopify", SANDBOX_STORE, {"X-Shopify-Access-Token": "shpat_sandbox"}),
)


def sandbox_base_urls(sandbox_url: str) -> dict[str, str]:
    # A label whose real host varies per call (Shopify's store domain) keeps the variable as a path step.
    return {
        label: f"{sandbox_url}/{label}" + ("/{store}" if "{store}" in spec.base_url else "")
        for label, spec in SOURCES.items()
    }


def sandbox_service_settings(sandbox_url: str) -> dict[str, str]:
    """Settings pointing the RAY categoriser, the ad-vs-organic model and the OpenAI-compatible endpoint at the
    sandbox."""
    return {
        "ray_url": f"{sandbox_url}/ray",
        "ad_vs_organic_url": f"{sandbox_url}{AD_VS_ORGANIC_PREFIX}",
        "openai_base_url": f"{sandbox_url}/openai/v1",
        "openai_api_key": "sandbox-openai-key",
    }


def sandbox_cdn_base_urls(sandbox_url: str) -> dict[str, str]:
    """``BEAT_CDN_BASE_URLS``: the sandbox serves the CDN host its URLs name."""
    return {cdn.HOST: f"{sandbox_url}{CDN_PREFIX}"}


def sandbox_source_rate_limits() -> dict[str, None]:
    """``BEAT_SOURCE_RATE_LIMITS`` lifting every legacy per-source limit: they protect the real
    providers' budgets, and the sandbox enforces only the limits its own knobs set."""
    from providers.ratelimit import DEFAULT_SOURCE_RATES

    return dict.fromkeys(DEFAULT_SOURCE_RATES)


async def seed_credentials(store: CredentialStore, tag: str) -> None:
    """Every sandbox credential into ``store``; seeding again under the same ``tag`` changes nothing."""
    for source, secrets in SANDBOX_CREDENTIALS.items():
        await store.add(source, secrets, idempotency_key=f"{source}:{tag}")
    for source, handle, secrets in SANDBOX_HANDLE_CREDENTIALS:
        await store.add(source, secrets, handle=handle, idempotency_key=f"{source}:{handle}:{tag}")
