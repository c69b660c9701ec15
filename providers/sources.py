"""Source labels and their real base URLs (legacy §3). Overridden per label by BEAT_PROVIDER_BASE_URLS."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceSpec:
    label: str
    base_url: str


SOURCES: dict[str, SourceSpec] = {
    spec.label: spec
    for spec in (
        SourceSpec("rapidapi-arraybobo", "https://instagram-scraper-2022.p.rapidapi.com"),
        SourceSpec("rapidapi-jotucker", "https://instagram-scraper2.p.rapidapi.com"),
        SourceSpec("graphapi", "https://graph.facebook.com"),
        SourceSpec("lama", "https://api.lamadava.com"),
        SourceSpec("rapidapi-bestsolutions", "https://instagram-api-cheap-best-performance.p.rapidapi.com"),
        SourceSpec("rocketapi", "https://v1.rocketapi.io"),
        SourceSpec("rapidapi-neotank", "https://instagram130.p.rapidapi.com"),
        SourceSpec("rapidapi-igapi", "https://igdata.p.rapidapi.com"),
        # YouTube Data API v3: ytapitoken holds API keys; ytapi holds per-channel OAuth credentials
        # for YouTube Analytics, whose token and report hosts have labels of their own.
        SourceSpec("ytapitoken", "https://youtube.googleapis.com"),
        SourceSpec("ytapi", "https://youtube.googleapis.com"),
        SourceSpec("google-oauth", "https://oauth2.googleapis.com"),
        SourceSpec("yt-analytics", "https://youtubeanalytics.googleapis.com"),
        SourceSpec("yt-v31", "https://youtube-v31.p.rapidapi.com"),
        SourceSpec("rapidapi-yt", "https://youtube138.p.rapidapi.com"),
        SourceSpec("rapidapi-yt-search", "https://youtube-v311.p.rapidapi.com"),
        # The shorts probe asks youtube.com itself; no credential.
        SourceSpec("youtube-web", "https://www.youtube.com"),
        # Shopify's host is the store's own domain: ``{store}`` is filled per call.
        SourceSpec("shopify", "https://{store}"),
    )
}


def base_url(label: str, overrides: dict[str, str]) -> str:
    if label in overrides:
        return overrides[label]
    try:
        return SOURCES[label].base_url
    except KeyError:
        raise KeyError(f"unknown source {label!r}; known: {', '.join(sorted(SOURCES))}") from None
