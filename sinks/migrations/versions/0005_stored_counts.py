"""Stored counts: how much of a request's data the sink wrote, and the ledger they are counted from.

A COMPLETE announces how many events it produced to the stored topics
(``events_announced``); the sink records each event it meets once per
(request, attempt, event id) in ``scrape_request_stored`` — written, or refused
with the reason — so redelivered events are not counted twice, and keeps the
counts of the COMPLETE's attempt on the request. ``stored`` is COMPLETE with
every announced event accounted for. Every new column is nullable or has a
constant default, so adding them does not rewrite the request table.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE scrape_request_log
            ADD COLUMN events_announced integer,
            ADD COLUMN events_written integer,
            ADD COLUMN events_refused integer,
            ADD COLUMN refused_reason text,
            ADD COLUMN stored boolean NOT NULL DEFAULT false;

        CREATE TABLE scrape_request_stored (
            request_id text NOT NULL,
            attempt integer NOT NULL,
            event_id text NOT NULL,
            refused text,
            PRIMARY KEY (request_id, attempt, event_id)
        );
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TABLE scrape_request_stored; "
        "ALTER TABLE scrape_request_log DROP COLUMN stored, DROP COLUMN refused_reason, "
        "DROP COLUMN events_refused, DROP COLUMN events_written, DROP COLUMN events_announced;"
    )
