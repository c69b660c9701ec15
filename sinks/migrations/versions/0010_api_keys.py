"""API keys of the facade (``beat keys``): each key's SHA-256, never the key, with its scopes.

A revoked key keeps its row (``revoked_at``) so ``beat keys list`` still tells who had access; only one
live key may carry a name, so ``beat keys revoke NAME`` means one key. ``last_used_at`` is written by the
facade a few seconds late, in batches, never once per request.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE api_key (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name text NOT NULL CHECK (name <> ''),
            hash text NOT NULL UNIQUE,
            scopes text[] NOT NULL CHECK (scopes <@ ARRAY['submit', 'read', 'admin'] AND cardinality(scopes) > 0),
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz,
            last_used_at timestamptz
        );
        CREATE UNIQUE INDEX api_key_live_name ON api_key (name) WHERE revoked_at IS NULL;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE api_key;")
