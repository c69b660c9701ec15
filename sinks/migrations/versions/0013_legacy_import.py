"""legacy_import: where ``beat legacy import`` stands in each legacy table, so a run resumes after an
interruption.

One row per (legacy database, table): the last legacy id written (rows are read in id order) and the
counts so far. A batch's rows and its progress commit in one transaction, so a resumed run neither skips
nor counts twice. ``origin`` names the legacy database by host, port and name, never with credentials.

Revision ID: 0013
Revises: 0009
"""

from alembic import op

revision = "0013"
down_revision = "0011"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE legacy_import (
            origin text NOT NULL,
            table_name text NOT NULL,
            after_id bigint,
            done boolean NOT NULL DEFAULT false,
            rows_read bigint NOT NULL DEFAULT 0,
            rows_written bigint NOT NULL DEFAULT 0,
            rows_merged bigint NOT NULL DEFAULT 0,
            rows_refused bigint NOT NULL DEFAULT 0,
            refused_reasons jsonb NOT NULL DEFAULT '{}'::jsonb,
            started_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (origin, table_name)
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE legacy_import")
