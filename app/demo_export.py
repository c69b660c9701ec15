"""The demo's CSV export: one ``fetch_channels_csv`` of the sandbox's demo channel through the facade, and where
its file landed (the asset store: a local directory in the embedded stack)."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg
import httpx

from topics.models import TERMINAL

EXPORT_TIMEOUT = 120.0


async def run_export(api_url: str, pool: asyncpg.Pool) -> tuple[bool, str]:
    """Whether the export completed, and the line that says what it wrote (or why not)."""
    # Only the demo runs against the sandbox, so its world's ids are imported here, not by the stack.
    from providers.sandbox.youtube import DEMO_CHANNEL_ID

    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        response = await client.post(
            "/requests", json={"flow": "fetch_channels_csv", "params": {"channel_ids": [DEMO_CHANNEL_ID]}}
        )
    if response.status_code != 202:
        return False, f"fetch_channels_csv refused: {response.status_code} {response.text[:200]}"
    request_id = response.json()["id"]
    deadline = time.monotonic() + EXPORT_TIMEOUT
    terminal = {status.value for status in TERMINAL}
    while time.monotonic() < deadline:
        row = await pool.fetchrow(
            "SELECT status, result, error_message FROM scrape_request_log WHERE id = $1", request_id
        )
        if row is not None and row["status"] in terminal:
            if row["status"] != "COMPLETE":
                return False, f"fetch_channels_csv {request_id} ended {row['status']}: {row['error_message']}"
            result = json.loads(row["result"])
            rows = sum(result["rows"].values())
            return True, f"fetch_channels_csv wrote {rows} row(s) to {result['channels_csv']}"
        await asyncio.sleep(0.5)
    return False, f"fetch_channels_csv {request_id} did not finish within {EXPORT_TIMEOUT:g}s"
