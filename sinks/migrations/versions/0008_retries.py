"""Retries, circuit breakers and re-drives (contract §2, §4).

* ``scrape_request_log.due_at``: when a RETRYING request's next attempt is due (the
  reconciler re-drives one still RETRYING well past it); ``retries_spent``: attempts
  counted against the retry budget.
* ``source_breaker``: every circuit's latest state, written on each change, so any
  process (``beat sources``) can show it; the live state is in Redis or in-process.
* ``dead_letter``: every record on ``beat.dead_letter``, for ``beat dlq list`` and
  ``beat dlq redrive`` (each one re-driven at most once: ``redriven_at``).
* ``credential.quota_strikes``: consecutive quota answers without a reset time; each one doubles
  the credential's rest, a success ends the streak.

Revision ID: 0008
Revises: 0006
"""

from alembic import op

revision = "0008"
down_revision = "0006"


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE scrape_request_log
            ADD COLUMN due_at timestamptz,
            ADD COLUMN retries_spent integer NOT NULL DEFAULT 0;
        ALTER TABLE credential ADD COLUMN quota_strikes integer NOT NULL DEFAULT 0;
        CREATE INDEX scrape_request_log_retrying ON scrape_request_log (due_at) WHERE status = 'RETRYING';

        CREATE TABLE source_breaker (
            scope text PRIMARY KEY,
            source text NOT NULL,
            credential_id text,
            state text NOT NULL,
            failures integer NOT NULL DEFAULT 0,
            opened_at timestamptz,
            next_probe_at timestamptz,
            last_error text,
            updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE dead_letter (
            id bigserial PRIMARY KEY,
            original_topic text NOT NULL,
            original_partition integer NOT NULL,
            original_offset bigint NOT NULL,
            request_id text,
            flow text,
            error_type text NOT NULL,
            error_message text NOT NULL,
            source text,
            credential_id text,
            attempt integer NOT NULL DEFAULT 1,
            first_failure_at timestamptz NOT NULL,
            last_failure_at timestamptz NOT NULL,
            record jsonb NOT NULL,
            redriven_at timestamptz,
            redriven_as text,
            UNIQUE (original_topic, original_partition, original_offset, last_failure_at)
        );
        CREATE INDEX dead_letter_listing ON dead_letter (last_failure_at);
        """
    )


def downgrade() -> None:
    op.execute(
        "DROP TABLE dead_letter; DROP TABLE source_breaker; DROP INDEX scrape_request_log_retrying; "
        "ALTER TABLE credential DROP COLUMN quota_strikes; "
        "ALTER TABLE scrape_request_log DROP COLUMN retries_spent, DROP COLUMN due_at;"
    )
