"""What the CSV exports share in one worker process: Postgres to read, the asset store to write, the child
requests they wait on, and the ad-vs-organic model (None without ``BEAT_AD_VS_ORGANIC_URL``)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from agents.flows.children import Children
from core.settings import Settings
from providers.youtube.ad_vs_organic import AdVsOrganicClient
from sinks.assets import AssetStore


@dataclass(frozen=True, slots=True)
class ReportTools:
    pool: asyncpg.Pool
    store: AssetStore
    children: Children
    settings: Settings
    ad_vs_organic: AdVsOrganicClient | None = None
