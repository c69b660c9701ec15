"""Cost and budget guards (issue Observability): ``provider_spend``, the calls and cost per UTC day, source,
credential and flow, added to in batches by every worker (providers/costs.py); ``beat costs`` reads it.

Revision ID: 0014
Revises: 0012
"""

from alembic import op

revision = "0014"
down_revision = "0012"


def upgrade() -> None:
    # credential_id is '' for a call without a credential, so the key has no NULLs to defeat ON CONFLICT.
    op.execute(
        """
        CREATE TABLE provider_spend (
            day date NOT NULL,
            source text NOT NULL,
            credential_id text NOT NULL,
            flow text NOT NULL,
            calls bigint NOT NULL DEFAULT 0,
            cost double precision NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (day, source, credential_id, flow)
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE provider_spend")
