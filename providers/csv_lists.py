"""Id lists given as the URL of a CSV (the exports' ``*_path`` params): the first column of every row after
the header, as the legacy's ClickHouse ``url(path, 'CSVWithNames')`` read it.

The body is read as a stream, line by line, so a list of millions of ids never sits in memory as one
download. A 4xx (a wrong or expired link) is definitive; a 5xx or a lost connection is transient.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator

import httpx

from providers.errors import InputRejected, ProviderTimeout, ProviderUnavailable

SOURCE = "csv"


async def first_column(url: str, *, timeout: float) -> AsyncIterator[str]:
    """The non-empty first-column values of the CSV at ``url``, header excepted, in order."""
    if not url.startswith(("http://", "https://")):
        raise InputRejected(f"an id list must be an http(s) URL, got {url[:200]!r}", source=SOURCE)
    try:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 500:
                raise ProviderUnavailable(f"GET {url} answered {response.status_code}", source=SOURCE)
            if response.status_code != 200:
                raise InputRejected(f"GET {url} answered {response.status_code}", source=SOURCE)
            header = True
            async for line in response.aiter_lines():
                if header:
                    header = False
                    continue
                row = next(csv.reader([line]), [])
                if row and row[0].strip():
                    yield row[0].strip()
    except httpx.TimeoutException as exc:
        raise ProviderTimeout(f"GET {url} timed out: {exc}", source=SOURCE) from exc
    except httpx.TransportError as exc:
        raise ProviderUnavailable(f"GET {url} failed: {exc}", source=SOURCE) from exc
