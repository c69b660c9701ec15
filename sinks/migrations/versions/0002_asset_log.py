"""asset_log: one row per stored asset, keyed by the entity it belongs to (legacy §7, §11.7).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    # observed_at is when the asset was stored: an older AssetLog replayed late never
    # replaces the row a newer upload wrote.
    op.execute(
        """
        CREATE TABLE asset_log (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            entity_id varchar NOT NULL UNIQUE,
            entity_type text,
            platform text,
            asset_type text,
            asset_url text,
            original_url text,
            content_type text,
            size bigint,
            observed_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE asset_log")
