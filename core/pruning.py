"""The reconciler's housekeeping: the stored ledger (``scrape_request_stored``, written by ``sinks/stored.py``)
once a request's counts are final, and the daily history the CSV exports read past its retention."""

from __future__ import annotations

import asyncpg

# The ledger of a request is needed until it is stored; one that never gets there is kept this long after
# its terminal status, for an operator to look at, then pruned too.
UNSTORED_RETENTION_DAYS = 7
PRUNE_BATCH = 10_000

_PRUNE = """
DELETE FROM scrape_request_stored WHERE ctid = ANY(ARRAY(
    SELECT s.ctid FROM scrape_request_stored AS s JOIN scrape_request_log AS r ON r.id = s.request_id
    WHERE r.stored OR (r.status IN ('COMPLETE', 'FAILED', 'EXPIRED', 'DEAD_LETTERED')
                       AND r.status_at < now() - make_interval(days => $1))
    LIMIT $2))
"""


async def prune(pool: asyncpg.Pool) -> int:
    """Delete ledger rows no count needs any more, in bounded batches; returns how many."""
    pruned = 0
    while True:
        deleted = int((await pool.execute(_PRUNE, UNSTORED_RETENTION_DAYS, PRUNE_BATCH)).split()[-1])
        pruned += deleted
        if deleted < PRUNE_BATCH:
            return pruned


# The daily history tables (migration 0011), each deleted by its ``day`` index.
HISTORY_TABLES = ("youtube_account_daily", "youtube_post_daily")


async def prune_history(pool: asyncpg.Pool, retention_days: int) -> int:
    """Delete history days older than ``retention_days``, in bounded batches; returns how many rows."""
    pruned = 0
    for table in HISTORY_TABLES:
        while True:
            # The table name is one of the constants above; the values are parameters.
            status = await pool.execute(
                f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
                f"SELECT ctid FROM {table} WHERE day < current_date - $1::int LIMIT $2))",
                retention_days,
                PRUNE_BATCH,
            )
            deleted = int(status.split()[-1])
            pruned += deleted
            if deleted < PRUNE_BATCH:
                break
    return pruned
